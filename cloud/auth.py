"""Bearer-token guard for every /api/ route (status and history name private repos)."""
from __future__ import annotations

import hmac
import logging
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from cloud.errors import error_response
from shared.secrets import Scrubber

log = logging.getLogger("cloud.auth")

def redact_path(path: str) -> str:
    """A submitted URL may carry credentials (it is rejected, but only later), and a
    client may have percent-encoded them, so decode before redacting."""
    return Scrubber()(unquote(path))[:200]


# Webhooks authenticate by their signature (cloud/webhooks.py), not the admin token.
WEBHOOKS = {"github": "/api/v1/webhooks/github", "gitlab": "/api/v1/webhooks/gitlab"}
_OPEN = frozenset(WEBHOOKS.values())


class BearerAuth:
    """Pure ASGI middleware: a request under /api/ without the admin token gets 401
    (the webhooks excepted: they carry signatures)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/") \
                or scope["path"] in _OPEN:
            await self.app(scope, receive, send)
            return
        # read per request: the app's settings (and a generated token) arrive at startup
        token = scope["app"].state.settings.admin_token.encode()
        problem = _problem(dict(scope["headers"]).get(b"authorization", b""), token)
        if problem is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("?", 0)
        # never the presented token: it may be a real secret typed into the wrong place
        log.warning("401 %s %s from %s: %s", scope["method"], redact_path(scope["path"]),
                    client[0], problem)
        response = error_response(401, "unauthorized", problem,
                                  {"WWW-Authenticate": 'Bearer realm="neo-alexandria"'})
        await response(scope, receive, send)


def authorized(scope: Scope) -> bool:
    """Whether the request carries the admin token (for routes open to all that tell
    the token's holder more)."""
    token = scope["app"].state.settings.admin_token.encode()
    return _problem(dict(scope["headers"]).get(b"authorization", b""), token) is None


def _problem(header: bytes, token: bytes) -> str | None:
    scheme, _, presented = header.partition(b" ")
    if not header:
        return "missing Authorization header; send 'Authorization: Bearer <token>'"
    if scheme.lower() != b"bearer" or not presented.strip():
        return "Authorization header must be 'Bearer <token>'"
    if not token or not hmac.compare_digest(presented.strip(), token):
        return "invalid token"
    return None
