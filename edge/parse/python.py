"""Python source -> ParsedFile: symbols, imports and call sites from one tree-sitter query.

Everything is found by one query compiled once per process, so the walk over
the tree runs in C; Python only touches the captured nodes. Captures do not
come back in document order, so nesting (which function encloses a call, is an
import under `if TYPE_CHECKING:`) is answered by binary search over the
enclosing ranges rather than by a walk.

Conventions:
- A decorated class or function starts at its first decorator.
- A function directly in a class body is a "method"; qualnames join the
  enclosing classes and functions with dots ("Outer.Inner.method", "f.g").
- A call's caller is the innermost function whose *body* holds it: calls in
  decorators and default values run in the enclosing scope, as Python runs them.
- `import a, b` gives one Import per module; `__import__("m")` and
  `importlib.import_module("m")` with a literal absolute name give an Import of
  kind "import" without bindings.
"""
from __future__ import annotations

import inspect
import re
from bisect import bisect_right
from operator import attrgetter

import tree_sitter_python
from tree_sitter import Language, Node, Parser, Query, QueryCursor

from edge.parse.model import Binding, Call, Import, ParsedFile, Symbol
from edge.parse.expression import PYTHON, expression
from edge.parse.python_facts import FACT_PATTERNS, facts, signature

LANGUAGE = Language(tree_sitter_python.language())
DOCSTRING_CHARS = 1000

_QUERY = Query(LANGUAGE, "\n".join([
    "(class_definition) @def",
    "(function_definition) @def",
    "(decorated_definition) @decorated",
    "(import_statement) @import",
    "(import_from_statement) @import",
    "(future_import_statement) @import",
    '(if_statement condition: (identifier) @_tc (#eq? @_tc "TYPE_CHECKING")'
    " consequence: (block) @type_checking)",
    '(if_statement condition: (attribute attribute: (identifier) @_tc)'
    ' (#eq? @_tc "TYPE_CHECKING") consequence: (block) @type_checking)',
    "(call function: (identifier) @call)",
    "(call function: (attribute) @call.chain)",
    *FACT_PATTERNS,
]))

_STRING = re.compile(rb"""^[rRuUbB]*(\"\"\"|'''|"|')(.*)\1$""", re.DOTALL)
_QUOTES = (b'"""', b"'''", b'"', b"'")
_MODULE_NAME = re.compile(r"[^\W\d]\w*(?:\.[^\W\d]\w*)*")
_SPACE = re.compile(r"[\s\\]")
_NOT_IN_NAME = re.compile(r"\s+|#[^\n]*|\\")


def parse_python(path: str, source: bytes) -> ParsedFile:
    tree = Parser(LANGUAGE).parse(source)
    captures = QueryCursor(_QUERY).captures(tree.root_node)
    parsed = ParsedFile(path=path, language="python", loc=_count_lines(source))
    text = _Text(source)
    functions, scopes = _Functions(), _Functions()
    parsed.symbols = _symbols(text, captures.get("def", ()), captures.get("decorated", ()),
                              functions, scopes, parsed.facts)
    type_checking = [(b.start_byte, b.end_byte) for b in captures.get("type_checking", ())]
    names, chains = captures.get("call", []), captures.get("call.chain", [])
    importers: list[Node] = []
    parsed.calls = _calls(text, names, chains, functions, importers)
    parsed.imports = _imports(text, captures.get("import", ()), _dynamic(importers),
                              functions, type_checking)
    parsed.facts.extend(facts(text, captures, scopes))
    parsed.calls.sort(key=_LINE)
    if tree.root_node.has_error:
        parsed.error = f"syntax error near line {_error_line(tree.root_node, source)}"
    return parsed


def _count_lines(source: bytes) -> int:
    return source.count(b"\n") + (not source.endswith(b"\n") if source else 0)


class _Text:
    """Node text sliced from the source: several times cheaper than Node.text.

    Most source files are ASCII; theirs is decoded once and sliced by byte offsets
    (the same as character offsets there) instead of decoding every slice."""

    def __init__(self, source: bytes):
        self.source = source
        self.ascii = source.decode("ascii") if source.isascii() else None

    def raw(self, node: Node, limit: int | None = None) -> bytes:
        start = node.start_byte
        end = node.end_byte if limit is None else min(node.end_byte, start + limit)
        return self.source[start:end]

    def decoded(self, node: Node) -> str:
        return self.slice(node.start_byte, node.end_byte)

    def slice(self, start: int, end: int) -> str:
        if self.ascii is not None:
            return self.ascii[start:end]
        return self.source[start:end].decode(errors="replace")

    def dotted(self, node: Node) -> str:
        """A dotted name as code uses it: line breaks, comments and spaces inside dropped."""
        name = self.slice(node.start_byte, node.end_byte)
        return _NOT_IN_NAME.sub("", name) if _SPACE.search(name) else name


class _Functions:
    """Bodies of functions (or of classes and functions) as nested byte ranges:
    which one encloses a position."""

    def __init__(self):
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.names: list[str] = []
        self.parents: list[int] = []

    def add(self, start: int, end: int, qualname: str, parent: int) -> int:
        self.starts.append(start)
        self.ends.append(end)
        self.names.append(qualname)
        self.parents.append(parent)
        return len(self.starts) - 1

    def enclosing(self, position: int) -> str | None:
        # Added in source order and nested, so the innermost range holding
        # `position` is the last one starting before it or one of its ancestors.
        index = bisect_right(self.starts, position) - 1
        ends, parents = self.ends, self.parents
        while index >= 0 and ends[index] <= position:
            index = parents[index]
        return self.names[index] if index >= 0 else None


def _symbols(text: _Text, defs, decorated, functions: _Functions, scopes: _Functions,
             facts: list) -> list[Symbol]:
    # definition's start byte -> (its decorated statement's first row, decorators' text)
    decorators = {}
    for d in decorated:
        start = d.child_by_field_name("definition").start_byte
        decorators[start] = (d.start_point.row, text.source[d.start_byte:start])
    symbols: list[Symbol] = []
    # Open definitions, innermost last: (end byte, symbol, index in functions or -1,
    # index in scopes).
    stack: list[tuple[int, Symbol, int, int]] = []
    for node in sorted(defs, key=_start):
        start = node.start_byte
        while stack and stack[-1][0] <= start:
            stack.pop()
        name_node = node.child_by_field_name("name")
        if name_node is None:  # a definition the parser could not finish
            continue
        name = text.decoded(name_node)
        parent = stack[-1][1] if stack else None
        body = node.child_by_field_name("body")
        is_class = node.type == "class_definition"
        symbol = Symbol(
            kind="class" if is_class else ("method" if parent and parent.kind == "class"
                                            else "function"),
            name=name,
            qualname=f"{parent.qualname}.{name}" if parent else name,
            start_line=decorators[start][0] + 1 if start in decorators
            else node.start_point.row + 1,
            end_line=node.end_point.row + 1,
            docstring=_docstring(text, body),
            bases=_bases(text, node.child_by_field_name("superclasses")) if is_class else (),
            parent=parent.qualname if parent else None,
        )
        symbols.append(symbol)
        function = -1
        body_start = body.start_byte if body is not None else node.end_byte
        if not is_class:
            outer = next((f for _, _, f, _ in reversed(stack) if f >= 0), -1)
            function = functions.add(body_start, node.end_byte, symbol.qualname, outer)
            facts.extend(signature(text, node, symbol.qualname, symbol.kind == "method",
                                   decorators[start][1] if start in decorators else b""))
        scope = scopes.add(body_start, node.end_byte, symbol.qualname,
                           stack[-1][3] if stack else -1)
        stack.append((node.end_byte, symbol, function, scope))
    return symbols


def _start(node: Node) -> int:
    return node.start_byte


def _docstring(text: _Text, body: Node | None) -> str | None:
    statement = body.named_child(0) if body is not None and body.named_child_count else None
    while statement is not None and statement.type == "comment":
        statement = statement.next_named_sibling
    if statement is None or statement.type != "expression_statement":
        return None
    if statement.named_child_count != 1:
        return None
    string = statement.named_child(0)
    if string.type != "string":
        return None
    value = _string_value(text.raw(string, DOCSTRING_CHARS * 2))
    if value is None:
        return None
    return (inspect.cleandoc(value) if "\n" in value else value.strip())[:DOCSTRING_CHARS]


def _string_value(raw: bytes) -> str | None:
    """The text between a literal's quotes, escapes kept as written."""
    match = _STRING.match(raw)
    if match is not None:
        return match.group(2).decode(errors="replace")
    # Cut short by the length cap: drop the opening quotes only.
    stripped = raw.lstrip(b"rRuUbB")
    quote = next((q for q in _QUOTES if stripped.startswith(q)), None)
    return stripped[len(quote):].decode(errors="replace") if quote else None


def _bases(text: _Text, arguments: Node | None) -> tuple[str, ...]:
    if arguments is None:
        return ()
    bases = []
    for argument in arguments.named_children:
        if argument.type == "subscript":  # Generic[T] -> Generic
            argument = argument.child_by_field_name("value")
        if argument is not None and argument.type in ("identifier", "attribute"):
            bases.append(text.dotted(argument))
    return tuple(bases)


def _imports(text: _Text, statements, dynamic: list[Node], functions: _Functions,
             type_checking: list[tuple[int, int]]) -> list[Import]:
    imports: list[Import] = []
    for node in statements:
        position = node.start_byte
        imports.extend(_statement(
            text, node, line=node.start_point.row + 1,
            type_only=any(s <= position < e for s, e in type_checking),
            function=functions.enclosing(position)))
    for node in dynamic:
        module = _string_value(text.raw(node))
        if module and _MODULE_NAME.fullmatch(module):
            position = node.start_byte
            function = functions.enclosing(position)
            imports.append(Import(
                module=module, line=node.start_point.row + 1, kind="import",
                type_only=any(s <= position < e for s, e in type_checking),
                in_function=function is not None, function=function))
    imports.sort(key=_LINE)
    return imports


def _statement(text: _Text, node: Node, line: int, type_only: bool,
               function: str | None) -> list[Import]:
    in_function = function is not None
    if node.type == "import_statement":
        found = []
        for name in node.children_by_field_name("name"):
            module, local = _aliased(text, name)
            if module:
                found.append(Import(module, line, "import", bindings=(Binding(local, None),),
                                    type_only=type_only, in_function=in_function,
                                    function=function))
        return found
    if node.type == "future_import_statement":
        module, level = "__future__", 0
    else:
        module, level = _from_module(text, node.child_by_field_name("module_name"))
    if module is None:
        return []
    names: list[str] = []
    bindings: list[Binding] = []
    for name in node.children_by_field_name("name"):
        original, local = _aliased(text, name)
        if original:
            names.append(original)
            bindings.append(Binding(local, original))
    if not names and any(c.type == "wildcard_import" for c in node.children):
        names.append("*")
        bindings.append(Binding("*", "*"))
    return [Import(module, line, "from", level=level, names=tuple(names),
                   bindings=tuple(bindings), type_only=type_only, in_function=in_function,
                   function=function)]


def _aliased(text: _Text, node: Node) -> tuple[str, str]:
    """(name as imported, local name it binds) of `a.b` or `a.b as c`."""
    if node.type != "aliased_import":
        original = text.dotted(node)
        return original, original
    name = node.child_by_field_name("name")
    alias = node.child_by_field_name("alias")
    original = text.dotted(name) if name is not None else ""
    return original, text.dotted(alias) if alias is not None else original


def _from_module(text: _Text, node: Node | None) -> tuple[str | None, int]:
    if node is None:
        return None, 0
    if node.type == "dotted_name":
        return text.dotted(node), 0
    level, module = 0, ""
    for part in node.children:  # relative_import: import_prefix, then maybe a dotted_name
        if part.type == "import_prefix":
            level = text.raw(part).count(b".")
        elif part.type == "dotted_name":
            module = text.dotted(part)
    return module, level


def _calls(text: _Text, names: list[Node], chains: list[Node], functions: _Functions,
           importers: list[Node]) -> list[Call]:
    """One Call per callee node that reads as an expression, names first, then chains;
    the callees that import by name (`_IMPORTERS`) added to `importers`."""
    starts, ends, parents, qualnames = (functions.starts, functions.ends, functions.parents,
                                        functions.names)
    calls = []
    append = calls.append
    text_of = text.slice
    # The parser's hot loop: Functions.enclosing inlined, Call built as the tuple it is
    # (twice as fast as through its __new__); a plain name needs no clean-up, only a
    # chain can span lines inside brackets.
    new = tuple.__new__
    for nodes, plain in ((names, True), (chains, False)):
        for node in nodes:
            position = node.start_byte
            index = bisect_right(starts, position) - 1
            while index >= 0 and ends[index] <= position:
                index = parents[index]
            callee = text_of(position, node.end_byte)
            if not plain:
                callee = expression(callee, PYTHON)
                if callee is None:  # a subscript, a literal: no type to follow
                    continue
            if callee in _IMPORTERS:
                importers.append(node)
            append(new(Call, (qualnames[index] if index >= 0 else None, callee,
                              node.start_point.row + 1)))
    return calls


_LINE = attrgetter("line")
# Calls whose string literal first argument names a module. Found among the calls
# rather than by query patterns: a text predicate there is checked on every call with
# a string first argument, 6% of the whole query on sympy.
_IMPORTERS = frozenset(("__import__", "import_module", "importlib.import_module"))


def _dynamic(importers: list[Node]) -> list[Node]:
    """The string literals that are the first argument of `importers`' calls."""
    found = []
    for callee in importers:
        arguments = callee.parent.child_by_field_name("arguments")
        if arguments is not None and arguments.type == "argument_list" \
                and arguments.named_child_count:
            first = arguments.named_child(0)
            if first.type == "string":
                found.append(first)
    return found


def _error_line(root: Node, source: bytes) -> int:
    """The line of the innermost first ERROR or MISSING node.

    Error recovery can wrap much of a file in one ERROR node; the real fault is
    then the first error inside it, so the search goes on down.
    """
    node, found = root, None
    while True:
        for child in node.children:
            if child.is_missing:
                return child.start_point.row + 1
            if child.is_error or child.has_error:
                found = child if child.is_error else found
                node = child
                break
        else:
            break
    if found is not None:
        return found.start_point.row + 1
    # A missing token the node API does not show (a newline): ask Python's compiler.
    try:
        compile(source, "<parsed>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return exc.lineno or 1
    except (ValueError, RecursionError, MemoryError):
        pass
    return node.start_point.row + 1
