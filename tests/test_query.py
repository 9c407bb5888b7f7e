"""The query side on a real ingested repository: search in every mode and filter, graph
questions, context within budgets, impact, evidence and caching, over HTTP as scripts
use it. One ingest (real pipeline: tree-sitter, Node2Vec, MiniLM, SQLite, Qdrant local
mode) per module; the query encoder is the installed ONNX model."""
from __future__ import annotations

import json
import re

import pytest

from cloud.query.search import (EXACT_CENTRALITY, EXACT_NESTED, W_EXACT, _exact_value, merge,
                                 symbol_query)
from cloud.query.tokens import count_tokens
from edge.embed.minilm import MiniLMEncoder
from shared.graph.model import Node, NodeKind
from tests.query_repo import FILES, IndexedRepo, api_client, commit_all, indexed_repo

TOKEN = "query-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> IndexedRepo:
    indexed = indexed_repo(tmp_path_factory.mktemp("query"), MiniLMEncoder(device="cpu"))
    yield indexed
    indexed.close()


@pytest.fixture(scope="module")
def http(shop, tmp_path_factory):
    with api_client(shop.service, tmp_path_factory.mktemp("queue"), TOKEN) as client:
        yield client


def search(http, **body):
    answer = http.post("/api/v1/search", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return answer.json()


def names(answer) -> list[str]:
    return [r["name"] for r in answer["results"]]


# --- search ----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_each_mode_finds_the_function_a_question_describes(http, shop, mode):
    answer = search(http, query="take a percentage off the price", repo=shop.url, mode=mode)
    assert "apply_discount" in names(answer)[:3], names(answer)
    answer = search(http, query="email the customer to confirm their order", repo=shop.url,
                    mode=mode)
    assert "Order.send_confirmation_email" in names(answer)[:3], names(answer)


def test_a_hit_names_its_evidence_with_exact_lines(http, shop):
    answer = search(http, query="apply discount", repo=shop.url, mode="hybrid")
    hit = answer["results"][0]
    lines = FILES[hit["path"]].split("\n")
    assert hit["name"] == "apply_discount" and hit["kind"] == "function"
    assert lines[hit["start_line"] - 1].startswith("def apply_discount")
    assert lines[hit["end_line"] - 1].strip() == "return amount - amount * percent // 100"
    assert hit["repo"] == shop.url and re.fullmatch(r"[0-9a-f]{40}", hit["commit"])
    assert "discount" in hit["snippet"] and hit["snippet_line"] >= hit["start_line"]
    assert set(hit["signals"]) >= {"semantic", "keyword", "name", "centrality"}
    assert answer["index"] == [{"repo": shop.url, "ref": "main", "commit": hit["commit"],
                                "indexed_at": answer["index"][0]["indexed_at"],
                                "stale": False, "indexing": False}]
    assert answer["took_ms"] >= 0


def test_keyword_search_splits_identifiers_and_weighs_rare_terms(http, shop):
    # "confirmation" appears only inside the identifier send_confirmation_email, whose
    # name weighs more than the body of the class that holds it
    answer = search(http, query="confirmation", repo=shop.url, mode="keyword")
    assert names(answer) == ["Order.send_confirmation_email", "Order"]
    assert answer["results"][0]["signals"]["matched_terms"] == 1
    assert search(http, query="zebra quantum", repo=shop.url, mode="keyword")["results"] == []


def test_filters_path_language_and_kind(http, shop):
    web = search(http, query="price", repo=shop.url, mode="hybrid", path="web/**", limit=20)
    assert web["results"] and all(r["path"].startswith("web/") for r in web["results"])
    typescript = search(http, query="orders", repo=shop.url, language="typescript", limit=20)
    assert {r["language"] for r in typescript["results"]} == {"typescript"}
    classes = search(http, query="shopping cart items", repo=shop.url, kind="class", limit=20)
    assert classes["results"] and {r["kind"] for r in classes["results"]} == {"class"}
    one_file = search(http, query="price", repo=shop.url, path="shop/pricing.py", limit=20)
    assert {r["path"] for r in one_file["results"]} == {"shop/pricing.py"}
    assert search(http, query="price", repo=shop.url, path="nothing/*.py")["results"] == []


def test_structural_search_returns_files_nearest_in_the_graph(http, shop):
    answer = search(http, query="shop/cart.py", repo=shop.url, mode="structural", limit=5)
    found = [r["path"] for r in answer["results"]]
    assert found and "shop/cart.py" not in found and all(r["kind"] == "file"
                                                         for r in answer["results"])
    by_symbol = search(http, query="Cart", repo=shop.url, mode="structural", limit=5)
    assert [r["path"] for r in by_symbol["results"]] == found
    unknown = http.post("/api/v1/search", headers=AUTH, json={
        "query": "no/such/file.py", "repo": shop.url, "mode": "structural"})
    assert unknown.status_code == 400 and "names no file or symbol" in unknown.json()["detail"]


def test_search_without_repo_covers_every_repository(http, shop):
    answer = search(http, query="apply discount", mode="keyword")
    assert [i["repo"] for i in answer["index"]] == [shop.url]
    assert answer["results"][0]["name"] == "apply_discount"


# --- exact names -----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
@pytest.mark.parametrize("query", ["Item", " `Item` ", "Item()"])
def test_a_query_that_is_a_symbols_name_finds_it_first(http, shop, mode, query):
    results = search(http, query=query, repo=shop.url, mode=mode, limit=20)["results"]
    found = names({"results": results})
    assert found[0] == "Item" and results[0]["signals"]["exact_name"] > 0.9, results[0]
    # DigitalItem holds every term of the query too, but is not its name
    partial = results[found.index("DigitalItem")]
    assert "exact_name" not in partial["signals"]


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_qualified_and_case_folded_names(http, shop, mode):
    def first(query, **filters):
        return search(http, query=query, repo=shop.url, mode=mode, **filters)["results"][0]

    assert first("Cart.total")["name"] == first("total")["name"] == "Cart.total"
    assert first("Cart.total")["signals"]["exact_name"] > first("total")["signals"]["exact_name"]
    assert first("shop.cart.Cart")["name"] == first("cart.Cart")["name"] == "Cart"
    assert "exact_name" not in first("orders.Cart")["signals"]  # Cart is not in orders.py
    exact, folded = first("Cart"), first("cart")
    assert exact["name"] == folded["name"] == "Cart"
    assert exact["signals"]["exact_name"] - folded["signals"]["exact_name"] == pytest.approx(0.5)
    functions = search(http, query="Cart", repo=shop.url, mode=mode, kind="function")
    assert "Cart" not in names(functions)


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
@pytest.mark.parametrize("query", ["Item", "item", "Cart", "total", "Cart.total", "apply"])
def test_scores_read_in_the_order_of_the_answer(http, shop, mode, query):
    """The exact-name signal is part of the score: an exact hit that BM25 did not match
    (or matched weakly) never shows a lower score than the hits below it."""
    results = search(http, query=query, repo=shop.url, mode=mode, limit=20)["results"]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True), [(r["name"], r["score"]) for r in results]
    exact = [r for r in results if "exact_name" in r["signals"]]
    rest = [r for r in results if "exact_name" not in r["signals"]]
    if exact and rest:
        assert min(r["score"] for r in exact) > max(r["score"] for r in rest)


def test_what_counts_as_a_symbols_name():
    assert [symbol_query(q) for q in ["Line", " `Line.append()` ", "black.lines.Line",
                                      "Compiler#run", "fmt::Display", "'$http'"]] == [
        "Line", "Line.append", "black.lines.Line", "Compiler.run", "fmt.Display", "$http"]
    assert [symbol_query(q) for q in ["take a discount", "Line.", "a-b", "3d", ""]] == [
        None] * 5


def test_of_several_exact_matches_the_likeliest_meant_comes_first():
    def node(path, qualname, kind=NodeKind.CLASS):
        return Node(0, kind, path, qualname.rsplit(".", 1)[-1], qualname, 1, 2, "python")

    ranked = [node("src/mode.py", "Mode"), node("src/util.py", "Mode"),
              node("src/other.py", "Options.Mode", NodeKind.METHOD),
              node("tests/test_mode.py", "Mode"), node("src/low.py", "mode")]
    central = {"src/mode.py": 1.0, "src/util.py": 0.2, "src/other.py": 1.0,
               "tests/test_mode.py": 1.0, "src/low.py": 1.0}
    values = [_exact_value(n, ["Mode"], central[n.path]) for n in ranked]
    assert values == sorted(values, reverse=True) and len(set(values)) == 5, values
    assert values[0] == 1.0 and _exact_value(node("a.py", "Other"), ["Mode"], 1.0) == 0.0


def test_exact_names_come_first_across_repositories():
    def row(repo, score, **signals):
        return {"repo": repo, "path": "a.py", "start_line": 1, "score": score,
                "signals": signals}

    merged = merge([[row("a", 0.9)], [row("b", 0.1 + W_EXACT * 0.9, exact_name=0.9)]], 10)
    assert [r["repo"] for r in merged] == ["b", "a"]
    assert W_EXACT * (EXACT_NESTED - EXACT_CENTRALITY) > 2.5  # a step over every signal


# --- repositories and graph ------------------------------------------------------------------

def test_repos_lists_what_is_indexed(http, shop):
    (repo,) = http.get("/api/v1/repos", headers=AUTH).json()["repos"]
    assert repo["url"] == shop.url and repo["files"] == len(FILES)
    assert repo["languages"] == {"python": 7, "typescript": 2}
    assert repo["symbols"] >= 14 and repo["chunks"] >= repo["symbols"]
    assert repo["indexing"] is False


def graph(http, route: str, **params):
    answer = http.get(f"/api/v1/graph/{route}", params=params, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_dependencies_and_dependents(http, shop):
    deps = graph(http, "dependencies", repo=shop.url, path="shop/cart.py", kinds="IMPORTS")
    # `from shop import pricing` imports the submodule, not the package (grimp's rule)
    assert {r["path"] for r in deps["results"]} == {"shop/pricing.py", "shop/models.py"}
    callers = graph(http, "dependents", repo=shop.url, path="shop/pricing.py",
                    symbol="apply_discount", kinds="CALLS")
    assert [r["name"] for r in callers["results"]] == ["Cart.total"]
    deeper = graph(http, "dependents", repo=shop.url, path="shop/pricing.py",
                   symbol="apply_discount", kinds="CALLS", depth=3)
    assert {(r["name"], r["distance"]) for r in deeper["results"]} >= {
        ("Cart.total", 1), ("Order.checkout", 2)}
    # `Cart()` calls Cart.__init__ (the edge goes there): still a user of the class
    users = graph(http, "dependents", repo=shop.url, path="shop/cart.py", symbol="Cart",
                  kinds="CALLS")
    assert [r["name"] for r in users["results"]] == ["test_total_applies_the_discount"]
    capped = graph(http, "dependents", repo=shop.url, path="shop/models.py", depth=10, limit=1)
    assert len(capped["results"]) == 1 and capped["truncated"] and capped["total"] > 1


GRAPH_ROUTES = {"dependencies": {"path": "shop/cart.py"}, "dependents": {"path": "shop/cart.py"},
                "path": {"from": "tests/test_cart.py", "to": "shop/models.py"},
                "hotspots": {}, "cycles": {}, "snapshot": {}, "symbols": {"name": "Cart"}}


@pytest.mark.parametrize("route", sorted(GRAPH_ROUTES))
def test_every_graph_route_takes_ref_and_commit_alike(http, shop, route):
    params = {"repo": shop.url, **GRAPH_ROUTES[route]}
    plain = graph(http, route, **params)
    commit = plain["index"]["commit"]
    for same in ({"ref": "main"}, {"commit": commit[:10]}, {"ref": "main", "commit": commit}):
        again = graph(http, route, **params, **same)
        assert again["index"] == plain["index"], same
        assert {k: v for k, v in again.items() if k != "took_ms"} == \
            {k: v for k, v in plain.items() if k != "took_ms"}, same
    other = http.get(f"/api/v1/graph/{route}", headers=AUTH, params={**params, "ref": "nope"})
    assert other.status_code == 404 and "branch nope of" in other.json()["detail"], other.text
    bad = http.get(f"/api/v1/graph/{route}", headers=AUTH, params={**params, "ref": "-x"})
    assert bad.status_code == 400 and "ref must be a branch" in bad.json()["detail"]


def test_path_hot_spots_cycles_and_snapshot(http, shop):
    route = graph(http, "path", repo=shop.url, **{"from": "tests/test_cart.py",
                                                  "to": "shop/models.py"})
    assert [n["path"] for n in route["path"]][0] == "tests/test_cart.py"
    assert route["path"][-1]["path"] == "shop/models.py" and route["length"] == 1
    none = graph(http, "path", repo=shop.url, **{"from": "shop/models.py", "to": "web/api.ts"})
    assert none["path"] is None
    spots = graph(http, "hotspots", repo=shop.url)["results"]
    assert spots[0]["path"] == "shop/models.py" and spots[0]["dependents"] == 3
    assert graph(http, "cycles", repo=shop.url)["cycles"] == [["shop/inventory.py",
                                                                "shop/orders.py"]]
    snapshot = graph(http, "snapshot", repo=shop.url)
    files = {n["path"] for n in snapshot["nodes"] if n["kind"] == "file"}
    assert files == set(FILES) and snapshot["edges"]


# --- context ---------------------------------------------------------------------------------

@pytest.mark.parametrize("budget", [256, 512, 2048])
def test_context_never_exceeds_its_budget(http, shop, budget):
    answer = http.post("/api/v1/context", headers=AUTH, json={
        "task": "change how discounts are applied to the cart total", "repo": shop.url,
        "budget_tokens": budget}).json()
    assert answer["tokens"] == count_tokens(answer["text"]) <= budget
    assert answer["budget_tokens"] == budget and answer["tokenizer"].startswith("cl100k")
    assert "apply_discount" in answer["text"]


@pytest.mark.parametrize("budget", [256, 512, 1024, 2048, 4096])
def test_json_context_never_exceeds_its_budget_as_serialised(http, shop, budget):
    """format json counts what the agent reads: the items array as the answer carries
    it (compact JSON, every field), not the markdown the same items would make."""
    answer = http.post("/api/v1/context", headers=AUTH, json={
        "task": "change how discounts are applied to the cart total and the checkout",
        "repo": shop.url, "budget_tokens": budget, "format": "json"}).json()
    serialised = json.dumps(answer["items"], ensure_ascii=False, separators=(",", ":"))
    assert answer["tokens"] == count_tokens(serialised) <= budget
    assert answer["items"] and "text" not in answer
    texts = "\n".join(item["text"] for item in answer["items"])
    assert count_tokens(texts) <= budget


def test_context_items_seeded_by_search_names_and_edited_files(http, shop):
    answer = http.post("/api/v1/context", headers=AUTH, json={
        "task": "make `reserve_stock` refuse negative quantities", "repo": shop.url,
        "files": ["shop/orders.py"], "format": "json"}).json()
    items = {item["name"]: item for item in answer["items"]}
    assert items["reserve_stock"]["reason"] == "named in the task"
    # the class's body holds its methods: they are not repeated as items of their own
    assert items["Order"]["reason"] == "file being edited" and items["Order"]["form"] == "body"
    assert "Order.checkout" not in items and "def checkout" in items["Order"]["text"]
    text = FILES["shop/inventory.py"].split("\n")
    found = items["reserve_stock"]
    assert found["text"].split("\n")[0] == text[found["start_line"] - 1]
    assert answer["tokens"] <= answer["budget_tokens"] == 2048
    unknown = http.post("/api/v1/context", headers=AUTH, json={
        "task": "x", "repo": shop.url, "files": ["shop/nope.py"]})
    assert unknown.status_code == 400 and "unknown path" in unknown.json()["detail"]


# --- impact ----------------------------------------------------------------------------------

def test_impact_of_changed_files(http, shop):
    answer = http.post("/api/v1/impact", headers=AUTH, json={
        "repo": shop.url, "files": ["shop/pricing.py"]}).json()
    files = {f["path"]: f for f in answer["files"]}
    assert files["shop/cart.py"]["distance"] == 1
    assert files["tests/test_cart.py"]["is_test"] and files["tests/test_cart.py"]["distance"] == 2
    (changed,) = answer["changed"]
    assert changed["tests"] == ["tests/test_cart.py"] and changed["direct_dependents"] == 1
    # 4 of the 9 files depend on it (20% or more of the repository): high
    assert changed["dependents"] == 5 and changed["risk"] == "high"
    symbols = {s["name"]: s["distance"] for s in answer["symbols"]}
    assert symbols["Cart.total"] == 1 and symbols["Order.checkout"] == 2
    assert "shop/pricing.py" in answer["summary"]


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("route,body,fragment", [
    ("search", {"query": ""}, "query must not be empty"),
    ("search", {"query": "x" * 1001}, "at most 1000"),
    ("search", {"query": "x", "mode": "fuzzy"}, "mode must be one of"),
    ("search", {"query": "x", "limit": 0}, "limit must be between 1 and 100"),
    ("search", {"query": "x", "limit": 101}, "limit must be between 1 and 100"),
    ("search", {"query": "x", "path": "src/[a"}, "malformed glob"),
    ("search", {"query": "x", "querry": "y"}, "unknown field 'querry'"),
    ("search", {"query": "x", "language": "cobol"}, "language must be one of"),
    ("search", {"query": "x", "mode": "structural"}, "structural search needs repo"),
    ("context", {"task": "x", "repo": "github.com/a/b", "budget_tokens": 100}, "between 256"),
    ("context", {"task": "x", "repo": "github.com/a/b", "budget_tokens": 16001}, "16000"),
    ("impact", {"repo": "github.com/a/b"}, "give files"),
    ("search", [1, 2], "JSON object"),
    ("search", {"query": "x", "ref": "dev"}, "ref needs repo"),
    ("search", {"query": "x", "repo": "github.com/a/b", "ref": "-x"}, "ref must be a branch"),
])
def test_bad_input_is_400_with_the_reason(http, route, body, fragment):
    answer = http.post(f"/api/v1/{route}", headers=AUTH, json=body)
    assert answer.status_code == 400 and fragment in answer.json()["detail"], answer.text
    assert answer.json()["error"] == "bad_request"


def test_unknown_path_symbol_and_repository(http, shop):
    answer = http.get("/api/v1/graph/dependencies", headers=AUTH,
                      params={"repo": shop.url, "path": "shop/nope.py"})
    assert answer.status_code == 400 and "unknown path" in answer.json()["detail"]
    answer = http.get("/api/v1/graph/dependencies", headers=AUTH,
                      params={"repo": shop.url, "path": "shop/cart.py", "symbol": "Nope"})
    assert answer.status_code == 400 and "not in shop/cart.py" in answer.json()["detail"]
    answer = http.post("/api/v1/search", headers=AUTH,
                       json={"query": "x", "repo": "github.com/nobody/nothing"})
    assert answer.status_code == 404 and "not indexed" in answer.json()["detail"]
    answer = http.get("/api/v1/graph/hotspots", headers=AUTH,
                      params={"repo": shop.url, "commit": "abcdef1"})
    assert answer.status_code == 404 and "not an indexed commit" in answer.json()["detail"]
    assert http.post("/api/v1/search", content=b"{not json", headers=AUTH).status_code == 400
    assert http.post("/api/v1/search", json={"query": "x"}).status_code == 401


# --- snapshots over time ---------------------------------------------------------------------

def test_a_new_snapshot_drops_the_cache_and_an_unready_one_is_not_answered_from(http, shop):
    first = search(http, query="apply discount", repo=shop.url, mode="keyword")
    old_commit = first["index"][0]["commit"]
    pricing = shop.root / "shop/pricing.py"
    pricing.write_text(pricing.read_text() + "\n\ndef loyalty_bonus(points: int) -> int:\n"
                       "    return points // 10\n")
    new_commit = commit_all(shop.root, "two")
    # The graph of the new commit lands first, not ready: answers stay on the old one.
    store = shop.pipeline.store
    graph = store.load_graph(store.latest_snapshot(shop.url))
    graph.commit, graph.sources = new_commit, {"shop/pricing.py": pricing.read_text()}
    pending = store.write_snapshot(graph, ready=False)
    during = search(http, query="apply discount", repo=shop.url, mode="keyword")
    assert during["index"][0] | {"indexed_at": 0} == {
        "repo": shop.url, "ref": "main", "commit": old_commit, "indexed_at": 0, "stale": True,
        "indexing": True, "remote_commit": new_commit}  # the commit on its way
    assert search(http, query="loyalty bonus", repo=shop.url, mode="keyword")["results"] == []
    # The whole ingest of the new commit: answers move to it, the cache is dropped.
    assert shop.ingest() == new_commit and pending.commit == new_commit
    after = search(http, query="loyalty bonus", repo=shop.url, mode="hybrid")
    assert after["index"][0]["commit"] == new_commit and not after["index"][0]["stale"]
    assert after["results"][0]["name"] == "loyalty_bonus"
    # The old commit is still answerable by name, and says it is stale.
    old = graph_of_old = http.get("/api/v1/graph/hotspots", headers=AUTH,
                                  params={"repo": shop.url, "commit": old_commit[:10]}).json()
    assert graph_of_old["index"]["commit"] == old_commit and old["index"]["stale"] is True
    impact = http.post("/api/v1/impact", headers=AUTH, json={
        "repo": shop.url, "base": old_commit, "head": new_commit}).json()
    assert [(c["path"], c["change"]) for c in impact["changed"]] == [("shop/pricing.py",
                                                                     "modified")]
    assert impact["base"] == old_commit


def test_an_answer_is_stale_once_the_remote_moved_past_it(http, shop):
    store = shop.pipeline.store
    record = store.repo_record(shop.url)
    branch, indexed = record.default_branch, record.indexed().commit
    store.request_sync(shop.url, branch=branch, remote_commit="f" * 40)  # a push told us
    try:
        (moved,) = search(http, query="apply discount", repo=shop.url)["index"]
        assert moved["stale"] and moved["remote_commit"] == "f" * 40
        assert moved["commit"] == indexed
    finally:
        store.request_sync(shop.url, branch=branch, remote_commit=indexed)
    (fresh,) = search(http, query="apply discount", repo=shop.url)["index"]
    assert not fresh["stale"] and "remote_commit" not in fresh
    assert store.repo_record(shop.url).last_query_at > 0  # archiving counts queries


def test_a_job_running_for_a_repository_is_named_and_is_not_staleness(shop, tmp_path):
    """What the app reads of the queue (a worker's heartbeat at a job) reaches the list:
    the running job's id, not only that one runs. Answers meanwhile say `indexing`, not
    `stale`: the job may rebuild the same commit (a forced rebuild) or find nothing new."""
    from cloud.app import job_readers
    from cloud.query import QueryService
    from cloud.routes import OverviewCache
    from shared.jobs import WorkerState, WorkerStatus
    from shared.queue.sqlite import SqliteQueue

    queue = SqliteQueue(tmp_path / "queue.db")
    try:
        queue.enqueue(shop.url)
        job = queue.claim(WorkerStatus(worker_id="w"))
        queue.heartbeat(WorkerStatus(worker_id="w", state=WorkerState.RUNNING,
                                     repo_url=shop.url, job_id=job.id), job)
        service = QueryService(lambda: shop.pipeline.store, lambda: shop.pipeline.vectors,
                               lambda: None, allow_local=True, owns_stores=False)
        service.watch_jobs(*job_readers(queue, OverviewCache()))
        (listed,) = [r for r in service.repos()["repos"] if r["url"] == shop.url]
        assert listed["last_job"] == {"state": "running", "job_id": job.id}
        assert listed["indexing"] and not listed["stale"]
        index = service.hot_spots({"repo": shop.url})["index"]
        assert index["indexing"] and not index["stale"] and "remote_commit" not in index
    finally:
        queue.close()
