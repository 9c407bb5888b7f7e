"""The ingestion pipeline a worker runs for each job.

fetch (guarded shallow clone into a per-job temporary directory) -> parse ->
resolve -> graph -> store (one snapshot per commit, replaced atomically). The
temporary directory is gone when `run` returns or raises (property 14).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from edge.analyze import Analysis, analyze
from edge.fetch import check_clone_target, fetch, job_workspace
from edge.graph import stats
from shared.graph.store import GraphStore, open_graph_store
from shared.jobs import Job, JobResult
from shared.settings import Settings

log = logging.getLogger("edge.pipeline")

# Where each stage starts and ends on the job's 0-100 progress bar.
STAGES = {"fetch": (0, 15), "parse": (15, 60), "resolve": (60, 70), "graph": (70, 80),
          "store": (80, 100)}
SKIPPED_LISTED = 100  # the job record lists this many skipped files, and counts all


class IngestPipeline:
    """Callable as the worker's pipeline: `pipeline(job, report) -> JobResult`."""

    def __init__(self, settings: Settings, store: GraphStore | None = None):
        self.settings = settings
        self._store = store
        self._lock = threading.Lock()

    @property
    def store(self) -> GraphStore:
        with self._lock:  # opened on first use: a worker may start while the database is down
            if self._store is None:
                self._store = open_graph_store(self.settings)
            return self._store

    def __call__(self, job: Job, report) -> JobResult:
        def progress(stage: str, fraction: float) -> None:
            low, high = STAGES[stage]
            report(stage, low + (high - low) * fraction)

        progress("fetch", 0.0)
        check_clone_target(job.repo_url)
        with job_workspace() as workdir:
            checkout = fetch(job.repo_url, workdir / "repo", self.settings)
            log.info("job %s: cloned %s at %s", job.id, job.repo_url, checkout.commit)
            analysis = analyze(checkout.path, job.repo_url, commit=checkout.commit,
                               skip_dirs=self.settings.skip_dirs,
                               max_file_bytes=self.settings.max_file_bytes, report=progress)
            progress("store", 0.0)
            self.store.write_snapshot(analysis.graph)
            progress("store", 1.0)
        return JobResult(files_processed=len(analysis.files), summary=summarize(analysis))

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


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

