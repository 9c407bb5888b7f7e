"""The values an expression evaluates to in edge/infer.py, without running code.

A value is a kind and what it is of: an instance of a repository class, the class
itself, a function or method, a module, `super()` of a class, a TS namespace, a
JS object literal bound to a name, or a container (`list[Item]`, `Item[]`: target
its elements' values). A container's own members are never followed
(`items.map()` is a library's method); its elements are, through a loop or a
subscript (an expression segment ending in edge/parse/model.py's ELEMENT). Sets
of them (`Values`) are what evaluating an expression, a member or an annotation
gives; several values mean several candidates. Kept apart so that the modules
that compute them (edge/infer.py, edge/members.py, edge/annotations.py) share one
vocabulary.
"""
from __future__ import annotations

from typing import NamedTuple

from edge.symbols import Definition
from shared.graph.model import NodeKind

INSTANCE, CLASS, FUNCTION, MODULE, SUPER = "instance", "class", "function", "module", "super"
NAMESPACE = "namespace"  # a TS namespace: target (path, dotted name)
OBJECT_VALUE = "object"  # a JS object literal: target (path, scope qualname, name)
CONTAINER = "container"  # an array, list, set...: target the elements' Values


class Value(NamedTuple):
    kind: str  # INSTANCE | CLASS | ... | OBJECT_VALUE | CONTAINER
    target: object  # a Definition; the file's path for MODULE, (path, name) for NAMESPACE


Values = frozenset
NOTHING: Values = frozenset()


def values_of(definition: Definition) -> Values:
    kind = CLASS if definition.node.kind is NodeKind.CLASS else FUNCTION
    return frozenset((Value(kind, definition),))


def elements(values: Values) -> Values:
    """What the containers among `values` hold; anything else has no known elements."""
    found: set[Value] = set()
    for kind, target in values:
        if kind == CONTAINER:
            found |= target
    return frozenset(found)
