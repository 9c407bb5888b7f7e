"""The page's "Tracked repositories" panel (cloud/static/index.html, Repositories tab)
in a real headless Chromium.

Everything is real: the control plane app under uvicorn on loopback, a SQLite queue,
a SQLite graph store (the repository registry), Qdrant local mode, and Debian's
chromium driven by Playwright. Repositories are registered through the API
(POST /api/v1/repos) or the store, their states set the way the worker sets them
(`set_repo_state`). The page's requests reach the app unchanged; one test holds a
sync request back for a moment (page.route, then continued as it was) to see the
buttons while it runs.
The browser, the live server and sign-in come from tests/test_status_page.py.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from cloud.app import create_app
from cloud.query import QueryService
from shared.graph.store import SqliteGraphStore
from shared.graph.store.registry import RepoState
from shared.queue.sqlite import SqliteQueue
from shared.settings import Settings
from shared.vectors import VectorStore
from tests.test_graph_store import import_graph
from tests.test_status_page import (  # noqa: F401 - page is a fixture used here
    TOKEN,
    WAIT_MS,
    LiveServer,
    page,
    sign_in,
)

SCREENSHOTS = Path("/tmp")
QUEUED = "https://github.com/octo/widgets"
READY = "https://github.com/octo/gadgets"
STALE = "https://gitlab.com/team/tools"
FAILED = "https://github.com/octo/broken"
COMMIT = "0e322af87745eff34caffe4df68456ebc20d9068"
NEWER = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
REASON = "clone failed: <b class=evil>repository not found</b>"


@dataclass
class World:
    store: SqliteGraphStore
    queue: SqliteQueue
    http: httpx.Client


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[SqliteGraphStore, VectorStore, SqliteQueue]]:
    store = SqliteGraphStore(tmp_path / "graph.sqlite3")
    vectors = VectorStore(path=tmp_path / "qdrant")
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    yield store, vectors, queue
    queue.close()
    vectors.close()
    store.close()


@pytest.fixture
def server(stores, tmp_path: Path) -> Iterator[LiveServer]:
    """Overrides test_status_page's `server` for its `page` fixture: this app lists the
    registry of a graph store of its own."""
    store, vectors, queue = stores
    service = QueryService(lambda: store, lambda: vectors, lambda: None, owns_stores=False)
    live = LiveServer(create_app(Settings(admin_token=TOKEN, data_dir=tmp_path / "cp"),
                                 queue=queue, query=service))
    live.start()
    yield live
    live.stop()
    service.close()


@pytest.fixture
def world(stores, server: LiveServer) -> Iterator[World]:
    store, _, queue = stores
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"},
                      trust_env=False, timeout=30) as client:
        yield World(store, queue, client)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def register(world: World, url: str) -> dict:
    """Through the API, as a user would: the record, with its first ingest queued."""
    answer = world.http.post("/api/v1/repos", json={"url": url})
    assert answer.status_code == 201, answer.text
    return answer.json()["repo"]


def indexed(store: SqliteGraphStore, url: str, remote: str = COMMIT,
            ago: float = 180) -> None:
    """A ready snapshot of `url` at COMMIT on main, synced `ago` seconds back, its
    remote seen at `remote`: what a worker leaves behind."""
    snapshot = store.write_snapshot(import_graph([("app/a.py", "app/b.py")], commit=COMMIT,
                                                 repo=url))
    clock = store.clock
    store.clock = lambda: time.time() - ago
    try:
        store.set_repo_state(url, RepoState.READY, branch="main", commit=COMMIT,
                             snapshot_id=snapshot.id, remote_commit=remote,
                             default_branch="main")
    finally:
        store.clock = clock


def open_repos(page: Page) -> None:
    page.click('#tabs a[data-tab="repos"]')
    expect(page.locator("#repos-view")).to_be_visible()
    expect(page.locator("#dashboard")).to_be_hidden()


def row(page: Page, url: str):
    return page.locator(f'#tracked tr[data-url="{url}"]')


def sync_answer(page: Page, action):
    with page.expect_response(lambda r: re.search(r"/api/v1/repos/\d+/sync$", r.url) is not None,
                              timeout=WAIT_MS) as answer:
        action()
    return answer.value


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_the_panel_lists_every_repository_with_state_commit_and_last_sync(
        page: Page, world: World):
    register(world, QUEUED)
    register(world, READY)
    indexed(world.store, READY)
    register(world, STALE)
    indexed(world.store, STALE, remote=NEWER, ago=7200)
    register(world, FAILED)
    world.store.set_repo_state(FAILED, RepoState.FAILED, REASON)
    listed = world.http.get("/api/v1/repos").json()["repos"]

    sign_in(page)
    open_repos(page)
    rows = page.locator("#tracked tbody tr")
    expect(rows).to_have_count(4, timeout=WAIT_MS)
    assert [r.get_attribute("data-url") for r in rows.all()] == [r["url"] for r in listed]
    expect(page.locator("#tracked-count")).to_have_text("4 registered")

    queued = row(page, QUEUED)
    expect(queued.locator('[data-field="name"]')).to_have_text("github.com/octo/widgets")
    expect(queued.locator('.badge[data-field="state"]')).to_have_text("queued")
    expect(queued.locator('[data-field="commit"]')).to_have_text("none yet")
    expect(queued.locator('[data-field="synced"]')).to_have_text("never")
    expect(queued.get_by_role("button", name="Sync")).to_be_enabled()
    expect(queued.get_by_role("button", name="Rebuild")).to_be_enabled()

    ready = row(page, READY)
    record = next(r for r in listed if r["url"] == READY)
    expect(ready.locator('.badge[data-field="state"]')).to_have_text("ready")
    expect(ready.locator('.badge[data-state="stale"]')).to_have_count(0)
    expect(ready.locator('[data-field="commit"]')).to_have_text(f"{COMMIT[:7]} on main")
    expect(ready.locator('[data-field="commit"] code')).to_have_attribute("title", COMMIT)
    synced = ready.locator('[data-field="synced"]')
    expect(synced).to_have_text("3 min ago")
    expect(synced).to_have_attribute("title", re.compile(r"\d"))
    expect(ready.locator('[data-field="files"]')).to_have_text(str(record["files"]))
    expect(ready.locator('[data-field="chunks"]')).to_have_text(str(record["chunks"]))
    assert record["files"] == 2

    stale = row(page, STALE)
    expect(stale.locator('.badge[data-state="stale"]')).to_have_text("stale")
    expect(stale.locator('[data-field="remote"]')).to_have_text(f"remote at {NEWER[:7]}")
    expect(stale.locator('[data-field="remote"]')).to_have_attribute("title", re.compile(NEWER))
    expect(stale.locator('[data-field="synced"]')).to_have_text("2 h 0 min ago")

    failed = row(page, FAILED)
    badge = failed.locator('.badge[data-field="state"]')
    expect(badge).to_have_text("failed")
    expect(badge).to_have_attribute("title", REASON)
    expect(failed.locator('[data-field="reason"]')).to_have_text(REASON)
    expect(failed.locator('[data-field="reason"]')).to_be_visible()
    assert page.locator("#tracked b, #tracked .evil").count() == 0  # shown as text
    page.screenshot(path=str(SCREENSHOTS / "repos_page_tracked.png"), full_page=True)
    # a phone-width screen: one card per repository, nothing scrolls sideways
    page.set_viewport_size({"width": 390, "height": 844})
    expect(failed.get_by_role("button", name="Rebuild")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(SCREENSHOTS / "repos_page_phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    # the name of an indexed repository opens it in the panel below
    ready.get_by_role("button", name="github.com/octo/gadgets").click()
    expect(page.locator("#repos-repo")).to_have_value(READY)
    expect(page.locator('#repo-summary [data-field="commit"]')).to_contain_text(COMMIT[:7])


def test_the_list_refreshes_when_the_tab_is_shown_and_goes_on_sign_out(
        page: Page, world: World):
    register(world, QUEUED)
    sign_in(page)
    open_repos(page)
    expect(page.locator("#tracked tbody tr")).to_have_count(1, timeout=WAIT_MS)
    register(world, READY)
    page.click('#tabs a[data-tab="search"]')
    with page.expect_response(lambda r: r.url.endswith("/api/v1/repos")):
        open_repos(page)
    expect(page.locator("#tracked tbody tr")).to_have_count(2, timeout=WAIT_MS)
    page.click("#signout")
    expect(page.locator("#token")).to_be_visible()
    assert page.locator("#tracked tbody tr").count() == 0


def test_sync_queues_a_job_and_the_row_says_queued(page: Page, world: World):
    record, _ = world.store.register(READY)  # registered, nothing queued yet
    indexed(world.store, READY)
    assert world.queue.pending_count() == 0
    sign_in(page)
    open_repos(page)
    line = row(page, READY)
    expect(line.locator('.badge[data-field="state"]')).to_have_text("ready", timeout=WAIT_MS)
    button = line.get_by_role("button", name="Sync")

    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r) if "/sync" in r.url else None)
    answer = sync_answer(page, button.click)
    assert answer.status == 202, answer.text()
    assert answer.request.url.endswith(f"/api/v1/repos/{record.id}/sync")
    assert answer.request.post_data_json == {}
    body = answer.json()
    assert body["force"] is False and not body["duplicate"]
    assert world.queue.pending_count() == 1
    assert world.store.take_force(READY) is False

    note = line.locator('[data-field="sync-note"]')
    expect(note).to_have_text(f"Sync queued as job {body['job_id'][:8]}, position 1 of 1")
    expect(note).to_have_attribute("data-kind", "ok")
    # the list is read again: the registry says queued now
    expect(line.locator('.badge[data-field="state"]')).to_have_text("queued", timeout=WAIT_MS)
    expect(button).to_be_enabled()
    assert len(requests) == 1

    # a second sync merges into the queued job
    again = sync_answer(page, button.click).json()
    assert again["duplicate"] and again["job_id"] == body["job_id"]
    expect(note).to_contain_text(f"Sync queued: merged into job {body['job_id'][:8]}")
    assert world.queue.pending_count() == 1


def test_the_sync_button_is_disabled_while_its_request_runs(page: Page, world: World):
    world.store.register(READY)
    sign_in(page)
    open_repos(page)
    line = row(page, READY)
    sync = line.get_by_role("button", name="Sync")
    rebuild = line.get_by_role("button", name="Rebuild")
    expect(sync).to_be_enabled(timeout=WAIT_MS)
    # hold the answer: the route is real, only delayed until the test has looked
    held: list = []
    page.route("**/api/v1/repos/*/sync", lambda route: held.append(route))
    sync.click()
    expect(sync).to_be_disabled()
    expect(rebuild).to_be_disabled()
    expect(line.locator('[data-field="sync-note"]')).to_have_text("Asking for a sync…")
    deadline = time.monotonic() + WAIT_MS / 1000
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert held, "the page sent no sync request"
    held[0].continue_()
    expect(line.locator('[data-field="sync-note"]')).to_contain_text("Sync queued",
                                                                      timeout=WAIT_MS)
    expect(sync).to_be_enabled()
    expect(rebuild).to_be_enabled()
    assert world.queue.pending_count() == 1


def test_rebuild_asks_first_then_sends_force(page: Page, world: World):
    world.store.register(READY)
    sign_in(page)
    open_repos(page)
    line = row(page, READY)
    rebuild = line.locator('button[data-action="rebuild"]')
    expect(rebuild).to_have_text("Rebuild", timeout=WAIT_MS)
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if "/sync" in r.url else None)

    # the first press only asks; moving away takes the question back
    rebuild.click()
    expect(rebuild).to_have_text("Rebuild from scratch?")
    expect(rebuild).to_have_attribute("data-confirm", "true")
    page.click("#tracked-title")
    expect(rebuild).to_have_text("Rebuild")
    page.wait_for_timeout(300)
    assert sent == [] and world.queue.pending_count() == 0

    rebuild.click()
    expect(rebuild).to_have_text("Rebuild from scratch?")
    page.screenshot(path=str(SCREENSHOTS / "repos_page_confirm.png"))
    answer = sync_answer(page, rebuild.click)
    assert answer.status == 202
    assert answer.request.post_data_json == {"force": True}
    assert answer.json()["force"] is True
    assert len(sent) == 1
    assert world.queue.pending_count() == 1
    assert world.store.take_force(READY) is True
    expect(line.locator('[data-field="sync-note"]')).to_contain_text("Rebuild queued as job")
    expect(rebuild).to_have_text("Rebuild")
    expect(line.locator('.badge[data-field="state"]')).to_have_text("queued", timeout=WAIT_MS)


def test_an_api_error_is_shown_in_the_row(page: Page, world: World):
    world.store.register(READY)
    for i in range(world.queue.max_queue_size):  # fill the queue to its cap
        world.queue.enqueue(f"https://github.com/filler/repo-{i}")
    sign_in(page)
    open_repos(page)
    line = row(page, READY)
    expect(line.locator('.badge[data-field="state"]')).to_have_text("registered",
                                                                     timeout=WAIT_MS)
    answer = sync_answer(page, line.get_by_role("button", name="Sync").click)
    assert answer.status == 429
    detail = answer.json()["detail"]
    assert "queue is full" in detail
    note = line.locator('[data-field="sync-note"]')
    expect(note).to_have_text(detail)
    expect(note).to_have_attribute("data-kind", "error")
    expect(note).to_have_attribute("title", "error: queue_full")
    expect(line.get_by_role("button", name="Sync")).to_be_enabled()
    # the list is read again and the error stays on its row
    with page.expect_response(lambda r: r.url.endswith("/api/v1/repos")):
        page.click("#repos-refresh")
    expect(note).to_have_text(detail)
    expect(line.locator('.badge[data-field="state"]')).to_have_text("registered")
    assert world.queue.pending_count() == world.queue.max_queue_size
    page.screenshot(path=str(SCREENSHOTS / "repos_page_error.png"), full_page=True)
