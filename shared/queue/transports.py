"""The two ways commands reach Redis: its own protocol, and Upstash's REST API.

Every script the queue runs is idempotent under a retry of the same call, so
both transports may resend a request whose answer was lost.
"""
from __future__ import annotations

import threading
from typing import Any, Sequence

import httpx
import redis
import tenacity
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from shared.queue.base import QueueError, QueueUnavailable

# A blocking wait is cut into slices this long so a stopping worker is not held.
_WAIT_SLICE = 1.0
# Every call gives up within about two timeouts and a short backoff (two tries), ~6.5 s
# on a server that accepts connections and never answers: an API request answers 503,
# and a stopping worker stays inside its service manager's stop timeout
# (edge.worker.SHUTDOWN_SECONDS). Each script runs in well under a millisecond.
CALL_TIMEOUT = 3.0
CALL_TRIES = 2


class RedisProtocol:
    """redis-py over TCP (or TLS with rediss://)."""

    name = "redis"
    blocking = True

    def __init__(self, url: str, *, timeout: float = CALL_TIMEOUT):
        # No health_check_interval: its PING runs on every new connection with the same
        # retries, which tripled a call's time on a hung server (46 s at a 5 s timeout);
        # a connection dropped while idle fails its command and the retry reconnects.
        common = dict(decode_responses=True, socket_connect_timeout=min(timeout, 2.0))
        # One quick retry with short backoff: the API answers 503 within seconds
        # rather than hanging on redis-py's default multi-second backoff.
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), CALL_TRIES - 1)
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, retry=retry, **common)
        # Blocking waits need a socket timeout longer than the wait itself.
        self.waiter = redis.Redis.from_url(url, socket_timeout=timeout + _WAIT_SLICE,
                                           retry=Retry(ExponentialBackoff(), 0), **common)

    def command(self, *args: Any) -> Any:
        with _redis_errors():
            return self.client.execute_command(*args)

    def script(self, source: str, sha: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        with _redis_errors():
            try:
                return self.client.evalsha(sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                return self.client.eval(source, len(keys), *keys, *args)

    def wait_nonempty(self, key: str, timeout: float, interrupt: threading.Event) -> None:
        """Block until `key` holds an item. BLMOVE from a list to its own head is a
        no-op move that wakes the moment an item arrives, and takes nothing: the
        atomic claim script still decides who gets the job."""
        remaining = timeout
        while remaining > 0 and not interrupt.is_set():
            slice_ = min(_WAIT_SLICE, remaining)
            with _redis_errors():
                if self.waiter.blmove(key, key, slice_, "LEFT", "LEFT") is not None:
                    return
            remaining -= slice_

    def close(self) -> None:
        self.client.close()
        self.waiter.close()


class _redis_errors:
    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None:
            return False
        if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            # redis-py's messages carry host and port, never the password
            raise QueueUnavailable(f"Redis is unreachable: {exc}") from exc
        if isinstance(exc, redis.exceptions.RedisError):
            raise QueueError(f"Redis error: {exc}") from exc
        return False


class UpstashRest:
    """Upstash's REST API over httpx: each command is a JSON array POSTed to the
    database URL with the token as a bearer header; the answer is {"result": ...} or
    {"error": ...}. Not the upstash-redis client: it offers no request timeout, and
    its errors do not tell a script's error from an unreachable server. Resending
    is safe here, where every command is known to be idempotent."""

    name = "upstash"
    blocking = False  # REST has no blocking commands: the worker polls

    def __init__(self, url: str, token: str, *, timeout: float = CALL_TIMEOUT,
                 attempts: int = CALL_TRIES):
        self.url = url
        self.client = httpx.Client(timeout=timeout,
                                   headers={"Authorization": f"Bearer {token}"})
        self._retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(attempts),
            wait=tenacity.wait_exponential(multiplier=0.2, max=2.0),
            retry=tenacity.retry_if_exception_type((httpx.TransportError, _Transient)),
            reraise=True,
        )

    def command(self, *args: Any) -> Any:
        try:
            body = self._retrying(self._post, [str(a) for a in args])
        except (httpx.HTTPError, _Transient) as exc:
            # httpx messages name the URL, never the token (it travels in a header)
            raise QueueUnavailable(f"Upstash is unreachable: {type(exc).__name__}: {exc}") from exc
        if "error" in body:
            # The server ran the command and refused it: a bug here, not an outage.
            raise QueueError(f"Upstash answered an error: {body['error']}")
        return body.get("result")

    def _post(self, command: list[str]) -> dict:
        response = self.client.post(self.url, json=command)
        if response.status_code in (401, 403):
            raise QueueUnavailable(f"Upstash refused the token (HTTP {response.status_code}); "
                                   "check UPSTASH_REDIS_REST_TOKEN")
        if response.status_code == 429 or response.status_code >= 500:
            raise _Transient(f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise _Transient(f"HTTP {response.status_code} with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise _Transient(f"HTTP {response.status_code} with an unexpected body")
        return body

    def script(self, source: str, sha: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return self.command("EVALSHA", sha, len(keys), *keys, *args)
        except QueueError as exc:
            if "NOSCRIPT" not in str(exc):
                raise
        return self.command("EVAL", source, len(keys), *keys, *args)

    def wait_nonempty(self, key: str, timeout: float, interrupt: threading.Event) -> None:
        interrupt.wait(timeout)

    def close(self) -> None:
        self.client.close()


class _Transient(Exception):
    """An answer worth asking again for: rate limited, a server error, a garbled body."""
