"""Plan limits as atomic counters in the queue's store (Redis, Upstash REST or SQLite).

`check` counts an attempt against the account's current window and refuses it when
it would pass the maximum; a refused attempt is not counted. `add` meters what was
done after the fact (chunks a worker embedded) without refusing. Every counted amount
also lands in a per-UTC-day tally kept 40 days, which `usage` reads for the account's
page. Windows: ingests per UTC day, queries per minute, embeddings per UTC calendar
month.

Time is the store's, as the queue's is: the Redis server's inside the scripts, the
queue's clock for the SQLite file (shared by every process on the machine, and
injectable so tests can cross a window without sleeping). On Redis and Upstash each
operation is one command, an EVALSHA (on Upstash every command counts); only the first
call after the server lost its script cache adds the EVAL that loads it, as the queue's.
"""
from __future__ import annotations

import hashlib
import math
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Protocol

from shared.queue import limit_scripts
from shared.queue.base import JobQueue

if TYPE_CHECKING:
    from shared.queue.redis import RedisQueue

# Each limit's window kind.
WINDOWS = {"ingests": "day", "queries": "minute", "embeddings": "month"}
USAGE_DAYS = 40  # per-day tallies are kept this many days after the day ends
_DAY = 86_400
# A resent call finds its first answer for this long: well past a transport's retries
# (shared.queue.transports: about 6.5 s at worst).
_CALL_RETENTION = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    used: int  # counted in the current window, this attempt included when allowed
    limit: int | None  # the maximum checked against; None: unlimited
    retry_after: int  # whole seconds until the window resets, >= 1
    window: str  # minute | day | month


class Counters(Protocol):
    """What a store does atomically; `maximum` None is unlimited, amount 0 only reads."""

    def count(self, account_id: str, limit: str, maximum: int | None,
              amount: int) -> tuple[bool, int, int]: ...  # allowed, used, retry_after

    def usage(self, account_id: str, days: int) -> list[tuple[str, dict[str, int]]]: ...

    def close(self) -> None: ...


class Limiter:
    def __init__(self, counters: Counters):
        self.counters = counters

    @classmethod
    def for_queue(cls, queue: JobQueue) -> Limiter:
        """Counters in the store `queue` uses: its Redis (either transport) and key
        prefix, or its SQLite file and clock."""
        # imported here, as open_queue does: a SQLite install needs no Redis client
        from shared.queue.redis import RedisQueue
        from shared.queue.sqlite import SqliteQueue

        if isinstance(queue, RedisQueue):
            return cls(RedisCounters(queue))
        if isinstance(queue, SqliteQueue):
            return cls(SqliteCounters(queue))
        raise TypeError(f"no counters for a {type(queue).__name__}")

    def check(self, account_id: str, limit: str, maximum: int | None,
              amount: int = 1) -> Verdict:
        """Count `amount` against the current window unless that would pass `maximum`."""
        _validate(account_id, limit, amount, least=1)
        if maximum is not None and (isinstance(maximum, bool) or not isinstance(maximum, int)
                                    or maximum < 0):
            raise ValueError(f"maximum must be a whole number >= 0 or None, not {maximum!r}")
        allowed, used, retry_after = self.counters.count(account_id, limit, maximum, amount)
        return Verdict(allowed, used, maximum, retry_after, WINDOWS[limit])

    def peek(self, account_id: str, limit: str, maximum: int | None) -> Verdict:
        """Whether anything is left in the window, counting nothing: e.g. refuse an
        ingest once the month's embeddings are spent (they are only `add`ed later)."""
        _validate(account_id, limit, 0, least=0)
        _, used, retry_after = self.counters.count(account_id, limit, None, 0)
        allowed = maximum is None or used < maximum
        return Verdict(allowed, used, maximum, retry_after, WINDOWS[limit])

    def add(self, account_id: str, limit: str, amount: int) -> int:
        """Meter `amount` without limiting (it was already done); the window's new count."""
        _validate(account_id, limit, amount, least=0)
        return self.counters.count(account_id, limit, None, amount)[1]

    def usage(self, account_id: str, days: int = 30) -> list[dict]:
        """Per UTC day, oldest first and today last: {"day": "YYYY-MM-DD", "ingests",
        "queries", "embeddings" (chunks embedded)}, 0 where nothing was counted."""
        _validate_account(account_id)
        if not 1 <= days <= USAGE_DAYS:
            raise ValueError(f"days must be 1..{USAGE_DAYS} (what is kept), not {days}")
        return [{"day": day, **counts} for day, counts in self.counters.usage(account_id, days)]

    def close(self) -> None:
        self.counters.close()


def _validate_account(account_id: str) -> None:
    if not isinstance(account_id, str) or not account_id:
        raise ValueError("account_id must be a non-empty string")


def _validate(account_id: str, limit: str, amount: int, *, least: int) -> None:
    _validate_account(account_id)
    if limit not in WINDOWS:
        raise ValueError(f"unknown limit {limit!r}; known: {', '.join(WINDOWS)}")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < least:
        raise ValueError(f"amount must be a whole number >= {least}, not {amount!r}")


# --- windows by a clock (SQLite; the Lua scripts hold the same calendar) -------------

def window(kind: str, now: float) -> tuple[int, int]:
    """[start, end) in epoch seconds of the `kind` window holding `now` (UTC)."""
    if kind == "minute":
        start = int(now // 60) * 60
        return start, start + 60
    if kind == "day":
        start = int(now // _DAY) * _DAY
        return start, start + _DAY
    today = datetime.fromtimestamp(now, timezone.utc)
    start = datetime(today.year, today.month, 1, tzinfo=timezone.utc)
    end = datetime(today.year + today.month // 12, today.month % 12 + 1, 1, tzinfo=timezone.utc)
    return int(start.timestamp()), int(end.timestamp())


def day_label(days: int) -> str:
    """YYYY-MM-DD of a day counted from 1970-01-01."""
    return (datetime(1970, 1, 1) + timedelta(days=days)).strftime("%Y-%m-%d")


# --- Redis and Upstash REST ------------------------------------------------------------

class RedisCounters:
    """The counters beside a RedisQueue: its transport, its key prefix."""

    def __init__(self, queue: RedisQueue):
        self.transport = queue.transport
        self.keys = queue.keys
        self._count = _script(limit_scripts.COUNT)
        self._usage = _script(limit_scripts.USAGE)

    def count(self, account_id: str, limit: str, maximum: int | None, amount: int,
              call_id: str | None = None) -> tuple[bool, int, int]:
        """`call_id`: the same id on a resend counts once (the transport's own resends
        reuse the call; a caller never needs to pass one)."""
        k = self.keys
        allowed, used, retry_after = self._run(
            self._count,
            [k.limit(account_id, limit), k.limit_call(call_id or uuid.uuid4().hex)],
            [WINDOWS[limit], "" if maximum is None else maximum, amount,
             k.usage_prefix(account_id), limit, USAGE_DAYS * _DAY, _CALL_RETENTION])
        return int(allowed) == 1, int(used), int(retry_after)

    def usage(self, account_id: str, days: int) -> list[tuple[str, dict[str, int]]]:
        fields = list(WINDOWS)
        flat = self._run(self._usage, [],
                         [self.keys.usage_prefix(account_id), days, *fields])
        step = len(fields) + 1
        return [(flat[i], dict(zip(fields, map(int, flat[i + 1:i + step]))))
                for i in range(0, len(flat), step)]

    def _run(self, script: tuple[str, str], keys: list[str], args: list) -> list:
        source, sha = script
        return self.transport.script(source, sha, keys, [str(a) for a in args])

    def close(self) -> None:
        pass  # the transport is the queue's


def _script(source: str) -> tuple[str, str]:
    return source, hashlib.sha1(source.encode()).hexdigest()


# --- SQLite ------------------------------------------------------------------------------

_COLUMNS = ", ".join(f"{name} INTEGER NOT NULL DEFAULT 0" for name in WINDOWS)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS limit_counters (
    account_id TEXT NOT NULL, name TEXT NOT NULL,
    window_start INTEGER NOT NULL, window_end INTEGER NOT NULL, used INTEGER NOT NULL,
    PRIMARY KEY (account_id, name)
);
CREATE INDEX IF NOT EXISTS limit_counters_by_end ON limit_counters (window_end);
CREATE TABLE IF NOT EXISTS usage_days (
    account_id TEXT NOT NULL, day TEXT NOT NULL, {_COLUMNS},
    PRIMARY KEY (account_id, day)
);
CREATE INDEX IF NOT EXISTS usage_days_by_day ON usage_days (day);
"""


class SqliteCounters:
    """Tables of their own in the queue's file, through the queue's connections: each
    count is one of its BEGIN IMMEDIATE transactions, which take the write lock first,
    so no two counts interleave."""

    def __init__(self, queue):
        self.queue, self.clock = queue, queue.clock
        queue.read(lambda db: db.executescript(_SCHEMA))  # idempotent, as the queue's own

    def count(self, account_id: str, limit: str, maximum: int | None,
              amount: int) -> tuple[bool, int, int]:
        with self.queue.transaction() as db:
            now = self.clock()
            start, end = window(WINDOWS[limit], now)
            row = db.execute(
                "SELECT used FROM limit_counters WHERE account_id = ? AND name = ?"
                " AND window_start = ?", (account_id, limit, start)).fetchone()
            used = row[0] if row else 0
            retry_after = max(1, math.ceil(end - now))
            if maximum is not None and used + amount > maximum:
                return False, used, retry_after
            if amount:
                used += amount
                self._write(db, account_id, limit, (start, end, used), amount, now)
            return True, used, retry_after

    def _write(self, db: sqlite3.Connection, account_id: str, limit: str,
               counter: tuple[int, int, int], amount: int, now: float) -> None:
        db.execute("INSERT OR REPLACE INTO limit_counters VALUES (?, ?, ?, ?, ?)",
                   (account_id, limit, *counter))
        today = int(now // _DAY)
        db.execute(f"INSERT INTO usage_days (account_id, day, {limit}) VALUES (?, ?, ?)"
                   " ON CONFLICT (account_id, day)"
                   f" DO UPDATE SET {limit} = {limit} + excluded.{limit}",
                   (account_id, day_label(today), amount))
        # what Redis lets expire: windows that ended, days past their retention
        db.execute("DELETE FROM limit_counters WHERE window_end <= ?", (now,))
        db.execute("DELETE FROM usage_days WHERE day < ?", (day_label(today - USAGE_DAYS),))

    def usage(self, account_id: str, days: int) -> list[tuple[str, dict[str, int]]]:
        today = int(self.clock() // _DAY)
        labels = [day_label(d) for d in range(today - days + 1, today + 1)]
        rows = self.queue.read(lambda db: db.execute(
            f"SELECT day, {', '.join(WINDOWS)} FROM usage_days"
            " WHERE account_id = ? AND day >= ? AND day <= ?",
            (account_id, labels[0], labels[-1])).fetchall())
        found = {row[0]: dict(zip(WINDOWS, tuple(row)[1:])) for row in rows}
        return [(day, found.get(day, dict.fromkeys(WINDOWS, 0))) for day in labels]

    def close(self) -> None:
        pass  # the queue's connections: the queue closes them

