"""The product's worker with two test hooks, for the fault rigs (tests/faults.py,
bench/faults/): `python -m tests.fault_worker` with
- KILL_AT=<stage>: SIGKILL itself the moment a job's pipeline enters that stage, as a
  power cut or the OOM killer would;
- INTERVALS=<file>: append one JSON line per job run, {"job", "worker", "start", "end"}
  (epoch seconds), to check that no job ever ran on two workers at once."""
from __future__ import annotations

import json
import logging
import os
import signal
import time

from edge.__main__ import build_worker, serve
from edge.pipeline import IngestPipeline
from shared.settings import Settings


def hooked(pipeline: IngestPipeline, kill_at: str, intervals: str, worker_id: str):
    def run(job, report):
        def checked(name: str, progress: float) -> None:
            if name.split(" ", 1)[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            report(name, progress)

        start = time.time()
        try:
            return pipeline(job, checked)
        finally:
            if intervals:
                with open(intervals, "a") as out:  # one short line: appends do not interleave
                    out.write(json.dumps({"job": job.id, "worker": worker_id, "start": start,
                                          "end": time.time()}) + "\n")
    return run


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    settings = Settings.from_env()
    pipeline = hooked(IngestPipeline(settings), os.environ.get("KILL_AT", ""),
                      os.environ.get("INTERVALS", ""), settings.worker_id)
    serve(build_worker(settings, pipeline))
