"""The control plane's ASGI app: `cloud.app:app`, or `create_app(...)` in tests."""
from __future__ import annotations

import contextlib
import logging
import sys

from starlette.applications import Starlette
from starlette.middleware import Middleware

from cloud.auth import BearerAuth
from cloud.errors import EXCEPTION_HANDLERS
from cloud.routes import ROUTES, OverviewCache
from shared.queue import JobQueue, open_queue
from shared.settings import Settings

log = logging.getLogger("cloud")


def create_app(settings: Settings | None = None, queue: JobQueue | None = None) -> Starlette:
    """Settings default to the environment, read once at startup; the queue to
    the backend they name. A queue passed in is the caller's to close."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        app.state.settings = startup_settings(settings)
        app.state.queue = queue or open_queue(app.state.settings)
        app.state.overview_cache = OverviewCache()
        log.info("control plane ready (queue: %s, cap %d, ttl %d s)", app.state.queue.backend,
                 app.state.settings.max_queue_size, app.state.settings.task_ttl)
        try:
            yield
        finally:
            if queue is None:
                app.state.queue.close()

    return Starlette(routes=ROUTES, middleware=[Middleware(BearerAuth)],
                     exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)


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
