"""The one place that turns errors into HTTP responses: `{"error": code, "detail": message}`."""
from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from cloud.query import QueryError
from shared.graph.store import GraphStoreError
from shared.queue import QueueError, QueueFull, QueueUnavailable
from shared.repo_url import InvalidRepoUrl
from shared.vectors import VectorStoreError

log = logging.getLogger("cloud.errors")

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "too_large",
               421: "misdirected_request", 429: "queue_full", 503: "unavailable"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


def error_response(status: int, code: str, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


async def handle(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.detail, exc.headers)
    if isinstance(exc, InvalidRepoUrl):
        return error_response(400, "invalid_repo_url", str(exc))
    if isinstance(exc, QueryError):
        retry = {"Retry-After": "30"} if exc.status == 503 else None
        return error_response(exc.status, exc.code, exc.detail, retry)
    if isinstance(exc, (GraphStoreError, VectorStoreError)):
        which = "graph_store" if isinstance(exc, GraphStoreError) else "vector_store"
        log.error("%s unavailable: %s", which, exc)
        return error_response(503, f"{which}_unavailable",
                              f"the {which.replace('_', ' ')} is unreachable; try again shortly",
                              {"Retry-After": "5"})
    if isinstance(exc, QueueFull):
        return error_response(429, "queue_full", str(exc), {"Retry-After": "60"})
    if isinstance(exc, QueueUnavailable):
        log.error("queue unavailable: %s", exc)
        return error_response(503, "queue_unavailable", "the job queue is unreachable; try again shortly",
                              {"Retry-After": "5"})
    if isinstance(exc, HTTPException):
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), exc.headers)
    if isinstance(exc, QueueError):
        log.error("queue error: %s", exc)
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


# Exception itself goes to Starlette's outermost (500) middleware; the rest are
# answered inside, where the response still passes through the middleware stack.
EXCEPTION_HANDLERS = {ApiError: handle, InvalidRepoUrl: handle, QueueError: handle,
                      QueryError: handle, GraphStoreError: handle, VectorStoreError: handle,
                      HTTPException: handle, Exception: handle}
