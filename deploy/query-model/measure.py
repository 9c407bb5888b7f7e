"""What the installed query model costs: size on disk, load time, process RSS, ms per query.

    python deploy/query-model/measure.py [--queries N]

Run it with the control plane's interpreter (a venv from requirements-cloud.txt alone):
it imports what the control plane imports for search and nothing else. Prints JSON.
Not part of the package (backend.py ships only the model).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository's shared/

QUERIES = ("where are jobs queued", "retry an upload with exponential backoff",
           "parse the repository url", "how is the worker heartbeat reported",
           "snapshot of the graph per commit", "which function leases a job to a worker")


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident set now (VmRSS) or at its peak (VmHWM), in MB (Linux)."""
    status = Path("/proc/self/status").read_text()
    return round(int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) / 1024, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=600)
    args = parser.parse_args()
    before = rss_mb()
    started = time.perf_counter()
    from shared.query_encoder import QueryEncoder, default_model_dir
    folder = default_model_dir()
    encoder = QueryEncoder(folder)
    load_s = time.perf_counter() - started
    encoder.encode(list(QUERIES))  # warm-up: first-run allocations
    times = []
    for index in range(args.queries):
        tick = time.perf_counter()
        encoder.encode([QUERIES[index % len(QUERIES)]])
        times.append((time.perf_counter() - tick) * 1000)
    times.sort()
    after_queries = rss_mb()
    # The worst a search can ask: many texts of a full window (activations grow with it).
    encoder.encode(["def lease(self, worker_id):\n    return self.jobs.pop()\n" * 60] * 64)
    heavy = sorted(m for m in ("torch", "onnx", "transformers") if m in sys.modules)
    print(json.dumps({
        "package_mb": round(sum(p.stat().st_size for p in folder.iterdir()) / 2**20, 1),
        "load_s": round(load_s, 2),
        "rss_mb": {"before_import": before, "after_queries": after_queries,
                   "peak_after_64_full_window_texts": rss_mb("VmHWM")},
        "ms_per_query": {"p50": round(times[len(times) // 2], 2),
                         "p99": round(times[int(len(times) * 0.99)], 2)},
        "queries": args.queries, "heavy_modules_imported": heavy,
    }, indent=1))


if __name__ == "__main__":
    main()
