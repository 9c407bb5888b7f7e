"""The page's query side (cloud/static/index.html: Search, Repositories, File graph,
Context, Impact) in a real headless Chromium.

Everything is real: a small git repository ingested once per module by the real
pipeline (tree-sitter, Node2Vec, MiniLM, SQLite, Qdrant local mode), a QueryService
on the same stores with the installed ONNX query model, the control plane app under
uvicorn on loopback, and Debian's chromium driven by Playwright. The page's requests
are never intercepted; what it shows is compared with what the API answered.
The browser, the live server and sign-in come from tests/test_status_page.py.
"""
from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, Response, expect

from cloud.app import create_app
from cloud.query import QueryService
from cloud.routes import OverviewCache
from edge.embed.minilm import MiniLMEncoder
from edge.pipeline import IngestPipeline
from shared.jobs import Job, JobResult, JobState, WorkerState, WorkerStatus, new_job_id
from shared.query_encoder import QueryEncoder, default_model_dir
from shared.queue.sqlite import SqliteQueue
from shared.settings import Settings
from tests.test_status_page import (  # noqa: F401 - page is a fixture used here
    TOKEN,
    WAIT_MS,
    LiveServer,
    page,
    sign_in,
)

SCREENSHOTS = Path("/tmp")
MARKUP = "<img src=x onerror=alert(1)> <b class=evil>bold</b>"
FILES = {
    "app/__init__.py": "",
    "app/util.py": 'def slugify(text):\n    """Turn a title into a URL slug."""\n'
                   '    return text.lower().replace(" ", "-")\n\n\n'
                   f'def banner():\n    return "{MARKUP}"\n',
    "app/store.py": "from app.util import slugify\n\n\nclass Store:\n"
                    "    def save(self, title):\n        return slugify(title)\n",
    "app/api.py": "from app.store import Store\nfrom app import util\n\n\n"
                  "def handle_request(title):\n    store = Store()\n    util.banner()\n"
                  "    return store.save(title)\n",
    "app/a.py": "from app import b\n\n\ndef ping():\n    return b.pong()\n",
    "app/b.py": "from app import a\n\n\ndef pong():\n    return 1\n",
    "tests/test_api.py": "from app.api import handle_request\n\n\n"
                         "def test_handle_request():\n"
                         "    assert handle_request('A B') == 'a-b'\n",
    "web/format.ts": "export function formatPrice(cents: number): string {\n"
                     "  return `$${(cents / 100).toFixed(2)}`;\n}\n",
    "web/view.ts": "import { formatPrice } from './format';\n\n"
                   "export function render(total: number): string {\n"
                   "  return formatPrice(total);\n}\n",
}


# ---------------------------------------------------------------------------
# One ingested repository, one control plane, per module
# ---------------------------------------------------------------------------


@dataclass
class Indexed:
    url: str
    commit: str
    pipeline: IngestPipeline
    service: QueryService


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> Iterator[Indexed]:
    work = tmp_path_factory.mktemp("query-page")
    root = work / "shop"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    settings = replace(Settings.from_env({"DATA_DIR": str(work / "data"), "DEVICE": "cpu"}),
                       allow_local_repos=True)
    pipeline = IngestPipeline(settings, encoder=MiniLMEncoder(device="cpu"))
    job = Job(id=new_job_id(), repo_url=root.as_uri(), submitted_at=time.time(), ttl=3600)
    commit = pipeline(job, lambda stage, progress: None).summary["commit"]
    service = QueryService(lambda: pipeline.store, lambda: pipeline.vectors,
                           lambda: QueryEncoder(default_model_dir()), allow_local=True,
                           owns_stores=False)
    yield Indexed(root.as_uri(), commit, pipeline, service)
    service.close()
    pipeline.close()


def _serve(service: QueryService, queue: SqliteQueue, folder: Path) -> LiveServer:
    live = LiveServer(create_app(Settings(admin_token=TOKEN, data_dir=folder), queue=queue,
                                 query=service))
    live.start()
    return live


@pytest.fixture(scope="module")
def queue(tmp_path_factory) -> Iterator[SqliteQueue]:
    q = SqliteQueue(tmp_path_factory.mktemp("queue") / "queue.sqlite3")
    yield q
    q.close()


@pytest.fixture(scope="module")
def server(indexed: Indexed, queue: SqliteQueue, tmp_path_factory) -> Iterator[LiveServer]:
    """Overrides test_status_page's `server` for its `page` fixture: this app answers
    queries from the ingested repository."""
    live = _serve(indexed.service, queue, tmp_path_factory.mktemp("control-plane"))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"},
                      trust_env=False, timeout=30) as client:
        yield client


# ---------------------------------------------------------------------------
# Driving the page
# ---------------------------------------------------------------------------

VIEWS = {"status": "#dashboard", "search": "#search-view", "repos": "#repos-view",
         "file": "#file-view", "context": "#context-view", "impact": "#impact-view"}


def open_tab(page: Page, name: str) -> None:
    page.click(f'#tabs a[data-tab="{name}"]')
    expect(page.locator(VIEWS[name])).to_be_visible()
    for other, selector in VIEWS.items():
        if other != name:
            expect(page.locator(selector)).to_be_hidden()


def answer_of(page: Page, path: str, action) -> Response:
    """Do `action`, return the API's answer to the request it makes to `path`."""
    with page.expect_response(lambda r: r.url.split("?")[0].endswith(path),
                              timeout=WAIT_MS * 4) as answer:
        action()
    return answer.value


def search(page: Page, query: str, mode: str = "hybrid", repo: str = "") -> Response:
    open_tab(page, "search")
    # the repository filter is filled from /api/v1/repos: "All" plus each repository
    expect(page.locator("#search-repo option")).to_have_count(2, timeout=WAIT_MS)
    page.select_option("#search-mode", mode)
    page.select_option("#search-repo", repo)
    page.fill("#q", query)
    return answer_of(page, "/api/v1/search", lambda: page.click("#search-submit"))


def paths_of(locator) -> list[str]:
    return sorted(locator.evaluate_all("nodes => nodes.map(n => n.getAttribute('data-path'))"))


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_search_shows_path_line_symbol_and_the_query_marked(page: Page, indexed: Indexed):
    sign_in(page)
    answer = search(page, "slug for a title")
    assert answer.status == 200
    body = answer.json()
    top = body["results"][0]
    assert (top["path"], top["name"], top["start_line"]) == ("app/util.py", "slugify", 1)

    hits = page.locator("#search-results .hit")
    expect(hits).to_have_count(len(body["results"]))
    hit = hits.first
    expect(hit.locator(".loc")).to_have_text("app/util.py:1")
    expect(hit.locator('[data-field="name"]')).to_have_text("slugify")
    expect(hit.locator('[data-field="kind"]')).to_have_text("function")
    expect(hit.locator("pre")).to_contain_text('"""Turn a title into a URL slug."""')
    marked = {text.lower() for text in hit.locator("pre mark").all_inner_texts()}
    assert {"slug", "title"} <= marked, marked
    # score and signals on hover
    score = hit.locator('[data-field="score"]')
    expect(score).to_have_text(f"{top['score']:.3f}")
    expect(score).to_have_attribute("title", re.compile(r"semantic: [\d.]+\n.*keyword: ", re.S))
    # the evidence: which commit answered
    expect(page.locator("#search-index")).to_contain_text(f"answered from {indexed.commit[:7]}")
    expect(page.locator("#search-summary")).to_contain_text("hybrid")
    page.screenshot(path=str(SCREENSHOTS / "query_page_search.png"), full_page=True)


def test_code_and_names_from_the_index_are_shown_as_text(page: Page):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page)
    answer = search(page, "banner", mode="keyword")
    assert answer.json()["results"][0]["name"] == "banner"
    hit = page.locator('.hit[data-path="app/util.py"]').first
    expect(hit.locator("pre")).to_contain_text(MARKUP)
    expect(hit.locator("pre mark").first).to_have_text("banner")
    assert page.locator("img, b, i, .evil").count() == 0
    assert page.locator("script").count() == 1
    assert dialogs == []


def test_a_hit_opens_its_files_neighbourhood_drawn_as_a_graph(page: Page):
    sign_in(page)
    search(page, "slug for a title")
    hit = page.locator("#search-results .hit").first
    with page.expect_response(lambda r: "/graph/dependents?" in r.url) as into:
        hit.locator(".loc").click()
    expect(page.locator("#file-view")).to_be_visible()
    expect(page).to_have_url(re.compile(r"#file$"))
    dependents = {r["path"] for r in into.value.json()["results"]}
    assert dependents == {"app/api.py", "app/store.py", "tests/test_api.py"}

    graph = page.locator("#graph svg")
    centre = graph.locator('g.node[data-side="centre"]')
    expect(centre).to_have_attribute("data-path", "app/util.py", timeout=WAIT_MS)
    expect(graph.locator('g.node[data-side="dependent"]')).to_have_count(len(dependents))
    assert paths_of(graph.locator('g.node[data-side="dependent"]')) == sorted(dependents)
    expect(graph.locator('g.node[data-path="tests/test_api.py"]')).to_have_attribute(
        "data-distance", "2")
    # the snapshot's real edges, arrows from importer to imported: by default those one
    # step nearer the centre, and on request every edge between the shown files
    def edge(src: str, dst: str):
        return page.locator(f'#graph path.edge[data-src="{src}"][data-dst="{dst}"]')

    for src, dst in [("app/api.py", "app/util.py"), ("app/store.py", "app/util.py"),
                     ("tests/test_api.py", "app/api.py")]:
        expect(edge(src, dst)).to_have_count(1)
    expect(edge("app/api.py", "app/store.py")).to_have_count(0)  # both one step away
    page.check("#graph-all-edges")
    expect(edge("app/api.py", "app/store.py")).to_have_count(1)
    expect(edge("app/api.py", "app/util.py")).to_have_count(1)
    expect(page.locator("#dependents-list li")).to_have_count(len(dependents))
    expect(page.locator("#deps-list")).to_contain_text("nothing at this depth")
    expect(page.locator("#file-index")).to_contain_text("answered from")
    box = graph.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    page.screenshot(path=str(SCREENSHOTS / "query_page_graph.png"), full_page=True)

    # clicking a node centres the graph on it
    with page.expect_response(lambda r: "/graph/dependencies?" in r.url) as out:
        graph.locator('g.node[data-path="app/store.py"]').click()
    assert {r["path"] for r in out.value.json()["results"]} == {"app/util.py"}
    expect(page.locator("#file-title")).to_have_text("app/store.py")
    expect(centre).to_have_attribute("data-path", "app/store.py")
    expect(graph.locator('g.node[data-side="dependency"]')).to_have_attribute(
        "data-path", "app/util.py")
    expect(page.locator("#file-path")).to_have_value("app/store.py")


def test_the_repository_view_shows_sizes_files_hot_spots_and_cycles(
        page: Page, http: httpx.Client, indexed: Indexed):
    sign_in(page)
    open_tab(page, "repos")
    summary = page.locator("#repo-summary")
    expect(summary.locator('[data-field="commit"]')).to_contain_text(indexed.commit[:7],
                                                                     timeout=WAIT_MS)
    expect(summary.locator('[data-field="size"]')).to_contain_text(f"{len(FILES)} files")
    expect(summary.locator('[data-field="languages"]')).to_contain_text("python 7")
    expect(summary.locator('[data-field="languages"]')).to_contain_text("typescript 2")

    hot = http.get("/api/v1/graph/hotspots", params={"repo": indexed.url, "limit": 20}).json()
    rows = page.locator("#hotspots tbody tr")
    expect(rows).to_have_count(len(hot["results"]), timeout=WAIT_MS)
    assert [r.get_attribute("data-path") for r in rows.all()] == [
        r["path"] for r in hot["results"]]
    expect(page.locator('#hotspots tr[data-path="app/util.py"]')).to_contain_text("2")

    cycles = page.locator("#cycles li")
    expect(cycles).to_have_count(1)
    expect(cycles.first).to_contain_text("app/a.py")
    expect(cycles.first).to_contain_text("app/b.py")

    files = page.locator("#files-list li")
    expect(files).to_have_count(len(FILES))
    page.fill("#files-filter", "web/")
    expect(files).to_have_count(2)
    expect(page.locator("#files-count")).to_have_text(f"2 of {len(FILES)}")
    expect(page.locator('#files-list li[data-path="web/view.ts"]')).to_contain_text("1 symbol")
    page.screenshot(path=str(SCREENSHOTS / "query_page_repos.png"), full_page=True)

    page.locator("#hotspots").get_by_role("button", name="app/util.py").click()
    expect(page.locator('#graph g.node[data-side="centre"]')).to_have_attribute(
        "data-path", "app/util.py", timeout=WAIT_MS)


def test_the_context_form_shows_text_within_its_budget(page: Page, indexed: Indexed):
    sign_in(page)
    open_tab(page, "context")
    expect(page.locator("#ctx-repo option")).to_have_count(1, timeout=WAIT_MS)
    page.fill("#ctx-task", "change how slugify makes slugs from titles")
    page.fill("#ctx-budget", "256")
    answer = answer_of(page, "/api/v1/context", lambda: page.click("#ctx-submit")).json()
    assert 0 < answer["tokens"] <= 256
    tokens = page.locator("#ctx-tokens")
    expect(tokens).to_contain_text(f"{answer['tokens']} of 256 tokens")
    assert int(tokens.get_attribute("data-tokens")) <= int(tokens.get_attribute("data-budget"))
    expect(tokens).to_have_attribute("title", re.compile("cl100k"))
    expect(page.locator("#ctx-text")).to_have_text(answer["text"])
    expect(page.locator("#ctx-text")).to_contain_text("def slugify(text):")
    expect(page.locator("#ctx-index")).to_contain_text(f"answered from {indexed.commit[:7]}")

    page.select_option("#ctx-format", "json")
    items = answer_of(page, "/api/v1/context", lambda: page.click("#ctx-submit")).json()["items"]
    expect(page.locator("#ctx-text")).to_be_hidden()
    shown = page.locator("#ctx-items > li")
    expect(shown).to_have_count(len(items))
    first = items[0]
    expect(shown.first.locator("button.link")).to_have_text(
        f"{first['path']}:{first['start_line']}–{first['end_line']}"
        if first["end_line"] != first["start_line"] else f"{first['path']}:{first['start_line']}")
    expect(shown.first).to_contain_text(first["reason"])
    expect(shown.first.locator("pre")).to_contain_text(first["text"].splitlines()[0])
    page.screenshot(path=str(SCREENSHOTS / "query_page_context.png"), full_page=True)


def test_the_impact_form_shows_risk_dependents_and_tests(page: Page):
    sign_in(page)
    open_tab(page, "impact")
    expect(page.locator("#imp-repo option")).to_have_count(1, timeout=WAIT_MS)
    page.fill("#imp-files", "app/util.py")
    answer = answer_of(page, "/api/v1/impact", lambda: page.click("#imp-submit")).json()
    (changed,) = answer["changed"]
    assert changed["tests"] == ["tests/test_api.py"]

    expect(page.locator("#imp-summary")).to_have_text(answer["summary"])
    row = page.locator('#imp-changed tr[data-path="app/util.py"]')
    expect(row.locator(".risk")).to_have_text(changed["risk"])
    expect(row.locator(".risk")).to_have_attribute("data-risk", changed["risk"])
    expect(row.locator('[data-field="tests"]')).to_have_text("tests/test_api.py")
    dependents = page.locator("#imp-dependents tbody tr")
    expect(dependents).to_have_count(len(answer["files"]))
    test_row = page.locator('#imp-dependents tr[data-path="tests/test_api.py"]')
    expect(test_row.locator('[data-field="distance"]')).to_have_text("2")
    expect(test_row.locator('[data-field="test"]')).to_have_text("✓ test")
    expect(page.locator('#imp-dependents tr[data-path="app/api.py"] [data-field="test"]')
           ).to_have_text("")
    expect(page.locator("#imp-symbols-count")).to_have_text(f"({len(answer['symbols'])})")
    page.screenshot(path=str(SCREENSHOTS / "query_page_impact.png"), full_page=True)


def test_api_errors_are_shown_with_their_detail(page: Page, indexed: Indexed):
    sign_in(page)
    refused = search(page, "app/util.py", mode="structural", repo="")
    assert refused.status == 400
    expect(page.locator("#search-message")).to_have_text(refused.json()["detail"])
    expect(page.locator("#search-message")).to_have_attribute("data-kind", "error")
    expect(page.locator("#search-answer")).to_be_hidden()

    open_tab(page, "file")
    expect(page.locator("#file-repo option")).to_have_count(1, timeout=WAIT_MS)
    page.fill("#file-path", "app/nope.py")
    unknown = answer_of(page, "/api/v1/graph/dependencies", lambda: page.click("#file-submit"))
    assert unknown.status == 400 and "unknown path" in unknown.json()["detail"]
    expect(page.locator("#file-message")).to_have_text(unknown.json()["detail"])
    page.screenshot(path=str(SCREENSHOTS / "query_page_error.png"))

    open_tab(page, "impact")
    page.check('input[name="imp-mode"][value="commits"]')
    expect(page.locator("#imp-files")).to_be_hidden()
    page.fill("#imp-base", "deadbeef")
    page.fill("#imp-head", indexed.commit[:12])
    missing = answer_of(page, "/api/v1/impact", lambda: page.click("#imp-submit"))
    assert missing.status == 404
    expect(page.locator("#imp-message")).to_have_text(missing.json()["detail"])


def test_answers_say_when_an_ingest_is_under_way(page: Page, queue: SqliteQueue,
                                                 indexed: Indexed):
    # A worker holds a job for the repository: its ingest is under way. Whether it brings
    # a newer commit is not known yet (a forced rebuild of this one would not): not stale.
    queue.enqueue(indexed.url)
    idle = WorkerStatus(worker_id="edge-busy", device="cpu")
    job = queue.claim(idle)
    assert job is not None and job.repo_url == indexed.url
    running = replace(idle, state=WorkerState.RUNNING, repo_url=indexed.url, job_id=job.id,
                      stage="parsing", progress=20.0)
    assert queue.heartbeat(running, job)
    # The control plane reads workers through the status page's cache; let a read made
    # before the heartbeat (the previous test's page polls) expire.
    time.sleep(OverviewCache().ttl)
    try:
        sign_in(page)
        search(page, "slug for a title")
        note = page.locator("#search-index .index-note")
        expect(note).to_contain_text(f"answered from {indexed.commit[:7]}")
        expect(note).to_contain_text("an ingest is under way")
        expect(note).to_have_attribute("data-stale", "false")

        open_tab(page, "repos")
        summary = page.locator("#repo-summary")
        expect(summary.locator('[data-field="commit"]')).to_contain_text("indexing",
                                                                         timeout=WAIT_MS)
        expect(summary.locator('[data-field="last-job"] .badge')).to_have_text("running")
        expect(page.locator("#repo-index")).to_contain_text("an ingest is under way")
    finally:
        done = replace(running, state=WorkerState.IDLE, repo_url="", job_id="", stage="",
                       progress=0.0)
        assert queue.finish(job, JobState.COMPLETE, done, result=JobResult(len(FILES), 1))


def test_a_rejected_token_on_a_query_tab_returns_to_sign_in(page: Page):
    page.goto("/#search")
    page.evaluate("sessionStorage.setItem('na-token', 'an-old-token')")
    page.reload()
    expect(page.locator("#login-error")).to_have_text("Token rejected", timeout=WAIT_MS)
    expect(page.locator("#search-view")).to_be_hidden()
    expect(page.locator("#tabs")).to_be_hidden()

    page.fill("#token", TOKEN)
    page.click("#login")
    expect(page.locator("#search-view")).to_be_visible(timeout=WAIT_MS)  # back where it was
    expect(page.locator("#search-repo option")).to_have_count(2, timeout=WAIT_MS)
    page.click("#signout")
    # nothing of a private repository stays in the page
    assert page.locator("#search-repo option").count() == 0
    expect(page.locator("#token")).to_be_visible()


def test_without_the_text_model_semantic_search_says_why_and_keyword_still_works(
        browser: Browser, indexed: Indexed, tmp_path: Path):
    service = QueryService(lambda: indexed.pipeline.store, lambda: indexed.pipeline.vectors,
                           lambda: QueryEncoder(tmp_path / "no-model" / "model.onnx"),
                           allow_local=True, owns_stores=False)
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    live = _serve(service, queue, tmp_path)
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live.url)
    try:
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(tab)
        refused = search(tab, "slug for a title", mode="semantic")
        assert refused.status == 503 and refused.json()["error"] == "model_unavailable"
        message = tab.locator("#search-message")
        expect(message).to_contain_text(refused.json()["detail"])
        expect(message).to_contain_text("keyword and structural search still work")

        found = search(tab, "slug title", mode="keyword")
        assert found.status == 200
        expect(tab.locator("#search-message")).to_be_hidden()
        expect(tab.locator(".hit .loc").first).to_have_text("app/util.py:1")
        # a phone-width screen: only code and the graph scroll sideways, in their boxes
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390
        tab.screenshot(path=str(SCREENSHOTS / "query_page_phone.png"), full_page=True)
        tab.locator(".hit .loc").first.click()
        expect(tab.locator("#graph g.node")).to_have_count(4, timeout=WAIT_MS)
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390
        tab.screenshot(path=str(SCREENSHOTS / "query_page_phone_graph.png"), full_page=True)
        assert not errors, errors
    finally:
        context.close()
        live.stop()
        queue.close()
        service.close()
