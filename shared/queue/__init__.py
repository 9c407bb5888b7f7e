"""The job queue: one contract (base.JobQueue), three backends chosen by settings."""
from __future__ import annotations

from shared.queue.base import (
    Enqueued,
    JobQueue,
    Lease,
    Overview,
    QueueError,
    QueueFull,
    QueueUnavailable,
)
from shared.settings import Settings

__all__ = ["Enqueued", "JobQueue", "Lease", "Overview", "QueueError", "QueueFull",
           "QueueUnavailable", "open_queue"]


def open_queue(settings: Settings) -> JobQueue:
    """Upstash REST when its URL is set, else Redis when REDIS_URL is, else SQLite."""
    options = dict(
        max_queue_size=settings.max_queue_size,
        task_ttl=settings.task_ttl,
        lease=Lease(seconds=settings.lease_seconds, max_attempts=settings.max_attempts),
    )
    if settings.queue_backend == "sqlite":
        from shared.queue.sqlite import SqliteQueue

        return SqliteQueue(settings.data_dir / "queue.sqlite3", **options)

    from shared.queue.redis import RedisQueue
    from shared.queue.transports import RedisProtocol, UpstashRest

    if settings.queue_backend == "upstash":
        transport = UpstashRest(settings.upstash_url, settings.upstash_token)
    else:
        transport = RedisProtocol(settings.redis_url)
    return RedisQueue(transport, **options)
