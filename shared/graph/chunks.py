"""Which nodes are chunks, and their lines: the one rule both halves follow.

A chunk is a function, method or class (its lines start..end: decorators,
signature, docstring, body), or a file that defines no symbols and has some
text (a script, a config module, an index.js of re-exports). The worker embeds
chunks; the keyword index holds the same chunks, so every search signal scores
the same units and a hit of either kind is the same graph node.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from shared.graph.model import Node, NodeKind

SYMBOL_KINDS = (NodeKind.CLASS, NodeKind.FUNCTION, NodeKind.METHOD)


def split_lines(text: str) -> list[str]:
    """Lines as the parser numbered them: split on "\\n" only, as tree-sitter counts
    rows (str.splitlines would also break at form feeds and shift every line after)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def chunk_nodes(nodes: Iterable[Node], texts: dict[str, list[str]]) -> Iterator[Node]:
    """The chunk nodes of files whose lines are in `texts`, file by file in node order."""
    by_file: dict[str, list[Node]] = {}
    files: list[Node] = []
    for node in nodes:
        if node.kind is NodeKind.FILE:
            files.append(node)
        elif node.kind in SYMBOL_KINDS:
            by_file.setdefault(node.path, []).append(node)
    for file in files:
        lines = texts.get(file.path)
        if lines is None:
            continue
        symbols = by_file.get(file.path)
        if symbols:
            yield from symbols
        elif any(line.strip() for line in lines):
            yield file


def node_lines(node: Node, lines: list[str]) -> list[str]:
    """The node's own lines, clamped to the file."""
    start = max(node.start_line, 1)
    end = min(max(node.end_line, start), len(lines))
    return lines[start - 1:end]
