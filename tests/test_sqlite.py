"""The embedded SQLite files (queue, graph facts) opened by many threads at once."""
from __future__ import annotations

import threading

from shared.sqlite import connect


def test_many_first_opens_of_one_new_file_never_see_it_locked(tmp_path):
    # Turning a new file to WAL takes a lock SQLite's busy handler does not wait for;
    # without the retry about 1 trial in 20 of these failed with "database is locked".
    failures = []
    for trial in range(40):
        path = tmp_path / f"{trial}.db"
        barrier = threading.Barrier(8)

        def open_and_write():
            try:
                barrier.wait()
                db = connect(path, busy_seconds=30)
                db.execute("BEGIN IMMEDIATE")
                db.execute("CREATE TABLE IF NOT EXISTS t (a)")
                db.execute("INSERT INTO t VALUES (1)")
                db.execute("COMMIT")
                assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
                db.close()
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                failures.append(exc)

        threads = [threading.Thread(target=open_and_write) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == [], f"trial {trial}: {failures}"
        check = connect(path, busy_seconds=1)
        assert check.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 8
        check.close()
