"""What the MCP tools ask, and of whom: this process's query layer and queue
(LocalBackend: the control plane's /mcp, and `python -m cloud mcp` on the embedded
stores) or a control plane elsewhere over its HTTP API (RemoteBackend: `python -m
cloud mcp` with NEO_ALEXANDRIA_URL).

Both answer every question with the HTTP API's JSON (the local one is what the
routes serialise) and fail with BackendError carrying the API's status, code and
detail, so a tool behaves the same over either and an agent reads the same
messages. Arguments are the API's: JSON-like mappings, None meaning absent.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Protocol
from urllib.parse import quote

import httpx

from cloud import ingest as ingest_mod
from cloud.auth import OWNER, Principal
from cloud.errors import ApiError
from cloud.limits import Tenant
from cloud.query import QueryError, QueryService
from shared.graph.store import GraphStoreError
from shared.graph.store.accounts import Scope
from shared.queue import JobQueue, QueueError, QueueFull, QueueUnavailable
from shared.repo_url import InvalidRepoUrl, normalize_repo_url
from shared.settings import Settings
from shared.vectors import VectorStoreError

log = logging.getLogger("cloud.mcp")

API = "/api/v1"
TIMEOUT = 120.0  # a first search loads the text model; a context on a large repository reads much
SEARCH_FOR_SYMBOLS = 100  # hits a symbol lookup by keyword search reads (the API's most)
NODE_FIELDS = ("path", "name", "kind", "start_line", "end_line", "language")
READ, INGEST = Scope.READ, Scope.INGEST


class BackendError(Exception):
    """A question the backend could not answer: `status` and `code` as the HTTP API
    would answer it (400 bad input, 404 unknown repository, 429 queue full, 503
    unreachable), `detail` the message for the agent."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class Backend(Protocol):
    def for_caller(self, caller: Principal) -> "Backend": ...
    def search(self, body: Mapping) -> dict: ...
    def context(self, body: Mapping) -> dict: ...
    def impact(self, body: Mapping) -> dict: ...
    def dependencies(self, params: Mapping) -> dict: ...
    def dependents(self, params: Mapping) -> dict: ...
    def symbols(self, params: Mapping) -> dict: ...
    def repos(self) -> dict: ...
    def ingest(self, url: str) -> dict: ...
    def sync(self, repo: str, force: bool, branch: str | None = None) -> dict: ...
    def close(self) -> None: ...


class LocalBackend:
    """The query service and queue of this process (the caller's to close, unless
    `owns` says they are this backend's), answering as `caller` may be answered
    (`for_caller`): the owner everything; an account's key its own repositories, its
    scopes, and its plan's limits (`limits`, cloud.limits.PlanLimits) as over HTTP."""

    def __init__(self, query: QueryService, queue: JobQueue, settings: Settings,
                 owns: bool = False, limits: Any = None, caller: Principal = OWNER):
        self.query, self.queue, self.settings, self.owns = query, queue, settings, owns
        self.limits, self.caller = limits, caller

    def for_caller(self, caller: Principal) -> "LocalBackend":
        return LocalBackend(self.query, self.queue, self.settings, False, self.limits, caller)

    def search(self, body: Mapping) -> dict:
        return self._question(self.query.search, body)

    def context(self, body: Mapping) -> dict:
        return self._question(self.query.context, body)

    def impact(self, body: Mapping) -> dict:
        return self._question(self.query.impact, body)

    def dependencies(self, params: Mapping) -> dict:
        return self._question(self.query.dependencies, params)

    def dependents(self, params: Mapping) -> dict:
        return self._question(self.query.dependents, params)

    def symbols(self, params: Mapping) -> dict:
        return self._question(self.query.symbols, params)

    def repos(self) -> dict:
        return self._run(lambda: self.query.repos(self._visible()))

    def ingest(self, url: str) -> dict:
        return self._run(lambda: ingest_mod.ingest(self.queue, self.settings, url,
                                                   self.query.store, self._tenant(INGEST)))

    def sync(self, repo: str, force: bool, branch: str | None = None) -> dict:
        def run() -> dict:
            store = self.query.store
            tenant = self._tenant(INGEST)
            url = ingest_mod.registered(store, self.settings, repo, self._visible())
            if tenant is not None:
                tenant.admit(store, url)
            return ingest_mod.sync(self.queue, store, url, force, branch)
        return self._run(run)

    # --- the caller ------------------------------------------------------------------
    def _question(self, question: Callable[..., dict], args: Mapping) -> dict:
        """A question as the HTTP API answers it for the caller: counted against its
        plan's queries per minute, answered from its repositories only."""
        def run() -> dict:
            tenant = self._tenant(READ)
            if tenant is not None:
                tenant.limits.charge(tenant.account, "queries")
            return question(args, visible=self._visible())
        return self._run(run)

    def _visible(self) -> frozenset[str] | None:
        return None if self.caller.owner else self.query.store.repos_of(self.caller.account_id)

    def _tenant(self, needed: Scope) -> Tenant | None:
        """The caller's account (None: the owner), if its key has `needed`."""
        if not self.caller.can(needed):
            raise ApiError(403, "forbidden", f"this key lacks the {needed.value!r} scope")
        if self.caller.owner:
            return None
        return Tenant(self.query.store.account(self.caller.account_id), self.limits)

    def close(self) -> None:
        if self.owns:
            self.query.close()
            self.queue.close()

    @staticmethod
    def _run(question: Callable[..., dict], *args: Any) -> dict:
        try:
            return question(*args)
        except Exception as exc:
            failure = _as_api_error(exc)
            if failure is None:
                raise  # a bug: the tool layer reports it as a crash, without its text
            raise failure from None


def _as_api_error(exc: Exception) -> BackendError | None:
    """The HTTP API's answer to `exc` (cloud/errors.py): same status, code, detail."""
    if isinstance(exc, ApiError):
        return BackendError(exc.status, exc.code, exc.detail)
    if isinstance(exc, QueryError):
        return BackendError(exc.status, exc.code, exc.detail)
    if isinstance(exc, InvalidRepoUrl):
        return BackendError(400, "invalid_repo_url", str(exc))
    if isinstance(exc, (GraphStoreError, VectorStoreError)):
        which = "graph_store" if isinstance(exc, GraphStoreError) else "vector_store"
        log.error("%s unavailable: %s", which, exc)
        return BackendError(503, f"{which}_unavailable",
                            f"the {which.replace('_', ' ')} is unreachable; try again shortly")
    if isinstance(exc, QueueFull):
        return BackendError(429, "queue_full", str(exc))
    if isinstance(exc, QueueUnavailable):
        log.error("queue unavailable: %s", exc)
        return BackendError(503, "queue_unavailable",
                            "the job queue is unreachable; try again shortly")
    if isinstance(exc, QueueError):
        log.error("queue error: %s", exc)
        return BackendError(500, "internal_error", "internal server error")
    return None


class RemoteBackend:
    """A control plane's HTTP API at `base_url`, with its token (the admin token or an
    API key: the control plane decides what it may see)."""

    def for_caller(self, caller: Principal) -> "RemoteBackend":
        return self  # stdio's one local user: the token speaks for them

    def __init__(self, base_url: str, token: str, timeout: float = TIMEOUT,
                 transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                   headers={"Authorization": f"Bearer {token}"})

    def search(self, body: Mapping) -> dict:
        return self._ask("POST", f"{API}/search", json=dict(body))

    def context(self, body: Mapping) -> dict:
        return self._ask("POST", f"{API}/context", json=dict(body))

    def impact(self, body: Mapping) -> dict:
        return self._ask("POST", f"{API}/impact", json=dict(body))

    def dependencies(self, params: Mapping) -> dict:
        return self._ask("GET", f"{API}/graph/dependencies", params=_query_string(params))

    def dependents(self, params: Mapping) -> dict:
        return self._ask("GET", f"{API}/graph/dependents", params=_query_string(params))

    def symbols(self, params: Mapping) -> dict:
        """GET /api/v1/graph/symbols where the control plane has it; an older one gets
        a keyword search kept to the symbols of that exact name (its answer says so)."""
        try:
            return self._ask("GET", f"{API}/graph/symbols", params=_query_string(params))
        except BackendError as exc:
            if not _no_such_route(exc):
                raise
        return self._symbols_by_search(params)

    def _symbols_by_search(self, params: Mapping) -> dict:
        name, limit = str(params["name"]).strip(), int(params.get("limit", 20))
        body = {"query": name, "repo": params["repo"], "mode": "keyword",
                "limit": SEARCH_FOR_SYMBOLS, "kind": params.get("kind")}
        answer = self.search({k: v for k, v in body.items() if v is not None})
        found = [{field: hit[field] for field in NODE_FIELDS} for hit in answer["results"]
                 if hit["kind"] != "file"
                 and name in (hit["name"], hit["name"].rsplit(".", 1)[-1])]
        found.sort(key=lambda n: (n["path"], n["start_line"], n["name"]))
        return {"name": name, "kind": params.get("kind"), "results": found[:limit],
                "total": len(found), "truncated": len(found) > limit,
                "took_ms": answer["took_ms"], "index": answer["index"][0],
                "notes": [f"found by keyword search (the control plane at {self.base_url} "
                          "has no symbol lookup): a definition the search ranks below "
                          f"{SEARCH_FOR_SYMBOLS} may be missing"]}

    def repos(self) -> dict:
        return self._ask("GET", f"{API}/repos")

    def ingest(self, url: str) -> dict:
        return self._ask("POST", f"{API}/ingestion/ingest/{_path(url)}")

    def sync(self, repo: str, force: bool, branch: str | None = None) -> dict:
        """POST /api/v1/repos/{id}/sync, the id looked up in the repository list when
        `repo` is a URL. A control plane without the registry (no such route) gets the
        ingest a sync amounts to, and the answer says force was not passed on."""
        key = repo.strip() if repo.strip().isdigit() else self._registry_id(repo.strip())
        if key is None:
            return self._sync_by_ingest(repo, force)
        try:
            body = {"force": force, **({"branch": branch} if branch else {})}
            return self._ask("POST", f"{API}/repos/{key}/sync", json=body)
        except BackendError as exc:
            if not _no_such_route(exc):
                raise
        return self._sync_by_ingest(repo, force)

    def _registry_id(self, url: str) -> str | None:
        """The id the repository list gives `url`; None when the list has no ids (a
        control plane without the registry)."""
        wanted = {url, url.rstrip("/")}
        try:  # as the control plane would write it (a local path only matches if it admits them)
            wanted.add(normalize_repo_url(url, allow_local=True))
        except InvalidRepoUrl:
            pass
        for listed in self.repos()["repos"]:
            if listed["url"] in wanted:
                return None if listed.get("id") is None else str(listed["id"])
        raise BackendError(404, "not_found", f"no repository {url[:200]!r} in the registry; "
                           "ingest it first (it is registered then)")

    def _sync_by_ingest(self, repo: str, force: bool) -> dict:
        answer = {**self.ingest(repo), "force": force}
        if force:
            answer["notes"] = [f"force was not passed on: the control plane at {self.base_url} "
                               "has no registry record of the repository; the job re-ingests, "
                               "reusing unchanged files' results"]
        return answer

    def close(self) -> None:
        self.client.close()

    def _ask(self, method: str, path: str, **options: Any) -> dict:
        try:
            response = self.client.request(method, path, **options)
        except httpx.HTTPError as exc:
            raise BackendError(503, "control_plane_unreachable",
                               f"the control plane at {self.base_url} did not answer "
                               f"({type(exc).__name__}); try again shortly") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.is_success and isinstance(answer, dict):
            return answer
        if isinstance(answer, dict) and "detail" in answer:
            raise BackendError(response.status_code, str(answer.get("error", "http_error")),
                               str(answer["detail"]))
        raise BackendError(response.status_code if not response.is_success else 502,
                           "bad_answer", f"the control plane answered {method} {path} with "
                           f"HTTP {response.status_code} and no JSON object")


def _query_string(params: Mapping) -> dict[str, str]:
    """GET parameters as the routes read them: lists comma-separated, None left out."""
    found = {}
    for name, value in params.items():
        if value is None:
            continue
        found[name] = ",".join(value) if isinstance(value, (list, tuple)) else str(value)
    return found


def _path(url: str) -> str:
    """A repository URL as the ingest route's path (it decodes it; a local path keeps
    its leading slash: .../ingest//srv/repo)."""
    return quote(url, safe="/:@")


def _no_such_route(exc: BackendError) -> bool:
    """Starlette's own 404/405 (a route this control plane does not have), not a
    route's answer about a repository."""
    return (exc.status == 404 and exc.detail == "Not Found") or exc.status == 405


def remote_or_local(settings: Settings) -> Backend:
    """`python -m cloud mcp`'s backend: the control plane NEO_ALEXANDRIA_URL names, or
    the embedded stores and queue the settings name (opened here, closed by close())."""
    if settings.remote_url:
        return RemoteBackend(settings.remote_url, settings.remote_token)
    from cloud.app import job_readers
    from cloud.routes import OverviewCache
    from shared.queue import open_queue

    query = QueryService.from_settings(settings)
    queue = open_queue(settings)
    query.watch_jobs(*job_readers(queue, OverviewCache()))
    return LocalBackend(query, queue, settings, owns=True)
