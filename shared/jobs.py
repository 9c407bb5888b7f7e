"""The job, its states, the worker's status report and the history record.

Life cycle (DESIGN.md):

    queued -> running -> complete | failed | skipped (stale)
    running --lease expired--> queued (attempts + 1); attempts exhausted -> dead

Every backend stores a job as a flat mapping of strings (a Redis hash, a SQLite
row); `to_fields`/`from_fields` are the one place that converts.
"""
from __future__ import annotations

import enum
import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, fields


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    SKIPPED = "skipped"
    DEAD = "dead"


def new_job_id() -> str:
    return uuid.uuid4().hex


def fence_from(seconds: float, last: int = 0) -> int:
    """A fencing token at `seconds` (epoch): microseconds, past `last`. Tokens grow with
    the time of the claim, so ones issued by another queue backend (after a switch) or
    by an in-process run still order with the queue's."""
    return max(last + 1, int(seconds * 1_000_000))


_fence_lock = threading.Lock()
_last_fence = 0


def fence_now() -> int:
    """A token for a write made here and now, larger than any this process gave before."""
    global _last_fence
    with _fence_lock:
        _last_fence = fence_from(time.time(), _last_fence)
        return _last_fence


@dataclass
class Job:
    id: str
    repo_url: str
    submitted_at: float
    ttl: int
    state: JobState = JobState.QUEUED
    attempts: int = 0
    stage: str = ""
    progress: float = 0.0
    worker_id: str = ""
    lease_token: str = ""
    lease_deadline: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    error: str = ""
    reason: str = ""
    files_processed: int = 0
    embeddings_generated: int = 0
    # What the pipeline found: commit, node and edge counts, skipped files with reasons.
    summary: dict = field(default_factory=dict)
    # The lease's fencing token: every claim gets a larger one. The stores refuse a write
    # whose token is below one they have seen for the repository (a lost lease's worker).
    fence: int = 0

    @classmethod
    def in_process(cls, repo_url: str, ttl: int) -> "Job":
        """A job run here and now, not taken from a queue (`edge ingest`, the demo)."""
        now = time.time()
        return cls(id=new_job_id(), repo_url=repo_url, submitted_at=now, ttl=ttl,
                   state=JobState.RUNNING, attempts=1, started_at=now, fence=fence_now())

    def stale_reason(self, now: float) -> str:
        """Why a job still queued at `now` is skipped; "" while it is within its TTL."""
        waited = now - self.submitted_at
        if waited <= self.ttl:
            return ""
        return f"stale: waited {int(waited)} s, longer than its TTL of {self.ttl} s"

    def to_fields(self) -> dict[str, str]:
        # getattr, not asdict: asdict deep-copies, and this runs on every enqueue
        out = {f.name: str(getattr(self, f.name)) for f in fields(self)}
        out["state"] = self.state.value
        out["summary"] = json.dumps(self.summary)
        return out

    @classmethod
    def from_fields(cls, raw: dict) -> "Job":
        values = {}
        for f in fields(cls):
            if f.name not in raw or raw[f.name] is None:
                continue
            value = raw[f.name]
            if isinstance(value, bytes):
                value = value.decode()
            if f.type == "int":
                value = int(float(value))
            elif f.type == "float":
                value = float(value)
            elif f.type == "JobState":
                value = JobState(value)
            elif f.type == "dict":
                value = json.loads(value) if value else {}
            values[f.name] = value
        return cls(**values)

    def public(self) -> dict:
        """What the API shows: everything but the lease token (a capability)."""
        data = asdict(self)
        data.pop("lease_token")
        data["state"] = self.state.value
        data["job_id"] = data.pop("id")
        return data


@dataclass
class JobResult:
    """What a finished pipeline reports back."""

    files_processed: int = 0
    embeddings_generated: int = 0
    summary: dict = field(default_factory=dict)


# Summary entries small enough for every history record (the skipped list is not).
HISTORY_SUMMARY = ("commit", "nodes", "edges", "files_skipped")


def history_summary(summary: dict) -> dict:
    return {key: summary[key] for key in HISTORY_SUMMARY if key in summary}


def history_record(entry: dict) -> dict:
    """Property 9: the public record of a finished job, made from the job's final
    fields as the queue stored them in its history (every backend stores those, so
    this is the one place a record's shape is decided)."""
    if "job_id" in entry:  # an entry written whole by an older release
        return entry
    job = Job.from_fields(entry)
    started = job.started_at or job.finished_at
    record = {
        "job_id": job.id,
        "repo_url": job.repo_url,
        "status": job.state.value,
        "duration_seconds": round(max(0.0, job.finished_at - started), 3),
        "files_processed": job.files_processed,
        "embeddings_generated": job.embeddings_generated,
        "timestamp": job.finished_at,
        "attempts": job.attempts,
        "worker_id": job.worker_id,
    }
    record.update(history_summary(job.summary))
    if job.error:
        record["error"] = job.error
    if job.reason:
        record["reason"] = job.reason
    return record


class WorkerState(str, enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    ERROR = "error"
    OFFLINE = "offline"


@dataclass
class WorkerStatus:
    """What a worker reports about itself; the API returns it as reported (property 4),
    except that a worker silent for longer than `offline_after` shows as Offline."""

    worker_id: str
    state: WorkerState = WorkerState.IDLE
    repo_url: str = ""
    error: str = ""
    job_id: str = ""
    stage: str = ""
    progress: float = 0.0
    device: str = "cpu"
    heartbeat_at: float = 0.0
    heartbeat_seconds: float = 5.0
    started_at: float = field(default_factory=time.time)

    @property
    def status(self) -> str:
        """The compatible status string of the original design (property 11)."""
        if self.state is WorkerState.RUNNING:
            return f"Training Graph on {self.repo_url}"
        if self.state is WorkerState.ERROR:
            return f"Error: {self.error}"
        if self.state is WorkerState.OFFLINE:
            return "Offline"
        return "Idle"

    @property
    def offline_after(self) -> float:
        """Silence longer than this means the worker is gone. Three missed beats, and
        never less than 10 s, so a busy machine's late beat doesn't flap the page."""
        return max(10.0, 3 * self.heartbeat_seconds)

    def to_json(self) -> str:
        data = asdict(self)
        data["state"] = self.state.value
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes, heartbeat_at: float | None = None) -> "WorkerStatus":
        """The report as sent; `heartbeat_at`: when the queue received it, by its clock."""
        data = json.loads(raw)
        data["state"] = WorkerState(data["state"])
        if heartbeat_at is not None:
            data["heartbeat_at"] = float(heartbeat_at)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def public(self, now: float) -> dict:
        shown = self
        if self.state is not WorkerState.OFFLINE and now - self.heartbeat_at > self.offline_after:
            shown = WorkerStatus(**{**asdict(self), "state": WorkerState.OFFLINE})
        data = asdict(shown)
        data["state"] = shown.state.value
        data["status"] = shown.status
        data["seconds_since_heartbeat"] = round(max(0.0, now - self.heartbeat_at), 3)
        return data
