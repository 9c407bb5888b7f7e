"""The query API: thin adapters from HTTP to cloud.query.QueryService.

POST routes read a JSON body, GET routes a query string; both hand it to the
service as it came, with the repositories the caller may see (cloud.auth.visible),
and return its answer as JSON. Validation, evidence and
caching live in the service, so the page and MCP tools get the same answers.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from cloud.auth import visible
from cloud.errors import ApiError
from cloud.query import QueryService

MAX_BODY = 64 * 1024  # the longest valid request (a 4,000-character task, 200 paths) fits


def _service(request: Request) -> QueryService:
    return request.app.state.query


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(413, "too_large", f"the body is {len(raw)} bytes; at most {MAX_BODY}")
    try:
        return json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ApiError(400, "bad_request", f"the body is not valid JSON: {exc}"[:200]) from None


def _posted(question: Callable[..., dict]):
    async def endpoint(request: Request) -> JSONResponse:
        body = await _body(request)
        answer = await run_in_threadpool(
            lambda: question(_service(request), body, visible=visible(request)))
        return JSONResponse(answer)
    return endpoint


def _asked(question: Callable[..., dict]):
    def endpoint(request: Request) -> JSONResponse:
        params = dict(request.query_params)
        if len(request.query_params.multi_items()) != len(params):
            raise ApiError(400, "bad_request", "a parameter is given twice")
        return JSONResponse(question(_service(request), params, visible=visible(request)))
    return endpoint


search = _posted(QueryService.search)
context = _posted(QueryService.context)
impact = _posted(QueryService.impact)
dependencies = _asked(QueryService.dependencies)
dependents = _asked(QueryService.dependents)
path = _asked(QueryService.path)
hot_spots = _asked(QueryService.hot_spots)
cycles = _asked(QueryService.cycles)
snapshot = _asked(QueryService.snapshot)
symbols = _asked(QueryService.symbols)


def repos(request: Request) -> JSONResponse:
    return JSONResponse(_service(request).repos(visible(request)))
