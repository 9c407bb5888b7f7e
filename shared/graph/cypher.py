"""Graph facts in a Cypher database (Neo4j 5; FalkorDB in tests): the statements.

Three layers. Pure functions here build every statement (text + parameters), so
both engines run the same Cypher; a session (`CypherSession`) executes one
statement as one transaction: cypher_neo4j.Neo4jSession (the official driver's
managed transactions, retried on transient errors) or
cypher_falkordb.FalkorDBSession (tests); cypher_store.CypherGraphStore drives them
with the semantics of shared/graph/store/base.py (same walks, same tie-breaks,
same answers on the same graph).

Model. (:Repository {url})-[:HAS_SNAPSHOT]->(:Snapshot {id, repo, commit,
taken_us, stats, written, ready, dropped}); each code node is (:Code:<Kind>
{snapshot, id, kind, path, ...}) keyed by (snapshot, id); edges are relationships
of their kind with an ordinal `n`, so repeated edges stay apart and a re-run batch
MERGEs onto itself. Labels and relationship types come only from LABELS and
REL_TYPES (Cypher cannot take them as parameters); every value is a parameter.

Writes. A snapshot is written as a new generation: Snapshot(written=false), nodes
and edges in UNWIND batches, then one statement flips it written (and ready) and
drops the earlier generation of the same commit; retention drops the oldest
beyond `keep_snapshots`; dropped generations' facts are deleted in batches. Every
fact read requires `ready` in the same statement, so a half-written snapshot is
never seen. One statement per transaction is all FalkorDB offers (a GRAPH.QUERY
is atomic; there is no multi-statement transaction), so the protocol asks no
more of Neo4j either. A rewrite of a commit gets a new snapshot id.

Cypher kept to what both engines accept (FalkorDB 4.16 / Neo4j 5):
- schema: Neo4j `CREATE CONSTRAINT name IF NOT EXISTS ... REQUIRE (..) IS
  UNIQUE` / `CREATE INDEX name IF NOT EXISTS`; FalkorDB has neither form (no
  IF NOT EXISTS, no names, constraints through GRAPH.CONSTRAINT on top of an
  exact-match index, built asynchronously): its session translates `Unique` and
  `Index` rules. NODE KEY is Neo4j Enterprise only: composite uniqueness is used.
- Neo4j refuses schema and data changes in one transaction: each rule runs alone.
- FalkorDB takes parameters as a `CYPHER name=literal` text prefix: no NUL in text.
- FalkorDB replies print doubles to ~15 digits: no float must round-trip (times
  are integer microseconds).
- FalkorDB pushes a WHERE below a preceding CREATE (`UNWIND [1,2] AS x CREATE ...
  WITH x WHERE x = 2` creates one node): statements read first, write last.
- FalkorDB matches `(a)-[:T]->(b)` once per pair of nodes when the relationship is
  not used (parallel edges fold): a statement that counts edges returns one.
- shortestPath: FalkorDB allows it only in WITH/RETURN, and neither engine
  fixes which of equal-length paths it returns: paths are walked level by level.
- Neo4j reads committed data: statements that decide on a repository's other
  snapshots first SET a property of its Repository node (the write lock).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Mapping, Protocol, Sequence

from shared.graph.model import Edge, EdgeKind, Node, NodeKind

LABELS: Mapping[NodeKind, str] = MappingProxyType({
    NodeKind.FILE: "File", NodeKind.CLASS: "Class", NodeKind.FUNCTION: "Function",
    NodeKind.METHOD: "Method"})
REL_TYPES: Mapping[EdgeKind, str] = MappingProxyType({
    EdgeKind.IMPORTS: "IMPORTS", EdgeKind.CONTAINS: "CONTAINS", EdgeKind.EXTENDS: "EXTENDS",
    EdgeKind.CALLS: "CALLS"})
BATCH = 1000  # rows per UNWIND statement
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_NODE_FIELDS = ("id", "kind", "path", "name", "qualname", "start_line", "end_line",
                "language", "docstring")
_RETURN_NODE = ", ".join(f"n.{name}" for name in _NODE_FIELDS)
_EDGE_FIELDS = ("line", "weight", "type_only", "candidates")
_READY = "MATCH (s:Snapshot {id: $sid}) WHERE s.ready = true "
_LOCK = "MATCH (r:Repository {url: $repo}) SET r.lock = $sid WITH r "
_SNAPSHOT_FIELDS = "s.id, s.repo, s.commit, s.taken_us, s.stats, s.ready"
_LIVE = "s.written = true AND s.dropped = false"


def label(kind: NodeKind | str) -> str:
    """The label of a node kind; ValueError for anything else."""
    return LABELS[NodeKind(kind)]


def rel_type(kind: EdgeKind | str) -> str:
    """The relationship type of an edge kind; ValueError for anything else."""
    return REL_TYPES[EdgeKind(kind)]


def rel_types(kinds: Iterable[EdgeKind | str]) -> str:
    """`A|B` for a walk over those kinds (sorted; at least one)."""
    types = sorted({rel_type(kind) for kind in kinds})
    if not types:
        raise ValueError("kinds must name at least one edge kind")
    return "|".join(types)


@dataclass(frozen=True)
class Statement:
    text: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """A schema rule on nodes of `label` over `properties` (Neo4j renders `cypher()`;
    cypher_falkordb translates)."""
    name: str
    label: str
    properties: tuple[str, ...]

    def __post_init__(self) -> None:
        if not all(map(_NAME.match, (self.name, self.label, *self.properties))):
            raise ValueError(f"not a plain name in {self}")

    def keys(self) -> str:
        return ", ".join(f"n.{p}" for p in self.properties)

    def cypher(self) -> str:
        raise NotImplementedError


class Unique(Rule):
    """Composite uniqueness (NODE KEY would also demand the properties: Enterprise only)."""

    def cypher(self) -> str:
        return (f"CREATE CONSTRAINT {self.name} IF NOT EXISTS FOR (n:{self.label})"
                f" REQUIRE ({self.keys()}) IS UNIQUE")


class Index(Rule):
    """A lookup index."""

    def cypher(self) -> str:
        return f"CREATE INDEX {self.name} IF NOT EXISTS FOR (n:{self.label}) ON ({self.keys()})"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    rules: tuple[Rule, ...]


# Append-only, as shared/graph/store/schema.py: to change the schema, add a step.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "keys and lookups", (
        Unique("code_key", "Code", ("snapshot", "id")),
        Index("code_snapshot", "Code", ("snapshot",)),
        Index("code_path", "Code", ("snapshot", "path")),
        Unique("snapshot_key", "Snapshot", ("id",)),
        Index("snapshot_repo", "Snapshot", ("repo",)),
        Unique("repository_key", "Repository", ("url",)),
        Unique("sequence_key", "Sequence", ("name",)),
        Unique("migration_key", "Migration", ("version",)),
    )),
)


class CypherSession(Protocol):
    """Runs one statement as one transaction; rows as tuples."""

    def read(self, statement: Statement) -> list[tuple]: ...

    def write(self, statement: Statement) -> list[tuple]: ...

    def apply(self, rule: Rule) -> None:
        """Create the constraint or index unless it exists."""

    def close(self) -> None: ...


# --- statements ------------------------------------------------------------------------------

def applied_migrations() -> Statement:
    return Statement("MATCH (m:Migration) RETURN m.version ORDER BY m.version")


def record_migration(migration: Migration, now_us: int) -> Statement:
    return Statement("MERGE (m:Migration {version: $version})"
                     " ON CREATE SET m.name = $name, m.applied_us = $now",
                     {"version": migration.version, "name": migration.name, "now": now_us})


def next_snapshot_id() -> Statement:
    # Lock the counter (SET) before reading it: Neo4j would otherwise lose increments.
    return Statement("MERGE (q:Sequence {name: 'snapshot'}) ON CREATE SET q.value = 0"
                     " SET q.lock = true WITH q SET q.value = q.value + 1 REMOVE q.lock"
                     " RETURN q.value")


def begin_snapshot(sid: int, repo: str, commit: str, now_us: int) -> Statement:
    # MERGE throughout: a transaction retried after its commit was lost changes nothing.
    return Statement(
        "MERGE (s:Snapshot {id: $sid}) ON CREATE SET s.repo = $repo, s.commit = $commit,"
        " s.taken_us = $now, s.stats = '{}', s.written = false, s.ready = false,"
        " s.dropped = false MERGE (r:Repository {url: $repo}) MERGE (r)-[:HAS_SNAPSHOT]->(s)",
        {"sid": sid, "repo": repo, "commit": commit, "now": now_us})


def node_statements(sid: int, nodes: Sequence[Node], batch: int = BATCH) -> list[Statement]:
    """MERGE the nodes by key, one statement per kind and batch."""
    found = []
    for kind, label_ in LABELS.items():
        rows = [dict(zip(_NODE_FIELDS, (n.id, kind.value, n.path, n.name, n.qualname,
                                        n.start_line, n.end_line, n.language, n.docstring)))
                for n in nodes if NodeKind(n.kind) is kind]
        sets = ", ".join(f"n.{name} = row.{name}" for name in _NODE_FIELDS[1:])
        text = (f"UNWIND $rows AS row MERGE (n:Code:{label_} {{snapshot: $sid, id: row.id}})"
                f" SET {sets}")
        found += [Statement(text, {"sid": sid, "rows": rows[i:i + batch]})
                  for i in range(0, len(rows), batch)]
    return found


def edge_statements(sid: int, edges: Sequence[Edge], batch: int = BATCH) -> list[Statement]:
    """MERGE the edges by (ends, kind, ordinal). An end the graph has no node for
    becomes a bare :Code node (no kind): walks pass through it, answers leave it
    out, as the SQL stores do with such edges."""
    found = []
    for kind, type_ in REL_TYPES.items():
        rows = [{"n": i, "src": e.src, "dst": e.dst, "line": e.line, "weight": e.weight,
                 "type_only": bool(e.type_only), "candidates": e.candidates}
                for i, e in enumerate(edges) if EdgeKind(e.kind) is kind]
        sets = ", ".join(f"e.{name} = row.{name}" for name in _EDGE_FIELDS)
        text = ("UNWIND $rows AS row MERGE (a:Code {snapshot: $sid, id: row.src})"
                " MERGE (b:Code {snapshot: $sid, id: row.dst})"
                f" MERGE (a)-[e:{type_} {{n: row.n}}]->(b) SET {sets}")
        found += [Statement(text, {"sid": sid, "rows": rows[i:i + batch]})
                  for i in range(0, len(rows), batch)]
    return found


def finish_snapshot(sid: int, repo: str, ready: bool, stats: dict, now_us: int) -> Statement:
    """Make the generation the commit's snapshot in one statement: written, ready if
    asked or if the one it replaces was; earlier generations of the commit (written,
    or unfinished and older) dropped. No row: a newer generation dropped this one."""
    return Statement(
        _LOCK + "MATCH (r)-[:HAS_SNAPSHOT]->(s:Snapshot {id: $sid}) WHERE s.dropped = false"
        " OPTIONAL MATCH (r)-[:HAS_SNAPSHOT]->(o:Snapshot {commit: s.commit})"
        " WHERE o.id <> s.id AND o.dropped = false AND (o.written = true OR o.id < s.id)"
        " WITH s, collect(o) AS olds"
        " SET s.written = true, s.taken_us = $now, s.stats = $stats,"
        " s.ready = (s.ready OR $ready OR any(o IN olds WHERE o.ready = true))"
        " FOREACH (o IN olds | SET o.dropped = true, o.ready = false)"
        " RETURN s.ready",
        {"sid": sid, "repo": repo, "ready": ready, "stats": json.dumps(stats), "now": now_us})


def retain(sid: int, repo: str, keep: int) -> Statement:
    return Statement(
        _LOCK + "MATCH (r)-[:HAS_SNAPSHOT]->(s:Snapshot) WHERE " + _LIVE +
        " WITH s ORDER BY s.taken_us DESC, s.id DESC SKIP $keep"
        " SET s.dropped = true, s.ready = false RETURN s.id",
        {"sid": sid, "repo": repo, "keep": keep})


def drop_snapshot(sid: int) -> Statement:
    return Statement("MATCH (s:Snapshot {id: $sid}) SET s.dropped = true, s.ready = false",
                     {"sid": sid})


def dropped_snapshots() -> Statement:
    return Statement("MATCH (s:Snapshot) WHERE s.dropped = true RETURN s.id ORDER BY s.id")


def delete_facts(sid: int, batch: int = BATCH) -> Statement:
    return Statement("MATCH (n:Code {snapshot: $sid}) WITH n LIMIT $batch DETACH DELETE n"
                     " RETURN count(*)", {"sid": sid, "batch": batch})


def delete_snapshot_node(sid: int) -> Statement:
    return Statement("MATCH (s:Snapshot {id: $sid}) WHERE s.dropped = true DETACH DELETE s",
                     {"sid": sid})


def mark_ready(sid: int) -> Statement:
    return Statement("MATCH (s:Snapshot {id: $sid}) WHERE " + _LIVE + " SET s.ready = true",
                     {"sid": sid})


def list_snapshots(repo: str, commit: str | None = None) -> Statement:
    where = " AND s.commit = $commit" if commit is not None else ""
    return Statement(f"MATCH (s:Snapshot {{repo: $repo}}) WHERE {_LIVE}{where}"
                     f" RETURN {_SNAPSHOT_FIELDS} ORDER BY s.taken_us DESC, s.id DESC",
                     {"repo": repo, "commit": commit})


def get_snapshot(sid: int) -> Statement:
    return Statement(_READY + f"RETURN {_SNAPSHOT_FIELDS}", {"sid": sid})


def list_repositories() -> Statement:
    return Statement(f"MATCH (s:Snapshot) WHERE {_LIVE} RETURN DISTINCT s.repo ORDER BY s.repo")


def nodes_by_id(sid: int, ids: Sequence[int]) -> Statement:
    return Statement(_READY + "UNWIND $ids AS key MATCH (n:Code {snapshot: $sid, id: key})"
                     f" WHERE n.kind IS NOT NULL RETURN {_RETURN_NODE}",
                     {"sid": sid, "ids": list(ids)})


def all_nodes(sid: int) -> Statement:
    return Statement(_READY + "MATCH (n:Code {snapshot: $sid}) WHERE n.kind IS NOT NULL"
                     f" RETURN {_RETURN_NODE}", {"sid": sid})


def all_edges(sid: int) -> Statement:
    keys = ", ".join(f"e.{name}" for name in _EDGE_FIELDS)
    return Statement(_READY + "MATCH (a:Code {snapshot: $sid})-[e]->(b:Code)"
                     f" RETURN a.id, b.id, type(e), {keys} ORDER BY e.n", {"sid": sid})


def file_nodes(sid: int, paths: Sequence[str] | None = None) -> Statement:
    where = " WHERE n.path IN $paths" if paths is not None else ""
    return Statement(_READY + f"MATCH (n:Code:{LABELS[NodeKind.FILE]} {{snapshot: $sid}})"
                     f"{where} RETURN {_RETURN_NODE} ORDER BY n.path",
                     {"sid": sid, "paths": None if paths is None else list(paths)})


def file_import_pairs(sid: int) -> Statement:
    file, imports = LABELS[NodeKind.FILE], REL_TYPES[EdgeKind.IMPORTS]
    # `e.n` is returned for FalkorDB: a relationship it is not asked for matches once
    # per pair of nodes, however many parallel edges join them.
    return Statement(_READY + f"MATCH (a:Code:{file} {{snapshot: $sid}})-[e:{imports}]->"
                     f"(b:Code:{file}) RETURN a.path, b.path, e.n", {"sid": sid})


def step(sid: int, frontier: Sequence[int], kinds: Iterable[EdgeKind | str],
         reverse: bool) -> Statement:
    """Edges (from, to) leaving the frontier in walk direction, once per pair."""
    left, right = ("<-", "-") if reverse else ("-", "->")
    return Statement(_READY + "UNWIND $frontier AS key MATCH (a:Code {snapshot: $sid, id: key})"
                     f"{left}[:{rel_types(kinds)}]{right}(b:Code) RETURN DISTINCT a.id, b.id",
                     {"sid": sid, "frontier": list(frontier)})
