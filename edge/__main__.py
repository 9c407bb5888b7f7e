"""`python -m edge worker`: run the edge worker until SIGINT or SIGTERM."""
from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys

from edge.device import describe_device
from edge.pipeline import run_pipeline
from edge.worker import Pipeline, Worker
from shared.queue import open_queue
from shared.settings import Settings, SettingsError


def build_worker(settings: Settings, pipeline: Pipeline = run_pipeline,
                 stop_grace_seconds: float = 60.0) -> Worker:
    return Worker(
        open_queue(settings),
        pipeline,
        worker_id=settings.worker_id or socket.gethostname(),
        device=describe_device(),
        heartbeat_seconds=settings.heartbeat_seconds,
        idle_poll_seconds=settings.idle_poll_seconds,
        stop_grace_seconds=stop_grace_seconds,
    )


def serve(worker: Worker) -> None:
    """Run until a stop signal; the job in hand finishes or goes back to the queue."""
    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):  # SIGBREAK: Ctrl+Break on Windows
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda *_: worker.stop())
    try:
        worker.run()
    finally:
        worker.queue.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="take jobs from the queue and run them")
    parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    serve(build_worker(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
