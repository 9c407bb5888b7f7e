"""The ingestion pipeline a worker runs for each job.

fetch (guarded shallow clone into a per-job temporary directory) -> parse ->
resolve -> graph -> store (one snapshot per commit, replaced atomically) ->
node2vec -> text -> upload (vectors in Qdrant, see edge.embed.stages). The
temporary directory is gone when `run` returns or raises (property 14).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from edge.analyze import Analysis, analyze
from edge.embed.chunks import TextEncoder, read_sources
from edge.embed.stages import Structure, Text, embed_structure, embed_text, upload
from edge.fetch import fetch
from edge.workspace import job_workspace
from edge.parse.cache import ParseCache
from edge.graph import stats
from edge.worker import Cancelled, Dropped, RetryLater
from shared.graph.cypher_store import CypherGraphStore
from shared.graph.mirror import forget, open_mirror
from shared.graph.store import (
    FencedOut,
    GraphStore,
    GraphStoreError,
    GraphStoreUnavailable,
    open_graph_store,
)
from shared.graph.store.registry import RepoState
from shared.jobs import Job, JobResult, fence_now
from shared.repo_url import split_index_key
from shared.settings import Provider, Settings
from shared.vectors import VectorStore, VectorStoreUnavailable, open_vector_store

log = logging.getLogger("edge.pipeline")

# Where each stage starts and ends on the job's 0-100 progress bar.
STAGES = {"fetch": (0, 10), "parse": (10, 35), "resolve": (35, 40), "graph": (40, 45),
          "store": (45, 50), "node2vec": (50, 65), "text": (65, 92), "upload": (92, 100)}
SKIPPED_LISTED = 100  # the job record lists this many skipped files, and counts all
UNOPENED = object()  # the mirror before its first use (None: there is none)
# Why a forced job reuses nothing of the last ingest (the job's summary says it).
FORCED = "a full rebuild was asked for"


class IngestPipeline:
    """Callable as the worker's pipeline: `pipeline(job, report) -> JobResult`."""

    def __init__(self, settings: Settings, store: GraphStore | None = None,
                 vectors: VectorStore | None = None, encoder: TextEncoder | None = None,
                 meter: Callable[[int, int], None] | None = None, mirror: Any = UNOPENED):
        self.settings = settings
        # (account id, chunks embedded): each account owning an ingested repository is
        # charged what its ingest embedded (shared.limits; None: nothing is metered)
        self.meter = meter
        self._store = store
        self._vectors = vectors
        self._encoder = encoder
        self._mirror = UNOPENED if mirror is UNOPENED else mirror
        self._lock = threading.Lock()

    # Each is made on first use, once: a worker may start while a service is down, and
    # the text model takes seconds to load.
    @property
    def store(self) -> GraphStore:
        with self._lock:
            if self._store is None:
                self._store = open_graph_store(self.settings)
            return self._store

    @property
    def vectors(self) -> VectorStore:
        with self._lock:
            if self._vectors is None:
                self._vectors = open_vector_store(self.settings)
            return self._vectors

    @property
    def mirror(self) -> CypherGraphStore | None:
        """The Neo4j mirror of the graph facts (NEO4J_URI), or None."""
        with self._lock:
            if self._mirror is UNOPENED:
                self._mirror = open_mirror(self.settings)
            return self._mirror

    @property
    def encoder(self) -> TextEncoder:
        with self._lock:
            if self._encoder is None:
                self._encoder = open_encoder(self.settings)
            return self._encoder

    def __call__(self, job: Job, report) -> JobResult:
        try:
            return self._run(job, report)
        except FencedOut as exc:  # a newer job's state, or a deleted repository
            if self._clean_up_removed(job):
                raise Dropped(f"{split_index_key(job.repo_url)[0]} was deleted or archived "
                              "while this job ran") from exc
            raise
        except BaseException as exc:
            if isinstance(exc, (GraphStoreUnavailable, VectorStoreUnavailable)):
                raise RetryLater(str(exc)) from exc
            if isinstance(exc, Cancelled):
                self._record(job.repo_url, RepoState.QUEUED)  # given back: it runs again
            elif isinstance(exc, Exception):
                self._record(job.repo_url, RepoState.FAILED,
                             f"{type(exc).__name__}: {exc}"[:500])
            raise

    def _record(self, key: str, state: RepoState, reason: str = "", **fields) -> None:
        """The registry's view of the repository whose index `key` the job builds; never
        what fails a job. A branch other than the default one leaves the repository's
        state alone and records only what was indexed."""
        url, branch = split_index_key(key)
        if branch is not None:
            if state not in (RepoState.READY, RepoState.FAILED):
                return
            fields = {**fields, "branch": branch, "default_branch": None, "size": None}
            state = None  # a failure's reason becomes the branch's
        try:
            self.store.set_repo_state(url, state, reason, **fields)
        except GraphStoreError as exc:
            log.warning("registry not updated for %s (%s): %s", key, state, exc)

    def _remote_seen(self, key: str) -> str:
        """Where the registry last had the remote head of the index `key` ("" unknown)."""
        url, branch = split_index_key(key)
        record = self.store.repo_record(url)
        state = record.indexed(branch) if record is not None else None
        return state.remote_commit if state is not None else ""

    def _clean_up_removed(self, job: Job) -> bool:
        """Fenced out because the repository was deleted or archived while this job ran
        (True): the vectors it uploaded meanwhile go too (a newer job's are left alone)."""
        url = split_index_key(job.repo_url)[0]
        try:
            record = self.store.repo_record(url)
            if record is None or record.state is RepoState.ARCHIVED:
                self.vectors.delete_repo(job.repo_url)
                forget(self.mirror, [job.repo_url])
                return True
        except (GraphStoreError, VectorStoreUnavailable) as exc:
            log.warning("vectors of the removed %s not cleaned up: %s", job.repo_url, exc)
        return False

    def _run(self, job: Job, report) -> JobResult:
        def progress(stage: str, fraction: float) -> None:
            low, high = STAGES[stage.split(" ", 1)[0]]
            report(stage, low + (high - low) * fraction)

        progress("fetch", 0.0)
        fence = job.fence or fence_now()  # a job not from a queue writes as the newest
        seen = self._remote_seen(job.repo_url)  # before the fetch: it sees at least this
        with job_workspace() as workdir:
            url, branch = split_index_key(job.repo_url)
            checkout = fetch(url, workdir / "repo", self.settings, branch=branch)
            # From here on a worker still running this job under an older lease is fenced out.
            self.store.take(job.repo_url, fence)
            log.info("job %s: cloned %s at %s", job.id, job.repo_url, checkout.commit)
            self._record(job.repo_url, RepoState.INDEXING, default_branch=checkout.branch)
            # Asked for until this job is done: a job that fails, dies or is given back
            # leaves it to the next one.
            force = self.store.forced(job.repo_url)
            cache = (ParseCache.empty(self.settings.data_dir, job.repo_url, FORCED) if force
                     else ParseCache.open(self.settings.data_dir, job.repo_url))
            analysis = analyze(checkout.path, job.repo_url, commit=checkout.commit,
                               skip_dirs=self.settings.skip_dirs,
                               max_file_bytes=self.settings.max_file_bytes, report=progress,
                               cache=cache)
            progress("store", 0.0)
            analysis.graph.sources = read_sources(checkout.path, analysis.graph)
            # Not ready until its vectors are stored: queries stay on the previous one.
            snapshot = self.store.write_snapshot(analysis.graph, ready=False, fence=fence)
            mirrored = (self.mirror.write_snapshot(analysis.graph, ready=False)
                        if self.mirror is not None else None)
            progress("store", 1.0)
            structure = embed_structure(analysis.graph, self.settings, progress,
                                        stored=None if force else self.vectors)
            text = embed_text(checkout.path, analysis.graph, self.encoder, progress,
                              stored=None if force else self.vectors)
        embeddings = upload(self.vectors, analysis.graph, job.id, structure, text, progress,
                            fence=fence)
        if mirrored is not None:  # ready in Neo4j before SQL says so (shared.graph.mirror)
            self.mirror.mark_ready(mirrored)
        self.store.mark_ready(snapshot, fence=fence)
        if force:
            self.store.rebuilt(job.repo_url, force)
        cache.save(job.repo_url)
        summary = {**summarize(analysis), "embeddings": describe(structure, text),
                   "sync": describe_sync(cache, analysis, structure, text)}
        self._record(job.repo_url, RepoState.READY, branch=checkout.branch,
                     commit=checkout.commit, snapshot_id=snapshot.id, remote_seen=seen,
                     default_branch=checkout.branch,
                     size={"files": len(analysis.files), "loc": analysis.graph.loc,
                           "nodes": summary["nodes"], "edges": summary["edges"],
                           "chunks": len(text.chunks)})
        self._charge(job.repo_url, text.embedded)
        return JobResult(files_processed=len(analysis.files), embeddings_generated=embeddings,
                         summary=summary)

    def _charge(self, key: str, chunks: int) -> None:
        """The chunks this job embedded, to every account that owns the repository;
        never what fails a job (the usage is then short, not the index)."""
        if self.meter is None or not chunks:
            return
        try:
            for account_id in self.store.owners_of(split_index_key(key)[0]):
                self.meter(account_id, chunks)
        except Exception as exc:
            log.warning("chunks embedded for %s not metered: %s", key, exc)

    def close(self) -> None:
        for resource in (self._store, self._vectors, self._mirror):
            if resource is not None and resource is not UNOPENED:
                resource.close()


def open_encoder(settings: Settings) -> TextEncoder:
    if settings.embeddings_provider is Provider.OPENAI:
        from edge.embed.openai import OpenAIEncoder
        return OpenAIEncoder(settings.openai_base_url, settings.openai_api_key,
                             settings.openai_embedding_model,
                             concurrency=settings.embed_concurrency)
    from edge.embed.runtimes import open_text_encoder
    return open_text_encoder(settings.text_runtime, settings.device.torch_name,
                             settings.data_dir)


def describe(structure: Structure, text: Text) -> dict:
    """The job record's account of the vectors made."""
    return {"structural": len(structure.paths), "node2vec_device": structure.device,
            "node2vec_epochs": structure.epochs, "node2vec_fallback": structure.fallback,
            "chunks": len(text.chunks), "text_model": text.model,
            "text_runtime": text.runtime}


def describe_sync(cache: ParseCache, analysis: Analysis, structure: Structure,
                  text: Text) -> dict:
    """The job record's account of what was reused from the last ingest, and why not more."""
    files = len(analysis.files)
    reused = cache.hits + len(text.kept) + text.reused + structure.kept
    reason = cache.reason
    if not reason and not text.kept and not text.reused and text.chunks:
        reason = "no stored vectors of this text model and runtime to reuse"
    return {"mode": "incremental" if reused else "full", "reason": reason,
            "files_parsed": files - cache.hits, "files_reused": cache.hits,
            "chunks_embedded": text.embedded, "chunks_kept": len(text.kept),
            "chunks_moved": text.reused, "structure_kept": structure.kept}


def summarize(analysis: Analysis) -> dict:
    """The job record's account of what was found and what was left out."""
    graph = analysis.graph
    counts = stats(graph)
    return {
        "commit": graph.commit,
        "loc": graph.loc,
        "nodes": len(graph.nodes),
        "edges": len(graph.edges),
        "edges_by_kind": counts["edges"],
        "external_packages": counts["external_packages"],
        "hot_spots": counts["hot_spots"][:5],
        "files_skipped": len(graph.skipped),
        "skipped": counts["skipped"][:SKIPPED_LISTED],
        "seconds": analysis.seconds,
    }

