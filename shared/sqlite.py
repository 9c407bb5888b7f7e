"""One way to open the embedded SQLite files (queue, graph facts): WAL, waiting for locks."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path


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
