"""Python facts for typing receivers: what names are bound to, as written.

The graph builder (edge/infer.py) types `obj` in `obj.method()` from these: a
constructor call assigned to a local, an annotated parameter, `self.x = Cls()`
in any method, a class-level annotation, a module-level instance, a with or
except target, a function's return annotation or returned values, the variable
of a `for` loop over an expression (value "xs[]": an element of xs; a tuple target
is left out). Nothing is evaluated here.

The tree-sitter patterns below join the parser's single query, so finding the
facts costs no extra walk over the tree; only assignments whose right side
could name a type (a call, a name, an attribute, an await) are captured.
"""
from __future__ import annotations

import re

from tree_sitter import Node

from edge.parse.expression import PYTHON, expression
from edge.parse.model import ELEMENT, PROPERTY, RETURN, Fact

_INSTANCE_PARAMETERS = (b"self", b"cls")
# @property, @functools.cached_property, @name.getter/.setter and the like.
_PROPERTY = re.compile(rb"@\s*(?:[\w.]*\.)?(?:property|cached_property|getter|setter)\s*$",
                       re.MULTILINE)
_VALUE = "[(call) (identifier) (attribute) (await)]"
_SELF_ATTRIBUTE = "(attribute object: (identifier) attribute: (identifier))"

FACT_PATTERNS = (
    f"(assignment left: (identifier) right: {_VALUE}) @fact.assign",
    "(assignment left: (identifier) type: (type)) @fact.assign",
    f"(assignment left: {_SELF_ATTRIBUTE} right: {_VALUE}) @fact.assign",
    f"(assignment left: {_SELF_ATTRIBUTE} type: (type)) @fact.assign",
    f"(named_expression value: {_VALUE}) @fact.walrus",
    "(with_item value: (as_pattern alias: (as_pattern_target (identifier)))) @fact.with",
    "(except_clause (as_pattern alias: (as_pattern_target (identifier))) @fact.except)",
    f"(return_statement {_VALUE}) @fact.return",
    f"(for_statement left: (identifier) right: {_VALUE}) @fact.for",
    # `cls = pick(kind)`, `for cls, args in …`: the name no longer means the class.
    '(assignment left: (identifier) @fact.taken (#any-of? @fact.taken "self" "cls"))',
    '(for_statement left: (identifier) @fact.taken (#any-of? @fact.taken "self" "cls"))',
    '(pattern_list (identifier) @fact.taken (#any-of? @fact.taken "self" "cls"))',
    '(tuple_pattern (identifier) @fact.taken (#any-of? @fact.taken "self" "cls"))',
)

def facts(text, captures: dict[str, list[Node]], scopes) -> list[Fact]:
    """Facts from the query's captures; `scopes.enclosing(byte)` names the innermost
    class or function body around a position."""
    found: list[Fact] = []
    seen: set[int] = set()
    for node in captures.get("fact.assign", ()):
        if node.start_byte in seen:  # an annotated call matches two patterns
            continue
        seen.add(node.start_byte)
        left, kind = node.child_by_field_name("left"), node.child_by_field_name("type")
        found.append(_fact(text, scopes, node, text.dotted(left),
                           node.child_by_field_name("right"), kind))
    for node in captures.get("fact.walrus", ()):
        found.append(_fact(text, scopes, node, text.decoded(node.child_by_field_name("name")),
                           node.child_by_field_name("value"), None))
    for node in captures.get("fact.with", ()):
        pattern = node.child_by_field_name("value")
        value = expression(text.decoded(pattern.named_child(0)), PYTHON)
        if value is not None:  # `with v as x` binds what v.__enter__() returns
            found.append(Fact(scopes.enclosing(node.start_byte), _alias(text, pattern),
                              value + ".__enter__()", "", node.start_point.row + 1))
    for node in captures.get("fact.except", ()):
        found.append(Fact(scopes.enclosing(node.start_byte), _alias(text, node), "",
                          text.decoded(node.named_child(0)), node.start_point.row + 1))
    for node in captures.get("fact.return", ()):
        found.append(_fact(text, scopes, node, RETURN, node.named_child(0), None))
    for node in captures.get("fact.for", ()):  # `for x in xs`: x is an element of xs
        fact = _fact(text, scopes, node, text.decoded(node.child_by_field_name("left")),
                     node.child_by_field_name("right"), None)
        if fact.value:
            found.append(fact._replace(value=fact.value + ELEMENT))
    found = [f for f in found if f.value or f.annotation]
    for node in captures.get("fact.taken", ()):
        found.append(Fact(scopes.enclosing(node.start_byte), text.decoded(node), "", "",
                          node.start_point.row + 1))
    return found


def signature(text, node: Node, qualname: str, method: bool, decorators: bytes) -> list[Fact]:
    """A function's annotated parameters and return annotation, and whether its
    `decorators` (their text) make it a property; in a function that is not a
    method, a parameter named self or cls (a closure's own, or a method to be)
    as taken, untyped."""
    found: list[Fact] = []
    line = node.start_point.row + 1
    if method and decorators and _PROPERTY.search(decorators):
        found.append(Fact(qualname, PROPERTY, "", "", line))
    returns = node.child_by_field_name("return_type")
    if returns is not None:
        found.append(Fact(qualname, RETURN, "", text.decoded(returns), line))
    parameters = node.child_by_field_name("parameters")
    for parameter in parameters.named_children if parameters is not None else ():
        if parameter.type == "typed_parameter":
            name = parameter.named_child(0)
            if name.type != "identifier":  # *args: T and **kwargs: T hold tuples and dicts
                continue
        elif parameter.type == "typed_default_parameter":
            name = parameter.child_by_field_name("name")
        else:
            if not method and parameter.type == "identifier" \
                    and text.raw(parameter) in _INSTANCE_PARAMETERS:
                found.append(Fact(qualname, text.decoded(parameter), "", "", line))
            continue
        annotation = parameter.child_by_field_name("type")
        if name is not None and annotation is not None:
            found.append(Fact(qualname, text.decoded(name), "", text.decoded(annotation),
                              parameter.start_point.row + 1))
    return found


def _fact(text, scopes, node: Node, target: str, value: Node | None,
          annotation: Node | None) -> Fact:
    rendered = expression(text.decoded(value), PYTHON) if value is not None else None
    return Fact(scopes.enclosing(node.start_byte), target, rendered or "",
                text.decoded(annotation) if annotation is not None else "",
                node.start_point.row + 1)


def _alias(text, pattern: Node) -> str:
    return text.decoded(pattern.child_by_field_name("alias"))
