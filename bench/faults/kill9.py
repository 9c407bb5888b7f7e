"""kill -9 of the worker at every stage of a real job, on every queue backend, many times.

For each (backend, stage) pair, RUNS times: a fresh small repository is ingested by a
real worker process (`python -m tests.fault_worker`, the product's worker and pipeline)
that SIGKILLs itself the moment the job enters the stage; after the lease (2 s) runs
out the job runs again, and the rig (tests/faults.py) checks: the job ended exactly once
in history, complete, on attempt 2; queries never answered from a snapshot whose
vectors were missing; each collection holds one point per file and per chunk.

Servers: a real redis-server (tests/servers.py), the Upstash REST stand-in in front of
it, and the Qdrant REST stand-in (Qdrant's engine behind its HTTP API); the graph in a
SQLite file. Results: bench/results/faults-kill9.json (or --out) and a table on stdout.

    .venv/bin/python bench/faults/kill9.py [--runs 20] [--stages parse,store] [--backends redis]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from edge.embed.minilm import MiniLMEncoder  # noqa: E402
from edge.pipeline import IngestPipeline  # noqa: E402
from tests.embedding_server import QdrantRestServer  # noqa: E402
from tests.faults import KILL_STAGES, KillRig  # noqa: E402
from tests.servers import RedisServer, UpstashRestServer  # noqa: E402

BACKENDS = ("sqlite", "redis", "upstash")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--stages", default=",".join(KILL_STAGES))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--out", default="faults-kill9.json",
                        help="file name under bench/results/")
    args = parser.parse_args()
    stages, backends = args.stages.split(","), args.backends.split(",")
    encoder = MiniLMEncoder(device="cpu")
    server = RedisServer()
    upstash = UpstashRestServer(server.url)
    rows, failures = [], []
    started = time.time()
    try:
        for backend in backends:
            for stage in stages:
                outcomes = []
                for _ in range(args.runs):
                    redis.Redis.from_url(server.url).flushall()
                    with tempfile.TemporaryDirectory() as scratch, QdrantRestServer() as qdrant:
                        rig = KillRig(Path(scratch), backend, qdrant_url=qdrant.url,
                                      redis_url=server.url, upstash=upstash)
                        rig.pipeline = IngestPipeline(rig.settings, encoder=encoder)
                        try:
                            outcomes.append(rig.kill_at(stage))
                        finally:
                            rig.pipeline.close()
                            rig.close()
                failed = [o for o in outcomes if not o.ok]
                failures += [o.__dict__ for o in failed]
                rows.append({
                    "backend": backend, "stage": stage, "kills": sum(o.killed for o in outcomes),
                    "jobs_lost": sum(not any(r.get("status") == "complete" for r in o.history)
                                     for o in outcomes),
                    "ended_twice": sum(len(o.history) > 1 for o in outcomes),
                    "unready_visible": sum(o.unready_visible for o in outcomes),
                    "duplicate_or_missing_vectors": sum(
                        o.chunks_stored != o.chunks_expected or o.files_stored != o.files_expected
                        for o in outcomes),
                })
                print(json.dumps(rows[-1]), flush=True)
    finally:
        upstash.stop()
        server.stop()
    report = {"date": time.strftime("%Y-%m-%d"), "runs_per_pair": args.runs,
              "seconds": round(time.time() - started), "rows": rows, "failures": failures}
    out = ROOT / "bench" / "results" / args.out
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'backend':8} {'stage':9} kills lost twice unready vectors")
    for r in rows:
        print(f"{r['backend']:8} {r['stage']:9} {r['kills']:5} {r['jobs_lost']:4} "
              f"{r['ended_twice']:5} {r['unready_visible']:7} {r['duplicate_or_missing_vectors']:7}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
