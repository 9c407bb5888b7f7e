"""Where an ingest request's time goes: an ablation ladder, then pyinstrument.

Everything runs against a real redis-server (tests.servers.RedisServer). Each
server runs in this process's main thread (uvicorn, as `python -m cloud` runs
it: h11, logging at INFO to a file, the access-log redaction filter); a
separate client process sends sequential requests over one keep-alive
httpx.Client and reports p50/p99.

1. Ladder (no profiler, so no distortion), each rung adds one layer:
   bare async Starlette route -> bare sync route (thread-pool hop) ->
   the real app's GET /health (auth-free, one PING) -> the real ingest with
   the access log off -> the real ingest with the access log on.
   Plus the in-process floors: redis-py PING and RedisQueue.enqueue().
2. pyinstrument profile of the server's event-loop thread during sequential
   ingests (pyinstrument samples only the thread it starts on; its per-call
   hook also slows call-heavy code, so read proportions, not absolute times).
3. pyinstrument profile of what the handler does on its thread-pool thread
   (normalize_repo_url, RedisQueue.enqueue, JSONResponse), called in a loop.

Needs pyinstrument (`.venv/bin/pip install pyinstrument`); `--no-profile`
runs only the ladder.

    cd /work/main && .venv/bin/python bench/profile_ingest.py [--requests 2000]
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.servers import RedisServer, free_port  # noqa: E402

INGEST = "/api/v1/ingestion/ingest/https://github.com/bench/{name}"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(1, math.ceil(p / 100 * len(s))) - 1]


# --------------------------------------------------------------------------
# the client process
# --------------------------------------------------------------------------


def client_main(base_url: str, token: str, method: str, path: str, n: int) -> int:
    """Child process: wait for the server, 50 warm-up requests, then n timed ones;
    prints {"n", "p50_ms", "p99_ms", "mean_ms"} as JSON on its last line."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10.0) as client:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.get("/ready").raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    return 1
                time.sleep(0.05)
        samples = []
        for i in range(-50, n):
            url = path.format(name=f"c-{i}")
            t0 = time.perf_counter()
            r = client.request(method, url)
            if i >= 0:
                samples.append(time.perf_counter() - t0)
            if r.status_code != 200:
                print(f"{method} {url} answered {r.status_code}: {r.text[:200]}",
                      file=sys.stderr)
                return 1
    ms = [1000 * s for s in samples]
    print(json.dumps({"n": n, "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99),
                      "mean_ms": sum(ms) / len(ms)}), flush=True)
    return 0


# --------------------------------------------------------------------------
# the server side
# --------------------------------------------------------------------------


def with_ready_route(app):
    """Add GET /ready (async, no auth) so the client can wait without touching
    the measured path."""
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def ready(request):
        return PlainTextResponse("ok")

    app.router.routes.insert(0, Route("/ready", ready, methods=["GET"]))
    return app


def serve_once(app, token: str, method: str, path: str, n: int, *, access_log: bool,
               profiler=None) -> dict:
    """Serve `app` in this thread until a client process has sent its requests."""
    import uvicorn

    from cloud.__main__ import _RedactAccessLog

    port = free_port()
    with tempfile.NamedTemporaryFile("w", prefix="bench-cloud-", suffix=".log") as log_file:
        # what `python -m cloud` sets up, with the records going to a file
        logging.basicConfig(level=logging.INFO, stream=log_file, force=True,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        access = logging.getLogger("uvicorn.access")
        access.filters.clear()
        access.addFilter(_RedactAccessLog())
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                access_log=access_log, timeout_graceful_shutdown=2)
        server = uvicorn.Server(config)
        client = subprocess.Popen(
            [sys.executable, __file__, "--client", f"http://127.0.0.1:{port}", token,
             method, path, str(n)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        output: list[str] = []

        def stop_when_client_exits() -> None:
            output.append(client.stdout.read())
            client.wait()
            server.should_exit = True

        threading.Thread(target=stop_when_client_exits, daemon=True).start()
        if profiler is not None:
            profiler.start()
        try:
            server.run()
        finally:
            if profiler is not None:
                profiler.stop()
            if client.poll() is None:
                client.terminate()
                client.wait()
    if client.returncode != 0:
        raise RuntimeError(f"client process failed ({client.returncode})")
    return json.loads(output[0].strip().splitlines()[-1])


def bare_app(sync: bool):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    if sync:
        def hello(request):
            return JSONResponse({"status": "ok"})
    else:
        async def hello(request):
            return JSONResponse({"status": "ok"})
    return with_ready_route(Starlette(routes=[Route("/hello", hello, methods=["GET"])]))


def real_app(redis_url: str, token: str):
    from cloud.app import create_app
    from shared.settings import Mode, Settings

    settings = Settings(mode=Mode.CLOUD, admin_token=token, redis_url=redis_url,
                        max_queue_size=10 ** 6)
    return with_ready_route(create_app(settings))


def in_process_floors(redis_url: str, n: int) -> dict:
    import redis

    from shared.queue import open_queue
    from shared.settings import Mode, Settings

    out = {}
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    samples = []
    for i in range(-50, n):
        t0 = time.perf_counter()
        client.ping()
        if i >= 0:
            samples.append(1000 * (time.perf_counter() - t0))
    client.close()
    out["redis-py PING (in-process)"] = {"p50_ms": pct(samples, 50), "p99_ms": pct(samples, 99)}
    queue = open_queue(Settings(mode=Mode.CLOUD, admin_token="x", redis_url=redis_url,
                                max_queue_size=10 ** 6))
    samples = []
    for i in range(-50, n):
        t0 = time.perf_counter()
        queue.enqueue(f"https://github.com/bench/floor-{i}")
        if i >= 0:
            samples.append(1000 * (time.perf_counter() - t0))
    queue.close()
    out["RedisQueue.enqueue() (in-process)"] = {"p50_ms": pct(samples, 50),
                                                "p99_ms": pct(samples, 99)}
    return out


def ladder(redis_url: str, n: int) -> dict:
    token = secrets.token_urlsafe(32)
    rungs = {}
    rungs.update(in_process_floors(redis_url, n))
    rungs["bare async route, HTTP only"] = serve_once(
        bare_app(sync=False), token, "GET", "/hello", n, access_log=False)
    rungs["bare sync route (+ thread-pool hop)"] = serve_once(
        bare_app(sync=True), token, "GET", "/hello", n, access_log=False)
    rungs["app GET /health (+ PING, no auth)"] = serve_once(
        real_app(redis_url, token), token, "GET", "/health", n, access_log=False)
    rungs["app POST ingest, access log off"] = serve_once(
        real_app(redis_url, token), token, "POST", INGEST, n, access_log=False)
    rungs["app POST ingest, access log on"] = serve_once(
        real_app(redis_url, token), token, "POST", INGEST, n, access_log=True)
    return rungs


# --------------------------------------------------------------------------
# profiles
# --------------------------------------------------------------------------


def profile_server(redis_url: str, n: int, interval: float):
    from pyinstrument import Profiler

    token = secrets.token_urlsafe(32)
    profiler = Profiler(interval=interval, async_mode="disabled")
    result = serve_once(real_app(redis_url, token), token, "POST", INGEST, n,
                        access_log=True, profiler=profiler)
    return profiler, result


def profile_handler(redis_url: str, n: int, interval: float):
    from pyinstrument import Profiler
    from starlette.responses import JSONResponse

    from shared.queue import open_queue
    from shared.repo_url import normalize_repo_url
    from shared.settings import Mode, Settings

    queue = open_queue(Settings(mode=Mode.CLOUD, admin_token="x", redis_url=redis_url,
                                max_queue_size=10 ** 6))
    try:
        def one(i: int) -> None:
            target = normalize_repo_url(f"https://github.com/bench/handler-{i}")
            e = queue.enqueue(target)
            JSONResponse({"status": "dispatched", "job_id": e.job.id,
                          "duplicate": not e.created, "queue_position": e.position,
                          "queue_size": e.queue_size, "max_queue_size": queue.max_queue_size,
                          "target": target})

        for i in range(50):
            one(-1 - i)
        profiler = Profiler(interval=interval, async_mode="disabled")
        profiler.start()
        t0 = time.perf_counter()
        for i in range(n):
            one(i)
        elapsed = time.perf_counter() - t0
        profiler.stop()
        return profiler, {"n": n, "mean_ms": 1000 * elapsed / n}
    finally:
        queue.close()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        _, _, base_url, token, method, path, n = sys.argv
        return client_main(base_url, token, method, path, int(n))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="timed requests per rung (2000)")
    p.add_argument("--interval", type=float, default=0.001, help="sampling interval (s)")
    p.add_argument("--no-profile", action="store_true", help="only the ladder")
    p.add_argument("--show-all", action="store_true", help="do not hide library frames")
    p.add_argument("--flat", type=int, default=30, metavar="N",
                   help="also list the N functions with the most self time (30; 0: off)")
    p.add_argument("--html", type=Path, default=None, help="also write HTML profiles here")
    args = p.parse_args()

    redis_server = RedisServer()
    try:
        rungs = ladder(redis_url=redis_server.url, n=args.requests)
        print(f"\nsequential latency, {args.requests} requests per rung, one keep-alive "
              f"client in another process")
        print(f"  {'rung':<40} {'p50 ms':>8} {'p99 ms':>8}")
        for name, r in rungs.items():
            print(f"  {name:<40} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f}")
        if args.no_profile:
            return 0
        redis_server.stop()
        redis_server.start()  # empty again
        server_prof, server_res = profile_server(redis_server.url, args.requests, args.interval)
        handler_prof, handler_res = profile_handler(redis_server.url, args.requests,
                                                    args.interval)
    finally:
        redis_server.stop()
    for name, prof, res in (("server (event-loop thread)", server_prof, server_res),
                            ("handler (thread-pool side)", handler_prof, handler_res)):
        print(f"\n===== {name}: mean {res['mean_ms']:.3f} ms per request under the "
              f"profiler =====")
        print(prof.output_text(unicode=False, color=False, show_all=args.show_all))
        if args.flat:
            from pyinstrument.renderers import ConsoleRenderer

            flat = prof.output(ConsoleRenderer(flat=True, show_all=True, time="percent_of_total"))
            lines = [line for line in flat.splitlines() if line.strip()]
            body = [line for line in lines if "%" in line][:args.flat]
            print(f"--- {name}: top {len(body)} functions by self time ---")
            print("\n".join(body))
        if args.html:
            args.html.mkdir(parents=True, exist_ok=True)
            (args.html / f"{name.split()[0]}.html").write_text(prof.output_html())
    return 0


if __name__ == "__main__":
    sys.exit(main())
