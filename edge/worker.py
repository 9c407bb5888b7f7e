"""The worker loop: take a job under a lease, run the pipeline, report, repeat.

The pipeline runs on its own thread while this loop heartbeats for it, so a
pipeline stuck in a long call still holds its lease, and a stop request can
give the job back after a grace period whatever the pipeline is doing.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import replace
from typing import Callable, Protocol

from shared.jobs import Job, JobResult, JobState, WorkerState, WorkerStatus
from shared.queue import JobQueue, QueueError

log = logging.getLogger("edge.worker")

MAX_BACKOFF_SECONDS = 30.0
# After the grace period of a stop: this long to give the job back and report Offline.
# A queue call then in flight may still take its own bound (CALL_TIMEOUT x CALL_TRIES in
# shared/queue/transports.py, ~6.5 s), so the longest stop is grace + 5 + 6.5 s: 71.5 s
# for the service's 60 s grace, inside its stop timeout of 75 s.
SHUTDOWN_SECONDS = 5.0


class Cancelled(Exception):
    """Raised inside the pipeline at its next progress report once the job must stop."""


class RetryLater(Exception):
    """The pipeline met an outage (a store it writes to is unreachable), not a bad job:
    the job is left to its lease, which returns it to the queue with the attempt
    counted (dead-lettered after the last), instead of ending it as failed."""


class Dropped(Exception):
    """The job's repository was deleted or archived while it ran, as its owner asked:
    the job ends skipped with this reason, and the worker is not in error."""


class Report(Protocol):
    def __call__(self, stage: str, progress: float) -> None: ...


Pipeline = Callable[[Job, Report], JobResult]


class _Run:
    """One job on its pipeline thread: progress in, result or error out."""

    def __init__(self, job: Job, pipeline: Pipeline):
        self.job = job
        self.result: JobResult | None = None
        self.error: BaseException | None = None
        self.cancelled = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(pipeline,),
                                        name=f"job-{job.id[:8]}", daemon=True)

    def _main(self, pipeline: Pipeline) -> None:
        try:
            self.result = pipeline(self.job, self.report)
        except BaseException as exc:  # a bad job never stops the worker
            self.error = exc

    def report(self, stage: str, progress: float) -> None:
        if self.cancelled.is_set():
            raise Cancelled(self.job.id)
        self.job.stage = stage
        self.job.progress = round(min(100.0, max(0.0, float(progress))), 1)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> bool:
        """True once the pipeline has returned."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


class Worker:
    def __init__(self, queue: JobQueue, pipeline: Pipeline, *, worker_id: str,
                 device: str = "cpu", heartbeat_seconds: float = 5.0,
                 idle_poll_seconds: float = 60.0, stop_grace_seconds: float = 60.0,
                 on_idle: Callable[[], None] | None = None):
        """`on_idle`: chores for time the queue is empty (edge.schedule: periodic syncs,
        archiving); called once per empty poll, it decides itself what is due."""
        self.queue = queue
        self.pipeline = pipeline
        self.on_idle = on_idle
        self.heartbeat_seconds = heartbeat_seconds
        # A queue that can block wakes us when a job arrives; one that cannot (Upstash
        # REST) is polled at the slower idle interval to stay inside its free quota.
        self.poll_seconds = heartbeat_seconds if queue.blocking else idle_poll_seconds
        self.stop_grace_seconds = stop_grace_seconds
        self.status = WorkerStatus(worker_id=worker_id, device=device,
                                   heartbeat_seconds=self.poll_seconds)
        self._stop = threading.Event()
        self._stop_deadline = float("inf")
        self._current: _Run | None = None  # the last job's run, maybe given back unfinished

    # --- control -----------------------------------------------------------------------
    def stop(self, grace: float | None = None) -> None:
        """Ask the loop to end: a running job gets `grace` seconds (default
        `stop_grace_seconds`) to finish, then goes back to the queue. A second call
        may shorten the grace, never lengthen it."""
        grace = self.stop_grace_seconds if grace is None else grace
        self._stop_deadline = min(self._stop_deadline, time.monotonic() + grace)
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def pipeline_running(self) -> bool:
        """A pipeline is still on its thread: after `run` returns, a job given back whose
        pipeline is inside a call too long to wait for (edge.__main__ then ends the
        process at once rather than close the stores under it)."""
        return self._current is not None and self._current.alive

    def run(self) -> None:
        log.info("worker %s started on %s (queue: %s)", self.status.worker_id,
                 self.status.device, self.queue.backend)
        failures = 0
        while not self._stop.is_set():
            try:
                if not self.run_once():
                    self._idle()
                    self.queue.wait(self.poll_seconds, self._stop)
                failures = 0
            except QueueError as exc:
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 2 ** (failures - 1)) * random.uniform(0.8, 1.2)
                log.warning("queue unreachable (%s); retrying in %.1f s", exc, delay)
                self._stop.wait(delay)
        self._report_offline()
        self._let_pipeline_stop()

    def _idle(self) -> None:
        if self.on_idle is None or self._stop.is_set():
            return
        try:
            self.on_idle()
        except QueueError:
            raise  # the loop's backoff handles an unreachable queue
        except Exception as exc:  # a chore that fails never stops the worker
            log.warning("idle-time chores failed: %s", _one_line(exc), exc_info=exc)

    def run_once(self) -> bool:
        """Claim one job and see it through; False when the queue was empty."""
        job = self.queue.claim(self._idle_status())
        if job is None:
            return False
        self._process(job)  # the queue skips stale jobs itself
        return True

    # --- one job -----------------------------------------------------------------------
    def _process(self, job: Job) -> None:
        log.info("job %s: %s (attempt %d)", job.id, job.repo_url, job.attempts)
        self.status = replace(self.status, state=WorkerState.RUNNING, repo_url=job.repo_url,
                              error="", job_id=job.id, stage="", progress=0.0,
                              heartbeat_seconds=self.heartbeat_seconds)
        self._beat(job)  # the page shows the job as running from its first second
        run = self._current = _Run(job, self.pipeline)
        run.start()
        while not run.join(self.heartbeat_seconds):
            if self._stop.is_set() and time.monotonic() > self._stop_deadline:
                run.cancelled.set()
                self._give_back(job)
                return
            if not self._beat(job):
                run.cancelled.set()
                log.warning("job %s: lease lost; another worker may run it", job.id)
                self.status = self._idle_status()
                self._wait_for(run)
                return
        if run.error is None:
            self._finish(job, JobState.COMPLETE, result=run.result or JobResult())
        elif isinstance(run.error, RetryLater):
            self._leave_to_lease(job, run.error)
        elif isinstance(run.error, Dropped):
            log.info("job %s skipped: %s", job.id, run.error)
            self._finish(job, JobState.SKIPPED, reason=_one_line(run.error))
        else:
            message = _one_line(run.error)
            log.error("job %s failed: %s", job.id, message, exc_info=run.error)
            self._finish(job, JobState.FAILED, error=message)

    def _let_pipeline_stop(self) -> None:
        """A job given back stops at its pipeline's next progress report (its own clean-up
        runs then); wait for that within what is left of the stop's budget, so that the
        process does not end under it."""
        run = self._current
        if run is None or run.join(max(0.0, self._shutdown_left())):
            return
        log.warning("job %s: its pipeline is still in a long call (%s); the process ends "
                    "without it", run.job.id, run.job.stage or "starting")

    def _wait_for(self, run: _Run) -> None:
        """A pipeline whose lease is lost stops at its next progress report; no other
        job starts before it has (two pipelines of one worker would share its stores).
        Its writes meanwhile are refused by the stores' fencing. A stop past the grace
        period ends the wait: the process exits and the thread with it."""
        while not run.join(self.heartbeat_seconds):
            if self._stop.is_set() and time.monotonic() > self._stop_deadline:
                return
            try:
                self.queue.heartbeat(self.status)
            except QueueError as exc:
                log.warning("heartbeat failed (%s)", exc)

    def _beat(self, job: Job) -> bool:
        self.status.stage, self.status.progress = job.stage, job.progress
        try:
            return self.queue.heartbeat(self.status, job)
        except QueueError as exc:
            # keep working: the lease outlasts a few missed beats
            log.warning("heartbeat failed (%s)", exc)
            return True

    def _finish(self, job: Job, state: JobState, *, result: JobResult | None = None,
                error: str = "", reason: str = "") -> None:
        if state is JobState.FAILED:
            after = replace(self.status, state=WorkerState.ERROR, error=error, job_id="",
                            stage="", progress=0.0)
        else:
            after = self._idle_status()
        self._until_stored(lambda: self.queue.finish(job, state, after, result=result,
                                                     error=error, reason=reason))
        self.status = after
        log.info("job %s: %s", job.id, state.value)

    def _leave_to_lease(self, job: Job, error: RetryLater) -> None:
        message = _one_line(error)
        log.warning("job %s: %s; it returns to the queue when its lease runs out "
                    "(attempt %d of %d)", job.id, message, job.attempts,
                    self.queue.lease.max_attempts)
        self.status = replace(self.status, state=WorkerState.ERROR, error=message, job_id="",
                              stage="", progress=0.0, heartbeat_seconds=self.poll_seconds)
        # The outage is likely to fail the next job too: wait about a lease first.
        self._stop.wait(min(MAX_BACKOFF_SECONDS, self.queue.lease.seconds))

    def _give_back(self, job: Job) -> None:
        log.info("job %s: stopping; back to the queue", job.id)
        self.status = replace(self._idle_status(), state=WorkerState.OFFLINE)
        self._until_stored(lambda: self.queue.release(job, self.status), attempts=3)

    def _until_stored(self, write: Callable[[], bool], attempts: int = 8) -> None:
        """A finished job's outcome must reach the queue; the write is idempotent,
        so retry it through a short outage. If it never lands, the lease expires
        and the job runs again: at-least-once, never lost. A stop cuts the waits
        short and bounds the retrying to SHUTDOWN_SECONDS past its grace period."""
        for attempt in range(attempts):
            try:
                if not write():
                    log.warning("lease was lost before the outcome was stored")
                return
            except QueueError as exc:
                delay = min(MAX_BACKOFF_SECONDS, 2 ** attempt, self._shutdown_left())
                if delay <= 0:
                    log.warning("storing the outcome failed (%s); stopping without it: "
                                "the lease will expire and the job run again", exc)
                    return
                log.warning("storing the outcome failed (%s); retrying in %.1f s", exc, delay)
                self._stop.wait(delay)  # a stop retries at once, within its budget

    def _shutdown_left(self) -> float:
        """Seconds left for the stop's own work (infinite while not stopping)."""
        return self._stop_deadline + SHUTDOWN_SECONDS - time.monotonic()

    # --- status ------------------------------------------------------------------------
    def _idle_status(self) -> WorkerStatus:
        keep_error = self.status.state is WorkerState.ERROR
        return replace(self.status, state=WorkerState.ERROR if keep_error else WorkerState.IDLE,
                       repo_url="", job_id="", stage="", progress=0.0,
                       heartbeat_seconds=self.poll_seconds)

    def _report_offline(self) -> None:
        self.status = replace(self._idle_status(), state=WorkerState.OFFLINE)
        if self._shutdown_left() <= 0:
            log.warning("no time left to report Offline; the page shows it after the "
                        "heartbeat goes silent")
            return
        try:
            self.queue.heartbeat(self.status)
        except QueueError as exc:
            log.warning("could not report Offline (%s)", exc)
        log.info("worker %s stopped", self.status.worker_id)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:500]
