"""A separate OS process that claims from a shared queue, for tests/test_repo_lock.py:
`python -m tests.lock_worker MODE SPEC_JSON`.

SPEC_JSON names the queue (backend, SQLite path or Redis/Upstash address, key prefix,
lease) and the worker id; `open_queue` builds it the same way in the test process.

- MODE `serve`: one JSON command a line on stdin, one JSON answer a line on stdout:
  {"op": "claim"} -> {"job": {"id", "repo_url", "attempts", "worker_id"} | null},
  {"op": "finish", "id", "state"} -> {"ok": bool}. A thread heartbeats every held job
  (as the product's worker does), so only SIGKILL, not time, ends a lease.
- MODE `run`: a worker loop doing tiny fake work until the stop file appears. Each job
  takes an O_EXCL lock file for its repository (creating it fails if another process
  holds it) and appends one JSON line, {"repo", "job", "worker", "start", "end",
  "overlap"} (time.monotonic, one clock for every process on the machine), to the
  intervals file.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

from shared.jobs import Job, JobState, WorkerStatus
from shared.queue import JobQueue, Lease
from shared.queue.keys import Keys


def open_queue(spec: dict) -> JobQueue:
    options = dict(max_queue_size=spec.get("cap", 200),
                   lease=Lease(seconds=spec["lease"], max_attempts=spec.get("max_attempts", 3)))
    backend = spec["backend"]
    if backend == "sqlite":
        from shared.queue.sqlite import SqliteQueue
        return SqliteQueue(spec["path"], **options)
    from shared.queue.redis import RedisQueue
    from shared.queue.transports import RedisProtocol, UpstashRest
    keys = Keys(prefix=spec["prefix"])
    if backend == "redis":
        return RedisQueue(RedisProtocol(spec["redis_url"]), keys=keys, **options)
    if backend == "upstash":
        return RedisQueue(UpstashRest(spec["upstash_url"], spec["token"], timeout=2.0),
                          keys=keys, **options)
    raise ValueError(backend)


def _public(job: Job | None) -> dict | None:
    if job is None:
        return None
    return {"id": job.id, "repo_url": job.repo_url, "attempts": job.attempts,
            "worker_id": job.worker_id}


def serve(spec: dict) -> None:
    queue = open_queue(spec)
    me = WorkerStatus(worker_id=spec["worker_id"])
    held: dict[str, Job] = {}
    guard = threading.Lock()

    def beat() -> None:
        while True:
            time.sleep(spec["lease"] / 4)
            with guard:
                jobs = list(held.values())
            for job in jobs:
                queue.heartbeat(me, job)

    threading.Thread(target=beat, daemon=True).start()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "claim":
            job = queue.claim(me)
            if job is not None:
                with guard:
                    held[job.id] = job
            answer = {"job": _public(job)}
        elif command["op"] == "finish":
            with guard:
                job = held.pop(command["id"])
            state = JobState(command["state"])
            error = "fake failure" if state is JobState.FAILED else ""
            answer = {"ok": queue.finish(job, state, me, error=error)}
        else:
            raise ValueError(command)
        print(json.dumps(answer), flush=True)


def _holder(lock: Path) -> str:
    """Who holds a lock file we found taken (it may be released while we look)."""
    try:
        return lock.read_text(errors="replace") or "a holder still writing its name"
    except FileNotFoundError:
        return "a holder that released it meanwhile"


def run(spec: dict) -> None:
    """Claim, lock the repository's file, work a few milliseconds, unlock, finish."""
    queue = open_queue(spec)
    me = WorkerStatus(worker_id=spec["worker_id"])
    locks, stop = Path(spec["lock_dir"]), Path(spec["stop_file"])
    rng = random.Random(spec["worker_id"])
    with open(spec["intervals"], "a") as out:
        while not stop.exists():
            job = queue.claim(me)
            if job is None:
                time.sleep(0.002)
                continue
            lock = locks / (hashlib.sha1(job.repo_url.encode()).hexdigest()[:16] + ".lock")
            start = time.monotonic()
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                overlap = ""
            except FileExistsError:
                fd, overlap = None, _holder(lock)
            if fd is not None:
                os.write(fd, f"{me.worker_id} {job.id}".encode())
                os.close(fd)
            time.sleep(rng.uniform(0.003, 0.02))
            if fd is not None:
                lock.unlink()
            end = time.monotonic()
            out.write(json.dumps({"repo": job.repo_url, "job": job.id, "worker": me.worker_id,
                                  "start": start, "end": end, "overlap": overlap}) + "\n")
            out.flush()
            failed = rng.random() < 0.2  # the lock ends with a failure as with a success
            queue.finish(job, JobState.FAILED if failed else JobState.COMPLETE, me,
                         error="fake failure" if failed else "")
    queue.close()


if __name__ == "__main__":
    mode, spec_json = sys.argv[1], sys.argv[2]
    {"serve": serve, "run": run}[mode](json.loads(spec_json))
