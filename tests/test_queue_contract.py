"""The queue contract, run against every backend: SQLite, Redis, Upstash REST."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from shared.jobs import JobResult, JobState, WorkerState, WorkerStatus
from shared.queue import Lease, QueueFull
from shared.queue.base import HISTORY_LIMIT

REPO = "https://github.com/psf/requests"


def repo(i: int) -> str:
    return f"https://github.com/owner/repo-{i}"


def worker(name: str = "w1") -> WorkerStatus:
    return WorkerStatus(worker_id=name)


def test_enqueue_gives_unique_ids_and_positions(new_queue):
    queue = new_queue()
    first, second = queue.enqueue(repo(1)), queue.enqueue(repo(2))
    assert first.created and second.created
    assert first.job.id != second.job.id and len(first.job.id) == 32
    assert (first.position, second.position) == (1, 2)
    assert second.queue_size == 2 == queue.pending_count()
    stored = queue.get_job(first.job.id)
    assert stored.state is JobState.QUEUED and stored.repo_url == repo(1)
    assert queue.get_job("0" * 32) is None


def test_a_pending_repository_is_not_queued_twice(new_queue):
    queue = new_queue()
    first = queue.enqueue(REPO)
    again = queue.enqueue(REPO)
    assert not again.created and again.job.id == first.job.id and again.position == 1
    assert queue.pending_count() == 1
    queue.claim(worker())  # once it runs, a new submission is a new job
    later = queue.enqueue(REPO)
    assert later.created and later.job.id != first.job.id


def test_a_resent_enqueue_creates_no_duplicate(new_queue):
    """A client that lost the answer resends the same job id."""
    queue = new_queue()
    first = queue.enqueue(REPO, job_id="a" * 32)
    resent = queue.enqueue(REPO, job_id="a" * 32)
    assert resent.job.id == first.job.id and not resent.created
    assert queue.pending_count() == 1


def test_cap_is_enforced(new_queue):
    queue = new_queue(max_queue_size=3)
    for i in range(3):
        queue.enqueue(repo(i))
    with pytest.raises(QueueFull) as full:
        queue.enqueue(repo(99))
    assert full.value.size == 3 and full.value.cap == 3
    queue.claim(worker())  # a running job no longer counts against the cap
    assert queue.enqueue(repo(99)).created


def test_concurrent_submissions_accept_exactly_the_cap(new_queue):
    queue = new_queue(max_queue_size=10)

    def submit(i: int) -> bool:
        try:
            queue.enqueue(repo(i))
            return True
        except QueueFull:
            return False

    with ThreadPoolExecutor(max_workers=25) as pool:
        accepted = sum(pool.map(submit, range(100)))
    assert accepted == 10
    assert queue.pending_count() == 10


# Time is the queue's own (the Redis server's, or this machine's for SQLite), so these
# tests age jobs and leases in real time, with leases of a second or two.

def test_claim_is_fifo_and_leases_the_job(new_queue):
    queue = new_queue(lease=Lease(seconds=30))
    ids = [queue.enqueue(repo(i)).job.id for i in range(3)]
    me = worker()
    before = time.time()
    claimed = [queue.claim(me) for _ in range(3)]
    assert [job.id for job in claimed] == ids
    job = claimed[0]
    assert job.state is JobState.RUNNING and job.attempts == 1 and job.worker_id == "w1"
    assert job.lease_token and before + 29 < job.lease_deadline < time.time() + 31
    assert queue.claim(me) is None
    assert queue.overview().running == 3


def test_claim_records_the_worker_heartbeat(new_queue):
    queue = new_queue()
    me = WorkerStatus(worker_id="laptop", device="cuda:0 (RTX)")
    queue.claim(me)
    view = queue.overview()
    [seen] = view.workers
    assert seen.worker_id == "laptop" and seen.device == "cuda:0 (RTX)"
    assert 0 <= view.now - seen.heartbeat_at < 5  # stamped by the queue's clock


def test_heartbeat_extends_the_lease_and_carries_progress(new_queue):
    queue = new_queue(lease=Lease(seconds=2))
    queue.enqueue(REPO)
    me = worker()
    job = queue.claim(me)
    time.sleep(1.2)
    job.stage, job.progress = "parse", 40.0
    assert queue.heartbeat(me, job)
    time.sleep(1.2)  # past the first deadline, inside the extended one
    assert queue.claim(worker("w2")) is None
    stored = queue.get_job(job.id)
    assert (stored.state, stored.stage, stored.progress) == (JobState.RUNNING, "parse", 40.0)


def test_expired_lease_requeues_at_the_head_then_dead_letters(new_queue):
    queue = new_queue(lease=Lease(seconds=0.3, max_attempts=3))
    job_id = queue.enqueue(REPO).job.id
    queue.enqueue(repo(2))
    for attempt in (1, 2, 3):
        job = queue.claim(worker(f"w{attempt}"))
        assert job.id == job_id and job.attempts == attempt
        time.sleep(0.4)  # the worker died: no heartbeat, no finish
    assert queue.claim(worker("w4")).repo_url == repo(2)
    dead = queue.get_job(job_id)
    assert dead.state is JobState.DEAD and "lease expired" in dead.error
    view = queue.overview()
    assert [job.id for job in view.dead] == [job_id]
    assert view.history[0]["status"] == "dead" and view.history[0]["job_id"] == job_id
    # a requeued job is findable by its repository again until it is dead
    assert queue.enqueue(REPO).created


def test_one_repository_runs_one_job_at_a_time_on_any_number_of_workers(new_queue):
    queue = new_queue(lease=Lease(seconds=0.5, max_attempts=3))
    first = queue.claim(worker("w1")) if queue.enqueue(REPO) else None
    later = queue.enqueue(REPO).job  # a push during the sync: a new job, queued first
    other = queue.enqueue(repo(2)).job
    taken_other = queue.claim(worker("w2"))
    assert taken_other.id == other.id  # REPO's waits for its running job
    assert queue.claim(worker("w3")) is None
    assert queue.finish(taken_other, JobState.COMPLETE, worker("w2"))
    assert queue.finish(first, JobState.COMPLETE, worker("w1"))
    assert queue.claim(worker("w3")).id == later.id
    # the lock is the lease: a worker that dies holds it only until its lease runs out
    again = queue.enqueue(REPO).job
    assert queue.claim(worker("w4")) is None
    time.sleep(0.6)
    taken = [queue.claim(worker("w5")), queue.claim(worker("w6"))]
    assert [j.id for j in taken if j is not None] == [later.id]  # requeued first, alone
    assert queue.get_job(again.id).state is JobState.QUEUED


def test_a_stale_worker_cannot_finish_a_job_another_worker_took(new_queue):
    queue = new_queue(lease=Lease(seconds=0.3))
    queue.enqueue(REPO)
    slow = queue.claim(worker("slow"))
    time.sleep(0.4)
    fast = queue.claim(worker("fast"))
    assert fast.id == slow.id and fast.attempts == 2
    assert not queue.heartbeat(worker("slow"), slow)
    assert not queue.finish(slow, JobState.COMPLETE, worker("slow"))
    assert queue.finish(fast, JobState.COMPLETE, worker("fast"))
    assert queue.get_job(fast.id).worker_id == "fast"


def test_finish_records_history_and_is_idempotent(new_queue):
    queue = new_queue()
    queue.enqueue(REPO)
    me = worker()
    job = queue.claim(me)
    time.sleep(0.3)
    me.state = WorkerState.IDLE
    summary = {"commit": "abc", "nodes": 5, "skipped": ["x" * 100] * 50}
    job.stage, job.progress = "upload", 100.0  # reported after the last heartbeat
    assert queue.finish(job, JobState.COMPLETE, me, result=JobResult(36, 72, summary))
    assert queue.finish(job, JobState.COMPLETE, me)  # a resent finish: done, not lost
    [record] = queue.history(10)
    stored = queue.get_job(job.id)
    assert record == {  # property 9; of the summary only its small entries
        "job_id": job.id, "repo_url": REPO, "status": "complete",
        "duration_seconds": round(stored.finished_at - stored.started_at, 3),
        "files_processed": 36, "embeddings_generated": 72, "timestamp": stored.finished_at,
        "attempts": 1, "worker_id": "w1", "commit": "abc", "nodes": 5,
    }
    assert 0.3 <= record["duration_seconds"] < 5
    assert stored.state is JobState.COMPLETE and stored.summary == summary
    assert (stored.stage, stored.progress) == ("upload", 100.0)  # where it ended
    assert queue.overview().running == 0


def test_failed_and_skipped_jobs_carry_their_error_and_reason(new_queue):
    queue = new_queue()
    queue.enqueue(repo(1))
    queue.enqueue(repo(2))
    me = worker()
    queue.finish(queue.claim(me), JobState.FAILED, me, error="clone failed: not found")
    queue.finish(queue.claim(me), JobState.SKIPPED, me, reason="stale: waited 90000 s")
    skipped, failed = queue.history(10)
    assert failed["status"] == "failed" and failed["error"] == "clone failed: not found"
    assert skipped["status"] == "skipped" and skipped["reason"] == "stale: waited 90000 s"


def test_release_puts_the_job_back_first_without_counting_the_attempt(new_queue):
    queue = new_queue()
    first = queue.enqueue(repo(1)).job.id
    queue.enqueue(repo(2))
    me = worker()
    job = queue.claim(me)
    assert queue.release(job, me)
    assert not queue.release(job, me)  # the lease is gone with the release
    again = queue.claim(me)
    assert again.id == first and again.attempts == 1


@pytest.mark.parametrize("extra", [1, 23])
def test_history_keeps_exactly_the_newest_100(new_queue, extra):
    """Property 10 on every backend (test_properties.py runs it over many counts)."""
    queue = new_queue(max_queue_size=1000)
    me = worker()
    total = HISTORY_LIMIT + extra
    for i in range(total):
        queue.enqueue(repo(i))
        queue.finish(queue.claim(me), JobState.COMPLETE, me)
    history = queue.history(100)
    assert len(history) == HISTORY_LIMIT
    assert [r["repo_url"] for r in history] == [repo(i) for i in reversed(range(extra, total))]


def test_overview_reads_everything_the_page_shows(new_queue):
    queue = new_queue()
    queue.enqueue(repo(1))
    queue.enqueue(repo(2))
    me = WorkerStatus(worker_id="b")
    queue.claim(me)
    queue.claim(WorkerStatus(worker_id="a"))
    queue.enqueue(repo(3))
    view = queue.overview(history_limit=5, dead_limit=5)
    assert (view.pending, view.running) == (1, 2)
    assert [w.worker_id for w in view.workers] == ["a", "b"]
    assert view.history == [] and view.dead == []
    assert queue.overview(history_limit=0, dead_limit=0).history == []


def test_overview_names_each_repositorys_queued_job(new_queue):
    """The repository list names a first job still waiting; one overview read carries it."""
    queue = new_queue()
    first, second = queue.enqueue(repo(1)).job, queue.enqueue(repo(2)).job
    assert queue.overview(history_limit=0, dead_limit=0).queued == {
        repo(1): first.id, repo(2): second.id}
    me = worker()
    taken = queue.claim(me)  # running now: no longer queued
    assert queue.overview().queued == {repo(2): second.id}
    again = queue.enqueue(repo(1)).job  # a sync queued behind the running job
    assert queue.overview().queued == {repo(1): again.id, repo(2): second.id}
    queue.finish(taken, JobState.COMPLETE, me)
    assert queue.release(queue.claim(me), me)  # given back: queued again, named again
    assert queue.overview().queued == {repo(1): again.id, repo(2): second.id}


def test_overview_leaves_a_stale_queued_job_out(new_queue):
    queue = new_queue(task_ttl=1)
    queue.enqueue(repo(1))
    time.sleep(1.3)  # outlived its TTL: skipped at the next enqueue or claim, not pending
    view = queue.overview()
    assert view.pending == 0 and view.queued == {}


def test_wait_returns_when_a_job_arrives(new_queue, backend):
    queue = new_queue()
    stop = threading.Event()
    if not queue.blocking:  # Upstash REST: wait is the poll interval, cut short by stop
        threading.Timer(0.2, stop.set).start()
        started = time.monotonic()
        queue.wait(30, stop)
        assert time.monotonic() - started < 2.0
        return
    threading.Timer(0.3, queue.enqueue, args=(REPO,)).start()
    started = time.monotonic()
    queue.wait(10, stop)
    assert time.monotonic() - started < 2.0
    assert queue.pending_count() == 1


def test_records_expire_but_the_queue_key_never_does(redis_url):
    """Redis only: ended jobs' records and worker status carry a TTL; live jobs' records
    and the queue list have none."""
    import redis as redis_py

    from shared.queue.base import RECORD_RETENTION
    from shared.queue.keys import Keys
    from shared.queue.redis import RedisQueue
    from shared.queue.transports import RedisProtocol

    keys = Keys(prefix="expiry:")
    queue = RedisQueue(RedisProtocol(redis_url), keys=keys, task_ttl=3600)
    raw = redis_py.Redis.from_url(redis_url)
    try:
        first = queue.enqueue(repo(1)).job
        queue.enqueue(repo(2))
        assert raw.ttl(keys.queue) == -1  # live jobs inside: must not expire
        # a live job's record never expires: a job cannot vanish without its record
        assert raw.ttl(keys.job(first.id)) == -1
        me = worker()
        job = queue.claim(me)
        assert raw.ttl(keys.job(first.id)) == -1
        queue.finish(job, JobState.COMPLETE, me)
        assert 0 < raw.ttl(keys.job(first.id)) <= RECORD_RETENTION
        assert 0 < raw.ttl(keys.worker("w1")) <= RECORD_RETENTION
        assert raw.ttl(keys.history) == -1 and raw.llen(keys.history) == 1
    finally:
        raw.close()
        queue.close()


# --- stale jobs (property 18's rules, on every backend, in real time) ------------------

def test_a_stale_job_counts_for_neither_the_cap_nor_de_duplication(new_queue):
    queue = new_queue(max_queue_size=1, task_ttl=2)
    old = queue.enqueue(REPO).job
    time.sleep(2.3)  # the worker was off: the job outlived its TTL
    assert queue.pending_count() == 0
    again = queue.enqueue(REPO)  # neither 429 nor the stale job handed back
    assert again.created and again.job.id != old.id and again.queue_size == 1
    skipped = queue.get_job(old.id)
    assert skipped.state is JobState.SKIPPED
    [record] = queue.history(10)
    assert record["job_id"] == old.id and record["status"] == "skipped"
    assert record["reason"] == "stale: waited 2 s, longer than its TTL of 2 s"
    with pytest.raises(QueueFull):  # the fresh job does count
        queue.enqueue(repo(2))


def test_a_claim_skips_stale_jobs_with_a_record_and_takes_the_next_fresh_one(new_queue):
    queue = new_queue(task_ttl=1)
    stale = [queue.enqueue(repo(i)).job.id for i in range(2)]
    time.sleep(1.3)
    fresh = queue.enqueue(repo(9)).job.id
    job = queue.claim(worker())
    assert job.id == fresh
    assert {r["job_id"]: r["status"] for r in queue.history(10)} == dict.fromkeys(stale, "skipped")
    assert queue.claim(worker()) is None


def test_a_worker_clock_running_ahead_cannot_expire_a_live_lease(new_queue, backend,
                                                                  monkeypatch):
    """Deadlines are the queue's: a worker an hour ahead claims as if on time."""
    queue = new_queue(lease=Lease(seconds=30))
    queue.enqueue(REPO)
    live = queue.claim(worker("on-time"))
    if backend == "sqlite":  # one machine, one clock: the file's readers share it
        assert queue.clock is time.time
        return
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)
    assert queue.claim(worker("ahead")) is None
    monkeypatch.undo()
    assert queue.get_job(live.id).worker_id == "on-time"
    assert queue.heartbeat(worker("on-time"), live)


def test_every_lease_gets_a_larger_fencing_token(new_queue):
    """The stores refuse writes under a token below one they have seen (fencing)."""
    queue = new_queue(lease=Lease(seconds=0.3))
    queue.enqueue(repo(1))
    first = queue.claim(worker("a"))
    time.sleep(0.4)  # a's lease runs out: the job runs again under a new token
    again = queue.claim(worker("c"))
    assert again.id == first.id and 0 < first.fence < again.fence
    assert queue.get_job(first.id).fence == again.fence
    queue.enqueue(repo(2))
    assert queue.claim(worker("d")).fence > again.fence
    # tokens follow the claim's time in microseconds: a switch of queue backend, or an
    # in-process run, still orders after what came before
    assert abs(again.fence / 1e6 - time.time()) < 60


def test_a_fence_issued_for_a_deletion_orders_between_leases(new_queue):
    """A deletion raises the repository's fence with a token above every lease so far
    (a running job is shut out) and below every later one (later jobs write)."""
    queue = new_queue()
    queue.enqueue(repo(1))
    running = queue.claim(worker("a"))
    issued = queue.issue_fence()
    assert issued > running.fence and queue.issue_fence() > issued
    queue.enqueue(repo(2))
    assert queue.claim(worker("b")).fence > issued
