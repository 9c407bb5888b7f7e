"""TypeScript namespaces: which one each definition is declared in, and exported from.

`namespace A.B {…}`, `module M {…}` and `declare namespace` blocks are no
symbols: a definition inside one records it (Symbol.namespace, "A.B") and, at the
namespace's own level, whether it is exported (`export`, or anything in a
`declare namespace` without `export {}`, in namespaces each exported from the one
around). Qualnames stay as without the namespace, so node ids do not change;
edge/symbols.py finds exported members as `A.B.name`. The blocks come from
edge/parse/javascript.py's single query.
"""
from __future__ import annotations

import bisect

from tree_sitter import Node


class _Namespace:
    """A TypeScript `namespace`/`module` block: its dotted name (outer ones included)
    and whether its members are exported without `export` (see `exports_all`)."""
    __slots__ = ("start", "end", "name", "ambient", "export_clause", "outer", "reachable")

    def __init__(self, node: Node, ambient: bool) -> None:
        self.start, self.end = node.start_byte, node.end_byte
        self.name = _text(node.child_by_field_name("name"))
        self.ambient = ambient
        self.export_clause = False  # an `export {…}` statement in its body
        self.outer: _Namespace | None = None
        # Whether code outside the outermost block can name it (`A.B` needs B exported
        # from A); a block at module level always can, in its file.
        self.reachable = True

    @property
    def exports_all(self) -> bool:
        """A `declare namespace` exports every member unless its body has an `export
        {…}` (TypeScript's rule for ambient declarations: `export {}` turns it off)."""
        return self.ambient and not self.export_clause


def place_in_namespaces(definitions: list, captures: dict[str, list[Node]]) -> None:
    """Give each definition the namespace it is declared in, and a member of one
    (no definition around it) whether it is exported. Namespaces are no definitions:
    they only nest in each other at module level, so qualnames stay as they were."""
    ambient = {n.start_byte for n in captures.get("namespace.ambient", ())}
    blocks = sorted((_Namespace(n, n.start_byte in ambient)
                     for n in captures["namespace"]), key=lambda b: b.start)
    _nest(blocks)
    # `export …` statements in namespace bodies, innermost last when they nest.
    exports = sorted(captures.get("namespace.export", ()), key=_start)
    for statement in exports:
        if statement.child_by_field_name("declaration") is None:  # `export {…}`
            block = _innermost(blocks, statement.start_byte)
            if block is not None:
                block.export_clause = True
    export_starts = [e.start_byte for e in exports]
    for block in blocks:  # outer blocks first
        if block.outer is not None:
            block.reachable = block.outer.reachable and _exported(
                block.outer, block.start, exports, export_starts)
    for definition in definitions:
        block = _innermost(blocks, definition.start)
        if block is None:
            continue
        definition.namespace = block.name
        if definition.parent is None:
            definition.exported = block.reachable and _exported(
                block, definition.start, exports, export_starts)


def _nest(blocks: list[_Namespace]) -> None:
    """Dotted names for nested blocks (sorted by start): `A { B {} }` -> "A.B"; an
    ambient block makes the ones inside it ambient."""
    stack: list[_Namespace] = []
    for block in blocks:
        while stack and stack[-1].end <= block.start:
            stack.pop()
        if stack:
            block.outer = stack[-1]
            block.name = f"{stack[-1].name}.{block.name}"
            block.ambient = block.ambient or stack[-1].ambient
        stack.append(block)


def _innermost(blocks: list[_Namespace], position: int) -> _Namespace | None:
    found = None
    for block in blocks:  # few per file
        if block.start > position:
            break
        if position < block.end:
            found = block
    return found


def _exported(block: _Namespace, position: int, exports: list[Node],
              starts: list[int]) -> bool:
    """Whether what is declared at `position` in `block` is exported from it: all is in
    a `declare namespace` without `export {}`; else the innermost `export` statement
    around `position` must be the block's own (one of an outer block's body wraps the
    whole inner namespace)."""
    if block.exports_all:
        return True
    index = bisect.bisect_right(starts, position) - 1
    while index >= 0 and exports[index].end_byte <= position:
        index -= 1
    return index >= 0 and exports[index].start_byte > block.start


def _start(node: Node) -> int:
    return node.start_byte


def _text(node: Node) -> str:
    return node.text.decode("utf-8", "replace")
