"""The query layer's one entry point: every face (HTTP routes, the page, MCP tools)
asks its questions here, as JSON-like mappings, and gets JSON-ready answers.

Each question: its input is checked (cloud/query/requests.py), its repository
resolved to the snapshot that answers (cloud/query/resolve.py), the answer made
by the module of that question and cached per repository (cloud/query/cache.py),
then stamped with the evidence: the `index` (repository, commit, when, stale,
indexing) and the time it took. Stores and the text model open on first use,
so graph questions keep working while the model or Qdrant is missing.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Mapping

import numpy as np

from cloud.query import context as context_mod
from cloud.query import graph as graph_mod
from cloud.query import impact as impact_mod
from cloud.query import symbols as symbols_mod
from cloud.query.cache import AnswerCache
from cloud.query.errors import QueryError, bad_request, not_found, unavailable
from cloud.query.requests import (
    ContextRequest,
    SearchRequest,
    parse_context,
    parse_impact,
    parse_node,
    parse_path,
    parse_search,
    parse_snapshot,
)
from cloud.query.resolve import Target, Visible, resolve
from cloud.query.search import SearchContext, merge, ranked, search_target
from cloud.query.tokens import tokenizer_name
from shared.graph.model import NodeKind
from shared.graph.mirror import GraphFacts, forget
from shared.graph.store import GraphStore, GraphStoreError
from shared.graph.store.registry import Repository
from shared.repo_url import split_index_key
from shared.query_encoder import QueryEncoder, QueryEncoderError
from shared.vectors import VectorStore, chunk_collection

QUERY_VECTORS = 1_024  # query text -> vector, most recent kept
TOUCH_SECONDS = 60.0


class QueryService:
    def __init__(self, open_store: Callable[[], GraphStore],
                 open_vectors: Callable[[], VectorStore],
                 open_encoder: Callable[[], QueryEncoder],
                 allow_local: bool = False, owns_stores: bool = True,
                 open_mirror: Callable[[], Any] = lambda: None):
        """Each `open_*` makes its resource on first use; `owns_stores`: close() closes
        the stores (not when they are the worker's, in the all-in-one run).
        `open_mirror`: the Neo4j mirror of the graph facts (shared/graph/mirror.py), or
        None; with one, the graph walks are answered in Cypher."""
        self._open = {"store": open_store, "vectors": open_vectors, "encoder": open_encoder,
                      "mirror": open_mirror}
        self._opened: dict[str, Any] = {}
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()
        self._busy_repos: Callable[[], dict[str, str]] = dict
        self._job_records: Callable[[], tuple[dict[str, str], list[dict]]] = \
            lambda: ({}, [])
        self.allow_local, self.owns_stores = allow_local, owns_stores
        self.cache = AnswerCache()
        self._query_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._touched: dict[str, float] = {}  # repo -> when its last query was recorded

    @classmethod
    def from_settings(cls, settings, **options: Any) -> "QueryService":
        from shared.graph.mirror import open_mirror
        from shared.graph.store import open_graph_store
        from shared.query_encoder import default_model_dir
        from shared.vectors import open_vector_store

        return cls(lambda: open_graph_store(settings), lambda: open_vector_store(settings),
                   lambda: QueryEncoder(default_model_dir()),
                   allow_local=settings.allow_local_repos,
                   open_mirror=lambda: open_mirror(settings), **options)

    def watch_jobs(self, busy_repos: Callable[[], dict[str, str]],
                   job_records: Callable[[], tuple[dict[str, str], list[dict]]]) -> None:
        """Where answers learn of ingests under way (repo -> the running job's id), of
        jobs waiting (repo -> the queued job's id) and of recent jobs (newest first)."""
        self._busy_repos, self._job_records = busy_repos, job_records

    # --- resources -------------------------------------------------------------------------
    def _get(self, name: str) -> Any:
        with self._lock:
            if name not in self._opened:
                if name in self._failed:  # a missing model stays missing until a restart
                    raise unavailable("model_unavailable", self._failed[name])
                try:
                    self._opened[name] = self._open[name]()
                except QueryEncoderError as exc:
                    self._failed[name] = f"{exc}; then restart the control plane"
                    raise unavailable("model_unavailable", self._failed[name]) from None
            return self._opened[name]

    @property
    def store(self) -> GraphStore:
        return self._get("store")

    @property
    def mirror(self) -> Any:
        """The Neo4j mirror (shared.graph.mirror), or None."""
        return self._get("mirror")

    @property
    def facts(self) -> Any:
        """Where the graph walks are answered: the mirror's Cypher when there is one."""
        mirror = self.mirror
        return self.store if mirror is None else GraphFacts(self.store, mirror)

    def forget_facts(self, keys) -> None:
        """Removed indexes leave the mirror too (their SQL facts are gone already)."""
        forget(self.mirror, keys)

    @property
    def vectors(self) -> VectorStore:
        return self._get("vectors")

    @property
    def encoder(self) -> QueryEncoder:
        return self._get("encoder")

    def encoder_status(self) -> dict:
        """For /health: whether search can embed queries, and what to do if not."""
        try:
            encoder = self.encoder
        except QueryError as exc:
            return {"ok": False, "detail": exc.detail}
        return {"ok": True, "model": encoder.model}

    def query_vector(self, text: str) -> np.ndarray:
        with self._lock:
            if text in self._query_vectors:
                self._query_vectors.move_to_end(text)
                return self._query_vectors[text]
        (vector,) = self.encoder.encode([text])
        with self._lock:
            self._query_vectors[text] = vector
            while len(self._query_vectors) > QUERY_VECTORS:
                self._query_vectors.popitem(last=False)
        return vector

    def close(self) -> None:
        if self.owns_stores:
            for name in ("store", "vectors", "mirror"):
                resource = self._opened.pop(name, None)
                if resource is not None:
                    resource.close()

    # --- targets and cached snapshot data --------------------------------------------------
    def target(self, repo: str, commit: str | None = None, visible: Visible = None) -> Target:
        target = resolve(self.store, repo, commit, self._busy_repos(), visible)
        self._touch(split_index_key(repo)[0])
        return target

    def _touch(self, repo: str) -> None:
        """The registry's last query time (archiving waits for idle repositories), at
        most once a minute per repository: a query is never slowed by a write."""
        now = time.monotonic()
        if now - self._touched.get(repo, float("-inf")) < TOUCH_SECONDS:
            return
        self._touched[repo] = now
        try:
            self.store.touch_query(repo)
        except GraphStoreError:
            pass  # the answer matters more than the record of it

    def _cached(self, target: Target, key: tuple, make: Callable[[], Any]) -> Any:
        return self.cache.get_or_make(target.repo, target.latest.id,
                                      (target.snapshot.id, *key), make)

    def _files(self, target: Target):
        return self._cached(target, ("files",), lambda: self.store.files(target.snapshot))

    def _file_graph(self, target: Target) -> graph_mod.FileGraph:
        facts = self.facts
        return self._cached(target, ("file_graph",), lambda: graph_mod.FileGraph.of(
            [f.path for f in facts.files(target.snapshot)],
            facts.file_imports(target.snapshot)))

    def _centrality(self, target: Target) -> dict[str, float]:
        def make() -> dict[str, float]:
            files = self._file_graph(target)
            rank = graph_mod.pagerank(len(files.paths), files.src, files.dst)
            order = np.argsort(np.argsort(rank, kind="stable"), kind="stable")
            scale = max(len(files.paths) - 1, 1)
            return {path: float(order[i]) / scale for i, path in enumerate(files.paths)}
        return self._cached(target, ("centrality",), make)

    def _symbol_graph(self, target: Target) -> context_mod.SymbolGraph:
        def make() -> context_mod.SymbolGraph:
            paths = set(self.store.source_hashes(target.snapshot))
            return context_mod.SymbolGraph.of(self.store.load_graph(target.snapshot), paths)
        return self._cached(target, ("symbol_graph",), make)

    def _search_context(self) -> SearchContext:
        return SearchContext(store=self.store, vectors=lambda: self.vectors,
                             query_vector=self.query_vector,
                             chunk_collection=lambda: chunk_collection(self.encoder.model),
                             files=self._files, centrality=self._centrality)

    # --- questions -------------------------------------------------------------------------
    def search(self, body: Mapping, visible: Visible = None) -> dict:
        started = time.perf_counter()
        request = parse_search(body, self.allow_local)
        if request.mode == "structural" and request.repo is None:
            raise bad_request("structural search needs repo: the file or symbol is in one")
        targets = ([self.target(request.repo, visible=visible)] if request.repo
                   else self._all_targets(visible))
        per_repo = [self._cached(t, ("search", request),
                                 lambda t=t: search_target(self._search_context(), t, request))
                    for t in targets]
        return {"results": merge(per_repo, request.limit), "mode": request.mode,
                "took_ms": _ms(started), "index": [t.index() for t in targets]}

    def context(self, body: Mapping, visible: Visible = None) -> dict:
        started = time.perf_counter()
        request = parse_context(body, self.allow_local)
        target = self.target(request.repo, visible=visible)
        return self._answer(started, target, ("context", request),
                            lambda: self._make_context(target, request))

    def impact(self, body: Mapping, visible: Visible = None) -> dict:
        started = time.perf_counter()
        request = parse_impact(body, self.allow_local)
        base = None
        if request.files:
            head = self.target(request.repo, visible=visible)
            changes = {path: "modified" for path in request.files}
        else:
            head = self.target(request.repo, request.head, visible)
            base = self.target(request.repo, request.base, visible).snapshot
            changes = impact_mod.changed_between(self.store, base, head.snapshot)
        answer = self._answer(started, head, ("impact", request, base.id if base else None),
                              lambda: impact_mod.impact(self.facts, head, changes, base))
        return {**answer, "base": base.commit if base else None}

    def dependencies(self, params: Mapping, visible: Visible = None) -> dict:
        return self._neighbours(params, reverse=False, visible=visible)

    def dependents(self, params: Mapping, visible: Visible = None) -> dict:
        return self._neighbours(params, reverse=True, visible=visible)

    def _neighbours(self, params: Mapping, reverse: bool, visible: Visible) -> dict:
        started = time.perf_counter()
        request = parse_node(params, self.allow_local)
        target = self.target(request.repo, request.commit, visible)
        return self._answer(started, target, ("neighbours", request, reverse),
                            lambda: graph_mod.neighbours(self.facts, target, request, reverse))

    def symbols(self, params: Mapping, visible: Visible = None) -> dict:
        """Where the functions, methods or classes of a name are defined."""
        started = time.perf_counter()
        request = symbols_mod.parse_symbols(params, self.allow_local)
        target = self.target(request.repo, request.commit, visible)
        return self._answer(started, target, ("symbols", request),
                            lambda: symbols_mod.find(self.store, target, request))

    def path(self, params: Mapping, visible: Visible = None) -> dict:
        started = time.perf_counter()
        request = parse_path(params, self.allow_local)
        target = self.target(request.repo, request.commit, visible)
        return self._answer(started, target, ("path", request),
                            lambda: graph_mod.shortest_path(self.facts, target, request))

    def hot_spots(self, params: Mapping, visible: Visible = None) -> dict:
        started = time.perf_counter()
        request = parse_snapshot(params, self.allow_local)
        target = self.target(request.repo, request.commit, visible)
        return self._answer(started, target, ("hot_spots", request.limit), lambda: {
            "results": graph_mod.hot_spots(self._file_graph(target), request.limit)})

    def cycles(self, params: Mapping, visible: Visible = None) -> dict:
        started = time.perf_counter()
        request = parse_snapshot(params, self.allow_local)
        target = self.target(request.repo, request.commit, visible)

        def make() -> dict:
            found = graph_mod.cycles(self._file_graph(target))
            return {"cycles": found[:request.limit], "total": len(found)}
        return self._answer(started, target, ("cycles", request.limit), make)

    def snapshot(self, params: Mapping, visible: Visible = None) -> dict:
        started = time.perf_counter()
        request = parse_snapshot(params, self.allow_local)
        target = self.target(request.repo, request.commit, visible)
        # not cached: the whole graph is large, and tools ask for it once
        graph = graph_mod.snapshot_json(self.store.load_graph(target.snapshot))
        return {**graph, "took_ms": _ms(started), "index": target.index()}

    def _answer(self, started: float, target: Target, key: tuple,
                make: Callable[[], dict]) -> dict:
        """The cached answer for `key`, stamped with its evidence and time."""
        answer = self._cached(target, key, make)
        return {**answer, "took_ms": _ms(started), "index": target.index()}

    def repos(self, visible: Visible = None) -> dict:
        """Every repository (the caller may see): its registry record (id, state,
        branches, sync settings, stale or not) and, once indexed, its indexed commit,
        sizes and last job."""
        queued, history = self._job_records()
        last: dict[str, dict] = {}
        for record in history:  # newest first
            last.setdefault(record.get("repo_url", ""), record)
        busy = self._busy_repos()
        records = {r.url: r for r in self.store.repo_records()}
        found = []
        for repo in sorted(set(self.store.repositories()) | set(records)):
            if visible is not None and repo not in visible:
                continue
            snapshots = self.store.snapshots(repo)
            ready = next((s for s in snapshots if s.ready), None)
            stats = ready.stats if ready else {}
            nodes = stats.get("nodes", {})
            job = _last_job(repo, busy, queued, last)
            found.append({
                "url": repo, "commit": ready.commit if ready else None,
                "indexed_at": ready.taken_at if ready else None,
                "files": nodes.get(NodeKind.FILE.value, 0),
                "symbols": sum(nodes.get(k.value, 0) for k in
                               (NodeKind.CLASS, NodeKind.FUNCTION, NodeKind.METHOD)),
                "chunks": stats.get("text", {}).get("documents", 0),
                "loc": stats.get("loc", 0),
                "languages": self.store.languages(ready) if ready else {},
                "indexing": repo in busy or bool(snapshots and not snapshots[0].ready),
                "last_job": job,
                **registry_fields(records.get(repo))})
        return {"repos": found}

    # --- helpers ---------------------------------------------------------------------------
    def _all_targets(self, visible: Visible) -> list[Target]:
        targets = []
        for repo in self.store.repositories():
            if visible is not None and repo not in visible:
                continue
            try:
                targets.append(self.target(repo))
            except QueryError:
                continue  # a repository whose first ingest is still running
        return targets

    def _make_context(self, target: Target, request: ContextRequest) -> dict:
        symbols = self._symbol_graph(target)
        seeds, notes = self._context_seeds(target, request, symbols)
        scores = context_mod.rank(symbols, seeds)
        paths = {symbols.nodes[i].path for i in symbols.ranked_chunks(scores)}
        texts = context_mod.text_lines(self.store.sources(target.snapshot, paths))
        if request.format == "markdown":
            form = context_mod.Markdown(f"# Context: {request.task.splitlines()[0][:120]}\n"
                                        f"{target.repo} @ {target.snapshot.commit[:12]}\n")
        else:
            form = context_mod.Json()
        items, text, tokens = context_mod.fit(symbols, scores, seeds, texts,
                                              request.budget_tokens, form)
        answer = {"tokens": tokens, "budget_tokens": request.budget_tokens,
                  "tokenizer": tokenizer_name(), "notes": notes, "format": request.format}
        if request.format == "markdown":
            return {**answer, "text": text}
        return {**answer, "items": context_mod.json_items(items)}

    def _context_seeds(self, target: Target, request: ContextRequest,
                       symbols: context_mod.SymbolGraph) -> tuple[dict, list[str]]:
        seeds: dict[int, tuple[float, str]] = {}
        notes: list[str] = []
        mode = "hybrid"
        try:
            self.encoder  # noqa: B018 - semantic seeds need the model
        except QueryError as exc:
            mode = "keyword"
            notes.append(f"semantic seeds unavailable, keyword search only: {exc.detail}")
        query = SearchRequest(query=request.task[:1_000], repo=target.repo, mode=mode,
                              limit=context_mod.SEARCH_SEEDS)
        for rank, hit in enumerate(ranked(self._search_context(), target, query)):
            seeds[hit.node.id] = (1.0 / (1 + rank), f"search hit #{rank + 1} ({mode})")
        names, paths = context_mod.named_in(request.task)
        for node in self.store.nodes_named(target.snapshot, names):
            seeds[node.id] = (context_mod.NAMED_WEIGHT, "named in the task")
        files = {f.path: f for f in self._files(target)}
        for path in paths:
            matches = [f for p, f in files.items() if p == path or p.endswith("/" + path)]
            for file in matches[:3]:
                seeds[file.id] = (context_mod.NAMED_WEIGHT, "file named in the task")
        for path in request.files:
            if path not in files:
                raise bad_request(f"files: unknown path {path!r} in {target.repo} at "
                                  f"{target.snapshot.commit[:12]}")
            members = symbols.by_path.get(path, ())
            for i in members:  # the file's weight is shared among its symbols
                seeds[symbols.nodes[i].id] = (context_mod.EDITED_WEIGHT / len(members),
                                              "file being edited")
        return seeds, notes


def _last_job(repo: str, busy: dict[str, str], queued: dict[str, str],
              finished: dict[str, dict]) -> dict | None:
    """The job a repository's listing names: the one running, else the one waiting
    (newer than any that ended), else the newest that ended."""
    if repo in busy:
        return {"state": "running", "job_id": busy[repo] or None}
    if repo in queued:
        return {"state": "queued", "job_id": queued[repo]}
    record = finished.get(repo)
    if record is None:
        return None
    return {"state": record.get("status"), "job_id": record.get("job_id"),
            "finished_at": record.get("timestamp")}


def registry_fields(record: Repository | None) -> dict:
    """What the repository registry adds to a repository's listing."""
    if record is None:
        return {"id": None, "state": None, "stale": False, "indexed": {},
                "deleted_branch": None}
    public = record.public()
    branch = record.indexed()
    return {"id": record.id, "state": public["state"], "reason": record.reason,
            "stale": record.stale, "default_branch": record.default_branch,
            "branches": record.tracked, "sync_interval": record.sync_interval,
            "has_secret": record.has_secret, "last_sync_at": record.last_sync_at or None,
            "last_push_at": record.last_push_at or None,
            "remote_commit": (branch.remote_commit or None) if branch else None,
            "deleted_branch": record.deleted_branch or None,
            "indexed": {name: {"commit": b.commit or None, "synced_at": b.synced_at or None,
                               "remote_commit": b.remote_commit or None,
                               "failed": b.reason or None}
                        for name, b in record.branch_states.items()}}


def _ms(started: float) -> float:
    return round(1000 * (time.perf_counter() - started), 2)


__all__ = ["QueryService", "QueryError", "not_found"]
