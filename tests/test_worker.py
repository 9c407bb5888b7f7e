"""The worker against real failures: kill -9 mid-job, SIGTERM, Redis going away,
and Upstash's metered REST API (idle cost, hung calls, failed requests)."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cloud.app import create_app
from edge.worker import Worker
from shared.jobs import JobResult, JobState, WorkerState, WorkerStatus
from shared.queue import Lease, QueueError, QueueUnavailable
from shared.queue.keys import Keys
from shared.queue.redis import RedisQueue
from shared.queue.sqlite import SqliteQueue
from shared.queue.transports import RedisProtocol, UpstashRest
from shared.settings import Settings
from tests.servers import RedisServer

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "worker-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def wait_for(condition, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def start_worker(redis_url: str, worker_id: str, marker_dir: Path, **env) -> subprocess.Popen:
    environment = {
        **os.environ, "MODE": "EDGE", "REDIS_URL": redis_url, "WORKER_ID": worker_id,
        "LEASE_SECONDS": "3", "HEARTBEAT_SECONDS": "0.5", "MARKER_DIR": str(marker_dir),
        "PYTHONPATH": str(ROOT), **{k: str(v) for k, v in env.items()},
    }
    return subprocess.Popen([sys.executable, "-m", "tests.worker_process"], cwd=ROOT,
                            env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture
def redis_queue(redis_url):
    queue = RedisQueue(RedisProtocol(redis_url), max_queue_size=50)  # the product's keys
    yield queue
    queue.close()


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_kill_9_mid_job_loses_nothing(redis_url, redis_queue, tmp_path, processes):
    first = start_worker(redis_url, "doomed", tmp_path, JOB_SECONDS=30)
    processes.append(first)
    jobs = [redis_queue.enqueue(f"https://github.com/o/r{i}").job.id for i in range(3)]
    wait_for(lambda: list(tmp_path.glob(f"{jobs[0]}.doomed.started")), 20, "job to start")
    first.send_signal(signal.SIGKILL)
    first.wait(10)

    processes.append(start_worker(redis_url, "heir", tmp_path, JOB_SECONDS=0.5))
    done = lambda: all(redis_queue.get_job(j).state is JobState.COMPLETE for j in jobs)  # noqa: E731
    wait_for(done, 30, "all jobs to complete on the second worker")
    crashed = redis_queue.get_job(jobs[0])
    assert crashed.attempts == 2 and crashed.worker_id == "heir"
    assert sorted(r["job_id"] for r in redis_queue.history(10)) == sorted(jobs)
    assert all(r["status"] == "complete" for r in redis_queue.history(10))
    assert redis_queue.pending_count() == 0 and redis_queue.overview().running == 0


def test_sigterm_lets_the_job_finish_then_reports_offline(redis_url, redis_queue, tmp_path,
                                                          processes):
    worker = start_worker(redis_url, "polite", tmp_path, JOB_SECONDS=2)
    processes.append(worker)
    job_id = redis_queue.enqueue("https://github.com/o/r").job.id
    wait_for(lambda: list(tmp_path.glob(f"{job_id}.polite.started")), 20, "job to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert redis_queue.get_job(job_id).state is JobState.COMPLETE
    [status] = redis_queue.workers()
    assert status.state is WorkerState.OFFLINE and status.status == "Offline"


def test_sigterm_past_the_grace_period_requeues_the_job(redis_url, redis_queue, tmp_path,
                                                        processes):
    """The job goes back to the queue, and the process waits (within the stop's budget)
    for the pipeline to reach its next progress report and clean up, not ending under it:
    a pipeline in native code then (torch) would take the interpreter down (SIGABRT)."""
    worker = start_worker(redis_url, "hasty", tmp_path, JOB_SECONDS=40, STOP_GRACE=1)
    processes.append(worker)
    job_id = redis_queue.enqueue("https://github.com/o/r").job.id
    wait_for(lambda: list(tmp_path.glob(f"{job_id}.hasty.started")), 20, "job to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    job = redis_queue.get_job(job_id)
    assert job.state is JobState.QUEUED and job.attempts == 0
    assert redis_queue.pending_count() == 1
    assert redis_queue.workers()[0].status == "Offline"
    assert (tmp_path / f"{job_id}.hasty.cancelled").exists()  # 2 s between its reports


def test_a_pipeline_stuck_past_the_stop_budget_ends_the_process_cleanly(
        redis_url, redis_queue, tmp_path, processes):
    """A pipeline inside a call longer than the stop's budget: the job is given back, the
    stores are left open under it and the process ends at once with status 0."""
    from edge.worker import SHUTDOWN_SECONDS

    worker = start_worker(redis_url, "stuck", tmp_path, JOB_SECONDS=600, STOP_GRACE=1)
    processes.append(worker)
    job_id = redis_queue.enqueue("https://github.com/o/r").job.id
    wait_for(lambda: list(tmp_path.glob(f"{job_id}.stuck.started")), 20, "job to start")
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert time.monotonic() - started <= 1 + SHUTDOWN_SECONDS + 2
    assert redis_queue.get_job(job_id).state is JobState.QUEUED
    output = worker.stdout.read().decode()
    assert "still in a long call (graph)" in output, output[-2000:]
    assert not (tmp_path / f"{job_id}.stuck.cancelled").exists()


def test_the_longest_stop_fits_the_service_stop_timeout(tmp_path, processes):
    """SIGTERM past the grace period while the queue hangs (Redis stopped dead: connections
    accepted, nothing answered): giving the job back and reporting Offline are cut off
    at SHUTDOWN_SECONDS, so the worker exits within grace + SHUTDOWN_SECONDS + one
    queue call's bound -- what the service's stop timeout is sized for."""
    from edge.worker import SHUTDOWN_SECONDS
    from shared.queue.transports import CALL_TIMEOUT, CALL_TRIES

    server = RedisServer()
    queue = RedisQueue(RedisProtocol(server.url))
    try:
        worker = start_worker(server.url, "stuck", tmp_path, JOB_SECONDS=60, STOP_GRACE=1)
        processes.append(worker)
        job_id = queue.enqueue("https://github.com/o/r").job.id
        wait_for(lambda: list(tmp_path.glob(f"{job_id}.stuck.started")), 20, "job to start")
        with server.hung():
            started = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(60)
            took = time.monotonic() - started
        bound = 1 + SHUTDOWN_SECONDS + CALL_TIMEOUT * CALL_TRIES + 0.5
        assert code == 0 and took <= bound + 2, (took, bound)  # + the interpreter's exit
        # nothing was given back: the lease expires and the job runs again (not lost)
        assert queue.get_job(job_id).state is JobState.RUNNING
    finally:
        queue.close()
        server.stop()
    assert 75 >= 60 + bound - 1  # the unit's TimeoutStopSec against its 60 s grace


def test_a_job_whose_repository_was_deleted_ends_skipped_not_failed(tmp_path):
    """DELETE of a repository while its job runs: the job is skipped with the reason,
    and the worker is Idle, not in error (its owner asked for it)."""
    from edge.worker import Dropped

    queue = SqliteQueue(tmp_path / "q.sqlite3")

    def pipeline(job, report):
        raise Dropped(f"{job.repo_url} was deleted or archived while this job ran")

    worker = Worker(queue, pipeline, worker_id="w", heartbeat_seconds=0.05)
    job = queue.enqueue("https://github.com/o/gone").job
    try:
        assert worker.run_once()
        done = queue.get_job(job.id)
        assert done.state is JobState.SKIPPED and "was deleted" in done.reason
        assert worker.status.state is WorkerState.IDLE and worker.status.error == ""
    finally:
        queue.close()


def test_after_a_lost_lease_no_job_starts_until_the_old_pipeline_has_stopped(tmp_path):
    queue = SqliteQueue(tmp_path / "q.sqlite3", lease=Lease(seconds=60))
    started, release, ran = threading.Event(), threading.Event(), []

    def pipeline(job, report):
        ran.append(job.repo_url)
        if len(ran) == 1:  # the first job hangs past its lease, then reports
            started.set()
            release.wait(20)
            report("parse", 50.0)  # raises Cancelled: the lease is lost
        return JobResult()

    worker = Worker(queue, pipeline, worker_id="slow", heartbeat_seconds=0.05)
    first = queue.enqueue("https://github.com/o/first").job
    runner = threading.Thread(target=worker.run_once)
    runner.start()
    try:
        assert started.wait(10)
        # Another worker whose clock is past the deadline reaps the lease and takes the job.
        ahead = SqliteQueue(queue.path, lease=Lease(seconds=60), clock=lambda: time.time() + 120)
        try:
            assert ahead.claim(WorkerStatus(worker_id="thief")).id == first.id
        finally:
            ahead.close()
        queue.enqueue("https://github.com/o/next")
        time.sleep(0.5)  # ten beats: the slow worker has learnt its lease is lost
        assert runner.is_alive() and queue.pending_count() == 1  # waiting, not claiming
    finally:
        release.set()
        runner.join(10)
    assert not runner.is_alive() and ran == ["https://github.com/o/first"]
    assert queue.get_job(first.id).worker_id == "thief"
    assert worker.run_once() and ran[-1] == "https://github.com/o/next"
    queue.close()


def test_redis_outage_gives_503_and_both_sides_recover(redis_server, redis_url, tmp_path):
    queue = RedisQueue(RedisProtocol(redis_url, timeout=1.0))
    ran = []
    worker = Worker(queue, lambda job, report: ran.append(job.repo_url) or JobResult(),
                    worker_id="survivor", heartbeat_seconds=0.2)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    settings = Settings(admin_token=TOKEN, redis_url=redis_url)
    try:
        with TestClient(create_app(settings, queue=queue)) as client:
            url = "/api/v1/ingestion/ingest/github.com/o/before"
            assert client.post(url, headers=AUTH).status_code == 200
            wait_for(lambda: ran == ["https://github.com/o/before"], 10, "first job")

            redis_server.stop()
            down = client.post("/api/v1/ingestion/ingest/github.com/o/during", headers=AUTH)
            assert down.status_code == 503 and down.json()["error"] == "queue_unavailable"
            assert client.get("/api/v1/ingestion/jobs/history", headers=AUTH).status_code == 503
            health = client.get("/health").json()
            assert health["status"] == "degraded" and not health["backends"]["queue"]["ok"]
            # open to anyone: up or down, never the error's hosts and ports
            assert "detail" not in health["backends"]["queue"]
            assert str(redis_server.port) not in json.dumps(health)
            told = client.get("/health", headers=AUTH).json()["backends"]["queue"]
            assert "unreachable" in told["detail"]  # the token's holder learns why
            time.sleep(1.0)  # the worker meets the outage and backs off
            assert thread.is_alive()

            redis_server.start()
            answer = wait_for(lambda: client.post("/api/v1/ingestion/ingest/github.com/o/after",
                                                  headers=AUTH), 10, "API to recover")
            assert answer.status_code == 200
            wait_for(lambda: "https://github.com/o/after" in ran, 30, "worker to recover")
            assert client.get("/health").json()["status"] == "ok"
    finally:
        worker.stop()
        thread.join(10)
        queue.close()


def test_redis_stopped_mid_job_the_job_still_ends_complete_once(tmp_path):
    """Redis stops dead (SIGSTOP) while a job runs and comes back 3 s later with its data:
    the worker's beats fail meanwhile (it keeps working), the API answers 503, and the
    job's outcome lands once Redis answers again: complete, once, on its first attempt."""
    server = RedisServer()
    queue = RedisQueue(RedisProtocol(server.url, timeout=1.0))
    running, release = threading.Event(), threading.Event()

    def pipeline(job, report):
        running.set()
        release.wait(30)
        report("upload", 95.0)
        return JobResult(files_processed=3, embeddings_generated=3)

    worker = Worker(queue, pipeline, worker_id="steady", heartbeat_seconds=0.2)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        with TestClient(create_app(Settings(admin_token=TOKEN, redis_url=server.url),
                                   queue=queue)) as client:
            job_id = client.post("/api/v1/ingestion/ingest/github.com/o/mid",
                                 headers=AUTH).json()["job_id"]
            assert running.wait(10)
            with server.hung():
                answer = client.get("/api/v1/ingestion/jobs/history", headers=AUTH)
                assert answer.status_code == 503
                time.sleep(2.0)  # beats fail and are retried; the job goes on
                release.set()  # it ends while Redis is still down
                time.sleep(1.0)
            wait_for(lambda: queue.get_job(job_id).state is JobState.COMPLETE, 30,
                     "the outcome to land")
            history = client.get("/api/v1/ingestion/jobs/history", headers=AUTH).json()["jobs"]
            assert [(r["job_id"], r["status"], r["attempts"]) for r in history] == [
                (job_id, "complete", 1)]
    finally:
        release.set()
        worker.stop()
        thread.join(10)
        queue.close()
        server.stop()


# --- Upstash REST ----------------------------------------------------------------------
def test_idle_worker_on_upstash_stays_within_a_tenth_of_the_free_quota(upstash_server):
    """500K commands a month; an idle worker may spend 10%: about 1,650 a day."""
    defaults = Settings()
    queue = RedisQueue(UpstashRest(upstash_server.url, upstash_server.token))
    assert not queue.blocking
    worker = Worker(queue, lambda job, report: JobResult(), worker_id="idle",
                    heartbeat_seconds=defaults.heartbeat_seconds,
                    idle_poll_seconds=defaults.idle_poll_seconds)
    assert worker.poll_seconds == defaults.idle_poll_seconds == 60

    # Same loop, a shorter interval, so the test sees many idle polls in seconds.
    worker.poll_seconds = 0.05
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    time.sleep(2.0)
    worker.stop()
    thread.join(10)
    polls = upstash_server.requests - 2  # the first script load (NOSCRIPT, EVAL); the Offline report
    assert polls > 10
    per_poll = (upstash_server.commands - 2) / polls
    assert per_poll == 1.0  # claim, heartbeat and lease reaping ride in one EVALSHA
    per_day = 86_400 / defaults.idle_poll_seconds * per_poll
    assert per_day <= 1_650, per_day
    print(f"idle worker on Upstash: {per_poll:.0f} command per poll, {per_day:.0f} a day")


def test_hung_upstash_call_times_out(upstash_server):
    queue = RedisQueue(UpstashRest(upstash_server.url, upstash_server.token, timeout=0.3,
                                   attempts=2))
    upstash_server.delay_seconds = 5
    started = time.monotonic()
    with pytest.raises(QueueUnavailable) as unavailable:
        queue.enqueue("https://github.com/o/r")
    assert time.monotonic() - started < 3
    assert upstash_server.token not in str(unavailable.value)


def test_an_upstash_script_error_is_a_bug_not_an_outage(upstash_server):
    """The server ran the script and refused it: QueueError (the API's 500), not
    QueueUnavailable (503, 'try again'), and not resent."""
    transport = UpstashRest(upstash_server.url, upstash_server.token)
    try:
        upstash_server.reset_counts()
        source = "return redis.call('NO_SUCH_COMMAND')"
        with pytest.raises(QueueError) as failure:
            transport.script(source, hashlib.sha1(source.encode()).hexdigest(), [], [])
        assert not isinstance(failure.value, QueueUnavailable)
        assert "Upstash answered an error" in str(failure.value)
        assert upstash_server.requests == 2  # EVALSHA (NOSCRIPT), then EVAL once
    finally:
        transport.close()


def test_failed_upstash_request_is_retried_without_a_duplicate(upstash_server):
    queue = RedisQueue(UpstashRest(upstash_server.url, upstash_server.token),
                       keys=Keys(prefix="retry:"))
    queue.ping()
    upstash_server.fail_next = 1  # one 500: resent (every script is idempotent), one job
    assert queue.enqueue("https://github.com/o/a", job_id="a" * 32).created
    upstash_server.fail_next = 3  # an outage longer than the transport's three tries
    with pytest.raises(QueueUnavailable):
        queue.enqueue("https://github.com/o/r", job_id="b" * 32)
    again = queue.enqueue("https://github.com/o/r", job_id="b" * 32)  # the caller retries
    assert again.created and queue.pending_count() == 2
    resent = queue.enqueue("https://github.com/o/r", job_id="b" * 32)  # answer lost, resent
    assert not resent.created and queue.pending_count() == 2
