"""Shared pytest fixtures.

Tests talk to real components (no fakes, no mocks); the servers themselves
live in tests/servers.py so that benchmarks can reuse them without pytest.
Add new fixtures in a section of their own below.
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest
import redis
from hypothesis import settings

from tests.queues import BACKENDS, make_queue
from tests.servers import PostgresServer, RedisServer, UpstashRestServer

# ---------------------------------------------------------------------------
# Hypothesis
# ---------------------------------------------------------------------------

# Examples hit real servers, whose latency varies too much for a deadline.
settings.register_profile("default", deadline=None)
settings.load_profile("default")


# ---------------------------------------------------------------------------
# Redis (a real redis-server on loopback)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session; tests may stop()/start() it."""
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session Redis, running and empty for this test."""
    # An earlier test may have stopped it to check client recovery.
    redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


# ---------------------------------------------------------------------------
# Upstash REST (emulator in front of the session Redis)
# ---------------------------------------------------------------------------


@pytest.fixture
def upstash_server(redis_url: str) -> Iterator[UpstashRestServer]:
    """Upstash REST emulator over an empty Redis, counters at zero."""
    server = UpstashRestServer(redis_url)
    server.reset_counts()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------
# Queues: one contract, every backend
# ---------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def new_queue(backend: str, tmp_path, request: pytest.FixtureRequest):
    """Factory of isolated queues on `backend` (each call: fresh file or key prefix)."""
    needs_redis = backend in ("redis", "upstash")
    redis_url = request.getfixturevalue("redis_url") if needs_redis else ""
    upstash = request.getfixturevalue("upstash_server") if backend == "upstash" else None
    made = []

    def factory(**options):
        queue = make_queue(backend, tmp_path=tmp_path, redis_url=redis_url, upstash=upstash,
                           **options)
        made.append(queue)
        return queue

    yield factory
    for queue in made:
        queue.close()


# ---------------------------------------------------------------------------
# PostgreSQL (a real server on loopback, its own cluster in a temp dir)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL for the whole session, removed at its end."""
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a database of its own for this test, dropped after it."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url_for(name)
    finally:
        postgres_server.drop_database(name)


# ---------------------------------------------------------------------------
# Chromium (Debian's, headless; one sync Playwright per thread, so one per session)
# ---------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    """The session's headless Chromium, shared by every page test module."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package chromium "
                    "(apt-get install chromium); these tests never download a browser",
                    pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
