"""The graph facts store contract, on a real PostgreSQL and on SQLite."""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
import traceback
from collections import deque
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.graph.model import Edge, EdgeKind, Graph, Node, NodeKind, node_id
from shared.graph.store.schema import MIGRATIONS
from shared.graph.store import (
    FencedOut,
    GraphStore,
    GraphStoreError,
    PostgresGraphStore,
    SqliteGraphStore,
    open_graph_store,
)
from shared.settings import Settings
from tests.servers import PostgresServer, free_port
from tests.test_sqlite import at_once

# Every migration, numbered 1, 2, ... without gaps (steps are append-only)
ALL_VERSIONS = [migration.version for migration in MIGRATIONS]
assert ALL_VERSIONS == list(range(1, len(ALL_VERSIONS) + 1))
REPO = "https://github.com/example/app"
GRAPH_BACKENDS = ["sqlite", "postgres"]


# --- fixtures --------------------------------------------------------------------------------

@pytest.fixture(params=GRAPH_BACKENDS)
def graph_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def open_store(graph_backend: str, tmp_path: Path, request: pytest.FixtureRequest):
    """Factory of handles on one fresh database of the backend (each call: a new handle)."""
    if graph_backend == "postgres":
        url = request.getfixturevalue("postgres_url")
        make = lambda **options: PostgresGraphStore(url, **options)  # noqa: E731
    else:
        make = lambda **options: SqliteGraphStore(tmp_path / "graph.db", **options)  # noqa: E731
    yield from closed_after(make)


def closed_after(make):
    """For a fixture to yield from: a factory of what `make` opens, each closed at the
    test's end."""
    opened = []

    def factory(**options):
        handle = make(**options)
        opened.append(handle)
        return handle

    yield factory
    for handle in opened:
        handle.close()


@pytest.fixture
def store(open_store) -> GraphStore:
    return open_store()


# --- graphs ----------------------------------------------------------------------------------

def file_node(path: str, lines: int = 100, repo: str = REPO) -> Node:
    return Node(node_id(repo, path), NodeKind.FILE, path, path.rsplit("/", 1)[-1], "", 1,
                lines, "python")


def symbol(path: str, qualname: str, start: int, end: int,
           kind: NodeKind = NodeKind.FUNCTION, docstring: str | None = None) -> Node:
    return Node(node_id(REPO, path, qualname), kind, path, qualname.rsplit(".", 1)[-1],
                qualname, start, end, "python", docstring)


def fid(path: str) -> int:
    return node_id(REPO, path)


def import_graph(imports: list[tuple[str, str]], files: list[str] = (),
                 commit: str = "c1", repo: str = REPO) -> Graph:
    """Files only, importing one another."""
    paths = sorted({p for pair in imports for p in pair} | set(files))
    return Graph(repo=repo, commit=commit,
                 nodes=[file_node(p, repo=repo) for p in paths],
                 edges=[Edge(node_id(repo, a), node_id(repo, b), EdgeKind.IMPORTS, line=1)
                        for a, b in imports])


def app_graph(commit: str = "c1") -> Graph:
    """A small program: two files, a class with methods, calls, inheritance."""
    models, views = file_node("app/models.py", 40), file_node("app/views.py", 30)
    base = symbol("app/models.py", "Base", 3, 12, NodeKind.CLASS, "The root.")
    save = symbol("app/models.py", "Base.save", 5, 8, NodeKind.METHOD)
    user = symbol("app/models.py", "User", 15, 40, NodeKind.CLASS, "Ünïcode — docstring")
    name = symbol("app/models.py", "User.name", 17, 19, NodeKind.METHOD)
    show = symbol("app/views.py", "show", 4, 30)
    inner = symbol("app/views.py", "show.inner", 6, 9)
    edges = [
        Edge(views.id, models.id, EdgeKind.IMPORTS, line=1, weight=2),
        Edge(models.id, base.id, EdgeKind.CONTAINS),
        Edge(base.id, save.id, EdgeKind.CONTAINS),
        Edge(models.id, user.id, EdgeKind.CONTAINS),
        Edge(user.id, name.id, EdgeKind.CONTAINS),
        Edge(views.id, show.id, EdgeKind.CONTAINS),
        Edge(show.id, inner.id, EdgeKind.CONTAINS),
        Edge(user.id, base.id, EdgeKind.EXTENDS, line=15),
        Edge(show.id, name.id, EdgeKind.CALLS, line=7, weight=3, candidates=2),
        Edge(inner.id, save.id, EdgeKind.CALLS, line=8, type_only=True),
    ]
    return Graph(repo=REPO, commit=commit,
                 nodes=[models, base, save, user, name, views, show, inner], edges=edges,
                 external={"django": 4, "requests": 1},
                 skipped=[("vendor/big.min.js", "too large"), ("bad.py", "not UTF-8")],
                 loc=70)


def edge_key(edge: Edge) -> tuple:
    return (edge.src, edge.dst, edge.kind.value, edge.line, edge.weight, edge.type_only,
            edge.candidates)


def ids(reached) -> dict[int, int]:
    return {r.node.id: r.distance for r in reached}


# --- writing and reading back ----------------------------------------------------------------

def test_round_trip_keeps_every_fact(store):
    graph = app_graph()
    snapshot = store.write_snapshot(graph)
    assert (snapshot.repo, snapshot.commit) == (REPO, "c1")
    assert snapshot.stats["nodes"] == {"file": 2, "class": 2, "method": 2, "function": 2}
    assert snapshot.stats["edges"] == {"IMPORTS": 1, "CONTAINS": 6, "EXTENDS": 1, "CALLS": 2}

    loaded = store.load_graph(snapshot)
    assert (loaded.repo, loaded.commit, loaded.loc) == (REPO, "c1", 70)
    assert loaded.external == {"django": 4, "requests": 1}
    assert loaded.skipped == [("vendor/big.min.js", "too large"), ("bad.py", "not UTF-8")]
    assert sorted(loaded.nodes, key=lambda n: n.id) == sorted(graph.nodes, key=lambda n: n.id)
    assert sorted(map(edge_key, loaded.edges)) == sorted(map(edge_key, graph.edges))
    assert all(isinstance(e.type_only, bool) for e in loaded.edges)
    assert store.latest_snapshot(REPO) == snapshot
    assert store.find_snapshot(REPO, "c1") == snapshot
    assert store.latest_snapshot("https://github.com/example/other") is None


def test_rewriting_a_commit_replaces_its_snapshot(store):
    first = store.write_snapshot(import_graph([("a.py", "b.py"), ("b.py", "c.py")]))
    second_graph = import_graph([("a.py", "d.py")])
    second = store.write_snapshot(second_graph)
    again = store.write_snapshot(second_graph)

    assert first.id == second.id == again.id
    assert [s.commit for s in store.snapshots(REPO)] == ["c1"]
    loaded = store.load_graph(again)
    assert {n.path for n in loaded.nodes} == {"a.py", "d.py"}
    assert [(e.src, e.dst) for e in loaded.edges] == [(fid("a.py"), fid("d.py"))]
    assert store.node(again, fid("b.py")) is None


def test_a_write_that_fails_half_way_leaves_the_previous_snapshot(store):
    good = app_graph()
    before = store.write_snapshot(good)
    # Valid nodes and edges, then an id no BIGINT holds: the database refuses
    # that row after the old facts were deleted and most new rows written.
    bad = import_graph([(f"m{i}.py", f"m{i + 1}.py") for i in range(500)])
    bad.edges.append(Edge(2**70, fid("m0.py"), EdgeKind.IMPORTS))

    with pytest.raises(GraphStoreError):
        store.write_snapshot(bad)

    assert store.snapshots(REPO) == [before]
    assert store.latest_snapshot(REPO).stats == before.stats
    loaded = store.load_graph(before)
    assert sorted(map(edge_key, loaded.edges)) == sorted(map(edge_key, good.edges))
    assert len(loaded.nodes) == len(good.nodes)
    assert store.node(before, fid("m0.py")) is None
    # A failed first write of another commit leaves no snapshot behind either.
    bad.commit = "c2"
    with pytest.raises(GraphStoreError):
        store.write_snapshot(bad)
    assert [s.commit for s in store.snapshots(REPO)] == ["c1"]
    # The store is still usable after the failures.
    assert store.write_snapshot(import_graph([("x.py", "y.py")], commit="c3")).commit == "c3"


def test_unknown_kinds_are_refused_before_writing(store):
    graph = app_graph()
    graph.nodes[0].kind = "module"
    with pytest.raises(GraphStoreError, match="module"):
        store.write_snapshot(graph)
    assert store.snapshots(REPO) == []


def test_repeated_node_ids_keep_the_first(store):
    graph = import_graph([("a.py", "b.py")])
    twin = file_node("a.py", lines=999)
    graph.nodes.append(twin)
    snapshot = store.write_snapshot(graph)
    assert store.node(snapshot, fid("a.py")).end_line == 100
    assert snapshot.stats["nodes"] == {"file": 2}


def test_snapshots_of_repos_and_commits_do_not_mix(store):
    one = store.write_snapshot(import_graph([("a.py", "b.py")], commit="c1"))
    two = store.write_snapshot(import_graph([("b.py", "a.py")], commit="c2"))
    other_repo = "https://github.com/example/lib"
    other = store.write_snapshot(import_graph([("a.py", "b.py")], repo=other_repo))

    assert ids(store.dependencies(one, fid("a.py"))) == {fid("b.py"): 1}
    assert store.dependencies(two, fid("a.py")) == []
    assert ids(store.dependencies(two, fid("b.py"))) == {fid("a.py"): 1}
    assert [s.commit for s in store.snapshots(other_repo)] == ["c1"]
    assert store.latest_snapshot(other_repo) == other
    assert store.node(other, fid("a.py")) is None  # ids derive from the repository


# --- retention -------------------------------------------------------------------------------

def test_each_repository_keeps_its_newest_snapshots(open_store):
    ticks = iter(range(1_000, 2_000))
    store = open_store(keep_snapshots=2, clock=lambda: float(next(ticks)))
    written = {c: store.write_snapshot(import_graph([("a.py", "b.py")], commit=c))
               for c in ("c1", "c2", "c3")}
    other_repo = "https://github.com/example/lib"
    store.write_snapshot(import_graph([("a.py", "b.py")], repo=other_repo))

    assert [s.commit for s in store.snapshots(REPO)] == ["c3", "c2"]
    assert store.node(written["c1"], fid("a.py")) is None  # its facts went with it
    with pytest.raises(GraphStoreError):
        store.load_graph(written["c1"])
    # Re-ingesting c2 makes it the newest; c3 stays, the other repo is untouched.
    store.write_snapshot(import_graph([("a.py", "b.py")], commit="c2"))
    assert [s.commit for s in store.snapshots(REPO)] == ["c2", "c3"]
    assert store.latest_snapshot(REPO).commit == "c2"
    # Age is the time of the last write, not of the first: c3 is now the oldest.
    store.write_snapshot(import_graph([("a.py", "b.py")], commit="c4"))
    assert [s.commit for s in store.snapshots(REPO)] == ["c4", "c2"]
    assert len(store.snapshots(other_repo)) == 1


# --- nodes -----------------------------------------------------------------------------------

def test_node_and_nodes_in_file(store):
    snapshot = store.write_snapshot(app_graph())
    user = store.node(snapshot, node_id(REPO, "app/models.py", "User"))
    assert (user.kind, user.qualname, user.start_line, user.end_line) == (
        NodeKind.CLASS, "User", 15, 40)
    assert user.docstring == "Ünïcode — docstring"
    assert store.node(snapshot, 12345) is None
    in_file = [n.qualname for n in store.nodes_in_file(snapshot, "app/models.py")]
    assert in_file == ["", "Base", "Base.save", "User", "User.name"]
    assert store.nodes_in_file(snapshot, "missing.py") == []


@pytest.mark.parametrize("line, expected", [
    (5, "Base.save"), (8, "Base.save"), (4, "Base"), (12, "Base"), (13, ""), (17, "User.name"),
    (20, "User"), (1, ""), (500, ""),
])
def test_node_at_line_is_the_innermost_symbol(store, line, expected):
    snapshot = store.write_snapshot(app_graph())
    assert store.node_at_line(snapshot, "app/models.py", line).qualname == expected


def test_node_at_line_with_nesting_and_unknown_files(store):
    snapshot = store.write_snapshot(app_graph())
    assert store.node_at_line(snapshot, "app/views.py", 7).qualname == "show.inner"
    assert store.node_at_line(snapshot, "app/views.py", 10).qualname == "show"
    assert store.node_at_line(snapshot, "nowhere.py", 3) is None


def test_nodes_named_exactly_or_ignoring_case(store):
    snapshot = store.write_snapshot(app_graph())
    named = lambda *names, **options: [  # noqa: E731
        n.qualname for n in store.nodes_named(snapshot, names, **options)]
    assert named("User") == ["User"]
    assert named("user") == [] and named("user", fold_case=True) == ["User"]
    assert named("save") == named("Base.save") == ["Base.save"]  # own or qualified name
    assert named("BASE.SAVE", "show.inner", fold_case=True) == ["Base.save", "show.inner"]
    assert named("models.py") == named() == []  # files are not symbols


def test_nodes_named_is_an_index_search(store, graph_backend, request):
    snapshot = store.write_snapshot(app_graph())
    statements = []
    query = store._query
    store._query = lambda sql, params=(): statements.append((sql, params)) or query(sql, params)
    store.nodes_named(snapshot, ["User"], fold_case=True)
    (sql, params), = statements
    if graph_backend == "sqlite":
        plan = " ".join(row[3] for row in query("EXPLAIN QUERY PLAN " + sql, params))
        assert "USING INDEX nodes_by_name" in plan and "USING INDEX nodes_by_qualname" in plan
        assert "SCAN nodes" not in plan, plan
    else:  # a few rows: only with sequential scans off does the plan show what can be used
        with psycopg.connect(request.getfixturevalue("postgres_url")) as conn:
            conn.execute("SET enable_seqscan = off")
            plan = " ".join(row[0] for row in conn.execute(
                "EXPLAIN " + sql.replace("?", "%s"), params))
        assert "nodes_by_name" in plan and "nodes_by_qualname" in plan, plan


# --- walks -----------------------------------------------------------------------------------

CHAIN = [("a.py", "b.py"), ("b.py", "c.py"), ("c.py", "d.py"), ("d.py", "a.py"),
         ("a.py", "e.py")]


def test_dependencies_by_depth_through_a_cycle(store):
    snapshot = store.write_snapshot(import_graph(CHAIN, files=["lonely.py"]))
    a, b, c, d, e = map(fid, ["a.py", "b.py", "c.py", "d.py", "e.py"])
    assert ids(store.dependencies(snapshot, a)) == {b: 1, e: 1}
    assert ids(store.dependencies(snapshot, a, depth=2)) == {b: 1, e: 1, c: 2}
    assert ids(store.dependencies(snapshot, a, depth=None)) == {b: 1, e: 1, c: 2, d: 3}
    assert ids(store.dependencies(snapshot, b, depth=50)) == {c: 1, d: 2, a: 3, e: 4}
    assert store.dependencies(snapshot, a, depth=0) == []
    assert store.dependencies(snapshot, fid("lonely.py"), depth=None) == []
    reached = store.dependencies(snapshot, a, depth=None)
    assert [r.distance for r in reached] == sorted(r.distance for r in reached)
    with pytest.raises(ValueError):
        store.dependencies(snapshot, a, depth=-1)


def test_dependents_by_depth_through_a_cycle(store):
    snapshot = store.write_snapshot(import_graph(CHAIN))
    a, b, c, d = map(fid, ["a.py", "b.py", "c.py", "d.py"])
    assert ids(store.dependents(snapshot, a)) == {d: 1}
    assert ids(store.dependents(snapshot, a, depth=None)) == {d: 1, c: 2, b: 3}
    assert ids(store.dependents(snapshot, fid("e.py"), depth=2)) == {a: 1, d: 2}


def test_walks_follow_the_chosen_edge_kinds(store):
    snapshot = store.write_snapshot(app_graph())
    show = node_id(REPO, "app/views.py", "show")
    inner = node_id(REPO, "app/views.py", "show.inner")
    name = node_id(REPO, "app/models.py", "User.name")
    save = node_id(REPO, "app/models.py", "Base.save")
    user = node_id(REPO, "app/models.py", "User")
    base = node_id(REPO, "app/models.py", "Base")
    # Containment is not dependence: `show` calls name, its inner function calls save.
    assert ids(store.dependencies(snapshot, show, depth=None)) == {name: 1}
    assert ids(store.dependencies(snapshot, show, kinds=[EdgeKind.CONTAINS])) == {inner: 1}
    assert ids(store.dependencies(snapshot, show, depth=None,
                                  kinds=["CONTAINS", "CALLS"])) == {inner: 1, name: 1, save: 2}
    assert ids(store.dependents(snapshot, base)) == {user: 1}
    assert store.dependents(snapshot, base, kinds=[EdgeKind.CALLS]) == []
    with pytest.raises(ValueError):
        store.dependencies(snapshot, show, kinds=["USES"])


def test_shortest_path(store):
    edges = CHAIN + [("b.py", "x.py"), ("x.py", "y.py"), ("y.py", "d.py")]
    snapshot = store.write_snapshot(import_graph(edges, files=["lonely.py"]))

    def path(a, b, **options):
        found = store.shortest_path(snapshot, fid(a), fid(b), **options)
        return None if found is None else [n.path for n in found]

    assert path("a.py", "d.py") == ["a.py", "b.py", "c.py", "d.py"]
    assert path("d.py", "c.py") == ["d.py", "a.py", "b.py", "c.py"]
    assert path("x.py", "e.py") == ["x.py", "y.py", "d.py", "a.py", "e.py"]
    assert path("a.py", "a.py") == ["a.py"]
    assert path("e.py", "a.py") is None  # edges are directed
    assert path("a.py", "lonely.py") is None
    assert path("a.py", "d.py", max_depth=2) is None
    assert path("a.py", "d.py", max_depth=3) == ["a.py", "b.py", "c.py", "d.py"]
    assert path("a.py", "d.py", kinds=[EdgeKind.CALLS]) is None
    assert store.shortest_path(snapshot, 1, 2) is None


def test_impact_of_changed_files(store):
    imports = [("api.py", "service.py"), ("service.py", "db.py"), ("cli.py", "service.py"),
               ("db.py", "pool.py"), ("pool.py", "db.py"), ("tests.py", "api.py")]
    graph = import_graph(imports, files=["docs.py"])
    # A call across files without an import does not carry impact.
    graph.edges.append(Edge(fid("docs.py"), fid("db.py"), EdgeKind.CALLS))
    snapshot = store.write_snapshot(graph)

    def impact(paths, **options):
        return {r.node.path: r.distance for r in store.impact(snapshot, paths, **options)}

    assert impact(["db.py"]) == {"db.py": 0, "pool.py": 1, "service.py": 1, "api.py": 2,
                                 "cli.py": 2, "tests.py": 3}
    assert impact(["db.py"], depth=1) == {"db.py": 0, "pool.py": 1, "service.py": 1}
    assert impact(["api.py", "cli.py", "new_file.py"]) == {"api.py": 0, "cli.py": 0,
                                                            "tests.py": 1}
    assert impact(["service.py", "api.py"]) == {"service.py": 0, "api.py": 0, "cli.py": 1,
                                                "tests.py": 1}
    assert impact([]) == {}
    assert impact(["gone.py"]) == {}
    assert all(r.node.kind is NodeKind.FILE for r in store.impact(snapshot, ["db.py"]))


# --- schema ----------------------------------------------------------------------------------

def test_migrations_are_applied_once(open_store):
    first = open_store()
    snapshot = first.write_snapshot(import_graph([("a.py", "b.py")]))
    second = open_store()
    assert first.schema_versions() == second.schema_versions() == ALL_VERSIONS
    assert second.latest_snapshot(REPO) == snapshot


def test_concurrent_opens_of_a_new_database(open_store):
    opened, errors = at_once(open_store, 4)
    assert errors == []
    assert [store.schema_versions() for store in opened] == [ALL_VERSIONS] * 4


def write_chains_at_once(stores) -> list[Exception]:
    """Each store writes three 50-file chains of one repository, all stores at once;
    what failed."""
    errors = []

    def write(i: int, store) -> None:
        try:
            for round_ in range(3):
                chain = [(f"f{k}.py", f"f{k + 1}.py") for k in range(50)]
                store.write_snapshot(import_graph(chain, commit=f"c{i}-{round_}"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=item) for item in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_writes_of_one_repository(open_store):
    stores = [open_store(keep_snapshots=2) for _ in range(4)]
    errors = write_chains_at_once(stores)
    assert errors == []
    kept = stores[0].snapshots(REPO)
    assert len(kept) == 2
    assert all(len(stores[0].load_graph(s).edges) == 50 for s in kept)


# --- configuration and connections -----------------------------------------------------------

def test_open_graph_store_follows_the_settings(tmp_path, request):
    with open_graph_store(Settings(data_dir=tmp_path / "data")) as store:
        assert isinstance(store, SqliteGraphStore)
        assert store.path == tmp_path / "data" / "graph.db"
        assert store.path.exists()
    url = request.getfixturevalue("postgres_url")
    with open_graph_store(Settings(database_url=url)) as store:
        assert isinstance(store, PostgresGraphStore)
        assert store.schema_versions() == ALL_VERSIONS


def test_postgres_reconnects_after_the_connection_drops(postgres_url):
    store = PostgresGraphStore(postgres_url)
    try:
        snapshot = store.write_snapshot(import_graph([("a.py", "b.py")]))

        def drop_store_sessions() -> int:
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                return len(admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchall())

        assert drop_store_sessions() == 1
        assert ids(store.dependencies(snapshot, fid("a.py"))) == {fid("b.py"): 1}
        assert drop_store_sessions() == 1
        again = store.write_snapshot(import_graph([("a.py", "c.py")]))
        assert ids(store.dependencies(again, fid("a.py"))) == {fid("c.py"): 1}
    finally:
        store.close()


@pytest.mark.parametrize("password", [
    "s3cret-pa%24%24",  # refused connection
    "s3cret-pa%zz",  # libpq quotes a badly encoded password in its error
])
def test_postgres_errors_never_show_the_password(password):
    url = f"postgresql://neo:{password}@127.0.0.1:{free_port()}/graph"
    with pytest.raises(GraphStoreError) as caught:
        PostgresGraphStore(url, connect_timeout=1, attempts=2)
    text = "".join(traceback.format_exception(caught.value))
    assert "PostgreSQL graph store" in text
    assert "s3cret" not in text and "pa$$" not in text


def test_postgres_server_is_removed_when_stopped():
    server = PostgresServer()
    folder = Path(server.folder)
    with psycopg.connect(server.url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
    server.stop()
    assert not folder.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.url, connect_timeout=2)


# --- scale -----------------------------------------------------------------------------------

def big_graph() -> tuple[Graph, list[Node], list[Node]]:
    """1,000 files of 9 functions, 5,000 imports and 45,000 calls: (graph, files,
    functions)."""
    rng = random.Random(7)
    files = [file_node(f"pkg/m{i}.py", 200) for i in range(1_000)]
    functions = [symbol(f.path, f"fn{j}", 10 * j + 1, 10 * j + 9) for f in files
                 for j in range(9)]
    edges = [Edge(f.id, rng.choice(files).id, EdgeKind.IMPORTS) for f in files for _ in range(5)]
    edges += [Edge(rng.choice(functions).id, rng.choice(functions).id, EdgeKind.CALLS)
              for _ in range(45_000)]
    return Graph(repo=REPO, commit="big", nodes=files + functions, edges=edges), files, functions


@dataclass
class BigWalk:
    """big_graph written to a store and walked from its first function, timed."""
    graph: Graph
    files: list[Node]
    snapshot: object
    everything: list  # the first function's dependencies, at any depth
    impact: list  # of the first file
    path: list  # to the farthest dependency
    wrote: float  # seconds
    queried: float

    @classmethod
    def of(cls, store) -> "BigWalk":
        graph, files, functions = big_graph()
        started = time.perf_counter()
        snapshot = store.write_snapshot(graph)
        wrote = time.perf_counter() - started
        started = time.perf_counter()
        everything = store.dependencies(snapshot, functions[0].id, depth=None)
        impact = store.impact(snapshot, [files[0].path])
        path = store.shortest_path(snapshot, functions[0].id, everything[-1].node.id)
        return cls(graph, files, snapshot, everything, impact, path, wrote,
                   time.perf_counter() - started)

    def said(self, name: str) -> str:
        return (f"\n{name}: wrote 10K nodes + 50K edges in {self.wrote:.2f} s; walk of "
                f"{len(self.everything)} + impact of {len(self.impact)} + path in "
                f"{self.queried:.2f} s")


def test_a_graph_of_fifty_thousand_edges(store, graph_backend):
    walk = BigWalk.of(store)
    started = time.perf_counter()
    innermost = store.node_at_line(walk.snapshot, walk.files[3].path, 25)
    queried = walk.queried + time.perf_counter() - started
    print(walk.said(graph_backend))

    assert len(walk.everything) > 5_000  # random calls reach most functions
    assert len(walk.path) == walk.everything[-1].distance + 1
    assert innermost.qualname == "fn2"
    assert walk.wrote < 30 and queried < 15


# --- properties ------------------------------------------------------------------------------

def bfs_distances(edges: list[tuple[int, int]], start: int) -> dict[int, int]:
    adjacency: dict[int, list[int]] = {}
    for a, b in edges:
        adjacency.setdefault(a, []).append(b)
    distance = {start: 0}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        for there in adjacency.get(here, []):
            if there not in distance:
                distance[there] = distance[here] + 1
                queue.append(there)
    return distance


small_graphs = st.integers(2, 12).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=30)))


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graph=small_graphs, start=st.integers(0, 11))
def test_walks_and_paths_agree_with_breadth_first_search(store, graph, start):
    # One store for all examples: each example replaces the same snapshot.
    count, pairs = graph
    start %= count
    files = [file_node(f"f{i}.py") for i in range(count)]
    edges = [Edge(files[a].id, files[b].id, EdgeKind.IMPORTS) for a, b in pairs]
    snapshot = store.write_snapshot(Graph(repo=REPO, commit="prop", nodes=files, edges=edges))

    expected = bfs_distances(pairs, start)
    walked = ids(store.dependencies(snapshot, files[start].id, depth=None))
    assert walked == {files[i].id: d for i, d in expected.items() if i != start}
    for target in range(count):
        found = store.shortest_path(snapshot, files[start].id, files[target].id)
        if target not in expected:
            assert found is None
            continue
        assert len(found) == expected[target] + 1
        steps = {(files[a].id, files[b].id) for a, b in pairs}
        assert all((x.id, y.id) in steps for x, y in zip(found, found[1:]))


# --- fencing: a lost lease's late writes -----------------------------------------------------

def test_writes_under_an_older_lease_are_refused_and_change_nothing(store):
    store.take(REPO, 7)  # the job's next run started
    with pytest.raises(FencedOut, match="newer lease"):
        store.write_snapshot(app_graph("late"), ready=False, fence=5)
    assert store.snapshots(REPO) == []
    current = store.write_snapshot(app_graph("c2"), ready=False, fence=7)
    stale = store.write_snapshot(app_graph("c1"), ready=False, fence=8)  # a newer run wrote
    with pytest.raises(FencedOut):
        store.mark_ready(current, fence=7)
    assert [s.ready for s in store.snapshots(REPO)] == [False, False]
    store.mark_ready(stale, fence=8)
    with pytest.raises(FencedOut):
        store.take(REPO, 7)
    store.write_snapshot(import_graph([("a.py", "b.py")], repo=REPO + "-other"), fence=1)
