"""Does a 401 tell an unknown API key from a revoked one by its time?

    .venv/bin/python bench/auth_timing.py [--rounds N] [--postgres URL]

The real app (SQLite queue, SQLite graph store unless --postgres) behind a real
uvicorn on loopback; N rounds, each sending, in random order, one request with an
unknown key, one with a revoked key and one with a live key (GET /api/v1/accounts/me).
Prints the median and p90 latency of each and the ratio revoked / unknown. Loopback is
never slowed by the failure throttle, so the figures are the lookup's own.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from cloud.query import QueryService  # noqa: E402
from shared.graph.store import PostgresGraphStore, SqliteGraphStore  # noqa: E402
from shared.queue.sqlite import SqliteQueue  # noqa: E402
from shared.settings import Settings  # noqa: E402
from tests.mcp_client import ServedApp  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        store = (PostgresGraphStore(args.postgres) if args.postgres
                 else SqliteGraphStore(Path(scratch) / "graph.db"))
        account = store.create_account("bench", "b@example.org")
        _, live = store.create_key(account.id, "live", ["read"])
        revoked_key, revoked = store.create_key(account.id, "revoked", ["read"])
        store.revoke_key(revoked_key.id)
        unknown = "na_live_" + "Q" * 43
        queue = SqliteQueue(Path(scratch) / "queue.db")
        query = QueryService(lambda: store, lambda: None, lambda: None)
        served = ServedApp(lambda port: Settings(admin_token="bench-admin", port=port),
                           queue, query)
        times: dict[str, list[float]] = {"unknown": [], "revoked": [], "live": []}
        try:
            with httpx.Client(base_url=served.url) as client:
                kinds = [("unknown", unknown), ("revoked", revoked), ("live", live)]
                for _ in range(20):  # warm-up
                    for _, secret in kinds:
                        client.get("/api/v1/accounts/me",
                                   headers={"Authorization": f"Bearer {secret}"})
                for _ in range(args.rounds):
                    random.shuffle(kinds)
                    for name, secret in kinds:
                        started = time.perf_counter()
                        answer = client.get("/api/v1/accounts/me",
                                            headers={"Authorization": f"Bearer {secret}"})
                        times[name].append(time.perf_counter() - started)
                        assert answer.status_code == (200 if name == "live" else 401)
        finally:
            served.stop()
            queue.close()
            store.close()
    for name, values in times.items():
        values.sort()
        print(f"{name:8} median {1000 * statistics.median(values):6.2f} ms   "
              f"p90 {1000 * values[int(0.9 * len(values))]:6.2f} ms")
    ratio = statistics.median(times["revoked"]) / statistics.median(times["unknown"])
    print(f"revoked / unknown (medians): {ratio:.3f}")


if __name__ == "__main__":
    main()
