"""Local HTTP servers for the embedding and vector tests (no pytest imports here).

Both listen on 127.0.0.1 at a port the OS picks, one thread per connection.

``OpenAIEmbeddingServer`` speaks OpenAI's embeddings protocol (``POST .../embeddings``
with ``{"model", "input", "dimensions"?}`` and a Bearer key) and answers deterministic
vectors: a text's vector is seeded by its SHA-256, scaled so that clients must
normalise, and the ``data`` list comes back in reverse order so that clients must
sort by ``index``. Its token count is one token per character. Knobs:
``fail_next(status, times, retry_after, body)`` queues failures for the next
requests; ``max_input_tokens`` and ``max_request_tokens`` refuse long inputs with
OpenAI's 400 messages; ``delay`` holds each request that long; ``malformed_next``
queues bodies that are not embeddings lists. It records every request's inputs
(``requests``), how many were in flight at most (``max_in_flight``), and answers a
wrong key with 401 quoting the key it received, as OpenAI does in part.

``QdrantRestServer`` answers the REST calls of Qdrant that ``shared.vectors`` makes
(service root, collections: exists, get, list, create, payload index; points:
upsert, delete, count, query) by running each on qdrant-client's in-memory engine,
so the answers are Qdrant's own semantics. No Qdrant server binary exists for this
machine, and this lets the tests reach the store's remote path through a real HTTP
client: serialisation, status codes and transport errors. ``fail_upserts(n, status,
apply, after)`` answers ``n`` upserts (after ``after`` good ones) with ``status``,
applying them first when ``apply`` is true (a write whose reply was lost). Not emulated: API keys, gRPC,
snapshots, every other endpoint (404).
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from pydantic import TypeAdapter
from qdrant_client import QdrantClient, models

__all__ = ["OpenAIEmbeddingServer", "QdrantRestServer", "vector_for"]

LOOPBACK = "127.0.0.1"
Reply = tuple[int, dict[str, str], bytes]


def vector_for(text: str, dim: int) -> np.ndarray:
    """The server's (unnormalised) vector for `text`."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return np.random.default_rng(seed).standard_normal(dim) * 3.0


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return status, dict(headers or {}), json.dumps(body).encode()


class _Server:
    """A ThreadingHTTPServer in a daemon thread; subclasses answer `handle`."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = owner.handle(self.command, self.path,
                                                        dict(self.headers), body)
                self.send_response(status)
                headers.setdefault("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

        self._handler = Handler
        self.port = 0
        self._listen()
        self.url = f"http://{LOOPBACK}:{self.port}"

    def _listen(self) -> None:
        self._httpd = ThreadingHTTPServer((LOOPBACK, self.port), self._handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def down(self):
        """Not listening (connections refused), then back on the same port with the same
        data when the block ends."""
        self._httpd.shutdown()  # the listener only: a subclass's stop() closes its data
        self._httpd.server_close()
        try:
            yield
        finally:
            self._listen()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        raise NotImplementedError

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class OpenAIEmbeddingServer(_Server):
    def __init__(self, api_key: str = "sk-test-key", dim: int = 1536,
                 max_input_tokens: int = 8191, max_request_tokens: int | None = None):
        self.api_key = api_key
        self.dim = dim
        self.max_input_tokens = max_input_tokens
        self.max_request_tokens = max_request_tokens
        self.delay = 0.0
        self.requests: list[list[str]] = []  # inputs of every request, in arrival order
        self.in_flight = 0
        self.max_in_flight = 0
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        super().__init__()

    def fail_next(self, status: int, times: int = 1, retry_after: str | None = None,
                  body: Any = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        error = body if body is not None else {"error": {"message": f"test failure {status}",
                                                         "type": "server_error"}}
        with self._lock:
            self._script.extend([_json(status, error, headers)] * times)

    def malformed_next(self, body: bytes) -> None:
        with self._lock:
            self._script.append((200, {}, body))

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            return self._answer(method, path, headers, body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if method != "POST" or not path.rstrip("/").endswith("/embeddings"):
            return _json(404, {"error": {"message": f"no route {method} {path}"}})
        request = json.loads(body)
        inputs = request.get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        with self._lock:
            self.requests.append(list(inputs))
            scripted = self._script.popleft() if self._script else None
        given = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        key = given.removeprefix("Bearer ")
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            return _json(401, {"error": {"message": f"Incorrect API key provided: {key}.",
                                         "type": "invalid_request_error",
                                         "code": "invalid_api_key"}})
        if scripted is not None:
            return scripted
        return self._embeddings(request, inputs)

    def _embeddings(self, request: dict, inputs: list[str]) -> Reply:
        if not inputs or any(not isinstance(t, str) or t == "" for t in inputs):
            return _json(400, {"error": {"message": "'$.input' is invalid.",
                                         "type": "invalid_request_error"}})
        longest = max(len(t) for t in inputs)
        if longest > self.max_input_tokens:
            return _json(400, {"error": {
                "message": f"This model's maximum context length is {self.max_input_tokens} "
                           f"tokens, however you requested {longest} tokens. Please reduce "
                           "your prompt.", "type": "invalid_request_error"}})
        total = sum(len(t) for t in inputs)
        if self.max_request_tokens is not None and total > self.max_request_tokens:
            return _json(400, {"error": {
                "message": f"Requested {total} tokens, max {self.max_request_tokens} tokens "
                           "per request", "type": "invalid_request_error",
                "code": "max_tokens_per_request"}})
        dim = int(request.get("dimensions") or self.dim)
        data = [{"object": "embedding", "index": i, "embedding": vector_for(t, dim).tolist()}
                for i, t in enumerate(inputs)]
        return _json(200, {"object": "list", "data": data[::-1], "model": request.get("model"),
                           "usage": {"prompt_tokens": total, "total_tokens": total}})


_ROUTES: list[tuple[str, re.Pattern, str]] = [
    (method, re.compile(pattern), name) for method, pattern, name in [
        ("GET", r"^/$", "root"),
        ("GET", r"^/collections$", "list"),
        ("GET", r"^/collections/([^/]+)/exists$", "exists"),
        ("GET", r"^/collections/([^/]+)$", "get"),
        ("PUT", r"^/collections/([^/]+)$", "create"),
        ("PUT", r"^/collections/([^/]+)/index$", "index"),
        ("PUT", r"^/collections/([^/]+)/points$", "upsert"),
        ("POST", r"^/collections/([^/]+)/points/delete$", "delete"),
        ("POST", r"^/collections/([^/]+)/points/count$", "count"),
        ("POST", r"^/collections/([^/]+)/points/query$", "query"),
        ("POST", r"^/collections/([^/]+)/points$", "retrieve"),
        ("POST", r"^/collections/([^/]+)/points/scroll$", "scroll"),
        ("POST", r"^/collections/([^/]+)/points/payload$", "set_payload"),
    ]
]
_UPDATED = {"operation_id": 0, "status": "completed"}


class QdrantRestServer(_Server):
    def __init__(self, version: str = "1.20.0"):
        self.version = version
        self.engine = QdrantClient(location=":memory:")
        self.indexes: dict[str, dict[str, str]] = {}  # collection -> field -> schema
        self.calls: dict[str, int] = {}  # route name -> requests received
        self._failures: deque[tuple[int, bool] | None] = deque()
        self._lock = threading.Lock()
        super().__init__()

    def fail_upserts(self, times: int = 1, status: int = 503, apply: bool = False,
                     after: int = 0) -> None:
        """Answer `times` upserts with `status`, once `after` more have succeeded."""
        with self._lock:
            self._failures.extend([None] * after + [(status, apply)] * times)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        route, _, _query = path.partition("?")
        for verb, pattern, name in _ROUTES:
            found = pattern.match(route)
            if verb == method and found:
                with self._lock:
                    self.calls[name] = self.calls.get(name, 0) + 1
                    return self._run(name, *found.groups(), json.loads(body or b"null"))
        return self._error(404, f"no route {method} {route}")

    def _run(self, name: str, *args: Any) -> Reply:
        started = time.perf_counter()
        try:
            failure = self._failures.popleft() if name == "upsert" and self._failures else None
            if failure is not None:
                status, apply = failure
                if apply:
                    self._upsert(*args)
                return self._error(status, "Service Unavailable: test failure")
            result = getattr(self, "_" + name)(*args)
        except LookupError as exc:
            return self._error(404, f"Not found: {exc}")
        except ValueError as exc:
            return self._error(400, f"Wrong input: {exc}")
        if name == "root":
            return _json(200, result)
        return _json(200, {"result": result, "status": "ok",
                           "time": time.perf_counter() - started})

    @staticmethod
    def _error(status: int, message: str) -> Reply:
        return _json(status, {"status": {"error": message}, "time": 0.0})

    def _need(self, collection: str) -> None:
        if not self.engine.collection_exists(collection):
            raise LookupError(f"Collection `{collection}` doesn't exist!")

    def _root(self, _body: Any) -> Any:
        return {"title": "qdrant - vector search engine (test emulation)",
                "version": self.version}

    def _list(self, _body: Any) -> Any:
        names = [c.name for c in self.engine.get_collections().collections]
        return {"collections": [{"name": n} for n in names]}

    def _exists(self, collection: str, _body: Any) -> Any:
        return {"exists": self.engine.collection_exists(collection)}

    def _get(self, collection: str, _body: Any) -> Any:
        self._need(collection)
        info = self.engine.get_collection(collection)
        return info.model_dump(mode="json")

    def _create(self, collection: str, body: Any) -> Any:
        if self.engine.collection_exists(collection):
            raise ValueError(f"Collection `{collection}` already exists!")
        request = models.CreateCollection.model_validate(body)
        self.engine.create_collection(collection, vectors_config=request.vectors)
        return True

    def _index(self, collection: str, body: Any) -> Any:
        self._need(collection)
        request = models.CreateFieldIndex.model_validate(body)
        schema = request.field_schema
        self.indexes.setdefault(collection, {})[request.field_name] = str(
            getattr(schema, "value", schema))
        return _UPDATED

    def _upsert(self, collection: str, body: Any) -> Any:
        self._need(collection)
        request = TypeAdapter(models.PointInsertOperations).validate_python(body)
        points = request.batch if isinstance(request, models.PointsBatch) else request.points
        self.engine.upsert(collection, points=points, update_filter=request.update_filter)
        return _UPDATED

    def _delete(self, collection: str, body: Any) -> Any:
        self._need(collection)
        selector = TypeAdapter(models.PointsSelector).validate_python(body)
        self.engine.delete(collection, points_selector=selector)
        return _UPDATED

    def _count(self, collection: str, body: Any) -> Any:
        self._need(collection)
        request = models.CountRequest.model_validate(body or {})
        return {"count": self.engine.count(collection, count_filter=request.filter,
                                           exact=True).count}

    def _query(self, collection: str, body: Any) -> Any:
        self._need(collection)
        request = models.QueryRequest.model_validate(body)
        result = self.engine.query_points(collection, query=request.query,
                                          query_filter=request.filter,
                                          limit=request.limit or 10,
                                          with_payload=request.with_payload or False)
        return result.model_dump(mode="json")

    def _retrieve(self, collection: str, body: Any) -> Any:
        self._need(collection)
        request = models.PointRequest.model_validate(body)
        points = self.engine.retrieve(collection, ids=request.ids,
                                      with_payload=request.with_payload or False,
                                      with_vectors=request.with_vector or False)
        return [p.model_dump(mode="json") for p in points]

    def _scroll(self, collection: str, body: Any) -> Any:
        self._need(collection)
        request = models.ScrollRequest.model_validate(body or {})
        points, offset = self.engine.scroll(
            collection, scroll_filter=request.filter, limit=request.limit or 10,
            offset=request.offset, with_payload=request.with_payload or False,
            with_vectors=request.with_vector or False)
        return {"points": [p.model_dump(mode="json") for p in points],
                "next_page_offset": offset}

    def _set_payload(self, collection: str, body: Any) -> Any:
        self._need(collection)
        request = models.SetPayload.model_validate(body)
        selector = request.filter if request.filter is not None else request.points
        self.engine.set_payload(collection, payload=request.payload, points=selector,
                                key=request.key)
        return _UPDATED

    def stop(self) -> None:
        super().stop()
        self.engine.close()

