"""Webhook answer time under a burst: 100 signed GitHub push deliveries at once.

    .venv/bin/python bench/webhooks.py [--deliveries 100] [--concurrency 20] [--redis]
        [--json OUT]

The control plane runs as it does in production (`python -m cloud`, uvicorn, one
process) on 127.0.0.1 with a fresh DATA_DIR: the repository registry in SQLite and the
queue in SQLite, or with --redis a real redis-server started here. One repository is
registered (its first ingest queued, so every push merges into that job); then the
deliveries go out from `--concurrency` threads, each a distinct delivery id and a
correct HMAC-SHA256 signature, and each answer's wall time is taken on the client.
Printed: p50, p99 and max answer times, the answers by status, and the jobs queued
(the burst must leave exactly one). Half-way, 10 replays of already-sent delivery ids
are mixed in: they must answer 200 "duplicate".
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import RedisServer, free_port  # noqa: E402

TOKEN = "bench-token"
SECRET = "bench-webhook-secret-0123456789"
URL = "https://github.com/octo/widgets"


def push(delivery: str) -> tuple[bytes, dict]:
    body = json.dumps({"ref": "refs/heads/main", "after": uuid.uuid4().hex + "0" * 8,
                       "repository": {"clone_url": URL + ".git", "html_url": URL,
                                      "default_branch": "main"}}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Hub-Signature-256": signature, "X-GitHub-Event": "push",
                  "X-GitHub-Delivery": delivery, "Content-Type": "application/json"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--redis", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    redis = RedisServer().start() if args.redis else None
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="webhooks-") as data:
        env = {**os.environ, "MODE": "CLOUD", "PHAROS_ADMIN_TOKEN": TOKEN, "PORT": str(port),
               "DATA_DIR": data, "WEBHOOK_SECRET": SECRET, "MAX_QUEUE_SIZE": "10"}
        if redis:
            env["REDIS_URL"] = redis.url
        server = subprocess.Popen([sys.executable, "-m", "cloud"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with httpx.Client(base_url=base, timeout=30) as client:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        if client.get("/health").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.2)
                auth = {"Authorization": f"Bearer {TOKEN}"}
                client.post("/api/v1/repos", json={"url": URL}, headers=auth).raise_for_status()
                ids = [str(uuid.uuid4()) for _ in range(args.deliveries)]
                sends = ids[:len(ids) // 2] + ids[:10] + ids[len(ids) // 2:]  # 10 replays

                def deliver(delivery: str) -> tuple[float, int, str]:
                    body, headers = push(delivery)
                    started = time.perf_counter()
                    answer = client.post("/api/v1/webhooks/github", content=body,
                                         headers=headers)
                    return (time.perf_counter() - started, answer.status_code,
                            answer.json().get("status", ""))

                with ThreadPoolExecutor(args.concurrency) as pool:
                    results = list(pool.map(deliver, sends))
                overview = client.get("/api/v1/ingestion/overview", headers=auth).json()
        finally:
            server.terminate()
            server.wait(30)
            if redis:
                redis.stop()
    times = sorted(t for t, _, _ in results)
    figures = {
        "deliveries": len(sends), "concurrency": args.concurrency,
        "queue": "redis" if redis else "sqlite", "registry": "sqlite",
        "p50_ms": round(1000 * statistics.median(times), 1),
        "p99_ms": round(1000 * times[min(len(times) - 1, int(0.99 * len(times)))], 1),
        "max_ms": round(1000 * times[-1], 1),
        "answers": dict(Counter(f"{code} {status}" for _, code, status in results)),
        "jobs_queued": overview["queue"]["size"],
        "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
