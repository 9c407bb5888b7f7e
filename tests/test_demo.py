"""`make demo` (`python -m edge demo`): a real package's source through the real pipeline,
read back from the stores, with nothing left behind and the configured servers untouched."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_ingests_a_package_and_shows_graph_hot_spots_and_neighbours(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONPATH": str(ROOT),
           "DATA_DIR": str(tmp_path / "configured"),
           # a configured server the demo must not write to (nothing listens there)
           "QDRANT_URL": "http://127.0.0.1:9", "DATABASE_URL": "postgresql://u@127.0.0.1:9/db"}
    done = subprocess.run([sys.executable, "-m", "edge", "demo", "tenacity",
                           "--query", "retry a call with exponential backoff"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    files = len(list(Path(__import__("tenacity").__file__).parent.rglob("*.py")))
    found = re.search(r"Done in [\d.]+ s: (\d+) files, [\d,]+ lines, (\d+) structural and "
                      r"(\d+) text vectors", out)
    assert found, out
    assert int(found.group(1)) == files == int(found.group(2))  # one vector per file
    assert int(found.group(3)) > files
    assert re.search(r"nodes\s+class \d+, file \d+, function \d+", out)
    assert re.search(r"edges\s+.*IMPORTS \d+", out)
    hot = re.findall(r"^\s+(\d+)\s+(tenacity/\S+\.py)$", out.split("Hot spots")[1]
                     .split("Structural")[0], re.M)
    assert hot and [int(n) for n, _ in hot] == sorted((int(n) for n, _ in hot), reverse=True)
    neighbours = out.split("Structural neighbours of ")[1].split("Text search")[0]
    assert neighbours.startswith(hot[0][1])  # the hottest file is the anchor
    scores = [float(s) for s in re.findall(r"^\s+(-?[\d.]+)\s+tenacity/", neighbours, re.M)]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    assert hot[0][1] not in neighbours.split("\n", 1)[1]  # not its own neighbour
    search = out.split("Text search")[1]
    assert len(re.findall(r"^\s+[\d.]+\s+tenacity/\S+:\d+\s+\S+", search, re.M)) == 5
    assert list(scratch.iterdir()) == []  # repository and stores removed
    configured = tmp_path / "configured"  # the worker's compiler cache may live there
    assert not {"graph.db", "qdrant", "queue.sqlite3"} & {p.name for p in configured.glob("*")}
