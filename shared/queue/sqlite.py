"""The queue in one SQLite file: the embedded default, no server to install.

Each transition is one `BEGIN IMMEDIATE` transaction, which takes the write
lock up front, so the cap check and the insert (or a claim) cannot interleave
with another thread's or process's. A call here is never resent after a lost
answer (there is no wire), so unlike the Redis scripts no claim is remembered
by its token. Time is this machine's clock, which every process sharing the
file reads (`clock` is injectable so tests can age jobs without sleeping).
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Callable, Iterator

from shared.jobs import (Job, JobState, WorkerStatus, fence_from, history_record,
                         history_summary)
from shared.queue.base import (
    DEAD_LIMIT,
    HISTORY_LIMIT,
    RECORD_RETENTION,
    Enqueued,
    JobQueue,
    Overview,
    QueueError,
    QueueFull,
    QueueUnavailable,
)
from shared.sqlite import ThreadConnections

_POLL_SECONDS = 0.2
_JOB_COLUMNS = [f.name for f in fields(Job)]
_NEVER = float("inf")  # the expiry of a queued or running job's row

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    {", ".join(_JOB_COLUMNS)},
    seq REAL,            -- place in the queue while queued, lowest first
    expires_at REAL NOT NULL,  -- infinity until the job ends
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_by_repo ON jobs (repo_url, state);
CREATE TABLE IF NOT EXISTS history (seq INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT);
CREATE TABLE IF NOT EXISTS dead (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT);
CREATE TABLE IF NOT EXISTS workers (worker_id TEXT PRIMARY KEY, status TEXT, heartbeat_at REAL);
CREATE TABLE IF NOT EXISTS fences (last INTEGER NOT NULL);  -- one row: the last token issued
"""


class SqliteQueue(JobQueue):
    backend = "sqlite"
    blocking = True  # it polls the local file, which costs nothing

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time, **options):
        super().__init__(**options)
        self.clock = clock
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connections = ThreadConnections(self.path, 30, _rows_by_name)
        self._read(lambda db: db.executescript(_SCHEMA))
        self._read(_add_missing_columns)

    # --- connections -----------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            db = self._connections.get()
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise QueueUnavailable(f"SQLite queue {self.path} is unavailable: {exc}") from exc
        try:
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise QueueError(f"SQLite queue error: {exc}") from exc
            raise

    def close(self) -> None:
        self._connections.close()

    # --- transitions ---------------------------------------------------------------------
    def _enqueue(self, job: Job) -> Enqueued:
        with self._transaction() as db:
            now = self.clock()
            self._skip_stale(db, now)
            size = _count_queued(db)
            existing = _load(db, job.id) or _queued_for_repo(db, job.repo_url)
            if existing is not None:
                return Enqueued(existing, _position(db, existing.id), size, created=False)
            if size >= self.max_queue_size:
                raise QueueFull(size, self.max_queue_size)
            job.submitted_at = now
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            _insert(db, job, seq=seq, expires_at=_NEVER)
            return Enqueued(job, size + 1, size + 1, created=True)

    def _claim(self, worker: WorkerStatus, lease_token: str) -> Job | None:
        with self._transaction() as db:
            now = self._beat(db, worker)
            db.execute("DELETE FROM workers WHERE heartbeat_at < ?", (now - RECORD_RETENTION,))
            db.execute("DELETE FROM jobs WHERE expires_at < ?", (now,))
            self._reap(db, now)
            self._skip_stale(db, now)
            # One repository, one job at a time: a running job's lease is its lock.
            row = db.execute(
                "SELECT id FROM jobs WHERE state = 'queued' AND repo_url NOT IN"
                " (SELECT repo_url FROM jobs WHERE state = 'running') ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, seq = NULL,"
                " worker_id = ?, lease_token = ?, lease_deadline = ?, started_at = ?,"
                " stage = '', progress = 0, fence = ? WHERE id = ?",
                (worker.worker_id, lease_token, now + self.lease.seconds, now,
                 _next_fence(db, now), row[0]))
            return _load(db, row[0])

    def _reap(self, db: sqlite3.Connection, now: float) -> None:
        expired = db.execute(
            "SELECT * FROM jobs WHERE state = 'running' AND lease_deadline <= ?", (now,)
        ).fetchall()
        for row in expired:
            job = Job.from_fields(dict(row))
            if job.attempts >= self.lease.max_attempts:
                error = (f"lease expired on attempt {job.attempts} of {self.lease.max_attempts}"
                         " (worker stopped answering); dead-lettered")
                db.execute(
                    "UPDATE jobs SET state = 'dead', finished_at = ?, error = ?,"
                    " lease_deadline = 0, expires_at = ? WHERE id = ?",
                    (now, error, now + RECORD_RETENTION, job.id))
                db.execute("INSERT INTO dead (job_id) VALUES (?)", (job.id,))
                _trim(db, "dead", DEAD_LIMIT)
                _remember(db, job.id, {})
            else:
                _requeue_at_head(db, job.id)

    def _skip_stale(self, db: sqlite3.Connection, now: float) -> None:
        stale = db.execute("SELECT * FROM jobs WHERE state = 'queued' AND submitted_at + ttl < ?",
                           (now,)).fetchall()
        for row in stale:
            reason = Job.from_fields(dict(row)).stale_reason(now)
            if reason:
                db.execute(
                    "UPDATE jobs SET state = 'skipped', seq = NULL, finished_at = ?, reason = ?,"
                    " expires_at = ? WHERE id = ?",
                    (now, reason, now + RECORD_RETENTION, row["id"]))
                _remember(db, row["id"], {})

    def _beat(self, db: sqlite3.Connection, worker: WorkerStatus) -> float:
        """Store the worker's report stamped with the queue's time; that time."""
        worker.heartbeat_at = now = self.clock()
        db.execute("INSERT OR REPLACE INTO workers VALUES (?, ?, ?)",
                   (worker.worker_id, worker.to_json(), now))
        return now

    def _heartbeat(self, worker: WorkerStatus, job: Job | None) -> bool:
        with self._transaction() as db:
            now = self._beat(db, worker)
            if job is None:
                return True
            updated = db.execute(
                "UPDATE jobs SET lease_deadline = ?, stage = ?, progress = ?"
                " WHERE id = ? AND lease_token = ? AND state = 'running'",
                (now + self.lease.seconds, job.stage, job.progress, job.id, job.lease_token))
            return updated.rowcount == 1

    def _finish(self, job: Job, worker: WorkerStatus) -> bool:
        with self._transaction() as db:
            stored = db.execute("SELECT state, lease_token FROM jobs WHERE id = ?",
                                (job.id,)).fetchone()
            if stored is None or stored["lease_token"] != job.lease_token:
                return False
            now = self._beat(db, worker)
            if stored["state"] == JobState.RUNNING.value:
                job.finished_at = now
                db.execute(
                    "UPDATE jobs SET state = ?, finished_at = ?, error = ?, reason = ?,"
                    " files_processed = ?, embeddings_generated = ?, summary = ?,"
                    " stage = ?, progress = ?, lease_deadline = 0, expires_at = ?"
                    " WHERE id = ?",
                    (job.state.value, now, job.error, job.reason,
                     job.files_processed, job.embeddings_generated, json.dumps(job.summary),
                     job.stage, job.progress, now + RECORD_RETENTION, job.id))
                _remember(db, job.id, history_summary(job.summary))
            return True

    def _release(self, job: Job, worker: WorkerStatus) -> bool:
        with self._transaction() as db:
            self._beat(db, worker)
            owned = db.execute(
                "UPDATE jobs SET attempts = attempts - 1 WHERE id = ? AND lease_token = ?"
                " AND state = 'running'", (job.id, job.lease_token)).rowcount == 1
            if owned:
                _requeue_at_head(db, job.id)
            return owned

    # --- reads -------------------------------------------------------------------------
    def wait(self, timeout: float, interrupt: threading.Event) -> None:
        remaining = timeout
        while remaining > 0 and not interrupt.is_set():
            if self._read(lambda db: _count_queued(db)) > 0:
                return
            interrupt.wait(min(_POLL_SECONDS, remaining))
            remaining -= _POLL_SECONDS

    def get_job(self, job_id: str) -> Job | None:
        return self._read(lambda db: _load(db, job_id))

    def overview(self, history_limit: int = 10, dead_limit: int = 10) -> Overview:
        history_limit = max(0, min(history_limit, HISTORY_LIMIT))
        dead_limit = max(0, min(dead_limit, DEAD_LIMIT))

        def read(db: sqlite3.Connection) -> Overview:
            now = self.clock()
            running = db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'running'").fetchone()
            workers = db.execute("SELECT status, heartbeat_at FROM workers ORDER BY worker_id")
            history = db.execute("SELECT record FROM history ORDER BY seq DESC LIMIT ?",
                                 (history_limit,)).fetchall()
            dead_ids = db.execute("SELECT job_id FROM dead ORDER BY seq DESC LIMIT ?",
                                  (dead_limit,)).fetchall()
            dead = [job for (job_id,) in dead_ids if (job := _load(db, job_id)) is not None]
            # stale jobs wait for the next enqueue or claim to be skipped: not pending
            queued = db.execute("SELECT repo_url, id FROM jobs WHERE state = 'queued'"
                                " AND submitted_at + ttl >= ? ORDER BY seq DESC",
                                (now,)).fetchall()
            return Overview(
                pending=len(queued),
                running=running[0],
                workers=[WorkerStatus.from_json(status, beat) for status, beat in workers.fetchall()],
                history=[history_record(json.loads(record)) for (record,) in history],
                dead=dead,
                now=now,
                queued={repo: job_id for repo, job_id in queued},  # the oldest wins
            )

        return self._read(read)

    def _issue_fence(self) -> int:
        with self._transaction() as db:
            return _next_fence(db, self.clock())

    def ping(self) -> None:
        self._read(lambda db: db.execute("SELECT 1").fetchone())

    # Tables kept beside the queue's (shared.limits) use its connections and locking.
    def transaction(self):
        """One BEGIN IMMEDIATE transaction on the queue's file (a context manager)."""
        return self._transaction()

    def read(self, query):
        """`query(connection)`, outside a transaction."""
        return self._read(query)

    def _read(self, query):
        try:
            return query(self._connections.get())
        except sqlite3.Error as exc:
            raise QueueUnavailable(f"SQLite queue {self.path} is unavailable: {exc}") from exc


def _rows_by_name(db: sqlite3.Connection) -> None:
    db.row_factory = sqlite3.Row


def _count_queued(db: sqlite3.Connection) -> int:
    return db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0]


def _load(db: sqlite3.Connection, job_id: str) -> Job | None:
    row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return Job.from_fields(dict(row)) if row is not None else None


def _queued_for_repo(db: sqlite3.Connection, repo_url: str) -> Job | None:
    row = db.execute("SELECT id FROM jobs WHERE repo_url = ? AND state = 'queued' LIMIT 1",
                     (repo_url,)).fetchone()
    return _load(db, row[0]) if row is not None else None


def _position(db: sqlite3.Connection, job_id: str) -> int:
    row = db.execute(
        "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND seq <= "
        "(SELECT seq FROM jobs WHERE id = ? AND state = 'queued')", (job_id,)).fetchone()
    return row[0]


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """A queue file from an older release gains the job fields added since."""
    present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    for name in _JOB_COLUMNS:
        if name not in present:
            db.execute(f"ALTER TABLE jobs ADD COLUMN {name}")


def _insert(db: sqlite3.Connection, job: Job, *, seq: float, expires_at: float) -> None:
    values = {name: getattr(job, name) for name in _JOB_COLUMNS}
    values["state"] = job.state.value
    values["summary"] = json.dumps(job.summary)
    columns = [*_JOB_COLUMNS, "seq", "expires_at"]
    db.execute(
        f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [values[c] for c in _JOB_COLUMNS] + [seq, expires_at])


def _requeue_at_head(db: sqlite3.Connection, job_id: str) -> None:
    head = db.execute("SELECT COALESCE(MIN(seq), 1) - 1 FROM jobs").fetchone()[0]
    db.execute(
        "UPDATE jobs SET state = 'queued', seq = ?, worker_id = '', lease_token = '',"
        " lease_deadline = 0, stage = '', progress = 0 WHERE id = ?", (head, job_id))


def _next_fence(db: sqlite3.Connection, now: float) -> int:
    (last,) = db.execute("SELECT COALESCE(MAX(last), 0) FROM fences").fetchone()
    fence = fence_from(now, last)
    db.execute("DELETE FROM fences")
    db.execute("INSERT INTO fences (last) VALUES (?)", (fence,))
    return fence


def _remember(db: sqlite3.Connection, job_id: str, summary: dict) -> None:
    """The one writer of history entries: the ended job's fields, as Redis stores them."""
    fields = _load(db, job_id).to_fields()
    del fields["lease_token"]
    fields["summary"] = json.dumps(summary)
    db.execute("INSERT INTO history (record) VALUES (?)", (json.dumps(fields),))
    _trim(db, "history", HISTORY_LIMIT)


def _trim(db: sqlite3.Connection, table: str, keep: int) -> None:
    db.execute(f"DELETE FROM {table} WHERE seq <= "
               f"(SELECT seq FROM {table} ORDER BY seq DESC LIMIT 1 OFFSET ?)", (keep,))
