"""Breadth-first walks over any store's edges, one step (one query) per level.

Every graph store (SQL: shared/graph/store/base.py; Cypher: shared/graph/cypher_store.py)
answers walks with these two functions and its own `step(frontier)`: the edges
(from, to) leaving the frontier in the walk's direction. So both give the same
distances and the same path among equal ones (the lowest ids first), whatever engine
holds the edges.
"""
from __future__ import annotations

from typing import Callable, Iterable

Step = Callable[[list[int]], Iterable[tuple[int, int]]]


def distances(step: Step, starts: list[int], depth: int | None) -> dict[int, int]:
    """Node id -> fewest edges from any start (the starts at 0), up to `depth`."""
    distance = {start: 0 for start in starts}
    frontier, level = list(distance), 0
    while frontier and (depth is None or level < depth):
        level += 1
        frontier = sorted({dst for _, dst in step(frontier) if dst not in distance})
        distance.update((node, level) for node in frontier)
    return distance


def shortest_chain(step: Step, source: int, target: int,
                   max_depth: int | None) -> list[int] | None:
    """The ids of a shortest path from `source` to `target`, both included; among equal
    ones, the one whose steps come first in (from, to) order. None: none within
    `max_depth` edges."""
    parent: dict[int, int | None] = {source: None}
    frontier, level = [source], 0
    while target not in parent and frontier and (max_depth is None or level < max_depth):
        level += 1
        reached = []
        for src, dst in sorted(step(frontier)):
            if dst not in parent:
                parent[dst] = src
                reached.append(dst)
        frontier = reached
    if target not in parent:
        return None
    chain = [target]
    while parent[chain[-1]] is not None:
        chain.append(parent[chain[-1]])
    return chain[::-1]
