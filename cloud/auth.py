"""Who is asking: the bearer guard of every /api/ route, and what each may do.

Two kinds of bearer token. The admin token (PHAROS_ADMIN_TOKEN) is the owner's: every
scope, every account, as before accounts existed. An API key (`na_live_…`,
shared/graph/store/accounts.py) is an account's: its scopes, its repositories. The
guard puts a `Principal` in `request.state.principal`; routes ask it what the caller
may see (`visible`) and do (`SCOPES`, checked here, before any route runs).

Failures are uniform: one 401 body for a missing, malformed, unknown or revoked
token, and an unknown and a revoked key cost the same single indexed read. An address
that keeps failing is slowed: each failure past `FREE_FAILURES` in `FAILURE_WINDOW`
seconds waits twice as long as the one before (at most `MAX_DELAY`), so guessing
costs time and nothing else is held up (the wait is asynchronous). The address is the
one the server saw (behind a proxy, run uvicorn with --proxy-headers); loopback is
never slowed, since behind a proxy that does not pass the client's address every
client would share it and one guesser would slow them all.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope as AsgiScope, Send

from cloud.errors import ApiError, error_response, handle
from shared.graph.store.accounts import Scope, looks_like_key
from shared.secrets import Scrubber
from shared.settings import is_loopback_host

log = logging.getLogger("cloud.auth")

FREE_FAILURES = 5
FAILURE_WINDOW = 300.0
MAX_DELAY = 8.0
TOUCH_SECONDS = 60.0  # a key's last-used time is written at most this often
UNAUTHORIZED = "missing or invalid token; send 'Authorization: Bearer <token>' with the " \
               "admin token or an API key"


def redact_path(path: str) -> str:
    """A submitted URL may carry credentials (it is rejected, but only later), and a
    client may have percent-encoded them, so decode before redacting."""
    return Scrubber()(unquote(path))[:200]


# Webhooks authenticate by their signature (cloud/webhooks.py, cloud/billing.py).
WEBHOOKS = {"github": "/api/v1/webhooks/github", "gitlab": "/api/v1/webhooks/gitlab",
            "stripe": "/api/v1/billing/stripe-webhook"}
_OPEN = frozenset(WEBHOOKS.values())

# The scope each route needs: (method or "*", path pattern) -> scope, first match wins.
# A path no rule names needs admin: a new route is closed until it is listed.
SCOPES: tuple[tuple[str, re.Pattern, Scope | None], ...] = tuple(
    (method, re.compile(pattern), scope) for method, pattern, scope in (
        ("POST", r"/api/v1/ingestion/ingest/.*", Scope.INGEST),
        ("POST", r"/api/v1/repos", Scope.INGEST),
        ("POST", r"/api/v1/repos/[^/]+/sync", Scope.INGEST),
        ("POST", r"/api/v1/(search|context|impact)", Scope.READ),
        ("GET", r"/api/v1/accounts/me", None),  # any live key may ask who it is
        ("GET", r"/api/v1/usage", Scope.READ),
        ("*", r"/api/v1/(accounts|keys|billing)(/.*)?", Scope.ADMIN),
        ("GET", r"/api/v1/.*", Scope.READ),
    ))


def needed_scope(method: str, path: str) -> Scope | None:
    """The scope the route needs (None: any authenticated caller)."""
    for rule_method, pattern, scope in SCOPES:
        if rule_method in ("*", method) and pattern.fullmatch(path):
            return scope
    return Scope.ADMIN


@dataclass(frozen=True)
class Principal:
    """The caller: the owner (account_id None: every account) or one account's key."""
    account_id: int | None
    scopes: frozenset[Scope]
    key_id: int | None = None

    @property
    def owner(self) -> bool:
        return self.account_id is None

    def can(self, scope: Scope) -> bool:
        return scope in self.scopes

    def require(self, scope: Scope) -> None:
        if not self.can(scope):
            raise ApiError(403, "forbidden", f"this key lacks the {scope.value!r} scope")

    def require_owner(self) -> None:
        if not self.owner:
            raise ApiError(403, "forbidden", "only the admin token may do this")


OWNER = Principal(None, frozenset(Scope))


def principal(request: Request) -> Principal:
    """The caller the guard let in (the owner where no guard ran: in-process use)."""
    return getattr(request.state, "principal", OWNER)


def visible(request: Request) -> frozenset[str] | None:
    """The repository URLs the caller may see; None: all (the owner). Blocking (a
    read of the graph store): call it from a thread."""
    who = principal(request)
    if who.owner:
        return None
    return request.app.state.query.store.repos_of(who.account_id)


class Failures:
    """Recent authentication failures per client address, for slowing guessers."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, float]] = {}  # address -> (count, first at)

    def delay(self, address: str) -> float:
        """Record a failure; the seconds its answer should wait."""
        with self._lock:
            now = self.clock()
            count, first = self._seen.get(address, (0, now))
            if now - first > FAILURE_WINDOW:
                count, first = 0, now
            self._seen[address] = (count + 1, first)
            if len(self._seen) > 10_000:  # a flood of addresses: forget the oldest
                for stale in sorted(self._seen, key=lambda a: self._seen[a][1])[:5_000]:
                    del self._seen[stale]
        extra = count + 1 - FREE_FAILURES
        return 0.0 if extra <= 0 else min(MAX_DELAY, 0.125 * 2 ** (extra - 1))


class BearerAuth:
    """Pure ASGI middleware: a request under /api/ needs the admin token or a live API
    key with the route's scope (401 / 403); the webhooks carry signatures instead."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.failures = Failures()
        self._touched: dict[int, float] = {}

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/") \
                or scope["path"] in _OPEN:
            await self.app(scope, receive, send)
            return
        if await self.admit(scope, receive, send, needed_scope(scope["method"], scope["path"])):
            await self.app(scope, receive, send)

    async def admit(self, scope: AsgiScope, receive: Receive, send: Send,
                    needed: Scope | None) -> Principal | None:
        """The caller, put in the request's state, when it may do what needs `needed`;
        else None, the 401 or 403 answered (also what /mcp asks, cloud/mcp_server)."""
        try:
            who = await self.identify(scope)
        except Exception as exc:  # a key's store unreachable: the API's 503, as routes say
            await (await handle(Request(scope), exc))(scope, receive, send)
            return None
        if who is None:
            await self._refuse(scope, receive, send)
            return None
        if needed is not None and not who.can(needed):
            response = error_response(403, "forbidden",
                                      f"this key lacks the {needed.value!r} scope")
            await response(scope, receive, send)
            return None
        scope.setdefault("state", {})["principal"] = who
        return who

    async def identify(self, scope: AsgiScope) -> Principal | None:
        header = dict(scope["headers"]).get(b"authorization", b"")
        presented = _presented(header)
        if presented is None:
            return None
        token = scope["app"].state.settings.admin_token.encode()
        if token and hmac.compare_digest(presented, token):
            return OWNER
        text = presented.decode("utf-8", "replace")
        if not looks_like_key(text):
            return None
        store = scope["app"].state.query.store
        key = await run_in_threadpool(store.key_for, text)
        if key is None:
            return None
        await self._touch(store, key.id)
        return Principal(key.account_id, key.scopes, key.id)

    async def _touch(self, store, key_id: int) -> None:
        now = time.monotonic()
        if now - self._touched.get(key_id, float("-inf")) < TOUCH_SECONDS:
            return
        self._touched[key_id] = now
        try:
            await run_in_threadpool(store.touch_key, key_id)
        except Exception as exc:  # the request matters more than the record of it
            log.warning("last use of key %d not recorded: %s", key_id, exc)

    async def _refuse(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        client = (scope.get("client") or ("?", 0))[0]
        # never the presented token: it may be a real secret typed into the wrong place
        log.warning("401 %s %s from %s", scope["method"], redact_path(scope["path"]), client)
        wait = 0.0 if is_loopback_host(client) else self.failures.delay(client)
        if wait:
            await asyncio.sleep(wait)
        response = error_response(401, "unauthorized", UNAUTHORIZED,
                                  {"WWW-Authenticate": 'Bearer realm="neo-alexandria"'})
        await response(scope, receive, send)


def authorized(scope: AsgiScope) -> bool:
    """Whether the request carries the admin token (for routes open to all that tell
    the token's holder more)."""
    token = scope["app"].state.settings.admin_token.encode()
    presented = _presented(dict(scope["headers"]).get(b"authorization", b""))
    return bool(token) and presented is not None and hmac.compare_digest(presented, token)


def _presented(header: bytes) -> bytes | None:
    scheme, _, presented = header.partition(b" ")
    if scheme.lower() != b"bearer" or not presented.strip():
        return None
    return presented.strip()
