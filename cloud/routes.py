"""Endpoints of the control plane. The queue calls block, so the handlers are
plain functions that Starlette runs on its thread pool."""
from __future__ import annotations

import inspect
import threading
import time
from dataclasses import replace
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Route

from cloud import accounts, billing, query_routes as query
from cloud import repos, webhooks
from cloud.auth import WEBHOOKS, authorized, visible
from cloud.errors import ApiError
from cloud.openapi import openapi_spec
from shared.jobs import WorkerState
from shared.queue import JobQueue, Overview, QueueError
from shared.queue.base import DEAD_LIMIT, HISTORY_LIMIT
from cloud.ingest import ingest as submit
from cloud.limits import tenant_of
from shared.repo_url import split_index_key
from shared.settings import Settings

PREFIX = "/api/v1/ingestion"
QUERY = "/api/v1"


class AnyTextConvertor(PathConvertor):
    """Like `path`, but also matches a decoded newline or other control character,
    so a malformed URL reaches the validator and gets a 400 that says why."""

    regex = r"[\s\S]*"


register_url_convertor("anytext", AnyTextConvertor())
STATIC = Path(__file__).parent / "static"


class OverviewCache:
    """Open status pages share one backend read a second: on Upstash each is billed."""

    def __init__(self, ttl: float = 1.0):
        self.ttl = ttl
        self._lock = threading.Lock()
        self._view: Overview | None = None
        self._read_at = float("-inf")

    def get(self, queue: JobQueue) -> Overview:
        """The shared read, its `now` moved on by the time it has been kept."""
        with self._lock:
            if time.monotonic() - self._read_at >= self.ttl:
                self._view = queue.overview(history_limit=10, dead_limit=10)
                self._read_at = time.monotonic()
            return replace(self._view, now=self._view.now + time.monotonic() - self._read_at)


def _queue(request: Request) -> JobQueue:
    return request.app.state.queue


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _only(request: Request, *names: str) -> None:
    """Refuse query parameters the route does not take: a misspelt `limt` is an error,
    not silently the default."""
    unknown = sorted({key for key in request.query_params.keys() if key not in names})
    if unknown:
        takes = f"it takes {', '.join(names)}" if names else "it takes none"
        raise ApiError(400, "bad_request",
                       f"unknown query parameter {unknown[0][:40]!r}; {takes}")


def _limit(request: Request, default: int, maximum: int) -> int:
    _only(request, "limit")
    raw = request.query_params.get("limit", str(default))
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"limit must be an integer, got {raw[:20]!r}") from None
    if not 1 <= limit <= maximum:
        raise ApiError(400, "bad_request", f"limit must be between 1 and {maximum}")
    return limit


def ingest(request: Request) -> JSONResponse:
    raw = request.path_params["repo_url"]
    if request.url.query:  # a query string is part of what was submitted
        raw = f"{raw}?{request.url.query}"
    return JSONResponse(submit(_queue(request), _settings(request), raw,
                               store=_registry(request), tenant=tenant_of(request)))


def _registry(request: Request):
    """The graph store, for the registry; None when it cannot be opened: an ingest is
    queued whether or not its repository can be registered."""
    try:
        return request.app.state.query.store
    except Exception:  # logged by the query service; the queue is what matters here
        return None


def _mine(request: Request):
    """Whether a job's repository (its index key) is the caller's to see."""
    seen = visible(request)
    return lambda key: seen is None or split_index_key(key or "")[0] in seen


def _workers(request: Request, workers, now: float) -> list[dict]:
    """The workers as the caller may see them: another account's job is only 'busy'."""
    mine = _mine(request)
    shown = []
    for worker in workers:
        data = worker.public(now)
        if data["repo_url"] and not mine(data["repo_url"]):
            data.update(repo_url="", job_id="", stage="", error="", progress=0.0,
                        status="Busy" if data["state"] == WorkerState.RUNNING.value
                        else "Error" if data["state"] == WorkerState.ERROR.value
                        else data["status"])
        shown.append(data)
    return shown


def worker_status(request: Request) -> JSONResponse:
    _only(request)
    view = _queue(request).overview(history_limit=0, dead_limit=0)
    workers = _workers(request, view.workers, view.now)
    return JSONResponse({"status": overall_status(workers), "workers": workers})


def overall_status(workers: list[dict]) -> str:
    """One string for clients of the original single-worker API: a busy worker
    first, then a failing one, then an idle one; Offline when none is alive."""
    for state in (WorkerState.RUNNING, WorkerState.ERROR, WorkerState.IDLE):
        for worker in workers:
            if worker["state"] == state.value:
                return worker["status"]
    return "Offline"


def history(request: Request) -> JSONResponse:
    limit = _limit(request, 10, HISTORY_LIMIT)
    mine = _mine(request)
    # an account's jobs are among everyone's: read them all, keep its own
    jobs = _queue(request).history(limit if visible(request) is None else HISTORY_LIMIT)
    return JSONResponse({"jobs": [j for j in jobs if mine(j.get("repo_url"))][:limit]})


def dead_jobs(request: Request) -> JSONResponse:
    limit = _limit(request, 10, DEAD_LIMIT)
    mine = _mine(request)
    dead = _queue(request).overview(history_limit=0, dead_limit=DEAD_LIMIT).dead
    return JSONResponse({"jobs": [job.public() for job in dead if mine(job.repo_url)][:limit]})


def job_detail(request: Request) -> JSONResponse:
    _only(request)
    job_id = request.path_params["job_id"]
    job = _queue(request).get_job(job_id) if job_id.isalnum() and len(job_id) <= 64 else None
    if job is None or not _mine(request)(job.repo_url):
        raise ApiError(404, "not_found", f"no job with id {job_id[:64]!r}")
    return JSONResponse(job.public())


def overview(request: Request) -> JSONResponse:
    """Everything the status page shows, in one backend call (Upstash bills each)."""
    _only(request)
    queue = _queue(request)
    view = request.app.state.overview_cache.get(queue)
    now = view.now  # the queue's clock: heartbeats were stamped by it
    workers = _workers(request, view.workers, now)
    mine = _mine(request)
    return JSONResponse({
        "status": overall_status(workers),
        "workers": workers,
        "queue": {"size": view.pending, "running": view.running, "max": queue.max_queue_size,
                  "backend": queue.backend},
        "jobs": [job for job in view.history if mine(job.get("repo_url"))],
        "dead": [job.public() for job in view.dead if mine(job.repo_url)],
        "time": now,
    })


def health(request: Request) -> JSONResponse:
    """Liveness (always 200 while the process serves) plus each backend's reachability
    and whether search can embed queries. Why a backend is down (its error names hosts
    and ports) only for the token's holder: /health is open to anyone."""
    queue = _queue(request)
    started = time.perf_counter()
    try:
        queue.ping()
        backend = {"ok": True, "backend": queue.backend}
    except QueueError as exc:
        backend = {"ok": False, "backend": queue.backend}
        if authorized(request.scope):
            backend["detail"] = str(exc)[:200]
    backend["latency_ms"] = round(1000 * (time.perf_counter() - started), 2)
    encoder = request.app.state.query.encoder_status()
    if not authorized(request.scope):
        encoder.pop("detail", None)
    ok = backend["ok"] and encoder["ok"]
    return JSONResponse({"status": "ok" if ok else "degraded",
                         "backends": {"queue": backend, "query_encoder": encoder}})


def openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi_spec())


def index(request: Request) -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def by_method(**endpoints):
    """One route for a path that several endpoints serve, one per method: a 405 then
    lists every method the path takes in its Allow header."""
    async def endpoint(request: Request):
        chosen = endpoints["GET" if request.method == "HEAD" else request.method]
        if inspect.iscoroutinefunction(chosen):
            return await chosen(request)
        return await run_in_threadpool(chosen, request)
    return endpoint


ROUTES = [
    Route("/", index, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route(f"{PREFIX}/ingest/{{repo_url:anytext}}", ingest, methods=["POST"]),
    Route(f"{PREFIX}/worker/status", worker_status, methods=["GET"]),
    Route(f"{PREFIX}/overview", overview, methods=["GET"]),
    Route(f"{PREFIX}/jobs/history", history, methods=["GET"]),
    Route(f"{PREFIX}/jobs/dead", dead_jobs, methods=["GET"]),
    Route(f"{PREFIX}/jobs/{{job_id}}", job_detail, methods=["GET"]),
    Route(f"{QUERY}/search", query.search, methods=["POST"]),
    Route(f"{QUERY}/context", query.context, methods=["POST"]),
    Route(f"{QUERY}/impact", query.impact, methods=["POST"]),
    Route(f"{QUERY}/repos", by_method(GET=query.repos, POST=repos.register),
          methods=["GET", "POST"]),
    Route(f"{QUERY}/repos/{{repo_id}}",
          by_method(GET=repos.read, PATCH=repos.change, DELETE=repos.delete),
          methods=["GET", "PATCH", "DELETE"]),
    Route(f"{QUERY}/repos/{{repo_id}}/sync", repos.sync, methods=["POST"]),
    Route(WEBHOOKS["github"], webhooks.github, methods=["POST"]),
    Route(WEBHOOKS["gitlab"], webhooks.gitlab, methods=["POST"]),
    Route(f"{QUERY}/graph/dependencies", query.dependencies, methods=["GET"]),
    Route(f"{QUERY}/graph/dependents", query.dependents, methods=["GET"]),
    Route(f"{QUERY}/graph/path", query.path, methods=["GET"]),
    Route(f"{QUERY}/graph/hotspots", query.hot_spots, methods=["GET"]),
    Route(f"{QUERY}/graph/cycles", query.cycles, methods=["GET"]),
    Route(f"{QUERY}/graph/snapshot", query.snapshot, methods=["GET"]),
    Route(f"{QUERY}/graph/symbols", query.symbols, methods=["GET"]),
    Route(f"{QUERY}/accounts", by_method(GET=accounts.list_accounts,
                                         POST=accounts.create_account),
          methods=["GET", "POST"]),
    Route(f"{QUERY}/accounts/me", accounts.me, methods=["GET"]),
    # an integer id: /accounts/me is another route, whose other methods are a 405
    Route(f"{QUERY}/accounts/{{account_id:int}}",
          by_method(PATCH=accounts.change_account, DELETE=accounts.delete_account),
          methods=["PATCH", "DELETE"]),
    Route(f"{QUERY}/accounts/{{account_id}}/keys",
          by_method(GET=accounts.list_keys, POST=accounts.create_key), methods=["GET", "POST"]),
    Route(f"{QUERY}/keys/{{key_id}}", accounts.revoke_key, methods=["DELETE"]),
    Route(f"{QUERY}/usage", accounts.usage, methods=["GET"]),
    Route(f"{QUERY}/billing/checkout", billing.checkout, methods=["POST"]),
    Route(f"{QUERY}/billing/portal", billing.portal, methods=["POST"]),
    Route(WEBHOOKS["stripe"], billing.stripe_webhook, methods=["POST"]),
]
