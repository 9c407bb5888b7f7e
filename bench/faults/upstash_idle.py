"""What an idle worker costs on Upstash: its commands counted over real minutes.

A real worker process (`python -m edge worker`, MODE=EDGE, the product's defaults:
IDLE_POLL_SECONDS=60) polls an empty queue through the Upstash REST stand-in
(tests/servers.py: Upstash's REST protocol in front of a real redis-server, counting
every command it runs). After MINUTES, the count is scaled to a month and set against
Upstash's free quota of 500,000 commands a month.

    .venv/bin/python bench/faults/upstash_idle.py [--minutes 10]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.servers import RedisServer, UpstashRestServer  # noqa: E402

FREE_QUOTA = 500_000  # commands a month
MONTH_MINUTES = 30 * 24 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    server = RedisServer()
    upstash = UpstashRestServer(server.url)
    scratch = tempfile.TemporaryDirectory()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL",
                                                            "QDRANT_URL", "IDLE_POLL_SECONDS")}
    env.update(MODE="EDGE", UPSTASH_REDIS_REST_URL=upstash.url,
               UPSTASH_REDIS_REST_TOKEN=upstash.token, DATA_DIR=scratch.name,
               WORKER_ID="idle", DEVICE="cpu", PYTHONPATH=str(ROOT))
    worker = subprocess.Popen([sys.executable, "-m", "edge", "worker"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(15)  # start-up (imports, the first poll) is not idling
        upstash.reset_counts()
        started = time.monotonic()
        time.sleep(args.minutes * 60)
        minutes = (time.monotonic() - started) / 60
        commands, requests = upstash.commands, upstash.requests
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(90)
        upstash.stop()
        server.stop()
        scratch.cleanup()
    per_month = commands / minutes * MONTH_MINUTES
    report = {"date": time.strftime("%Y-%m-%d"), "minutes": round(minutes, 2),
              "commands": commands, "requests": requests,
              "commands_per_day": round(commands / minutes * 1440),
              "share_of_free_quota": round(per_month / FREE_QUOTA, 4)}
    (ROOT / "bench" / "results" / "upstash-idle.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
