"""JavaScript / TypeScript imports: one Import per statement or call.

edge/parse/javascript.py's single query captures the nodes; this reads them:
`import` statements (side-effect and `import type` ones included; TS `import x =
require()` has kind "require"), `export … from` (kind "export"), `require('m')`
and `import('m')` calls with a literal argument (kind "require"/"dynamic"; in a
function: deferred, in a type: typing-only) and `/// <reference path>`
directives. Each Import says which names it binds locally (`Binding`), which
edge/symbols.py and edge/infer.py follow across files.
"""
from __future__ import annotations

import re

from tree_sitter import Node

from edge.parse.javascript_facts import required_export
from edge.parse.model import Binding, Import

_REFERENCE_PATH = re.compile(rb"""\spath\s*=\s*["']([^"']+)["']""")

# Ancestors that make an import deferred (in_function) or typing-only.
_FUNCTION_NODES = frozenset({
    "function_declaration", "generator_function_declaration", "function_expression",
    "generator_function", "arrow_function", "method_definition",
})
_TYPE_NODES = frozenset({
    "type_annotation", "type_alias_declaration", "interface_declaration",
    "type_arguments", "type_query", "generic_type", "lookup_type", "extends_type_clause",
})


def imports(captures: dict[str, list[Node]], requires: list[Node],
             references: list[Node]) -> list[Import]:
    found: list[Import] = []
    for node in captures.get("import", ()):
        found.extend(_import_statement(node))
    for node in captures.get("export", ()):
        found.extend(_export_statement(node))
    for callee in requires:
        found.extend(_require_call(callee.parent))
    for call in captures.get("dynamic", ()):
        found.extend(_dynamic_import(call))
    for comment in references:
        found.extend(_reference_directive(comment))
    found.sort(key=lambda imp: imp.line)
    return found


def _import_statement(node: Node) -> list[Import]:
    line = node.start_point.row + 1
    type_only = _has_token(node, "type")
    bindings: list[Binding] = []
    source = node.child_by_field_name("source")
    kind = "import"
    for child in node.named_children:
        if child.type == "import_clause":
            bindings, all_types = _import_clause(child)
            type_only = type_only or all_types
        elif child.type == "import_require_clause":  # TS: import x = require('m')
            kind = "require"
            source = child.child_by_field_name("source")
            bindings = [Binding(_text(n), None) for n in child.named_children if n.type == "identifier"]
    module = _literal(source)
    if module is None:
        return []
    names = tuple(b.name for b in bindings if b.name is not None)
    return [Import(module, line, kind, names=names, bindings=tuple(bindings), type_only=type_only)]


def _import_clause(clause: Node) -> tuple[list[Binding], bool]:
    """Bindings of `d, {a as b, type T}, * as ns`; True when every one is `type`."""
    bindings = []
    type_flags = []
    for child in clause.named_children:
        if child.type == "identifier":
            bindings.append(Binding(_text(child), "default"))
            type_flags.append(False)
        elif child.type == "namespace_import":
            for name in child.named_children:
                bindings.append(Binding(_text(name), None))
                type_flags.append(False)
        elif child.type == "named_imports":
            for binding, typed in _specifiers(child, "import_specifier"):
                bindings.append(binding)
                type_flags.append(typed)
    return bindings, bool(type_flags) and all(type_flags)


def _specifiers(clause: Node, kind: str) -> list[tuple[Binding, bool]]:
    """`{a as b, type T}` of an import or export: (Binding(b, a), whether `type`)."""
    found = []
    for spec in clause.named_children:
        name = spec.child_by_field_name("name")
        if spec.type == kind and name is not None:
            alias = spec.child_by_field_name("alias") or name
            found.append((Binding(_text(alias), _text(name)), _has_token(spec, "type")))
    return found


def _export_statement(node: Node) -> list[Import]:
    module = _literal(node.child_by_field_name("source"))
    if module is None:
        return []
    type_only = _has_token(node, "type")
    bindings = []
    type_flags = []
    for child in node.named_children:
        if child.type == "namespace_export":  # export * as ns from 'm'
            bindings.extend(Binding(_text(n), None) for n in child.named_children)
        elif child.type == "export_clause":
            for binding, typed in _specifiers(child, "export_specifier"):
                bindings.append(binding)
                type_flags.append(typed)
    if not bindings and _has_token(node, "*"):
        bindings.append(Binding("*", "*"))
    type_only = type_only or (bool(type_flags) and all(type_flags))
    names = tuple(b.name for b in bindings if b.name is not None)
    return [Import(module, node.start_point.row + 1, "export", names=names,
                   bindings=tuple(bindings), type_only=type_only)]


def _require_call(call: Node | None) -> list[Import]:
    if call is None or call.type != "call_expression":
        return []
    module = _single_literal_argument(call)
    if module is None:
        return []
    in_function, type_only = _context(call)
    bindings = _assigned_bindings(call)
    names = tuple(b.name for b in bindings if b.name is not None)
    return [Import(module, call.start_point.row + 1, "require", names=names,
                   bindings=bindings, type_only=type_only, in_function=in_function)]


def _dynamic_import(call: Node) -> list[Import]:
    arguments = call.child_by_field_name("arguments")
    # import('m', { with: … }): the options argument does not matter here.
    first = arguments.named_children[:1] if arguments is not None else []
    module = _literal(first[0]) if first else None  # error recovery can leave none
    if module is None:
        return []
    in_function, type_only = _context(call)
    bindings = _assigned_bindings(call)
    return [Import(module, call.start_point.row + 1, "dynamic", bindings=bindings,
                   names=tuple(b.name for b in bindings if b.name is not None),
                   type_only=type_only, in_function=in_function)]


def _reference_directive(comment: Node) -> list[Import]:
    """`/// <reference path="x.d.ts" />`: a typing-only import of a file (relative
    even without "./"); `types=` and `lib=` references name no repository file."""
    match = _REFERENCE_PATH.search(comment.text)
    if match is None:
        return []
    path = match[1].decode("utf-8", "replace")
    module = path if path.startswith((".", "/")) else "./" + path
    return [Import(module, comment.start_point.row + 1, "import", type_only=True)]


def _single_literal_argument(call: Node) -> str | None:
    arguments = call.child_by_field_name("arguments")
    if arguments is None or arguments.named_child_count != 1:
        return None
    return _literal(arguments.named_children[0])


def _assigned_bindings(call: Node) -> tuple[Binding, ...]:
    """Names a require()/import() result is bound to: `m = …`, `{a, b: c} = …`, `x =
    require().y`, `module.exports = require()` ("module.exports")."""
    node = call
    member = None
    parent = node.parent
    if parent is not None and parent.type == "await_expression":
        node, parent = parent, parent.parent
    if parent is not None and parent.type == "member_expression" and call.type == "call_expression":
        prop = parent.child_by_field_name("property")
        member = _text(prop) if prop is not None else None
        node, parent = parent, parent.parent
    if parent is not None and parent.type == "assignment_expression" \
            and call.type == "call_expression" and parent.child_by_field_name("right") == node:
        exported = required_export(parent.child_by_field_name("left"))  # a CommonJS re-export
        return (Binding(exported, member),) if exported is not None else ()
    if parent is None or parent.type != "variable_declarator":
        return ()
    target = parent.child_by_field_name("name")
    if target is None or parent.child_by_field_name("value") != node:
        return ()
    if target.type == "identifier":
        return (Binding(_text(target), member),)
    if target.type == "object_pattern" and member is None:
        return tuple(_destructured(target))
    return ()


def _destructured(pattern: Node) -> list[Binding]:
    bindings = []
    for child in pattern.named_children:
        if child.type == "shorthand_property_identifier_pattern":
            bindings.append(Binding(_text(child), _text(child)))
        elif child.type == "pair_pattern":
            key = child.child_by_field_name("key")
            value = child.child_by_field_name("value")
            if value is not None and value.type == "assignment_pattern":
                value = value.child_by_field_name("left")
            if key is not None and value is not None and value.type == "identifier":
                bindings.append(Binding(_text(value), _text(key)))
        elif child.type == "object_assignment_pattern":  # {a = 1}
            left = child.child_by_field_name("left")
            if left is not None:
                bindings.append(Binding(_text(left), _text(left)))
    return bindings


def _context(node: Node) -> tuple[bool, bool]:
    """(inside a function body, inside a type) for a require()/import() call."""
    in_function = type_only = False
    parent = node.parent
    while parent is not None:
        kind = parent.type
        if kind in _FUNCTION_NODES:
            in_function = True
        elif kind in _TYPE_NODES:
            type_only = True
        parent = parent.parent
    return in_function, type_only


def _literal(node: Node | None) -> str | None:
    """A string literal's value; template literals only without substitutions."""
    if node is None:
        return None
    if node.type == "template_string":
        if any(child.type == "template_substitution" for child in node.named_children):
            return None
    elif node.type != "string":
        return None
    return node.text[1:-1].decode("utf-8", "replace")


def _has_token(node: Node, token: str) -> bool:
    """Whether an anonymous keyword (`type`, `*`) is a direct child of node."""
    return any(not child.is_named and child.type == token for child in node.children)


def _text(node: Node) -> str:
    return node.text.decode("utf-8", "replace")
