"""The control plane's ASGI app: `cloud.app:app`, or `create_app(...)` in tests."""
from __future__ import annotations

import contextlib
import logging
import sys

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from cloud.auth import BearerAuth
from cloud.limits import Metering, PlanLimits
from cloud.errors import EXCEPTION_HANDLERS
from cloud.mcp_server.backends import LocalBackend
from cloud.mcp_server.http import PATH as MCP_PATH
from cloud.mcp_server.http import McpEndpoint
from cloud.query import QueryService, tokens
from cloud.routes import ROUTES, OverviewCache
from shared.jobs import WorkerState
from shared.limits import Limiter
from shared.plans import load_plans
from shared.queue import JobQueue, QueueError, open_queue
from shared.queue.base import HISTORY_LIMIT
from shared.settings import Settings

log = logging.getLogger("cloud")


def create_app(settings: Settings | None = None, queue: JobQueue | None = None,
               query: QueryService | None = None) -> Starlette:
    """Settings default to the environment, read once at startup; the queue and the
    query layer's stores to the backends they name. A queue or query service passed
    in is the caller's to close (the all-in-one run shares the worker's stores).
    /mcp serves the query layer as MCP tools, behind the same token as /api/."""
    mcp = McpEndpoint()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        tokens.load()  # first: the slowest step, and before a generated token is shown
        app.state.settings = startup_settings(settings)
        app.state.queue = queue or open_queue(app.state.settings)
        app.state.overview_cache = OverviewCache()
        app.state.query = query or QueryService.from_settings(app.state.settings)
        app.state.query.watch_jobs(*job_readers(app.state.queue, app.state.overview_cache))
        app.state.plans = load_plans(app.state.settings.plans_json)
        app.state.limits = PlanLimits(Limiter.for_queue(app.state.queue), app.state.plans)
        log.info("control plane ready (queue: %s, cap %d, ttl %d s)", app.state.queue.backend,
                 app.state.settings.max_queue_size, app.state.settings.task_ttl)
        try:
            async with mcp.serving(app.state.settings, LocalBackend(
                    app.state.query, app.state.queue, app.state.settings,
                    limits=app.state.limits)):
                yield
        finally:
            app.state.limits.limiter.close()
            if query is None:
                app.state.query.close()
            if queue is None:
                app.state.queue.close()

    return Starlette(routes=[*ROUTES, Route(MCP_PATH, mcp)],
                     middleware=[Middleware(BearerAuth), Middleware(Metering)],
                     exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)


def job_readers(queue: JobQueue, cache: OverviewCache):
    """What the query layer reads of the queue: the repositories being ingested now
    (from the status page's one-second cache: on Upstash every read is billed) and,
    for the repository list's last job, the jobs waiting per repository and the recent
    history (one overview read: one command on Upstash)."""
    def busy_repos() -> dict[str, str]:
        """repository -> the id of the job a worker is running for it."""
        try:
            view = cache.get(queue)
        except QueueError:
            return {}  # answers lose their 'indexing' hint, not their content
        # a worker whose heartbeat stopped is not ingesting anything
        return {w.repo_url: w.job_id for w in view.workers
                if w.repo_url and w.public(view.now)["state"] == WorkerState.RUNNING.value}

    def job_records() -> tuple[dict[str, str], list[dict]]:
        """(repository -> its queued job's id, the history newest first)."""
        try:
            view = queue.overview(history_limit=HISTORY_LIMIT, dead_limit=0)
        except QueueError:
            return {}, []
        return view.queued, view.history
    return busy_repos, job_records


def startup_settings(given: Settings | None) -> Settings:
    settings = given or Settings.from_env()
    if settings.admin_token:
        return settings
    settings = settings.with_generated_token()
    # the operator needs it to log in; printed to the terminal, never logged
    print(f"PHAROS_ADMIN_TOKEN was not set; generated admin token for this run: "
          f"{settings.admin_token}", file=sys.stderr, flush=True)
    return settings


app = create_app()
