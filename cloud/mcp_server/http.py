"""/mcp on the control plane: the MCP tools over streamable HTTP, behind the API's guard.

`McpEndpoint` is the ASGI app routed at /mcp. It admits a request as the API does
(cloud/auth.py: the admin token, or an account's key with the `read` scope; the
same 401) and puts the caller in the request's state, where each tool finds it (an
account sees its own repositories; ingesting needs `ingest`), then hands it to the
SDK's streamable HTTP app. The SDK is loaded, and the MCP server, its
streamable HTTP app and its session manager made, on the first request to /mcp,
inside the control plane's lifespan (`serving`): its imports alone take 27 MB
(pydantic models of the whole protocol), which a control plane nobody asks over
MCP keeps for its 300 MB target on a 512 MB host (docs/BENCHMARKS.md).

The SDK's DNS-rebinding guard answers 421 to a Host header not in
MCP_ALLOWED_HOSTS (default: this machine's names on PORT), and 403 to a browser
Origin of another host. Its own answer is plain text, so the endpoint asks the same
guard (the SDK's, with the same settings) first and raises its refusal as an
HTTPException, which cloud/errors.py answers as JSON like every other error; the SDK
still checks again behind it.
"""
from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any, AsyncIterator

import anyio
from anyio.abc import TaskStatus
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from cloud.auth import BearerAuth
from cloud.errors import error_response
from cloud.mcp_server.backends import Backend
from shared.graph.store.accounts import Scope as AuthScope
from shared.settings import Settings

log = logging.getLogger("cloud.mcp")

PATH = "/mcp"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
ANY_ADDRESS = ("0.0.0.0", "::", "")


def allowed_hosts(settings: Settings) -> list[str]:
    """MCP_ALLOWED_HOSTS, else this machine's loopback names on PORT, and HOST on PORT
    when HOST is one address or name (not 0.0.0.0: behind a proxy, name the public
    host in MCP_ALLOWED_HOSTS)."""
    if settings.mcp_allowed_hosts:
        return list(settings.mcp_allowed_hosts)
    hosts = [f"{name}:{settings.port}" for name in LOOPBACK_NAMES]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    if settings.host not in ANY_ADDRESS and host not in LOOPBACK_NAMES:
        hosts.append(f"{host}:{settings.port}")
    return hosts


def transport_security(settings: Settings) -> Any:
    """The SDK's DNS-rebinding guard over the allowed hosts; `*` turns it off."""
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = allowed_hosts(settings)
    if "*" in hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts,
        allowed_origins=[f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")])


class McpEndpoint:
    """The ASGI app at /mcp: the admin token, then the SDK's streamable HTTP app."""

    def __init__(self) -> None:
        self.guard = BearerAuth(self)  # its admit() only: the caller in the request's state
        self._app: ASGIApp | None = None
        self._security: Any = None  # the SDK's TransportSecurityMiddleware, with the app
        self._start: Any = None  # while serving: starts the MCP server, once
        self._starting: anyio.Lock | None = None

    @contextlib.asynccontextmanager
    async def serving(self, settings: Settings, backend: Backend) -> AsyncIterator[None]:
        """Answer over `backend` for the life of the block (the app's lifespan)."""
        async with anyio.create_task_group() as tasks:
            self._start = functools.partial(tasks.start, self._run, settings, backend)
            self._starting = anyio.Lock()
            try:
                yield
            finally:
                self._start = self._app = self._security = None
                tasks.cancel_scope.cancel()

    async def _run(self, settings: Settings, backend: Backend, *,
                   task_status: TaskStatus) -> None:
        """The MCP server and its session manager, until the lifespan ends."""
        server = await anyio.to_thread.run_sync(_make_server, backend)  # imports: off the loop
        # stateless: every call stands alone (the tools keep nothing between calls), so no
        # session state to hold on a 512 MB host, no open stream to delay a drain, and any
        # instance behind a proxy can answer
        from mcp.server.transport_security import TransportSecurityMiddleware

        security = transport_security(settings)
        app = server.streamable_http_app(streamable_http_path=PATH, stateless_http=True,
                                         transport_security=security)
        async with server.session_manager.run():
            self._app, self._security = app, TransportSecurityMiddleware(security)
            task_status.started()
            await anyio.sleep_forever()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the API's guard: the admin token or a key with `read` (each tool checks more)
        if await self.guard.admit(scope, receive, send, AuthScope.READ) is None:
            return
        if self._app is None and self._start is not None:
            async with self._starting:
                if self._app is None:
                    await self._start()
        if self._app is None:
            await error_response(503, "unavailable", "the MCP server is starting or stopping",
                                 {"Retry-After": "5"})(scope, receive, send)
            return
        await self._refuse_foreign(scope)
        await self._app(scope, receive, send)

    async def _refuse_foreign(self, scope: Scope) -> None:
        """The SDK guard's refusal (a foreign Host or Origin, a POST not of JSON) as an
        HTTPException, for cloud/errors.py to answer."""
        request = Request(scope)
        refusal = await self._security.validate_request(request,
                                                        is_post=request.method == "POST")
        if refusal is None:
            return
        headers = request.headers
        detail = {
            421: f"the Host header {headers.get('host', '')[:100]!r} is not one /mcp "
                 "answers (DNS-rebinding guard): add it to MCP_ALLOWED_HOSTS",
            403: f"the Origin header {headers.get('origin', '')[:100]!r} is not one /mcp "
                 "answers (DNS-rebinding guard): add its host to MCP_ALLOWED_HOSTS",
            400: "a POST to /mcp must have Content-Type: application/json",
        }.get(refusal.status_code, bytes(refusal.body).decode(errors="replace")[:200])
        raise HTTPException(refusal.status_code, detail)


def _make_server(backend: Backend):
    from cloud.mcp_server.tools import build_server

    return build_server(backend)
