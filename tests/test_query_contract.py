"""One contract for the query layer on both graph databases, every route's validation
under Hypothesis, and what still works when the text model is missing.

The repository is ingested once (SQLite, Qdrant local mode); its snapshot, sources
included, is then written to a real PostgreSQL too, and every question is asked of
both: the answers must be the same."""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from cloud.query import QueryService
from edge.embed.minilm import MiniLMEncoder
from shared.graph.cypher_falkordb import FalkorDBServer, FalkorDBSession
from shared.graph.cypher_store import CypherGraphStore
from shared.graph.store import PostgresGraphStore
from shared.lexical import query_terms
from shared.query_encoder import QueryEncoder, QueryEncoderError, default_model_dir
from tests.query_repo import IndexedRepo, api_client, indexed_repo

TOKEN = "contract-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUESTIONS = [
    ("search", {"query": "take a percentage off the price", "mode": "keyword"}),
    ("search", {"query": "email the customer", "mode": "hybrid", "limit": 5}),
    ("search", {"query": "price", "mode": "keyword", "path": "shop/**", "kind": "function"}),
    ("search", {"query": "shop/cart.py", "mode": "structural"}),
    ("search", {"query": "Item", "mode": "hybrid"}),  # exact names: nodes_named
    ("search", {"query": "`cart.cart`", "mode": "keyword"}),
    ("dependencies", {"path": "shop/cart.py", "kinds": "IMPORTS", "depth": "3"}),
    ("dependents", {"path": "shop/models.py", "depth": "10"}),
    ("dependents", {"path": "shop/pricing.py", "symbol": "apply_discount", "depth": "2"}),
    ("path", {"from": "tests/test_cart.py", "to": "shop/pricing.py"}),
    ("hot_spots", {}),
    ("cycles", {}),
    ("context", {"task": "change how discounts are applied", "budget_tokens": 512,
                 "format": "json"}),
    ("impact", {"files": ["shop/models.py"]}),
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> IndexedRepo:
    indexed = indexed_repo(tmp_path_factory.mktemp("contract"), MiniLMEncoder(device="cpu"))
    yield indexed
    indexed.close()


@pytest.fixture(scope="module")
def postgres_service(shop, postgres_server):
    """A QueryService over PostgreSQL holding the same snapshot, and the same vectors."""
    database = postgres_server.create_database()
    store = PostgresGraphStore(postgres_server.url_for(database))
    sqlite = shop.pipeline.store
    snapshot = sqlite.latest_snapshot(shop.url)
    graph = sqlite.load_graph(snapshot)
    graph.sources = sqlite.sources(snapshot, sqlite.source_hashes(snapshot))
    store.write_snapshot(graph)
    store.set_repo_state(shop.url, None, default_branch="main")  # as the worker's registry
    service = QueryService(lambda: store, lambda: shop.pipeline.vectors,
                           lambda: QueryEncoder(default_model_dir()), allow_local=True)
    yield service
    service.close()
    postgres_server.drop_database(database)


@pytest.fixture(scope="module")
def mirror_service(shop):
    """A QueryService whose graph walks are answered in Cypher by a mirror on a real
    FalkorDB (shared/graph/mirror.py): empty at first, so the snapshot is copied there
    on the first question, as one indexed before Neo4j was configured would be."""
    server = FalkorDBServer()
    mirror = CypherGraphStore(FalkorDBSession(server.client(), "contract"))
    service = QueryService(lambda: shop.pipeline.store, lambda: shop.pipeline.vectors,
                           lambda: QueryEncoder(default_model_dir()), allow_local=True,
                           owns_stores=False, open_mirror=lambda: mirror)
    yield service, mirror
    mirror.close()
    server.stop()


def _ask(service: QueryService, question: str, params: dict, repo: str) -> dict:
    answer = getattr(service, question)({**params, "repo": repo})
    return _comparable(answer)


def _comparable(value):
    """The answer without timings, with scores rounded (sums may differ in the last bits)."""
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in ("took_ms",
                                                                          "indexed_at")}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, float):
        return round(value, 4)
    return value


@pytest.mark.parametrize("question,params", QUESTIONS,
                         ids=[f"{q}-{i}" for i, (q, _) in enumerate(QUESTIONS)])
def test_postgres_and_sqlite_give_the_same_answers(shop, postgres_service, question, params):
    on_sqlite = _ask(shop.service, question, params, shop.url)
    on_postgres = _ask(postgres_service, question, params, shop.url)
    assert on_postgres == on_sqlite
    assert on_sqlite.get("results") or on_sqlite.get("items") or on_sqlite.get("path") \
        or on_sqlite.get("cycles") or on_sqlite.get("files")  # each question has an answer


GRAPH_QUESTIONS = [(q, p) for q, p in QUESTIONS
                   if q in ("dependencies", "dependents", "path", "hot_spots", "cycles",
                            "impact")]


@pytest.mark.parametrize("question,params", GRAPH_QUESTIONS,
                         ids=[f"{q}-{i}" for i, (q, _) in enumerate(GRAPH_QUESTIONS)])
def test_the_neo4j_mirror_answers_the_graph_questions_alike(shop, mirror_service, question,
                                                             params):
    """The walks and the file graph in Cypher (FalkorDB here, the statements Neo4j runs)
    give the SQL store's answers; the mirror holds the snapshot afterwards."""
    service, mirror = mirror_service
    on_sqlite = _ask(shop.service, question, params, shop.url)
    in_cypher = _ask(service, question, params, shop.url)
    assert in_cypher == on_sqlite
    commit = shop.pipeline.store.latest_snapshot(shop.url).commit
    assert mirror.find_snapshot(shop.url, commit).ready


def test_keyword_scores_are_bm25_on_both(shop, postgres_service):
    """The score of a one-term query by hand, from the stored counts."""
    store = shop.pipeline.store
    snapshot = store.latest_snapshot(shop.url)
    stats = snapshot.stats["text"]
    (term,) = query_terms("confirmation")
    (hit,) = store.keyword_search(snapshot, [term], 1)
    n, df = stats["documents"], 2  # the method, and the class that holds it
    ((weight, length),) = store._query(
        "SELECT p.weight, d.length FROM postings p JOIN documents d ON d.snapshot_id ="
        " p.snapshot_id AND d.node_id = p.node_id WHERE p.snapshot_id = ? AND p.node_id = ?"
        " AND p.term = ?", (snapshot.id, hit.node_id, term))
    assert weight == 4.0  # its own name counts 3 times, its def line once
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    expected = idf * weight * 2.2 / (weight + 1.2 * (1 - 0.75 + 0.75 * length /
                                                     stats["avg_length"]))
    assert hit.score == pytest.approx(expected)
    pg_store = postgres_service.store
    (pg_hit,) = pg_store.keyword_search(pg_store.latest_snapshot(shop.url), [term], 1)
    assert pg_hit.node_id == hit.node_id and pg_hit.score == pytest.approx(expected)


# --- validation under Hypothesis -------------------------------------------------------------

@pytest.fixture(scope="module")
def http(shop, tmp_path_factory):
    with api_client(shop.service, tmp_path_factory.mktemp("queue"), TOKEN) as client:
        yield client


_values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=60),
                    st.lists(st.text(max_size=20), max_size=4),
                    st.sampled_from(["hybrid", "keyword", "structural", "json", "**/*.py",
                                     "src/[a", "shop/cart.py", "function", ""]))
_FIELDS = {
    "search": ["query", "repo", "mode", "limit", "path", "language", "kind", "extra"],
    "context": ["task", "repo", "files", "budget_tokens", "format", "extra"],
    "impact": ["repo", "files", "base", "head", "extra"],
}


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture],
          deadline=None)
@given(route=st.sampled_from(sorted(_FIELDS)), data=st.data())
def test_any_body_gets_an_answer_or_a_clear_4xx_and_touches_nothing(http, shop, route, data):
    fields = data.draw(st.lists(st.sampled_from(_FIELDS[route]), unique=True, max_size=5))
    body = {name: data.draw(_values) for name in fields}
    if data.draw(st.booleans()):
        body["repo"] = shop.url
    store = shop.pipeline.store
    before = [(s.id, s.commit, s.ready) for s in store.snapshots(shop.url)]
    answer = http.post(f"/api/v1/{route}", json=body, headers=AUTH)
    assert answer.status_code in (200, 400, 404), (body, answer.text)
    if answer.status_code != 200:
        error = answer.json()
        assert set(error) == {"error", "detail"} and error["detail"]
    assert [(s.id, s.commit, s.ready) for s in store.snapshots(shop.url)] == before


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture],
          deadline=None)
@given(params=st.dictionaries(st.sampled_from(["path", "symbol", "depth", "kinds", "limit",
                                               "commit", "from", "to", "max_depth", "x"]),
                              st.text(max_size=30), max_size=5),
       route=st.sampled_from(["dependencies", "dependents", "path", "hotspots", "cycles",
                              "snapshot"]))
def test_any_graph_query_string_gets_an_answer_or_a_clear_4xx(http, shop, params, route):
    answer = http.get(f"/api/v1/graph/{route}", params={**params, "repo": shop.url},
                      headers=AUTH)
    assert answer.status_code in (200, 400, 404), (params, answer.text)
    if answer.status_code != 200:
        assert set(answer.json()) == {"error", "detail"}


# --- without the text model ------------------------------------------------------------------

def test_without_the_model_search_is_503_and_graph_questions_still_answer(shop, tmp_path):
    def missing() -> QueryEncoder:
        raise QueryEncoderError("the query model is not installed: install it")

    service = QueryService(lambda: shop.pipeline.store, lambda: shop.pipeline.vectors, missing,
                           allow_local=True, owns_stores=False)
    with api_client(service, tmp_path, TOKEN) as http:
        for mode in ("hybrid", "semantic"):
            answer = http.post("/api/v1/search", headers=AUTH,
                               json={"query": "discount", "repo": shop.url, "mode": mode})
            assert answer.status_code == 503 and answer.json()["error"] == "model_unavailable"
            assert "install" in answer.json()["detail"]
        keyword = http.post("/api/v1/search", headers=AUTH,
                            json={"query": "discount", "repo": shop.url, "mode": "keyword"})
        assert keyword.status_code == 200 and keyword.json()["results"]
        spots = http.get("/api/v1/graph/hotspots", headers=AUTH, params={"repo": shop.url})
        assert spots.status_code == 200 and spots.json()["results"]
        context = http.post("/api/v1/context", headers=AUTH,
                            json={"task": "apply a discount", "repo": shop.url}).json()
        assert context["notes"] and "keyword search only" in context["notes"][0]
        assert "apply_discount" in context["text"]
        health = http.get("/health").json()
        assert health["status"] == "degraded"
        assert health["backends"]["query_encoder"]["ok"] is False
