"""The graph builder on hand-made parse results: ids, edges, name resolution, stats."""
from __future__ import annotations

from edge.graph import build_graph, stats
from edge.parse.model import Call, ParsedFile, Skipped, Symbol
from edge.resolve.model import FileImports, ResolvedImport, Target
from shared.graph.model import EdgeKind, NodeKind, node_id

REPO = "https://example.com/o/r"


def _sym(kind, qualname, start, end, bases=(), parent=None):
    return Symbol(kind, qualname.rsplit(".", 1)[-1], qualname, start, end, None, tuple(bases),
                  parent)


def _fixture():
    base = ParsedFile("pkg/base.py", "python", 20, symbols=[
        _sym("class", "Model", 1, 10),
        _sym("method", "Model.__init__", 2, 3, parent="Model"),
        _sym("method", "Model.save", 4, 6, parent="Model"),
        _sym("function", "helper", 12, 20),
        _sym("function", "helper.inner", 13, 14, parent="helper"),
    ], calls=[Call("helper", "inner", 15), Call("helper", "helper", 16)])
    init = ParsedFile("pkg/__init__.py", "python", 1)
    app = ParsedFile("app.py", "python", 30, symbols=[
        _sym("class", "User", 1, 10, bases=["pkg.Model"]),
        _sym("method", "User.save", 2, 5, parent="User"),
        _sym("method", "User.delete", 6, 9, parent="User"),
        _sym("function", "main", 12, 30),
    ], calls=[
        Call("User.save", "self.validate", 3),  # not defined anywhere: no edge
        Call("User.delete", "self.save", 7),  # own method
        Call("User.delete", "super", 8),
        Call("main", "User", 13),  # a class: its constructor, inherited from Model
        Call("main", "pkg.helper", 14),  # through a re-export in pkg/__init__.py
        Call("main", "h", 15),  # imported under an alias
        Call("main", "h", 16),  # a second call site folds into the same edge
        Call(None, "main", 30),  # module level: not a function -> function edge
    ])
    imports = {
        "pkg/__init__.py": FileImports(
            "pkg/__init__.py", [ResolvedImport("pkg/base.py", None, 1)],
            scope={"Model": Target("pkg/base.py", "Model"),
                   "helper": Target("pkg/base.py", "helper")}),
        "pkg/base.py": FileImports("pkg/base.py", [ResolvedImport(None, "os", 1)]),
        "app.py": FileImports("app.py", [
            ResolvedImport("pkg/__init__.py", None, 1),
            ResolvedImport("pkg/base.py", None, 2, type_only=True),
            ResolvedImport("pkg/base.py", None, 3),
            ResolvedImport(None, "numpy", 4), ResolvedImport(None, "numpy", 5),
        ], scope={"pkg": Target("pkg/__init__.py"), "h": Target("pkg/base.py", "helper")}),
    }
    return [base, init, app], imports


def _edges(graph, kind):
    names = {n.id: (f"{n.path}:{n.qualname}" if n.qualname else n.path) for n in graph.nodes}
    return {(names[e.src], names[e.dst]): e for e in graph.edges if e.kind is kind}


def test_nodes_have_stable_ids_one_per_file_and_symbol():
    files, imports = _fixture()
    graph = build_graph(REPO, files, imports, [Skipped("bad.py", "binary")], commit="abc")
    again = build_graph(REPO, *_fixture())
    assert [n.id for n in graph.nodes] == [n.id for n in again.nodes]
    assert len({n.id for n in graph.nodes}) == len(graph.nodes) == 3 + 9
    by_path = {n.path for n in graph.nodes if n.kind is NodeKind.FILE}
    assert by_path == {"pkg/base.py", "pkg/__init__.py", "app.py"}
    user = next(n for n in graph.nodes if n.qualname == "User")
    assert user.id == node_id(REPO, "app.py", "User") and user.kind is NodeKind.CLASS
    assert graph.commit == "abc" and graph.loc == 51
    assert graph.skipped == [("bad.py", "binary")]
    assert graph.external == {"numpy": 2, "os": 1}


def test_import_edges_fold_statements_and_keep_type_only_honest():
    graph = build_graph(REPO, *_fixture())
    imports = _edges(graph, EdgeKind.IMPORTS)
    assert set(imports) == {("pkg/__init__.py", "pkg/base.py"), ("app.py", "pkg/__init__.py"),
                            ("app.py", "pkg/base.py")}
    folded = imports[("app.py", "pkg/base.py")]
    assert (folded.weight, folded.line, folded.type_only) == (2, 2, False)


def test_contains_links_files_classes_and_nested_defs():
    contains = set(_edges(build_graph(REPO, *_fixture()), EdgeKind.CONTAINS))
    assert ("pkg/base.py", "pkg/base.py:Model") in contains
    assert ("pkg/base.py:Model", "pkg/base.py:Model.save") in contains
    assert ("pkg/base.py:helper", "pkg/base.py:helper.inner") in contains
    assert ("pkg/base.py", "pkg/base.py:Model.save") not in contains
    assert len(contains) == 9


def test_extends_resolves_through_the_import_scope_and_re_exports():
    extends = set(_edges(build_graph(REPO, *_fixture()), EdgeKind.EXTENDS))
    assert extends == {("app.py:User", "pkg/base.py:Model")}


def test_calls_resolve_self_aliases_re_exports_nested_defs_and_constructors():
    calls = _edges(build_graph(REPO, *_fixture()), EdgeKind.CALLS)
    assert set(calls) == {
        ("app.py:User.delete", "app.py:User.save"),
        ("app.py:main", "pkg/base.py:Model.__init__"),
        ("app.py:main", "pkg/base.py:helper"),
        ("pkg/base.py:helper", "pkg/base.py:helper.inner"),
        ("pkg/base.py:helper", "pkg/base.py:helper"),  # recursion is a real call edge
    }
    assert calls[("app.py:main", "pkg/base.py:helper")].weight == 3


def test_redefinitions_become_one_node_spanning_both():
    file = ParsedFile("p.py", "python", 10, symbols=[
        _sym("class", "C", 1, 10), _sym("method", "C.x", 2, 3, parent="C"),
        _sym("method", "C.x", 5, 6, parent="C")])
    graph = build_graph(REPO, [file], {})
    x = [n for n in graph.nodes if n.qualname == "C.x"]
    assert len(x) == 1 and (x[0].start_line, x[0].end_line) == (2, 6)


def test_stats_count_by_type_and_rank_hot_spots():
    report = stats(build_graph(REPO, *_fixture(), [Skipped("x.js", "minified")]))
    assert report["files"] == 3 and report["loc"] == 51
    assert report["nodes"] == {"class": 2, "file": 3, "function": 3, "method": 4}
    assert report["edges"]["IMPORTS"] == 3
    assert report["hot_spots"][0] == {"path": "pkg/base.py", "dependents": 2}
    assert report["skipped"] == [{"path": "x.js", "reason": "minified"}]
