"""Load on the control plane: 50 concurrent clients for 60 s against POST /ingest, then
against the read routes, over loopback, from one uvicorn process on Redis.

The control plane runs as in production (`python -m cloud`, MODE=CLOUD, one process)
on a real redis-server with MAX_QUEUE_SIZE=CAP. The load comes from wrk (C, epoll; see
bench/setup_tools.sh) with a Lua script: every ingest names a new repository, so the
queue fills to its cap and later submissions must get 429 -- the cap is then checked
to be exact (pending == CAP). Counted: answers by status, socket errors, requests/s,
latency p50/p99 (wrk's), and the CPU seconds of the server and of wrk during the run,
so the generator's share of the two cores is known. Results:
bench/results/faults-load.json.

    .venv/bin/python bench/faults/load.py [--seconds 60] [--clients 50] [--cap 500]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.servers import RedisServer, free_port  # noqa: E402

# Per wrk thread: its own counters (wrk gives each thread a Lua state), summed in done().
SCRIPT = r"""
local token = os.getenv("LOAD_TOKEN")
local routes = {}
for route in string.gmatch(os.getenv("LOAD_ROUTES"), "[^,]+") do routes[#routes + 1] = route end
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end
function init(args)
  n, ok, full, other = 0, 0, 0, 0
end
function request()
  n = n + 1
  local route = routes[(n % #routes) + 1]
  local method = "GET"
  if route == "ingest" then
    method = "POST"
    route = string.format("/api/v1/ingestion/ingest/github.com/load/t%d-r%d", id, n)
  end
  return wrk.format(method, route, {["Authorization"] = "Bearer " .. token})
end
function response(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 429 then full = full + 1
  else other = other + 1 end
end
function done(summary, latency, requests)
  local total = {ok = 0, full = 0, other = 0}
  for _, thread in ipairs(threads) do
    total.ok = total.ok + thread:get("ok")
    total.full = total.full + thread:get("full")
    total.other = total.other + thread:get("other")
  end
  local errors = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %.3f, "ok": %d, "full": %d, "other": %d, ' ..
    '"socket_errors": %d, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, total.ok, total.full, total.other,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, routes: str, token: str, seconds: int, clients: int, script: Path
            ) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s",
                           "-s", str(script), url],
                          env={**os.environ, "LOAD_TOKEN": token, "LOAD_ROUTES": routes},
                          capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result["generator_cpu_seconds"] = round((after.ru_utime - before.ru_utime)
                                            + (after.ru_stime - before.ru_stime), 2)
    result["requests_per_second"] = round(result["requests"] / result["seconds"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--cap", type=int, default=500)
    args = parser.parse_args()
    token = secrets.token_urlsafe(24)
    redis = RedisServer()
    port = free_port()
    scratch = tempfile.TemporaryDirectory()
    script = Path(scratch.name) / "load.lua"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items()
           if k not in ("UPSTASH_REDIS_REST_URL", "DATABASE_URL", "QDRANT_URL")}
    env.update(MODE="CLOUD", REDIS_URL=redis.url, PHAROS_ADMIN_TOKEN=token, PORT=str(port),
               MAX_QUEUE_SIZE=str(args.cap), DATA_DIR=scratch.name, PYTHONPATH=str(ROOT))
    server = subprocess.Popen([sys.executable, "-m", "cloud"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    report: dict = {"date": time.strftime("%Y-%m-%d"), "clients": args.clients,
                    "seconds": args.seconds, "cap": args.cap, "cores": os.cpu_count()}
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                sys.exit("the control plane did not start")
            time.sleep(0.2)
        for phase, routes in (("ingest", "ingest"),
                              ("reads", "/api/v1/ingestion/overview,/api/v1/ingestion/worker/"
                                        "status,/api/v1/ingestion/jobs/history?limit=10")):
            server_before = cpu_seconds(server.pid)
            result = run_wrk(url, routes, token, args.seconds, args.clients, script)
            result["server_cpu_seconds"] = round(cpu_seconds(server.pid) - server_before, 2)
            result["generator_share_of_cpu"] = round(
                result["generator_cpu_seconds"] / (result["generator_cpu_seconds"]
                                                   + result["server_cpu_seconds"]), 3)
            report[phase] = result
            print(phase, json.dumps(result), flush=True)
        pending = httpx.get(f"{url}/api/v1/ingestion/overview",
                            headers={"Authorization": f"Bearer {token}"}).json()["queue"]["size"]
        report["pending_after"] = pending
        report["cap_exact"] = pending == args.cap
        report["errors"] = sum(report[p]["other"] + report[p]["socket_errors"]
                               for p in ("ingest", "reads"))
    finally:
        server.terminate()
        server.wait(60)
        redis.stop()
        scratch.cleanup()
    (ROOT / "bench" / "results" / "faults-load.json").write_text(json.dumps(report, indent=2)
                                                                 + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
