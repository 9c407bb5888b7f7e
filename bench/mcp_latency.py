"""MCP tool-call latency (issue 16): search_code and get_context over streamable HTTP,
on the embedded stores, against the same questions over the HTTP API.

1. Index: a real project's source (default: black 26.10.1 from bench/corpora, which
   bench/search_corpora.py fetches) as a one-commit git repository, ingested by the real
   pipeline (`python -m edge ingest`, MiniLM on the CPU) into bench/.mcp-latency/data:
   SQLite and Qdrant local mode. Done once; later runs reuse it.
2. Serve: `python -m cloud` (MODE=CLOUD) on those stores, in a process of its own.
3. Ask, from one client, alternating: CALLS search_code calls (hybrid, 10 hits) and CALLS
   get_context calls (2,048 tokens, markdown) through the MCP SDK's own client (streamable
   HTTP, the admin token), each followed by the same kind of question over the HTTP API
   (POST /api/v1/search, /api/v1/context; one keep-alive connection), so both faces meet
   the same load. Every text is new (no answer-cache hit); a few calls of each kind before
   the clock starts load the model, the tokenizer and (first request to /mcp) the SDK.
   Latency per call, client side: p50, p99, mean; the server's RSS before and after the
   SDK loads.

    .venv/bin/python bench/mcp_latency.py [--calls 200] [--source DIR] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT)]

from shared.graph.store import open_graph_store  # noqa: E402
from shared.settings import Settings  # noqa: E402
from tests.mcp_client import http_client, structured  # noqa: E402
from tests.servers import free_port  # noqa: E402

WORK = HERE / ".mcp-latency"
SOURCE = HERE / "corpora" / "black"
TOKEN = "mcp-latency-token"
WARMUP = 5
ROUTES = {"search_code": "/api/v1/search", "get_context": "/api/v1/context"}


def build_index(source: Path) -> str:
    """The project, ingested once; its URL."""
    repo, data = WORK / "repo", WORK / "data"
    if (data / "graph.db").exists():
        return repo.as_uri()
    if not source.is_dir():
        sys.exit(f"{source} is missing: run bench/search_corpora.py first, or give --source")
    shutil.rmtree(WORK, ignore_errors=True)
    shutil.copytree(source, repo, ignore=shutil.ignore_patterns("__pycache__", ".git"))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "source"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    env = {**os.environ, "DATA_DIR": str(data), "DEVICE": "cpu", "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "edge", "ingest", str(repo)], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    print(f"ingested in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return repo.as_uri()


def symbol_names(url: str) -> tuple[list[str], int]:
    store = open_graph_store(Settings.from_env({"DATA_DIR": str(WORK / "data")}))
    try:
        snapshot = store.latest_snapshot(url)
        names = sorted({n.name for n in store.load_graph(snapshot).nodes
                        if n.qualname and len(n.name) > 5})
        return names, snapshot.stats["text"]["documents"]
    finally:
        store.close()


def words(identifier: str) -> str:
    parts = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", identifier)
    return " ".join(p.lower() for p in parts) or identifier


def texts(names: list[str], count: int, rng: random.Random, tag: str) -> list[str]:
    """`count` different questions made of the index's identifiers, as a person types."""
    return [f"{words(rng.choice(names))} {rng.choice(['', 'for', 'with', 'of the'])} "
            f"{tag}{i}".replace("  ", " ") for i in range(count)]


def serve(port: int) -> subprocess.Popen:
    env = {**os.environ, "MODE": "CLOUD", "PHAROS_ADMIN_TOKEN": TOKEN, "PORT": str(port),
           "DATA_DIR": str(WORK / "data"), "PYTHONPATH": str(ROOT),
           "ALLOW_LOCAL_REPOS": "true"}  # the indexed repository is a local folder
    for name in ("DATABASE_URL", "QDRANT_URL", "REDIS_URL", "UPSTASH_REDIS_REST_URL",
                 "MCP_ALLOWED_HOSTS"):
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-m", "cloud"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    sys.exit("the control plane did not start")


def rss_mb(pid: int) -> float:
    """The server's resident set now (VmRSS)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return round(int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024, 1)


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
            "mean_ms": round(statistics.fmean(ordered), 2)}


async def ask(base: str, url: str, questions: list[tuple[str, str, str]]) -> dict:
    """Each (tool, MCP text, HTTP text): the tool over MCP, then the same kind of question
    (another text: no cache hit) over the HTTP API, so both faces meet the same load."""
    timings = {face: {"search_code": [], "get_context": []} for face in ("mcp", "http")}
    async with http_client(f"{base}/mcp", TOKEN) as mcp, httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as http:
        for tool, mcp_text, http_text in questions:
            started = time.perf_counter()
            answer = structured(await mcp.call_tool(tool, _arguments(tool, url, mcp_text)))
            timings["mcp"][tool].append(1000 * (time.perf_counter() - started))
            assert answer["index"], answer
            started = time.perf_counter()
            response = await http.post(ROUTES[tool], json=_arguments(tool, url, http_text))
            timings["http"][tool].append(1000 * (time.perf_counter() - started))
            response.raise_for_status()
    return timings


def _arguments(tool: str, url: str, text: str) -> dict:
    if tool == "search_code":
        return {"query": text, "repo": url, "limit": 10}
    return {"task": f"change how {text} works", "repo": url, "budget_tokens": 2048}


def plan(names: list[str], count: int, rng: random.Random, tag: str) -> list[tuple]:
    """Searches and contexts alternating, as an agent asks them."""
    mcp, http = texts(names, 2 * count, rng, f"m{tag}"), texts(names, 2 * count, rng, f"h{tag}")
    return [("search_code" if i % 2 == 0 else "get_context", mcp[i], http[i])
            for i in range(2 * count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="timed calls per tool and face")
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    url = build_index(args.source)
    names, chunks = symbol_names(url)
    rng = random.Random(args.seed)
    port = free_port()
    proc = serve(port)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=120) as http:  # the model and tokenizer load
            for tool, _, text in plan(names, WARMUP, rng, "w"):
                http.post(ROUTES[tool], json=_arguments(tool, url, text)).raise_for_status()
        rss = {"before_mcp_mb": rss_mb(proc.pid)}
        anyio.run(ask, base, url, plan(names, WARMUP, rng, "v"))  # the SDK loads
        rss["after_mcp_mb"] = rss_mb(proc.pid)
        timings = anyio.run(ask, base, url, plan(names, args.calls, rng, "t"))
    finally:
        proc.terminate()
        proc.wait(30)
    results = {"repository": args.source.name, "chunks": chunks, "calls": args.calls, "rss": rss,
               **{face: {tool: summary(s) for tool, s in by_tool.items()}
                  for face, by_tool in timings.items()}}
    for face in ("mcp", "http"):
        for tool, figures in results[face].items():
            print(f"{face:4} {tool:12} p50 {figures['p50_ms']:7.2f} ms  p99 "
                  f"{figures['p99_ms']:7.2f} ms  mean {figures['mean_ms']:7.2f} ms  "
                  f"(n={figures['n']})")
    print(f"server RSS after the first HTTP calls {rss['before_mcp_mb']} MB, after the first "
          f"MCP calls {rss['after_mcp_mb']} MB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
