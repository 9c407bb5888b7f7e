"""GitHub and GitLab webhooks: a push to a tracked branch queues a sync, and nothing else.

    POST /api/v1/webhooks/github   X-Hub-Signature-256: sha256=HMAC-SHA256(secret, body)
    POST /api/v1/webhooks/gitlab   X-Gitlab-Token: the secret

Not behind the admin token (cloud/auth.py lets these two paths through): the signature
is the authentication. The order of checks is what keeps a forged or replayed call from
costing anything: the body's size (413 over 1 MB), then the signature over the raw bytes
in constant time (401), then whether the body is JSON at all (400), then the delivery
id (a replay answers 200 and queues nothing). Only then is the event read. Which secret
signs is the repository's own, else WEBHOOK_SECRET, and only the payload names the
repository: so the body is looked at once before the check, for that name alone, and
a body that names none (not JSON included) is checked against WEBHOOK_SECRET. Nothing
unverified is answered on: a bad signature is 401 whatever the body holds. A
repository that is not registered, or a branch not tracked, gets the same 202
"ignored" — which repositories exist is not for a caller without a secret to learn.

The answer comes as soon as a sync is queued (the registry told, one enqueue); which
files changed is computed by the worker from git, never taken from the payload.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from cloud.body import bounded_bytes
from cloud.errors import ApiError
from cloud.ingest import sync
from cloud.repos import drop_branch_index
from shared.graph.store.registry import Repository
from shared.repo_url import InvalidRepoUrl, normalize_repo_url

log = logging.getLogger("cloud.webhooks")

MAX_BODY = 1024 * 1024
IGNORED = {"status": "ignored"}
ZERO_SHA = "0" * 40
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1, or SHA-256 object names
NOT_JSON = object()


async def github(request: Request) -> JSONResponse:
    body = await _raw(request)
    payload = _unverified(body)
    repo = payload.get("repository") if isinstance(payload, dict) else None
    urls = [repo.get(k) for k in ("clone_url", "html_url")] if isinstance(repo, dict) else []

    def check(secret: str) -> bool:
        given = request.headers.get("x-hub-signature-256", "")
        wanted = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given.encode(), wanted.encode())

    event = request.headers.get("x-github-event", "")
    delivery = request.headers.get("x-github-delivery", "")
    return await run_in_threadpool(_handle, request, payload, urls, check, delivery, "github",
                                   lambda record: _github_event(event, payload, record))


async def gitlab(request: Request) -> JSONResponse:
    body = await _raw(request)
    payload = _unverified(body)
    project = payload.get("project") if isinstance(payload, dict) else None
    urls = [project.get(k) for k in ("git_http_url", "web_url")] \
        if isinstance(project, dict) else []

    def check(secret: str) -> bool:
        given = request.headers.get("x-gitlab-token", "")
        return hmac.compare_digest(given.encode(), secret.encode())

    event = request.headers.get("x-gitlab-event", "")
    delivery = (request.headers.get("idempotency-key")
                or request.headers.get("x-gitlab-event-uuid", ""))
    return await run_in_threadpool(_handle, request, payload, urls, check, delivery, "gitlab",
                                   lambda record: _gitlab_event(event, payload, record))


async def _raw(request: Request) -> bytes:
    return await bounded_bytes(request, MAX_BODY, "a webhook body")


def _unverified(body: bytes) -> Any:
    """The payload, only to learn which repository's secret applies; NOT_JSON when the
    body is not JSON (refused with 400 once, and only if, its signature verifies)."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return NOT_JSON


def _handle(request: Request, payload: Any, urls: list, check, delivery: str, source: str,
            event) -> JSONResponse:
    store = request.app.state.query.store
    record = _registered(store, urls)
    secret = (store.webhook_secret(record.url) if record else None) \
        or request.app.state.settings.webhook_secret
    if not secret or not check(secret):
        # the same answer whether the repository exists or not, the body JSON or not
        raise ApiError(401, "unauthorized", f"the {source} webhook's signature does not verify")
    if payload is NOT_JSON:
        raise ApiError(400, "bad_request", "the body is not valid JSON")
    key = f"{source}:{delivery[:100]}" if delivery else ""
    if key and not store.record_delivery(key):
        return JSONResponse({"status": "duplicate"})
    try:
        return _act(request, store, record, event, source)
    except Exception:
        if key:  # nothing was done: a redelivery (same id) must be able to do it
            store.forget_delivery(key)
        raise


def _act(request: Request, store, record: Repository | None, event, source: str) -> JSONResponse:
    if record is None:
        return JSONResponse(IGNORED, status_code=202)
    answer = event(record)
    if answer is None:
        return JSONResponse(IGNORED, status_code=202)
    if answer == "pong":
        return JSONResponse({"status": "pong"})
    kind, branch, after, default = answer
    if kind == "deleted" and branch in (record.default_branch or default,
                                        record.deleted_branch):
        return _default_deleted(request, store, record, branch, default, source)
    if kind == "deleted":
        drop_branch_index(request, store, record.url, branch)
        return JSONResponse({"status": "branch deleted"}, status_code=202)
    job = sync(request.app.state.queue, store, record.url, branch=branch,
               default_branch=default, push_at=store.clock(), remote_commit=after)
    log.info("%s push to %s %s: sync %s", source, record.url, branch, job["job_id"])
    return JSONResponse({"status": "queued", "job_id": job["job_id"],
                         "duplicate": job["duplicate"]}, status_code=202)


def _default_deleted(request: Request, store, record: Repository, branch: str,
                     default: str | None, source: str) -> JSONResponse:
    """The remote deleted the default branch (a host lets it go only once another is
    the default, as a rename does): the index built from it keeps answering, marked
    stale, and a sync of the remote's default branch is queued (a full queue: 429,
    the record left stale and the delivery open to redelivery)."""
    store.drop_default_branch(record.url, branch)
    job = sync(request.app.state.queue, store, record.url, push_at=store.clock(),
               default_branch=default if default != branch else None)
    log.info("%s: default branch %s of %s deleted: sync %s", source, branch, record.url,
             job["job_id"])
    return JSONResponse({"status": "default branch deleted", "job_id": job["job_id"],
                         "duplicate": job["duplicate"]}, status_code=202)


def _registered(store, urls: list) -> Repository | None:
    """The record a payload's URLs name. Hosts treat owner and repository names without
    regard to case (`Octo/Widgets` is `octo/widgets`), so a second look ignores it."""
    wanted = []
    for raw in urls:
        if not isinstance(raw, str):
            continue
        try:
            url = normalize_repo_url(raw, allow_local=True)
        except InvalidRepoUrl:
            continue
        record = store.repo_record(url)
        if record is not None:
            return record
        wanted.append(url.lower())
    if wanted:
        for record in store.repo_records():
            if record.url.lower() in wanted:
                return record
    return None


def _tracked(record: Repository, branch: str, payload_default: str | None,
             deleting: bool = False) -> bool:
    """A deletion of the default branch already recorded is followed again (its sync
    may have met a full queue: the redelivery queues it)."""
    tracked = record.tracked or ([payload_default] if payload_default else [])
    return branch in tracked or (deleting and branch == record.deleted_branch)


def _github_event(event: str, payload: dict, record: Repository):
    if event == "ping":
        return "pong"
    default = (payload.get("repository") or {}).get("default_branch")
    if event == "push":
        ref = payload.get("ref") or ""
        if not isinstance(ref, str) or not ref.startswith("refs/heads/"):
            return None  # a tag
        branch = ref[len("refs/heads/"):]
        deleted = payload.get("deleted") is True
        if not _tracked(record, branch, default, deleted):
            return None
        if deleted:
            return "deleted", branch, None, default
        return "push", branch, _commit(payload.get("after")), default
    if event == "delete" and payload.get("ref_type") == "branch":
        branch = payload.get("ref")
        if isinstance(branch, str) and _tracked(record, branch, default, deleting=True):
            return "deleted", branch, None, default
    return None  # create (a branch appears: nothing to index until it is pushed), others


def _gitlab_event(event: str, payload: dict, record: Repository):
    if event != "Push Hook":
        return None  # a Tag Push Hook (tags are not indexed) or another event: acknowledged
    ref = payload.get("ref") or ""
    if not isinstance(ref, str) or not ref.startswith("refs/heads/"):
        return None
    branch = ref[len("refs/heads/"):]
    default = (payload.get("project") or {}).get("default_branch")
    after = payload.get("after")
    if not _tracked(record, branch, default, deleting=after == ZERO_SHA):
        return None
    if after == ZERO_SHA:
        return "deleted", branch, None, default
    return "push", branch, _commit(after), default


def _commit(after) -> str | None:
    """The pushed head, when the payload gives a commit id (it is stored and shown as the
    remote's head); anything else is left unknown, the sync still queued."""
    if isinstance(after, str) and _SHA.fullmatch(after) and after != ZERO_SHA:
        return after
    return None
