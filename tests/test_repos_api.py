"""The repository registry's API and the GitHub/GitLab webhooks, over HTTP on the real
app: a SQLite queue, the registry in SQLite and in a real PostgreSQL (every test runs on
both), Qdrant local mode."""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import uuid

import numpy as np
import pytest
from starlette.testclient import TestClient

from cloud.app import create_app
from cloud.query import QueryService
from shared.graph.store import PostgresGraphStore, SqliteGraphStore
from shared.graph.store.registry import RepoState
from shared.jobs import JobState, WorkerStatus
from shared.queue.sqlite import SqliteQueue
from shared.settings import Settings
from shared.vectors import VectorStore

TOKEN = "repos-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "default-webhook-secret-0123"
URL = "https://github.com/octo/widgets"


@contextlib.contextmanager
def real_app(request, tmp_path, settings: Settings, **queue_options):
    """The app (TestClient) on the backend `request.param` names for the graph store
    (sqlite, or postgres: a database of its own), Qdrant local mode and a SQLite queue:
    (client, store, vectors, queue)."""
    if request.param == "postgres":
        store = PostgresGraphStore(request.getfixturevalue("postgres_url"))
    else:
        store = SqliteGraphStore(tmp_path / "graph.db")
    vectors = VectorStore(path=tmp_path / "qdrant")
    service = QueryService(lambda: store, lambda: vectors, lambda: None)
    queue = SqliteQueue(tmp_path / "queue.db", **queue_options)
    try:
        with TestClient(create_app(settings, queue=queue, query=service)) as client:
            yield client, store, vectors, queue
    finally:
        vectors.close()
        store.close()
        queue.close()


@pytest.fixture(params=["sqlite", "postgres"])
def world(tmp_path, request):
    with real_app(request, tmp_path, Settings(admin_token=TOKEN, webhook_secret=SECRET)) as made:
        yield made


def register(client, **body):
    answer = client.post("/api/v1/repos", json={"url": URL, **body}, headers=AUTH)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


# --- the registry's routes --------------------------------------------------------------------

def test_register_queues_the_first_ingest_once(world):
    client, store, _, queue = world
    first = register(client, branches=["main"], sync_interval=3600,
                     webhook_secret="its-own-secret-0123456")
    assert first["created"] and first["job"]["job_id"] and first["repo"]["state"] == "queued"
    assert first["repo"]["has_secret"] and "its-own-secret" not in json.dumps(first)
    again = register(client, url="https://github.com/octo/widgets.git")
    assert not again["created"] and again["repo"]["id"] == first["repo"]["id"]
    assert queue.pending_count() == 1
    listed = client.get("/api/v1/repos", headers=AUTH).json()["repos"]
    assert [(r["url"], r["state"], r["sync_interval"]) for r in listed] == [
        (URL, "queued", 3600)]
    # the first job, still waiting, is named as a running or finished one is
    assert listed[0]["last_job"] == {"state": "queued", "job_id": first["job"]["job_id"]}
    assert client.get(f"/api/v1/repos/{first['repo']['id']}",
                      headers=AUTH).json()["branches"] == ["main"]


@pytest.mark.parametrize("body, message", [
    ({"url": URL, "colour": "red"}, "unknown field 'colour'"),
    ({"url": URL, "branches": ["ok", "../up"]}, "branch names"),
    ({"url": URL, "branches": "main"}, "branch names"),
    ({"url": URL, "sync_interval": 60}, "sync_interval"),
    ({"url": URL, "sync_interval": True}, "sync_interval"),
    ({"url": URL, "webhook_secret": "short"}, "webhook_secret"),
    ({"branches": ["main"]}, "url"),
    ({"url": "http://127.0.0.1/x"}, "loopback"),
])
def test_bad_registrations_are_refused_and_queue_nothing(world, body, message):
    client, _, _, queue = world
    answer = client.post("/api/v1/repos", json=body, headers=AUTH)
    assert answer.status_code == 400 and message in answer.json()["detail"], answer.text
    assert queue.pending_count() == 0


def test_bodies_that_are_not_json_objects_or_too_large(world):
    client, *_ = world
    assert client.post("/api/v1/repos", content=b"{nope", headers=AUTH).status_code == 400
    assert client.post("/api/v1/repos", json=[URL], headers=AUTH).status_code == 400
    big = json.dumps({"url": URL, "pad": "x" * 70_000})
    assert client.post("/api/v1/repos", content=big, headers=AUTH).status_code == 413
    assert client.post("/api/v1/repos", json={"url": URL}).status_code == 401


def test_patch_changes_settings_and_refuses_the_rest(world):
    client, store, *_ = world
    repo_id = register(client)["repo"]["id"]
    changed = client.patch(f"/api/v1/repos/{repo_id}", headers=AUTH,
                           json={"branches": ["main", "release/2.x"], "sync_interval": 0})
    assert changed.status_code == 200 and changed.json()["branches"] == ["main", "release/2.x"]
    assert client.patch(f"/api/v1/repos/{repo_id}", headers=AUTH,
                        json={"url": "https://x.org/y"}).status_code == 400
    assert client.patch("/api/v1/repos/999", headers=AUTH, json={}).status_code == 404
    assert client.get("/api/v1/repos/abc", headers=AUTH).status_code == 404


def test_sync_merges_into_the_queued_job_and_force_reaches_the_registry(world):
    client, store, _, queue = world
    repo_id = register(client)["repo"]["id"]
    first = client.post(f"/api/v1/repos/{repo_id}/sync", json={"force": True}, headers=AUTH)
    second = client.post(f"/api/v1/repos/{repo_id}/sync", headers=AUTH)
    assert first.status_code == second.status_code == 202
    assert first.json()["duplicate"] and second.json()["job_id"] == first.json()["job_id"]
    assert queue.pending_count() == 1 and store.forced(URL)
    assert client.post(f"/api/v1/repos/{repo_id}/sync", json={"force": "yes"},
                       headers=AUTH).status_code == 400
    assert client.post("/api/v1/repos/42/sync", headers=AUTH).status_code == 404


def test_delete_removes_vectors_snapshots_and_the_record(world):
    from tests.test_graph_store import import_graph
    client, store, vectors, _ = world
    repo_id = register(client)["repo"]["id"]
    store.write_snapshot(import_graph([("a.py", "b.py")], repo=URL))
    vectors.write_structure(URL, "c1", "job", ["a.py", "b.py"], np.ones((2, 64), np.float32))
    answer = client.delete(f"/api/v1/repos/{repo_id}", headers=AUTH)
    assert answer.status_code == 200 and answer.json()["url"] == URL
    assert vectors.count(URL) == 0 and store.snapshots(URL) == []
    assert client.get(f"/api/v1/repos/{repo_id}", headers=AUTH).status_code == 404
    assert client.delete(f"/api/v1/repos/{repo_id}", headers=AUTH).status_code == 404


def test_an_ingest_registers_the_repository_on_first_use(world):
    client, store, *_ = world
    answer = client.post("/api/v1/ingestion/ingest/github.com/octo/widgets", headers=AUTH)
    assert answer.status_code == 200
    record = store.repo_record(URL)
    assert record is not None and record.state.value == "queued"


# --- webhooks ---------------------------------------------------------------------------------

def github_push(branch: str = "main", url: str = URL, **extra) -> dict:
    return {"ref": f"refs/heads/{branch}", "after": "a" * 40,
            "repository": {"clone_url": url + ".git", "html_url": url,
                           "default_branch": "main"}, **extra}


def send_github(client, payload, secret: str = SECRET, event: str = "push",
                delivery: str | None = None, raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post("/api/v1/webhooks/github", content=body, headers={
        "X-Hub-Signature-256": signature, "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "Content-Type": "application/json"})


def test_a_signed_push_queues_one_sync_and_a_second_push_merges(world):
    client, store, _, queue = world
    register(client)
    first = send_github(client, github_push())
    second = send_github(client, github_push(after="b" * 40))
    assert first.status_code == second.status_code == 202
    assert first.json()["status"] == "queued" and second.json()["duplicate"]
    assert queue.pending_count() == 1
    record = store.repo_record(URL)
    assert record.last_push_at > 0 and record.state.value == "queued"


def test_forged_missing_and_replayed_deliveries_queue_nothing(world):
    client, store, _, queue = world
    register(client)
    job = queue.claim(WorkerStatus("w"))
    assert job is not None and queue.pending_count() == 0
    assert send_github(client, github_push(), secret="wrong-secret-0000000").status_code == 401
    unsigned = client.post("/api/v1/webhooks/github", json=github_push(),
                           headers={"X-GitHub-Event": "push"})
    assert unsigned.status_code == 401
    delivery = str(uuid.uuid4())
    assert send_github(client, github_push(), delivery=delivery).status_code == 202
    replay = send_github(client, github_push(), delivery=delivery)
    assert replay.status_code == 200 and replay.json() == {"status": "duplicate"}
    assert queue.pending_count() == 1  # the first delivery's sync only


def test_the_signature_is_checked_before_the_body_is_judged(world):
    """A body that is not JSON names no repository: only WEBHOOK_SECRET can sign it, and
    anything else is 401 (not 400: nothing unverified is answered on)."""
    client, _, _, queue = world
    register(client)
    queue.claim(WorkerStatus("w"))
    for raw in (b"{not json", b"\xff\xfe", b"[1, 2]"):
        forged = send_github(client, None, secret="wrong-secret-0000000", raw=raw)
        assert forged.status_code == 401, (raw, forged.text)
        unsigned = client.post("/api/v1/webhooks/github", content=raw,
                               headers={"X-GitHub-Event": "push"})
        assert unsigned.status_code == 401 and unsigned.json()["error"] == "unauthorized"
    assert gitlab_raw(client, b"{not json", token="not-the-token-000000").status_code == 401
    signed = send_github(client, None, raw=b"{not json")  # WEBHOOK_SECRET signed it
    assert signed.status_code == 400 and "not valid JSON" in signed.json()["detail"]
    assert gitlab_raw(client, b"{not json").status_code == 400
    assert queue.pending_count() == 0


def gitlab_raw(client, body: bytes, token: str = SECRET):
    return client.post("/api/v1/webhooks/gitlab", content=body, headers={
        "X-Gitlab-Token": token, "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Event-UUID": str(uuid.uuid4())})


def test_unknown_repositories_and_untracked_branches_look_the_same(world):
    client, _, _, queue = world
    register(client)
    queue.claim(WorkerStatus("w"))
    unknown = send_github(client, github_push(url="https://github.com/octo/secret-project"))
    untracked = send_github(client, github_push(branch="feature/x"))
    tag = send_github(client, {**github_push(), "ref": "refs/tags/v1"})
    assert unknown.status_code == untracked.status_code == tag.status_code == 202
    assert unknown.json() == untracked.json() == {"status": "ignored"}
    assert queue.pending_count() == 0


def test_size_json_ping_and_branch_deletion(world):
    client, store, _, queue = world
    register(client)
    big = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert send_github(client, None, raw=big).status_code == 413
    assert send_github(client, None, raw=b"{not json").status_code == 400
    ping = send_github(client, {"zen": "Keep it simple.", "repository": {"html_url": URL}},
                       event="ping")
    assert ping.status_code == 200 and ping.json() == {"status": "pong"}
    store.request_sync(URL, branch="main", remote_commit="c" * 40)
    deleted = send_github(client, github_push(deleted=True, after="0" * 40))
    assert deleted.status_code == 202 and deleted.json()["status"] == "default branch deleted"
    assert store.repo_record(URL).branch_states == {}
    assert queue.pending_count() == 1  # the first ingest's job, and nothing more


def _indexed_on_master(client, store, queue) -> str:
    """A repository whose default branch `master` is indexed and served: its commit."""
    from tests.test_graph_store import import_graph
    register(client)
    queue.finish(queue.claim(WorkerStatus("w")), JobState.COMPLETE, WorkerStatus("w"))
    commit = "1" * 40
    snapshot = store.write_snapshot(import_graph([("a.py", "b.py")], repo=URL, commit=commit))
    store.set_repo_state(URL, RepoState.READY, branch="master",
                         commit=commit, snapshot_id=snapshot.id, default_branch="master")
    return commit


@pytest.mark.parametrize("host", ["github", "gitlab"])
def test_deleting_the_default_branch_keeps_serving_its_index_stale_and_resyncs(world, host):
    """The remote's default branch moved (a rename: master -> main) and the old one was
    deleted. The record says so without contradicting itself: the old index answers,
    stale, naming the deleted branch; a sync of the remote's default branch is queued;
    a push to the new default branch is followed and merges into it; once that is
    indexed, nothing is stale."""
    from tests.test_graph_store import import_graph
    client, store, _, queue = world
    commit = _indexed_on_master(client, store, queue)
    if host == "github":
        answer = send_github(client, github_push(branch="master", deleted=True,
                                                 after="0" * 40))
    else:
        answer = gitlab(client, {"ref": "refs/heads/master", "after": "0" * 40,
                                 "project": {"web_url": URL, "default_branch": "main"}})
    assert answer.status_code == 202 and answer.json()["status"] == "default branch deleted"
    job_id = answer.json()["job_id"]
    record = store.repo_record(URL)
    assert (record.state.value, record.default_branch, record.deleted_branch) == (
        "queued", "", "master")
    assert record.branch_states == {} and record.stale
    (listed,) = client.get("/api/v1/repos", headers=AUTH).json()["repos"]
    assert (listed["state"], listed["commit"], listed["stale"], listed["indexed"],
            listed["deleted_branch"], listed["last_job"]) == (
        "queued", commit, True, {}, "master", {"state": "queued", "job_id": job_id})
    assert client.get(f"/api/v1/repos/{listed['id']}",
                      headers=AUTH).json()["deleted_branch"] == "master"
    index = client.get("/api/v1/graph/hotspots", params={"repo": "github.com/octo/widgets"},
                       headers=AUTH).json()["index"]
    assert (index["commit"], index["stale"], index["deleted_branch"]) == (
        commit, True, "master")

    push = send_github(client, github_push(branch="main", after="2" * 40))  # followed
    assert push.status_code == 202 and push.json()["job_id"] == job_id  # merged
    assert queue.claim(WorkerStatus("w")).repo_url == URL  # the default index's sync
    # the worker cloned the remote's HEAD (main) and indexed it
    fresh = store.write_snapshot(import_graph([("a.py", "b.py")], repo=URL, commit="2" * 40))
    store.set_repo_state(URL, RepoState.READY, branch="main", commit="2" * 40,
                         snapshot_id=fresh.id, default_branch="main")
    record = store.repo_record(URL)
    assert (record.default_branch, record.deleted_branch, record.stale) == ("main", "", False)
    assert list(record.branch_states) == ["main"]
    index = client.get("/api/v1/graph/hotspots", params={"repo": "github.com/octo/widgets"},
                       headers=AUTH).json()["index"]
    assert index["stale"] is False and "deleted_branch" not in index and index["ref"] == "main"


def test_deleting_the_default_branch_with_the_queue_full_leaves_it_stale(world):
    client, store, _, queue = world
    _indexed_on_master(client, store, queue)
    client.app.state.queue.max_queue_size = 1
    queue.enqueue("https://github.com/octo/other")  # the queue is full
    delivery = str(uuid.uuid4())
    push = github_push(branch="master", deleted=True, after="0" * 40)
    assert send_github(client, push, delivery=delivery).status_code == 429
    record = store.repo_record(URL)
    assert (record.state.value, record.deleted_branch) == ("stale", "master")
    assert "deleted on the remote" in record.reason and record.stale
    queue.claim(WorkerStatus("w"))  # room again: the redelivery queues the sync
    again = send_github(client, push, delivery=delivery)
    assert again.status_code == 202 and store.repo_record(URL).state.value == "queued"


def test_a_repository_s_own_secret_replaces_the_default(world):
    client, *_ = world
    register(client, webhook_secret="its-own-secret-0123456")
    assert send_github(client, github_push()).status_code == 401  # the default no longer
    assert send_github(client, github_push(),
                       secret="its-own-secret-0123456").status_code == 202


def gitlab(client, payload, token: str = SECRET, event: str = "Push Hook"):
    return client.post("/api/v1/webhooks/gitlab", json=payload, headers={
        "X-Gitlab-Token": token, "X-Gitlab-Event": event,
        "X-Gitlab-Event-UUID": str(uuid.uuid4())})


def test_gitlab_push_hooks_by_token(world):
    client, _, _, queue = world
    url = "https://gitlab.com/octo/widgets"
    client.post("/api/v1/repos", json={"url": url}, headers=AUTH)
    queue.claim(WorkerStatus("w"))
    push = {"ref": "refs/heads/main", "after": "d" * 40,
            "project": {"git_http_url": url + ".git", "web_url": url,
                        "default_branch": "main"}}
    assert gitlab(client, push, token="not-the-token-000000").status_code == 401
    assert gitlab(client, {**push, "ref": "refs/tags/v2"}, event="Tag Push Hook").json() == {
        "status": "ignored"}
    assert queue.pending_count() == 0
    answer = gitlab(client, push)
    assert answer.status_code == 202 and answer.json()["status"] == "queued"
    assert queue.pending_count() == 1


def test_a_second_registration_with_other_settings_is_a_conflict(world):
    client, *_ = world
    repo_id = register(client, sync_interval=3600)["repo"]["id"]
    answer = client.post("/api/v1/repos", json={"url": URL, "sync_interval": 600},
                         headers=AUTH)
    assert answer.status_code == 409 and f"PATCH /api/v1/repos/{repo_id}" in answer.json()[
        "detail"]
    assert client.post("/api/v1/repos", json={"url": URL, "sync_interval": 3600},
                       headers=AUTH).status_code == 200


def test_a_registration_refused_by_a_full_queue_is_queued_when_asked_again(world):
    client, store, _, queue = world
    client.app.state.queue.max_queue_size = 1
    queue.enqueue("https://github.com/octo/other")
    assert client.post("/api/v1/repos", json={"url": URL}, headers=AUTH).status_code == 429
    assert store.repo_record(URL).state.value == "registered"
    queue.claim(WorkerStatus("w"))
    again = client.post("/api/v1/repos", json={"url": URL}, headers=AUTH)
    assert again.status_code == 200 and again.json()["job"]["job_id"]
    assert store.repo_record(URL).state.value == "queued"


def test_a_delivery_refused_by_a_full_queue_can_be_redelivered(world):
    client, _, _, queue = world
    register(client)
    queue.claim(WorkerStatus("w"))
    client.app.state.queue.max_queue_size = 1
    queue.enqueue("https://github.com/octo/other")
    delivery = str(uuid.uuid4())
    assert send_github(client, github_push(), delivery=delivery).status_code == 429
    queue.claim(WorkerStatus("w2"))  # room again: GitHub's "Redeliver" sends the same id
    answer = send_github(client, github_push(), delivery=delivery)
    assert answer.status_code == 202 and answer.json()["status"] == "queued"


def test_hostile_json_and_other_casing(world):
    client, _, _, queue = world
    register(client)
    queue.claim(WorkerStatus("w"))
    nested = b"[" * 100_000
    assert send_github(client, None, raw=nested).status_code == 400
    deep = b"[" * 60_000  # under the API's 64 KiB
    assert client.post("/api/v1/repos", content=deep, headers=AUTH).status_code == 400
    assert client.post("/api/v1/search", content=deep, headers=AUTH).status_code == 400
    shouted = send_github(client, github_push(url="https://github.com/Octo/Widgets"))
    assert shouted.status_code == 202 and shouted.json()["status"] == "queued"


def test_a_push_to_another_tracked_branch_queues_that_branch_s_own_index(world):
    client, store, _, queue = world
    register(client, branches=["main", "develop"])
    queue.claim(WorkerStatus("w"))
    store.set_repo_state(URL, store.repo_record(URL).state, default_branch="main")
    answer = send_github(client, github_push(branch="develop", after="e" * 40))
    assert answer.status_code == 202 and answer.json()["status"] == "queued"
    job = queue.claim(WorkerStatus("w2"))
    assert job.repo_url == URL + "#develop"  # its own jobs, snapshots and vectors
    assert store.repo_record(URL).branch_states["develop"].remote_commit == "e" * 40
    assert store.repo_record(URL).state.value == "queued"  # the default branch's state
    again = send_github(client, github_push(branch="develop", after="f" * 40))
    assert again.json()["status"] == "queued"  # the running job does not swallow it
    # A head that is no commit id is not stored (it is shown as the remote's head): the
    # sync is still queued, the last known head kept.
    odd = send_github(client, github_push(branch="develop", after="not-a-sha; rm -rf /"))
    assert odd.status_code == 202
    assert store.repo_record(URL).branch_states["develop"].remote_commit == "f" * 40


def test_before_the_first_ingest_the_payload_names_the_default_branch(world):
    client, _, _, queue = world
    register(client, branches=["main", "develop"])
    queue.claim(WorkerStatus("w"))
    answer = send_github(client, github_push(branch="main", after="a" * 40))
    assert queue.get_job(answer.json()["job_id"]).repo_url == URL


def test_syncing_a_branch_and_untracking_it(world):
    from tests.test_graph_store import import_graph
    client, store, vectors, queue = world
    repo_id = register(client, branches=["main", "develop"])["repo"]["id"]
    queue.claim(WorkerStatus("w"))
    store.set_repo_state(URL, store.repo_record(URL).state, default_branch="main")
    answer = client.post(f"/api/v1/repos/{repo_id}/sync", json={"branch": "develop",
                                                                "force": True}, headers=AUTH)
    assert answer.status_code == 202 and answer.json()["branch"] == "develop"
    assert queue.claim(WorkerStatus("w2")).repo_url == URL + "#develop"
    assert store.forced(URL + "#develop") and not store.forced(URL)
    assert client.post(f"/api/v1/repos/{repo_id}/sync", json={"branch": "gone"},
                       headers=AUTH).status_code == 400
    key = URL + "#develop"
    store.write_snapshot(import_graph([("a.py", "b.py")], repo=key))
    vectors.write_structure(key, "c1", "job", ["a.py", "b.py"], np.ones((2, 64), np.float32))
    assert store.index_keys(URL) == [URL, key]
    assert [r.url for r in store.repo_records()] == [URL]  # an index row is no record
    untracked = client.patch(f"/api/v1/repos/{repo_id}", json={"branches": ["main"]},
                             headers=AUTH)
    assert untracked.status_code == 200
    assert store.snapshots(key) == [] and vectors.count(key) == 0
    assert store.index_keys(URL) == [URL]


def test_delete_removes_every_branch_s_index_and_fences_out_a_running_job(world):
    from shared.graph.store import FencedOut
    from tests.test_graph_store import import_graph
    client, store, vectors, queue = world
    repo_id = register(client, branches=["main", "develop"])["repo"]["id"]
    running = queue.claim(WorkerStatus("w"))  # the first ingest, still running
    store.take(URL, running.fence)
    key = URL + "#develop"
    store.write_snapshot(import_graph([("a.py", "b.py")], repo=key))
    vectors.write_structure(key, "c1", "job", ["a.py"], np.ones((1, 64), np.float32))
    assert client.delete(f"/api/v1/repos/{repo_id}", headers=AUTH).status_code == 200
    assert store.snapshots(key) == [] and vectors.count(key) == 0
    assert store.index_keys(URL) == [URL] and store.repo_record(URL) is None
    with pytest.raises(FencedOut):  # its late write cannot bring the repository back
        store.write_snapshot(import_graph([("a.py", "b.py")], repo=URL), fence=running.fence)
    assert store.snapshots(URL) == []
    queue.finish(running, JobState.FAILED, WorkerStatus("w"), error="FencedOut")
    again = register(client)  # registered anew: its jobs write as before
    later = queue.claim(WorkerStatus("w3"))
    assert again["created"] and later.fence > running.fence
    store.write_snapshot(import_graph([("a.py", "b.py")], repo=URL), fence=later.fence)
