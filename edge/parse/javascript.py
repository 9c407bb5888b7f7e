"""JavaScript / TypeScript / TSX files -> ParsedFile (symbols, imports, calls).

One tree-sitter query per grammar, compiled once per process, finds every node
of interest in a single pass in C; Python then touches only the captured
nodes. Two sorted sweeps over the captures give qualified names (definitions
nest by byte range) and the enclosing function of each call, so no Python code
walks the whole tree.

What is recorded:
- symbols: class declarations and named/assigned/default-exported class
  expressions, abstract classes, interfaces and enums (kind "class"); function
  declarations, functions and arrows assigned to a variable or default-exported
  (kind "function"); class methods and arrow-valued class fields (kind
  "method"). CommonJS exports define classes and functions too: `exports.x =`
  / `module.exports.x =` one named x (what callers write, as for `const x =
  class Y {}`), `module.exports =` one named by its own name (`class X {}`,
  `function f() {}`). Anonymous defaults, `export default class {}` and
  `module.exports = class {}` alike, are named "default": both are what an
  importer of the module gets. The docstring is the JSDoc block right above
  the declaration.
- wrapped definitions: a module-level `const X = call(…)` (export or not)
  whose call, or `new`, possibly awaited, parenthesised or cast (`as`,
  `satisfies`, `!`), passes at least one function value (arrow, function or
  generator expression) as an argument, directly or through calls nested in
  its arguments, is a symbol X of kind "function": `const Button =
  forwardRef((props, ref) => …)`, `const Memo = memo(function Inner() {…})`,
  `export const $ZodX = core.$constructor("$ZodX", (inst, def) => {…})`,
  `const onScroll = debounce(() => {…}, 100)`. The value is usually callable
  (a component, a constructor, a hook) and has no other symbol; the calls in
  the declarator, the wrapping call and those inside the callbacks, get X as
  their caller (else module-level code, which has no caller: `baseRest` in
  lodash's `const union = baseRest(function(arrays) {…})` would have no
  dependent at all, though every such X needs it), and `X(…)` / `new X(…)`
  resolve to X, while `X.m()` reads the value (a RETURN fact of X,
  edge/parse/javascript_facts.py). With a definition around it such a
  declarator is no symbol: its callbacks' calls belong to that definition
  already; in an anonymous callback at module level (`describe(…, () => {…})`)
  it is one, as `const f = () => {}` is there. `const f = () => {}` stays
  what it was. A TS `interface X` of the same name is a symbol too: the two
  make one node whose calls reach the value (edge/symbols.py `_merged`).
- TS namespaces (`namespace A.B {…}`, `module M {…}`, `declare namespace`)
  are no symbols: a definition inside one records it (Symbol.namespace, "A.B")
  and, at the namespace's own level, whether it is exported (`export`, or a
  `declare namespace` without `export {}`, in namespaces each exported from
  the one around). Qualnames are as without the namespace
  (edge/parse/typescript_namespaces.py).
- imports (edge/parse/javascript_imports.py), one Import per statement or call: `import` (incl. side-effect,
  `import type`, `/// <reference path>`; TS `import x = require()` has kind
  "require"), `export … from` (kind "export"), `require('m')` and `import('m')`
  with a literal specifier (kinds "require", "dynamic"). For kind "export" the
  bindings name what the module re-exports (exported name -> source member,
  "*" for `export *`), not local names.
- calls whose callee reads as an expression (edge/parse/expression.py: `f`,
  `a.b.c`, `this.m`, `new X`, `f(x).g`, `a?.b`; `super(…)` as
  "super.constructor"); computed callees are left out. A JSX element naming a
  component (`<Button />`, `<Foo.Bar>`, not `<div>` or `<>`) is a call of
  that component, callee "Button" / "Foo.Bar" (edge/parse/jsx.py).
- facts for typing receivers (edge/parse/javascript_facts.py).
"""
from __future__ import annotations

import bisect
import re
import threading
from functools import cache

import tree_sitter_javascript
import tree_sitter_typescript
from tree_sitter import Language, Node, Parser, Query, QueryCursor

from edge.parse.expression import JAVASCRIPT, expression
from edge.parse.javascript_facts import (
    PATTERNS as FACT_PATTERNS, Definitions, exported_name, facts)
from edge.parse.javascript_imports import imports
from edge.parse.jsdoc import PATTERNS as JSDOC_PATTERNS, read as read_jsdoc
from edge.parse.jsx import PATTERNS as JSX_PATTERNS, component_tags
from edge.parse.model import Call, ParsedFile, Symbol
from edge.parse.typescript_namespaces import place_in_namespaces

_GRAMMARS = {
    "javascript": tree_sitter_javascript.language,
    "typescript": tree_sitter_typescript.language_typescript,
    "tsx": tree_sitter_typescript.language_tsx,
}

_FUNCTION_VALUE = "[(arrow_function) (function_expression) (generator_function)]"

# Each definition is captured together with its context (the declarator, the
# export, the assignment) because asking a node for its parent or sibling makes
# tree-sitter rescan from the root: slow in files with thousands of statements.
_COMMON_PATTERNS = f"""
(class_declaration) @class
(variable_declarator name: (identifier) value: (class)) @class.declarator
(export_statement value: (class) @class.default)
(assignment_expression left: (member_expression) right: (class)) @class.assigned
(function_declaration) @function
(generator_function_declaration) @function
(variable_declarator name: (identifier) value: {_FUNCTION_VALUE}) @function.declarator
(variable_declarator name: (identifier)
  value: [(call_expression) (new_expression) (await_expression) (parenthesized_expression)]) @function.wrapped
(export_statement value: {_FUNCTION_VALUE} @function.default)
(assignment_expression left: (member_expression) right: {_FUNCTION_VALUE}) @function.assigned
(class_body (method_definition) @method)
(import_statement) @import
(export_statement source: (_)) @export
(call_expression function: (import) arguments: (arguments . [(string) (template_string)])) @dynamic
(call_expression function: [(identifier) (member_expression)] @callee)
(call_expression function: (super) @callee)
(new_expression constructor: [(identifier) (member_expression)] @callee)
(comment) @comment
"""

_EXTRA_PATTERNS = {
    "javascript": f"(class_body (field_definition value: {_FUNCTION_VALUE}) @method)",
    "typescript": f"""
(class_body (public_field_definition value: {_FUNCTION_VALUE}) @method)
(variable_declarator name: (identifier)
  value: [(as_expression) (satisfies_expression) (non_null_expression)]) @function.wrapped
(abstract_class_declaration) @class
(interface_declaration) @class
(enum_declaration) @class
(internal_module name: [(identifier) (nested_identifier)] body: (statement_block)) @namespace
(module name: [(identifier) (nested_identifier)] body: (statement_block)) @namespace
(ambient_declaration [(internal_module) (module)] @namespace.ambient)
(statement_block (export_statement) @namespace.export)
""",
}
_EXTRA_PATTERNS["tsx"] = _EXTRA_PATTERNS["typescript"] + JSX_PATTERNS
_EXTRA_PATTERNS["javascript"] += JSX_PATTERNS + JSDOC_PATTERNS  # JSDoc types: JS only

# A variance modifier: after `<` or `,` and any blanks and comments (`/** @ts-ignore */`),
# before a type parameter name that is followed by `,`, `>`, `=` or `extends`.
# (Matching the `<`/`,` instead of looking behind for it is 3x faster.) Each blank or
# comment matches one way only (a line comment runs to its line's end), so a failed match
# backtracks linearly, never exponentially (Python 3.10 has no possessive quantifiers).
_VARIANCE = re.compile(
    rb"([<,](?:\s|/\*[^*]*\*+(?:[^/*][^*]*\*+)*/|//[^\n]*(?![^\n]))*)"
    rb"((?:in|out)(?:\s+out)?)(\s+)"
    rb"(?=[A-Za-z_$][\w$]*\s*(?:[,>=]|extends\b))")
# A line starting with type parameters (`  <T`), a candidate for the `;`.
_LINE_OF_TYPE_PARAMETERS = re.compile(rb"\n[ \t]+<[ \t]*(?:\r?\n[ \t]*)?[A-Za-z_$]")
_BLANK = frozenset(b" \t\r\n")
_TYPE_END = frozenset(b")]}>$_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_REFERENCE = re.compile(rb"///[ \t]*<reference[ \t]")
# A callee (or base class) worth recording: identifiers joined by dots.
_DOTTED = re.compile(rb"[A-Za-z_$#][\w$]*(?:\.[A-Za-z_$#][\w$]*)*")

# What may wrap the call that makes a wrapped definition's value, and the nodes
# that are function values (see _callbacks).
_VALUE_WRAPPERS = frozenset({
    "await_expression", "parenthesized_expression", "as_expression", "satisfies_expression",
    "non_null_expression",
})
_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "generator_function"})
_WRAPPED_DEPTH = 4  # `memo(forwardRef(() => …))`: calls nested in arguments, this deep

# Kinds of "class" symbol that have no constructor to call.
_NOT_CONSTRUCTIBLE = frozenset(("interface_declaration", "enum_declaration"))

_DOC_LIMIT = 400
# What may stand between a JSDoc block and the definition it documents:
# keywords of the statement and decorators, no blank line. Decorator arguments
# nest up to three parentheses deep; excluding parentheses from the plain
# characters keeps the match linear (a lazy `.*?\)` backtracks exponentially).
_ARGUMENTS = rb"\([^;()]*\)"
for _ in range(2):
    _ARGUMENTS = rb"\((?:[^;()]|" + _ARGUMENTS + rb")*\)"
_DOC_GAP = re.compile(
    rb"(?:\s|@[\w$.]+(?:" + _ARGUMENTS + rb")?|(?:export|default|declare|const|let|var)\b)*")
_BLANK_LINE = re.compile(rb"\n[ \t\r]*\n")
_DOC_GAP_LIMIT = 2000


@cache
def _language(language: str) -> Language:
    return Language(_GRAMMARS[language]())


@cache
def _query(language: str) -> Query:
    return Query(_language(language), _COMMON_PATTERNS + _EXTRA_PATTERNS.get(language, "")
                 + FACT_PATTERNS[language])


_parsers = threading.local()  # a Parser is not safe to share between threads


def _parser(language: str) -> Parser:
    cached = getattr(_parsers, language, None)
    if cached is None:
        cached = Parser(_language(language))
        setattr(_parsers, language, cached)
    return cached


def parse_javascript(path: str, source: bytes, language: str) -> ParsedFile:
    """Parse one JS/TS/TSX file; a tree with syntax errors keeps what parsed."""
    tree = _parser(language).parse(_work_around_grammar(source, language))
    root = tree.root_node
    captures = QueryCursor(_query(language)).captures(root)
    loc = source.count(b"\n") + (1 if source and not source.endswith(b"\n") else 0)
    parsed = ParsedFile(path=path, language=language, loc=loc)
    jsdocs, references = _special_comments(captures.get("comment", ()), source)
    jsdocs.sort(key=_start_byte)
    doc_ends = [doc.end_byte for doc in jsdocs]

    def doc_of(start: int) -> Node | None:
        return _doc_block(start, jsdocs, doc_ends, source)

    definitions = _definitions(captures)
    if "namespace" in captures:
        place_in_namespaces(definitions, captures)
    parsed.symbols = _symbols(definitions, doc_of, source)
    callees = captures.get("callee", [])
    if "jsx" in captures:  # `<Button />` calls Button
        callees = callees + component_tags(captures["jsx"])
    parsed.calls, requires = _calls(callees, definitions)
    scopes = Definitions(definitions)
    parsed.facts = facts(captures, scopes)
    parsed.imports = imports(captures, requires, references)
    if language == "javascript" and jsdocs:  # TypeScript's checker reads JSDoc types in JS only
        typed, named = read_jsdoc(captures, definitions, scopes.scope, jsdocs, doc_of, source)
        parsed.facts += typed
        parsed.imports += named
    if root.has_error:
        parsed.error = f"syntax error near line {_first_error_line(root)}"
    return parsed


def _work_around_grammar(source: bytes, language: str) -> bytes:
    """Rewrite two valid TypeScript forms the grammar cannot parse, byte for byte
    in place so that every offset and line stays true.

    - variance modifiers (`<in out T, out U>`, TS 4.7) become spaces;
    - a type member starting with type parameters on a new line
      (`  (n: number): A\n  <B>(b: B): B`, overloads in an interface or type
      literal) gets a `;` in its indentation: the grammar reads `A<B>(…` across
      the line break, which tsc never does, and the error can swallow the file.
      Not in TSX, where lines starting with `<` are elements.
    """
    if language == "javascript":
        return source
    if b"in " in source or b"out " in source:
        source = _VARIANCE.sub(lambda m: m[1] + b" " * len(m[2]) + m[3], source)
    if language == "typescript":
        source = _separate_type_parameter_lines(source)
    return source


def _separate_type_parameter_lines(source: bytes) -> bytes:
    fixed = None
    for line in _LINE_OF_TYPE_PARAMETERS.finditer(source):
        before = _previous_code_byte(source, line.start())
        if before >= 0 and source[before] in _TYPE_END:
            fixed = fixed if fixed is not None else bytearray(source)
            fixed[line.start() + 1] = ord(";")  # the first indentation byte
    return bytes(fixed) if fixed is not None else source


def _previous_code_byte(source: bytes, end: int) -> int:
    """Index of the last byte before end that is not blank or in a comment (-1: none).

    Backwards, so approximate: a `//` inside a string on that line counts as a
    comment, which at worst leaves a line without its `;`.
    """
    for _ in range(64):  # comments between two members are few
        at = end
        while at > 0 and source[at - 1] in _BLANK:
            at -= 1
        if at <= 0:
            return -1
        if source[at - 2:at] == b"*/":
            end = source.rfind(b"/*", 0, at - 2)
            continue
        line_start = source.rfind(b"\n", 0, at) + 1
        comment = source.find(b"//", line_start, at)
        if comment != -1:
            end = comment
            continue
        return at - 1
    return -1


def _special_comments(comments: list[Node], source: bytes) -> tuple[list[Node], list[Node]]:
    """JSDoc blocks and `///` directives, told apart by their first bytes (query
    predicates would cost more than this in a file full of comments)."""
    jsdocs, references = [], []
    for comment in comments:
        start = comment.start_byte
        head = source[start:start + 3]
        if head == b"/**":
            jsdocs.append(comment)
        elif head == b"///" and _REFERENCE.match(source, start, start + 200):
            references.append(comment)
    return jsdocs, references


# ---------------------------------------------------------------------------
# Symbols
# ---------------------------------------------------------------------------

class _Definition:
    """A symbol's node (its whole extent) and what the sweep learns about it."""
    __slots__ = ("node", "kind", "name", "start", "end", "qualname", "parent", "declared",
                 "bodies", "namespace", "exported")

    def __init__(self, node: Node, kind: str, name: str, declared: Node,
                 bodies: list[tuple[int, int]] | None = None) -> None:
        self.node = node
        self.kind = kind
        self.name = name
        self.declared = declared  # the class or function node itself
        self.start = node.start_byte
        self.end = node.end_byte
        self.qualname = name
        self.parent: str | None = None
        # A wrapped definition (`const X = f(() => …)`): the byte ranges of its
        # callbacks, the only code of it that runs as X.
        self.bodies = bodies
        self.namespace: str | None = None  # see Symbol.namespace
        self.exported = False


# capture name -> (symbol kind, how the capture gives the name and the declared node)
_DEFINITION_CAPTURES = (
    ("class", "class", "own"),
    ("class.declarator", "class", "declarator"),
    ("class.default", "class", "default"),
    ("class.assigned", "class", "assigned"),
    ("function", "function", "own"),
    ("function.declarator", "function", "declarator"),
    ("function.default", "function", "default"),
    ("function.assigned", "function", "assigned"),
    ("function.wrapped", "function", "wrapped"),
    ("method", "method", "member"),
)


def _definitions(captures: dict[str, list[Node]]) -> list[_Definition]:
    found = []
    for capture, kind, form in _DEFINITION_CAPTURES:
        for node in captures.get(capture, ()):
            if form == "wrapped":
                bodies = _callbacks(node.child_by_field_name("value"), _WRAPPED_DEPTH)
                if bodies:
                    found.append(_Definition(node, kind, _text(node.child_by_field_name("name")),
                                             node.child_by_field_name("value"), bodies))
                continue
            named = _name_and_declared(node, form)
            if named is not None:
                found.append(_Definition(node, kind, named[0], named[1]))
    found.sort(key=lambda d: (d.start, -d.end))
    # Nesting by byte range gives each definition its parent's qualname. A wrapped
    # definition counts at module level only: inside a function its callbacks'
    # calls already have a caller.
    kept: list[_Definition] = []
    stack: list[_Definition] = []
    for definition in found:
        while stack and stack[-1].end <= definition.start:
            stack.pop()
        if stack:
            if definition.bodies is not None:
                continue
            definition.parent = stack[-1].qualname
            definition.qualname = f"{definition.parent}.{definition.name}"
        stack.append(definition)
        kept.append(definition)
    return kept


def _callbacks(value: Node | None, depth: int) -> list[tuple[int, int]]:
    """Byte ranges of the function values passed to the call (or `new`) that makes
    `value`, under await/parentheses/`as`/`satisfies`/`!`, and to calls in its
    arguments; empty when it is no such call or passes no function."""
    while value is not None and value.type in _VALUE_WRAPPERS:
        value = value.named_children[0] if value.named_child_count else None
    if value is None or value.type not in ("call_expression", "new_expression") or depth == 0:
        return []
    arguments = value.child_by_field_name("arguments")
    if arguments is None or arguments.type != "arguments":  # tagged templates
        return []
    found: list[tuple[int, int]] = []
    for argument in arguments.named_children:
        while argument.type in _VALUE_WRAPPERS and argument.named_child_count:
            argument = argument.named_children[0]
        if argument.type in _FUNCTION_VALUES:
            found.append((argument.start_byte, argument.end_byte))
        else:
            found.extend(_callbacks(argument, depth - 1))
    return found


def _name_and_declared(node: Node, form: str) -> tuple[str, Node] | None:
    """The name code uses for a captured definition, and its class/function node."""
    if form == "declarator":  # `const A = class B {}`: callers write A
        name, value = node.child_by_field_name("name"), node.child_by_field_name("value")
        return (_text(name), value) if name is not None and value is not None else None
    if form == "assigned":
        value = node.child_by_field_name("right")
        name = exported_name(node.child_by_field_name("left"), value)
        return (name, value) if name is not None and value is not None else None
    if form == "member":  # methods: "name"; JS class fields: "property"
        name = node.child_by_field_name("name") or node.child_by_field_name("property")
        return (_text(name), node) if name is not None else None
    name = node.child_by_field_name("name")
    if name is not None:
        return _text(name), node
    return ("default", node) if form == "default" else None


def _symbols(definitions: list[_Definition], doc_of, source: bytes) -> list[Symbol]:
    symbols = []
    for d in definitions:
        node = d.node
        symbols.append(Symbol(
            kind=d.kind,
            name=d.name,
            qualname=d.qualname,
            start_line=node.start_point.row + 1,
            end_line=node.end_point.row + 1,
            docstring=_docstring(doc_of(d.start), source),
            bases=_bases(d.declared) if d.kind == "class" else (),
            parent=d.parent,
            constructible=d.declared.type not in _NOT_CONSTRUCTIBLE,
            namespace=d.namespace,
            exported=d.exported,
        ))
    return symbols


def _bases(node: Node) -> tuple[str, ...]:
    bases: list[str] = []
    for child in node.named_children:
        if child.type == "class_heritage":
            for part in child.named_children:
                if part.type == "extends_clause":  # TypeScript
                    bases.extend(_dotted_types(part.children_by_field_name("value")))
                elif part.type == "implements_clause":
                    bases.extend(_dotted_types(part.named_children))
                else:  # JavaScript: the expression itself
                    bases.extend(_dotted_types([part]))
        elif child.type == "extends_type_clause":  # interface I extends J, K
            bases.extend(_dotted_types(child.children_by_field_name("type")))
    return tuple(bases)


def _dotted_types(nodes: list[Node]) -> list[str]:
    names = []
    for node in nodes:
        if node.type == "generic_type":  # Base<T>: the base is Base
            node = node.child_by_field_name("name") or node
        text = node.text
        if _DOTTED.fullmatch(text):
            names.append(text.decode("utf-8", "replace"))
    return names


def _doc_block(start: int, jsdocs: list[Node], doc_ends: list[int], source: bytes) -> Node | None:
    """The JSDoc block right above what starts at `start`: only statement keywords and
    decorators between them, no blank line (a file header is not a docstring)."""
    index = bisect.bisect_right(doc_ends, start) - 1
    if index < 0 or start - doc_ends[index] > _DOC_GAP_LIMIT:
        return None
    gap = source[doc_ends[index]:start]
    if not _DOC_GAP.fullmatch(gap) or _BLANK_LINE.search(gap):
        return None
    return jsdocs[index]


def _docstring(doc: Node | None, source: bytes) -> str | None:
    if doc is None:
        return None
    text = source[doc.start_byte:doc.end_byte]  # the original bytes, not the masked ones
    return _clean_jsdoc(text[3:-2].decode("utf-8", "replace")) if len(text) > 4 else None


def _clean_jsdoc(body: str) -> str | None:
    """The description part of a JSDoc block: no stars, no @tags, short."""
    lines = []
    for raw in body.splitlines():
        line = raw.strip().lstrip("*").strip()
        if line.startswith("@"):
            break
        lines.append(line)
    text = "\n".join(lines).strip()
    if not text:
        return None
    return text if len(text) <= _DOC_LIMIT else text[: _DOC_LIMIT - 1].rstrip() + "…"


# ---------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------

def _calls(callees: list[Node], definitions: list[_Definition]) -> tuple[list[Call], list[Node]]:
    """Calls with their enclosing definition, and the `require` callees set aside."""
    calls = []
    requires = []
    # Captures of one name are not always in document order (pending matches
    # of other patterns hold some back); the sweep needs them sorted.
    callees = sorted(callees, key=_start_byte)
    stack: list[_Definition] = []
    upcoming = iter(definitions)
    pending = next(upcoming, None)
    dotted = _DOTTED.fullmatch
    for callee in callees:
        text = callee.text
        if text == b"require":
            requires.append(callee)
            continue
        if text == b"super":  # super(…) runs the base class's constructor
            text = "super.constructor"
        elif dotted(text):
            text = text.decode("utf-8", "replace")
        else:  # `a?.b`, `f(x).g`, `a\n  .b`
            text = expression(text.decode("utf-8", "replace"), JAVASCRIPT)
            if text is None:
                continue
        position = callee.start_byte
        # Callees come in document order: open every definition that starts
        # before this call, close those that ended, the innermost left encloses it.
        while pending is not None and pending.start <= position:
            while stack and stack[-1].end <= pending.start:
                stack.pop()
            stack.append(pending)
            pending = next(upcoming, None)
        while stack and stack[-1].end <= position:
            stack.pop()
        caller = stack[-1].qualname if stack else None
        calls.append(Call(caller, text, callee.start_point.row + 1))
    return calls, requires


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def _start_byte(node: Node) -> int:
    return node.start_byte


def _text(node: Node) -> str:
    return node.text.decode("utf-8", "replace")


def _first_error_line(root: Node) -> int:
    """Line of the first ERROR or MISSING node, following only subtrees that hold one."""
    node = root
    while True:
        for child in node.children:
            if child.is_error or child.is_missing:
                return child.start_point.row + 1
            if child.has_error:
                node = child
                break
        else:
            return node.start_point.row + 1
