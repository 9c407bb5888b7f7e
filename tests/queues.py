"""Building isolated queues on each backend for tests and benchmarks."""
from __future__ import annotations

import uuid
from pathlib import Path

from shared.queue import JobQueue
from shared.queue.keys import Keys
from shared.queue.redis import RedisQueue
from shared.queue.sqlite import SqliteQueue
from shared.queue.transports import RedisProtocol, UpstashRest

BACKENDS = ("sqlite", "redis", "upstash")


class Clock:
    """Time the test moves by hand, to age jobs and expire leases without sleeping."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_queue(backend: str, *, tmp_path: Path, redis_url: str = "", upstash=None,
               **options) -> JobQueue:
    """A queue of its own: a fresh SQLite file, or a fresh key prefix in the shared Redis."""
    keys = Keys(prefix=f"t{uuid.uuid4().hex[:12]}:")
    if backend == "sqlite":
        return SqliteQueue(tmp_path / f"{keys.prefix[:-1]}.sqlite3", **options)
    if backend == "redis":
        return RedisQueue(RedisProtocol(redis_url), keys=keys, **options)
    if backend == "upstash":
        return RedisQueue(UpstashRest(upstash.url, upstash.token, timeout=2.0), keys=keys,
                          **options)
    raise ValueError(backend)
