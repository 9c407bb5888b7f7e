"""Real servers on loopback, for tests and benchmarks (no pytest imports here).

``RedisServer`` runs a genuine ``redis-server`` process (Debian package
``redis-server``) on 127.0.0.1 with persistence off, in a private temp dir.

``PostgresServer`` runs a genuine PostgreSQL (Debian package ``postgresql``):
its own cluster made by ``initdb`` in a temp dir, on 127.0.0.1 (see the class).

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
import contextlib
import glob
import hmac
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from typing import Any
from urllib.parse import unquote_to_bytes

import psycopg
import redis
import uvicorn
from redis.backoff import NoBackoff
from redis.retry import Retry
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["PostgresServer", "RedisServer", "ServerUnavailable", "UpstashRestServer",
           "free_port"]

LOOPBACK = "127.0.0.1"


class ServerUnavailable(RuntimeError):
    """A server binary is missing or a server did not come up."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------
# the control plane itself
# --------------------------------------------------------------------------


class LiveServer:
    """The app under uvicorn on a loopback port, in a thread; stop() and start()
    again serve on the same port (the page keeps polling the same address)."""

    def __init__(self, app) -> None:
        self.app = app
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        # Binding here, rather than handing uvicorn a port, gets a free port with no
        # race the first time and the same port after a stop.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False,
                                lifespan="on", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"control-plane-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                sock.close()
                raise RuntimeError(f"the control plane did not start on port {self.port}")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(timeout=10)
            assert not self._thread.is_alive(), "uvicorn did not stop"
        self._thread = None


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

    @contextlib.contextmanager
    def hung(self):
        """The server stopped dead (SIGSTOP): the kernel still accepts connections, no
        command is ever answered -- the worst an outage can look like to a client."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self._proc.send_signal(signal.SIGCONT)

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


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------

POSTGRES_SUPERUSER = "postgres"


def postgres_bin_dir() -> str:
    """The folder holding initdb and postgres: from PATH, else the newest
    Debian /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    # Debian links /usr/local/bin/initdb into the versioned folder; initdb
    # looks for `postgres` beside its real path, so use that folder.
    candidates = [os.path.dirname(os.path.realpath(found))] if found else []
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(versioned, key=_postgres_version, reverse=True)
    for folder in candidates:
        if all(os.access(os.path.join(folder, name), os.X_OK)
               for name in ("initdb", "postgres")):
            return folder
    raise ServerUnavailable(
        "PostgreSQL's initdb/postgres are not on PATH nor in /usr/lib/postgresql/*/bin; "
        "install the Debian package postgresql (apt-get install postgresql)")


def _postgres_version(folder: str) -> tuple[int, ...]:
    version = folder.split("/")[-2]
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _postgres_account() -> pwd.struct_passwd | None:
    """Who the server runs as: None for the current user, the `postgres`
    system user when we are root (initdb and postgres refuse to run as root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise ServerUnavailable(
            "running as root, and there is no `postgres` system user to run "
            "PostgreSQL as (the Debian package postgresql creates it)") from None


def _end_postgres(proc: subprocess.Popen, grace: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # "fast" shutdown: ends sessions, no waiting
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stop_postgres(proc: subprocess.Popen, folder: str) -> None:
    _end_postgres(proc)
    shutil.rmtree(folder, ignore_errors=True)


class PostgresServer:
    """A PostgreSQL cluster of its own on 127.0.0.1; started by the constructor.

    ``initdb`` (trust auth, superuser ``postgres``, UTF-8, C locale) makes a
    cluster in a private temp dir; ``postgres`` runs as a child process on a
    free loopback port with its socket in that dir and durability switched off
    (fsync, synchronous_commit, full_page_writes: test data need not survive a
    crash). As root, both run as the ``postgres`` system user, which owns the
    temp dir. ``stop()`` ends the server and removes the dir; it also happens
    at garbage collection or interpreter exit.
    """

    def __init__(self, startup_timeout: float = 30.0):
        self._bin = postgres_bin_dir()
        self._account = _postgres_account()
        self._startup_timeout = startup_timeout
        self._folder = tempfile.mkdtemp(prefix="postgres-test-")
        self._proc: subprocess.Popen | None = None
        self._finalizer: weakref.finalize | None = None
        self._port = 0
        try:
            if self._account is not None:
                os.chown(self._folder, self._account.pw_uid, self._account.pw_gid)
            self._initdb()
            self._start()
        except BaseException:
            self.stop()
            raise

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The maintenance database `postgres`, as the superuser."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://{POSTGRES_SUPERUSER}@{LOOPBACK}:{self._port}/{database}"

    @property
    def folder(self) -> str:
        """The temp dir holding the cluster, its socket and its log."""
        return self._folder

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @contextlib.contextmanager
    def down(self):
        """The server stopped (fast shutdown: clients are cut off), then started again on
        the same port with the same data when the block ends."""
        assert self._proc is not None and self._finalizer is not None
        self._finalizer.detach()  # it would remove the data folder
        self._proc.send_signal(signal.SIGINT)
        self._proc.wait(30)
        try:
            yield
        finally:
            self._launch()

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its name."""
        name = name or f"test_{secrets.token_hex(6)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop it, ending any session still connected to it."""
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server and remove its files; idempotent."""
        if self._finalizer is not None:
            self._finalizer()
        else:
            shutil.rmtree(self._folder, ignore_errors=True)

    def _admin(self, statement: str) -> None:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)

    def _run_as_owner(self, args: list[str], **options: Any) -> subprocess.Popen:
        if self._account is not None:
            options.update(user=self._account.pw_uid, group=self._account.pw_gid,
                           extra_groups=[])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        return subprocess.Popen(args, cwd=self._folder, env=env, stdin=subprocess.DEVNULL,
                                **options)

    def _initdb(self) -> None:
        proc = self._run_as_owner(
            [os.path.join(self._bin, "initdb"), "-D", self._data, "-U", POSTGRES_SUPERUSER,
             "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise ServerUnavailable(
                f"initdb failed ({proc.returncode}):\n{output.decode(errors='replace')[-2000:]}")

    @property
    def _data(self) -> str:
        return os.path.join(self._folder, "data")

    def _start(self) -> None:
        for attempt in range(3):
            self._port = free_port()
            try:
                self._launch()
                return
            except ServerUnavailable:
                # Another process may have taken the port before postgres bound it.
                if attempt == 2:
                    raise

    def _launch(self) -> None:
        log_path = os.path.join(self._folder, "postgres.log")
        with open(log_path, "wb") as log:
            self._proc = self._run_as_owner(
                [os.path.join(self._bin, "postgres"), "-D", self._data,
                 "-p", str(self._port), "-k", self._folder,
                 "-c", f"listen_addresses={LOOPBACK}", "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=100"],
                stdout=log, stderr=subprocess.STDOUT)
        self._finalizer = weakref.finalize(self, _stop_postgres, self._proc, self._folder)
        deadline = time.monotonic() + self._startup_timeout
        while self._proc.poll() is None and time.monotonic() < deadline:
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.05)
        with open(log_path, encoding="utf-8", errors="replace") as log:
            tail = log.read()[-2000:]
        self._finalizer.detach()  # keep the folder: the next try starts from it
        self._finalizer = None
        _end_postgres(self._proc)
        raise ServerUnavailable(f"postgres did not accept connections on {self._port}:\n{tail}")

    def __enter__(self) -> "PostgresServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
