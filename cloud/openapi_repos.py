"""OpenAPI paths of the repository registry (cloud/repos.py) and the webhooks
(cloud/webhooks.py); cloud/openapi.py merges them into the document."""
from __future__ import annotations

from cloud.openapi_parts import error as _error, ok as _ok, object_body as _body

_REPO = "https://github.com/psf/requests"
_COMMIT = "0e322af87745eff34caffe4df68456ebc20d9068"
_SECURED = [{"bearer": []}]
_RECORD = {
    "url": _REPO, "id": 7, "state": "ready", "reason": "", "stale": False,
    "default_branch": "main", "branches": ["main"], "sync_interval": 3600, "has_secret": True,
    "last_sync_at": 1790000000.0, "last_push_at": 1789999990.0, "remote_commit": _COMMIT,
    "size": {"files": 36, "loc": 11840, "nodes": 412, "edges": 1030, "chunks": 377},
    "created_at": 1789000000.0,
    "indexed": {"main": {"commit": _COMMIT, "synced_at": 1790000000.0,
                         "remote_commit": _COMMIT}},
}
_JOB = {"status": "dispatched", "job_id": "3f1c2a9e8b7d4c6e9a0b1c2d3e4f5a6b", "duplicate": False,
        "queue_position": 1, "queue_size": 1, "max_queue_size": 10, "target": _REPO}


_UNAUTHORIZED = _error("unauthorized", "invalid token")
_NOT_FOUND = _error("not_found", "no repository with id '99'")
_BAD = _error("bad_request", "sync_interval is seconds: 0 (none) or 300 to 604800")
_SETTINGS = {
    "branches": {"type": "array", "items": {"type": "string"}, "maxItems": 20,
                 "description": "Tracked branches (default: the remote's default branch)"},
    "webhook_secret": {"type": ["string", "null"], "minLength": 16, "maxLength": 256,
                       "description": "This repository's webhook secret (write-only; "
                                      "default WEBHOOK_SECRET); null removes it"},
    "sync_interval": {"type": "integer", "description": "Seconds between periodic syncs "
                                                        "(0: none, else 300 to 604800)"},
}
_ID = [{"name": "repo_id", "in": "path", "required": True, "schema": {"type": "integer"},
        "example": 7}]


def _webhook(summary: str, header: str) -> dict:
    return {"post": {
        "summary": summary,
        "description": f"Authenticated by {header}, not the admin token. Only queues work: a "
                       "push to a tracked branch queues a sync (merged into one already "
                       "queued). Unknown repositories and untracked branches answer the same "
                       "202 'ignored'.",
        "security": [],
        "responses": {
            "200": _ok("A ping, or a replayed delivery (nothing queued)",
                       {"status": "duplicate"}),
            "202": _ok("Queued, or ignored", {"status": "queued", "job_id": _JOB["job_id"],
                                              "duplicate": False}),
            # the signature is checked first: an unsigned body is 401 whatever it holds
            "400": {**_error("bad_request", "the body is not valid JSON"),
                    "description": "A correctly signed body that is not JSON"},
            "401": {**_error("unauthorized", "the github webhook's signature does not verify"),
                    "description": "A bad or missing signature, whatever the body holds"},
            "413": _error("too_large", "a webhook body is at most 1048576 bytes"),
            "429": _error("queue_full", "queue is full: 10 pending jobs, the cap is 10"),
        },
    }}


def repo_paths() -> dict:
    return {
        "/api/v1/repos": {"post": {
            "summary": "Register a repository (and queue its first ingest)",
            "security": _SECURED,
            "requestBody": _body({"url": {"type": "string"}, **_SETTINGS},
                                 {"url": _REPO, "branches": ["main"], "sync_interval": 3600},
                                 required=("url",)),
            "responses": {"201": _ok("Registered and queued",
                                     {"repo": {**_RECORD, "state": "queued"}, "created": True,
                                      "job": _JOB}),
                          "200": _ok("Already registered (settings unchanged: PATCH them)",
                                     {"repo": _RECORD, "created": False}),
                          "400": _BAD, "401": _UNAUTHORIZED,
                          "409": _error("conflict", f"{_REPO} is registered (id 7) with other "
                                                    "settings; change them with PATCH "
                                                    "/api/v1/repos/7"),
                          "413": _error("too_large", "the body is 70000 bytes; at most 65536"),
                          "429": _error("queue_full", "queue is full: 10 pending jobs")},
        }},
        "/api/v1/repos/{repo_id}": {
            "get": {"summary": "One repository's record", "security": _SECURED,
                    "parameters": _ID,
                    "responses": {"200": _ok("The record", _RECORD), "401": _UNAUTHORIZED,
                                  "404": _NOT_FOUND}},
            "patch": {"summary": ("Change tracked branches (an untracked one loses its "
                                  "index), the webhook secret, the interval"),
                      "security": _SECURED, "parameters": _ID,
                      "requestBody": _body(_SETTINGS, {"sync_interval": 0}),
                      "responses": {"200": _ok("The changed record", _RECORD), "400": _BAD,
                                    "401": _UNAUTHORIZED, "404": _NOT_FOUND}},
            "delete": {"summary": "Remove the repository: its vectors, snapshots and record",
                       "security": _SECURED, "parameters": _ID,
                       "responses": {"200": _ok("Removed", {"deleted": 7, "url": _REPO}),
                                     "401": _UNAUTHORIZED, "404": _NOT_FOUND}},
        },
        "/api/v1/repos/{repo_id}/sync": {"post": {
            "summary": "Queue a sync (only what changed is parsed and embedded again)",
            "security": _SECURED, "parameters": _ID,
            "requestBody": _body({"force": {"type": "boolean",
                                            "description": "Rebuild from nothing"},
                                  "branch": {"type": "string", "description": (
                                      "A tracked branch (default: the default branch); "
                                      "each branch has its own index")}},
                                 {"force": True}),
            "responses": {"202": _ok("Queued (or merged into the queued job)",
                                     {**_JOB, "force": True, "branch": "main"}),
                          "400": _error("bad_request", "branch 'x' is not tracked; "
                                                       "tracked: main (change with PATCH)"),
                          "401": _UNAUTHORIZED, "404": _NOT_FOUND,
                          "429": _error("queue_full", "queue is full: 10 pending jobs")},
        }},
        "/api/v1/webhooks/github": _webhook("GitHub webhook (push, ping, create, delete)",
                                            "X-Hub-Signature-256 (HMAC-SHA256 of the body)"),
        "/api/v1/webhooks/gitlab": _webhook("GitLab webhook (Push Hook, Tag Push Hook)",
                                            "X-Gitlab-Token"),
    }
