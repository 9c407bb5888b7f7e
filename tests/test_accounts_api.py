"""Accounts, API keys, scopes, tenancy and plan limits through the HTTP API, on the real
app: a SQLite queue (its counters too), the graph store in SQLite and in a real
PostgreSQL (every test runs on both), Qdrant local mode."""
from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st
from starlette.testclient import TestClient

from cloud.app import create_app
from cloud.query import QueryService
from shared.graph.store import PostgresGraphStore, SqliteGraphStore
from shared.jobs import JobState, WorkerState, WorkerStatus
from shared.queue.sqlite import SqliteQueue
from shared.settings import Settings
from tests.test_graph_store import import_graph
from tests.test_repos_api import real_app

TOKEN = "accounts-admin-token"
OWNER = {"Authorization": f"Bearer {TOKEN}"}
PLANS = json.dumps({"tiny": {"repositories": 2, "ingests_per_day": 3,
                             "queries_per_minute": 5, "embeddings_per_month": 1000}})


@pytest.fixture(params=["sqlite", "postgres"])
def world(tmp_path, request):
    with real_app(request, tmp_path, Settings(admin_token=TOKEN, plans_json=PLANS),
                  max_queue_size=1000) as (client, store, _, queue):
        yield client, store, queue


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def account(client, plan: str = "free", name: str = "Octo") -> int:
    made = client.post("/api/v1/accounts", headers=OWNER,
                       json={"name": name, "email": f"ops-{uuid.uuid4().hex[:8]}@octo.example",
                             "plan": plan})
    assert made.status_code == 201, made.text
    return made.json()["id"]


def key(client, account_id: int, scopes=("read", "ingest", "admin"), auth=OWNER) -> dict:
    made = client.post(f"/api/v1/accounts/{account_id}/keys", headers=auth,
                       json={"name": "k", "scopes": list(scopes)})
    assert made.status_code == 201, made.text
    return made.json()


def indexed(store, url: str, owners=()) -> None:
    """A repository with a ready snapshot (two files, one import), owned by `owners`."""
    store.register(url)
    store.write_snapshot(import_graph([("a.py", "b.py")], repo=url))
    for owner in owners:
        store.grant_repo(url, owner)


# --- keys and scopes -------------------------------------------------------------------------

def test_a_key_is_shown_once_works_and_stops_when_revoked(world):
    client, store, _ = world
    octo = account(client)
    made = key(client, octo, ["read"])
    secret = made["key"]
    assert secret.startswith("na_live_") and made["prefix"] == secret[:16]
    listed = client.get(f"/api/v1/accounts/{octo}/keys", headers=OWNER).json()["keys"]
    assert secret not in json.dumps(listed) and listed[0]["prefix"] == made["prefix"]
    me = client.get("/api/v1/accounts/me", headers=bearer(secret)).json()
    assert me["account"]["id"] == octo and me["scopes"] == ["read"] and not me["owner"]
    assert me["plan"]["name"] == "free"
    assert client.delete(f"/api/v1/keys/{made['id']}", headers=OWNER).json()["was_live"]
    gone = client.get("/api/v1/accounts/me", headers=bearer(secret))
    unknown = client.get("/api/v1/accounts/me", headers=bearer("na_live_" + "x" * 43))
    assert gone.status_code == unknown.status_code == 401
    assert gone.json() == unknown.json()  # revoked and unknown look the same
    assert store.keys(octo)[0].last_used_at > 0


def test_scopes_decide_what_a_key_may_do(world):
    client, store, queue = world
    octo = account(client)
    reader, ingester = key(client, octo, ["read"])["key"], key(client, octo, ["ingest"])["key"]
    url = "github.com/octo/widgets"
    refused = client.post(f"/api/v1/ingestion/ingest/{url}", headers=bearer(reader))
    assert refused.status_code == 403 and "'ingest' scope" in refused.json()["detail"]
    assert client.post(f"/api/v1/ingestion/ingest/{url}",
                       headers=bearer(ingester)).status_code == 200
    assert client.get("/api/v1/repos", headers=bearer(ingester)).status_code == 403
    assert client.get("/api/v1/repos", headers=bearer(reader)).status_code == 200
    assert client.post(f"/api/v1/accounts/{octo}/keys", headers=bearer(reader),
                       json={"name": "x", "scopes": ["read"]}).status_code == 403
    # an admin key makes keys for its own account only, and none above its own scopes
    admin = key(client, octo, ["admin", "read"])["key"]
    assert client.post(f"/api/v1/accounts/{octo}/keys", headers=bearer(admin),
                       json={"name": "x", "scopes": ["ingest"]}).status_code == 403
    other = account(client, name="Other")
    assert client.post(f"/api/v1/accounts/{other}/keys", headers=bearer(admin),
                       json={"name": "x", "scopes": ["read"]}).status_code == 404
    assert client.post("/api/v1/accounts", headers=bearer(admin),
                       json={"name": "x", "email": "a@b.example"}).status_code == 403


def test_the_owner_keeps_every_scope_and_sees_every_account(world):
    client, store, _ = world
    one, two = account(client, name="One"), account(client, name="Two")
    indexed(store, "https://github.com/one/a", [one])
    indexed(store, "https://github.com/two/b", [two])
    urls = {r["url"] for r in client.get("/api/v1/repos", headers=OWNER).json()["repos"]}
    assert urls == {"https://github.com/one/a", "https://github.com/two/b"}
    names = [a["name"] for a in client.get("/api/v1/accounts", headers=OWNER).json()["accounts"]]
    assert names == ["One", "Two"]


def test_bad_account_and_key_requests(world):
    client, *_ = world
    octo = account(client)
    for body in ({"name": "x"}, {"name": "x", "email": "nope"},
                 {"name": "x", "email": "a@b.example", "plan": "gold"}, [1]):
        assert client.post("/api/v1/accounts", headers=OWNER,
                           json=body).status_code == 400, body
    for body in ({"name": "k", "scopes": []}, {"name": "k", "scopes": ["root"]},
                 {"name": "", "scopes": ["read"]}, {"name": "k", "scopes": ["read"], "x": 1}):
        assert client.post(f"/api/v1/accounts/{octo}/keys", headers=OWNER,
                           json=body).status_code == 400, body
    assert client.delete("/api/v1/keys/999", headers=OWNER).status_code == 404


def test_repeated_failures_from_one_address_are_slowed(world):
    client, *_ = world
    auth = client.app.middleware_stack  # the outermost middleware: the bearer guard
    while not hasattr(auth, "failures"):
        auth = auth.app
    waits = [auth.failures.delay("203.0.113.9") for _ in range(9)]
    assert waits[:5] == [0.0] * 5 and waits[5:] == [0.125, 0.25, 0.5, 1.0]
    assert auth.failures.delay("198.51.100.1") == 0.0  # another address is not
    # the TestClient's address is not loopback: its failures count too
    for _ in range(6):
        client.get("/api/v1/repos", headers=bearer("na_live_" + "y" * 43))
    assert auth.failures._seen["testclient"][0] == 6


# --- tenancy ---------------------------------------------------------------------------------

def read_routes(url: str) -> list[tuple[str, str, dict]]:
    """Every read that names a repository, with parameters that succeed on its graph."""
    return [("GET", "/api/v1/graph/dependencies", {"repo": url, "path": "a.py"}),
            ("GET", "/api/v1/graph/dependents", {"repo": url, "path": "b.py"}),
            ("GET", "/api/v1/graph/path", {"repo": url, "from": "a.py", "to": "b.py"}),
            ("GET", "/api/v1/graph/hotspots", {"repo": url}),
            ("GET", "/api/v1/graph/cycles", {"repo": url}),
            ("GET", "/api/v1/graph/snapshot", {"repo": url}),
            ("GET", "/api/v1/graph/symbols", {"repo": url, "name": "a"}),
            ("POST", "/api/v1/search", {"query": "a", "repo": url, "mode": "keyword"}),
            ("POST", "/api/v1/impact", {"repo": url, "files": ["b.py"]})]


def ask(client, method: str, path: str, params: dict, headers: dict):
    if method == "GET":
        return client.get(path, params=params, headers=headers)
    return client.post(path, json=params, headers=headers)


@given(owners=st.lists(st.frozensets(st.integers(0, 2), min_size=1, max_size=3), min_size=1,
                     max_size=4),
       scopes=st.lists(st.sets(st.sampled_from(["read", "ingest", "admin"]), min_size=1),
                       min_size=3, max_size=3))
@hyp_settings(max_examples=12, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_read_crosses_accounts(world, owners, scopes):
    """Random accounts, keys and repositories: whatever the route or parameter, a key
    sees its account's repositories and nothing of the others'."""
    client, store, queue = world
    run = uuid.uuid4().hex[:8]
    accounts = [store.create_account(f"a{i}-{run}", f"a{i}-{run}@y.example").id for i in range(3)]
    keys = [store.create_key(a, "k", s)[1] for a, s in zip(accounts, scopes)]
    urls = [f"https://github.com/t{run}/r{i}" for i in range(len(owners))]
    for url, owned_by in zip(urls, owners):
        indexed(store, url, [accounts[i] for i in owned_by])
        queue.enqueue(url)
    for i, secret in enumerate(keys):
        mine = {u for u, owned_by in zip(urls, owners) if i in owned_by}
        auth = bearer(secret)
        if "read" not in scopes[i]:
            assert client.get("/api/v1/repos", headers=auth).status_code == 403
            continue
        listed = {r["url"] for r in client.get("/api/v1/repos", headers=auth).json()["repos"]}
        assert listed == mine
        everywhere = client.post("/api/v1/search", headers=auth,
                                 json={"query": "a", "mode": "keyword"}).json()
        assert {t["repo"] for t in everywhere["index"]} == mine
        jobs = client.get("/api/v1/ingestion/overview", headers=auth).json()["jobs"]
        assert {j["repo_url"] for j in jobs} <= mine
        for url in urls:
            for method, path, params in read_routes(url):
                answer = ask(client, method, path, params, auth)
                if url in mine:
                    assert answer.status_code == 200, (path, answer.text)
                else:  # answered as a repository that does not exist
                    assert answer.status_code == 404, (path, answer.text)
                    assert answer.json()["detail"].startswith(
                        f"repository {url} is not indexed; ingest it first"), answer.text
            record = store.repo_record(url)
            seen = client.get(f"/api/v1/repos/{record.id}", headers=auth)
            assert seen.status_code == (200 if url in mine else 404)


def test_jobs_history_and_workers_show_an_account_only_its_own(world):
    client, store, queue = world
    one, two = account(client, name="One"), account(client, name="Two")
    secret = key(client, one, ["read"])["key"]
    mine, theirs = "https://github.com/one/a", "https://github.com/two/b"
    store.grant_repo(mine, one)
    store.grant_repo(theirs, two)
    queue.enqueue(theirs)
    queue.enqueue(mine)
    running = queue.claim(WorkerStatus("w1"))  # theirs, first in: still running
    queue.heartbeat(WorkerStatus("w1", state=WorkerState.RUNNING, repo_url=theirs,
                                 job_id=running.id, stage="parse"), running)
    done = queue.claim(WorkerStatus("w2"))
    queue.finish(done, JobState.COMPLETE, WorkerStatus("w2"))
    auth = bearer(secret)
    history = client.get("/api/v1/ingestion/jobs/history", headers=auth).json()["jobs"]
    assert [j["repo_url"] for j in history] == [mine]
    assert client.get(f"/api/v1/ingestion/jobs/{running.id}", headers=auth).status_code == 404
    assert client.get(f"/api/v1/ingestion/jobs/{done.id}", headers=auth).status_code == 200
    for path in ("/api/v1/ingestion/overview", "/api/v1/ingestion/worker/status"):
        seen = client.get(path, headers=auth)
        assert seen.status_code == 200 and theirs not in seen.text and running.id not in seen.text
        assert "Busy" in seen.text  # a worker at another account's job is only busy
        assert theirs in client.get(path, headers=OWNER).text


def test_a_shared_repository_is_released_not_deleted(world):
    client, store, queue = world
    one, two = account(client, name="One"), account(client, name="Two")
    k1, k2 = key(client, one)["key"], key(client, two)["key"]
    url = "https://github.com/octo/shared"
    for secret in (k1, k2):
        answer = client.post("/api/v1/repos", headers=bearer(secret), json={"url": url})
        assert answer.status_code in (200, 201), answer.text
    repo_id = store.repo_record(url).id
    released = client.delete(f"/api/v1/repos/{repo_id}", headers=bearer(k1)).json()
    assert released["released"] and store.repo_record(url) is not None
    assert client.get(f"/api/v1/repos/{repo_id}", headers=bearer(k1)).status_code == 404
    assert client.delete(f"/api/v1/repos/{repo_id}", headers=bearer(k2)).status_code == 200
    assert store.repo_record(url) is None


# --- e-mail addresses, changes and deletion --------------------------------------------------

def test_an_e_mail_address_belongs_to_one_account_in_any_case(world):
    client, store, _ = world
    first = client.post("/api/v1/accounts", headers=OWNER,
                        json={"name": "Octo", "email": "Ops@Octo.example"})
    assert first.status_code == 201
    again = client.post("/api/v1/accounts", headers=OWNER,
                        json={"name": "Octo 2", "email": "ops@octo.EXAMPLE"})
    assert again.status_code == 409 and again.json() == {
        "error": "conflict", "detail": "another account has the e-mail address "
                                       "'ops@octo.EXAMPLE'"}
    assert len(store.accounts()) == 1  # nothing made
    other = account(client, name="Other")
    taken = client.patch(f"/api/v1/accounts/{other}", headers=OWNER,
                         json={"email": "OPS@octo.example", "name": "Renamed"})
    assert taken.status_code == 409 and store.account(other).name == "Other"  # all or none
    own = client.patch(f"/api/v1/accounts/{first.json()['id']}", headers=OWNER,
                       json={"email": "ops@octo.example"})  # its own address, recased
    assert own.status_code == 200 and own.json()["email"] == "ops@octo.example"


def test_the_owner_changes_an_accounts_plan_name_and_e_mail(world):
    client, store, _ = world
    made = account(client)
    secret = key(client, made)["key"]
    changed = client.patch(f"/api/v1/accounts/{made}", headers=OWNER,
                           json={"plan": "tiny", "name": "Octo Inc", "email": "b@c.example"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["plan"], changed.json()["name"], changed.json()["email"]) == (
        "tiny", "Octo Inc", "b@c.example")
    me = client.get("/api/v1/accounts/me", headers=bearer(secret)).json()
    assert me["plan"]["name"] == "tiny"  # its limits follow at once
    for body, message in [({"plan": "gold"}, "plan must be one of"),
                          ({"email": "nope"}, "e-mail address"), ({"name": ""}, "name"),
                          ({"state": "closed"}, "unknown field")]:
        refused = client.patch(f"/api/v1/accounts/{made}", headers=OWNER, json=body)
        assert refused.status_code == 400 and message in refused.json()["detail"], body
    assert store.account(made).plan == "tiny"
    assert client.patch("/api/v1/accounts/999", headers=OWNER, json={}).status_code == 404
    # the admin token only: not even the account's own admin key
    assert client.patch(f"/api/v1/accounts/{made}", headers=bearer(secret),
                        json={"plan": "team"}).status_code == 403
    assert client.delete(f"/api/v1/accounts/{made}", headers=bearer(secret)).status_code == 403


def test_deleting_an_account_revokes_its_keys_and_lets_go_of_its_repositories(world):
    client, store, _ = world
    leaving, staying = account(client, name="Leaving"), account(client, name="Staying")
    secret, other = key(client, leaving)["key"], key(client, staying)["key"]
    only, shared = "https://github.com/octo/only", "https://github.com/octo/shared"
    for url, keys in ((only, [secret]), (shared, [secret, other])):
        for k in keys:
            answer = client.post("/api/v1/repos", headers=bearer(k), json={"url": url})
            assert answer.status_code in (200, 201), answer.text
    store.write_snapshot(import_graph([("a.py", "b.py")], repo=only))
    gone = client.delete(f"/api/v1/accounts/{leaving}", headers=OWNER)
    assert gone.status_code == 200 and gone.json() == {
        "deleted": leaving, "repositories_deleted": [only], "repositories_released": [shared]}
    assert client.get("/api/v1/repos", headers=bearer(secret)).status_code == 401
    assert store.repo_record(only) is None and store.snapshots(only) == []
    assert store.repo_record(shared) is not None and store.owners_of(shared) == {staying}
    assert store.account(leaving) is None and store.keys(leaving) == []
    assert client.delete(f"/api/v1/accounts/{leaving}", headers=OWNER).status_code == 404
    listed = client.get("/api/v1/repos", headers=bearer(other)).json()["repos"]
    assert [r["url"] for r in listed] == [shared]


def test_an_account_stripe_bills_is_not_deleted(world):
    client, store, _ = world
    paying = account(client, name="Paying")
    secret = key(client, paying)["key"]
    store.apply_subscription(paying, "sub_1", "active", "tiny", 1.0)
    refused = client.delete(f"/api/v1/accounts/{paying}", headers=OWNER)
    assert refused.status_code == 409 and refused.json()["error"] == "subscribed"
    assert "cancel it first" in refused.json()["detail"]
    assert client.get("/api/v1/accounts/me", headers=bearer(secret)).status_code == 200
    store.apply_subscription(paying, "sub_1", "canceled", "free", 2.0)  # Stripe said so
    assert client.delete(f"/api/v1/accounts/{paying}", headers=OWNER).status_code == 200


# --- plan limits -----------------------------------------------------------------------------

def test_queries_are_refused_exactly_at_the_plan_limit_under_concurrency(world):
    client, store, _ = world
    tiny = account(client, plan="tiny")
    secret = key(client, tiny, ["read"])["key"]
    url = "https://github.com/tiny/a"
    indexed(store, url, [tiny])
    ask_once = lambda _: client.get("/api/v1/graph/hotspots", params={"repo": url},
                                    headers=bearer(secret))
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask_once, range(12)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 5 + [429] * 7  # the plan's 5 a minute, not one more
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["error"] == "limit_exceeded" and "queries" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-Limit"] == "queries"
    # the owner is never limited; status polls are not questions
    assert client.get("/api/v1/graph/hotspots", params={"repo": url},
                      headers=OWNER).status_code == 200
    assert client.get("/api/v1/ingestion/overview", headers=bearer(secret)).status_code == 200
    days = client.get("/api/v1/usage", headers=bearer(secret)).json()["days"]
    assert days[-1]["queries"] == 5


def test_ingests_and_repositories_are_limited_per_plan(world):
    client, store, queue = world
    tiny = account(client, plan="tiny")
    secret = key(client, tiny, ["ingest", "read"])["key"]
    send = lambda n: client.post(f"/api/v1/ingestion/ingest/github.com/tiny/r{n}",
                                 headers=bearer(secret))
    assert send(1).status_code == 200 and send(2).status_code == 200
    third = send(3)  # a third repository: the plan has room for two
    assert third.status_code == 429 and third.headers["X-Limit"] == "repositories"
    assert "Retry-After" not in third.headers  # a count: waiting frees nothing
    bad = client.post("/api/v1/ingestion/ingest/not a url", headers=bearer(secret))
    assert bad.status_code == 400  # refused and malformed submissions count nothing
    assert send(1).status_code == 200  # its own again: the third ingest of the day
    fourth = send(2)
    assert fourth.status_code == 429 and fourth.headers["X-Limit"] == "ingests"
    assert int(fourth.headers["Retry-After"]) <= 86_400
    assert store.repos_of(tiny) == {"https://github.com/tiny/r1", "https://github.com/tiny/r2"}
    assert queue.pending_count() == 2
    for who, query in ((bearer(secret), ""), (OWNER, f"?account_id={tiny}")):
        used = client.get(f"/api/v1/usage{query}", headers=who).json()  # key and owner alike
        assert (used["repositories"], used["plan"]["repositories"]) == (2, 2)


def test_a_key_meets_an_unreachable_graph_store_with_the_api_s_503(tmp_path):
    """Keys live in the graph store: with it down, a key gets the routes' own 503 (not a
    500, not a 401), while the admin token, which needs no store, works on."""
    from tests.servers import free_port

    dead = f"postgresql://neo@127.0.0.1:{free_port()}/gone?connect_timeout=1"
    service = QueryService(lambda: PostgresGraphStore(dead), lambda: None, lambda: None)
    queue = SqliteQueue(tmp_path / "queue.db")
    with TestClient(create_app(Settings(admin_token=TOKEN), queue=queue,
                               query=service)) as client:
        answer = client.get("/api/v1/repos", headers=bearer("na_live_" + "z" * 43))
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "graph_store_unavailable"
        assert "Retry-After" in answer.headers
        assert client.get("/api/v1/ingestion/overview", headers=OWNER).status_code == 200
    queue.close()


def test_me_says_which_plans_this_server_sells(tmp_path):
    store = SqliteGraphStore(tmp_path / "graph.db")
    queue = SqliteQueue(tmp_path / "queue.db")
    service = QueryService(lambda: store, lambda: None, lambda: None)
    priced = Settings(admin_token=TOKEN, stripe_secret_key="sk_test_only_pro",
                      stripe_webhook_secret="whsec_test", plans_json=PLANS,
                      stripe_prices=(("team", "price_t"), ("pro", "price_p"),
                                     ("tiny", "price_tiny")))
    order = ["tiny", "free", "pro", "team"]  # smallest first: PLANS's tiny is below free
    for settings, sold in ((priced, ["tiny", "pro", "team"]), (Settings(admin_token=TOKEN), [])):
        with TestClient(create_app(settings, queue=queue, query=service)) as client:
            octo = account(client)
            me = client.get("/api/v1/accounts/me", headers=bearer(key(client, octo)["key"]))
            assert me.json()["for_sale"] == sold and me.json()["billing"] == bool(sold)
            owner = client.get("/api/v1/accounts/me", headers=OWNER).json()
            assert owner["for_sale"] == sold
            assert owner["plan_order"] == (order if settings is priced else order[1:])
    queue.close()
    store.close()
