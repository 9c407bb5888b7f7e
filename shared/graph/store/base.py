"""The graph facts store contract, written once over two small backend primitives.

A backend supplies `_query` (one read statement), `_write` (a unit of work in
one transaction, retried as a whole where the backend can lose its connection)
and the SQL for "column is one of these values"; everything else (snapshot
replace, retention, walks, paths) lives here, so both databases answer every
query the same way.

Walks (dependencies, dependents, shortest path, impact) are breadth-first, one
indexed query per level over the whole frontier. A recursive CTE would save the
round trips, but its UNION can only drop rows identical to earlier ones: on a
cyclic graph it must carry the depth in the row and so revisits a whole cycle at
every level (work ~ edges x depth). Level by level, each node is expanded once
(work ~ edges reached), cycles end the walk by themselves, and `depth` bounds it.

Retention: each repository keeps its `keep_snapshots` (default 5) most recently
written snapshots; the write that pushes one out deletes it in its transaction.

Fencing: a worker whose lease ran out may still be running its job while the job
runs again elsewhere. Writes made under a lease carry its token (`fence`); each
checks and raises the repository's token in its own transaction, so once a newer
lease has written (or `take` the repository), an older one's writes fail with
FencedOut, however late they arrive.
"""
from __future__ import annotations

import abc
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol, Sequence, TypeVar

from shared.graph import walks
from shared.graph.model import Edge, EdgeKind, Graph, Node, NodeKind
from shared.graph.store.schema import (
    DOCUMENT_COLUMNS,
    EDGE_COLUMNS,
    MIGRATIONS,
    MIGRATIONS_TABLE,
    NODE_COLUMNS,
    POSTING_COLUMNS,
    SOURCE_COLUMNS,
    Dialect,
)
from shared.graph.store.accounts import AccountsMixin
from shared.graph.store.registry import BRANCH_INDEX, RegistryMixin
from shared.graph.store.text import KeywordHit, bm25, text_rows

KEEP_SNAPSHOTS = 5
# What "depends on" means by default: imports, calls and inheritance, never
# containment (a file does not depend on the functions it defines).
DEPENDENCY_KINDS: tuple[EdgeKind, ...] = (EdgeKind.IMPORTS, EdgeKind.CALLS, EdgeKind.EXTENDS)

T = TypeVar("T")
_NODE_FIELDS = ", ".join(NODE_COLUMNS[1:])
_EDGE_FIELDS = ", ".join(EDGE_COLUMNS[1:])


class GraphStoreError(Exception):
    """The store could not do what was asked; the message never carries a secret."""


class GraphStoreUnavailable(GraphStoreError):
    """The database could not be reached (after retries): an outage, worth trying later."""


class FencedOut(GraphStoreError):
    """A newer lease has written the repository: this writer's lease is lost."""


@dataclass(frozen=True)
class Snapshot:
    id: int
    repo: str
    commit: str
    taken_at: float  # epoch seconds of the last write
    stats: dict = field(compare=False)
    ready: bool = True  # its vectors are stored too (see mark_ready)


@dataclass(frozen=True)
class Reached:
    """A node found by a walk, `distance` edges away from where it started."""

    node: Node
    distance: int


class Writer(Protocol):
    """What a unit of work may do inside its transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]: ...

    def insert_rows(self, table: str, columns: Sequence[str],
                    rows: Iterable[tuple]) -> None: ...


SnapshotRef = Snapshot | int


class GraphStore(RegistryMixin, AccountsMixin, abc.ABC):
    backend = "abstract"
    dialect: Dialect

    def __init__(self, *, keep_snapshots: int = KEEP_SNAPSHOTS,
                 clock: Callable[[], float] = time.time):
        if keep_snapshots < 1:
            raise ValueError("keep_snapshots must be at least 1")
        self.keep_snapshots = keep_snapshots
        self.clock = clock

    # --- backend primitives ----------------------------------------------------------------
    @abc.abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Rows of one read statement (`?` placeholders)."""

    @abc.abstractmethod
    def _write(self, work: Callable[[Writer], T]) -> T:
        """Run `work` in one transaction: all of it is committed or none."""

    @abc.abstractmethod
    def _in(self, column: str, sqltype: str) -> str:
        """SQL for `column` is one of a list bound as one parameter (see `_pack`)."""

    @abc.abstractmethod
    def _pack(self, values: Sequence[Any]) -> Any:
        """The parameter that `_in` reads a list from."""

    @abc.abstractmethod
    def _encode_stats(self, stats: dict) -> Any: ...

    @abc.abstractmethod
    def _decode_stats(self, raw: Any) -> dict: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def _lock_schema(self, writer: Writer) -> None:
        """Serialize concurrent migrations where the transaction alone does not."""

    def __enter__(self) -> "GraphStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- schema ----------------------------------------------------------------------------
    def _migrate(self) -> None:
        self._write(self._apply_migrations)

    def _apply_migrations(self, writer: Writer) -> None:
        self._lock_schema(writer)
        writer.execute(self.dialect.render(MIGRATIONS_TABLE))
        applied = {row[0] for row in writer.execute("SELECT version FROM schema_migrations")}
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            for statement in migration.statements:
                writer.execute(self.dialect.render(statement))
            writer.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, self.clock()))

    def schema_versions(self) -> list[int]:
        return [row[0] for row in
                self._query("SELECT version FROM schema_migrations ORDER BY version")]

    # --- writing ---------------------------------------------------------------------------
    def take(self, repo: str, fence: int) -> None:
        """Writes to `repo` under tokens below `fence` fail from now on (FencedOut, as
        this does if a newer token already holds it). A job calls it first thing."""
        self._write(lambda writer: _check_fence(writer, repo, fence))

    def write_snapshot(self, graph: Graph, ready: bool = True,
                       fence: int | None = None) -> Snapshot:
        """Store `graph` as the snapshot of (repo, commit), replacing any earlier one.

        One transaction: a failure leaves the previous snapshot as it was. Nodes
        that repeat an id keep their first occurrence (an id is a key); edges are
        stored as given; the graph's sources and their keyword index go with them.
        `ready=False` keeps queries on the previous ready snapshot until
        `mark_ready` (the worker stores the vectors in between); a commit stored
        again stays ready if it was. `fence`: the
        writer's lease token (FencedOut if a newer one has written the repository).
        """
        first_of_id: dict[int, Node] = {}
        for node in graph.nodes:
            first_of_id.setdefault(node.id, node)
        nodes = list(first_of_id.values())
        try:
            stats = snapshot_stats(graph, nodes)
        except ValueError as exc:
            raise GraphStoreError(f"the graph cannot be stored: {exc}") from None

        def work(writer: Writer) -> Snapshot:
            if fence is not None:
                _check_fence(writer, graph.repo, fence)
            taken_at = self.clock()
            repo_id = writer.execute(
                "INSERT INTO repositories (url) VALUES (?) ON CONFLICT (url)"
                " DO UPDATE SET url = excluded.url RETURNING id", (graph.repo,))[0][0]
            snapshot_id = writer.execute(
                "INSERT INTO snapshots (repo_id, commit_sha, taken_at, stats, ready)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (repo_id, commit_sha)"
                " DO UPDATE SET taken_at = excluded.taken_at, stats = excluded.stats,"
                # the same commit again: if it was ready, queries keep answering from it
                # (same graph, same vector ids) while the new vectors are written
                " ready = (snapshots.ready OR excluded.ready) RETURNING id",
                (repo_id, graph.commit, taken_at, self._encode_stats({}), ready))[0][0]
            _delete_facts(writer, snapshot_id)
            writer.insert_rows("nodes", NODE_COLUMNS, _node_rows(snapshot_id, nodes))
            writer.insert_rows("edges", EDGE_COLUMNS, _edge_rows(snapshot_id, graph.edges))
            text = text_rows(snapshot_id, graph, nodes)
            writer.insert_rows("sources", SOURCE_COLUMNS, text.sources)
            writer.insert_rows("documents", DOCUMENT_COLUMNS, text.documents)
            writer.insert_rows("postings", POSTING_COLUMNS, text.postings)
            full = {**stats, "text": text.stats}
            writer.execute("UPDATE snapshots SET stats = ? WHERE id = ?",
                           (self._encode_stats(full), snapshot_id))
            self._drop_old_snapshots(writer, repo_id)
            return Snapshot(snapshot_id, graph.repo, graph.commit, taken_at, full, ready)

        snapshot = self._write(work)
        self._after_snapshot_write()
        return snapshot

    def _after_snapshot_write(self) -> None:
        """Housekeeping once a snapshot is committed (e.g. planner statistics)."""

    def _drop_old_snapshots(self, writer: Writer, repo_id: int) -> None:
        rows = writer.execute(
            "SELECT id FROM snapshots WHERE repo_id = ? ORDER BY taken_at DESC, id DESC",
            (repo_id,))
        for (old,) in rows[self.keep_snapshots:]:
            _delete_facts(writer, old)
            writer.execute("DELETE FROM snapshots WHERE id = ?", (old,))

    def mark_ready(self, snapshot: Snapshot, fence: int | None = None) -> None:
        """Queries may answer from this snapshot now (its vectors are stored);
        `fence` as for write_snapshot."""
        def work(writer: Writer) -> None:
            if fence is not None:
                _check_fence(writer, snapshot.repo, fence)
            writer.execute("UPDATE snapshots SET ready = ? WHERE id = ?", (True, snapshot.id))
        self._write(work)

    # --- snapshots -------------------------------------------------------------------------
    def snapshots(self, repo_url: str) -> list[Snapshot]:
        """The repository's snapshots, newest first."""
        return self._snapshots("r.url = ? ORDER BY s.taken_at DESC, s.id DESC", (repo_url,))

    def latest_snapshot(self, repo_url: str, ready_only: bool = False) -> Snapshot | None:
        """The most recently written snapshot of the repository (that is ready)."""
        found = [s for s in self.snapshots(repo_url) if s.ready or not ready_only]
        return found[0] if found else None

    def find_snapshot(self, repo_url: str, commit: str) -> Snapshot | None:
        found = self._snapshots("r.url = ? AND s.commit_sha = ?", (repo_url, commit))
        return found[0] if found else None

    def repositories(self) -> list[str]:
        """Every repository with at least one snapshot of its default branch, by URL
        (other branches' indexes, `URL#branch`, are not repositories)."""
        return [row[0] for row in self._query(
            "SELECT r.url FROM repositories r WHERE r.url NOT LIKE ? AND EXISTS"
            " (SELECT 1 FROM snapshots s WHERE s.repo_id = r.id) ORDER BY r.url",
            (BRANCH_INDEX,))]

    def _snapshots(self, where: str, params: Sequence[Any]) -> list[Snapshot]:
        rows = self._query(
            "SELECT s.id, r.url, s.commit_sha, s.taken_at, s.stats, s.ready FROM snapshots s"
            f" JOIN repositories r ON r.id = s.repo_id WHERE {where}", params)
        return [self._snapshot(row) for row in rows]

    def load_graph(self, snapshot: SnapshotRef) -> Graph:
        """The whole stored graph of a snapshot (nodes by path and line), sources aside."""
        sid = _sid(snapshot)
        rows = self._query(
            "SELECT s.id, r.url, s.commit_sha, s.taken_at, s.stats, s.ready FROM snapshots s"
            " JOIN repositories r ON r.id = s.repo_id WHERE s.id = ?", (sid,))
        if not rows:
            raise GraphStoreError(f"no snapshot {sid}")
        meta = self._snapshot(rows[0])
        nodes = self._nodes("snapshot_id = ? ORDER BY path, start_line, qualname", (sid,))
        edges = [_edge(row) for row in self._query(
            f"SELECT {_EDGE_FIELDS} FROM edges WHERE snapshot_id = ?", (sid,))]
        return Graph(repo=meta.repo, commit=meta.commit, nodes=nodes, edges=edges,
                     external=dict(meta.stats.get("external", {})),
                     skipped=[tuple(item) for item in meta.stats.get("skipped", [])],
                     loc=meta.stats.get("loc", 0))

    def _snapshot(self, row: tuple) -> Snapshot:
        return Snapshot(row[0], row[1], row[2], row[3], self._decode_stats(row[4]), bool(row[5]))

    # --- text ------------------------------------------------------------------------------
    def sources(self, snapshot: SnapshotRef, paths: Iterable[str]) -> dict[str, str]:
        """The stored text of each of `paths` that the snapshot holds (path -> text)."""
        wanted = sorted(set(paths))
        if not wanted:
            return {}
        return dict(self._query(
            f"SELECT path, text FROM sources WHERE snapshot_id = ? AND {self._in('path', 'text')}",
            (_sid(snapshot), self._pack(wanted))))

    def source_hashes(self, snapshot: SnapshotRef) -> dict[str, str]:
        """path -> sha256 of its text, for every stored source of the snapshot."""
        return dict(self._query("SELECT path, sha256 FROM sources WHERE snapshot_id = ?",
                                (_sid(snapshot),)))

    def keyword_search(self, snapshot: Snapshot, terms: Sequence[str], limit: int,
                       kinds: Sequence[str] = (),
                       paths: Sequence[str] | None = None) -> list[KeywordHit]:
        """BM25 over the snapshot's chunks (see shared/graph/store/text.py)."""
        return bm25(self._query, self._in, self._pack, snapshot.id,
                    snapshot.stats.get("text", {}), terms, limit, kinds, paths)

    def files(self, snapshot: SnapshotRef) -> list[Node]:
        """The snapshot's file nodes, by path."""
        return self._nodes("snapshot_id = ? AND kind = 'file' ORDER BY path", (_sid(snapshot),))

    def file_imports(self, snapshot: SnapshotRef) -> list[tuple[str, str]]:
        """(importing path, imported path) of every IMPORTS edge between two files."""
        return self._query(
            "SELECT a.path, b.path FROM edges e"
            " JOIN nodes a ON a.snapshot_id = e.snapshot_id AND a.id = e.src"
            " JOIN nodes b ON b.snapshot_id = e.snapshot_id AND b.id = e.dst"
            " WHERE e.snapshot_id = ? AND e.kind = 'IMPORTS' AND a.kind = 'file'"
            " AND b.kind = 'file'", (_sid(snapshot),))

    def languages(self, snapshot: SnapshotRef) -> dict[str, int]:
        """Files per language in the snapshot."""
        return dict(self._query(
            "SELECT language, COUNT(*) FROM nodes WHERE snapshot_id = ? AND kind = 'file'"
            " GROUP BY language ORDER BY language", (_sid(snapshot),)))

    def nodes_named(self, snapshot: SnapshotRef, names: Sequence[str],
                    fold_case: bool = False) -> list[Node]:
        """Symbols whose own name or qualified name is one of `names`: exactly, or
        (fold_case) ignoring case. One read of the lowercased-name indexes (migration 10).

        The database lowercases with its own LOWER (SQLite: ASCII letters only), so
        both Python's and ASCII's lowercase of each name are looked up and the rows are
        then matched here: an exact name is found wherever the database lowercases it as
        Python or ASCII does (all but a few exotic capitals); a case-folded match of a
        non-ASCII capital may be missed on SQLite.
        """
        if not names:
            return []
        folded = {n.lower() for n in names} | {_ascii_lower(n) for n in names}
        sid, packed = _sid(snapshot), self._pack(sorted(folded))
        # A UNION, not an OR, and sorted here, not by ORDER BY: either would lead SQLite
        # (no ANALYZE statistics) to read the snapshot's every node through nodes_by_line.
        by = [f"SELECT {_NODE_FIELDS} FROM nodes WHERE snapshot_id = ? AND kind <> 'file'"
              f" AND {self._in(f'LOWER({column})', 'text')}" for column in ("name", "qualname")]
        rows = self._query(f"{by[0]} UNION {by[1]}", (sid, packed, sid, packed))
        wanted = {n.lower() for n in names} if fold_case else set(names)
        key = str.lower if fold_case else str
        found = [n for n in map(_node, rows) if key(n.name) in wanted or key(n.qualname) in wanted]
        return sorted(found, key=lambda n: (n.path, n.start_line, n.qualname))

    # --- nodes -----------------------------------------------------------------------------
    def node(self, snapshot: SnapshotRef, node_id: int) -> Node | None:
        found = self._nodes("snapshot_id = ? AND id = ?", (_sid(snapshot), node_id))
        return found[0] if found else None

    def nodes(self, snapshot: SnapshotRef, ids: Sequence[int]) -> dict[int, Node]:
        """The snapshot's nodes among `ids` (id -> node); unknown ids are left out."""
        return self._nodes_by_id(_sid(snapshot), list(dict.fromkeys(ids)))

    def nodes_in_file(self, snapshot: SnapshotRef, path: str) -> list[Node]:
        """The file's node first, then its symbols in source order."""
        return self._nodes(
            "snapshot_id = ? AND path = ?"
            " ORDER BY CASE WHEN kind = 'file' THEN 0 ELSE 1 END, start_line, end_line DESC,"
            " qualname", (_sid(snapshot), path))

    def node_at_line(self, snapshot: SnapshotRef, path: str, line: int) -> Node | None:
        """The innermost symbol whose lines cover `line`, else the file's node."""
        sid = _sid(snapshot)
        found = self._nodes(
            "snapshot_id = ? AND path = ? AND start_line <= ? AND end_line >= ?"
            " AND kind <> 'file'"
            " ORDER BY start_line DESC, end_line ASC, LENGTH(qualname) DESC LIMIT 1",
            (sid, path, line, line))
        found = found or self._nodes("snapshot_id = ? AND path = ? AND kind = 'file'",
                                     (sid, path))
        return found[0] if found else None

    def _nodes(self, where: str, params: Sequence[Any]) -> list[Node]:
        return [_node(row) for row in
                self._query(f"SELECT {_NODE_FIELDS} FROM nodes WHERE {where}", params)]

    def _nodes_by_id(self, sid: int, ids: Sequence[int]) -> dict[int, Node]:
        if not ids:
            return {}
        found = self._nodes(f"snapshot_id = ? AND {self._in('id', 'bigint')}",
                            (sid, self._pack(list(ids))))
        return {node.id: node for node in found}

    # --- walks -----------------------------------------------------------------------------
    def dependencies(self, snapshot: SnapshotRef, node_id: int, depth: int | None = 1,
                     kinds: Iterable[EdgeKind | str] = DEPENDENCY_KINDS) -> list[Reached]:
        """What `node_id` depends on, up to `depth` edges away (None: no bound)."""
        return self._reach(_sid(snapshot), [node_id], depth, kinds, reverse=False)

    def dependents(self, snapshot: SnapshotRef, node_id: int, depth: int | None = 1,
                   kinds: Iterable[EdgeKind | str] = DEPENDENCY_KINDS) -> list[Reached]:
        """What depends on `node_id`, up to `depth` edges away (None: no bound)."""
        return self._reach(_sid(snapshot), [node_id], depth, kinds, reverse=True)

    def reach(self, snapshot: SnapshotRef, starts: Sequence[int], depth: int | None,
              kinds: Iterable[EdgeKind | str], reverse: bool) -> list[Reached]:
        """What any of `starts` reaches (reverse: what reaches any of them), each at
        its distance from the nearest start; the starts themselves left out."""
        return self._reach(_sid(snapshot), list(starts), depth, kinds, reverse) if starts else []

    def impact(self, snapshot: SnapshotRef, changed_paths: Iterable[str],
               depth: int | None = None) -> list[Reached]:
        """Files that import the changed files, directly or not, with their distance.

        The changed files themselves are at distance 0; paths the snapshot does
        not know (new or deleted files) are ignored.
        """
        sid = _sid(snapshot)
        paths = sorted(set(changed_paths))
        if not paths:
            return []
        starts = [row[0] for row in self._query(
            f"SELECT id FROM nodes WHERE snapshot_id = ? AND kind = 'file'"
            f" AND {self._in('path', 'text')}", (sid, self._pack(paths)))]
        found = self._walk(sid, starts, depth, [EdgeKind.IMPORTS], reverse=True)
        return self._reached(sid, found)

    def shortest_path(self, snapshot: SnapshotRef, source: int, target: int,
                      kinds: Iterable[EdgeKind | str] = DEPENDENCY_KINDS,
                      max_depth: int | None = None) -> list[Node] | None:
        """The nodes of a shortest directed path from `source` to `target`, both
        included, or None when there is none (within `max_depth` edges)."""
        sid = _sid(snapshot)
        _check_depth(max_depth)
        kind_values = _kind_values(kinds)
        chain = walks.shortest_chain(
            lambda frontier: self._step(sid, frontier, kind_values, reverse=False),
            source, target, max_depth)
        if chain is None:
            return None
        nodes = self._nodes_by_id(sid, chain)
        if len(nodes) < len(set(chain)):
            return None  # an edge leads to a node the snapshot does not hold
        return [nodes[item] for item in chain]

    def _reach(self, sid: int, starts: list[int], depth: int | None,
               kinds: Iterable[EdgeKind | str], reverse: bool) -> list[Reached]:
        found = self._walk(sid, starts, depth, kinds, reverse)
        for start in starts:
            found.pop(start, None)
        return self._reached(sid, found)

    def _walk(self, sid: int, starts: list[int], depth: int | None,
              kinds: Iterable[EdgeKind | str], reverse: bool) -> dict[int, int]:
        """Breadth first: node id -> fewest edges from any start (starts at 0)."""
        _check_depth(depth)
        kind_values = _kind_values(kinds)
        return walks.distances(
            lambda frontier: self._step(sid, frontier, kind_values, reverse), starts, depth)

    def _step(self, sid: int, frontier: Sequence[int], kinds: Sequence[str],
              reverse: bool) -> list[tuple[int, int]]:
        """Edges (from, to) leaving the frontier, in walk direction."""
        near, far = ("dst", "src") if reverse else ("src", "dst")
        marks = ", ".join("?" * len(kinds))
        return self._query(
            f"SELECT DISTINCT {near}, {far} FROM edges WHERE snapshot_id = ?"
            f" AND kind IN ({marks}) AND {self._in(near, 'bigint')}",
            (sid, *kinds, self._pack(list(frontier))))

    def _reached(self, sid: int, distance: dict[int, int]) -> list[Reached]:
        nodes = self._nodes_by_id(sid, list(distance))
        found = [Reached(nodes[key], value) for key, value in distance.items() if key in nodes]
        found.sort(key=lambda r: (r.distance, r.node.path, r.node.start_line, r.node.qualname))
        return found


# --- rows ------------------------------------------------------------------------------------

def snapshot_stats(graph: Graph, nodes: Sequence[Node]) -> dict:
    """What a snapshot records besides its nodes and edges (raises ValueError
    for a kind the model does not know)."""
    node_counts = Counter(node.kind for node in nodes)
    edge_counts = Counter(edge.kind for edge in graph.edges)
    return {
        "loc": graph.loc,
        "external": dict(graph.external),
        "skipped": [list(item) for item in graph.skipped],
        "nodes": {NodeKind(kind).value: count for kind, count in node_counts.items()},
        "edges": {EdgeKind(kind).value: count for kind, count in edge_counts.items()},
    }


def _check_fence(writer: Writer, repo: str, fence: int) -> None:
    """Raise the repository's token to `fence`, or refuse if it is already higher.
    The upsert locks the row until the transaction ends, so two writers are ordered."""
    _raise_fence(writer, repo, fence)
    held = writer.execute("SELECT token FROM fences WHERE repo = ?", (repo,))[0][0]
    if held > fence:
        raise FencedOut(f"{repo} was written under a newer lease ({held} > {fence}): "
                        "this job's lease is lost, its writes are refused")


def _raise_fence(writer: Writer, repo: str, fence: int) -> None:
    writer.execute(
        "INSERT INTO fences (repo, token) VALUES (?, ?) ON CONFLICT (repo)"
        " DO UPDATE SET token = excluded.token WHERE fences.token < excluded.token",
        (repo, fence))


def _delete_facts(writer: Writer, snapshot_id: int) -> None:
    for table in ("edges", "nodes", "sources", "documents", "postings"):
        writer.execute(f"DELETE FROM {table} WHERE snapshot_id = ?", (snapshot_id,))


# Kind -> its text, for members and plain strings alike (a str enum hashes as its value).
_NODE_KINDS = {kind.value: kind.value for kind in NodeKind}
_EDGE_KINDS = {kind.value: kind.value for kind in EdgeKind}


def _node_rows(snapshot_id: int, nodes: Sequence[Node]) -> list[tuple]:
    """Rows sorted by key, so that the primary key index fills in order."""
    rows = [(snapshot_id, n.id, _NODE_KINDS[n.kind], n.path, n.name, n.qualname,
             n.start_line, n.end_line, n.language, n.docstring) for n in nodes]
    rows.sort(key=_second)
    return rows


def _edge_rows(snapshot_id: int, edges: Sequence[Edge]) -> list[tuple]:
    """Rows sorted by source, so that the outgoing-edge index fills in order."""
    rows = [(snapshot_id, e.src, e.dst, _EDGE_KINDS[e.kind], e.line, e.weight,
             bool(e.type_only), e.candidates) for e in edges]
    rows.sort(key=_second)
    return rows


def _second(row: tuple) -> Any:
    return row[1]


def _node(row: tuple) -> Node:
    return Node(row[0], NodeKind(row[1]), row[2], row[3], row[4], row[5], row[6], row[7],
                row[8])


def _edge(row: tuple) -> Edge:
    return Edge(row[0], row[1], EdgeKind(row[2]), row[3], row[4], bool(row[5]), row[6])


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(text: str) -> str:
    """What SQLite's LOWER makes of `text`."""
    return text.translate(_ASCII_LOWER)


def _sid(snapshot: SnapshotRef) -> int:
    return snapshot.id if isinstance(snapshot, Snapshot) else int(snapshot)


def _kind_values(kinds: Iterable[EdgeKind | str]) -> list[str]:
    values = sorted({EdgeKind(kind).value for kind in kinds})
    if not values:
        raise ValueError("kinds must name at least one edge kind")
    return values


def _check_depth(depth: int | None) -> None:
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be None or at least 0, got {depth}")
