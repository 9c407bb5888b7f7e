"""Seconds per analyze stage, two versions of the code side by side on the same corpus.

    python3 bench/stage_speed.py ROOT [ROOT ...] --before DIR [--repeats 5] [--workers 1]

`python -m edge analyze ROOT --stats --workers N` runs from this checkout and
from DIR (another checkout, e.g. `git archive <commit> | tar -x -C DIR`) in
turn, `--repeats` times each, alternating so that a noisy machine slows both
alike; each stage's median and the ratio after / before are printed. With one
worker, parse runs in the analyzing process: the figure is one core's work.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
STAGES = ("parse", "resolve", "graph")


def run(checkout: Path, root: Path, workers: int) -> dict:
    python = os.environ.get("PYTHON", str(HERE / ".venv" / "bin" / "python"))
    done = subprocess.run([python, "-m", "edge", "analyze", str(root), "--stats",
                           "--workers", str(workers)],
                          cwd=checkout, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="+", type=Path)
    parser.add_argument("--before", type=Path, required=True, help="the other checkout")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    print("| corpus | LOC | stage | before s | after s | after / before |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for root in (r.resolve() for r in args.roots):
        times: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
        loc = 0
        for _ in range(args.repeats):
            for label, checkout in (("before", args.before), ("after", HERE)):
                stats = run(checkout, root, args.workers)
                loc = stats["loc"]
                for stage in STAGES:
                    times[label].setdefault(stage, []).append(stats["seconds"][stage])
        for stage in STAGES:
            before = statistics.median(times["before"][stage])
            after = statistics.median(times["after"][stage])
            print(f"| {root.name} | {loc:,} | {stage} | {before:.3f} | {after:.3f} | "
                  f"{after / before:.2f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
