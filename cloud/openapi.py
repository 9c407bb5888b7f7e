"""OpenAPI 3.1 description of every endpoint, with request and response examples."""
from __future__ import annotations

from functools import lru_cache

from cloud.openapi_accounts import account_paths, billing_paths, with_keys
from cloud.openapi_parts import error as _error, ok as _ok
from cloud.openapi_query import query_paths
from cloud.openapi_repos import repo_paths

_JOB_ID = "3f1c2a9e8b7d4c6e9a0b1c2d3e4f5a6b"
_REPO = "https://github.com/psf/requests"


_UNAUTHORIZED = _error("unauthorized", "missing Authorization header; send 'Authorization: Bearer <token>'")
_UNAVAILABLE = _error("queue_unavailable", "the job queue is unreachable; try again shortly")
_NO_PARAMETERS = _error("bad_request", "unknown query parameter 'x'; it takes none")
_LIMIT = {"name": "limit", "in": "query", "required": False,
          "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}}

_WORKER = {
    "worker_id": "gaming-laptop", "state": "running", "status": f"Training Graph on {_REPO}",
    "repo_url": _REPO, "error": "", "job_id": _JOB_ID, "stage": "parse", "progress": 40.0,
    "device": "cuda:0 (NVIDIA GeForce RTX 4070 Laptop GPU)", "heartbeat_at": 1790000000.0,
    "heartbeat_seconds": 5.0, "started_at": 1789990000.0, "seconds_since_heartbeat": 1.2,
}
_RECORD = {
    "job_id": _JOB_ID, "repo_url": _REPO, "status": "complete", "duration_seconds": 42.5,
    "files_processed": 36, "embeddings_generated": 36, "timestamp": 1790000000.0,
    "attempts": 1, "worker_id": "gaming-laptop", "commit": "9f2c1e…", "nodes": 412,
    "edges": 1030, "files_skipped": 1,
}
_JOB = {
    "job_id": _JOB_ID, "repo_url": _REPO, "state": "running", "attempts": 1, "stage": "parse",
    "progress": 40.0, "submitted_at": 1789999990.0, "started_at": 1789999995.0,
    "finished_at": 0.0, "ttl": 86400, "worker_id": "gaming-laptop", "lease_deadline": 1790000055.0,
    "error": "", "reason": "", "files_processed": 0, "embeddings_generated": 0,
    # Filled in when the job completes: what the pipeline found and left out.
    "summary": {"commit": "9f2c1e…", "loc": 11840, "nodes": 412, "edges": 1030,
                "edges_by_kind": {"CALLS": 301, "CONTAINS": 376, "EXTENDS": 12, "IMPORTS": 341},
                "external_packages": 14,
                "hot_spots": [{"path": "src/requests/compat.py", "dependents": 11}],
                "files_skipped": 1,
                "skipped": [{"path": "tests/data/bad.py", "reason": "not valid UTF-8 (byte 12)"}],
                "seconds": {"walk": 0.01, "parse": 0.31, "resolve": 0.02, "graph": 0.04}},
}


def _merged(*parts: dict) -> dict:
    """Paths of several modules; one path's methods may come from more than one."""
    paths: dict = {}
    for part in parts:
        for path, operations in part.items():
            paths.setdefault(path, {}).update(operations)
    return paths


@lru_cache(maxsize=1)
def openapi_spec() -> dict:
    spec = _spec()
    with_keys(spec["paths"])
    return spec


def _spec() -> dict:
    secured = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Neo Alexandria control plane", "version": "1.0.0",
                 "description": "Queue repositories for ingestion, watch the edge workers, and "
                                "ask the index: search, graph questions, task context, impact."},
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "The admin token (PHAROS_ADMIN_TOKEN: every scope, every "
                               "account) or an account's API key (na_live_...: its scopes, "
                               "its repositories)"}},
            "schemas": {"Error": {
                "type": "object", "required": ["error", "detail"],
                "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
            }},
        },
        "paths": {
            "/api/v1/ingestion/ingest/{repo_url}": {"post": {
                "summary": "Queue a repository for ingestion",
                "description": "repo_url is the rest of the path: an https URL or host/owner/repo. "
                               "A repository already waiting in the queue returns that job.",
                "security": secured,
                "parameters": [{"name": "repo_url", "in": "path", "required": True,
                                "schema": {"type": "string"}, "example": "github.com/psf/requests"}],
                "responses": {
                    "200": _ok("Queued (or already queued)", {
                        "status": "dispatched", "job_id": _JOB_ID, "duplicate": False,
                        "queue_position": 1, "queue_size": 1, "max_queue_size": 10,
                        "target": _REPO}),
                    "400": _error("invalid_repo_url", "host 127.0.0.1 is a loopback address"),
                    "401": _UNAUTHORIZED,
                    "429": _error("queue_full", "queue is full: 10 pending jobs, the cap is 10"),
                    "503": _UNAVAILABLE,
                },
            }},
            "/api/v1/ingestion/worker/status": {"get": {
                "summary": "Every worker's last report; Offline once its heartbeat is missing",
                "security": secured,
                "responses": {"200": _ok("Workers", {"status": _WORKER["status"],
                                                     "workers": [_WORKER]}),
                              "400": _NO_PARAMETERS, "401": _UNAUTHORIZED,
                              "503": _UNAVAILABLE},
            }},
            "/api/v1/ingestion/overview": {"get": {
                "summary": "Everything the status page shows, in one read",
                "security": secured,
                "responses": {"200": _ok("Overview", {
                    "status": _WORKER["status"], "workers": [_WORKER],
                    "queue": {"size": 2, "running": 1, "max": 10, "backend": "upstash"},
                    "jobs": [_RECORD], "dead": [], "time": 1790000001.0}),
                    "400": _NO_PARAMETERS, "401": _UNAUTHORIZED, "503": _UNAVAILABLE},
            }},
            "/api/v1/ingestion/jobs/history": {"get": {
                "summary": "Finished jobs, newest first (the newest 100 are kept)",
                "security": secured, "parameters": [_LIMIT],
                "responses": {"200": _ok("History", {"jobs": [_RECORD]}),
                              "400": _error("bad_request", "limit must be between 1 and 100"),
                              "401": _UNAUTHORIZED, "503": _UNAVAILABLE},
            }},
            "/api/v1/ingestion/jobs/dead": {"get": {
                "summary": "Dead-lettered jobs: their lease expired on every attempt",
                "security": secured, "parameters": [_LIMIT],
                "responses": {"200": _ok("Dead jobs", {"jobs": [
                    {**_JOB, "state": "dead", "attempts": 3,
                     "error": "lease expired on attempt 3 of 3 (worker stopped answering); "
                              "dead-lettered"}]}),
                    "400": _error("bad_request", "limit must be between 1 and 100"),
                    "401": _UNAUTHORIZED, "503": _UNAVAILABLE},
            }},
            "/api/v1/ingestion/jobs/{job_id}": {"get": {
                "summary": "One job: state, attempts, stage, progress, timestamps",
                "security": secured,
                "parameters": [{"name": "job_id", "in": "path", "required": True,
                                "schema": {"type": "string"}, "example": _JOB_ID}],
                "responses": {"200": _ok("The job", _JOB),
                              "400": _NO_PARAMETERS, "401": _UNAUTHORIZED,
                              "404": _error("not_found", f"no job with id '{_JOB_ID}'"),
                              "503": _UNAVAILABLE},
            }},
            **_merged(query_paths(), repo_paths(), account_paths(), billing_paths()),
            "/health": {"get": {
                "summary": "Liveness (always 200) and each backend's reachability",
                "responses": {"200": _ok("Health", {
                    "status": "ok",
                    "backends": {"queue": {"ok": True, "backend": "redis", "latency_ms": 0.4}}})},
            }},
            "/openapi.json": {"get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1 document"}},
            }},
            "/": {"get": {
                "summary": "The status page (asks for the token once, then polls every 2 s)",
                "responses": {"200": {"description": "HTML page",
                                      "content": {"text/html": {}}}},
            }},
        },
    }
