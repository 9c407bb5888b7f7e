"""Upload speed of the vector sink in Qdrant's local mode, against qdrant-client as it comes.

Both sides write the same points (N chunks, 384-d, payloads as shared.vectors writes
them, text of --text-chars characters) in batches of 100 to local mode on the same
disk, each into a fresh folder, in the same run:

* reference: `QdrantClient(path=...)` with qdrant-client's defaults, `upsert(wait=True)`;
* ours: `VectorStore(path=...).write_chunks(...)` (batches, cleanup, its SQLite tuning).

Then where our upload's time goes (cProfile of a second run, top entries). Usage:

    .venv/bin/python bench/vector_upload.py --points 5000 [--dir /tmp] [--json OUT]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import platform
import pstats
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient, models

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from edge.embed.chunks import Chunk  # noqa: E402
from shared.vectors import BATCH_SIZE, CHUNK_COLLECTION, VectorStore  # noqa: E402

REPO = "https://github.com/bench/repo"




def make_chunks(n: int, text_chars: int) -> list[Chunk]:
    return [Chunk(f"pkg/mod_{i // 20}.py", f"Class.method_{i}", "method", i, i + 9,
                  ("x" * text_chars)) for i in range(n)]


def reference(folder: Path, chunks: list[Chunk], vectors: np.ndarray) -> float:
    client = QdrantClient(path=str(folder))
    client.create_collection(CHUNK_COLLECTION, vectors_config=models.VectorParams(
        size=vectors.shape[1], distance=models.Distance.COSINE))
    started = time.perf_counter()
    for start in range(0, len(chunks), BATCH_SIZE):
        part = chunks[start:start + BATCH_SIZE]
        client.upsert(CHUNK_COLLECTION, wait=True, points=models.Batch(
            ids=list(range(start, start + len(part))),
            vectors=vectors[start:start + len(part)].tolist(),
            payloads=[{"repo_url": REPO, "file_path": c.path, "qualified_name": c.qualname,
                       "kind": c.kind, "start_line": c.start_line, "end_line": c.end_line,
                       "commit": "sha", "text": c.text, "model": "all-MiniLM-L6-v2",
                       "embedding_type": "text", "ingest": "1"} for c in part]))
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed


def ours(folder: Path, chunks: list[Chunk], vectors: np.ndarray, ingest: str = "1") -> float:
    with VectorStore(path=folder) as store:
        started = time.perf_counter()
        store.write_chunks(REPO, "sha", ingest, chunks, vectors, "all-MiniLM-L6-v2")
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--text-chars", type=int, default=600)
    parser.add_argument("--dir", default=None, help="where the local stores go (a temp dir)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # local mode warns about collections over 20k points

    chunks = make_chunks(args.points, args.text_chars)
    vectors = np.random.default_rng(0).standard_normal((args.points, 384)).astype(np.float32)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        ref_s = reference(root / "reference", chunks, vectors)
        ours_s = ours(root / "ours", chunks, vectors)
        profile = cProfile.Profile()
        profile.enable()
        again_s = ours(root / "ours", chunks, vectors, ingest="2")  # a re-ingest: overwrites
        profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(8)
    result = {
        "machine": f"{platform.node()} {platform.machine()} {platform.python_version()}",
        "points": args.points, "dim": 384, "text_chars": args.text_chars,
        "reference_s": round(ref_s, 3), "reference_points_per_s": round(args.points / ref_s),
        "ours_s": round(ours_s, 3), "ours_points_per_s": round(args.points / ours_s),
        "reingest_s": round(again_s, 3), "speedup": round(ref_s / ours_s, 1),
    }
    print(json.dumps(result, indent=2))
    print("re-ingest profile (profiler on), by own time:")
    print("\n".join(text.getvalue().splitlines()[:30]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
