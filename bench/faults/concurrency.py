"""Three workers on one Redis queue, 200 jobs: no job runs on two workers at once, and
every job ends exactly once.

200 small generated repositories (tests/faults.make_repository) are queued at once; three
real worker processes (`python -m tests.fault_worker`: the product's worker and pipeline,
recording each job run's interval) take them from one redis-server. Stores: the graph in
one SQLite file all three share, vectors in the Qdrant REST stand-in. Checked: each job ran
exactly once (one interval, on one worker), its record is `complete` with one attempt, the
capped history (the newest 100) holds no job twice, and per repository the vectors hold
one point per chunk. Results: bench/results/faults-concurrency.json.

    .venv/bin/python bench/faults/concurrency.py [--jobs 200] [--workers 3]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shared.graph.store import open_graph_store  # noqa: E402
from shared.jobs import JobState  # noqa: E402
from shared.queue import open_queue  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.vectors import CHUNK_COLLECTION, open_vector_store  # noqa: E402
from tests.embedding_server import QdrantRestServer  # noqa: E402
from tests.faults import make_repository  # noqa: E402
from tests.servers import RedisServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="na-concurrency-"))
    repos = [make_repository(scratch / f"repo{i}", files=3).as_uri() for i in range(args.jobs)]
    server = RedisServer()
    qdrant = QdrantRestServer()
    settings = Settings(data_dir=scratch / "data", redis_url=server.url, qdrant_url=qdrant.url,
                        allow_local_repos=True, max_queue_size=args.jobs)
    queue = open_queue(settings)
    intervals = scratch / "intervals.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("UPSTASH_REDIS_REST_URL",
                                                            "DATABASE_URL")}
    env.update(MODE="EDGE", REDIS_URL=server.url, QDRANT_URL=qdrant.url, DATA_DIR=str(
        settings.data_dir), ALLOW_LOCAL_REPOS="true", DEVICE="cpu", PYTHONPATH=str(ROOT),
        INTERVALS=str(intervals), HEARTBEAT_SECONDS="1")
    workers = [subprocess.Popen([sys.executable, "-m", "tests.fault_worker"], cwd=ROOT,
                                env={**env, "WORKER_ID": f"w{i}"}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for i in range(args.workers)]
    started = time.time()
    try:
        ids = [queue.enqueue(url).job.id for url in repos]
        while True:
            states = Counter(queue.get_job(i).state for i in ids)
            if states[JobState.QUEUED] + states[JobState.RUNNING] == 0:
                break
            if time.time() - started > 3600:
                sys.exit(f"timed out: {states}")
            time.sleep(2)
        seconds = time.time() - started
        jobs = {i: queue.get_job(i) for i in ids}
        history = queue.history(100)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(120)
    runs = [json.loads(line) for line in intervals.read_text().splitlines()]
    by_job = defaultdict(list)
    for run in runs:
        by_job[run["job"]].append(run)
    overlapping = sum(1 for spans in by_job.values() for a in spans for b in spans
                      if a is not b and a["worker"] != b["worker"]
                      and a["start"] < b["end"] and b["start"] < a["end"]) // 2
    store, vectors = open_graph_store(settings), open_vector_store(settings)
    try:
        vector_mismatch = 0
        for url in repos:
            snapshot = store.latest_snapshot(url, ready_only=True)
            expected = snapshot.stats["text"]["documents"] if snapshot else -1
            vector_mismatch += vectors.count(url, CHUNK_COLLECTION) != expected
    finally:
        store.close()
        vectors.close()
        queue.close()
        qdrant.stop()
        server.stop()
    report = {
        "date": time.strftime("%Y-%m-%d"), "jobs": args.jobs, "workers": args.workers,
        "seconds": round(seconds, 1),
        "complete": sum(j.state is JobState.COMPLETE for j in jobs.values()),
        "runs": len(runs), "jobs_run_more_than_once": sum(len(v) > 1 for v in by_job.values()),
        "jobs_never_run": sum(1 for i in ids if i not in by_job),
        "overlapping_runs_of_one_job": overlapping,
        "attempts_above_one": sum(j.attempts > 1 for j in jobs.values()),
        "history_duplicates": len(history) - len({r["job_id"] for r in history}),
        "repos_with_vector_mismatch": vector_mismatch,
        "runs_per_worker": dict(Counter(r["worker"] for r in runs)),
    }
    (ROOT / "bench" / "results" / "faults-concurrency.json").write_text(
        json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
