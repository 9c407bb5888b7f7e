"""Query speed and memory of the control plane (MODE=CLOUD), over HTTP, on >= 10,000 chunks.

1. Index: the source folders of the search benchmark's corpora (bench/search_corpora.py
   fetches them) copied COPIES times (5,459 chunks each: two copies make one repository of
   more than 10,000, every copy under its own folder so every chunk is a node of its own)
   into ONE git repository and ingested by the real pipeline
   (`python -m edge ingest`, MiniLM on the CPU) into bench/.query-speed/data: the
   embedded stores (SQLite, Qdrant local mode). Done once; later runs reuse it.
2. Serve: `python -m cloud` (MODE=CLOUD) on those stores, in a process of its own.
3. Ask, over HTTP, in one client thread: QUERIES mixed questions, each text new (no
   answer cache hit): hybrid/keyword/semantic searches (queries are identifiers of the
   index split into words, as a person would type them), contexts at 2,048 tokens,
   dependents, hot spots and impacts. Latency per kind: p50, p99.
4. Memory: the server's peak RSS (VmHWM) with the encoder loaded, after all queries.
5. The query encoder alone, in this process: ms per query over 200 queries.

`--stores servers` asks the same questions of the deployed shape instead: the snapshot
copied into a real PostgreSQL (tests/servers.py) and the vectors into a Qdrant REST
server in a process of its own (tests/embedding_server.py: Qdrant's engine behind its
HTTP API), the control plane given DATABASE_URL and QDRANT_URL as on Render. Its RSS is
then the control plane's alone, as on a free host whose Qdrant is Qdrant Cloud; its
latencies are the emulator's (a Python engine that filters point by point), not Qdrant's.

    .venv/bin/python bench/query_speed.py [--queries 1000] [--seed 7] [--stores servers]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT)]

from shared.graph.store import open_graph_store  # noqa: E402
from shared.settings import Settings  # noqa: E402

WORK = HERE / ".query-speed"
CORPORA = HERE / "corpora"
SOURCES = {"click": "src", "jinja2": "src", "requests": "src", "boltons": "boltons",
           "more-itertools": "more_itertools", "rxjs": "src", "luxon": "src",
           "lodash-es": ".", "tanstack-query-core": "src", "ws": "lib"}
MIN_CHUNKS = 10_000
COPIES = ("a", "b")
TOKEN = "speed-token"


def build_index() -> str:
    """The one repository, ingested; its URL."""
    repo = WORK / "repo"
    data = WORK / "data"
    if (data / "graph.db").exists():
        return repo.as_uri()
    shutil.rmtree(WORK, ignore_errors=True)
    repo.mkdir(parents=True)
    for copy in COPIES:
        for name, folder in SOURCES.items():
            source = CORPORA / name / folder
            if not source.is_dir():
                sys.exit(f"{source} is missing: run bench/search_corpora.py first")
            shutil.copytree(source, repo / copy / name, ignore=shutil.ignore_patterns(
                "node_modules", "__pycache__", "*.min.js", "*.map", "dist", "bundles",
                "tests", "test", "*.md", "*.json"))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "corpus"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    env = {**os.environ, "DATA_DIR": str(data), "DEVICE": "cpu", "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "edge", "ingest", str(repo)], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    print(f"ingested in {time.perf_counter() - started:.0f} s")
    return repo.as_uri()


def index_facts(url: str) -> tuple[int, list[str], list[str]]:
    """Chunks indexed, symbol names (for queries), file paths (for graph questions)."""
    store = open_graph_store(Settings.from_env({"DATA_DIR": str(WORK / "data")}))
    try:
        snapshot = store.latest_snapshot(url)
        graph = store.load_graph(snapshot)
        chunks = snapshot.stats["text"]["documents"]
    finally:
        store.close()
    names = sorted({n.name for n in graph.nodes if n.qualname and len(n.name) > 5})
    files = sorted({n.path for n in graph.nodes if n.kind.value == "file"})
    return chunks, names, files


def words(identifier: str) -> str:
    parts = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", identifier)
    return " ".join(p.lower() for p in parts) or identifier


def questions(url: str, names: list[str], files: list[str], count: int,
              rng: random.Random) -> list[tuple[str, str, str, dict]]:
    """(kind, method, route, payload), each search text different."""
    picked = rng.sample(names, min(len(names), count))
    found = []
    for i in range(count):
        name = picked[i % len(picked)]
        text = f"{words(name)} {rng.choice(['', 'for', 'with', 'of the'])} {i}".strip()
        roll = i % 20
        if roll < 6:
            found.append(("search hybrid", "POST", "/api/v1/search",
                          {"query": text, "repo": url}))
        elif roll < 9:
            found.append(("search keyword", "POST", "/api/v1/search",
                          {"query": text, "repo": url, "mode": "keyword"}))
        elif roll < 12:
            found.append(("search semantic", "POST", "/api/v1/search",
                          {"query": text, "repo": url, "mode": "semantic"}))
        elif roll < 15:
            found.append(("context", "POST", "/api/v1/context",
                          {"task": f"change how {words(name)} works ({i})", "repo": url}))
        elif roll < 17:
            found.append(("dependents", "GET", "/api/v1/graph/dependents",
                          {"repo": url, "path": rng.choice(files), "depth": "2"}))
        elif roll < 18:
            found.append(("hotspots", "GET", "/api/v1/graph/hotspots",
                          {"repo": url, "limit": str(1 + i % 50)}))
        else:
            found.append(("impact", "POST", "/api/v1/impact",
                          {"repo": url, "files": rng.sample(files, 2)}))
    return found


QDRANT_PROCESS = """
import sys, time
from tests.embedding_server import QdrantRestServer
server = QdrantRestServer()
print(server.url, flush=True)
sys.stdin.read()  # until the bench closes our stdin
"""


def server_stores(url: str, stack: contextlib.ExitStack) -> dict[str, str]:
    """PostgreSQL and a Qdrant REST server holding the embedded index; their variables."""
    from qdrant_client import QdrantClient

    from shared.graph.store import PostgresGraphStore
    from shared.vectors import VectorStore
    from tests.servers import PostgresServer

    postgres = PostgresServer()
    stack.callback(postgres.stop)
    database = postgres.url_for(postgres.create_database())
    qdrant = subprocess.Popen([sys.executable, "-c", QDRANT_PROCESS], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    stack.callback(qdrant.wait, 30)
    stack.callback(qdrant.stdin.close)
    qdrant_url = qdrant.stdout.readline().strip()
    local = open_graph_store(Settings.from_env({"DATA_DIR": str(WORK / "data")}))
    remote = PostgresGraphStore(database)
    try:
        snapshot = local.latest_snapshot(url)
        graph = local.load_graph(snapshot)
        graph.sources = local.sources(snapshot, local.source_hashes(snapshot))
        remote.write_snapshot(graph)
    finally:
        local.close()
        remote.close()
    source = VectorStore(path=WORK / "data" / "qdrant")
    target = QdrantClient(url=qdrant_url, check_compatibility=False)
    try:
        for collection in source.collections():
            info = source._client.get_collection(collection)
            target.create_collection(collection, vectors_config=info.config.params.vectors)
            offset = None
            while True:
                points, offset = source._client.scroll(collection, limit=500, offset=offset,
                                                       with_vectors=True, with_payload=True)
                target.upsert(collection, points=[
                    {"id": p.id, "vector": p.vector, "payload": p.payload} for p in points])
                if offset is None:
                    break
    finally:
        source.close()
        target.close()
    return {"DATABASE_URL": database, "QDRANT_URL": qdrant_url}


def serve(port: int, stores: dict[str, str]) -> subprocess.Popen:
    env = {**os.environ, "MODE": "CLOUD", "PHAROS_ADMIN_TOKEN": TOKEN, "PORT": str(port),
           "DATA_DIR": str(WORK / "data"), "PYTHONPATH": str(ROOT),
           "ALLOW_LOCAL_REPOS": "true"}  # the indexed repository is a local folder
    for name in ("DATABASE_URL", "QDRANT_URL", "REDIS_URL", "UPSTASH_REDIS_REST_URL"):
        env.pop(name, None)
    env.update(stores)
    server = subprocess.Popen([sys.executable, "-m", "cloud"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    sys.exit("the control plane did not start")


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def encoder_ms(names: list[str]) -> dict:
    from shared.query_encoder import QueryEncoder, default_model_dir
    encoder = QueryEncoder(default_model_dir())
    encoder.encode(["warm up"])
    times = []
    for name in names[:200]:
        started = time.perf_counter()
        encoder.encode([f"{words(name)} function"])
        times.append(1000 * (time.perf_counter() - started))
    return {"p50": round(statistics.median(times), 2), "p99": round(percentile(times, 0.99), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--port", type=int, default=8731)
    parser.add_argument("--stores", choices=("embedded", "servers"), default="embedded")
    args = parser.parse_args()
    url = build_index()
    chunks, names, files = index_facts(url)
    if chunks < MIN_CHUNKS:
        sys.exit(f"only {chunks} chunks indexed; add corpora to reach {MIN_CHUNKS}")
    asked = questions(url, names, files, args.queries, random.Random(args.seed))
    stack = contextlib.ExitStack()
    stores = server_stores(url, stack) if args.stores == "servers" else {}
    server = serve(args.port, stores)
    latencies: dict[str, list[float]] = {}
    failures = 0
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=60,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            rss_idle = peak_rss_mb(server.pid)
            http.post("/api/v1/search", json={"query": "warm up", "repo": url})  # load model
            for kind, method, route, payload in asked:
                started = time.perf_counter()
                answer = (http.post(route, json=payload) if method == "POST"
                          else http.get(route, params=payload))
                latencies.setdefault(kind, []).append(1000 * (time.perf_counter() - started))
                if answer.status_code != 200:
                    failures += 1
                    print(f"{kind}: {answer.status_code} {answer.text[:200]}", file=sys.stderr)
            rss_peak = peak_rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        stack.close()
    if failures:
        sys.exit(f"{failures} questions failed: no figures written")
    report = {
        "date": time.strftime("%Y-%m-%d"), "stores": args.stores, "chunks": chunks,
        "files": len(files),
        "queries": len(asked), "failures": failures,
        "latency_ms": {kind: {"n": len(v), "p50": round(statistics.median(v), 1),
                              "p99": round(percentile(v, 0.99), 1)}
                       for kind, v in sorted(latencies.items())},
        "rss_mb": {"started": round(rss_idle, 1), "peak_after_queries": round(rss_peak, 1)},
        "encoder_ms": encoder_ms(names),
    }
    out = HERE / "results" / f"query_speed-{args.stores}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
