"""How a chunk is written for the text model, measured: MRR@10 of MiniLM alone.

Re-embeds the chunks of projects the search benchmark already ingested (their
stored graph and sources, bench/search_quality.py --data-dir) written in each
variant, and ranks them for that benchmark's queries by cosine, the way semantic
search does. Nothing else changes between variants: same chunks, same queries.

  A  "path: Qualified.name" + code                   (the format before)
  B  A's header + the qualified name in words + code
  D  A's header + the own name in words + "(in <class in words>)" + code  (chosen)
  E  D with every snake_case / camelCase identifier of the code split into words

    .venv/bin/python bench/chunk_text_variants.py --data-root DIR \
        --results bench/results/search_quality-all.json --projects click luxon ...
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from edge.embed.chunks import Chunk, build_chunks  # noqa: E402
from edge.embed.minilm import MiniLMEncoder  # noqa: E402
from shared.graph.store.sqlite import SqliteGraphStore  # noqa: E402
from shared.lexical import words  # noqa: E402

_SPLITTABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _code(chunk: Chunk) -> str:
    return chunk.text.split("\n", 2)[2]  # today's chunks carry a two-line header


def _named(chunk: Chunk) -> str:
    outer, _, own = chunk.qualname.rpartition(".")
    name = words(own) if own else words(chunk.path.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    return name + (f" (in {words(outer)})" if outer else "")


def variant(name: str, chunk: Chunk) -> str:
    head = f"{chunk.path}: {chunk.qualname}" if chunk.qualname else chunk.path
    code = _code(chunk)
    if name == "A":
        return f"{head}\n{code}"
    if name == "B":
        return f"{head}\n{words(chunk.qualname or chunk.path)}\n{code}"
    if name == "D":
        return f"{head}\n{_named(chunk)}\n{code}"
    if name == "E":
        split = _SPLITTABLE.sub(lambda m: words(m.group(0)) if re.search(
            r"[a-z][A-Z]|_", m.group(0)) else m.group(0), code)
        return f"{head}\n{_named(chunk)}\n{split}"
    raise ValueError(name)


def load_tasks(results: Path) -> list[dict]:
    """The tasks of a bench/search_quality.py results file (one JSON object a line)."""
    return [t if isinstance(t, dict) else json.loads(t)
            for t in json.loads(results.read_text())["tasks"]]


def reciprocal_rank(scores: np.ndarray, answers: np.ndarray) -> float:
    """1 / rank of the first answer among the 10 best scores, else 0."""
    for rank, index in enumerate(np.argsort(-scores, kind="stable")[:10], 1):
        if answers[index]:
            return 1 / rank
    return 0.0


def mrr_at_10(scores: np.ndarray, chunks: list[Chunk], tasks: list[dict]) -> float:
    total = 0.0
    for row, task in zip(scores, tasks):
        total += reciprocal_rank(row, np.array([c.path == task["path"] and
                                                c.qualname == task["qualname"]
                                                for c in chunks]))
    return total / len(tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--projects", nargs="+", required=True)
    parser.add_argument("--variants", nargs="+", default=["A", "B", "D", "E"])
    args = parser.parse_args()
    tasks = load_tasks(args.results)
    encoder = MiniLMEncoder(device="cpu")
    table: dict[str, dict[str, float]] = {}
    for project in args.projects:
        store = SqliteGraphStore(args.data_root / project / "graph.db")
        snapshot = store.latest_snapshot(store.repositories()[0])
        graph = store.load_graph(snapshot)
        graph.sources = store.sources(snapshot, store.source_hashes(snapshot))
        store.close()
        chunks = build_chunks(Path("/nonexistent"), graph)
        mine = [t for t in tasks if t["project"] == project]
        queries = encoder.encode([t["query"] for t in mine])
        for name in args.variants:
            vectors = encoder.encode([variant(name, c) for c in chunks])
            table.setdefault(name, {})[project] = mrr_at_10(queries @ vectors.T, chunks, mine)
            print(f"{project:20} {name}  {table[name][project]:.4f}", flush=True)
    for name, row in table.items():
        print(f"{name}  macro {np.mean(list(row.values())):.4f}  "
              + "  ".join(f"{p} {v:.3f}" for p, v in row.items()))


if __name__ == "__main__":
    main()
