"""`python run.py` (what `make run` starts): run what MODE names.

    MODE=ALL    the control plane and one worker in this one process, the worker on a
                thread: Qdrant's local mode and a SQLite writer belong to one process
    MODE=CLOUD  the control plane only (Render runs it as `python -m cloud`)
    MODE=EDGE   one worker only (the services run it as `python -m edge worker`)

This module is the one place that imports both halves; `cloud/` and `edge/` never
import each other, and MODE=CLOUD imports nothing of the worker (nor torch).
"""
from __future__ import annotations

import logging
import sys
import threading
import time

log = logging.getLogger("neo-alexandria")

# Ctrl-C gives a running job this long to finish before it goes back to the queue
# (a second Ctrl-C gives it back at once); the next start picks it up again.
STOP_GRACE_SECONDS = 10.0
# uvicorn lets in-flight requests finish for this long after SIGINT/SIGTERM.
DRAIN_SECONDS = 30


def main() -> int:
    from shared.settings import Mode, Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if settings.mode is Mode.CLOUD:
        from cloud.__main__ import main as cloud_main
        return cloud_main(settings)
    if settings.mode is Mode.EDGE:
        from edge.__main__ import main as edge_main
        return edge_main(["worker"])
    try:
        return run_all(settings)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


def run_all(settings) -> int:
    """The control plane on HOST:PORT and one worker, until Ctrl-C or SIGTERM."""
    import uvicorn

    from cloud.__main__ import configure_logging
    from cloud.app import create_app
    from edge.__main__ import build_worker, close_worker, keep_caches_in, stop_on_signals

    generated = not settings.admin_token
    settings = settings.with_generated_token()
    configure_logging(settings)
    keep_caches_in(settings.data_dir)
    worker = build_worker(settings, stop_grace_seconds=STOP_GRACE_SECONDS)
    server = uvicorn.Server(uvicorn.Config(
        create_app(settings, query=shared_query(settings, worker.pipeline)), host=settings.host,
        port=settings.port, log_config=None, timeout_graceful_shutdown=DRAIN_SECONDS))
    # uvicorn holds the signals while it serves and hands them back to these handlers
    # once it has drained; the worker stops after the server, so no request finds it gone
    stop_on_signals(worker)
    worker_thread = threading.Thread(target=worker.run, name="worker")
    worker_thread.start()
    threading.Thread(target=_announce, args=(server, settings, generated, worker),
                     name="announce", daemon=True).start()
    try:
        server.run()
    finally:
        worker.stop()
        worker_thread.join()
        close_worker(worker)
    return 0 if server.started else 1


def shared_query(settings, pipeline):
    """The query layer on the worker's own stores: Qdrant's local mode and SQLite
    belong to one client in one process."""
    from cloud.query import QueryService
    from shared.query_encoder import QueryEncoder, default_model_dir

    return QueryService(lambda: pipeline.store, lambda: pipeline.vectors,
                        lambda: QueryEncoder(default_model_dir()),
                        allow_local=settings.allow_local_repos, owns_stores=False,
                        open_mirror=lambda: pipeline.mirror)


def _announce(server, settings, generated: bool, worker) -> None:
    """Once the port is bound: where to go, the token, and a request to paste."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    base = f"http://{host}:{settings.port}"
    token = settings.admin_token if generated else "$PHAROS_ADMIN_TOKEN"
    lines = [
        "",
        f"Neo Alexandria is running: control plane and one worker on {worker.status.device}",
        f"  status page  {base}/",
        f"  admin token  {token}" + ("   (generated for this run)" if generated
                                     else "   (from PHAROS_ADMIN_TOKEN)"),
        "  try it:",
        f"    curl -X POST -H \"Authorization: Bearer {token}\" "
        f"{base}/api/v1/ingestion/ingest/github.com/psf/requests",
        "  Ctrl-C stops everything.",
        "",
    ]
    # the terminal is the one place a generated token is shown; it is never logged
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
