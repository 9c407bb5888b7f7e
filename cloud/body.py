"""The readers of request bodies: JSON objects (registry, accounts, billing) and the raw
bytes a signature is computed over (webhooks)."""
from __future__ import annotations

import json

from starlette.requests import Request

from cloud.errors import ApiError


async def json_object(request: Request, allowed: set[str], max_bytes: int) -> dict:
    """The body as a JSON object with only `allowed` fields (absent: `{}`); 413 past
    `max_bytes`, 400 otherwise, saying what is wrong."""
    raw = await request.body()
    if len(raw) > max_bytes:
        raise ApiError(413, "too_large", f"the body is {len(raw)} bytes; at most {max_bytes}")
    try:
        body = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ApiError(400, "bad_request", f"the body is not valid JSON: {exc}"[:200]) from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, "bad_request", f"unknown field {unknown[0][:40]!r}; it takes "
                                           f"{', '.join(sorted(allowed))}")
    return body


async def bounded_bytes(request: Request, max_bytes: int, what: str) -> bytes:
    """The raw body, refused with 413 as soon as it passes `max_bytes` (declared or
    streamed), before any of it is parsed: an unsigned flood costs little."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "too_large", f"{what} is at most {max_bytes} bytes")
    body = b""
    async for part in request.stream():
        body += part
        if len(body) > max_bytes:
            raise ApiError(413, "too_large", f"{what} is at most {max_bytes} bytes")
    return body
