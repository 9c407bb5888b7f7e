"""The queue contract every backend keeps (Redis, Upstash REST, SQLite).

A job is taken under a *lease*: a token and a deadline. The worker extends the
lease with each heartbeat; a lease that runs out puts the job back at the head
of the queue with attempts + 1, or dead-letters it after `max_attempts`. Every
mutating call is idempotent under a retry of the same call, so a client that
resends a request whose answer was lost creates no duplicate.

Time is the queue's own: the Redis server's clock inside its scripts, the
machine's for the SQLite file. Deadlines, ages and heartbeats are never compared
across two machines' clocks. A queued job older than its TTL counts for neither
the cap nor de-duplication: the queue skips it, with a history record, at the
next enqueue or claim.
"""
from __future__ import annotations

import abc
import threading
import uuid
from dataclasses import dataclass

from shared.jobs import Job, JobResult, JobState, WorkerStatus, new_job_id

HISTORY_LIMIT = 100  # property 10
DEAD_LIMIT = 100
RECORD_RETENTION = 7 * 86_400  # ended jobs and silent workers are forgotten after this


class QueueError(Exception):
    """Base of the queue layer's errors."""


class QueueFull(QueueError):
    def __init__(self, size: int, cap: int):
        super().__init__(f"queue is full: {size} pending jobs, the cap is {cap}")
        self.size = size
        self.cap = cap


class QueueUnavailable(QueueError):
    """The backend could not be reached; the message never carries a secret."""


@dataclass(frozen=True)
class Enqueued:
    job: Job
    position: int  # 1-based place in the queue; 0 once taken
    queue_size: int
    created: bool  # False: the repository was already pending, this is that job


@dataclass(frozen=True)
class Overview:
    """Everything the status page shows, read in one backend call."""

    pending: int
    running: int
    workers: list[WorkerStatus]  # heartbeat_at by the queue's clock
    history: list[dict]  # public records (shared.jobs.history_record), newest first
    dead: list[Job]
    now: float  # the queue's clock at the read: age heartbeats by this
    queued: dict[str, str]  # repo_url -> id of its queued job (stale ones left out)


@dataclass(frozen=True)
class Lease:
    """The rules a worker takes jobs under."""

    seconds: float = 60
    max_attempts: int = 3


class JobQueue(abc.ABC):
    """One contract, three backends."""

    backend = "abstract"

    def __init__(self, *, max_queue_size: int = 10, task_ttl: int = 86_400,
                 lease: Lease = Lease()):
        self.max_queue_size = max_queue_size
        self.task_ttl = task_ttl
        self.lease = lease

    # --- the producer side (control plane) -----------------------------------------
    def enqueue(self, repo_url: str, job_id: str | None = None) -> Enqueued:
        """Add a job unless the repository is already pending; QueueFull at the cap.
        Cap check and insert are one atomic step; the queue stamps `submitted_at`."""
        job = Job(id=job_id or new_job_id(), repo_url=repo_url, submitted_at=0.0,
                  ttl=self.task_ttl)
        return self._enqueue(job)

    # --- the consumer side (worker) ------------------------------------------------
    def claim(self, worker: WorkerStatus) -> Job | None:
        """Record the worker's heartbeat, return expired leases to the queue, skip
        stale jobs, and lease the oldest queued job whose repository has no job
        running to this worker (None when there is none): one repository is never
        ingested or synced by two jobs at once, and the lock is the running job's
        lease (it ends with the job, or when the lease runs out)."""
        return self._claim(worker, lease_token=uuid.uuid4().hex)

    def heartbeat(self, worker: WorkerStatus, job: Job | None = None) -> bool:
        """Report the worker's status and extend `job`'s lease; False when the
        lease was lost (it expired and another worker may hold the job now)."""
        return self._heartbeat(worker, job)

    def finish(self, job: Job, state: JobState, worker: WorkerStatus, *,
               result: JobResult | None = None, error: str = "", reason: str = "") -> bool:
        """End a leased job as complete, failed or skipped, append its history record
        and store the worker's new status, in one step. False when the lease was lost."""
        assert state in (JobState.COMPLETE, JobState.FAILED, JobState.SKIPPED)
        if result is not None:
            job.files_processed = result.files_processed
            job.embeddings_generated = result.embeddings_generated
            job.summary = result.summary
        job.state, job.error, job.reason = state, error, reason
        return self._finish(job, worker)

    def release(self, job: Job, worker: WorkerStatus) -> bool:
        """Give a leased job back to the head of the queue without counting the
        attempt (graceful stop). False when the lease was already lost."""
        return self._release(job, worker)

    def issue_fence(self) -> int:
        """A fencing token above every one issued so far, taken by nobody's lease: the
        control plane raises a repository's fence with it when it deletes or archives
        the repository, so a job still running there can no longer write (FencedOut),
        while every job claimed later gets a larger token (clocks need not agree)."""
        return self._issue_fence()

    #: True when `wait` wakes as soon as a job arrives; False when it only sleeps
    #: (Upstash REST), so the worker polls at its slower idle interval.
    blocking = True

    @abc.abstractmethod
    def wait(self, timeout: float, interrupt: threading.Event) -> None:
        """Block until a job may be waiting, `timeout` seconds pass or `interrupt` is set."""

    # --- reads (API) ---------------------------------------------------------------
    @abc.abstractmethod
    def get_job(self, job_id: str) -> Job | None: ...

    @abc.abstractmethod
    def overview(self, history_limit: int = 10, dead_limit: int = 10) -> Overview:
        """Workers, queue size, recent history (newest first) and dead-lettered jobs."""

    def history(self, limit: int = 10) -> list[dict]:
        return self.overview(history_limit=limit, dead_limit=0).history

    def workers(self) -> list[WorkerStatus]:
        return self.overview(history_limit=0, dead_limit=0).workers

    def pending_count(self) -> int:
        return self.overview(history_limit=0, dead_limit=0).pending

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise QueueUnavailable unless the backend answers."""

    def close(self) -> None:
        pass

    # --- what each backend implements atomically -------------------------------------
    @abc.abstractmethod
    def _enqueue(self, job: Job) -> Enqueued: ...

    @abc.abstractmethod
    def _claim(self, worker: WorkerStatus, lease_token: str) -> Job | None: ...

    @abc.abstractmethod
    def _heartbeat(self, worker: WorkerStatus, job: Job | None) -> bool: ...

    @abc.abstractmethod
    def _finish(self, job: Job, worker: WorkerStatus) -> bool: ...

    @abc.abstractmethod
    def _release(self, job: Job, worker: WorkerStatus) -> bool: ...

    @abc.abstractmethod
    def _issue_fence(self) -> int: ...
