"""Setting the hybrid weights on the development projects, never on the check projects.

For every task of the dev projects of bench/search_quality.py, the hybrid search's
candidates (semantic top 50 and keyword top 50) are made once with the query layer's
own functions (cloud/query/search.py), every signal filled in; then each weight
triple of a grid re-ranks them in memory:

    score = cosine + W_KEYWORD * bm25 / max bm25 + W_NAME * name + W_CENTRALITY * centrality

and MRR@10 is averaged over the projects (macro). The grid's best region is flat
(about +-0.003 around its top), so the weights chosen sit in its middle, not on an edge.

    .venv/bin/python bench/hybrid_weights.py --data-root DIR \
        --results bench/results/search_quality-all.json [--projects click ...]

DIR/<project> must hold the project's ingested stores (bench/search_quality.py
--data-dir DIR, or `python -m edge ingest` of bench/corpora/_search/<project>).
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from chunk_text_variants import load_tasks, reciprocal_rank  # noqa: E402
from cloud.query import QueryService  # noqa: E402
from cloud.query import search  # noqa: E402
from shared.lexical import query_terms  # noqa: E402
from shared.settings import Settings  # noqa: E402

DEV = ("click", "more-itertools", "luxon", "rxjs")
GRID = {"keyword": (0, .05, .1, .15, .2, .25, .3, .4),
        "name": (0, .05, .1, .15, .2, .25, .3, .4, .5),
        "centrality": (0, .01, .02, .04)}


def candidates(data: Path, tasks: list[dict]) -> list[list[tuple]]:
    """Per task: (is the answer, cosine, bm25 / max bm25, name, centrality) per candidate."""
    service = QueryService.from_settings(Settings.from_env(
        {"DATA_DIR": str(data), "ALLOW_LOCAL_REPOS": "true"}))
    try:
        target = service.target(service.store.repositories()[0])
        context = service._search_context()
        central = service._centrality(target)
        found_all = []
        for task in tasks:
            vector = service.query_vector(task["query"])
            found: dict[int, search.Candidate] = {}
            for candidate in search._semantic(context, target, vector, 50, [], None) + \
                    search._keyword(context, target, task["query"], 50, [], None):
                known = found.setdefault(candidate.node.id, candidate)
                if known is not candidate:
                    known.signals.update(candidate.signals)
            search._fill_semantic(context, target, vector, found)
            terms = set(query_terms(task["query"]))
            top = max((c.signals.get("keyword", 0.0) for c in found.values()), default=0.0) or 1
            found_all.append([
                (c.node.path == task["path"] and c.node.qualname == task["qualname"],
                 c.signals["semantic"], c.signals.get("keyword", 0.0) / top,
                 search._name_share(c.node, terms), central.get(c.node.path, 0.0))
                for c in found.values()])
        return found_all
    finally:
        service.close()


def mrr(per_task: list[list[tuple]], weights: tuple[float, float, float]) -> float:
    total = 0.0
    for rows in per_task:
        if not rows:
            continue
        table = np.array([row[1:] for row in rows])
        scores = table[:, 0] + table[:, 1:] @ np.array(weights)
        total += reciprocal_rank(scores, np.array([row[0] for row in rows]))
    return total / len(per_task)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--projects", nargs="+", default=list(DEV))
    args = parser.parse_args()
    tasks = load_tasks(args.results)
    per_project = {p: candidates(args.data_root / p, [t for t in tasks if t["project"] == p])
                   for p in args.projects}
    scored = []
    for weights in itertools.product(*GRID.values()):
        scores = [mrr(per_project[p], weights) for p in args.projects]
        scored.append((float(np.mean(scores)), weights, scores))
    scored.sort(key=lambda row: -row[0])
    print("semantic alone", round(float(np.mean([mrr(per_project[p], (0, 0, 0))
                                                 for p in args.projects])), 4))
    current = (search.W_KEYWORD, search.W_NAME, search.W_CENTRALITY)
    print("current", current, round(float(np.mean([mrr(per_project[p], current)
                                                  for p in args.projects])), 4))
    for mean, weights, scores in scored[:10]:
        print(f"{mean:.4f}  keyword {weights[0]}  name {weights[1]}  centrality {weights[2]}  "
              + "  ".join(f"{p} {s:.3f}" for p, s in zip(args.projects, scores)))


if __name__ == "__main__":
    main()
