"""JavaScript/TypeScript facts for typing receivers, where the syntax gives the type.

The counterpart of edge/parse/python_facts.py, read by edge/infer.py: `const
x = new X()`, `let x: T`, `this.x = v`, class fields (`client: QueryClient`,
`#cache = new Cache()`), TypeScript constructor parameter properties
(`constructor(private client: Client)` declares `this.client`), annotated
parameters (`this: Subscriber<T>` included), return types of declared
functions and methods, the values those return, and the variable of `for (const
x of xs)` (value "xs[]": an element of xs; destructuring is left out, and
`for…in` gives keys). Patterns join the
parser's single query; no code here walks the tree.

Module-level assignments in the CommonJS style are facts too: what the module
exports (target EXPORTS for `module.exports = v`, "<exports>.a" for `exports.a
= v`, `module.exports.a = v` and each property of `module.exports = { a, b: c
}`), and static members given to a name (`Cls.x = v`, target "Cls.x"). Both
are kept untyped when the value is no expression: the name is taken all the
same. `const x = require('m')` is no fact: the import's binding says what x
is; `module.exports = require('m')` binds "module.exports" to the module as an
import does, and the export's value names that binding (a re-export). Untyped
JavaScript parameters are facts without a value: they hide the file's names of
the same spelling. An object literal bound to a name (`const z = { ...m, a, b:
c }`) is a fact of value OBJECT, with one fact per property written after the
last spread ("z.a") and one per spread ("z.*", in source order). An ES
module's own name exported under another is a module-level fact of target
"<export>.b" (EXPORT_AS) and value "a": `export { a as b }`, and
"<export>.default" for `export default a` and `export default function a() {}`
(whose symbol is a; an anonymous default is a symbol named "default").

A fact's scope is the innermost definition (class, function, method) around
it, so a parameter of an anonymous callback is a local of the function that
holds the callback, the way its calls are. A wrapped definition (`const X =
f(() => …)`, see edge/parse/javascript.py) has no declarator fact: its value
is the RETURN fact of X, so that `X.m()` reads what `f(…)` returns while `X()`
calls the node X. A return statement counts only
when no anonymous function stands between it and the definition.
"""
from __future__ import annotations

from bisect import bisect_right

from tree_sitter import Node

from edge.parse.expression import JAVASCRIPT, expression
from edge.parse.model import ELEMENT, EXPORT_AS, EXPORTS, OBJECT, RETURN, SPREAD, Fact

_VALUE = ("[(new_expression) (call_expression) (identifier) (member_expression)"
          " (await_expression) (this)]")
_TS_VALUE = _VALUE[:-1] + " (non_null_expression)]"
_FUNCTIONS = ("[(function_declaration) (generator_function_declaration) (function_expression)"
              " (generator_function) (arrow_function) (method_definition)]")

PATTERNS = {
    "javascript": f"""
(variable_declarator name: (identifier) value: {_VALUE}) @fact.declarator
(assignment_expression left: (member_expression object: (this)) right: {_VALUE}) @fact.this
(field_definition property: (_) value: {_VALUE}) @fact.field
(return_statement {_VALUE}) @fact.return
(for_in_statement left: (identifier) operator: "of" right: {_VALUE}) @fact.for
{_FUNCTIONS} @fact.function
(assignment_expression left: (member_expression) right: (_)) @fact.member
(variable_declarator name: (identifier) value: (object)) @fact.object
(program (export_statement !source) @fact.export)
""",
    # Untyped parameters: in JavaScript only (TypeScript ones are `required_parameter`).
    "javascript.parameters": """
(formal_parameters (identifier) @fact.untyped)
(arrow_function parameter: (identifier) @fact.untyped)
""",
    "typescript": f"""
(variable_declarator name: (identifier) type: (type_annotation)) @fact.declarator
(public_field_definition name: (_) type: (type_annotation)) @fact.field
(public_field_definition name: (_) value: {_TS_VALUE}) @fact.field
(required_parameter pattern: [(identifier) (this)] type: (type_annotation)) @fact.parameter
(optional_parameter pattern: (identifier) type: (type_annotation)) @fact.parameter
""",
}
PATTERNS["typescript"] = PATTERNS["javascript"].replace(
    "(field_definition property: (_) value: " + _VALUE + ") @fact.field\n", "").replace(
    _VALUE, _TS_VALUE) + PATTERNS["typescript"]
PATTERNS["tsx"] = PATTERNS["typescript"]
PATTERNS["javascript"] += PATTERNS.pop("javascript.parameters")
_PROPERTY_MODIFIERS = frozenset(("accessibility_modifier", "readonly", "override_modifier"))
# Values of an export assignment that the parser makes a symbol of.
_DEFINED = frozenset(("class", "function_expression", "arrow_function", "generator_function"))
_KEYS = frozenset(("property_identifier", "string"))
# What `export default …` may name: a declaration's name, a name or a member of one.
_EXPORTED_NAMES = frozenset(("identifier", "type_identifier", "member_expression"))


class Definitions:
    """Definitions' byte ranges (sorted, nested): the innermost around a position."""

    def __init__(self, definitions) -> None:
        self.starts = [d.start for d in definitions]
        self.ends = [d.end for d in definitions]
        self.qualnames = [d.qualname for d in definitions]
        index = {d.qualname: i for i, d in enumerate(definitions)}
        self.parents = [index.get(d.parent, -1) if d.parent else -1 for d in definitions]
        # Start byte of a wrapped definition (`const X = f(() => …)`) -> its qualname.
        self.wrapped = {d.start: d.qualname for d in definitions if d.bodies is not None}

    def around(self, position: int) -> int:
        index = bisect_right(self.starts, position) - 1
        while index >= 0 and self.ends[index] <= position:
            index = self.parents[index]
        return index

    def outside(self, position: int) -> str | None:
        """The scope of a definition starting at `position`: around it, not itself."""
        index = self.around(position)
        while index >= 0 and self.starts[index] == position:
            index = self.parents[index]
        return self.qualnames[index] if index >= 0 else None

    def scope(self, position: int) -> str | None:
        index = self.around(position)
        return self.qualnames[index] if index >= 0 else None


def facts(captures: dict[str, list[Node]], definitions: Definitions) -> list[Fact]:
    found: list[Fact] = []
    for node in captures.get("fact.declarator", ()):
        if _is_require(node.child_by_field_name("value")):
            continue  # the import's binding says what the name is
        wrapped = definitions.wrapped.get(node.start_byte)
        if wrapped is not None:  # X is the function the parser made of it: X holds the value
            fact = _fact(definitions, node, RETURN, node.child_by_field_name("value"),
                         node.child_by_field_name("type"))
            found.append(fact._replace(scope=wrapped))
            continue
        found.append(_fact(definitions, node, _text(node.child_by_field_name("name")),
                           node.child_by_field_name("value"), node.child_by_field_name("type")))
    for node in captures.get("fact.this", ()):
        found.append(_fact(definitions, node, _text(node.child_by_field_name("left")),
                           node.child_by_field_name("right"), None))
    for node in captures.get("fact.field", ()):
        name = node.child_by_field_name("name") or node.child_by_field_name("property")
        found.append(_fact(definitions, node, _text(name), node.child_by_field_name("value"),
                           node.child_by_field_name("type")))
    for node in captures.get("fact.parameter", ()):
        found.extend(_parameter(definitions, node))
    for node in captures.get("fact.for", ()):  # `for (const x of xs)`: an element of xs
        fact = _fact(definitions, node, _text(node.child_by_field_name("left")),
                     node.child_by_field_name("right"), None)
        if fact.value:
            found.append(fact._replace(value=fact.value + ELEMENT))
    functions = sorted(captures.get("fact.function", ()), key=_start)
    found.extend(_returns(definitions, functions, captures.get("fact.return", ())))
    found = [f for f in found if f.value or f.annotation]
    # Kept untyped: a parameter takes its name, an export makes the module CommonJS.
    for node in captures.get("fact.untyped", ()):
        found.append(Fact(definitions.scope(node.start_byte), _text(node), "", "",
                          node.start_point.row + 1))
    for node in sorted(captures.get("fact.member", ()), key=_start):
        found.extend(_member_assignment(definitions, node))
    for node in captures.get("fact.object", ()):
        found.extend(_object(definitions, node))
    for node in captures.get("fact.export", ()):
        found.extend(_exported_as(node))
    return found


def _exported_as(statement: Node) -> list[Fact]:
    """What an ES module exports under a name that is not the exported thing's own:
    `export default a`, `export default function a() {}` (the symbol is named a), `export
    { a as b }`. A plain `export function a` or `export { a }` needs none: an importer's
    name is the definition's. An anonymous default is a symbol named "default" already."""
    line = statement.start_point.row + 1
    declared = statement.child_by_field_name("declaration")
    value = statement.child_by_field_name("value")
    if declared is not None or value is not None:
        if not any(child.type == "default" for child in statement.children):
            return []
        named = declared.child_by_field_name("name") if declared is not None else value
        if named is None or named.type not in _EXPORTED_NAMES:
            return []  # `export default f(…)`, an object, an anonymous class: no name
        rendered = expression(_text(named), JAVASCRIPT)
        return [Fact(None, f"{EXPORT_AS}.default", rendered, "", line)] if rendered else []
    found = []
    for clause in statement.named_children:
        if clause.type != "export_clause":
            continue
        for spec in clause.named_children:
            name, alias = spec.child_by_field_name("name"), spec.child_by_field_name("alias")
            if spec.type != "export_specifier" or name is None or alias is None \
                    or alias.type == "string" or _text(alias) == _text(name):
                continue
            found.append(Fact(None, f"{EXPORT_AS}.{_text(alias)}", _text(name), "", line))
    return found


def _object(definitions: Definitions, node: Node) -> list[Fact]:
    """`const z = { ...m, a, b: c.d }`: z is an object whose members are its
    properties ("z.a") and, for other names, what its spreads ("z.*") hold. A
    property written before a spread is left out: the spread may replace it."""
    scope, line = definitions.scope(node.start_byte), node.start_point.row + 1
    name = _text(node.child_by_field_name("name"))
    entries = node.child_by_field_name("value").named_children
    found = [Fact(scope, name, OBJECT, "", line)]
    last_spread = max((i for i, child in enumerate(entries) if child.type == "spread_element"),
                      default=-1)
    for index, child in enumerate(entries):
        if child.type == "spread_element" and child.named_child_count:
            rendered = expression(_text(child.named_children[0]), JAVASCRIPT)
            found.append(Fact(scope, f"{name}.{SPREAD}", rendered or "", "", line))
        elif index > last_spread:
            found.extend(Fact(scope, f"{name}.{key}", rendered, "", line)
                         for key, rendered in _property(child))
    return found


def _fact(definitions: Definitions, node: Node, target: str, value: Node | None,
          annotation: Node | None) -> Fact:
    rendered = expression(_text(value), JAVASCRIPT) if value is not None else None
    return Fact(definitions.scope(node.start_byte), target, rendered or "", _type(annotation),
                node.start_point.row + 1)


def _parameter(definitions: Definitions, node: Node) -> list[Fact]:
    name = _text(node.child_by_field_name("pattern"))
    kind = _type(node.child_by_field_name("type"))
    scope, line = definitions.scope(node.start_byte), node.start_point.row + 1
    found = [Fact(scope, name, "", kind, line)]
    if any(child.type in _PROPERTY_MODIFIERS for child in node.children):
        found.append(Fact(scope, f"this.{name}", "", kind, line))  # a parameter property
    return found


def exported_name(left: Node | None, value: Node | None) -> str | None:
    """The name of a class or function a CommonJS export defines: f for `exports.f =
    …` / `module.exports.f = …`; for `module.exports = …` its own name, else "default"
    (what an anonymous default export is called). Other targets are left out."""
    member = _export_target(left)
    if member is None or value is None:
        return None
    if member == EXPORTS:
        own = value.child_by_field_name("name")
        return _text(own) if own is not None else "default"
    return member[len(EXPORTS) + 1:]


def _export_target(left: Node | None) -> str | None:
    """EXPORTS for `module.exports`, "<exports>.a" for `exports.a` / `module.exports.a`."""
    if left is None or left.type != "member_expression":
        return None
    target = left.child_by_field_name("object")
    prop = left.child_by_field_name("property")
    if target is None or prop is None:
        return None
    if target.text == b"module" and prop.text == b"exports":
        return EXPORTS
    if target.text in (b"exports", b"module.exports"):
        return f"{EXPORTS}.{_text(prop)}"
    return None


def required_export(left: Node | None) -> str | None:
    """The name a `require()` assigned to an export target (`module.exports =
    require('./x')`, `exports.a = require('./x').b`) binds in the module's scope, as its
    import: "module.exports", "module.exports.a". The export's fact names it, so the
    module exports what the required one does."""
    target = _export_target(left)
    return "module.exports" + target[len(EXPORTS):] if target is not None else None


def _member_assignment(definitions: Definitions, node: Node) -> list[Fact]:
    """What a module-level assignment to `module.exports` / `exports.a` exports, or
    a static member it gives a class or function (`X.a = v`, target "X.a")."""
    left, value = node.child_by_field_name("left"), node.child_by_field_name("right")
    if value is None or definitions.outside(node.start_byte) is not None:
        return []  # made inside a function: runs late, if at all
    line = node.start_point.row + 1
    target = _export_target(left)
    if target is None:
        owner = left.child_by_field_name("object") if left is not None else None
        prop = left.child_by_field_name("property") if left is not None else None
        if owner is None or owner.type != "identifier" or prop is None \
                or prop.type != "property_identifier":
            return []
        # Kept untyped too: a static `Cls.m = () => …` hides an instance method m.
        rendered = expression(_text(value), JAVASCRIPT) if value.type not in _DEFINED else None
        return [Fact(None, f"{_text(owner)}.{_text(prop)}", rendered or "", "", line)]
    if value.type in _DEFINED:  # the class or function the assignment defines
        return [Fact(None, target, exported_name(left, value), "", line)]
    if value.type == "object" and target == EXPORTS:  # no value itself: a namespace
        return [Fact(None, EXPORTS, "", "", line)] + [
            Fact(None, f"{EXPORTS}.{key}", rendered, "", line)
            for key, rendered in _properties(value)]
    if _is_require(value):
        rendered = required_export(left)
    else:
        rendered = expression(_text(value), JAVASCRIPT)
    return [Fact(None, target, rendered or "", "", line)]


def _properties(literal: Node) -> list[tuple[str, str]]:
    """(key, value expression) of `{ a, b: c.d }`; methods, spreads and computed keys
    are left out."""
    return [found for child in literal.named_children for found in _property(child)]


def _property(child: Node) -> list[tuple[str, str]]:
    """(key, value expression) of one entry of an object literal when it is `a` or
    `b: c.d` (a name or string key)."""
    if child.type == "shorthand_property_identifier":
        return [(_text(child), _text(child))]
    if child.type != "pair":
        return []
    key, value = child.child_by_field_name("key"), child.child_by_field_name("value")
    if key is None or value is None or key.type not in _KEYS:
        return []
    rendered = expression(_text(value), JAVASCRIPT)
    return [(_text(key).strip("'\""), rendered)] if rendered else []


def _is_require(value: Node | None) -> bool:
    """`require('m')`, or a member of it: its value comes from an import binding."""
    while value is not None and value.type == "member_expression":
        value = value.child_by_field_name("object")
    if value is None or value.type != "call_expression":
        return False
    function = value.child_by_field_name("function")
    arguments = value.child_by_field_name("arguments")
    return (function is not None and function.text == b"require" and arguments is not None
            and arguments.named_child_count == 1
            and arguments.named_children[0].type in ("string", "template_string"))


def _returns(definitions: Definitions, functions: list[Node], returns: list[Node]) -> list[Fact]:
    """Return types of declared functions, and values returned straight from them."""
    found = []
    owned: dict[int, str] = {}  # start byte of a definition's own function -> its qualname
    for function in functions:
        index = definitions.around(function.start_byte)
        if index >= 0 and definitions.ends[index] == function.end_byte:
            qualname = definitions.qualnames[index]
            owned[function.start_byte] = qualname
            returns_type = function.child_by_field_name("return_type")
            if returns_type is not None:
                found.append(Fact(qualname, RETURN, "", _type(returns_type),
                                  function.start_point.row + 1))
    starts = [f.start_byte for f in functions]
    for node in returns:
        index = bisect_right(starts, node.start_byte) - 1
        while index >= 0 and functions[index].end_byte <= node.start_byte:
            index -= 1  # not nested in it: an earlier function may still hold it
        qualname = owned.get(functions[index].start_byte) if index >= 0 else None
        value = expression(_text(node.named_child(0)), JAVASCRIPT) if qualname else None
        if value:
            found.append(Fact(qualname, RETURN, value, "", node.start_point.row + 1))
    return found


def _type(annotation: Node | None) -> str:
    """A type annotation's text without its colon (`: Foo | null` -> "Foo | null")."""
    if annotation is None:
        return ""
    text = _text(annotation)
    return text[1:].strip() if text.startswith(":") else text


def _text(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None else ""


def _start(node: Node) -> int:
    return node.start_byte
