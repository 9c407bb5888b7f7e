"""Graph questions on a stored snapshot: neighbours, paths, hot spots, cycles.

Bounded walks (dependencies, dependents, shortest path) run in the database,
breadth first, one indexed query per level (shared/graph/store/base.py says why
not a recursive CTE). Hot spots and cycles are whole-graph measures: the file
import graph is read once per snapshot (one query) and kept in the answer cache,
then ranked here — PageRank by power iteration, strongly connected components
by Tarjan's algorithm — the same code over either database, so the same answers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cloud.query.errors import bad_request
from cloud.query.requests import NodeRequest, PathRequest
from cloud.query.resolve import Target
from shared.graph.model import CONSTRUCTORS, Graph, Node, NodeKind
from shared.graph.store import GraphStore, Reached

DAMPING = 0.85  # PageRank: the chance a walk follows an edge rather than restarting
ITERATIONS = 50  # power iterations; the ranking is stable long before on code graphs
TOLERANCE = 1e-10


def describe(node: Node) -> dict:
    """A node as every answer shows it: path, qualified name, kind, 1-based lines."""
    return {"path": node.path, "name": node.qualname or node.path, "kind": node.kind.value,
            "start_line": node.start_line, "end_line": node.end_line,
            "language": node.language}


@dataclass
class FileGraph:
    """A snapshot's file import graph, as index arrays."""
    paths: list[str]
    src: np.ndarray  # int64 [edges]: importing file
    dst: np.ndarray  # int64 [edges]: imported file
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {path: i for i, path in enumerate(self.paths)}

    @classmethod
    def of(cls, paths: list[str], imports: list[tuple[str, str]]) -> "FileGraph":
        """From the snapshot's file paths and its (importer, imported) path pairs: two
        small reads, not the whole graph."""
        paths = sorted(paths)
        index = {path: i for i, path in enumerate(paths)}
        pairs = sorted({(index[a], index[b]) for a, b in imports
                        if a in index and b in index and a != b})
        array = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        return cls(paths, array[:, 0], array[:, 1])


def pagerank(n: int, src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None,
             restart: np.ndarray | None = None) -> np.ndarray:
    """PageRank of `n` nodes over edges src->dst (personalised when `restart` is given).

    A node with no out-edge hands its rank back through the restart vector, so the
    scores sum to one; `weights` scale each edge's share of its source's rank.
    """
    if n == 0:
        return np.zeros(0)
    weights = np.ones(len(src)) if weights is None else weights.astype(float)
    restart = np.full(n, 1.0 / n) if restart is None else restart / restart.sum()
    out = np.bincount(src, weights=weights, minlength=n)
    share = np.divide(weights, out[src], out=np.zeros_like(weights), where=out[src] > 0)
    rank = restart.copy()
    for _ in range(ITERATIONS):
        flowed = np.bincount(dst, weights=rank[src] * share, minlength=n)
        dangling = rank[out == 0].sum()
        new = DAMPING * (flowed + dangling * restart) + (1 - DAMPING) * restart
        if np.abs(new - rank).sum() < TOLERANCE:
            return new
        rank = new
    return rank


def hot_spots(files: FileGraph, limit: int) -> list[dict]:
    """The files most depended on: PageRank over IMPORTS, with direct importers."""
    n = len(files.paths)
    rank = pagerank(n, files.src, files.dst)
    importers = np.bincount(files.dst, minlength=n)
    order = sorted(range(n), key=lambda i: (-rank[i], -importers[i], files.paths[i]))
    return [{"path": files.paths[i], "pagerank": round(float(rank[i]), 6),
             "dependents": int(importers[i])} for i in order[:limit] if importers[i] > 0]


def cycles(files: FileGraph) -> list[list[str]]:
    """Import cycles: strongly connected components of two files or more, largest first."""
    n = len(files.paths)
    successors: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(files.src.tolist(), files.dst.tolist()):
        successors[a].append(b)
    components = _tarjan(n, successors)
    found = [sorted(files.paths[i] for i in c) for c in components if len(c) > 1]
    found.sort(key=lambda c: (-len(c), c))
    return found


def _tarjan(n: int, successors: list[list[int]]) -> list[list[int]]:
    """Tarjan's strongly connected components, iterative (deep graphs overflow recursion)."""
    index = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    for root in range(n):
        if index[root] >= 0:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack[node] = True
            if child < len(successors[node]):
                work.append((node, child + 1))
                nxt = successors[node][child]
                if index[nxt] < 0:
                    work.append((nxt, 0))
                elif on_stack[nxt]:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack[member] = False
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def find_node(store: GraphStore, target: Target, path: str, symbol: str | None) -> Node:
    """The file at `path`, or the symbol of that qualified (or own) name in it."""
    nodes = store.nodes_in_file(target.snapshot, path)
    if not nodes:
        raise bad_request(f"unknown path {path!r} in {target.repo} at "
                          f"{target.snapshot.commit[:12]}")
    if symbol is None:
        return nodes[0]
    exact = [n for n in nodes if n.qualname == symbol]
    named = exact or [n for n in nodes if n.kind is not NodeKind.FILE and n.name == symbol]
    if len(named) != 1:
        choices = ", ".join(n.qualname for n in named[:10])
        raise bad_request(f"symbol {symbol!r} is {'ambiguous in' if named else 'not in'} "
                          f"{path}" + (f": {choices}" if named else ""))
    return named[0]


def neighbours(store: GraphStore, target: Target, request: NodeRequest,
               reverse: bool) -> dict:
    """A class's dependents include its constructor's: instantiating a class calls the
    `__init__`/`constructor` that runs, and that is where the CALLS edge goes."""
    node = find_node(store, target, request.path, request.symbol)
    starts = [node.id]
    if reverse and node.kind is NodeKind.CLASS:
        starts += [n.id for n in store.nodes_in_file(target.snapshot, node.path)
                   if n.qualname in {f"{node.qualname}.{name}" for name in CONSTRUCTORS}]
    found: list[Reached] = store.reach(target.snapshot, starts, request.depth, request.kinds,
                                       reverse)
    return {"node": describe(node), "direction": "dependents" if reverse else "dependencies",
            "depth": request.depth, "kinds": list(request.kinds),
            "results": [{**describe(r.node), "distance": r.distance}
                        for r in found[:request.limit]],
            "total": len(found), "truncated": len(found) > request.limit}


def shortest_path(store: GraphStore, target: Target, request: PathRequest) -> dict:
    source = find_node(store, target, request.source, None)
    goal = find_node(store, target, request.target, None)
    chain = store.shortest_path(target.snapshot, source.id, goal.id, request.kinds,
                                max_depth=request.max_depth)
    return {"from": request.source, "to": request.target, "kinds": list(request.kinds),
            "path": [describe(n) for n in chain] if chain else None,
            "length": len(chain) - 1 if chain else None}


def snapshot_json(graph: Graph) -> dict:
    """The whole snapshot for tools: nodes with ids, edges by id."""
    return {"nodes": [{"id": str(n.id), **describe(n)} for n in graph.nodes],
            "edges": [{"src": str(e.src), "dst": str(e.dst), "kind": e.kind.value,
                       "line": e.line, "weight": e.weight, "type_only": e.type_only,
                       "candidates": e.candidates}
                      for e in graph.edges]}
