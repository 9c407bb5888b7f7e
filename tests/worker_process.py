"""A real worker process for the crash and shutdown tests: `python -m tests.worker_process`.

It is the product's worker (settings from the environment, signal handling,
queue) with a slow pipeline that leaves a marker file when a job starts, so a
test can kill it mid-job (and one when a job given back stops). Extra environment:
MARKER_DIR, JOB_SECONDS, STOP_GRACE.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from edge.__main__ import build_worker, serve
from edge.worker import Cancelled
from shared.jobs import JobResult
from shared.settings import Settings


def slow_pipeline(job, report) -> JobResult:
    marker_dir = Path(os.environ["MARKER_DIR"])
    seconds = float(os.environ.get("JOB_SECONDS", "3"))
    worker_id = os.environ.get("WORKER_ID", "worker")
    (marker_dir / f"{job.id}.{worker_id}.started").touch()
    steps = 20
    try:
        for step in range(steps):
            report("graph", 100.0 * step / steps)
            time.sleep(seconds / steps)
    except Cancelled:  # given back: what a pipeline's own clean-up would do
        (marker_dir / f"{job.id}.{worker_id}.cancelled").touch()
        raise
    (marker_dir / f"{job.id}.{worker_id}.done").touch()
    return JobResult(files_processed=7, embeddings_generated=7)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    grace = float(os.environ.get("STOP_GRACE", "60"))
    serve(build_worker(Settings.from_env(), slow_pipeline, stop_grace_seconds=grace))
