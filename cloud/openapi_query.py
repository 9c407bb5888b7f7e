"""OpenAPI description of the query API (search, repositories, graph, context, impact)."""
from __future__ import annotations

from cloud.openapi_parts import error as _error, ok as _ok
from cloud.query.requests import BUDGET_RANGE

_REPO = "https://github.com/psf/requests"
_COMMIT = "0e322af87745eff34caffe4df68456ebc20d9068"
_INDEX = {"repo": _REPO, "ref": "main", "commit": _COMMIT, "indexed_at": 1790000000.0,
          "stale": False, "indexing": False}
_SECURED = [{"bearer": []}]
_REF_DOC = ("A tracked branch (default: the default branch): its own index answers, and "
            "index.ref says which branch did")
_REF = {"type": "string", "maxLength": 200, "description": _REF_DOC}


_COMMON = {
    "401": _error("unauthorized", "missing Authorization header; send 'Authorization: Bearer <token>'"),
    "404": _error("not_found", f"repository {_REPO} is not indexed; ingest it first "
                               "(POST /api/v1/ingestion/ingest/...)"),
    "503": _error("graph_store_unavailable", "the graph store is unreachable; try again shortly"),
}


def _body(schema: dict, example: dict) -> dict:
    return {"required": True, "content": {"application/json": {
        "schema": _null_is_absent(schema), "example": example}}}


def _null_is_absent(schema: dict) -> dict:
    """An optional field may be sent as null, which means what leaving it out means."""
    required = set(schema.get("required", ()))
    properties = {}
    for name, field in schema["properties"].items():
        if name not in required:
            field = ({**field, "enum": [*field["enum"], None]} if "enum" in field else
                     {**field, "type": [field["type"], "null"]})
        properties[name] = field
    return {**schema, "properties": properties}


def _param(name: str, description: str, schema: dict, required: bool = False,
           example: object = None) -> dict:
    found = {"name": name, "in": "query", "required": required, "description": description,
             "schema": schema}
    if example is not None:
        found["example"] = example
    return found


_REPO_PARAM = _param("repo", "The repository, as POST /ingest accepts it", {"type": "string"},
                     True, "github.com/psf/requests")
_REF_PARAM = _param("ref", _REF_DOC, {"type": "string", "maxLength": 200})
_COMMIT_PARAM = _param("commit", "An indexed commit (default: the newest ready one)",
                       {"type": "string", "pattern": "^[0-9a-f]{4,64}$"})
_KINDS_PARAM = _param("kinds", "Edge kinds, comma-separated",
                      {"type": "string", "example": "IMPORTS,CALLS,EXTENDS"})
_HIT = {"repo": _REPO, "commit": _COMMIT, "path": "src/requests/sessions.py",
        "name": "Session.send", "kind": "method", "language": "python", "start_line": 673,
        "end_line": 750, "score": 0.7421, "snippet": "    def send(self, request, **kwargs):",
        "snippet_line": 673, "signals": {"semantic": 0.61, "keyword": 11.2, "matched_terms": 3,
                                         "name": 0.5, "centrality": 0.9}}
_NODE = {"path": "src/requests/api.py", "name": "request", "kind": "function",
         "start_line": 14, "end_line": 59, "language": "python"}


def _graph_get(summary: str, params: list, example: dict) -> dict:
    return {"get": {"summary": summary, "security": _SECURED, "parameters": params,
                    "responses": {"200": _ok("The answer", example),
                                  "400": _error("bad_request", "unknown path 'src/nope.py' in "
                                                f"{_REPO} at {_COMMIT[:12]}"),
                                  **_COMMON}}}


def query_paths() -> dict:
    search_schema = {"type": "object", "required": ["query"], "additionalProperties": False,
                     "properties": {
                         "query": {"type": "string", "minLength": 1, "maxLength": 1000},
                         "repo": {"type": "string"}, "ref": _REF,
                         "mode": {"enum": ["hybrid", "semantic", "keyword", "structural"],
                                  "default": "hybrid"},
                         "limit": {"type": "integer", "minimum": 1, "maximum": 100,
                                   "default": 10},
                         "path": {"type": "string", "description": "glob: * ? [..] **"},
                         "language": {"enum": ["python", "javascript", "typescript", "tsx"]},
                         "kind": {"enum": ["function", "method", "class", "file"]}}}
    context_schema = {"type": "object", "required": ["task", "repo"],
                      "additionalProperties": False, "properties": {
                          "task": {"type": "string", "minLength": 1, "maxLength": 4000},
                          "repo": {"type": "string"}, "ref": _REF,
                          "files": {"type": "array", "items": {"type": "string"}},
                          "budget_tokens": {
                              "type": "integer", "minimum": BUDGET_RANGE[0],
                              "maximum": BUDGET_RANGE[1], "default": 2048,
                              "description": "cl100k_base tokens of the answer's text "
                                             "(markdown), or of its items array as "
                                             "serialised, every field counted (json)"},
                          "format": {"enum": ["markdown", "json"], "default": "markdown"}}}
    impact_schema = {"type": "object", "required": ["repo"], "additionalProperties": False,
                     "properties": {"repo": {"type": "string"}, "ref": _REF,
                                    "files": {"type": "array", "items": {"type": "string"}},
                                    "base": {"type": "string"}, "head": {"type": "string"}}}
    return {
        "/api/v1/search": {"post": {
            "summary": "Search code: hybrid (default), semantic, keyword or structural",
            "security": _SECURED,
            "requestBody": _body(search_schema, {"query": "send a prepared request",
                                                 "repo": "github.com/psf/requests",
                                                 "mode": "hybrid", "limit": 10}),
            "responses": {
                "200": _ok("Hits, best first", {"results": [_HIT], "mode": "hybrid",
                                                "took_ms": 12.5, "index": [_INDEX]}),
                "400": _error("bad_request", "mode must be one of hybrid | semantic | keyword"
                                             " | structural, got 'fuzzy'"),
                **_COMMON,
                "503": _error("model_unavailable", "the query encoder is not installed: ..."),
            }}},
        "/api/v1/repos": {"get": {
            "summary": "Every indexed repository: commit, sizes, languages, last job",
            "security": _SECURED,
            "responses": {"200": _ok("Repositories", {"repos": [{
                "url": _REPO, "commit": _COMMIT, "indexed_at": 1790000000.0, "files": 36,
                "symbols": 412, "chunks": 390, "loc": 11840, "languages": {"python": 36},
                "indexing": False, "last_job": {"state": "complete", "job_id": "3f1c…",
                                                "finished_at": 1790000000.0}}]}),
                "401": _COMMON["401"], "503": _COMMON["503"]}}},
        "/api/v1/graph/dependencies": _graph_get(
            "What a file or symbol depends on, up to depth edges away",
            [_REPO_PARAM, _REF_PARAM, _param("path", "Repository-relative path", {"type": "string"}, True,
                                 "src/requests/api.py"),
             _param("symbol", "Qualified name of a symbol in the file", {"type": "string"}),
             _COMMIT_PARAM, _param("depth", "1-10", {"type": "integer", "default": 1}),
             _KINDS_PARAM, _param("limit", "Result cap (1-1000)", {"type": "integer"})],
            {"node": _NODE, "direction": "dependencies", "depth": 1,
             "kinds": ["CALLS", "EXTENDS", "IMPORTS"],
             "results": [{**_NODE, "path": "src/requests/sessions.py", "name": "Session.request",
                          "kind": "method", "distance": 1}],
             "total": 1, "truncated": False, "took_ms": 3.1, "index": _INDEX}),
        "/api/v1/graph/dependents": _graph_get(
            "What depends on a file or symbol, up to depth edges away",
            [_REPO_PARAM, _REF_PARAM, _param("path", "Repository-relative path", {"type": "string"}, True),
             _param("symbol", "Qualified name", {"type": "string"}), _COMMIT_PARAM,
             _param("depth", "1-10", {"type": "integer", "default": 1}), _KINDS_PARAM,
             _param("limit", "Result cap (1-1000)", {"type": "integer"})],
            {"node": _NODE, "direction": "dependents", "depth": 1, "kinds": ["IMPORTS"],
             "results": [{**_NODE, "path": "src/requests/__init__.py", "name":
                          "src/requests/__init__.py", "kind": "file", "distance": 1}],
             "total": 1, "truncated": False, "took_ms": 2.0, "index": _INDEX}),
        "/api/v1/graph/path": _graph_get(
            "A shortest import path between two files",
            [_REPO_PARAM, _REF_PARAM, _param("from", "Path", {"type": "string"}, True),
             _param("to", "Path", {"type": "string"}, True), _COMMIT_PARAM, _KINDS_PARAM,
             _param("max_depth", "1-10", {"type": "integer"})],
            {"from": "src/requests/api.py", "to": "src/requests/compat.py", "kinds": ["IMPORTS"],
             "path": [_NODE], "length": 2, "took_ms": 2.2, "index": _INDEX}),
        "/api/v1/graph/hotspots": _graph_get(
            "The files most depended on (PageRank over IMPORTS)",
            [_REPO_PARAM, _REF_PARAM, _COMMIT_PARAM, _param("limit", "1-100", {"type": "integer"})],
            {"results": [{"path": "src/requests/compat.py", "pagerank": 0.12, "dependents": 11}],
             "took_ms": 1.0, "index": _INDEX}),
        "/api/v1/graph/cycles": _graph_get(
            "Import cycles (strongly connected components), largest first",
            [_REPO_PARAM, _REF_PARAM, _COMMIT_PARAM, _param("limit", "1-100", {"type": "integer"})],
            {"cycles": [["src/requests/models.py", "src/requests/sessions.py"]], "total": 1,
             "took_ms": 1.0, "index": _INDEX}),
        "/api/v1/graph/snapshot": _graph_get(
            "The whole snapshot as JSON: nodes and edges",
            [_REPO_PARAM, _REF_PARAM, _COMMIT_PARAM],
            {"nodes": [{"id": "4611686018427387904", **_NODE}],
             "edges": [{"src": "4611686018427387904", "dst": "123", "kind": "CALLS", "line": 59,
                        "weight": 1, "type_only": False,
                        "candidates": 1}], "took_ms": 40.0, "index": _INDEX}),
        "/api/v1/graph/symbols": _graph_get(
            "Where a function, method or class of this name is defined",
            [_REPO_PARAM, _REF_PARAM,
             _param("name", "Its own name or qualified name", {"type": "string"}, True,
                    "Session.request"),
             _param("kind", "Only this kind", {"enum": ["function", "method", "class"]}),
             _COMMIT_PARAM,
             _param("limit", "At most this many", {"type": "integer", "minimum": 1,
                                                    "maximum": 100, "default": 20})],
            {"name": "Session.request", "kind": None,
             "results": [{**_NODE, "name": "request", "qualname": "Session.request",
                          "kind": "method"}],
             "total": 1, "truncated": False, "took_ms": 3.0, "index": _INDEX}),
        "/api/v1/context": {"post": {
            "summary": "The code a model needs for a task, within a token budget",
            "security": _SECURED,
            "requestBody": _body(context_schema, {"task": "retry failed requests with backoff",
                                                  "repo": "github.com/psf/requests",
                                                  "budget_tokens": 2048, "format": "json"}),
            "responses": {
                "200": _ok("Items (json) or text (markdown), never over budget", {
                    "items": [{**_NODE, "text": "def request(method, url, **kwargs):",
                               "reason": "search hit #1 (hybrid)", "form": "signature"}],
                    "tokens": 1980, "budget_tokens": 2048,
                    "tokenizer": "cl100k_base (tiktoken, offline)", "notes": [],
                    "format": "json", "took_ms": 80.0, "index": _INDEX}),
                "400": _error("bad_request", f"budget_tokens must be between {BUDGET_RANGE[0]} "
                                             f"and {BUDGET_RANGE[1]}, got 100"),
                **_COMMON}}},
        "/api/v1/impact": {"post": {
            "summary": "What depends on changed files (or on base..head), with risk",
            "security": _SECURED,
            "requestBody": _body(impact_schema, {"repo": "github.com/psf/requests",
                                                 "files": ["src/requests/utils.py"]}),
            "responses": {
                "200": _ok("Dependents with distance (the first 500 of each list; "
                           "total_files and total_symbols count them all), risk per changed "
                           "file, summary", {
                    "changed": [{"path": "src/requests/utils.py", "change": "modified",
                                 "known": True, "direct_dependents": 6, "dependents": 9,
                                 "tests": ["tests/test_utils.py"], "risk": "medium"}],
                    "files": [{**_NODE, "path": "src/requests/models.py", "distance": 1,
                               "is_test": False, "via": "src/requests/utils.py"}],
                    "symbols": [], "truncated": False, "total_files": 9, "total_symbols": 0,
                    "base": None,
                    "summary": "1 changed file(s); 9 file(s) (1 test(s)) and 0 symbol(s) "
                               "in other files depend on them; highest risk medium: ...",
                    "took_ms": 20.0, "index": _INDEX}),
                "400": _error("bad_request", "give files (the changed paths) or base and head "
                                             "(two commits)"),
                **_COMMON}}},
    }
