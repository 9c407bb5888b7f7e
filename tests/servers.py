"""Real servers on loopback, for tests and benchmarks (no pytest imports here).

``RedisServer`` runs a genuine ``redis-server`` process (Debian package
``redis-server``) on 127.0.0.1 with persistence off, in a private temp dir.

``UpstashRestServer`` emulates Upstash's Redis REST API in front of a real
Redis: every command is forwarded through redis-py, so Redis semantics (types,
errors, Lua, transactions) are Redis's own. What is emulated:

* auth with ``Authorization: Bearer <token>`` or the ``_token`` query
  parameter (401 ``{"error": "Unauthorized"}`` otherwise);
* ``POST /`` with a JSON command array, ``POST /pipeline`` (in order, not
  atomic) and ``POST /multi-exec`` (MULTI/EXEC) with an array of command
  arrays, and the path form ``GET|POST /CMD/arg1/arg2`` (URL-decoded
  segments; a POST body is appended as the last argument, then query
  parameters as extra arguments);
* replies as ``{"result": ...}`` / ``{"error": ...}`` (HTTP 400 for Redis
  errors); bulk strings as UTF-8 text, or base64 with the request header
  ``Upstash-Encoding: base64`` (every string except a bare ``OK``);
* blocking commands (BLPOP, BRPOP, BLMOVE, BZPOPMIN, XREAD BLOCK, ...) are
  refused with ``ERR blocking commands are not supported``.

Not emulated: read-your-writes sync tokens (ignored), pub/sub and SSE
streams, read-only tokens, rate limits and plan limits, RESP3 replies, JSON
and search modules. Commands that would change the state of the shared
connection (MULTI, SELECT, SUBSCRIBE, ...) are refused. In plain mode, bytes
that are not UTF-8 are replaced (use base64 mode for binary values).

Test knobs: ``delay_seconds`` (sleep before handling each request),
``fail_next`` (answer the next N requests with HTTP 500 without running
them), and the counters ``commands`` / ``requests``.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from typing import Any
from urllib.parse import unquote_to_bytes

import redis
import uvicorn
from redis.backoff import NoBackoff
from redis.retry import Retry
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["RedisServer", "ServerUnavailable", "UpstashRestServer", "free_port"]

LOOPBACK = "127.0.0.1"


class ServerUnavailable(RuntimeError):
    """A server binary is missing or a server did not come up."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------
# redis-server
# --------------------------------------------------------------------------


def _stop_process(proc: subprocess.Popen, grace: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class RedisServer:
    """A redis-server child process on 127.0.0.1; started by the constructor.

    ``stop()`` and ``start()`` can be repeated; the port never changes, so
    clients holding ``url`` can be tested for recovery. Data is not kept.
    """

    def __init__(self, port: int | None = None, startup_timeout: float = 10.0):
        self._binary = shutil.which("redis-server")
        if self._binary is None:
            raise ServerUnavailable(
                "redis-server is not on PATH; install the Debian package "
                "redis-server (apt-get install redis-server)"
            )
        self._fixed_port = port is not None
        self._port = port if port is not None else free_port()
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._finalizer: weakref.finalize | None = None
        self.start()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self._port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> "RedisServer":
        """Start (again) on the same port; a no-op when already running."""
        if self.running:
            return self
        attempts = 1 if (self._fixed_port or self._proc is not None) else 3
        for attempt in range(attempts):
            try:
                self._launch()
                return self
            except ServerUnavailable:
                self.stop()
                if attempt == attempts - 1:
                    raise
                # Another process took the port between free_port() and
                # redis binding it; only a first start may move elsewhere.
                self._port = free_port()
        return self

    def stop(self) -> None:
        """Terminate the process (kill after a grace period); idempotent."""
        if self._finalizer is not None:
            self._finalizer()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _launch(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="redis-test-")
        log_path = f"{self._tmp.name}/redis.log"
        with open(log_path, "wb") as log:
            self._proc = subprocess.Popen(
                [self._binary, "--port", str(self._port), "--bind", LOOPBACK,
                 "--save", "", "--appendonly", "no", "--dir", self._tmp.name,
                 "--daemonize", "no"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        # Kills the child even if the owner forgets stop() (e.g. a crashed
        # benchmark), at garbage collection or interpreter exit.
        self._finalizer = weakref.finalize(self, _stop_process, self._proc)
        self._wait_until_ready(log_path)

    def _wait_until_ready(self, log_path: str) -> None:
        client = redis.Redis(host=LOOPBACK, port=self._port, socket_timeout=1,
                             retry=Retry(NoBackoff(), 0))
        deadline = time.monotonic() + self._startup_timeout
        try:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    break
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError,
                        redis.ResponseError):  # ResponseError: LOADING
                    time.sleep(0.02)
        finally:
            client.close()
        with open(log_path, encoding="utf-8", errors="replace") as log:
            tail = log.read()[-2000:]
        raise ServerUnavailable(
            f"redis-server did not answer PING on port {self._port}:\n{tail}")

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --------------------------------------------------------------------------
# Upstash REST emulator: protocol helpers
# --------------------------------------------------------------------------

BLOCKING_ERROR = "ERR blocking commands are not supported"
BLOCKING_COMMANDS = frozenset({
    "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP",
    "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT", "WAITAOF",
})
# These would change or hijack the pooled connection shared by all requests.
CONNECTION_STATE_COMMANDS = frozenset({
    "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "SELECT", "AUTH", "HELLO",
    "RESET", "QUIT", "CLIENT", "MONITOR", "SYNC", "PSYNC",
    "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE",
    "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE",
})


class BadRequest(ValueError):
    """The HTTP request does not carry a well-formed command."""


def _word(arg: Any) -> str:
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return text.upper()


def _refusal(command: list) -> str | None:
    """Why the emulator will not forward this command, or None."""
    name = _word(command[0])
    if name in BLOCKING_COMMANDS:
        return BLOCKING_ERROR
    if name in ("XREAD", "XREADGROUP") and "BLOCK" in map(_word, command[1:]):
        return BLOCKING_ERROR
    if name in CONNECTION_STATE_COMMANDS:
        return f"ERR command '{name}' is not supported over REST"
    return None


def _as_redis_arg(value: Any) -> Any:
    """JSON value -> a redis-py argument (JSON scalars/objects as text)."""
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return json.dumps(value)


def _command(value: Any) -> list:
    if not isinstance(value, list) or not value:
        raise BadRequest("ERR failed to parse command: expected a non-empty array")
    return [_as_redis_arg(arg) for arg in value]


def _error_text(exc: Exception) -> str:
    """The error line as Redis sent it; redis-py strips known prefixes."""
    code = getattr(exc, "status_code", None)
    return f"{code} {exc}" if code else str(exc)


def encode_reply(value: Any, b64: bool) -> Any:
    """A raw RESP2 reply from redis-py -> the JSON value Upstash sends."""
    if isinstance(value, bytes):
        # A bulk "OK" and the status "OK" are indistinguishable here; the
        # client maps both to "OK", so leaving it unencoded is equivalent.
        if b64 and value != b"OK":
            return base64.b64encode(value).decode("ascii")
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (list, tuple)):
        return [encode_reply(item, b64) for item in value]
    if isinstance(value, Exception):  # an error nested in an array reply
        return encode_reply(_error_text(value).encode(), b64)
    return value  # int or None


def _path_command(request: Request, body: bytes) -> list:
    """GET|POST /CMD/arg1/...: raw segments URL-decoded one by one (so that
    %2F stays inside its argument), then the POST body, then query args."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    command: list = [unquote_to_bytes(seg) for seg in raw_path[1:].split(b"/")]
    command[0] = command[0].decode("utf-8", errors="replace")  # redis-py wants str
    if body:
        command.append(body)
    for key, value in request.query_params.multi_items():
        if key != "_token":
            command.extend([key, value] if value else [key])
    return command


# --------------------------------------------------------------------------
# Upstash REST emulator: server
# --------------------------------------------------------------------------


class UpstashRestServer:
    """Upstash Redis REST API on 127.0.0.1, forwarding to ``redis_url``.

    Started by the constructor; uvicorn runs in a daemon thread.
    """

    def __init__(self, redis_url: str, token: str | None = None,
                 startup_timeout: float = 10.0):
        self.token = token or secrets.token_urlsafe(16)
        self.delay_seconds = 0.0
        self.fail_next = 0
        self._lock = threading.Lock()
        self._commands = 0
        self._requests = 0
        # RESP2 as Upstash speaks it (redis-py 8 defaults to RESP3), and no
        # response callbacks, so replies reach the client untransformed.
        self._redis = redis.Redis.from_url(
            redis_url, decode_responses=False, protocol=2)
        self._redis.response_callbacks.clear()
        self._server, self._thread, self._port = _serve_in_thread(
            self._app(), startup_timeout)

    # ---- public surface -------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._port}"

    @property
    def commands(self) -> int:
        """Redis commands executed (a pipeline of k commands counts k)."""
        with self._lock:
            return self._commands

    @property
    def requests(self) -> int:
        """HTTP requests received, failed and unauthorized ones included."""
        with self._lock:
            return self._requests

    def reset_counts(self) -> None:
        with self._lock:
            self._commands = 0
            self._requests = 0

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._redis.close()

    def __enter__(self) -> "UpstashRestServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- HTTP layer -----------------------------------------------------

    def _app(self) -> Starlette:
        route = Route("/{path:path}", self._handle, methods=["GET", "POST"])
        return Starlette(routes=[route])

    async def _handle(self, request: Request) -> JSONResponse:
        self._add(requests=1)
        if self.delay_seconds > 0:
            await asyncio.sleep(self.delay_seconds)
        if self._take_failure():
            return _error(500, "ERR injected failure (fail_next)")
        if not self._authorized(request):
            return _error(401, "Unauthorized")
        b64 = request.headers.get("upstash-encoding", "").lower() == "base64"
        try:
            status, payload = await self._dispatch(request, b64)
        except BadRequest as exc:
            return _error(400, str(exc))
        return JSONResponse(payload, status_code=status)

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        given = header[7:] if header.startswith("Bearer ") else ""
        given = given or request.query_params.get("_token", "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    async def _dispatch(self, request: Request, b64: bool) -> tuple[int, Any]:
        path = request.url.path
        body = await request.body()
        if request.method == "POST" and path in ("/pipeline", "/multi-exec"):
            commands = [_command(c) for c in _json_list(body)]
            return await run_in_threadpool(
                self._run_batch, commands, path == "/multi-exec", b64)
        if request.method == "POST" and path == "/":
            command = _command(_json_list(body))
        elif path != "/":
            command = _path_command(request, body)
        else:
            raise BadRequest("ERR empty command")
        return await run_in_threadpool(self._run_one, command, b64)

    # ---- Redis layer (runs in worker threads) ---------------------------

    def _run_one(self, command: list, b64: bool) -> tuple[int, dict]:
        refusal = _refusal(command)
        if refusal:
            return 400, {"error": refusal}
        try:
            reply = self._redis.execute_command(*command)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            return 500, {"error": f"ERR redis unavailable: {exc}"}
        except redis.RedisError as exc:
            self._add(commands=1)  # Redis ran it and said no
            return 400, {"error": _error_text(exc)}
        self._add(commands=1)
        return 200, {"result": encode_reply(reply, b64)}

    def _run_batch(self, commands: list[list], atomic: bool,
                   b64: bool) -> tuple[int, Any]:
        entries: list[dict | None] = [None] * len(commands)
        runnable = []
        for i, command in enumerate(commands):
            refusal = _refusal(command)
            if refusal:
                entries[i] = {"error": refusal}
            else:
                runnable.append(i)
        pipe = self._redis.pipeline(transaction=atomic)
        for i in runnable:
            pipe.execute_command(*commands[i])
        try:
            replies = pipe.execute(raise_on_error=False)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            return 500, {"error": f"ERR redis unavailable: {exc}"}
        except redis.RedisError as exc:  # queue-time error: EXEC aborted
            return 400, {"error": _exec_abort_text(exc)}
        self._add(commands=len(runnable))
        for i, reply in zip(runnable, replies):
            entries[i] = _entry(reply, b64)
        return 200, entries

    # ---- bookkeeping ----------------------------------------------------

    def _add(self, commands: int = 0, requests: int = 0) -> None:
        with self._lock:
            self._commands += commands
            self._requests += requests

    def _take_failure(self) -> bool:
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return True
            return False


def _entry(reply: Any, b64: bool) -> dict:
    if isinstance(reply, Exception):
        return {"error": _error_text(reply)}
    return {"result": encode_reply(reply, b64)}


def _exec_abort_text(exc: Exception) -> str:
    text = _error_text(exc)
    if text.startswith("EXECABORT"):
        return text
    return f"EXECABORT Transaction discarded because of previous errors: {text}"


def _json_list(body: bytes) -> list:
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise BadRequest(f"ERR failed to parse request body: {exc}") from None
    if not isinstance(value, list):
        raise BadRequest("ERR failed to parse request body: expected an array")
    return value


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _serve_in_thread(app: Any, startup_timeout: float
                     ) -> tuple[uvicorn.Server, threading.Thread, int]:
    # Binding the socket here (port 0) rather than passing a port to uvicorn
    # avoids racing another process for a "free" port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            lifespan="off", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"upstash-rest-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise ServerUnavailable(f"REST emulator did not start on {port}")
        time.sleep(0.01)
    return server, thread, port
