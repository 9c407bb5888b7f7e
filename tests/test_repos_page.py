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
from contextlib import contextmanager
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
    with served(stores, Settings(admin_token=TOKEN, data_dir=tmp_path / "cp")) as live:
        yield live


@contextmanager
def served(stores, settings: Settings, port: int = 0) -> Iterator[LiveServer]:
    """The control plane over `stores` (graph store, vectors, queue), live on loopback
    (on `port`, or a free one)."""
    store, vectors, queue = stores
    service = QueryService(lambda: store, lambda: vectors, lambda: None, owns_stores=False)
    live = LiveServer(create_app(settings, queue=queue, query=service))
    live.port = port
    live.start()
    try:
        yield live
    finally:
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
    world.store.set_repo_state(READY, None, branch="dev", commit=NEWER, snapshot_id=None)
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
    expect(ready.locator('[data-field="commit"]')).to_have_text(
        f"{COMMIT[:7]} on maindev @ {NEWER[:7]}")  # another branch's own index, a line each
    expect(ready.locator('[data-field="branch-commit"]')).to_have_text(f"dev @ {NEWER[:7]}")
    expect(ready.locator('[data-field="commit"] code').first).to_have_attribute("title", COMMIT)
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


def test_a_default_branch_deleted_on_the_remote_is_said_where_the_index_is(
        page: Page, world: World):
    """The record says the deleted branch, the index it left answers stale, and the
    page says both: the row, and the evidence under an answer."""
    register(world, READY)
    indexed(world.store, READY)
    world.store.drop_default_branch(READY, "main")
    sign_in(page)
    open_repos(page)
    ready = row(page, READY)
    expect(ready.locator('[data-field="deleted-branch"]')).to_have_text(
        "main deleted on the remote", timeout=WAIT_MS)
    expect(ready.locator('.badge[data-state="stale"]')).to_have_text("stale")
    expect(ready.locator('[data-field="commit"]')).to_have_text(
        f"{COMMIT[:7]} on main (deleted)")
    ready.get_by_role("button", name="github.com/octo/gadgets").click()
    note = page.locator('#repo-index [data-field="index"]')
    expect(note).to_contain_text("its branch main was deleted on the remote", timeout=WAIT_MS)
    expect(note).to_have_attribute("data-stale", "true")


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
    assert world.store.forced(READY) == 0

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
    assert world.store.forced(READY) > 0
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


# ---------------------------------------------------------------------------
# A repository's settings (PATCH /api/v1/repos/{id}) and its deletion (DELETE)
# ---------------------------------------------------------------------------

SECRET = "hush-0123456789-abcdef"  # 22 printable characters: the API takes 16 to 256


def open_settings(page: Page, url: str):
    """Opens the settings form under `url`'s row; the form's row."""
    line = row(page, url)
    button = line.locator('button[data-action="settings"]')
    expect(button).to_have_text("Settings", timeout=WAIT_MS)
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    form = page.locator(f'#tracked tr.settings-row[data-settings-for="{url}"]')
    expect(form).to_be_visible()
    expect(form.get_by_label("Tracked branches")).to_be_focused()
    return form


def patch_answer(page: Page, action):
    with page.expect_response(lambda r: r.request.method == "PATCH"
                              and re.search(r"/api/v1/repos/\d+$", r.url) is not None,
                              timeout=WAIT_MS) as answer:
        action()
    return answer.value


def test_saving_branches_and_the_interval_changes_the_record(page: Page, world: World):
    repo_id = register(world, READY)["id"]
    indexed(world.store, READY)  # the default branch is known: main
    assert world.store.repo_record(repo_id).branches == []
    sign_in(page)
    open_repos(page)
    form = open_settings(page, READY)
    line = row(page, READY)
    assert line.locator('button[data-action="settings"]').get_attribute("aria-controls") \
        == form.get_attribute("id")
    branches = form.get_by_label("Tracked branches")
    interval = form.get_by_label("Sync interval (seconds)")
    # filled from the listing: the tracked branch is the default one, no periodic sync
    expect(branches).to_have_value("main")
    expect(interval).to_have_value("0")
    expect(form.locator('[data-field="interval-text"]')).to_have_text("no periodic sync")
    expect(form).to_contain_text("Empty: the default branch only (main).")
    expect(form).to_contain_text("A branch taken off the list loses its index")
    expect(form).to_contain_text("Sent in seconds")

    # nothing changed: nothing is sent
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if r.method in ("PATCH", "DELETE") else None)
    form.get_by_role("button", name="Save").click()
    expect(form.locator('[data-field="settings-note"]')).to_have_text(
        "Nothing to save: no setting was changed.")
    assert sent == []

    branches.fill("main, release/2.x  dev,")
    interval.fill("5400")
    expect(form.locator('[data-field="interval-text"]')).to_have_text("every 1 h 30 min")
    # a refresh of the list keeps what is being typed
    with page.expect_response(lambda r: r.url.endswith("/api/v1/repos")):
        page.click("#repos-refresh")
    expect(branches).to_have_value("main, release/2.x  dev,")
    expect(interval).to_have_value("5400")

    answer = patch_answer(page, form.get_by_role("button", name="Save").click)
    assert answer.status == 200, answer.text()
    assert answer.request.url.endswith(f"/api/v1/repos/{repo_id}")
    assert answer.request.headers["authorization"] == f"Bearer {TOKEN}"
    # only what changed, the interval in seconds; the secret is left alone
    assert answer.request.post_data_json == {"branches": ["main", "release/2.x", "dev"],
                                             "sync_interval": 5400}
    record = world.store.repo_record(repo_id)
    assert record.branches == ["main", "release/2.x", "dev"]
    assert record.sync_interval == 5400 and not record.has_secret
    api = world.http.get(f"/api/v1/repos/{repo_id}").json()
    assert api["branches"] == ["main", "release/2.x", "dev"] and api["sync_interval"] == 5400
    note = form.locator('[data-field="settings-note"]')
    expect(note).to_have_text("Saved. Tracks main, release/2.x, dev; syncs every 1 h 30 min; "
                              "no webhook secret of its own.")
    expect(note).to_have_attribute("data-kind", "ok")
    expect(branches).to_have_value("main, release/2.x, dev")
    expect(form.get_by_role("button", name="Save")).to_be_enabled()
    page.screenshot(path=str(SCREENSHOTS / "repos_page_settings.png"), full_page=True)

    # emptied: the default branch only (an empty list); the interval is not sent again
    branches.fill("")
    interval.fill("0")
    answer = patch_answer(page, form.get_by_role("button", name="Save").click)
    assert answer.status == 200
    assert answer.request.post_data_json == {"branches": [], "sync_interval": 0}
    record = world.store.repo_record(repo_id)
    assert record.branches == [] and record.sync_interval == 0
    expect(note).to_contain_text("Saved. Tracks main; no periodic sync;")
    expect(branches).to_have_value("main")  # the API lists the default branch as tracked

    # a phone-width screen: the form fits
    page.set_viewport_size({"width": 390, "height": 844})
    expect(form.get_by_role("button", name="Save")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for button in (line.locator("td.actions button").all()
                   + form.locator("button:visible, input:visible").all()):
        box = button.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    page.screenshot(path=str(SCREENSHOTS / "repos_page_settings_phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    # Close (or Escape) takes the form away and gives the focus back to its button
    form.get_by_role("button", name="Close").click()
    expect(page.locator("#tracked tr.settings-row")).to_have_count(0)
    settings = line.locator('button[data-action="settings"]')
    expect(settings).to_have_attribute("aria-expanded", "false")
    expect(settings).to_be_focused()
    form = open_settings(page, READY)
    page.keyboard.press("Escape")
    expect(page.locator("#tracked tr.settings-row")).to_have_count(0)
    assert [r.method for r in sent].count("PATCH") == 2


def test_a_webhook_secret_is_set_and_removed_and_never_shown(page: Page, world: World):
    repo_id = register(world, READY)["id"]
    logged: list[str] = []
    page.on("console", lambda message: logged.append(message.text))
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    sign_in(page)
    open_repos(page)
    form = open_settings(page, READY)
    secret = form.get_by_label("Set a new secret")
    remove = form.get_by_label("Remove the secret")
    state = form.locator('[data-field="secret-state"]')
    expect(secret).to_have_attribute("type", "password")
    expect(secret).to_have_attribute("autocomplete", "new-password")
    expect(state).to_contain_text("None of its own")
    expect(remove).to_be_disabled()  # nothing to remove

    secret.fill(SECRET)
    answer = patch_answer(page, form.get_by_role("button", name="Save").click)
    assert answer.status == 200, answer.text()
    assert answer.request.post_data_json == {"webhook_secret": SECRET}
    assert answer.json()["has_secret"] is True and SECRET not in answer.text()
    assert world.store.repo_record(repo_id).has_secret
    assert world.store.webhook_secret(READY) == SECRET
    expect(form.locator('[data-field="settings-note"]')).to_contain_text("new webhook secret set.")
    expect(secret).to_have_value("")  # gone from the page once saved
    expect(state).to_contain_text("A secret of its own is set")
    expect(remove).to_be_enabled()
    assert SECRET not in page.content()
    assert SECRET not in page.evaluate("document.documentElement.outerHTML")
    assert page.evaluate("(secret) => [...document.querySelectorAll('input')]"
                         ".every((input) => input.value !== secret)", SECRET)

    # neither a new secret nor removal: the secret stays as it is
    form.get_by_label("Sync interval (seconds)").fill("3600")
    answer = patch_answer(page, form.get_by_role("button", name="Save").click)
    assert answer.request.post_data_json == {"sync_interval": 3600}
    assert world.store.webhook_secret(READY) == SECRET
    expect(form.locator('[data-field="settings-note"]')).to_contain_text(
        "webhook secret unchanged (set).")

    # removal sends null; the password field is off while it is ticked
    remove.check()
    expect(secret).to_be_disabled()
    answer = patch_answer(page, form.get_by_role("button", name="Save").click)
    assert answer.status == 200
    assert answer.request.post_data_json == {"webhook_secret": None}
    assert answer.json()["has_secret"] is False
    record = world.store.repo_record(repo_id)
    assert not record.has_secret and record.sync_interval == 3600
    assert world.store.webhook_secret(READY) is None
    expect(form.locator('[data-field="settings-note"]')).to_contain_text("webhook secret removed.")
    expect(state).to_contain_text("None of its own")
    expect(remove).not_to_be_checked()
    expect(remove).to_be_disabled()
    expect(secret).to_be_enabled()
    # the secret went in a body only: never in a URL, never logged
    assert not any(SECRET in url for url in urls)
    assert not any(SECRET in line for line in logged)


def test_a_bad_value_shows_the_apis_message_and_changes_nothing(page: Page, world: World):
    answer = world.http.post("/api/v1/repos", json={"url": READY, "branches": ["main"],
                                                    "sync_interval": 3600})
    assert answer.status_code == 201, answer.text
    repo_id = answer.json()["repo"]["id"]
    sign_in(page)
    open_repos(page)
    form = open_settings(page, READY)
    branches = form.get_by_label("Tracked branches")
    interval = form.get_by_label("Sync interval (seconds)")
    save = form.locator('button[data-action="save"]')  # its name changes while it runs
    note = form.locator('[data-field="settings-note"]')
    expect(interval).to_have_value("3600")
    expect(form.locator('[data-field="interval-text"]')).to_have_text("every 1 h")

    branches.fill("main dev")
    interval.fill("-60")
    # hold the answer: the buttons are off while the request runs
    held: list = []
    page.route("**/api/v1/repos/*", lambda route: held.append(route)
               if route.request.method == "PATCH" else route.continue_())
    save.click()
    expect(save).to_be_disabled()
    expect(save).to_have_text("Saving…")
    expect(form.get_by_role("button", name="Delete…")).to_be_disabled()
    expect(row(page, READY).locator('button[data-action="settings"]')).to_be_disabled()
    expect(note).to_have_text("Saving…")
    deadline = time.monotonic() + WAIT_MS / 1000
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert held, "the page sent no PATCH"
    assert held[0].request.post_data_json == {"branches": ["main", "dev"], "sync_interval": -60}
    with page.expect_response(lambda r: r.request.method == "PATCH") as answered:
        held[0].continue_()
    page.unroute("**/api/v1/repos/*")
    assert answered.value.status == 400
    detail = answered.value.json()["detail"]
    assert detail.startswith("sync_interval is seconds")
    expect(note).to_have_text(detail)
    expect(note).to_have_attribute("data-kind", "error")
    expect(note).to_have_attribute("title", "error: bad_request")
    expect(save).to_be_enabled()
    expect(save).to_have_text("Save")
    # what was typed stays; the culprit is marked and focused
    expect(branches).to_have_value("main dev")
    expect(interval).to_have_value("-60")
    expect(interval).to_have_attribute("aria-invalid", "true")
    expect(interval).to_be_focused()
    record = world.store.repo_record(repo_id)
    assert record.branches == ["main"] and record.sync_interval == 3600
    page.screenshot(path=str(SCREENSHOTS / "repos_page_settings_error.png"), full_page=True)

    # a secret the API refuses: its message, the secret still typed, nothing changed
    interval.fill("3600")
    branches.fill("main")
    form.get_by_label("Set a new secret").fill("too-short")
    answer = patch_answer(page, save.click)
    assert answer.status == 400
    assert answer.request.post_data_json == {"webhook_secret": "too-short"}
    expect(note).to_have_text(answer.json()["detail"])
    expect(note).to_contain_text("webhook_secret")
    expect(form.get_by_label("Set a new secret")).to_have_value("too-short")
    assert not world.store.repo_record(repo_id).has_secret

    # not a number at all: said here, nothing sent
    form.get_by_label("Set a new secret").fill("")
    interval.fill("an hour")
    save.click()
    expect(note).to_have_text("The sync interval is a whole number of seconds "
                              "(0 = no periodic sync).")
    expect(interval).to_have_attribute("aria-invalid", "true")
    record = world.store.repo_record(repo_id)
    assert record.branches == ["main"] and record.sync_interval == 3600


def test_delete_asks_first_and_then_removes_the_record_and_the_row(page: Page, world: World):
    repo_id = register(world, READY)["id"]
    indexed(world.store, READY)
    register(world, QUEUED)
    assert world.store.snapshots(READY)
    deletes: list[Request] = []
    page.on("request", lambda r: deletes.append(r) if r.method == "DELETE" else None)
    sign_in(page)
    open_repos(page)
    expect(page.locator("#tracked tbody tr[data-url]")).to_have_count(2, timeout=WAIT_MS)
    expect(page.locator("#repos-repo option", has_text="github.com/octo/gadgets")).to_have_count(1)
    form = open_settings(page, READY)
    expect(form).to_contain_text("Deleting removes its vectors, snapshots and registry record")
    ask = form.get_by_role("button", name="Delete…")
    confirm = form.locator('[data-field="delete-confirm"]')
    expect(confirm).to_be_hidden()

    # asked first; "Keep it" deletes nothing
    ask.click()
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("Delete github.com/octo/gadgets? Its vectors, snapshots and "
                                    "registry record are removed")
    expect(ask).to_have_attribute("aria-expanded", "true")
    keep = confirm.get_by_role("button", name="Keep it")
    expect(keep).to_be_focused()
    page.screenshot(path=str(SCREENSHOTS / "repos_page_delete_confirm.png"), full_page=True)
    keep.click()
    expect(confirm).to_be_hidden()
    expect(form.locator('[data-field="settings-note"]')).to_have_text("Nothing was deleted.")
    expect(ask).to_be_focused()
    page.wait_for_timeout(300)
    assert deletes == []
    assert world.store.repo_record(repo_id) is not None and world.store.snapshots(READY)
    expect(row(page, READY)).to_have_count(1)

    # Escape takes the question back too
    ask.click()
    expect(confirm).to_be_visible()
    page.keyboard.press("Escape")
    expect(confirm).to_be_hidden()
    expect(form).to_be_visible()
    assert deletes == []

    # confirmed: the record, its snapshots and its row are gone
    ask.click()
    with page.expect_response(lambda r: r.request.method == "DELETE", timeout=WAIT_MS) as answer:
        confirm.get_by_role("button", name="Delete for good").click()
    assert answer.value.status == 200, answer.value.text()
    assert answer.value.request.url.endswith(f"/api/v1/repos/{repo_id}")
    assert answer.value.request.headers["authorization"] == f"Bearer {TOKEN}"
    assert answer.value.json() == {"deleted": repo_id, "url": READY}
    assert len(deletes) == 1
    assert world.store.repo_record(repo_id) is None
    assert world.store.snapshots(READY) == []
    assert world.http.get(f"/api/v1/repos/{repo_id}").status_code == 404
    assert [r["url"] for r in world.http.get("/api/v1/repos").json()["repos"]] == [QUEUED]
    expect(row(page, READY)).to_have_count(0)
    expect(page.locator("#tracked tr.settings-row")).to_have_count(0)
    expect(page.locator("#tracked tbody tr")).to_have_count(1)
    expect(row(page, QUEUED)).to_have_count(1)
    message = page.locator("#tracked-message")
    expect(message).to_have_text("Deleted github.com/octo/gadgets: its vectors, snapshots and "
                                 "registry record are removed.")
    expect(message).to_be_focused()
    expect(page.locator("#tracked-count")).to_have_text("1 registered")
    expect(page.locator("#repos-repo option", has_text="github.com/octo/gadgets")).to_have_count(0)
    # and it stays gone when the list is read again
    with page.expect_response(lambda r: r.url.endswith("/api/v1/repos")):
        page.click("#repos-refresh")
    expect(page.locator("#tracked tbody tr")).to_have_count(1)
    expect(row(page, READY)).to_have_count(0)
