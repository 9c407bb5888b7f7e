"""The queue on Redis data structures, reached over the Redis protocol (redis-py)
or over Upstash's REST API: the same keys and Lua scripts, two transports."""
from __future__ import annotations

import hashlib
import json
import threading
from typing import Any, Protocol, Sequence

from shared.jobs import Job, WorkerStatus, history_record, history_summary
from shared.queue import scripts
from shared.queue.base import (
    DEAD_LIMIT,
    HISTORY_LIMIT,
    RECORD_RETENTION,
    Enqueued,
    JobQueue,
    Overview,
    QueueFull,
)
from shared.queue.keys import Keys


class Transport(Protocol):
    """How commands reach Redis. Errors surface as QueueError subclasses."""

    name: str

    def command(self, *args: Any) -> Any: ...

    def script(self, source: str, sha: str, keys: Sequence[str], args: Sequence[Any]) -> Any: ...

    blocking: bool

    def wait_nonempty(self, key: str, timeout: float, interrupt: threading.Event) -> None: ...

    def close(self) -> None: ...


def _script(source: str) -> tuple[str, str]:
    return source, hashlib.sha1(source.encode()).hexdigest()


_ENQUEUE = _script(scripts.ENQUEUE)
_CLAIM = _script(scripts.CLAIM)
_HEARTBEAT = _script(scripts.HEARTBEAT)
_FINISH = _script(scripts.FINISH)
_RELEASE = _script(scripts.RELEASE)
_OVERVIEW = _script(scripts.OVERVIEW)
_ISSUE_FENCE = _script(scripts.ISSUE_FENCE)


def _pairs(flat: list) -> dict:
    return dict(zip(flat[::2], flat[1::2]))


class RedisQueue(JobQueue):
    def __init__(self, transport: Transport, *, keys: Keys = Keys(), **options):
        super().__init__(**options)
        self.transport = transport
        self.keys = keys
        self.backend = transport.name
        self.blocking = transport.blocking

    def _run(self, script: tuple[str, str], keys: Sequence[str], args: Sequence[Any]) -> Any:
        source, sha = script
        return self.transport.script(source, sha, keys, [str(a) for a in args])

    def _enqueue(self, job: Job) -> Enqueued:
        k = self.keys
        fields = [item for pair in job.to_fields().items() for item in pair]
        reply = self._run(
            _ENQUEUE,
            [k.queue, k.pending_repos, k.job(job.id), k.history, k.stale_at],
            [job.id, job.repo_url, self.max_queue_size, k.job_prefix, RECORD_RETENTION,
             HISTORY_LIMIT, job.ttl, *fields],
        )
        outcome, position, size = reply[0], int(reply[1]), int(reply[2])
        if outcome == "full":
            raise QueueFull(size, self.max_queue_size)
        stored = Job.from_fields(_pairs(reply[3:]))
        return Enqueued(stored, position, size, created=outcome == "created")

    def _claim(self, worker: WorkerStatus, lease_token: str) -> Job | None:
        k = self.keys
        reply = self._run(
            _CLAIM,
            [k.queue, k.leases, k.dead, k.history, k.workers, k.pending_repos,
             k.worker(worker.worker_id), k.fence, k.stale_at, k.running_repos],
            [self.lease.seconds, self.lease.max_attempts, worker.worker_id, lease_token,
             worker.to_json(), RECORD_RETENTION, k.job_prefix, k.claim_prefix, HISTORY_LIMIT,
             DEAD_LIMIT],
        )
        return Job.from_fields(_pairs(reply)) if reply else None

    def _heartbeat(self, worker: WorkerStatus, job: Job | None) -> bool:
        k = self.keys
        job_args = ["", "", 0, "", 0]
        if job is not None:
            job_args = [job.id, job.lease_token, self.lease.seconds, job.stage, job.progress]
        reply = self._run(
            _HEARTBEAT,
            [k.worker(worker.worker_id), k.workers, k.leases, k.job(job.id if job else "-")],
            [worker.worker_id, worker.to_json(), RECORD_RETENTION, *job_args],
        )
        return int(reply) == 1

    def _finish(self, job: Job, worker: WorkerStatus) -> bool:
        k = self.keys
        changed = {
            "state": job.state.value, "error": job.error, "reason": job.reason,
            "files_processed": job.files_processed,
            "embeddings_generated": job.embeddings_generated,
            "summary": json.dumps(job.summary),
            # where it ended: the last report after the last heartbeat is kept too
            "stage": job.stage, "progress": job.progress,
        }
        reply = self._run(
            _FINISH,
            [k.job(job.id), k.leases, k.history, k.worker(worker.worker_id), k.workers],
            [job.id, job.lease_token, json.dumps(history_summary(job.summary)),
             worker.to_json(), worker.worker_id, RECORD_RETENTION, HISTORY_LIMIT,
             *[item for pair in changed.items() for item in pair]],
        )
        return int(reply) == 1

    def _release(self, job: Job, worker: WorkerStatus) -> bool:
        k = self.keys
        reply = self._run(
            _RELEASE,
            [k.job(job.id), k.leases, k.queue, k.pending_repos, k.worker(worker.worker_id),
             k.workers, k.stale_at],
            [job.id, job.lease_token, worker.to_json(), worker.worker_id, RECORD_RETENTION,
             k.job_prefix],
        )
        return int(reply) == 1

    def _issue_fence(self) -> int:
        return int(self._run(_ISSUE_FENCE, [self.keys.fence], []))

    def wait(self, timeout: float, interrupt: threading.Event) -> None:
        self.transport.wait_nonempty(self.keys.queue, timeout, interrupt)

    def get_job(self, job_id: str) -> Job | None:
        raw = self.transport.command("HGETALL", self.keys.job(job_id))
        if isinstance(raw, list):  # Upstash answers HGETALL with a flat list
            raw = _pairs(raw)
        return Job.from_fields(raw) if raw else None

    def overview(self, history_limit: int = 10, dead_limit: int = 10) -> Overview:
        k = self.keys
        history_limit = max(0, min(history_limit, HISTORY_LIMIT))
        dead_limit = max(0, min(dead_limit, DEAD_LIMIT))
        pending, running, workers, history, dead, now, queued = self._run(
            _OVERVIEW,
            [k.queue, k.leases, k.workers, k.history, k.dead, k.stale_at, k.pending_repos],
            [history_limit, dead_limit, k.job_prefix, k.worker_prefix],
        )
        return Overview(
            pending=int(pending),
            running=int(running),
            workers=sorted((WorkerStatus.from_json(status, beat)
                            for status, beat in _pairs(workers).items()),
                           key=lambda w: w.worker_id),
            history=[history_record(json.loads(h)) for h in history],
            dead=[Job.from_fields(_pairs(fields)) for fields in dead],
            now=float(now),
            queued=_pairs(queued),
        )

    def ping(self) -> None:
        self.transport.command("PING")

    def close(self) -> None:
        self.transport.close()
