"""The MCP tools for coding agents: thin adapters from a tool call to a Backend question.

Each tool takes the HTTP API's parameters (the query layer checks them: one set of
rules for every face), answers with the API's JSON bounded for an agent's context
(lists capped, long texts cut, a `notes` entry saying what was cut) and keeps the
answer's evidence: `index` (repository, commit, indexed_at, stale, indexing). A
failure the agent can act on (bad argument, unknown repository, full queue, a store
down) is a tool error carrying the API's message; a bug is a tool error too, without
its text (the SDK logs it), so no call ends a session.
"""
from __future__ import annotations

import json
import logging
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from cloud.auth import OWNER, Principal
from cloud.mcp_server.backends import Backend, BackendError
from cloud.mcp_server.shapes import (
    ContextOutput,
    ImpactOutput,
    IngestOutput,
    NeighboursOutput,
    ReposOutput,
    SearchOutput,
    SymbolsOutput,
    SyncOutput,
)

NAME = "neo-alexandria"
INSTRUCTIONS = (
    "Neo Alexandria answers questions about indexed code repositories from their "
    "dependency graph and embeddings. list_repositories shows what is indexed; "
    "ingest_repository indexes a new one. Every answer names the commit it comes from "
    "(index.commit) and says when that commit is stale (an ingest under way will replace "
    "it). Paths are repository-relative; lines are 1-based.")
MAX_SEARCH = 50  # hits per search (the API allows 100)
MAX_GRAPH = 200  # dependencies / dependents per call (the API allows 1,000)
MAX_LISTED = 200  # impact: dependent files, dependent symbols
MAX_REPOS = 200
MAX_SYMBOLS = 100
MAX_BUDGET = 16_000  # context tokens (the API allows 32,000)
MAX_SNIPPET = 1_000  # characters of a search hit's snippet (six lines of minified code...)
MAX_TEXT = 80_000  # characters of a context (16,000 tokens are ~64,000 of code)
CUT = "\n… [cut]"

Repo = Annotated[str, Field(description=(
    "The repository, as ingest takes it: an https URL or host/owner/repo "
    "(github.com/psf/requests); list_repositories shows the indexed ones"))]
Commit = Annotated[str | None, Field(description=(
    "An indexed commit, 4-64 hex digits (default: the newest ready one)"))]
Ref = Annotated[str | None, Field(description=(
    "A tracked branch (default: the default branch): that branch's own index answers"))]
FilePath = Annotated[str, Field(description="The file, repository-relative")]
SymbolIn = Annotated[str | None, Field(description=(
    "A symbol in that file, by qualified or own name (default: the file)"))]
Paths = Annotated[list[str] | None, Field(description="Repository-relative paths (at most 200)")]
EdgeKinds = Annotated[list[Literal["IMPORTS", "CALLS", "EXTENDS", "CONTAINS"]] | None, Field(
    description="Edge kinds to follow (default IMPORTS, CALLS, EXTENDS)")]
Depth = Annotated[int, Field(ge=1, le=10, description="How many edges away, 1-10")]
GraphLimit = Annotated[int, Field(ge=1, le=MAX_GRAPH, description=f"Result cap (1-{MAX_GRAPH})")]

READ = dict(read_only_hint=True, open_world_hint=False)
QUEUE = dict(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
             open_world_hint=True)


class Tools:
    """One method per tool; its docstring is what the agent reads."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def search_code(
        self,
        query: Annotated[str, Field(description=(
            "What to find, in words or identifiers (1-1,000 characters); in structural "
            "mode a file path or symbol name"))],
        repo: Annotated[str | None, Field(description=(
            "The repository (default: every indexed one), as ingest takes it"))] = None,
        ref: Ref = None,
        mode: Annotated[Literal["hybrid", "semantic", "keyword", "structural"], Field(
            description=("hybrid (default): meaning and words; semantic: meaning; keyword: "
                         "words and identifier parts (BM25); structural: files nearest in "
                         "the import graph to the file or symbol named by query"))] = "hybrid",
        limit: Annotated[int, Field(ge=1, le=MAX_SEARCH,
                                    description=f"Hits, 1-{MAX_SEARCH}")] = 10,
        path: Annotated[str | None, Field(description=(
            "Only paths matching this glob: * ? [..] ** (src/**/*.py)"))] = None,
        language: Annotated[Literal["python", "javascript", "typescript", "tsx"] | None, Field(
            description="Only this language (typescript includes tsx)")] = None,
        kind: Annotated[Literal["function", "method", "class", "file"] | None, Field(
            description="Only this kind of symbol")] = None,
        ctx: Context | None = None,
    ) -> SearchOutput:
        """Search code: the functions, methods, classes or files that match a question,
        best first, each with its path, qualified name, 1-based lines, a snippet and the
        signals that ranked it."""
        answer = self._ask(ctx, "search", _present(query=query, repo=repo, ref=ref, mode=mode,
                                                   limit=limit,
                                              path=path, language=language, kind=kind))
        notes: list[str] = []
        hits = [{**hit, "snippet": _cut(hit["snippet"], MAX_SNIPPET,
                                        f"the snippet of {hit['name']}", notes)}
                for hit in answer["results"]]
        return _result({**answer, "results": hits}, notes)

    def get_context(
        self,
        task: Annotated[str, Field(description=(
            "The task in words, as for a colleague (1-4,000 characters); name the files "
            "or symbols you know"))],
        repo: Repo,
        ref: Ref = None,
        budget_tokens: Annotated[int, Field(ge=256, le=MAX_BUDGET, description=(
            f"The most tokens (cl100k_base) the context may take, 256-{MAX_BUDGET:,}"))] = 2_048,
        files: Annotated[list[str] | None, Field(description=(
            "Files being edited (repository-relative): their symbols come first"))] = None,
        format: Annotated[Literal["markdown", "json"], Field(description=(
            "markdown (default): one text to read; json: items with path, lines, "
            "text and why each was chosen"))] = "markdown",
        ctx: Context | None = None,
    ) -> ContextOutput:
        """The code a task needs, within a token budget: the symbols the task names or
        the search finds, then what they call and what calls them, whole bodies first and
        signatures when the budget runs short."""
        answer = self._ask(ctx, "context", _present(task=task, repo=repo, ref=ref, files=files,
                                               budget_tokens=budget_tokens, format=format))
        notes: list[str] = []
        if "text" in answer:
            answer = {**answer, "text": _cut(answer["text"], MAX_TEXT, "the context", notes)}
        if "items" in answer:
            answer = {**answer, "items": [
                {**item, "text": _cut(item["text"], MAX_TEXT, f"{item['name']}'s text", notes)}
                for item in answer["items"]]}
        return _result(answer, notes)

    def impact_of_change(
        self,
        repo: Repo,
        ref: Ref = None,
        files: Paths = None,
        base: Annotated[str | None, Field(description=(
            "Instead of files: the indexed commit before the change (with head)"))] = None,
        head: Annotated[str | None, Field(description=(
            "Instead of files: the indexed commit after the change (with base)"))] = None,
        ctx: Context | None = None,
    ) -> ImpactOutput:
        """What breaks if files change: the files that import them (any depth) and the
        symbols that call or extend theirs, with distance, which are tests, and a risk
        (low, medium, high) per changed file. Give files, or base and head."""
        answer = self._ask(ctx, "impact", _present(repo=repo, ref=ref, files=files, base=base,
                                                   head=head))
        notes: list[str] = []
        answer = {**answer,
                  "files": _capped(answer["files"], MAX_LISTED, "dependent files", notes),
                  "symbols": _capped(answer["symbols"], MAX_LISTED, "dependent symbols",
                                     notes)}
        if notes:
            answer["truncated"] = True
        return _result(answer, notes)

    def dependencies(
        self,
        repo: Repo,
        path: FilePath,
        symbol: SymbolIn = None,
        depth: Depth = 1,
        kinds: EdgeKinds = None,
        commit: Commit = None,
        ref: Ref = None,
        limit: GraphLimit = 100,
        ctx: Context | None = None,
    ) -> NeighboursOutput:
        """What a file or symbol depends on (imports, calls, extends), up to depth edges
        away, nearest first."""
        return _result(self._ask(ctx, "dependencies", _present(
            repo=repo, ref=ref, path=path, symbol=symbol, depth=depth, kinds=kinds, commit=commit,
            limit=limit)))

    def dependents(
        self,
        repo: Repo,
        path: FilePath,
        symbol: SymbolIn = None,
        depth: Depth = 1,
        kinds: EdgeKinds = None,
        commit: Commit = None,
        ref: Ref = None,
        limit: GraphLimit = 100,
        ctx: Context | None = None,
    ) -> NeighboursOutput:
        """What depends on a file or symbol (imports it, calls it, extends it), up to
        depth edges away, nearest first."""
        return _result(self._ask(ctx, "dependents", _present(
            repo=repo, ref=ref, path=path, symbol=symbol, depth=depth, kinds=kinds, commit=commit,
            limit=limit)))

    def find_symbol(
        self,
        repo: Repo,
        name: Annotated[str, Field(description=(
            "The symbol's own name (total) or qualified name (Cart.total), exactly"))],
        kind: Annotated[Literal["function", "method", "class"] | None, Field(
            description="Only this kind")] = None,
        commit: Commit = None,
        ref: Ref = None,
        limit: Annotated[int, Field(ge=1, le=MAX_SYMBOLS,
                                    description=f"Result cap (1-{MAX_SYMBOLS})")] = 20,
        ctx: Context | None = None,
    ) -> SymbolsOutput:
        """Where a function, method or class is defined: every definition of that name,
        with its file and 1-based lines."""
        return _result(self._ask(ctx, "symbols", _present(repo=repo, ref=ref, name=name, kind=kind,
                                                     commit=commit, limit=limit)))

    def list_repositories(self, ctx: Context | None = None) -> ReposOutput:
        """The indexed repositories: the commit each answers from, when it was indexed,
        whether that is stale (an ingest is under way), sizes, languages and last job."""
        answer = self._ask(ctx, "repos")
        notes: list[str] = []
        repos = [{**repo, "stale": repo.get("stale", repo["indexing"])}
                 for repo in _capped(answer["repos"], MAX_REPOS, "repositories", notes)]
        return _result({**answer, "repos": repos}, notes)

    def ingest_repository(
        self,
        url: Annotated[str, Field(description=(
            "The repository: an https URL or host/owner/repo (github.com/psf/requests)"))],
        ctx: Context | None = None,
    ) -> IngestOutput:
        """Queue a repository for indexing (clone, parse, graph, embeddings). A
        repository already waiting gets its pending job back (duplicate). The answer
        includes what is indexed now (index, null before the first ingest completes);
        list_repositories shows progress."""
        answer = self._ask(ctx, "ingest", url)
        return _result({**answer, "index": self._index_of(ctx, answer["target"])})

    def sync_repository(
        self,
        repo: Annotated[str, Field(description=(
            "A registered repository: its URL as ingest takes it, or its id "
            "(list_repositories shows both)"))],
        force: Annotated[bool, Field(description=(
            "Rebuild from nothing rather than reuse the last ingest's results"))] = False,
        branch: Annotated[str | None, Field(description=(
            "A tracked branch (default: the default branch)"))] = None,
        ctx: Context | None = None,
    ) -> SyncOutput:
        """Bring a registered repository up to its remote's newest commit: queue a sync
        (only changed files are parsed and embedded again, unless force), or join the
        sync already queued."""
        answer = self._ask(ctx, "sync", repo, force, branch)
        return _result({**answer, "index": self._index_of(ctx, answer["target"])})

    # --- helpers -------------------------------------------------------------------------
    def _ask(self, ctx: Context | None, question: str, *args: Any) -> dict:
        try:
            return getattr(self.backend.for_caller(_caller(ctx)), question)(*args)
        except BackendError as exc:
            hint = (" (list_repositories shows what is indexed; ingest_repository indexes "
                    "a repository)" if exc.code == "not_found" else "")
            raise ToolError(f"{exc.detail}{hint} [{exc.code}]") from None

    def _index_of(self, ctx: Context | None, url: str) -> dict | None:
        """What is indexed of `url` now, as answers name it; None when nothing is (or the
        repository list cannot be read: the job is queued all the same)."""
        try:
            repos = self.backend.for_caller(_caller(ctx)).repos()["repos"]
        except BackendError:
            return None
        for repo in repos:
            if repo["url"] == url and repo.get("commit"):
                return {"repo": url, "commit": repo["commit"], "indexed_at": repo["indexed_at"],
                        "stale": repo.get("stale", repo["indexing"]),
                        "indexing": repo["indexing"]}
        return None


def _caller(ctx: Context | None) -> Principal:
    """Who calls the tool: over HTTP, whom /mcp's guard admitted (cloud/mcp_server/
    http.py); over stdio (no request), the local owner."""
    try:
        request = ctx.request_context.request if ctx is not None else None
    except ValueError:  # no request context: not called through a session
        request = None
    if request is None:
        return OWNER
    who = (request.scope.get("state") or {}).get("principal")
    if who is None:  # admitted without a caller: never answer as the owner by default
        raise ToolError("the request was not authenticated [unauthorized]")
    return who


def build_server(backend: Backend) -> MCPServer:
    """An MCP server whose tools ask `backend` (~0.1 s: every schema is built)."""
    # MCPServer() calls logging.basicConfig, which gives a root logger without handlers a
    # rich console handler of the SDK's; how this process logs is its entry point's call
    root, placeholder = logging.getLogger(), logging.NullHandler()
    root.addHandler(placeholder)
    try:
        server = MCPServer(NAME, instructions=INSTRUCTIONS)
    finally:
        root.removeHandler(placeholder)
    tools = Tools(backend)
    for tool, hints in ((tools.search_code, READ), (tools.get_context, READ),
                        (tools.impact_of_change, READ), (tools.dependencies, READ),
                        (tools.dependents, READ), (tools.find_symbol, READ),
                        (tools.list_repositories, READ), (tools.ingest_repository, QUEUE),
                        (tools.sync_repository, QUEUE)):
        server.add_tool(tool, annotations=ToolAnnotations(**hints))
    return server


def _present(**arguments: Any) -> dict:
    """The API's request: an argument left out is absent, not null."""
    return {name: value for name, value in arguments.items() if value is not None}


def _cut(text: str, limit: int, what: str, notes: list[str]) -> str:
    if len(text) <= limit:
        return text
    notes.append(f"{what} was cut to {limit:,} of {len(text):,} characters")
    return text[:limit] + CUT


def _capped(rows: list, limit: int, what: str, notes: list[str]) -> list:
    if len(rows) <= limit:
        return rows
    notes.append(f"{what}: the first {limit} of {len(rows)} are listed")
    return rows[:limit]


def _result(answer: dict, notes: list[str] = ()) -> CallToolResult:
    """The answer as structured content, and as compact JSON text for clients that read
    only text. New dicts throughout: the local backend's answers are the query cache's."""
    if notes:
        answer = {**answer, "notes": [*answer.get("notes", []), *notes]}
    text = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=answer)
