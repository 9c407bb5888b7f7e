"""The ingestion pipeline a worker runs for each job.

This is the control-plane issue's minimal pipeline: it walks the stages and
reports progress through the queue contract, so the worker, the status page
and the tests see a job's whole life. Fetching, parsing and the graph arrive
with the edge-pipeline issue and replace `run_pipeline`'s body.
"""
from __future__ import annotations

from edge.fetch import check_clone_target
from shared.jobs import Job, JobResult

STAGES = ("fetch", "parse", "resolve", "graph", "store")


def run_pipeline(job: Job, report) -> JobResult:
    report("fetch", 0.0)
    check_clone_target(job.repo_url)
    for index, stage in enumerate(STAGES):
        report(stage, 100.0 * index / len(STAGES))
    report("done", 100.0)
    return JobResult(files_processed=0, embeddings_generated=0)
