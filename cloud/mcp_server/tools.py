"""The MCP tools for coding agents: thin adapters from a tool call to a Backend question.

Each tool takes the HTTP API's parameters (the query layer checks them: one set of
rules for every face; an argument the tool does not declare, or one its schema
refuses, is a tool error worded as the API words it), answers with the API's JSON
bounded for an agent's context (lists capped, long texts cut, a `notes` entry saying
what was cut and how many there are) and keeps the answer's evidence: `index`
(repository, commit, indexed_at, stale, indexing). A
failure the agent can act on (bad argument, unknown repository, full queue, a store
down) is a tool error carrying the API's message; a bug is a tool error too, without
its text (the SDK logs it), so no call ends a session.
"""
from __future__ import annotations

import json
import logging
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools.base import Tool
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

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
from cloud.query import QueryError
from cloud.query.requests import BUDGET_RANGE, DEFAULT_BUDGET, refuse_unknown

NAME = "neo-alexandria"
INSTRUCTIONS = (
    "Neo Alexandria answers questions about indexed code repositories from their "
    "dependency graph and embeddings. list_repositories shows what is indexed; "
    "ingest_repository indexes a new one. Every answer names the commit it comes from "
    "(index.commit), whether a newer commit is known (index.stale) and whether an ingest "
    "is under way (index.indexing). Paths are repository-relative; lines are 1-based.")
MAX_SEARCH = 50  # hits per search (the API allows 100)
MAX_GRAPH = 200  # dependencies / dependents per call (the API allows 1,000)
MAX_LISTED = 200  # impact: dependent files, dependent symbols
MAX_REPOS = 200
MAX_SYMBOLS = 100
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
# A list or a comma-separated string, any case, as the HTTP route takes them: the query
# layer checks them (its message names the kinds).
EdgeKinds = Annotated[list[str] | str | None, Field(description=(
    "Edge kinds to follow: IMPORTS, CALLS, EXTENDS, CONTAINS, as a list or comma-separated "
    "(default IMPORTS, CALLS, EXTENDS)"))]
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
        budget_tokens: Annotated[int, Field(ge=BUDGET_RANGE[0], le=BUDGET_RANGE[1], description=(
            "The most tokens (cl100k_base) the answer's text (markdown) or items (json, as "
            f"serialised) may take, {BUDGET_RANGE[0]}-{BUDGET_RANGE[1]:,}"))] = DEFAULT_BUDGET,
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
                  "files": _capped(answer["files"], MAX_LISTED, "dependent files", notes,
                                   _total(answer, "total_files", "files")),
                  "symbols": _capped(answer["symbols"], MAX_LISTED, "dependent symbols", notes,
                                     _total(answer, "total_symbols", "symbols"))}
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
        return _listed(self._ask(ctx, "dependencies", _present(
            repo=repo, ref=ref, path=path, symbol=symbol, depth=depth, kinds=kinds, commit=commit,
            limit=limit)), "dependencies", MAX_GRAPH)

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
        return _listed(self._ask(ctx, "dependents", _present(
            repo=repo, ref=ref, path=path, symbol=symbol, depth=depth, kinds=kinds, commit=commit,
            limit=limit)), "dependents", MAX_GRAPH)

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
        return _listed(self._ask(ctx, "symbols", _present(
            repo=repo, ref=ref, name=name, kind=kind, commit=commit, limit=limit)),
            "definitions", MAX_SYMBOLS)

    def list_repositories(self, ctx: Context | None = None) -> ReposOutput:
        """The indexed repositories: the commit each answers from, when it was indexed,
        whether a newer commit is known (stale), whether an ingest is under way, sizes,
        languages and last job."""
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


class _Server(MCPServer):
    """MCPServer whose tools take only the arguments they declare, and whose argument
    errors read as the HTTP API's (the SDK's own are pydantic's report, for a
    programmer): checked once here, for every tool."""

    def __init__(self, tools: list[Tool], **options: Any):
        super().__init__(tools=tools, **options)
        self._schemas = {tool.name: tool.parameters for tool in tools}

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context | None = None) -> Any:
        schema = self._schemas.get(name)
        if schema is None:  # an unknown tool: the SDK says so
            return await super().call_tool(name, arguments, context)
        try:
            refuse_unknown(arguments, schema["properties"].keys())
        except QueryError as exc:
            raise _bad_arguments(name, exc.detail) from None
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(exc, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            raise _bad_arguments(name, _worded(cause, schema)) from cause


def build_server(backend: Backend) -> MCPServer:
    """An MCP server whose tools ask `backend` (~0.1 s: every schema is built)."""
    tools = Tools(backend)
    found = [_closed(Tool.from_function(tool, annotations=ToolAnnotations(**hints)))
             for tool, hints in ((tools.search_code, READ), (tools.get_context, READ),
                                 (tools.impact_of_change, READ), (tools.dependencies, READ),
                                 (tools.dependents, READ), (tools.find_symbol, READ),
                                 (tools.list_repositories, READ),
                                 (tools.ingest_repository, QUEUE),
                                 (tools.sync_repository, QUEUE))]
    # MCPServer() calls logging.basicConfig, which gives a root logger without handlers a
    # rich console handler of the SDK's; how this process logs is its entry point's call
    root, placeholder = logging.getLogger(), logging.NullHandler()
    root.addHandler(placeholder)
    try:
        return _Server(found, name=NAME, instructions=INSTRUCTIONS)
    finally:
        root.removeHandler(placeholder)


def _closed(tool: Tool) -> Tool:
    """The tool's input schema says what _Server enforces: no argument it does not name."""
    return tool.model_copy(update={"parameters": {**tool.parameters,
                                                  "additionalProperties": False}})


def _bad_arguments(tool: str, detail: str) -> ToolError:
    """As a tool's own errors read: the SDK's prefix, the API's message and code."""
    return ToolError(f"Error executing tool {tool}: {detail} [bad_request]")


def _worded(error: ValidationError, schema: dict) -> str:
    """pydantic's findings in the query layer's words for the same checks
    (cloud/query/requests.py, Fields), bounds and choices read from the tool's schema."""
    properties = schema["properties"]
    found = []
    for item in error.errors(include_url=False):
        name = str(item["loc"][0]) if item["loc"] else "arguments"
        found.append(_one_error(name, item, properties.get(name, {})))
    return "; ".join(dict.fromkeys(found))


def _one_error(name: str, item: dict, field: dict) -> str:
    kind, given = item["type"], item.get("input")
    options = [o for o in field.get("anyOf", [field]) if o.get("type") != "null"]
    if kind == "missing":
        return f"{name} is required"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        low, high = (next((o[k] for o in options if k in o), None)
                     for k in ("minimum", "maximum"))
        return f"{name} must be between {low} and {high}, got {given}"
    choices = [str(v) for o in options for v in o.get("enum", ())]
    if kind in ("literal_error", "enum") and choices:
        return f"{name} must be one of {' | '.join(choices)}, got {given!r}"
    if kind.endswith(("_type", "_parsing")) or kind == "int_from_float":
        return f"{name} must be {' or '.join(dict.fromkeys(map(_a, options)))}"
    return f"{name}: {item['msg']}"


_TYPE_NAMES = {"integer": ("an integer", "integers"), "string": ("a string", "strings"),
               "boolean": ("true or false", "booleans"), "number": ("a number", "numbers")}


def _a(schema: dict) -> str:
    """A JSON schema type as the API's messages name it ("must be an integer")."""
    if schema.get("type") == "array":
        items = schema.get("items", {}).get("type")
        return f"a list of {_TYPE_NAMES.get(items, ('', 'values'))[1]}"
    return _TYPE_NAMES.get(schema.get("type"), ("a value",))[0]


def _present(**arguments: Any) -> dict:
    """The API's request: an argument left out is absent, not null."""
    return {name: value for name, value in arguments.items() if value is not None}


def _cut(text: str, limit: int, what: str, notes: list[str]) -> str:
    if len(text) <= limit:
        return text
    notes.append(f"{what} was cut to {limit:,} of {len(text):,} characters")
    return text[:limit] + CUT


def _capped(rows: list, limit: int, what: str, notes: list[str],
            total: int | str | None = None) -> list:
    """`rows` cut to `limit`, and a note when fewer than `total` (all there are: the
    API may have cut them before) are listed."""
    total = len(rows) if total is None else total
    if len(rows) > limit or total != len(rows):
        notes.append(f"{what}: the first {min(limit, len(rows))} of {total} are listed")
    return rows[:limit]


def _total(answer: dict, field: str, rows: str) -> int | str:
    """How many there are: the answer's count, or (a control plane that does not give
    one) what it listed, "more than" it when it said it cut them."""
    if field in answer:
        return answer[field]
    listed = len(answer[rows])
    return f"more than {listed}" if answer.get("truncated") else listed


def _listed(answer: dict, what: str, most: int) -> CallToolResult:
    """A graph answer the API cut at the tool's `limit`: the note says how many there are."""
    notes: list[str] = []
    if answer.get("truncated"):
        notes.append(f"{what}: the first {len(answer['results'])} of {answer['total']} are "
                     f"listed; a higher limit (at most {most}) lists more")
    return _result(answer, notes)


def _result(answer: dict, notes: list[str] = ()) -> CallToolResult:
    """The answer as structured content, and as compact JSON text for clients that read
    only text. New dicts throughout: the local backend's answers are the query cache's."""
    if notes:
        answer = {**answer, "notes": [*answer.get("notes", []), *notes]}
    text = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=answer)
