"""The design's numbered properties, as Hypothesis properties (>= 100 examples each).

They run against a real redis-server: the API through Starlette's TestClient,
the worker loop in-process with a real pipeline function.
"""
from __future__ import annotations

import re
import string
import time
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from cloud.app import create_app
from edge.worker import Worker
from shared.jobs import JobResult, JobState, WorkerState, WorkerStatus
from shared.queue.base import HISTORY_LIMIT
from shared.settings import Settings
from tests.queues import Clock, make_queue

TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PREFIX = "/api/v1/ingestion"

many = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

names = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=30).filter(
    lambda s: not s.endswith("_git"))
hosts = st.sampled_from(["github.com", "gitlab.com", "bitbucket.org", "codeberg.org"])


@pytest.fixture
def redis_queue(redis_url, tmp_path):
    made = []

    def factory(**options):
        queue = make_queue("redis", tmp_path=tmp_path, redis_url=redis_url, **options)
        made.append(queue)
        return queue

    yield factory
    for queue in made:
        queue.close()


@contextmanager
def api(queue, **overrides):
    settings_ = Settings(admin_token=TOKEN, max_queue_size=queue.max_queue_size, **overrides)
    with TestClient(create_app(settings_, queue=queue)) as client:
        yield client


# --- 1. queue round trip --------------------------------------------------------------
@many
@given(host=hosts, owner=names, name=names, suffix=st.sampled_from(["", "/", ".git", ".git/"]))
def test_p1_submitted_url_is_queued_with_a_real_id(redis_queue, host, owner, name, suffix):
    queue = redis_queue(max_queue_size=1000)
    with api(queue) as client:
        answer = client.post(f"{PREFIX}/ingest/https://{host}/{owner}/{name}{suffix}",
                             headers=AUTH)
        assert answer.status_code == 200
        body = answer.json()
        assert body["status"] == "dispatched" and re.fullmatch(r"[0-9a-f]{32}", body["job_id"])
        assert body["queue_position"] == 1 == body["queue_size"]
        assert body["target"] == f"https://{host}/{owner}/{name}"
        job = client.get(f"{PREFIX}/jobs/{body['job_id']}", headers=AUTH).json()
        assert job["state"] == "queued" and job["repo_url"] == body["target"]


# --- 3. malformed or malicious URLs are rejected before queuing -----------------------
bad_urls = st.one_of(
    st.builds(lambda s, rest: f"{s}://{rest}", st.sampled_from(["file", "ssh", "git", "ftp"]),
              names),
    st.builds(lambda opt, n: f"-{opt}{n}", st.sampled_from(["-upload-pack=", "u", "c "]), names),
    st.builds(lambda ip, n: f"https://{ip}/{n}/x",
              st.sampled_from(["127.0.0.1", "127.1", "2130706433", "0x7f000001", "10.0.0.8",
                               "192.168.1.1", "169.254.169.254", "[::1]", "[::ffff:127.0.0.1]",
                               "0.0.0.0", "172.16.5.4", "localhost", "db.internal", "x.local"]),
              names),
    st.builds(lambda u, n: f"https://{u}@github.com/{n}/x", names, names),
    st.builds(lambda n: f"https://github.com/{n}/../../etc", names),
    st.builds(lambda n, c: f"https://github.com/{n}/{c}x", names,
              st.sampled_from(["%00", "%0a", "\\", "%2e%2e/"])),
    st.builds(lambda n: "https://github.com/" + n * 1100, names),
)


@many
@given(url=bad_urls)
def test_p3_bad_urls_get_400_and_are_not_queued(redis_queue, url):
    queue = redis_queue()
    with api(queue) as client:
        answer = client.post(f"{PREFIX}/ingest/{url}", headers=AUTH)
        assert answer.status_code == 400, url
        assert answer.json()["error"] == "invalid_repo_url" and answer.json()["detail"]
    assert queue.pending_count() == 0


# --- 4. GET worker status returns exactly what the worker last reported ----------------
statuses = st.builds(
    WorkerStatus,
    worker_id=names,
    state=st.sampled_from([WorkerState.IDLE, WorkerState.RUNNING, WorkerState.ERROR]),
    repo_url=st.builds(lambda o, n: f"https://github.com/{o}/{n}", names, names),
    error=st.text(max_size=80),
    job_id=st.text("0123456789abcdef", min_size=32, max_size=32),
    stage=st.sampled_from(["", "fetch", "parse", "graph", "store"]),
    progress=st.floats(min_value=0, max_value=100, allow_nan=False),
    device=st.sampled_from(["cpu", "cuda:0 (NVIDIA GeForce RTX 4090)"]),
    heartbeat_seconds=st.floats(min_value=1, max_value=60),
)


@many
@given(reports=st.lists(statuses, min_size=1, max_size=3))
def test_p4_status_is_what_the_worker_last_reported(redis_queue, reports):
    queue = redis_queue()
    with api(queue) as client:
        for report in reports:
            queue.heartbeat(report)
        shown = {w["worker_id"]: w for w in
                 client.get(f"{PREFIX}/worker/status", headers=AUTH).json()["workers"]}
    last = {r.worker_id: r for r in reports}
    assert set(shown) == set(last)
    for worker_id, report in last.items():
        entry = shown[worker_id]
        for field in ("state", "repo_url", "error", "job_id", "stage", "progress", "device",
                      "heartbeat_seconds"):
            expected = getattr(report, field)
            assert entry[field] == (expected.value if field == "state" else expected), field
        assert entry["status"] == report.status
        # the time of the beat is the queue server's, not the worker's
        assert 0 <= entry["seconds_since_heartbeat"] < 5


# --- 2 and 11. status strings over a job's life --------------------------------------
outcomes = st.lists(st.one_of(st.none(), st.text(min_size=1, max_size=60)), min_size=1,
                    max_size=4)


@many
@given(outcomes=outcomes, owner=names)
def test_p2_p11_status_goes_idle_training_idle_or_error(redis_queue, outcomes, owner):
    queue = redis_queue()
    seen_while_running = []

    def pipeline(job, report):
        report("parse", 50)
        seen_while_running.append(queue.workers()[0].status)
        failure = messages[job.repo_url]
        if failure is not None:
            raise RuntimeError(failure)
        return JobResult(files_processed=1)

    worker = Worker(queue, pipeline, worker_id="w", heartbeat_seconds=0.05)
    assert worker.status.status == "Idle"
    messages = {}
    for i, failure in enumerate(outcomes):
        url = f"https://github.com/{owner}/r{i}"
        messages[url] = failure
        queue.enqueue(url)
        assert worker.run_once()
        assert seen_while_running[-1] == f"Training Graph on {url}"
        [after] = queue.workers()
        if failure is None:
            assert after.status == "Idle"
        else:
            shown = " ".join(failure.split()) or "RuntimeError"
            assert after.status == f"Error: {shown[:500]}"
        assert re.fullmatch(r"Idle|Training Graph on \S+|Error: .*|Offline", after.status, re.S)


# --- 10. history holds exactly the newest 100 -----------------------------------------
@many
@given(total=st.integers(min_value=0, max_value=150))
def test_p10_history_keeps_the_newest_100(redis_queue, total):
    queue = redis_queue(max_queue_size=1000)
    me = WorkerStatus(worker_id="w")
    for i in range(total):
        queue.enqueue(f"https://github.com/o/r{i}")
        queue.finish(queue.claim(me), JobState.COMPLETE, me)
    history = queue.history(HISTORY_LIMIT)
    assert len(history) == min(total, HISTORY_LIMIT)
    expected = [f"https://github.com/o/r{i}" for i in reversed(range(total))][:HISTORY_LIMIT]
    assert [r["repo_url"] for r in history] == expected


# --- 15, 16, 17. error conditions never answer 200 ------------------------------------
API_ROUTES = [("POST", f"{PREFIX}/ingest/github.com/a/b"), ("GET", f"{PREFIX}/worker/status"),
              ("GET", f"{PREFIX}/jobs/history"), ("GET", f"{PREFIX}/jobs/dead"),
              ("GET", f"{PREFIX}/overview"), ("GET", f"{PREFIX}/jobs/" + "a" * 32)]


@many
@given(route=st.sampled_from(API_ROUTES),
       header=st.one_of(st.none(), st.text(string.printable.strip(), max_size=60).map(
           lambda t: f"Bearer {t}"), st.sampled_from(["Basic dXNlcjpwYXNz", TOKEN,
                                                       f"Bearer {TOKEN}x", "Bearer"])))
def test_p17_api_without_the_token_is_401(redis_queue, route, header):
    queue = redis_queue()
    headers = {} if header is None else {"Authorization": header}
    with api(queue) as client:
        answer = client.request(*route, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert queue.pending_count() == 0


@many
@given(cap=st.integers(min_value=1, max_value=15), extra=st.integers(min_value=0, max_value=3))
def test_p16_full_queue_answers_429(redis_queue, cap, extra):
    queue = redis_queue(max_queue_size=cap)
    with api(queue) as client:
        for i in range(cap):
            assert client.post(f"{PREFIX}/ingest/github.com/o/r{i}", headers=AUTH).status_code == 200
        for i in range(extra + 1):
            answer = client.post(f"{PREFIX}/ingest/github.com/o/new{i}", headers=AUTH)
            assert answer.status_code == 429 and answer.json()["error"] == "queue_full"
    assert queue.pending_count() == cap


errors = st.one_of(
    st.tuples(st.just("POST"), bad_urls.map(lambda u: f"{PREFIX}/ingest/{u}"), st.just(AUTH)),
    # unknown job ids; "dead" is hex too, and names the dead-letter route
    st.tuples(st.just("GET"), st.text("0123456789abcdef", min_size=1, max_size=40)
              .filter(lambda i: i != "dead").map(lambda i: f"{PREFIX}/jobs/{i}"), st.just(AUTH)),
    st.tuples(st.just("GET"), st.one_of(st.integers(max_value=0), st.integers(min_value=101),
                                        st.text(string.ascii_letters, min_size=1)).map(
        lambda n: f"{PREFIX}/jobs/history?limit={n}"), st.just(AUTH)),
    st.tuples(st.sampled_from(["GET", "PUT", "DELETE"]),
              st.just(f"{PREFIX}/ingest/github.com/a/b"), st.just(AUTH)),
    st.tuples(st.sampled_from(["GET", "POST"]), names.map(lambda n: f"/no/{n}"), st.just(AUTH)),
    st.tuples(st.just("POST"), st.just(f"{PREFIX}/ingest/github.com/a/b"), st.just({})),
)


@many
@given(request=errors)
def test_p15_error_conditions_never_answer_200(redis_queue, request):
    method, path, headers = request
    queue = redis_queue()
    with api(queue) as client:
        answer = client.request(method, path, headers=headers)
    assert 400 <= answer.status_code < 600
    body = answer.json()
    assert set(body) == {"error", "detail"} and body["detail"]


# --- 18. a task older than its TTL is skipped and recorded ---------------------------
# The queue decides staleness by its own clock: SQLite's is this machine's, which a
# test can fake, so there Hypothesis draws TTLs and ages freely; the Redis server's
# cannot be faked, so on Redis and Upstash the property runs in real time below.

def _run_one_job_aged(queue, wait) -> tuple[str, dict, list]:
    ran = []
    worker = Worker(queue, lambda job, report: ran.append(job.id) or JobResult(),
                    worker_id="w", heartbeat_seconds=0.05)
    job_id = queue.enqueue("https://github.com/o/r").job.id
    wait()
    worker.run_once()
    [record] = queue.history(1) or [{}]
    return job_id, record, ran


@many
@given(ttl=st.integers(min_value=1, max_value=10 * 86_400),
       age=st.floats(min_value=0, max_value=20 * 86_400, allow_nan=False))
def test_p18_stale_jobs_are_skipped_and_recorded(tmp_path, ttl, age):
    clock = Clock()
    queue = make_queue("sqlite", tmp_path=tmp_path, clock=clock, task_ttl=ttl)
    try:
        job_id, record, ran = _run_one_job_aged(queue, lambda: clock.advance(age))
        if age > ttl:
            assert record["status"] == "skipped" and ran == []
            waited = int(re.search(r"waited (\d+) s", record["reason"]).group(1))
            assert abs(waited - age) <= 1 and f"TTL of {ttl} s" in record["reason"]
            assert queue.get_job(job_id).state is JobState.SKIPPED
        else:
            assert record["status"] == "complete" and ran == [job_id]
    finally:
        queue.close()


@pytest.mark.parametrize("backend", ["redis", "upstash"])
@pytest.mark.parametrize("age, stale", [(0.2, False), (2.5, True)])
def test_p18_on_the_redis_server_clock(new_queue, backend, age, stale):
    queue = new_queue(task_ttl=2)
    job_id, record, ran = _run_one_job_aged(queue, lambda: time.sleep(age))
    if stale:
        assert record["status"] == "skipped" and ran == []
        assert record["reason"] == "stale: waited 2 s, longer than its TTL of 2 s"
        assert queue.get_job(job_id).state is JobState.SKIPPED
    else:
        assert record["status"] == "complete" and ran == [job_id]
