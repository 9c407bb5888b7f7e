"""The graph store on PostgreSQL (Neon in production) through psycopg 3.

One connection per store, used under a lock (a worker writes, an API thread
reads; Neon's free tier counts connections). It is opened lazily, with a
connect timeout and TCP keepalives, and reopened after a drop: a read is
retried, and so is a write, as a whole transaction (a snapshot replace is
idempotent, so a retry after a commit whose answer was lost is harmless).
Snapshot rows go in with COPY. Prepared statements are off so that Neon's
pooled (PgBouncer) endpoints work. Error messages are scrubbed of the URL and
its password; nothing here logs either.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Sequence, TypeVar
from urllib.parse import urlsplit

import psycopg
import tenacity
from psycopg.types.json import Jsonb

from shared.graph.store.base import GraphStore, GraphStoreError, GraphStoreUnavailable, Writer
from shared.graph.store.schema import Dialect
from shared.secrets import Scrubber

T = TypeVar("T")
# pg_advisory_xact_lock key for migrations: any constant this project owns.
_SCHEMA_LOCK = 0x4E454F_4752_4150  # "NEO" "GR" "AP"


# Binary COPY (less parsing on both ends than text) needs each column's type.
_COPY_TYPES = {
    "nodes": dict(snapshot_id="int8", id="int8", kind="text", path="text", name="text",
                  qualname="text", start_line="int4", end_line="int4", language="text",
                  docstring="text"),
    "edges": dict(snapshot_id="int8", src="int8", dst="int8", kind="text", line="int4",
                  weight="int4", type_only="bool", candidates="int4"),
    "sources": dict(snapshot_id="int8", path="text", sha256="text", text="text"),
    "documents": dict(snapshot_id="int8", node_id="int8", length="float8"),
    "postings": dict(snapshot_id="int8", term="text", node_id="int8", weight="float8"),
}


def _pg(sql: str) -> str:
    # Shared SQL uses `?`; psycopg wants `%s` (and none of it has a literal %).
    return sql.replace("?", "%s")


class _PostgresWriter:
    def __init__(self, cursor: psycopg.Cursor):
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        self._cursor.execute(_pg(sql), params)
        return self._cursor.fetchall() if self._cursor.description else []

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        with self._cursor.copy(statement) as copy:
            copy.set_types([_COPY_TYPES[table][column] for column in columns])
            for row in rows:
                copy.write_row(row)


class PostgresGraphStore(GraphStore):
    backend = "postgres"
    dialect = Dialect(id="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", bigint="BIGINT",
                      float="DOUBLE PRECISION", json="JSONB", bool="BOOLEAN")

    def __init__(self, url: str, *, connect_timeout: int = 10, attempts: int = 3,
                 **options: Any):
        super().__init__(**options)
        self._url = url
        self.connect_timeout = connect_timeout
        self.attempts = attempts
        self._conn: psycopg.Connection | None = None
        self._lock = threading.RLock()
        self._migrate()

    def __repr__(self) -> str:
        parts = urlsplit(self._url)
        return f"PostgresGraphStore(host={parts.hostname!r}, database={parts.path[1:]!r})"

    # --- connection ------------------------------------------------------------------------
    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self._url, autocommit=True, prepare_threshold=None,
                connect_timeout=self.connect_timeout, application_name="neo-alexandria",
                keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
        return self._conn

    def _run(self, action: Callable[[psycopg.Connection], T]) -> T:
        """`action` on a live connection, retried when the connection failed."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=tenacity.wait_exponential(multiplier=0.2, max=2.0),
            retry=tenacity.retry_if_exception(_transient),
            reraise=True,
        )
        with self._lock:
            try:
                for attempt in retrying:
                    with attempt:  # a dropped connection is closed: the next one reopens
                        return action(self._connection())
            except psycopg.Error as exc:
                # `from None`: a chained psycopg error could print what we scrubbed.
                kind = GraphStoreUnavailable if _transient(exc) else GraphStoreError
                raise kind(self._scrub(
                    f"PostgreSQL graph store: {type(exc).__name__}: {exc}")) from None
        raise AssertionError("unreachable: tenacity reraises")

    def _scrub(self, text: str) -> str:
        return Scrubber([self._url], [self._url])(text)

    # --- primitives ------------------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._run(lambda conn: conn.execute(_pg(sql), params).fetchall())

    def _write(self, work: Callable[[Writer], T]) -> T:
        def transaction(conn: psycopg.Connection) -> T:
            with conn.transaction(), conn.cursor() as cursor:
                return work(_PostgresWriter(cursor))

        try:
            return self._run(transaction)
        except (OverflowError, ValueError, TypeError) as exc:
            raise GraphStoreError(f"the graph cannot be stored: {exc}") from exc

    def _after_snapshot_write(self) -> None:
        # Fresh planner statistics now, not whenever autovacuum comes by: with
        # none, a walk over a large frontier scans the whole snapshot.
        try:
            self._query("ANALYZE nodes, edges, documents, postings")
        except GraphStoreError:
            pass  # the snapshot is committed; autovacuum will analyze later

    def _lock_schema(self, writer: Writer) -> None:
        writer.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))

    def _in(self, column: str, sqltype: str) -> str:
        return f"{column} = ANY(?::{sqltype}[])"

    def _pack(self, values: Sequence[Any]) -> Any:
        return list(values)

    def _encode_stats(self, stats: dict) -> Any:
        return Jsonb(stats)

    def _decode_stats(self, raw: Any) -> dict:
        return raw

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _transient(exc: BaseException) -> bool:
    """A dropped or refused connection, or a deadlock/serialization failure;
    not a statement that ran too long (it would run too long again)."""
    return isinstance(exc, psycopg.OperationalError) and not isinstance(
        exc, psycopg.errors.QueryCanceled)
