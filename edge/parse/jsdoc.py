"""JSDoc types in plain JavaScript, read as annotations the way TypeScript's checker
reads .js files (allowJs + checkJs).

Only .js/.jsx/.mjs/.cjs files (the "javascript" grammar): TypeScript has its own
annotations, and the checker ignores JSDoc types there too. What becomes a Fact with
an annotation (edge/parse/model.py), so edge/infer.py and edge/annotations.py type
the receivers as they do TypeScript's:

- `@param {T} name` (also `[name]`, `[name=x]`; `name.sub` describes a property, and
  is skipped) in the JSDoc block of a function, method or arrow that is a symbol:
  the parameter's annotation, scope the function. `@returns {T}` / `@return {T}`:
  its RETURN fact.
- `@type {T}` right above a variable statement (its first declarator), a class field
  (not an arrow-valued one: that is a method) or `this.x = …`; and a cast, `const x =
  /** @type {T} */ (v)`, `this.x = /** @type {T} */ (v)`: the target's annotation.
- `@typedef {import("./x")} X` and `@typedef {import("./x").Y.Z} X`, in any JSDoc
  block of the file: X names what the module exports (or its member Y.Z), as `const
  X = require("./x")` would, in type space. So do `@import` tags (TypeScript 5.5:
  `@import X from "./x"`, `@import { A, B as C } from "./x"`, `@import * as ns from
  "./x"`), bound as the ES import they spell. An `import("./x")` inside a type is
  replaced by a local name of the file bound the same way ("import$0.Y").

Both kinds of name are Imports of kind "jsdoc": the resolver binds them in the file's
scope as any import (a CommonJS module is what it exports, edge/symbols.py), but they
make no IMPORTS edge (edge/resolve/javascript.py says why).

Type text is cleaned for edge/annotations.py: `?T`, `!T` and `T=` lose their marks,
`this` becomes `Self`, `...T` (a rest parameter: an array) and `*` give nothing;
unions, `Promise<T>`, `typeof X`, `T[]` and `Array.<T>` (containers of T) are left
as written, and the rest (`{a: T}`, `function(T): U`) names no class in
edge/annotations.py.

The blocks come from the parser's pairing of a JSDoc block with what follows it
(edge/parse/javascript.py `_doc_block`); the query patterns below only pick out the
statements that follow a comment, so files without JSDoc pay next to nothing.
"""
from __future__ import annotations

import re
from typing import Callable, Iterable

from tree_sitter import Node

from edge.parse.model import RETURN, Binding, Fact, Import

# Statements right after a comment (`.` anchors the two as adjacent siblings), and
# casts: a comment right before a parenthesised value.
PATTERNS = """
((comment) . (expression_statement (assignment_expression
  left: (member_expression object: (this) property: (property_identifier)))) @jsdoc.this)
((comment) . [(lexical_declaration) (variable_declaration)] @jsdoc.variable)
((comment) . (field_definition) @jsdoc.field)
(variable_declarator name: (identifier) (comment) . value: (parenthesized_expression)) @jsdoc.cast
(assignment_expression left: (member_expression object: (this) property: (property_identifier))
  (comment) . right: (parenthesized_expression)) @jsdoc.cast
"""

_TAG = re.compile(r"@(param|arg|argument|returns?|type)\b")
# After a @param type: `name`, `[name]`, `[name=default]`; a dotted name is a property.
_PARAMETER = re.compile(r"\s*\[?\s*([A-Za-z_$][\w$]*)(\.)?")
_TYPEDEF = re.compile(
    rb"@typedef\s*\{\s*import\(\s*(['\"])([^'\"\n]+)\1\s*\)((?:\s*\.\s*[\w$]+)*)"
    rb"\s*(?:<[^{}]*>)?\s*\}\s*([A-Za-z_$][\w$]*)")
# `@import X from "m"`, `@import { A, B as C } from "m"`, `@import * as ns from "m"`
# (TypeScript 5.5), once the block's leading stars are gone.
_IMPORT_TAG = re.compile(
    r"@import\s+(?:([A-Za-z_$][\w$]*)\s*,?\s*)?(?:\{([^{}]*)\}|\*\s*as\s+([A-Za-z_$][\w$]*))?"
    r"""\s*from\s*(['"])([^'"\n]+)\4""")
_STARS = re.compile(r"\n[ \t]*\*")
_IMPORT = re.compile(r"""import\(\s*(['"])([^'"\n]+)\1\s*\)""")
_CONTINUATION = re.compile(r"\s*\n\s*\*?")  # a type across lines of the block
_MARKS = re.compile(r"(^|[|(<,])\s*[?!]+(?=[\w$(])")  # `?T`, `!T`, also inside unions
_FUNCTION_VALUES = frozenset(("arrow_function", "function_expression", "generator_function"))
_LOCAL = "import${}"  # a local name no JavaScript code is likely to use

DocOf = Callable[[int], "Node | None"]  # start byte -> the JSDoc block right above


class JsDocImports:
    """The module names JSDoc types use, as Imports of kind "jsdoc"."""

    def __init__(self) -> None:
        self.bindings: dict[str, list[Binding]] = {}  # specifier -> bindings
        self.lines: dict[str, int] = {}
        self._locals: dict[str, str] = {}

    def bind(self, specifier: str, binding: Binding, line: int) -> None:
        self.bindings.setdefault(specifier, []).append(binding)
        self.lines.setdefault(specifier, line)

    def local(self, specifier: str, line: int) -> str:
        """The file-local name standing for `import("specifier")` in a type."""
        name = self._locals.get(specifier)
        if name is None:
            name = self._locals[specifier] = _LOCAL.format(len(self._locals))
            self.bind(specifier, Binding(name, None), line)
        return name

    def records(self) -> list[Import]:
        return [Import(specifier, self.lines[specifier], "jsdoc", bindings=tuple(bindings),
                       type_only=True) for specifier, bindings in self.bindings.items()]


def module_names(jsdocs: Iterable[Node], source: bytes, found: JsDocImports) -> None:
    """The names JSDoc blocks take from modules, in any block of the file."""
    for doc in jsdocs:
        start, end = doc.start_byte, doc.end_byte
        if source.find(b"@typedef", start, end) != -1:
            _typedefs(doc, source, found)
        if source.find(b"@import", start, end) != -1:
            _import_tags(doc, found)


def _typedefs(doc: Node, source: bytes, found: JsDocImports) -> None:
    """`@typedef {import("./x").Y} X`: X is bound to the module's Y."""
    at = source.find(b"@typedef", doc.start_byte, doc.end_byte)
    while at != -1:
        match = _TYPEDEF.match(source, at, doc.end_byte)
        if match is not None:
            chain = re.sub(rb"\s", b"", match[3]).decode("utf-8", "replace")[1:]
            found.bind(match[2].decode("utf-8", "replace"),
                       Binding(match[4].decode("utf-8", "replace"), chain or None),
                       doc.start_point.row + 1 + source.count(b"\n", doc.start_byte, at))
        at = source.find(b"@typedef", at + 8, doc.end_byte)


def _import_tags(doc: Node, found: JsDocImports) -> None:
    """`@import` tags bind as the ES import statement they spell (a default import of
    a CommonJS module is what it exports: edge/infer.py)."""
    text = _STARS.sub("\n", doc.text.decode("utf-8", "replace"))
    line = doc.start_point.row + 1
    for match in _IMPORT_TAG.finditer(text):
        default, names, namespace, specifier = match[1], match[2], match[3], match[5]
        if default:
            found.bind(specifier, Binding(default, "default"), line)
        if namespace:
            found.bind(specifier, Binding(namespace, None), line)
        for spec in (names or "").split(","):
            parts = spec.split()
            if len(parts) == 1 or (len(parts) == 3 and parts[1] == "as"):
                found.bind(specifier, Binding(parts[-1], parts[0]), line)


def function_facts(qualname: str, function: Node, doc: Node, imports: JsDocImports) -> list[Fact]:
    """@param and @returns of a function's block as facts of its scope."""
    text = doc.text
    if b"@param" not in text and b"@arg" not in text and b"@return" not in text:
        return []
    line = doc.start_point.row + 1
    parameters = _parameters(function)
    found = []
    for tag, kind, rest in _tags(text.decode("utf-8", "replace")):
        if tag.startswith("return"):
            found.append(Fact(qualname, RETURN, "", annotation(kind, imports, line), line))
        elif tag != "type":
            named = _PARAMETER.match(rest)
            if named is not None and named[2] is None and named[1] in parameters:
                found.append(Fact(qualname, named[1], "", annotation(kind, imports, line),
                                  parameters[named[1]]))
    return [fact for fact in found if fact.annotation]


def declared_facts(captures: dict[str, list[Node]], doc_of: DocOf, scope_of: Callable,
                   imports: JsDocImports) -> list[Fact]:
    """`@type` above a `this.x =`, a variable statement or a field; and casts."""
    found = []
    for node in captures.get("jsdoc.this", ()):
        left = node.named_children[0].child_by_field_name("left")
        found.append(_typed(doc_of(node.start_byte), scope_of(node.start_byte),
                            _text(left), node, imports))
    for node in captures.get("jsdoc.variable", ()):
        declarator = next((c for c in node.named_children if c.type == "variable_declarator"),
                          None)
        name = declarator.child_by_field_name("name") if declarator is not None else None
        if name is not None and name.type == "identifier":
            found.append(_typed(doc_of(node.start_byte), scope_of(node.start_byte),
                                _text(name), node, imports))
    for node in captures.get("jsdoc.field", ()):
        name, value = node.child_by_field_name("property"), node.child_by_field_name("value")
        if name is not None and (value is None or value.type not in _FUNCTION_VALUES):
            found.append(_typed(doc_of(node.start_byte), scope_of(node.start_byte),
                                _text(name), node, imports))
    for node in captures.get("jsdoc.cast", ()):
        target = node.child_by_field_name("name") or node.child_by_field_name("left")
        comment = next((c for c in node.children if c.type == "comment"), None)
        if comment is not None and comment.text.startswith(b"/**"):
            found.append(_typed(comment, scope_of(node.start_byte), _text(target), node,
                                imports))
    return [fact for fact in found if fact is not None]


def _typed(doc: Node | None, scope: str | None, target: str, node: Node,
           imports: JsDocImports) -> Fact | None:
    if doc is None or b"@type" not in doc.text:
        return None
    line = node.start_point.row + 1
    for tag, kind, _ in _tags(doc.text.decode("utf-8", "replace")):
        if tag == "type":
            typed = annotation(kind, imports, line)
            return Fact(scope, target, "", typed, line) if typed else None
    return None


def _tags(block: str) -> list[tuple[str, str, str]]:
    """(tag, type, the text after the type) of each @param/@returns/@type with a type."""
    found = []
    for match in _TAG.finditer(block):
        start = match.end()
        while start < len(block) and block[start] in " \t":
            start += 1
        if start < len(block) and block[start] == "{":
            end = _closing_brace(block, start)
            if end != -1:
                found.append((match[1], block[start + 1:end], block[end + 1:end + 200]))
    return found


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    for index in range(start, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1


def annotation(kind: str, imports: JsDocImports, line: int) -> str:
    """A JSDoc type as an annotation edge/annotations.py reads ("" when it names none)."""
    kind = _CONTINUATION.sub(" ", kind).strip()
    if kind.startswith("...") or kind in ("*", "?"):
        return ""  # a rest parameter is an array; `*` and `?` are any
    if "import(" in kind:
        kind = _IMPORT.sub(lambda m: imports.local(m[2], line), kind)
    kind = _MARKS.sub(r"\1", kind)
    while kind.endswith("=") and not kind.endswith("=>"):
        kind = kind[:-1].rstrip()  # an optional parameter
    return "Self" if kind == "this" else kind


def _parameters(function: Node) -> dict[str, int]:
    """The function's own parameter names (plain or with a default) -> their lines."""
    single = function.child_by_field_name("parameter")  # `x => …`
    if single is not None:
        return {_text(single): single.start_point.row + 1} if single.type == "identifier" else {}
    parameters = function.child_by_field_name("parameters")
    found = {}
    for child in parameters.named_children if parameters is not None else ():
        if child.type == "assignment_pattern":
            child = child.child_by_field_name("left")
        if child is not None and child.type == "identifier":
            found[_text(child)] = child.start_point.row + 1
    return found


def _text(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None else ""


def read(captures: dict[str, list[Node]], definitions: list, scope_of: Callable,
         jsdocs: list[Node], doc_of: DocOf, source: bytes) -> tuple[list[Fact], list[Import]]:
    """The facts JSDoc types give in one file, and the module names they use.
    `definitions` are the parser's (edge/parse/javascript.py `_Definition`)."""
    imports = JsDocImports()
    module_names(jsdocs, source, imports)
    found = declared_facts(captures, doc_of, scope_of, imports)
    for definition in definitions:
        if definition.kind == "class" or definition.bodies is not None:
            continue  # a wrapped `const X = f(…)` has no parameters of its own
        doc = doc_of(definition.start)
        function = definition.declared
        if function.type == "field_definition":  # `m = (x) => …`
            function = function.child_by_field_name("value")
        if doc is not None and function is not None:
            found.extend(function_facts(definition.qualname, function, doc, imports))
    return found, imports.records()
