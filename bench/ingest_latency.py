"""Control-plane benchmark (issue 2): ingest latency, the Redis floor, req/s, RSS.

Starts a real redis-server (tests.servers.RedisServer) and the control plane
as a separate process (`python -m cloud`, MODE=CLOUD, REDIS_URL pointing at
it), then measures, all on 127.0.0.1:

1. dispatch latency: sequential authenticated POST /api/v1/ingestion/ingest/...
   over one keep-alive httpx.Client (after an uncounted warm-up);
2. the floor: raw redis-py PING and EVALSHA of a trivial script against the
   same server, plus two in-between points that say where the time goes:
   RedisQueue.enqueue() called in this process (the queue layer without HTTP)
   and GET /health (HTTP + thread pool + one PING, without auth or the script);
3. req/s of the ingest endpoint with N concurrent clients (threads, each with
   its own keep-alive httpx.Client), a fixed total and a wall-clock cap;
4. the cloud process's RSS (VmRSS) right after start and after 10,000 API
   requests (the above plus mixed ingest / worker status / overview / history).

Redis is flushed between phases, and MAX_QUEUE_SIZE is large, so the cap never
bites. Everything is stopped on exit, Ctrl-C and SIGTERM included.

    cd /work/main && .venv/bin/python bench/ingest_latency.py [--json out.json]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import redis  # noqa: E402

from tests.servers import RedisServer, free_port  # noqa: E402

PREFIX = "/api/v1/ingestion"
INGEST = PREFIX + "/ingest/https://github.com/bench/{name}"
TARGET_P99_MS = 10.0
ORIGINAL_TARGET_P99_MS = 100.0
TARGET_RSS_MB = 150.0
TOTAL_FOR_RSS = 10_000


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(samples_s: list[float]) -> dict:
    ms = sorted(s * 1000 for s in samples_s)
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": ms[-1] if ms else float("nan"),
        "mean_ms": sum(ms) / len(ms) if ms else float("nan"),
    }


def proc_status(pid: int) -> dict:
    """VmRSS and VmHWM (peak) of a process, in MB (MiB)."""
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024  # kB -> MiB
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float, float]:
    """(busy, idle, steal) jiffies of all CPUs together, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    steal = values[7] if len(values) > 7 else 0
    busy = sum(values[:8]) - idle - steal
    return busy, idle, steal


class Counter:
    """API requests sent to the cloud process (for the RSS-after-10k figure)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.value += n


# --------------------------------------------------------------------------
# the cloud process
# --------------------------------------------------------------------------


class CloudProcess:
    """`python -m cloud` as a child process; output goes to a log file."""

    def __init__(self, redis_url: str, token: str, max_queue_size: int, workdir: Path):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "cloud.log"
        env = dict(os.environ)
        for name in ("UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "DATABASE_URL"):
            env.pop(name, None)
        env.update(MODE="CLOUD", PHAROS_ADMIN_TOKEN=token, REDIS_URL=redis_url,
                   MAX_QUEUE_SIZE=str(max_queue_size), HOST="127.0.0.1",
                   PORT=str(self.port), DATA_DIR=str(workdir / "data"),
                   PYTHONUNBUFFERED="1")
        self._log = open(self.log_path, "wb")
        # own session: Ctrl-C reaches only this script, which stops the child itself
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cloud"], cwd=ROOT, env=env,
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_healthy(self, timeout: float = 30.0) -> float:
        """Seconds from spawn until /health answers 200 with the queue ok."""
        started = time.monotonic()
        deadline = started + timeout
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"cloud process exited with {self.proc.returncode}:\n"
                                       f"{self.log_tail()}")
                try:
                    r = client.get("/health")
                    if r.status_code == 200 and r.json()["status"] == "ok":
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"cloud process not healthy after {timeout} s:\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"cloud process died (exit {self.proc.returncode}):\n"
                               f"{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # uvicorn drains, then exits
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# --------------------------------------------------------------------------
# phases
# --------------------------------------------------------------------------


def check_ingest(r: httpx.Response) -> None:
    if r.status_code != 200 or r.json().get("status") != "dispatched":
        raise RuntimeError(f"ingest answered {r.status_code}: {r.text[:300]}")


def sequential_ingest(client: httpx.Client, n: int, warmup: int, tag: str,
                      sent: Counter) -> list[float]:
    for i in range(warmup):
        check_ingest(client.post(INGEST.format(name=f"warm-{tag}-{i}")))
        sent.add()
    samples = []
    for i in range(n):
        url = INGEST.format(name=f"repo-{i}")
        t0 = time.perf_counter()
        r = client.post(url)
        samples.append(time.perf_counter() - t0)
        sent.add()
        check_ingest(r)
    return samples


def sequential_get(client: httpx.Client, path: str, n: int, warmup: int,
                   sent: Counter) -> list[float]:
    for _ in range(warmup):
        client.get(path).raise_for_status()
        sent.add()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path)
        samples.append(time.perf_counter() - t0)
        sent.add()
        r.raise_for_status()
    return samples


def raw_redis(url: str, n: int, warmup: int) -> dict:
    """PING and EVALSHA of a trivial script, redis-py, one connection."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        sha = client.script_load("return 1")
        out = {}
        for name, call in (("ping", client.ping),
                           ("evalsha", lambda: client.evalsha(sha, 0))):
            for _ in range(warmup):
                call()
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                call()
                samples.append(time.perf_counter() - t0)
            out[name] = summarize(samples)
        return out
    finally:
        client.close()


def direct_enqueue(url: str, n: int, warmup: int) -> dict:
    """RedisQueue.enqueue() in this process: the queue layer (job model, ENQUEUE
    Lua script, reply parsing) without HTTP, on the app's own transport."""
    from shared.queue import Lease
    from shared.queue.redis import RedisQueue
    from shared.queue.transports import RedisProtocol

    queue = RedisQueue(RedisProtocol(url), max_queue_size=10 ** 9, task_ttl=86_400,
                       lease=Lease())
    try:
        for i in range(warmup):
            queue.enqueue(f"https://github.com/bench/direct-warm-{i}")
        samples = []
        for i in range(n):
            t0 = time.perf_counter()
            queue.enqueue(f"https://github.com/bench/direct-{i}")
            samples.append(time.perf_counter() - t0)
        return summarize(samples)
    finally:
        queue.close()


def load_phase(base_url: str, headers: dict, total: int, concurrency: int,
               cap_s: float, sent: Counter, server_pid: int, redis_pid: int) -> dict:
    """`concurrency` threads, each with its own keep-alive client, share `total`
    ingest requests; all stop at `cap_s` seconds whatever is left."""
    lock = threading.Lock()
    next_index = [0]
    latencies: list[float] = []
    errors: list[str] = []
    done = [0]
    start_gate = threading.Barrier(concurrency + 1)

    def take() -> int | None:
        with lock:
            if next_index[0] >= total:
                return None
            next_index[0] += 1
            return next_index[0] - 1

    def worker() -> None:
        mine: list[float] = []
        ok = 0
        with httpx.Client(base_url=base_url, headers=headers, timeout=10.0) as client:
            # open the connection before the clock starts
            try:
                client.get("/health")
            except httpx.HTTPError:
                pass
            try:
                start_gate.wait(timeout=60)
            except threading.BrokenBarrierError:
                return
            while time.perf_counter() < deadline[0]:
                i = take()
                if i is None:
                    break
                t0 = time.perf_counter()
                try:
                    r = client.post(INGEST.format(name=f"load-{i}"))
                    mine.append(time.perf_counter() - t0)
                    if r.status_code == 200:
                        ok += 1
                    else:
                        with lock:
                            errors.append(f"HTTP {r.status_code}")
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                sent.add()
        with lock:
            latencies.extend(mine)
            done[0] += ok

    deadline = [float("inf")]
    threads = [threading.Thread(target=worker, name=f"load-{i}", daemon=True)
               for i in range(concurrency)]
    for t in threads:
        t.start()
    sent.add(concurrency)  # the connection-opening /health calls
    cpu_server0, cpu_redis0 = cpu_seconds(server_pid), cpu_seconds(redis_pid)
    cpu_self0 = time.process_time()
    machine0 = machine_cpu()
    t_start = time.perf_counter()
    deadline[0] = t_start + cap_s
    start_gate.wait(timeout=60)
    for t in threads:
        t.join(timeout=cap_s + 30)
    elapsed = time.perf_counter() - t_start
    machine1 = machine_cpu()
    busy, idle, steal = (b - a for a, b in zip(machine0, machine1))
    jiffies = busy + idle + steal
    cpu = {
        "cloud_cpu_s": cpu_seconds(server_pid) - cpu_server0,
        "redis_cpu_s": cpu_seconds(redis_pid) - cpu_redis0,
        "bench_client_cpu_s": time.process_time() - cpu_self0,
        # all processes on the machine, other tenants included: 1.0 = every core busy
        "machine_busy_frac": busy / jiffies if jiffies else float("nan"),
        "machine_steal_frac": steal / jiffies if jiffies else float("nan"),
    }
    attempted = len(latencies) + sum(1 for e in errors if not e.startswith("HTTP"))
    return {
        "concurrency": concurrency,
        "requested": total,
        "attempted": attempted,
        "ok": done[0],
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "elapsed_s": elapsed,
        "capped": elapsed >= cap_s,
        "req_per_s": done[0] / elapsed if elapsed > 0 else float("nan"),
        "latency": summarize(latencies),
        **cpu,
        "cloud_cpu_util": cpu["cloud_cpu_s"] / elapsed if elapsed > 0 else float("nan"),
    }


def mixed_phase(client: httpx.Client, n: int, sent: Counter) -> dict:
    """Round-robin ingest, worker status, overview, history; counts and timings."""
    kinds = [
        ("ingest", lambda i: client.post(INGEST.format(name=f"mixed-{i}"))),
        ("worker_status", lambda i: client.get(PREFIX + "/worker/status")),
        ("overview", lambda i: client.get(PREFIX + "/overview")),
        ("history", lambda i: client.get(PREFIX + "/jobs/history?limit=10")),
    ]
    samples: dict[str, list[float]] = {name: [] for name, _ in kinds}
    errors = 0
    for i in range(n):
        name, call = kinds[i % len(kinds)]
        t0 = time.perf_counter()
        r = call(i)
        samples[name].append(time.perf_counter() - t0)
        sent.add()
        if r.status_code != 200:
            errors += 1
    return {"n": n, "errors": errors,
            "per_kind": {name: summarize(s) for name, s in samples.items() if s}}


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def machine_info(redis_url: str) -> dict:
    info = {"nproc": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        info["redis_server"] = client.info("server")["redis_version"]
    finally:
        client.close()
    info["redis_py"] = redis.__version__
    info["httpx"] = httpx.__version__
    for mod in ("starlette", "uvicorn"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - informational only
            pass
    for mod in ("uvloop", "httptools"):
        try:
            __import__(mod)
            info[mod] = True
        except ImportError:
            info[mod] = False
    return info


def print_summary(res: dict) -> None:
    def row(label: str, s: dict, extra: str = "") -> str:
        return (f"  {label:<34} {s['p50_ms']:8.3f} {s['p90_ms']:8.3f} {s['p99_ms']:8.3f} "
                f"{s['max_ms']:9.3f}  {extra}")

    lat = res["latency"]
    print()
    print("=" * 86)
    print(f"Control plane benchmark  ({res['started_at']}, {res['machine']['nproc']} cpus, "
          f"python {res['machine']['python']}, redis {res['machine']['redis_server']})")
    print("=" * 86)
    print(f"  {'sequential, one keep-alive client':<34} {'p50 ms':>8} {'p90 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>9}")
    ing = lat["ingest"]
    verdict = "PASS" if ing["p99_ms"] < TARGET_P99_MS else "MISS"
    print(row(f"POST ingest (n={ing['n']})", ing,
              f"target p99 < {TARGET_P99_MS:g} ms: {verdict}"))
    print(row("GET /health (HTTP + PING)", lat["health"]))
    print(row("RedisQueue.enqueue() in-process", lat["direct_enqueue"]))
    print(row("redis-py PING", lat["redis_ping"]))
    print(row("redis-py EVALSHA 'return 1'", lat["redis_evalsha"]))
    print(f"  ratio ingest p99 / PING p99    = {res['ratios']['ingest_p99_over_ping_p99']:.1f}x")
    print(f"  ratio ingest p99 / EVALSHA p99 = "
          f"{res['ratios']['ingest_p99_over_evalsha_p99']:.1f}x")
    ld = res["load"]
    print("-" * 86)
    print(f"  load: {ld['concurrency']} concurrent clients, {ld['attempted']}/{ld['requested']} "
          f"requests in {ld['elapsed_s']:.2f} s{' (CAPPED)' if ld['capped'] else ''}")
    print(f"    {ld['req_per_s']:.0f} req/s, {ld['errors']} errors; latency p50 "
          f"{ld['latency']['p50_ms']:.2f} / p99 {ld['latency']['p99_ms']:.2f} ms")
    print(f"    CPU during load: cloud {ld['cloud_cpu_s']:.2f} s "
          f"({100 * ld['cloud_cpu_util']:.0f}% of one core), redis {ld['redis_cpu_s']:.2f} s, "
          f"bench client {ld['bench_client_cpu_s']:.2f} s")
    print(f"    machine ({res['machine']['nproc']} cpus, all processes): "
          f"{100 * ld['machine_busy_frac']:.0f}% busy, "
          f"{100 * ld['machine_steal_frac']:.0f}% stolen by the hypervisor")
    mx = res["mixed"]
    print("-" * 86)
    print(f"  mixed phase: {mx['n']} requests, {mx['errors']} errors")
    for name, s in mx["per_kind"].items():
        print(row(f"  {name}", s))
    rss = res["rss"]
    print("-" * 86)
    verdict = "PASS" if rss["after_mb"] < TARGET_RSS_MB else "MISS"
    print(f"  cloud RSS: {rss['start_mb']:.1f} MB after start, {rss['after_mb']:.1f} MB after "
          f"{rss['requests']} API requests (peak {rss['peak_mb']:.1f} MB); "
          f"target < {TARGET_RSS_MB:g} MB: {verdict}")
    print(f"  wall time: {res['wall_s']:.1f} s")
    print("=" * 86)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000,
                   help="sequential ingest requests timed (default 2000); also the "
                        "number of raw Redis round trips")
    p.add_argument("--warmup", type=int, default=50, help="uncounted warm-up requests (50)")
    p.add_argument("--concurrency", type=int, default=8, help="clients in the load phase (8)")
    p.add_argument("--load-requests", type=int, default=5000,
                   help="total requests of the load phase (5000)")
    p.add_argument("--load-cap", type=float, default=60.0,
                   help="wall-clock cap of the load phase in seconds (60)")
    p.add_argument("--rss-total", type=int, default=TOTAL_FOR_RSS,
                   help="API requests sent in all before the second RSS reading (10000)")
    p.add_argument("--json", type=Path, default=None, help="also write results here")
    return p.parse_args(argv)


def _sigterm(signum, frame):  # turn SIGTERM into the same clean-up path as Ctrl-C
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in background
    wall0 = time.perf_counter()
    started_at = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    token = secrets.token_urlsafe(32)
    headers = {"Authorization": f"Bearer {token}"}
    sent = Counter()
    redis_server = cloud = None
    workdir = tempfile.TemporaryDirectory(prefix="bench-cloud-")
    try:
        redis_server = RedisServer()
        flusher = redis.Redis.from_url(redis_server.url)
        redis_pid = int(flusher.info("server")["process_id"])
        print(f"redis-server on {redis_server.url} (pid {redis_pid})", flush=True)

        cloud = CloudProcess(redis_server.url, token, max_queue_size=100_000,
                             workdir=Path(workdir.name))
        startup_s = cloud.wait_healthy()
        rss_start = proc_status(cloud.pid)
        print(f"cloud pid {cloud.pid} on {cloud.base_url}: healthy after {startup_s:.2f} s, "
              f"RSS {rss_start['VmRSS']:.1f} MB", flush=True)

        client = httpx.Client(base_url=cloud.base_url, headers=headers, timeout=10.0)
        latency = {}
        try:
            print(f"phase 1: {args.requests} sequential ingests (+{args.warmup} warm-up)",
                  flush=True)
            latency["ingest"] = summarize(
                sequential_ingest(client, args.requests, args.warmup, "seq", sent))
            flusher.flushdb()
            print("phase 2: floors (GET /health, in-process enqueue, raw PING/EVALSHA)",
                  flush=True)
            latency["health"] = summarize(
                sequential_get(client, "/health", args.requests, args.warmup, sent))
            latency["direct_enqueue"] = direct_enqueue(redis_server.url, args.requests,
                                                       args.warmup)
            flusher.flushdb()
            raw = raw_redis(redis_server.url, args.requests, args.warmup)
            latency["redis_ping"], latency["redis_evalsha"] = raw["ping"], raw["evalsha"]
            cloud.check_alive()

            print(f"phase 3: load, {args.concurrency} clients, {args.load_requests} requests, "
                  f"cap {args.load_cap:g} s", flush=True)
            load = load_phase(cloud.base_url, headers, args.load_requests, args.concurrency,
                              args.load_cap, sent, cloud.pid, redis_pid)
            flusher.flushdb()
            cloud.check_alive()

            remaining = max(0, args.rss_total - sent.value)
            print(f"phase 4: {remaining} mixed requests (to {args.rss_total} API requests "
                  f"in all)", flush=True)
            mixed = mixed_phase(client, remaining, sent)
            flusher.flushdb()
            cloud.check_alive()
            rss_after = proc_status(cloud.pid)
        finally:
            client.close()
            flusher.close()

        results = {
            "started_at": started_at,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": machine_info(redis_server.url),
            "cloud_startup_s": startup_s,
            "latency": latency,
            "ratios": {
                "ingest_p99_over_ping_p99":
                    latency["ingest"]["p99_ms"] / latency["redis_ping"]["p99_ms"],
                "ingest_p99_over_evalsha_p99":
                    latency["ingest"]["p99_ms"] / latency["redis_evalsha"]["p99_ms"],
                "ingest_p50_over_ping_p50":
                    latency["ingest"]["p50_ms"] / latency["redis_ping"]["p50_ms"],
            },
            "load": load,
            "mixed": mixed,
            "rss": {"start_mb": rss_start["VmRSS"], "after_mb": rss_after["VmRSS"],
                    "peak_mb": rss_after["VmHWM"], "requests": sent.value},
            "targets": {"ingest_p99_ms": TARGET_P99_MS,
                        "original_ingest_p99_ms": ORIGINAL_TARGET_P99_MS,
                        "rss_mb": TARGET_RSS_MB},
            "wall_s": time.perf_counter() - wall0,
        }
        print_summary(results)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n")
            print(f"results written to {args.json}")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the cloud process and redis-server", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if cloud is not None:
            cloud.stop()
        if redis_server is not None:
            redis_server.stop()
        workdir.cleanup()


if __name__ == "__main__":
    sys.exit(main())
