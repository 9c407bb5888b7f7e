"""The MCP server on a real ingested repository, through the SDK's own client: over
streamable HTTP at /mcp (both protocol generations) and over stdio (`python -m cloud
mcp` on the embedded stores, and against a control plane over HTTP). Each tool's
answer equals the HTTP API's for the same question (timing aside); the admin token
and the allowed hosts guard /mcp; bad arguments, unknown repositories and a full
queue are tool errors after which the session goes on; a scripted agent answers
three questions with the tools alone."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import httpx
import pytest
from mcp import Client

from cloud.mcp_server import tools as tools_mod
from cloud.mcp_server.backends import LocalBackend
from cloud.mcp_server.http import allowed_hosts
from cloud.mcp_server.tools import build_server
from cloud.query import QueryService
from cloud.query import impact as impact_mod
from edge.embed.minilm import MiniLMEncoder
from shared.queue import open_queue
from shared.queue.sqlite import SqliteQueue
from shared.settings import Settings, SettingsError
from tests.mcp_client import (ROOT, ServedApp, http_client, run_async, stdio_client,
                              structured)
from tests.query_repo import FILES, indexed_repo

TOKEN = "mcp-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TOOLS = {"search_code", "get_context", "impact_of_change", "dependencies", "dependents",
         "find_symbol", "list_repositories", "ingest_repository", "sync_repository"}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The repository ingested by the real pipeline, its stores then closed: DATA_DIR is
    free for whichever process opens it next (Qdrant's local mode admits one)."""
    indexed = indexed_repo(tmp_path_factory.mktemp("mcp"), MiniLMEncoder(device="cpu"))
    indexed.close()
    return indexed


@pytest.fixture(scope="module")
def settings(shop) -> Settings:
    return Settings.from_env({"DATA_DIR": str(shop.pipeline.settings.data_dir),
                              "PHAROS_ADMIN_TOKEN": TOKEN, "ALLOW_LOCAL_REPOS": "true"})


@pytest.fixture(scope="module")
def served(settings):
    """The control plane on those stores, on a loopback port."""
    queue, query = open_queue(settings), QueryService.from_settings(settings)
    server = ServedApp(lambda port: replace(settings, port=port), queue, query)
    yield server
    server.stop()
    query.close()
    queue.close()


def api(served: ServedApp, method: str, path: str, **options) -> dict:
    answer = httpx.request(method, served.url + path, headers=AUTH, timeout=120, **options)
    assert answer.status_code == 200, answer.text
    return answer.json()


def questions(repo: str) -> list[tuple[str, dict, tuple]]:
    """(tool, its arguments, the same question to the HTTP API)."""
    search = {"query": "take a percentage off the price", "repo": repo, "limit": 5}
    keyword = {"query": "price", "repo": repo, "mode": "keyword", "path": "shop/**",
               "kind": "function", "limit": 10}
    context = {"task": "make Cart.total round the discount up", "repo": repo,
               "budget_tokens": 1024}
    items = {"task": "send the confirmation email after checkout", "repo": repo,
             "files": ["shop/orders.py"], "budget_tokens": 512, "format": "json"}
    impact = {"repo": repo, "files": ["shop/pricing.py"]}
    graph = {"repo": repo, "path": "shop/cart.py", "kinds": ["IMPORTS"]}
    callers = {"repo": repo, "path": "shop/pricing.py", "symbol": "apply_discount",
               "kinds": ["CALLS"], "depth": 2}
    comma = {**callers, "kinds": "calls,extends"}  # as the HTTP route takes them too
    return [
        ("search_code", search, ("POST", "/api/v1/search", {"json": search})),
        ("search_code", keyword, ("POST", "/api/v1/search", {"json": keyword})),
        ("get_context", context, ("POST", "/api/v1/context", {"json": context})),
        ("get_context", items, ("POST", "/api/v1/context", {"json": items})),
        ("impact_of_change", impact, ("POST", "/api/v1/impact", {"json": impact})),
        ("dependencies", graph, ("GET", "/api/v1/graph/dependencies", {"params": {
            **graph, "kinds": "IMPORTS", "limit": 100}})),
        ("dependents", callers, ("GET", "/api/v1/graph/dependents", {"params": {
            **callers, "kinds": "CALLS", "limit": 100}})),
        ("dependents", comma, ("GET", "/api/v1/graph/dependents", {"params": {
            **comma, "limit": 100}})),
        ("list_repositories", {}, ("GET", "/api/v1/repos", {})),
    ]


def http_answers(served: ServedApp, repo: str) -> list[dict]:
    """The HTTP API's answers to `questions` (asked after the tools: the repository list
    shows the registry's state of now)."""
    return [api(served, method, path, **options)
            for _, _, (method, path, options) in questions(repo)]


def untimed(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "took_ms"}


def assert_same(tool: str, got: dict, want: dict) -> None:
    if tool == "list_repositories" and not all("stale" in r for r in want["repos"]):
        # without the registry's `stale`, the tool's is `indexing`
        assert all(repo["stale"] == repo["indexing"] for repo in got["repos"])
        got = {**got, "repos": [{k: v for k, v in r.items() if k != "stale"}
                                for r in got["repos"]]}
    assert untimed(got) == untimed(want), tool


def assert_all_same(repo: str, answers: list[dict], expected: list[dict]) -> None:
    assert len(answers) == len(expected) == len(questions(repo))
    for (tool, _, _), got, want in zip(questions(repo), answers, expected):
        assert_same(tool, got, want)


async def ask_everything(client: Client, repo: str) -> list[dict]:
    return [structured(await client.call_tool(tool, arguments))
            for tool, arguments, _ in questions(repo)]


# --- streamable HTTP -------------------------------------------------------------------------

def test_the_tools_are_listed_with_their_input_and_output_schemas(served):
    async def main():
        async with http_client(f"{served.url}/mcp", TOKEN) as client:
            return (await client.list_tools()).tools
    listed = {tool.name: tool for tool in run_async(main)}
    assert set(listed) == TOOLS
    for tool in listed.values():
        assert tool.description and tool.output_schema["type"] == "object", tool.name
        evidence = "repos" if tool.name == "list_repositories" else "index"
        assert evidence in tool.output_schema["properties"], tool.name
    assert listed["search_code"].input_schema["required"] == ["query"]
    assert set(listed["get_context"].input_schema["required"]) == {"task", "repo"}
    assert listed["list_repositories"].annotations.read_only_hint is True
    assert listed["ingest_repository"].annotations.read_only_hint is False


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_each_tool_answers_as_the_http_api_does(served, shop, mode):
    async def main():
        async with http_client(f"{served.url}/mcp", TOKEN, mode) as client:
            return await ask_everything(client, shop.url)
    answers = run_async(main)
    assert_all_same(shop.url, answers, http_answers(served, shop.url))
    assert answers[0]["index"][0]["commit"] and answers[0]["index"][0]["stale"] is False


def test_find_symbol(served, shop):
    async def main():
        async with http_client(f"{served.url}/mcp", TOKEN) as client:
            cart = structured(await client.call_tool("find_symbol", {
                "repo": shop.url, "name": "Cart"}))
            total = structured(await client.call_tool("find_symbol", {
                "repo": shop.url, "name": "Cart.total", "kind": "method"}))
            on_main = structured(await client.call_tool("find_symbol", {
                "repo": shop.url, "name": "Cart", "ref": "main"}))
            elsewhere = await client.call_tool("find_symbol", {
                "repo": shop.url, "name": "Cart", "ref": "nope"})
            return cart, total, on_main, elsewhere
    cart, total, on_main, elsewhere = run_async(main)
    # ref as on every graph route: the default branch by name is the same index
    assert untimed(on_main) == untimed(cart) == untimed(api(
        served, "GET", "/api/v1/graph/symbols", params={"repo": shop.url, "name": "Cart",
                                                        "ref": "main"}))
    assert elsewhere.is_error and "branch nope of" in elsewhere.content[0].text
    assert untimed(cart) == untimed(served.query.symbols({"repo": shop.url, "name": "Cart"}))
    assert [(r["path"], r["kind"], r["start_line"]) for r in cart["results"]] == [
        ("shop/cart.py", "class", 5)]
    assert [r["name"] for r in total["results"]] == ["Cart.total"]
    assert cart["index"]["repo"] == shop.url and cart["index"]["stale"] is False


def test_ingest_and_sync_go_through_the_same_queue_and_registry_as_the_api(served, shop):
    store = served.query.store

    async def main():
        async with http_client(f"{served.url}/mcp", TOKEN) as client:
            ingest = structured(await client.call_tool("ingest_repository", {"url": shop.url}))
            (listed,) = structured(await client.call_tool("list_repositories", {}))["repos"]
            by_id = structured(await client.call_tool("sync_repository", {
                "repo": str(listed["id"]), "force": True}))
            forced = store.repo_record(shop.url).force_next
            store.rebuilt(shop.url, store.forced(shop.url))
            by_url = structured(await client.call_tool("sync_repository", {"repo": shop.url}))
            unknown = await client.call_tool("sync_repository", {"repo": "github.com/a/b"})
            return ingest, listed, by_id, forced, by_url, unknown
    ingest, listed, by_id, forced, by_url, unknown = run_async(main)
    # the pending job comes back to POST /ingest and to POST /repos/{id}/sync as a duplicate
    again = api(served, "POST", f"/api/v1/ingestion/ingest/{shop.url}")
    assert again["duplicate"] and again["job_id"] == ingest["job_id"]
    assert {k: v for k, v in ingest.items() if k != "index"} == {**again, "duplicate": False}
    assert ingest["index"]["commit"] == listed["commit"] and listed["url"] == shop.url
    assert listed["state"] == "queued" and listed["id"] is not None  # registered on ingest
    synced = httpx.post(f"{served.url}/api/v1/repos/{listed['id']}/sync", headers=AUTH,
                        json={"force": False}, timeout=60).json()
    assert {k: v for k, v in by_url.items() if k != "index"} == synced
    assert by_id["job_id"] == by_url["job_id"] == ingest["job_id"] and by_id["duplicate"]
    assert by_id["force"] is True and forced is True and by_url["force"] is False
    assert unknown.is_error and "no repository 'github.com/a/b' in the registry" in \
        unknown.content[0].text


def test_mcp_needs_the_admin_token_and_an_allowed_host(served):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        answer = httpx.post(f"{served.url}/mcp", json=body, headers={**headers, **auth})
        assert answer.status_code == 401, auth
        assert answer.json()["error"] == "unauthorized"
        assert answer.headers["www-authenticate"].startswith("Bearer")
    rebinding = httpx.post(f"{served.url}/mcp", json=body,
                           headers={**headers, **AUTH, "Host": "attacker.example"})
    assert rebinding.status_code == 421  # as JSON, like every other error of the API
    assert rebinding.headers["content-type"] == "application/json"
    assert rebinding.json() == {
        "error": "misdirected_request",
        "detail": "the Host header 'attacker.example' is not one /mcp answers"
                  " (DNS-rebinding guard): add it to MCP_ALLOWED_HOSTS"}
    foreign = httpx.post(f"{served.url}/mcp", json=body,
                         headers={**headers, **AUTH, "Origin": "http://attacker.example"})
    assert foreign.status_code == 403 and foreign.json()["error"] == "forbidden"
    assert "Origin" in foreign.json()["detail"]
    not_json = httpx.post(f"{served.url}/mcp", content=b"{}",
                          headers={**headers, **AUTH, "Content-Type": "text/plain"})
    assert not_json.status_code == 400 and not_json.json()["error"] == "bad_request"
    assert allowed_hosts(served.settings) == [f"localhost:{served.port}",
                                              f"127.0.0.1:{served.port}",
                                              f"[::1]:{served.port}"]


def test_bad_arguments_and_unknown_repositories_are_tool_errors(served, shop):
    async def main():
        async with http_client(f"{served.url}/mcp", TOKEN) as client:
            failures = [await client.call_tool(tool, arguments) for tool, arguments in [
                ("search_code", {"query": "price", "mode": "fuzzy"}),
                ("get_context", {"task": "x", "repo": shop.url, "budget_tokens": 100}),
                ("impact_of_change", {"repo": shop.url}),
                ("dependencies", {"repo": shop.url, "path": "shop/nothing.py"}),
                ("search_code", {"query": "price", "repo": "github.com/nobody/nothing"}),
                ("find_symbol", {"repo": shop.url, "name": "Cart", "commit": "abcdef1"}),
                ("ingest_repository", {"url": "ssh://github.com/psf/requests"}),
                ("search_code", {}),
                ("search_code", {"query": "price", "limit": 51}),
                ("search_code", {"query": "price", "bogus": 1}),
                ("dependents", {"repo": shop.url, "path": "shop/cart.py", "kinds": "CALLZ"}),
                ("dependents", {"repo": shop.url, "path": "shop/cart.py", "kinds": 5}),
                ("get_context", {"task": "x", "repo": shop.url, "budget_tokens": 16_001}),
                ("find_symbol", {"repo": shop.url, "name": "Cart", "kind": "module"}),
            ]]
            after = structured(await client.call_tool("list_repositories", {}))
            return failures, after
    failures, after = run_async(main)
    texts = [result.content[0].text for result in failures]
    assert all(result.is_error for result in failures), texts
    assert "mode" in texts[0] and "budget_tokens" in texts[1]
    assert "give files (the changed paths) or base and head" in texts[2]
    assert "unknown path 'shop/nothing.py'" in texts[3]
    assert "https://github.com/nobody/nothing is not indexed" in texts[4]
    assert "[not_found]" in texts[4] and "ingest_repository" in texts[4]
    assert "is not an indexed commit" in texts[5]
    assert "[invalid_repo_url]" in texts[6] and "query" in texts[7]
    # worded as the HTTP API words the same checks, with its code; never pydantic's report
    assert texts[7].endswith("query is required [bad_request]")
    assert texts[8].endswith("limit must be between 1 and 50, got 51 [bad_request]")
    assert texts[9].endswith("unknown field 'bogus'; allowed: kind, language, limit, mode, "
                             "path, query, ref, repo [bad_request]")
    assert "kinds: 'CALLZ' is not one of IMPORTS" in texts[10]  # the query layer's check
    assert texts[11].endswith("kinds must be a list of strings or a string [bad_request]")
    assert texts[12].endswith("budget_tokens must be between 256 and 16000, got 16001 "
                              "[bad_request]")
    assert texts[13].endswith("kind must be one of function | method | class, got 'module' "
                              "[bad_request]")
    assert not any("pydantic" in text or "validation error" in text for text in texts)
    http = httpx.post(served.url + "/api/v1/context", headers=AUTH, json={
        "task": "x", "repo": shop.url, "budget_tokens": 16_001}).json()
    assert texts[12].endswith(f"{http['detail']} [{http['error']}]")  # one limit, one message
    assert [repo["url"] for repo in after["repos"]] == [shop.url]  # the session goes on


def test_every_tool_refuses_arguments_it_does_not_declare(served):
    async def main():
        async with http_client(f"{served.url}/mcp", TOKEN) as client:
            listed = (await client.list_tools()).tools
            return listed, [await client.call_tool(tool.name, {"bogus": 1}) for tool in listed]
    listed, results = run_async(main)
    for tool, result in zip(listed, results):
        assert tool.input_schema["additionalProperties"] is False, tool.name
        assert result.is_error and "unknown field 'bogus'; allowed: " in \
            result.content[0].text, tool.name


def test_a_full_queue_is_a_tool_error(served, tmp_path):
    """On stores of its own: an ingest registers its repository."""
    settings = replace(served.settings, data_dir=tmp_path)
    queue, query = SqliteQueue(tmp_path / "queue.db", max_queue_size=1), \
        QueryService.from_settings(settings)
    server = build_server(LocalBackend(query, queue, settings))

    async def main():
        async with Client(server) as client:
            first = await client.call_tool("ingest_repository", {"url": "github.com/a/one"})
            full = await client.call_tool("ingest_repository", {"url": "github.com/a/two"})
            after = await client.call_tool("list_repositories", {})
            return first, full, after
    try:
        first, full, after = run_async(main)
    finally:
        queue.close()
        query.close()
    assert structured(first)["queue_position"] == 1 and structured(first)["index"] is None
    assert full.is_error and "queue is full" in full.content[0].text
    assert "[queue_full]" in full.content[0].text
    assert [r["url"] for r in structured(after)["repos"]] == ["https://github.com/a/one"]


def test_answers_are_bounded_and_say_what_was_cut(served, shop, monkeypatch):
    monkeypatch.setattr(tools_mod, "MAX_SNIPPET", 20)
    monkeypatch.setattr(tools_mod, "MAX_LISTED", 1)
    monkeypatch.setattr(tools_mod, "MAX_TEXT", 200)
    server = build_server(LocalBackend(served.query, served.queue, served.settings))
    search = {"query": "take a percentage off the price", "repo": shop.url, "limit": 5}
    impact = {"repo": shop.url, "files": ["shop/pricing.py"]}
    context = {"task": "make Cart.total round the discount up", "repo": shop.url}

    async def main():
        async with Client(server) as client:
            return [structured(await client.call_tool(tool, arguments)) for tool, arguments
                    in [("search_code", search), ("impact_of_change", impact),
                        ("get_context", context)]]
    hits, dependents, text = run_async(main)
    assert all(len(h["snippet"]) <= 20 + len(tools_mod.CUT) for h in hits["results"])
    assert any("snippet" in note for note in hits["notes"])
    assert len(dependents["files"]) == 1 and dependents["truncated"] is True
    assert any("dependent files" in note for note in dependents["notes"])
    assert text["text"].endswith(tools_mod.CUT) and "the context was cut" in text["notes"][-1]
    # the query layer's cached answers are left whole
    full = api(served, "POST", "/api/v1/impact", json=impact)
    assert len(full["files"]) > 1 and full["truncated"] is False
    assert f"dependent files: the first 1 of {full['total_files']} are listed" in \
        dependents["notes"]


def test_every_cut_says_so_with_the_true_totals(served, shop, monkeypatch):
    """A graph answer cut at `limit`, and an impact answer the API cut before the tool
    did: the notes give how many there are, not how many came."""
    monkeypatch.setattr(impact_mod, "MAX_LISTED", 2)  # the API's cap, under the tool's
    server = build_server(LocalBackend(served.query, served.queue, served.settings))
    impact = {"repo": shop.url, "files": ["shop/models.py"]}
    graph = {"repo": shop.url, "path": "shop/models.py", "depth": 10}

    async def main():
        async with Client(server) as client:
            return [structured(await client.call_tool(tool, arguments)) for tool, arguments
                    in [("impact_of_change", impact), ("dependents", {**graph, "limit": 1}),
                        ("dependents", graph)]]
    cut, capped, whole = run_async(main)
    assert cut["total_files"] > 2 and len(cut["files"]) == 2 and cut["truncated"] is True
    assert f"dependent files: the first 2 of {cut['total_files']} are listed" in cut["notes"]
    assert str(cut["total_files"]) in cut["summary"]  # the summary counts them all too
    assert capped["truncated"] and capped["total"] == whole["total"] > 1
    assert capped["notes"] == [f"dependents: the first 1 of {whole['total']} are listed; "
                               "a higher limit (at most 200) lists more"]
    assert "notes" not in whole and whole["truncated"] is False


# --- stdio -----------------------------------------------------------------------------------

def test_stdio_on_the_embedded_stores_answers_as_the_http_api(served, shop):
    served.query.close()  # frees the Qdrant folder for the child; reopened on next use

    async def main():
        async with stdio_client({"DATA_DIR": str(served.settings.data_dir),
                                 "ALLOW_LOCAL_REPOS": "true"}) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            answers = await ask_everything(client, shop.url)
            cart = structured(await client.call_tool("find_symbol", {
                "repo": shop.url, "name": "Cart"}))
            unknown = await client.call_tool("search_code", {
                "query": "x", "repo": "github.com/nobody/nothing"})
            return listed, answers, cart, unknown
    listed, answers, cart, unknown = run_async(main)
    assert listed == TOOLS
    assert_all_same(shop.url, answers, http_answers(served, shop.url))
    assert untimed(cart) == untimed(served.query.symbols({"repo": shop.url, "name": "Cart"}))
    assert unknown.is_error and "is not indexed" in unknown.content[0].text


def test_stdio_against_a_control_plane_over_http(served, shop):
    async def main():
        async with stdio_client({"NEO_ALEXANDRIA_URL": served.url,
                                 "NEO_ALEXANDRIA_TOKEN": TOKEN}) as client:
            answers = await ask_everything(client, shop.url)
            cart = structured(await client.call_tool("find_symbol", {
                "repo": shop.url, "name": "Cart"}))
            refused = await client.call_tool("ingest_repository", {"url": "ftp://x/y"})
            ingest = structured(await client.call_tool("ingest_repository", {"url": shop.url}))
            sync = structured(await client.call_tool("sync_repository", {"repo": shop.url}))
            return answers, cart, refused, ingest, sync
    answers, cart, refused, ingest, sync = run_async(main)
    assert_all_same(shop.url, answers, http_answers(served, shop.url))
    again = api(served, "POST", f"/api/v1/ingestion/ingest/{shop.url}")
    assert ingest["job_id"] == sync["job_id"] == again["job_id"] and sync["force"] is False
    assert ingest["index"]["commit"] == answers[0]["index"][0]["commit"]
    # without GET /api/v1/graph/symbols a keyword search finds the same definition, and says so
    local = served.query.symbols({"repo": shop.url, "name": "Cart"})
    assert cart["results"] == local["results"] and cart["index"] == local["index"]
    routed = httpx.get(f"{served.url}/api/v1/graph/symbols", headers=AUTH,
                       params={"repo": shop.url, "name": "Cart"}).status_code == 200
    assert routed or "keyword search" in cart["notes"][0]
    assert not routed or "notes" not in cart
    assert refused.is_error and "[invalid_repo_url]" in refused.content[0].text


def test_stdio_refuses_a_wrong_configuration_before_speaking():
    done = subprocess.run([sys.executable, "-m", "cloud", "mcp"], cwd=ROOT, input="",
                          capture_output=True, text=True, timeout=60,
                          env={**{k: v for k, v in os.environ.items()
                                  if not k.startswith("NEO_ALEXANDRIA_")},
                               "NEO_ALEXANDRIA_URL": "https://cp.example.com"})
    assert done.returncode == 2 and done.stdout == ""
    assert "NEO_ALEXANDRIA_TOKEN" in done.stderr
    usage = subprocess.run([sys.executable, "-m", "cloud", "mpc"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "usage: python -m cloud [mcp]" in usage.stderr


# --- an agent --------------------------------------------------------------------------------

def test_an_agent_answers_three_questions_with_the_tools_alone(served):
    """Where is apply_discount defined? What breaks if that file changes? What does a
    task on Cart.total need to read? Only tool calls, starting from the repository list."""
    async def main():
        async with http_client(f"{served.url}/mcp", TOKEN) as client:
            (repo,) = structured(await client.call_tool("list_repositories", {}))["repos"]
            where = structured(await client.call_tool("find_symbol", {
                "repo": repo["url"], "name": "apply_discount"}))
            (definition,) = where["results"]
            breaks = structured(await client.call_tool("impact_of_change", {
                "repo": repo["url"], "files": [definition["path"]]}))
            context = structured(await client.call_tool("get_context", {
                "repo": repo["url"], "budget_tokens": 1024,
                "task": "Cart.total should round the discounted total up to whole cents"}))
            return repo, definition, breaks, context, where
    repo, definition, breaks, context, where = run_async(main)

    lines = FILES[definition["path"]].split("\n")
    assert definition["path"] == "shop/pricing.py" and definition["kind"] == "function"
    assert lines[definition["start_line"] - 1].startswith("def apply_discount(")

    (changed,) = breaks["changed"]
    assert {f["path"] for f in breaks["files"]} >= {"shop/cart.py", "tests/test_cart.py"}
    assert "Cart.total" in {s["name"] for s in breaks["symbols"]}
    assert changed["tests"] == ["tests/test_cart.py"]

    assert "def total(self" in context["text"] and "apply_discount" in context["text"]
    assert context["tokens"] <= 1024
    for answer in (where, breaks, context):
        assert answer["index"]["commit"] == repo["commit"] and not answer["index"]["stale"]


# --- settings --------------------------------------------------------------------------------

def test_mcp_settings_are_read_and_checked():
    hosts = Settings.from_env({"MCP_ALLOWED_HOSTS": "mcp.example.com, 10.0.0.5:8000,x:*"})
    assert allowed_hosts(hosts) == ["mcp.example.com", "10.0.0.5:8000", "x:*"]
    public = Settings.from_env({"HOST": "192.168.1.20", "PORT": "9000"})
    assert allowed_hosts(public)[-1] == "192.168.1.20:9000"
    assert "0.0.0.0:8000" not in allowed_hosts(Settings.from_env({"HOST": "0.0.0.0"}))
    for wrong in ("https://mcp.example.com", "a/b", "host:port"):
        with pytest.raises(SettingsError, match="MCP_ALLOWED_HOSTS"):
            Settings.from_env({"MCP_ALLOWED_HOSTS": wrong})
    with pytest.raises(SettingsError, match="NEO_ALEXANDRIA_TOKEN"):
        Settings.from_env({"NEO_ALEXANDRIA_URL": "https://cp.example.com"})
    with pytest.raises(SettingsError, match="NEO_ALEXANDRIA_URL"):
        Settings.from_env({"NEO_ALEXANDRIA_URL": "http://cp.example.com",
                           "NEO_ALEXANDRIA_TOKEN": "t"})
    remote = Settings.from_env({"NEO_ALEXANDRIA_URL": "http://127.0.0.1:8000/",
                                "NEO_ALEXANDRIA_TOKEN": "secret-token"})
    assert remote.remote_url == "http://127.0.0.1:8000" and "secret-token" not in repr(remote)


def test_the_control_plane_loads_the_sdk_on_the_first_mcp_request_only():
    """27 MB of imports that a control plane nobody asks over MCP does without."""
    probe = ("import sys, cloud.app, cloud.__main__\n"
             "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_an_account_key_sees_its_own_repositories_with_its_scopes(served, shop):
    """/mcp takes API keys as the API does: an account's key is answered from its own
    repositories, with its scopes, its queries counted against its plan."""
    store = served.query.store
    account = store.create_account("Agents", "agents@example.org")
    _, reader = store.create_key(account.id, "agent", ["read"])

    async def ask(secret: str):
        async with http_client(f"{served.url}/mcp", secret) as client:
            listed = structured(await client.call_tool("list_repositories", {}))
            search = await client.call_tool("search_code", {"query": "price",
                                                            "repo": shop.url})
            ingest = await client.call_tool("ingest_repository",
                                            {"url": "https://github.com/psf/requests"})
            return listed, search, ingest
    listed, search, ingest = run_async(ask, reader)
    assert listed["repos"] == [] and search.is_error and ingest.is_error
    assert f"{shop.url} is not indexed" in search.content[0].text  # as if it did not exist
    assert "lacks the 'ingest' scope" in ingest.content[0].text
    store.grant_repo(shop.url, account.id)
    listed, search, _ = run_async(ask, reader)
    assert [repo["url"] for repo in listed["repos"]] == [shop.url]
    assert structured(search)["results"] and structured(search)["index"][0]["repo"] == shop.url
    usage = httpx.get(f"{served.url}/api/v1/usage", headers={"Authorization": f"Bearer {reader}"})
    assert usage.json()["days"][-1]["queries"] == 2  # one refused, one answered: both asked
    store.revoke_key(store.keys(account.id)[0].id)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    gone = httpx.post(f"{served.url}/mcp", json=body,
                      headers={"Accept": "application/json, text/event-stream",
                               "Authorization": f"Bearer {reader}"})
    assert gone.status_code == 401
