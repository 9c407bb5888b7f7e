"""One way to open the embedded SQLite files (queue, graph facts): WAL, waiting for locks,
one connection per thread."""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable


def connect(path: Path | str, busy_seconds: float) -> sqlite3.Connection:
    """An autocommit connection in WAL mode that waits up to `busy_seconds` for a lock.

    Turning a new file to WAL needs an exclusive lock that SQLite does not wait for
    (its busy handler is not called there), so processes or threads opening the same
    new file at once would see "database is locked": that one step is retried here.
    """
    db = sqlite3.connect(path, timeout=busy_seconds, isolation_level=None,
                         check_same_thread=False)
    deadline = time.monotonic() + busy_seconds
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(0.01)
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class ThreadConnections:
    """A connection per thread to one file, made on first use and closed all together:
    a transaction holds its connection, so threads cannot share one."""

    def __init__(self, path: Path | str, busy_seconds: float,
                 setup: Callable[[sqlite3.Connection], None] | None = None):
        self.path = path
        self.busy_seconds = busy_seconds
        self.setup = setup
        self._local = threading.local()
        self._lock = threading.Lock()
        self._made: list[sqlite3.Connection] = []

    def get(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.path, self.busy_seconds)
            if self.setup is not None:
                self.setup(db)
            self._local.db = db
            with self._lock:
                self._made.append(db)
        return db

    def close(self) -> None:
        with self._lock:
            for db in self._made:
                db.close()
            self._made.clear()
        self._local = threading.local()
