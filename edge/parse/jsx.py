"""JSX elements that render a component: call sites of that component.

In React (and Preact, Solid, …) `<Button label="x" />` and `<Layout>…</Layout>`
call the component `Button` / `Layout` with its props, as `Button({label:
"x"})` would, so each such element is recorded as a call whose callee is the
tag: "Button", "Layout", "Foo.Bar" for `<Foo.Bar>`, "this.Item" for
`<this.Item>`. Everything downstream (imports, default and re-exports,
`forwardRef`/`memo` wrapped definitions, namespaces, members of objects) then
resolves it like any other callee; a class component is constructed, as `new
X()` (edge/infer.py: its constructor, else the class node), which is also where
the TypeScript checker resolves the element's signature.

What renders no component, and is left out: intrinsic elements, the tags
JSX passes on as strings (`<div>`, `<my-element>`: an identifier starting with
a lower-case letter or holding a dash, TypeScript's and Babel's rule),
namespaced tags (`<svg:rect>`) and fragments (`<>`, which have no name).
Closing tags repeat the opening one and are not captured. The patterns join
the parser's single query (edge/parse/javascript.py), for the grammars that
read JSX (javascript for .js/.jsx, tsx).
"""
from __future__ import annotations

from tree_sitter import Node

PATTERNS = """
(jsx_opening_element name: [(identifier) (member_expression)] @jsx)
(jsx_self_closing_element name: [(identifier) (member_expression)] @jsx)
"""

_LOWER = frozenset(b"abcdefghijklmnopqrstuvwxyz")


def component_tags(tags: list[Node]) -> list[Node]:
    """The captured tag names that name a component (see the module docstring)."""
    return [tag for tag in tags if tag.type == "member_expression" or _component_name(tag.text)]


def _component_name(name: bytes) -> bool:
    return bool(name) and name[0] not in _LOWER and b"-" not in name
