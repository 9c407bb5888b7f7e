"""The graph store in one SQLite file: the embedded default.

A write is one `BEGIN IMMEDIATE` transaction (the write lock is taken up front,
so migrations and snapshot replaces of two processes queue rather than fail);
readers go on reading the last committed state meanwhile (WAL). Each thread
gets its own connection, as sqlite3 connections are not shared across threads.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from shared.graph.store.base import GraphStore, GraphStoreError, Writer
from shared.graph.store.schema import Dialect
from shared.sqlite import ThreadConnections

T = TypeVar("T")
_BUSY_SECONDS = 60  # a writer waits this long for another process's transaction
_CACHE_KIB = 65_536  # page cache per connection: index inserts of a big snapshot need it


def _cache_pages(db: sqlite3.Connection) -> None:
    db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")


class _SqliteWriter:
    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._db.execute(sql, params).fetchall()

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        marks = ", ".join("?" * len(columns))
        self._db.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


class SqliteGraphStore(GraphStore):
    backend = "sqlite"
    dialect = Dialect(id="INTEGER PRIMARY KEY AUTOINCREMENT", bigint="INTEGER",
                      float="REAL", json="TEXT", bool="INTEGER")

    def __init__(self, path: Path | str, **options: Any):
        super().__init__(**options)
        self.path = Path(path)
        self._connections = ThreadConnections(self.path, _BUSY_SECONDS, _cache_pages)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GraphStoreError(f"cannot create the graph store's folder: {exc}") from exc
        self._migrate()

    def __repr__(self) -> str:
        return f"SqliteGraphStore({str(self.path)!r})"

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        try:
            return self._connections.get().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise GraphStoreError(f"SQLite graph store {self.path}: {exc}") from exc

    def _write(self, work: Callable[[Writer], T]) -> T:
        try:
            db = self._connections.get()
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise GraphStoreError(f"SQLite graph store {self.path}: {exc}") from exc
        try:
            result = work(_SqliteWriter(db))
            db.execute("COMMIT")
            return result
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise GraphStoreError(f"SQLite graph store {self.path}: {exc}") from exc
            if isinstance(exc, (OverflowError, ValueError, TypeError)):
                raise GraphStoreError(f"the graph cannot be stored: {exc}") from exc
            raise

    def _in(self, column: str, sqltype: str) -> str:
        return f"{column} IN (SELECT value FROM json_each(?))"

    def _pack(self, values: Sequence[Any]) -> Any:
        return json.dumps(list(values))

    def _encode_stats(self, stats: dict) -> Any:
        return json.dumps(stats)

    def _decode_stats(self, raw: Any) -> dict:
        return json.loads(raw)

    def close(self) -> None:
        self._connections.close()
