"""Submitting a repository: one implementation for every face that queues one.

POST /api/v1/ingestion/ingest/..., POST /api/v1/repos and the MCP tools
ingest_repository and sync_repository call here, so a URL is checked,
normalised and queued the same way whoever submits it. `sync` is what
POST /api/v1/repos/{id}/sync does (cloud/repos.py `queue_sync`), without the
request: the MCP tool calls it, and the route can.
"""
from __future__ import annotations

import logging
from typing import Any

from cloud.errors import ApiError
from shared.graph.store.registry import RepoState
from shared.queue import JobQueue
from shared.repo_url import index_key, normalize_repo_url
from shared.settings import Settings

log = logging.getLogger("cloud.ingest")


def ingest(queue: JobQueue, settings: Settings, raw: str, store: Any = None,
           tenant: Any = None) -> dict:
    """Queue the repository `raw` names (validated and normalised: InvalidRepoUrl
    otherwise): its new job, or the pending one of the same repository (`duplicate`).
    QueueFull when the queue is at its cap. With the graph `store`, the repository is
    registered too (and shows as queued), as an ingest through the API does. With a
    `tenant` (cloud.limits.Tenant: an account's key), its plan must allow it, and the
    repository becomes one of the account's."""
    target = normalize_repo_url(raw, allow_local=settings.allow_local_repos)
    if tenant is not None:
        tenant.admit(store, target)
    answer = _enqueue(queue, target)
    if store is not None:
        register(store, target)
    if tenant is not None:
        tenant.grant(store, target)
    return answer


def register(store: Any, url: str) -> None:
    """A repository ingested is registered on first use (and shows as queued); the
    ingest never fails for it: the job is queued already."""
    try:
        store.register(url)
        store.set_repo_state(url, RepoState.QUEUED)
    except Exception as exc:  # the graph store unreachable or not configured
        log.warning("ingest of %s queued, but not registered: %s", url, exc)


def registered(store: Any, settings: Settings, key: str,
               visible: frozenset[str] | None = None) -> str:
    """The URL of the registered repository `key` names: its registry id, or its URL as
    ingest takes it. ApiError 404 when the registry has no such repository, or none
    the caller may see (`visible`: an account's own; None: every one)."""
    key = key.strip()
    found = (store.repo_record(int(key)) if key.isdigit() and len(key) < 19 else
             store.repo_record(normalize_repo_url(key, allow_local=settings.allow_local_repos)))
    if found is None or (visible is not None and found.url not in visible):
        raise ApiError(404, "not_found", f"no repository {key[:200]!r} in the registry; "
                       "ingest it first (it is registered then)")
    return found.url


def sync(queue: JobQueue, store: Any, url: str, force: bool = False,
         branch: str | None = None, default_branch: str | None = None,
         **pushed: Any) -> dict:
    """Tell the registry (a forced rebuild, where a push moved a branch), then queue a
    sync of the registered repository `url`'s `branch` (default: its default branch),
    or merge into the job queued for that branch: the one way a sync is asked for.
    `default_branch`: what a webhook's payload says it is, for a repository whose
    first ingest has not told the registry yet. ApiError 400 for a branch the
    repository does not track."""
    record = store.repo_record(url)
    if branch and record is not None and record.tracked and branch not in record.tracked:
        raise ApiError(400, "bad_request", f"branch {branch[:200]!r} is not tracked; "
                       f"tracked: {', '.join(record.tracked)} (change with PATCH)")
    default = (record.default_branch if record is not None else "") or default_branch
    key = index_key(url, None if branch == default else branch)
    store.request_sync(url, force=force, branch=branch, key=key, **pushed)
    job = _enqueue(queue, key)
    if key == url:  # the repository's state follows its default branch
        store.set_repo_state(url, RepoState.QUEUED)
    return {**job, "force": force,
            "branch": branch or default or None}


def _enqueue(queue: JobQueue, target: str) -> dict:
    enqueued = queue.enqueue(target)
    return {
        "status": "dispatched",
        "job_id": enqueued.job.id,
        "duplicate": not enqueued.created,
        "queue_position": enqueued.position,
        "queue_size": enqueued.queue_size,
        "max_queue_size": queue.max_queue_size,
        "target": target,
    }
