"""Graph facts in a Cypher database: the store (see shared/graph/cypher.py).

`CypherGraphStore(session)` keeps the graph-facts half of base.GraphStore's
contract: snapshots (write, replace, retention, ready), nodes, files and file
imports (what hot spots and cycles rank: cloud/query/graph.py), and the walks:
dependencies, dependents, reach, impact and shortest path, breadth first with one
statement per level and base.GraphStore's order and tie-breaks, so both answer
alike. Not here yet: sources, the keyword index, the registry and fencing.
"""
from __future__ import annotations

import json
import time
from typing import Callable, Iterable, Sequence

from shared.graph import cypher as q
from shared.graph import walks
from shared.graph.cypher import BATCH, CypherSession
from shared.graph.model import Edge, EdgeKind, Graph, Node, NodeKind
from shared.graph.store.base import (
    DEPENDENCY_KINDS,
    KEEP_SNAPSHOTS,
    GraphStoreError,
    Reached,
    Snapshot,
    snapshot_stats,
)

INT64 = (-2**63, 2**63 - 1)


def _microseconds(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _node(row: tuple) -> Node:
    return Node(row[0], NodeKind(row[1]), *row[2:])


def _check_ints(graph: Graph, nodes: Sequence[Node]) -> None:
    values = [v for n in nodes for v in (n.id, n.start_line, n.end_line)]
    values += [v for e in graph.edges for v in (e.src, e.dst, e.line or 0, e.weight,
                                                 e.candidates)]
    bad = [v for v in values if not INT64[0] <= v <= INT64[1]]
    if bad:
        raise GraphStoreError(f"the graph cannot be stored: {bad[0]} does not fit 64 bits")


def _check_depth(depth: int | None) -> None:
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be None or at least 0, got {depth}")


class CypherGraphStore:
    """The graph facts part of base.GraphStore's contract over a CypherSession."""
    backend = "cypher"

    def __init__(self, session: CypherSession, *, keep_snapshots: int = KEEP_SNAPSHOTS,
                 clock: Callable[[], float] = time.time, batch: int = BATCH):
        if keep_snapshots < 1:
            raise ValueError("keep_snapshots must be at least 1")
        self.session, self.keep_snapshots, self.clock, self.batch = (
            session, keep_snapshots, clock, batch)
        self.migrate()

    def __enter__(self) -> "CypherGraphStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    # --- schema ----------------------------------------------------------------------------
    def migrate(self) -> None:
        """Apply the missing steps; each rule exists-checks itself, so a second or a
        concurrent run changes nothing."""
        applied = set(self.schema_versions())
        for migration in q.MIGRATIONS:
            if migration.version not in applied:
                for rule in migration.rules:
                    self.session.apply(rule)
                self.session.write(q.record_migration(migration, _microseconds(self.clock())))

    def schema_versions(self) -> list[int]:
        return [row[0] for row in self.session.read(q.applied_migrations())]

    # --- writing ---------------------------------------------------------------------------
    def write_snapshot(self, graph: Graph, ready: bool = True) -> Snapshot:
        """Store `graph` as the snapshot of (repo, commit), replacing any earlier one
        (protocol: shared/graph/cypher.py). A failure leaves the previous one as it was;
        `ready=False` keeps queries off it until `mark_ready`, unless the commit's
        snapshot it replaces was ready."""
        first: dict[int, Node] = {}
        for node in graph.nodes:
            first.setdefault(node.id, node)  # an id is a key: its first node stays
        nodes = list(first.values())
        try:
            stats = snapshot_stats(graph, nodes)
        except ValueError as exc:
            raise GraphStoreError(f"the graph cannot be stored: {exc}") from None
        _check_ints(graph, nodes)
        sid = self.session.write(q.next_snapshot_id())[0][0]
        self.session.write(q.begin_snapshot(sid, graph.repo, graph.commit,
                                            _microseconds(self.clock())))
        try:
            facts = q.node_statements(sid, nodes, self.batch)
            facts += q.edge_statements(sid, graph.edges, self.batch)
            for statement in facts:
                self.session.write(statement)
            now = _microseconds(self.clock())
            done = self.session.write(q.finish_snapshot(sid, graph.repo, ready, stats, now))
            if not done:
                raise GraphStoreError(f"snapshot {sid} of {graph.repo} at {graph.commit} was"
                                      " replaced by a newer write of the same commit")
        except BaseException:
            try:  # best effort: the next write collects what is left
                self.session.write(q.drop_snapshot(sid))
                self.collect_garbage()
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
            raise
        self.session.write(q.retain(sid, graph.repo, self.keep_snapshots))
        self.collect_garbage()
        return Snapshot(sid, graph.repo, graph.commit, now / 1_000_000, stats, bool(done[0][0]))

    def mark_ready(self, snapshot: Snapshot) -> None:
        self.session.write(q.mark_ready(snapshot.id))

    def delete_snapshot(self, snapshot: Snapshot | int) -> None:
        self.session.write(q.drop_snapshot(_sid(snapshot)))
        self.collect_garbage()

    def collect_garbage(self) -> None:
        """Delete the facts of dropped snapshots, batch by batch, then the snapshots."""
        for (sid,) in self.session.read(q.dropped_snapshots()):
            while self.session.write(q.delete_facts(sid, self.batch))[0][0]:
                pass
            self.session.write(q.delete_snapshot_node(sid))

    # --- snapshots -------------------------------------------------------------------------
    def snapshots(self, repo_url: str) -> list[Snapshot]:
        """The repository's written snapshots, newest first."""
        return [_snapshot(row) for row in self.session.read(q.list_snapshots(repo_url))]

    def latest_snapshot(self, repo_url: str, ready_only: bool = False) -> Snapshot | None:
        found = [s for s in self.snapshots(repo_url) if s.ready or not ready_only]
        return found[0] if found else None

    def find_snapshot(self, repo_url: str, commit: str) -> Snapshot | None:
        found = self.session.read(q.list_snapshots(repo_url, commit))
        return _snapshot(found[0]) if found else None

    def repositories(self) -> list[str]:
        return [row[0] for row in self.session.read(q.list_repositories())]

    def load_graph(self, snapshot: Snapshot | int) -> Graph:
        """The whole ready snapshot: nodes by path and line, edges in written order."""
        sid = _sid(snapshot)
        rows = self.session.read(q.get_snapshot(sid))
        if not rows:
            raise GraphStoreError(f"no ready snapshot {sid}")
        meta = _snapshot(rows[0])
        nodes = sorted(map(_node, self.session.read(q.all_nodes(sid))),
                       key=lambda n: (n.path, n.start_line, n.qualname))
        edges = [Edge(row[0], row[1], EdgeKind(row[2]), *row[3:])
                 for row in self.session.read(q.all_edges(sid))]
        return Graph(repo=meta.repo, commit=meta.commit, nodes=nodes, edges=edges,
                     external=dict(meta.stats.get("external", {})),
                     skipped=[tuple(item) for item in meta.stats.get("skipped", [])],
                     loc=meta.stats.get("loc", 0))

    # --- nodes -----------------------------------------------------------------------------
    def node(self, snapshot: Snapshot | int, node_id: int) -> Node | None:
        return self.nodes(snapshot, [node_id]).get(node_id)

    def nodes(self, snapshot: Snapshot | int, ids: Sequence[int]) -> dict[int, Node]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        return {row[0]: _node(row) for row in self.session.read(q.nodes_by_id(_sid(snapshot),
                                                                             wanted))}

    def files(self, snapshot: Snapshot | int) -> list[Node]:
        """The file nodes by path (hot spots and cycles rank these: cloud/query/graph.py)."""
        return [_node(row) for row in self.session.read(q.file_nodes(_sid(snapshot)))]

    def file_imports(self, snapshot: Snapshot | int) -> list[tuple[str, str]]:
        """(importing path, imported path) of every IMPORTS edge between two files."""
        return [row[:2] for row in self.session.read(q.file_import_pairs(_sid(snapshot)))]

    # --- walks (base.GraphStore's, statement for query) ------------------------------------
    def dependencies(self, snapshot: Snapshot | int, node_id: int, depth: int | None = 1,
                     kinds: Iterable[EdgeKind | str] = DEPENDENCY_KINDS) -> list[Reached]:
        return self.reach(snapshot, [node_id], depth, kinds, reverse=False)

    def dependents(self, snapshot: Snapshot | int, node_id: int, depth: int | None = 1,
                   kinds: Iterable[EdgeKind | str] = DEPENDENCY_KINDS) -> list[Reached]:
        return self.reach(snapshot, [node_id], depth, kinds, reverse=True)

    def reach(self, snapshot: Snapshot | int, starts: Sequence[int], depth: int | None,
              kinds: Iterable[EdgeKind | str], reverse: bool) -> list[Reached]:
        if not starts:
            return []
        found = self._walk(_sid(snapshot), list(starts), depth, kinds, reverse)
        for start in starts:
            found.pop(start, None)
        return self._reached(_sid(snapshot), found)

    def impact(self, snapshot: Snapshot | int, changed_paths: Iterable[str],
               depth: int | None = None) -> list[Reached]:
        """Files importing the changed ones, directly or not (those at distance 0)."""
        sid, paths = _sid(snapshot), sorted(set(changed_paths))
        if not paths:
            return []
        starts = [row[0] for row in self.session.read(q.file_nodes(sid, paths))]
        return self._reached(sid, self._walk(sid, starts, depth, [EdgeKind.IMPORTS], True))

    def shortest_path(self, snapshot: Snapshot | int, source: int, target: int,
                      kinds: Iterable[EdgeKind | str] = DEPENDENCY_KINDS,
                      max_depth: int | None = None) -> list[Node] | None:
        """A shortest directed path, both ends included (None: none within max_depth);
        among equal ones the one base.GraphStore picks (lowest ids first)."""
        sid, kinds = _sid(snapshot), list(kinds)
        _check_depth(max_depth)
        q.rel_types(kinds)
        chain = walks.shortest_chain(
            lambda frontier: self.session.read(q.step(sid, frontier, kinds, False)),
            source, target, max_depth)
        if chain is None:
            return None
        nodes = self.nodes(sid, chain)
        return [nodes[i] for i in chain] if len(nodes) == len(set(chain)) else None

    def _walk(self, sid: int, starts: list[int], depth: int | None,
              kinds: Iterable[EdgeKind | str], reverse: bool) -> dict[int, int]:
        """Breadth first, one statement per level: node id -> fewest edges from a start."""
        _check_depth(depth)
        kinds = list(kinds)
        q.rel_types(kinds)
        return walks.distances(
            lambda frontier: self.session.read(q.step(sid, frontier, kinds, reverse)),
            starts, depth)

    def _reached(self, sid: int, distance: dict[int, int]) -> list[Reached]:
        nodes = self.nodes(sid, list(distance))
        found = [Reached(nodes[key], value) for key, value in distance.items() if key in nodes]
        found.sort(key=lambda r: (r.distance, r.node.path, r.node.start_line, r.node.qualname))
        return found


def _sid(snapshot: Snapshot | int) -> int:
    return snapshot.id if isinstance(snapshot, Snapshot) else int(snapshot)


def _snapshot(row: tuple) -> Snapshot:
    return Snapshot(row[0], row[1], row[2], row[3] / 1_000_000, json.loads(row[4]),
                    bool(row[5]))
