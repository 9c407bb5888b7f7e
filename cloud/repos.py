"""The repository registry's API: register, list, read, change, delete and sync.

    POST   /api/v1/repos                {url, branches?, webhook_secret?, sync_interval?}
    GET    /api/v1/repos                (cloud.query.QueryService.repos: every face lists alike)
    GET    /api/v1/repos/{id}
    PATCH  /api/v1/repos/{id}           {branches?, webhook_secret?, sync_interval?}
    DELETE /api/v1/repos/{id}           its vectors, snapshots and record: nothing left
    POST   /api/v1/repos/{id}/sync      {force?, branch?}: queue a sync of a tracked branch
                                        (default: the default branch; force: from nothing)

Registering queues the first ingest (of the default branch; each other tracked branch
is indexed on its first push, or a sync naming it). Untracking a branch removes its
index. A sync goes through the same capped queue as an
ingest, and merges into a job already queued for the repository. The webhook secret is
write-only: records say `has_secret`, never the secret.
"""
from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from cloud.auth import principal, visible
from cloud.body import json_object
from cloud.errors import ApiError
from cloud.limits import tenant_of
from cloud.ingest import ingest as queue_ingest
from cloud.ingest import sync as submit_sync
from cloud.query.service import registry_fields
from shared.graph.store import GraphStore
from shared.graph.store.registry import RepoState, Repository
from shared.repo_url import normalize_repo_url, valid_branch

log = logging.getLogger("cloud.repos")

MAX_BODY = 64 * 1024
MIN_INTERVAL, MAX_INTERVAL = 300, 7 * 86_400  # a periodic sync: 5 minutes to a week
MAX_BRANCHES = 20


def _store(request: Request) -> GraphStore:
    return request.app.state.query.store


async def _body(request: Request, allowed: set[str]) -> dict:
    return await json_object(request, allowed, MAX_BODY)


def _settings_of(body: dict) -> dict:
    """The registry settings a body may carry, checked."""
    found: dict[str, Any] = {}
    if "branches" in body:
        branches = body["branches"]
        if not isinstance(branches, list) or len(branches) > MAX_BRANCHES \
                or not all(isinstance(b, str) and valid_branch(b) for b in branches):
            raise ApiError(400, "bad_request", f"branches must be a list of at most "
                           f"{MAX_BRANCHES} git branch names (no spaces, '..', leading '-')")
        found["branches"] = list(dict.fromkeys(branches))
    if "webhook_secret" in body:
        secret = body["webhook_secret"]
        if secret is not None and (not isinstance(secret, str)
                                   or not 16 <= len(secret) <= 256 or not secret.isprintable()):
            raise ApiError(400, "bad_request", "webhook_secret must be 16 to 256 printable "
                                               "characters, or null to remove it")
        found["secret"] = secret
    if "sync_interval" in body:
        interval = body["sync_interval"]
        if isinstance(interval, bool) or not isinstance(interval, int) or not (
                interval == 0 or MIN_INTERVAL <= interval <= MAX_INTERVAL):
            raise ApiError(400, "bad_request", f"sync_interval is seconds: 0 (none) or "
                                               f"{MIN_INTERVAL} to {MAX_INTERVAL}")
        found["sync_interval"] = interval
    return found


def _record(store: GraphStore, request: Request) -> Repository:
    """The record the path names, if the caller may see it (else 404, as if absent)."""
    raw = request.path_params["repo_id"]
    record = store.repo_record(int(raw)) if raw.isdigit() and len(raw) < 19 else None
    seen = visible(request)
    if record is None or (seen is not None and record.url not in seen):
        raise ApiError(404, "not_found", f"no repository with id {raw[:20]!r}")
    return record


def _public(record: Repository) -> dict:
    return {"url": record.url, **registry_fields(record), "size": record.size,
            "created_at": record.created_at}


async def register(request: Request) -> JSONResponse:
    body = await _body(request, {"url", "branches", "webhook_secret", "sync_interval"})
    if not isinstance(body.get("url"), str):
        raise ApiError(400, "bad_request", "url (a repository URL) is required")
    settings = request.app.state.settings
    url = normalize_repo_url(body["url"], allow_local=settings.allow_local_repos)
    options = _settings_of(body)

    def work() -> tuple[dict, int]:
        store = _store(request)
        tenant = tenant_of(request)
        if tenant is not None:
            tenant.admit(store, url)
            newcomer = url not in store.repos_of(tenant.account.id)
        record, created = store.register(url, options.get("branches", ()),
                                         options.get("secret"), options.get("sync_interval", 0))
        if tenant is not None:
            tenant.grant(store, url)
            if newcomer and not created:  # another account's: its settings hold, unsaid
                return {"repo": _public(store.repo_record(url)), "created": False}, 200
        if not created and _differs(record, options):
            raise ApiError(409, "conflict", f"{url} is registered (id {record.id}) with other "
                                            f"settings; change them with PATCH "
                                            f"/api/v1/repos/{record.id}")
        if not created and record.state is not RepoState.REGISTERED:
            return {"repo": _public(record), "created": False}, 200
        # new, or registered earlier while the queue was full: its first ingest now
        job = queue_ingest(request.app.state.queue, settings, url)
        store.set_repo_state(url, RepoState.QUEUED)
        return ({"repo": _public(store.repo_record(url)), "created": created, "job": job},
                201 if created else 200)
    answer, status = await run_in_threadpool(work)
    return JSONResponse(answer, status_code=status)


def _differs(record: Repository, options: dict) -> bool:
    """Whether a second registration asks for settings the record does not have."""
    return (("branches" in options and options["branches"] != record.branches)
            or ("sync_interval" in options and options["sync_interval"] != record.sync_interval)
            or ("secret" in options and bool(options["secret"]) != record.has_secret))


async def read(request: Request) -> JSONResponse:
    record = await run_in_threadpool(_record, _store(request), request)
    return JSONResponse(_public(record))


async def change(request: Request) -> JSONResponse:
    body = await _body(request, {"branches", "webhook_secret", "sync_interval"})
    options = _settings_of(body)

    def work() -> dict:
        store = _store(request)
        record = _record(store, request)
        changed = store.update_repo(record.id, **options)
        for branch in set(record.tracked) - set(changed.tracked):  # no longer followed
            drop_branch_index(request, store, record.url, branch)
        return _public(store.repo_record(record.id))
    return JSONResponse(await run_in_threadpool(work))


def drop_branch_index(request: Request, store: GraphStore, url: str, branch: str) -> None:
    """Forget `branch` of `url`, and its index with its vectors unless it is the default
    branch's (a job of it still running is fenced out)."""
    key = store.drop_branch(url, branch, fence=request.app.state.queue.issue_fence())
    if key:
        request.app.state.query.vectors.delete_repo(key)
        request.app.state.query.forget_facts([key])
        request.app.state.query.cache.drop(key)


async def delete(request: Request) -> JSONResponse:
    def work() -> dict:
        store = _store(request)
        record = _record(store, request)
        who = principal(request)
        if who.owner:
            remove_repository(request, record.url)
        elif release_repo(request, record.url, who.account_id):
            # other accounts still own it: only this one lets it go
            return {"deleted": record.id, "url": record.url, "released": True}
        return {"deleted": record.id, "url": record.url}
    return JSONResponse(await run_in_threadpool(work))


def release_repo(request: Request, url: str, account_id: int) -> bool:
    """The account lets go of the repository: True when other accounts still own it
    (only this one let go), else it is removed, as nobody owns it any more."""
    if _store(request).release_repo(url, account_id):
        return True
    remove_repository(request, url)
    return False


def remove_repository(request: Request, url: str) -> None:
    """Its vectors, snapshots and record: nothing left, a job still running fenced out."""
    store = _store(request)
    vectors = request.app.state.query.vectors
    keys = store.index_keys(url)
    for key in keys:  # vectors first: a failure leaves the record to retry with
        vectors.delete_repo(key)
    # A job of the repository still running is fenced out of the graph store now...
    store.delete_repository(url, fence=request.app.state.queue.issue_fence())
    for key in keys:  # ...and what it uploaded in between goes here, or as it fails
        vectors.delete_repo(key)
    request.app.state.query.forget_facts(keys)
    for key in keys:
        request.app.state.query.cache.drop(key)


async def sync(request: Request) -> JSONResponse:
    body = await _body(request, {"force", "branch"})
    force, branch = body.get("force", False), body.get("branch")
    if not isinstance(force, bool):
        raise ApiError(400, "bad_request", "force must be true or false")
    if branch is not None and not (isinstance(branch, str) and valid_branch(branch)):
        raise ApiError(400, "bad_request", "branch must be a git branch name")

    def work() -> dict:
        store = _store(request)
        record = _record(store, request)
        tenant = tenant_of(request)
        if tenant is not None:
            tenant.admit(store, record.url)
        return submit_sync(request.app.state.queue, store, record.url, force, branch)
    return JSONResponse(await run_in_threadpool(work), status_code=202)
