"""The status page (cloud/static/index.html) in a real headless Chromium.

Everything is real: the control plane app served by uvicorn on loopback, a
SQLite queue, an edge Worker on a thread running a test pipeline, and Debian's
chromium driven by Playwright. The page's requests are never intercepted.
"""
from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from cloud.app import create_app
from edge.worker import Worker
from shared.jobs import Job, JobResult, JobState, WorkerState, WorkerStatus
from shared.queue import Lease
from shared.queue.sqlite import SqliteQueue
from shared.settings import Settings
from tests.servers import LiveServer

LOOPBACK = "127.0.0.1"
TOKEN = "test-admin-" + secrets.token_urlsafe(12)
API = "/api/v1/ingestion"
REPO = "https://github.com/octocat/Hello-World"
WORKER_ID = "edge-test"
# The page polls every 2 s and the API caches the overview for 1 s: a change shows
# within about 3 s. Twice that leaves room for a slow CI machine.
WAIT_MS = 8_000
SCREENSHOT = Path("/tmp/status_page.png")


# ---------------------------------------------------------------------------
# The control plane, served for real (tests.servers.LiveServer)
# ---------------------------------------------------------------------------


class StagedPipeline:
    """Reports a few stages with short sleeps. `gate` (open by default) holds the
    job at the `hold_at` stage, so a test can look at a running job for as long as
    it needs to without racing the worker."""

    STAGES = [("cloning", 10), ("parsing", 30), ("building graph", 50), ("embedding", 70),
              ("storing", 90)]

    def __init__(self, step_seconds: float = 0.4, hold_at: str = "embedding"):
        self.step_seconds = step_seconds
        self.hold_at = hold_at
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, job: Job, report) -> JobResult:
        for stage, percent in self.STAGES:
            report(stage, percent)
            if stage == self.hold_at and not self.gate.wait(timeout=60):
                raise RuntimeError("the test never released the pipeline")
            time.sleep(self.step_seconds)
        return JobResult(files_processed=12, embeddings_generated=345)


class WorkerThread:
    """A real edge Worker on a background thread, started when the test says so."""

    def __init__(self, queue: SqliteQueue):
        self.pipeline = StagedPipeline()
        self.worker = Worker(queue, self.pipeline, worker_id=WORKER_ID, device="cuda:0",
                             heartbeat_seconds=0.2, stop_grace_seconds=2)
        self._thread = threading.Thread(target=self.worker.run, name="edge-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.worker.stop()
        self.pipeline.gate.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)
            assert not self._thread.is_alive(), "the worker did not stop"


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[SqliteQueue]:
    # In a folder of its own, so a test can take the whole folder away.
    q = SqliteQueue(tmp_path / "queue" / "q.sqlite3")
    yield q
    q.close()


@pytest.fixture
def server(tmp_path: Path, queue: SqliteQueue) -> Iterator[LiveServer]:
    app = create_app(Settings(admin_token=TOKEN, data_dir=tmp_path), queue=queue)
    live = LiveServer(app)
    live.start()
    yield live
    live.stop()


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    """The API as a script sees it, with the admin token (no proxy from the env)."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"},
                      trust_env=False, timeout=10) as client:
        yield client


@pytest.fixture
def worker(queue: SqliteQueue, server: LiveServer) -> Iterator[WorkerThread]:
    thread = WorkerThread(queue)
    yield thread
    thread.stop()


# ---------------------------------------------------------------------------
# The browser
# ---------------------------------------------------------------------------


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    """A fresh tab (own sessionStorage) at 1280x800 on the live server; fails the
    test if the page's script throws."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=server.url)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"the page's script threw: {errors}"


def sign_in(page: Page) -> None:
    page.goto("/")
    page.fill("#token", TOKEN)
    page.click("#login")
    expect(page.locator("#dashboard")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#queue")).to_contain_text("queued", timeout=WAIT_MS)


def submit(api: httpx.Client, repo_url: str) -> dict:
    response = api.post(f"{API}/ingest/{repo_url}")
    assert response.status_code == 200, response.text
    return response.json()


def worker_card(page: Page, worker_id: str = WORKER_ID):
    return page.locator(f'[data-worker-id="{worker_id}"]')


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_sign_in_rejects_a_wrong_token_and_accepts_the_right_one(page: Page,
                                                                 worker: WorkerThread):
    worker.start()
    page.goto("/")
    expect(page.locator("#token")).to_be_visible()
    expect(page.locator("#dashboard")).to_be_hidden()

    page.fill("#token", "not-the-token")
    page.click("#login")
    expect(page.locator("#login-error")).to_have_text("Token rejected", timeout=WAIT_MS)
    expect(page.locator("#dashboard")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('na-token')") is None

    page.fill("#token", TOKEN)
    page.click("#login")
    expect(page.locator("#dashboard")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#login-error")).to_be_hidden()
    card = worker_card(page)
    expect(card.locator('[data-field="state"]')).to_have_text("idle", timeout=WAIT_MS)
    expect(card.locator('[data-field="status"]')).to_have_text("Idle")
    expect(card.locator('[data-field="device"]')).to_have_text("cuda:0")
    expect(card.get_by_role("progressbar")).to_be_hidden()
    expect(page.locator("#no-workers")).to_be_hidden()
    expect(page.locator("#dead")).to_be_hidden()


def test_a_token_that_stops_working_shows_the_form_again(page: Page):
    page.goto("/")
    page.evaluate("sessionStorage.setItem('na-token', 'an-old-token')")
    page.reload()
    expect(page.locator("#login-error")).to_have_text("Token rejected", timeout=WAIT_MS)
    expect(page.locator("#token")).to_be_visible()
    expect(page.locator("#dashboard")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('na-token')") is None


def test_the_page_follows_a_job_from_queued_to_running_to_complete(
        page: Page, api: httpx.Client, worker: WorkerThread):
    sign_in(page)
    expect(page.locator("#no-workers")).to_have_text("No worker has reported yet")

    worker.pipeline.gate.clear()  # hold the job at "embedding" until we have looked
    job_id = submit(api, REPO)["job_id"]
    queue_summary = page.locator("#queue")
    expect(queue_summary).to_contain_text("1 / 10 queued", timeout=WAIT_MS)
    expect(queue_summary).to_contain_text("0 running")

    worker.start()
    card = worker_card(page)
    expect(card.locator('[data-field="state"]')).to_have_text("running", timeout=WAIT_MS)
    expect(card.locator('[data-field="status"]')).to_have_text(f"Training Graph on {REPO}")
    expect(card.locator('[data-field="job"]')).to_contain_text(REPO)
    expect(card.locator('[data-field="stage"]')).to_have_text("embedding", timeout=WAIT_MS)
    bar = card.get_by_role("progressbar")
    expect(bar).to_be_visible()
    expect(bar).to_have_attribute("aria-valuenow", "70")
    # it beats every 0.2 s; the page shows the age at its last (cached) read
    expect(card.locator('[data-field="heartbeat"]')).to_have_text(re.compile(r"just now|[1-3] s ago"))
    expect(queue_summary).to_contain_text("0 / 10 queued")
    expect(queue_summary).to_contain_text("1 running")
    expect(page.locator("#overall")).to_have_text(f"Training Graph on {REPO}")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    worker.pipeline.gate.set()
    row = page.locator(f'#history tr[data-job-id="{job_id}"]')
    expect(row.locator('[data-field="status"]')).to_have_text("complete", timeout=WAIT_MS)
    expect(row.locator('[data-field="repo"]')).to_have_text(REPO)
    expect(row.locator('[data-field="files"]')).to_have_text("12")
    expect(row.locator('[data-field="embeddings"]')).to_have_text("345")
    expect(row.locator('[data-field="duration"]')).to_contain_text(" s")
    expect(card.locator('[data-field="state"]')).to_have_text("idle", timeout=WAIT_MS)
    expect(card.get_by_role("progressbar")).to_be_hidden()
    expect(queue_summary).to_contain_text("0 running")
    expect(page.locator("#dead")).to_be_hidden()


def test_the_submit_form_shows_the_answer(page: Page, api: httpx.Client):
    sign_in(page)

    def submit_on_page(repo_url: str):
        with page.expect_response(lambda r: f"{API}/ingest/" in r.url) as answer:
            page.fill("#repo", repo_url)
            page.click("#submit")
        return answer.value

    refused = submit_on_page("http://127.0.0.1/x")
    assert refused.status == 400
    detail = refused.json()["detail"]
    assert "loopback" in detail
    result = page.locator("#submit-result")
    expect(result).to_have_text(detail)
    expect(result).to_have_attribute("data-kind", "error")
    # A '..' reaches the API as typed (the browser must not resolve it to github.com/x)
    dotted = submit_on_page("github.com/psf/../x")
    assert dotted.status == 400 and "'..'" in dotted.json()["detail"]
    expect(result).to_have_text(dotted.json()["detail"])

    accepted = submit_on_page(REPO)
    assert accepted.status == 200
    job_id = accepted.json()["job_id"]
    expect(result).to_contain_text(job_id)
    expect(result).to_contain_text("position 1 of 1")
    expect(result).to_have_attribute("data-job-id", job_id)
    expect(page.locator("#repo")).to_have_value("")
    expect(page.locator("#queue")).to_contain_text("1 / 10 queued", timeout=WAIT_MS)

    again = submit_on_page(REPO)  # still pending: the same job, not a second one
    assert again.json()["job_id"] == job_id
    expect(result).to_contain_text(f"Already queued as job {job_id}")

    for n in range(9):  # fill the queue to its cap of 10
        submit(api, f"https://github.com/octocat/repo-{n}")
    full = submit_on_page("https://github.com/octocat/one-too-many")
    assert full.status == 429
    expect(result).to_contain_text(full.json()["detail"])
    expect(page.locator("#queue")).to_contain_text("10 / 10 queued", timeout=WAIT_MS)


def test_a_job_leased_to_a_silent_worker_is_explained(page: Page, queue: SqliteQueue):
    """kill -9 mid-job: the job stays leased until its lease runs out while its worker
    shows Offline; the page says why a job runs with no worker at it."""
    past = SqliteQueue(queue.path, clock=lambda: time.time() - 30)  # its last beat: 30 s ago
    try:
        queue.enqueue(REPO)
        gone = WorkerStatus(worker_id="killed", device="cpu")
        job = past.claim(gone)
        assert past.heartbeat(replace(gone, state=WorkerState.RUNNING, repo_url=REPO,
                                      job_id=job.id), job)
    finally:
        past.close()
    sign_in(page)
    running = page.locator('#queue [data-field="running"]')
    expect(running).to_have_text("1 running (1 on a worker that stopped answering: back in "
                                 "the queue when its lease runs out)", timeout=WAIT_MS)
    expect(page.locator('.worker[data-state="offline"]')).to_be_visible()


def test_a_banner_shows_while_the_control_plane_is_down(page: Page, server: LiveServer):
    sign_in(page)
    banner = page.locator("#banner")
    expect(banner).to_be_hidden()

    server.stop()
    expect(banner).to_be_visible(timeout=WAIT_MS)
    expect(banner).to_contain_text("Control plane unreachable")
    expect(page.locator("#dashboard")).to_be_visible()  # the last data stays up

    server.start()
    expect(banner).to_be_hidden(timeout=WAIT_MS)


def test_a_banner_shows_while_the_queue_is_unreachable(page: Page, api: httpx.Client,
                                                       queue: SqliteQueue):
    sign_in(page)
    banner = page.locator("#banner")
    expect(banner).to_be_hidden()

    # Take the queue's folder away: SQLite cannot open the file, the API answers 503.
    folder = queue.path.parent
    away = folder.with_name("queue-away")
    queue.close()
    folder.rename(away)
    try:
        expect(banner).to_contain_text("Queue unreachable: ", timeout=WAIT_MS)
        answer = api.get(f"{API}/overview")
        assert answer.status_code == 503 and answer.json()["error"] == "queue_unavailable"
        expect(banner).to_contain_text(f"Queue unreachable: {answer.json()['detail']}")
    finally:
        away.rename(folder)
    expect(banner).to_be_hidden(timeout=WAIT_MS)


def test_the_token_survives_a_reload_and_sign_out_forgets_it(page: Page):
    sign_in(page)
    assert page.evaluate("sessionStorage.getItem('na-token')") == TOKEN

    page.reload()
    expect(page.locator("#dashboard")).to_be_visible()
    expect(page.locator("#token")).to_be_hidden()
    expect(page.locator("#queue")).to_contain_text("0 / 10 queued", timeout=WAIT_MS)

    page.click("#signout")
    expect(page.locator("#token")).to_be_visible()
    expect(page.locator("#dashboard")).to_be_hidden()
    expect(page.locator("#login-error")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('na-token')") is None
    page.reload()
    expect(page.locator("#token")).to_be_visible()


def test_polling_pauses_while_the_tab_is_hidden(page: Page):
    sign_in(page)
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/overview") else None)

    # Headless Chromium keeps every tab visible; report this one as hidden.
    page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    page.wait_for_timeout(2_000)  # a poll already in flight may still land
    polls.clear()
    page.wait_for_timeout(4_500)  # more than two poll intervals
    assert polls == []

    with page.expect_request(lambda r: r.url.endswith("/overview"), timeout=1_000):
        page.evaluate("""() => {
            delete document.hidden;
            document.dispatchEvent(new Event("visibilitychange"));
        }""")


def test_markup_from_the_api_is_shown_as_text(page: Page, api: httpx.Client,
                                              queue: SqliteQueue):
    markup_url = "https://github.com/a/<img src=x onerror=alert(1)>"
    refused = api.post(f"{API}/ingest/{markup_url}")
    assert refused.status_code == 400

    # The API refuses it, so put markup straight into the queue: a dead-lettered job,
    # a failed one, and a worker whose name and error are markup.
    evil = WorkerStatus(worker_id='<b class="evil">w</b>', device="<img src=x onerror=alert(2)>")
    dead_url = markup_url + "/<script>alert(3)</script>"
    queue.enqueue(dead_url)
    assert queue.claim(evil) is not None
    # A second handle on the same file whose clock is past the lease: its next claim
    # reaps the job, and with one attempt allowed, dead-letters it.
    later = SqliteQueue(queue.path, lease=Lease(seconds=60, max_attempts=1),
                        clock=lambda: time.time() + 120)
    try:
        assert later.claim(evil) is None
    finally:
        later.close()
    queue.enqueue(markup_url)
    job = queue.claim(evil)
    assert job is not None and job.repo_url == markup_url
    error = "<img src=x onerror=alert(4)> failed"
    after = replace(evil, state=WorkerState.ERROR, error="<i>bad</i>")
    assert queue.finish(job, JobState.FAILED, after, error=error)

    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page)

    row = page.locator(f'#history tr[data-job-id="{job.id}"]')
    expect(row.locator('[data-field="repo"]')).to_have_text(markup_url, timeout=WAIT_MS)
    expect(row.locator('[data-field="status"]')).to_have_text("failed")
    expect(row.locator('[data-field="note"]')).to_have_text(error)
    dead = page.locator("#dead")
    expect(dead).to_be_visible()
    expect(dead.locator('[data-field="repo"]')).to_have_text(dead_url)
    expect(dead.locator('[data-field="attempts"]')).to_have_text("1")

    card = page.locator("[data-worker-id]")
    expect(card).to_have_count(1)
    assert card.get_attribute("data-worker-id") == evil.worker_id
    expect(card.locator('[data-field="worker-id"]')).to_have_text(evil.worker_id)
    expect(card.locator('[data-field="status"]')).to_have_text("Error: <i>bad</i>")
    expect(card.locator('[data-field="device"]')).to_have_text(evil.device)

    # No element came out of the data: no <img>, <b>, <i>, and only the page's own script.
    assert page.locator("img, b, i, .evil").count() == 0
    assert page.locator("script").count() == 1
    assert dialogs == []
