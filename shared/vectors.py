"""The vector sink: structural and text embeddings in Qdrant (server, Cloud or local mode).

`open_vector_store(settings)` talks to QDRANT_URL (with QDRANT_API_KEY) when set, else
to qdrant-client's local mode on disk in DATA_DIR/qdrant, which locks its folder: one
process at a time.

Collections (cosine distance, keyword payload indexes on repo_url and file_path on a
server; local mode has no payload indexes):

* `code_structure_embeddings`: one 64-d Node2Vec vector per file. Payload: repo_url,
  file_path, embedding_type "structural", model "node2vec", graph_hash (the file
  graph and settings they were trained on: a sync whose file graph did not change
  keeps them), commit, ingest.
* the chunk collection of a text model (`chunk_collection(model)`): one vector per
  function, method, class or symbol-less file. Payload: repo_url, file_path,
  qualified_name, kind, start_line, end_line, commit, text, text_hash, model,
  runtime (what ran the model: engine and precision), embedding_type "text", ingest.
  A sync rewrites only the chunks whose text, lines, kind or runtime changed
  (`chunk_state`, `write_chunks(kept=...)`); the others keep their vectors. The default model (all-MiniLM-L6-v2, 384-d) writes
  `code_chunk_embeddings`; any other model writes `code_chunk_embeddings_<model>`, so
  vectors of two models never share a collection (their spaces differ even when their
  sizes agree). The size comes from the vectors; a collection that exists with another
  size is refused with an error naming both sizes.

Point ids are the graph's node ids (`shared.graph.model.node_id` of repo, path,
qualified name): deterministic, so a re-ingest overwrites and a retried upload is
idempotent, and a search hit leads straight to its graph node. A name repeated in one
file (a property's getter and setter) gets "#2", "#3"... in upload order, so every
embedding is one point (property 8).

An upload writes batches of 100 points, each retried with exponential backoff on
transport errors and 429/5xx answers, every point tagged with the upload's `ingest`
id and its `fence` (the job's lease token, shared.jobs.Job.fence). Only after the
last batch is written are the repository's points of older fences (files deleted or
symbols renamed since) removed: a failed upload loses nothing.

Fencing, where the write lands: an upsert may replace a point only if the point's
fence is not newer than the upload's (Qdrant's conditional update, `update_filter`,
Qdrant >= 1.16), and the clean-up deletes only points of older fences. A worker that
lost its lease and uploads late can neither overwrite nor delete what a newer job
wrote; what it adds (points the newer commit no longer has) carries its own commit,
which searches of the newer snapshot filter out, and the next ingest removes.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Protocol, Sequence

import httpx
import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from shared.graph.model import node_id
from shared.jobs import fence_now
from shared.local_index import RepoPoints
from shared.settings import Settings

__all__ = ["CHUNK_COLLECTION", "DEFAULT_CHUNK_MODEL", "STRUCTURE_COLLECTION", "STRUCTURE_DIM",
           "ChunkLike", "Hit", "StoredChunk", "VectorStore", "VectorStoreError",
           "VectorStoreUnavailable", "chunk_collection", "chunk_ids", "file_ids", "open_vector_store",
           "text_hash"]

log = logging.getLogger(__name__)

STRUCTURE_COLLECTION = "code_structure_embeddings"
STRUCTURE_DIM = 64
CHUNK_COLLECTION = "code_chunk_embeddings"
DEFAULT_CHUNK_MODEL = "all-MiniLM-L6-v2"
BATCH_SIZE = 100
RETRIES = 3
INDEXED_FIELDS = {**dict.fromkeys(("repo_url", "file_path", "commit", "kind"),
                                  models.PayloadSchemaType.KEYWORD),
                  "fence": models.PayloadSchemaType.INTEGER}
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
# Progress of an upload: (points written so far, points in the upload).
OnBatch = Callable[[int, int], None]
# A search's payload conditions: field -> the value it must have, or a list of any.
Where = dict[str, "str | Sequence[str]"]


class VectorStoreError(Exception):
    """The vector store could not do what was asked; the message never carries the key."""


class VectorStoreUnavailable(VectorStoreError):
    """Qdrant could not be reached, or kept answering 429/5xx (after retries): an outage."""


class ChunkLike(Protocol):
    """What a text chunk must have to be stored (edge.embed.chunks.Chunk has it)."""

    path: str
    qualname: str
    kind: str
    start_line: int
    end_line: int
    text: str


class StoredChunk(NamedTuple):
    """The payload fields of a stored chunk point that decide whether it is current."""
    text_hash: str | None
    start_line: int | None
    end_line: int | None
    kind: str | None
    runtime: str | None


@dataclass(frozen=True)
class Hit:
    id: int  # the graph node id of the embedded file or symbol
    score: float  # cosine similarity
    payload: dict[str, Any]


def chunk_collection(model: str) -> str:
    """The collection of one text model's chunk vectors."""
    short = model.rstrip("/").rsplit("/", 1)[-1]
    if short.lower() == DEFAULT_CHUNK_MODEL.lower():
        return CHUNK_COLLECTION
    slug = re.sub(r"[^a-z0-9_.-]+", "-", short.lower()).strip("-.")
    if not slug:
        raise VectorStoreError(f"no collection name can be made of the model name {model!r}")
    return f"{CHUNK_COLLECTION}_{slug}"


def open_vector_store(settings: Settings) -> "VectorStore":
    if settings.qdrant_url:
        return VectorStore(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
    return VectorStore(path=settings.data_dir / "qdrant")


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code in _RETRY_STATUS
    # qdrant-client wraps connection errors and timeouts in ResponseHandlingException.
    return isinstance(exc, (ResponseHandlingException, httpx.TransportError))


class VectorStore:
    """Qdrant at `url` (with `api_key`), or local mode in the folder `path`."""

    def __init__(self, *, url: str = "", api_key: str = "", path: Path | str | None = None,
                 timeout: int = 30, batch_size: int = BATCH_SIZE, retries: int = RETRIES,
                 backoff: float = 0.5, check_compatibility: bool = True):
        if bool(url) == (path is not None):
            raise VectorStoreError("give the vector store either a url or a path")
        if batch_size < 1 or retries < 0:
            raise ValueError("batch_size must be at least 1 and retries at least 0")
        self.batch_size = batch_size
        self.retries = retries
        self.backoff = backoff
        self._where = url or str(path)
        self._local = not url
        self._sizes: dict[str, int] = {}  # collection -> vector size, once looked up
        # Local mode is not thread-safe (one SQLite connection, in-memory indexes).
        self._lock: contextlib.AbstractContextManager = (
            contextlib.nullcontext() if url else threading.Lock())
        # Local mode only: (collection, repo) -> its points in numpy (shared/local_index.py).
        self._points: dict[tuple[str, str], RepoPoints] = {}
        self._points_lock = threading.Lock()
        self._client = self._connect(url, api_key, path, timeout, check_compatibility)

    def _connect(self, url: str, api_key: str, path: Path | str | None, timeout: int,
                 check_compatibility: bool) -> QdrantClient:
        if url:
            try:
                # The version check runs on a thread of its own and only warns.
                return QdrantClient(url=url, api_key=api_key or None, timeout=timeout,
                                    check_compatibility=check_compatibility)
            except ValueError as exc:
                raise VectorStoreError(f"Qdrant URL {url!r} is not usable: {exc}") from None
        folder = Path(path)  # type: ignore[arg-type]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return QdrantClient(path=str(folder), force_disable_check_same_thread=True)
        except RuntimeError as exc:  # the folder's lock is held
            raise VectorStoreError(
                f"the Qdrant local store {folder} is already open ({exc}); local mode allows "
                "one client at a time: close the other one, or set QDRANT_URL to share a server"
            ) from None
        except OSError as exc:
            raise VectorStoreError(f"cannot open the Qdrant local store {folder}: {exc}") from None

    def __repr__(self) -> str:
        return f"VectorStore({self._where!r})"

    def __enter__(self) -> "VectorStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def is_local(self) -> bool:
        return self._local

    # --- writing ---------------------------------------------------------------------------
    def write_structure(self, repo: str, commit: str, ingest: str, paths: Sequence[str],
                        vectors: Any, on_batch: OnBatch | None = None,
                        fence: int | None = None, graph_hash: str = "",
                        kept: bool = False) -> int:
        """Store one Node2Vec vector per file path; returns the number of points written.
        `fence`: the job's lease token (None: a new one, newer than any before).
        `graph_hash`: what the vectors were trained on (see `structure_state`); `kept`:
        the stored points already hold vectors of this very file graph, so only their
        commit, ingest and fence are updated (`vectors` is not read)."""
        matrix = _matrix(vectors, len(paths))
        if matrix.shape[1] != STRUCTURE_DIM:
            raise VectorStoreError(
                f"structural vectors must have {STRUCTURE_DIM} dimensions, got {matrix.shape[1]}")
        fence = fence_now() if fence is None else fence
        payloads = [{"repo_url": repo, "file_path": path, "embedding_type": "structural",
                     "model": "node2vec", "graph_hash": graph_hash, "commit": commit,
                     "ingest": ingest, "fence": fence}
                    for path in paths]
        ids = file_ids(repo, paths)
        if kept:
            self._keep(STRUCTURE_COLLECTION, ids, commit, ingest, fence)
            return len(ids) + self._upload(STRUCTURE_COLLECTION, repo, ingest, fence, [],
                                           matrix[:0], [], on_batch)
        return self._upload(STRUCTURE_COLLECTION, repo, ingest, fence, ids, matrix, payloads,
                            on_batch)

    def structure_state(self, repo: str) -> dict[int, str]:
        """The file graph each of `repo`'s structural points was trained on (its
        `graph_hash`), by point id."""
        return {point: payload.get("graph_hash") or ""
                for point, payload in self._payloads(STRUCTURE_COLLECTION, repo,
                                                     ["graph_hash"]).items()}

    def write_chunks(self, repo: str, commit: str, ingest: str, chunks: Sequence[ChunkLike],
                     vectors: Any, model: str, on_batch: OnBatch | None = None,
                     fence: int | None = None, runtime: str = "",
                     kept: Sequence[int] = ()) -> int:
        """Store one text vector per chunk in `model`'s collection; returns the points the
        repository has there now. `fence` as for write_structure; `runtime` names what
        made the vectors (engine and precision: "torch-fp32", "onnx-int8", …), stored
        with each. `kept`: indexes of chunks whose point is stored exactly as it would be
        written (same text, lines, kind, model and runtime: see `chunk_state`); their
        rows of `vectors` are not read and their points not rewritten."""
        matrix = _matrix(vectors, len(chunks))
        fence = fence_now() if fence is None else fence
        payloads = [{"repo_url": repo, "file_path": c.path, "qualified_name": c.qualname,
                     "kind": str(getattr(c.kind, "value", c.kind)),
                     "start_line": int(c.start_line), "end_line": int(c.end_line),
                     "commit": commit, "text": c.text, "text_hash": text_hash(c.text),
                     "model": model, "runtime": runtime, "embedding_type": "text",
                     "ingest": ingest, "fence": fence}
                    for c in chunks]
        ids = chunk_ids(repo, chunks)
        collection = chunk_collection(model)
        if kept:
            self._keep(collection, [ids[i] for i in kept], commit, ingest, fence)
            write = sorted(set(range(len(chunks))) - set(kept))
            ids, matrix = [ids[i] for i in write], matrix[write]
            payloads = [payloads[i] for i in write]
        return self._upload(collection, repo, ingest, fence, ids, matrix, payloads, on_batch,
                            kept=len(kept))

    def chunk_state(self, repo: str, model: str) -> dict[int, StoredChunk]:
        """What `repo`'s stored chunk points of `model` hold, by point id (without their
        vectors): a sync compares it with the chunks it made to write only what changed."""
        found = self._payloads(chunk_collection(model), repo, list(StoredChunk._fields))
        return {point: StoredChunk(*(payload.get(f) for f in StoredChunk._fields))
                for point, payload in found.items()}

    def _payloads(self, collection: str, repo: str, fields: list[str]) -> dict[int, dict]:
        """`fields` of every point of `repo` in `collection`, by point id."""
        if not self._exists(collection):
            return {}
        found: dict[int, dict] = {}
        offset = None
        while True:
            points, offset = self._call(
                f"read {collection}", self._client.scroll, collection_name=collection,
                scroll_filter=models.Filter(must=[_match("repo_url", repo)]), limit=1_000,
                offset=offset, with_vectors=False, with_payload=fields)
            for point in points:
                found[int(point.id)] = point.payload or {}
            if offset is None:
                return found

    def _keep(self, collection: str, ids: list[int], commit: str, ingest: str,
              fence: int) -> None:
        """Points stored as they are: only this upload's commit, ingest and fence become
        theirs, so the clean-up after it keeps them. A point a newer lease wrote is left."""
        self._call(f"keep points of {collection}", self._client.set_payload,
                   collection_name=collection,
                   payload={"commit": commit, "ingest": ingest, "fence": fence},
                   points=models.Filter(
                       must=[models.HasIdCondition(has_id=ids)],
                       must_not=[models.FieldCondition(key="fence",
                                                       range=models.Range(gt=fence))]),
                   wait=True)

    def _upload(self, collection: str, repo: str, ingest: str, fence: int, ids: list[int],
                matrix: np.ndarray, payloads: list[dict], on_batch: OnBatch | None,
                kept: int = 0) -> int:
        if not ingest:
            raise VectorStoreError("an upload needs an ingest id (it marks the job's points)")
        if not ids:  # nothing (left) to write: only the cleanup, if anything
            if self._exists(collection):
                self._write_points(collection, repo, fence, [], matrix, [], on_batch)
            return kept
        self._ensure_collection(collection, matrix.shape[1])
        try:
            return kept + self._write_points(collection, repo, fence, ids, matrix, payloads,
                                             on_batch)
        except VectorStoreError:
            self._sizes.pop(collection, None)  # the collection may be gone: look again next time
            raise

    def _write_points(self, collection: str, repo: str, fence: int, ids: list[int],
                      matrix: np.ndarray, payloads: list[dict], on_batch: OnBatch | None) -> int:
        total = len(ids)
        newer = models.FieldCondition(key="fence", range=models.Range(gt=fence))
        for start in range(0, total, self.batch_size):
            end = min(start + self.batch_size, total)
            batch = models.Batch(ids=ids[start:end], vectors=matrix[start:end].tolist(),
                                 payloads=payloads[start:end])
            # A point a newer lease wrote is left as it is (a late, fenced-out upload).
            self._call(f"upsert into {collection}", self._client.upsert,
                       collection_name=collection, points=batch, wait=True,
                       update_filter=models.Filter(must_not=[newer]))
            if on_batch is not None:
                on_batch(end, total)
        # Everything of this upload is stored: what older ingests wrote and this one did
        # not (deleted files, renamed symbols) goes; this fence's points and newer stay.
        mine_or_newer = models.FieldCondition(key="fence", range=models.Range(gte=fence))
        self._call(f"clean up {collection}", self._client.delete, collection_name=collection,
                   points_selector=models.FilterSelector(filter=models.Filter(
                       must=[_match("repo_url", repo)], must_not=[mine_or_newer])),
                   wait=True)
        self._forget(collection, repo)
        return total

    def _ensure_collection(self, collection: str, dim: int) -> None:
        """Create `collection` at `dim` if missing; refuse vectors of another size."""
        if collection not in self._sizes:
            if not self._exists(collection):
                try:
                    self._call(f"create {collection}", self._client.create_collection,
                               collection_name=collection,
                               vectors_config=models.VectorParams(
                                   size=dim, distance=models.Distance.COSINE))
                except VectorStoreError:
                    if not self._exists(collection):  # else another process created it first
                        raise
            if self._local:  # local mode scans in memory; it warns about payload indexes
                self._speed_up_local(collection)
            else:  # idempotent, so also made for a collection created without them
                for field, schema in INDEXED_FIELDS.items():
                    self._call(f"index {collection}.{field}", self._client.create_payload_index,
                               collection_name=collection, field_name=field,
                               field_schema=schema, wait=True)
        self._check_size(collection, dim)

    def _speed_up_local(self, collection: str) -> None:
        """Let local mode commit without an fsync per point.

        Local mode keeps each collection in SQLite and commits every point on its own;
        with SQLite's default rollback journal each commit syncs the disk, which caps
        an upload at ~100-700 points/s. A write-ahead log with synchronous=NORMAL
        syncs only at checkpoints (~5,000 chunk points/s measured here, 6-12x,
        bench/results/vectors.md); a power cut may lose the last commits, never consistency, and a
        re-ingest rewrites them. The connection is qdrant-client's private attribute:
        where a version moves it, uploads stay correct at the slower speed.
        """
        try:
            with self._lock:
                db = self._client._client.collections[collection].storage.storage
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
        except (AttributeError, KeyError, sqlite3.Error) as exc:
            log.debug("local Qdrant storage left as it is: %s", exc)

    def _check_size(self, collection: str, dim: int) -> None:
        if collection not in self._sizes:  # a collection's size never changes: read once
            self._sizes[collection] = self._size(collection)
        size = self._sizes[collection]
        if size != dim:
            raise VectorStoreError(
                f"collection {collection} holds {size}-d vectors, these have {dim}: the model's "
                f"output size changed; delete the collection to rebuild it at the new size")

    def _size(self, collection: str) -> int:
        info = self._call(f"read {collection}", self._client.get_collection,
                          collection_name=collection)
        params = info.config.params.vectors
        if not isinstance(params, models.VectorParams):
            raise VectorStoreError(f"collection {collection} is not a single-vector collection")
        return params.size

    def _exists(self, collection: str) -> bool:
        return self._call(f"look up {collection}", self._client.collection_exists,
                          collection_name=collection)

    # --- reading and removing --------------------------------------------------------------
    def count(self, repo: str, collection: str = STRUCTURE_COLLECTION) -> int:
        """Points of `repo` in `collection` (0 when the collection does not exist)."""
        if not self._exists(collection):
            return 0
        result = self._call(f"count {collection}", self._client.count,
                            collection_name=collection,
                            count_filter=models.Filter(must=[_match("repo_url", repo)]),
                            exact=True)
        return result.count

    def search(self, collection: str, vector: Any, repo: str | None = None,
               limit: int = 10, where: Where | None = None, payload: bool = True) -> list[Hit]:
        """The `limit` points nearest to `vector` (cosine), of `repo` only when given,
        and whose payload matches `where` (field -> a value, or a list of any);
        `payload=False` leaves hits' payloads empty (the caller has the node ids)."""
        if not self._exists(collection):
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        self._check_size(collection, query.shape[0])
        if self._local and repo:
            found = self._repo_points(collection, repo).nearest(query, limit, where)
            return self._hits(collection, found) if payload else [Hit(i, s, {}) for i, s in found]
        result = self._call(f"search {collection}", self._client.query_points,
                            collection_name=collection, query=query.tolist(),
                            query_filter=_filter(repo, where), limit=limit,
                            with_payload=payload)
        return [Hit(int(p.id), float(p.score), dict(p.payload or {})) for p in result.points]

    def similar(self, collection: str, point_id: int, repo: str | None = None,
                limit: int = 10, where: Where | None = None) -> list[Hit]:
        """The `limit` points nearest to a stored point (itself left out)."""
        if not self._exists(collection):
            return []
        if self._local and repo:
            points = self._repo_points(collection, repo)
            vector = points.vector_of(point_id)
            if vector is None:
                return []
            return self._hits(collection, points.nearest(vector, limit, where, point_id))
        result = self._call(f"search {collection}", self._client.query_points,
                            collection_name=collection, query=point_id,
                            query_filter=_filter(repo, where), limit=limit, with_payload=True)
        return [Hit(int(p.id), float(p.score), dict(p.payload or {})) for p in result.points]

    def vectors(self, collection: str, ids: Sequence[int],
                repo: str | None = None) -> dict[int, np.ndarray]:
        """The stored vectors of `ids` that exist (id -> float32 vector); given the
        repository they belong to, local mode reads them from its copy."""
        if not ids or not self._exists(collection):
            return {}
        if self._local and repo:
            points = self._repo_points(collection, repo)
            found = {i: points.vector_of(i) for i in ids}
            return {i: v for i, v in found.items() if v is not None}
        points = self._call(f"read {collection}", self._client.retrieve,
                            collection_name=collection, ids=list(ids), with_vectors=True,
                            with_payload=False)
        return {int(p.id): np.asarray(p.vector, dtype=np.float32) for p in points}

    def _repo_points(self, collection: str, repo: str) -> RepoPoints:
        """Local mode: the repository's points of `collection`, read on first use."""
        key = (collection, repo)
        with self._points_lock:
            points = self._points.get(key)
        if points is None:
            points = RepoPoints.read(
                lambda **page: self._call(f"read {collection}", self._client.scroll,
                                          collection_name=collection, **page),
                models.Filter(must=[_match("repo_url", repo)]))
            with self._points_lock:
                self._points[key] = points
        return points

    def _hits(self, collection: str, found: list[tuple[int, float]]) -> list[Hit]:
        """Hits with their whole payloads (read by id: no scan)."""
        if not found:
            return []
        points = self._call(f"read {collection}", self._client.retrieve,
                            collection_name=collection, ids=[i for i, _ in found],
                            with_payload=True, with_vectors=False)
        payloads = {int(p.id): dict(p.payload or {}) for p in points}
        return [Hit(i, score, payloads.get(i, {})) for i, score in found]

    def _forget(self, collection: str, repo: str | None = None) -> None:
        with self._points_lock:
            for key in [k for k in self._points if k[0] == collection
                        and (repo is None or k[1] == repo)]:
                del self._points[key]

    def collections(self) -> list[str]:
        """This store's collections (structure and every model's chunks) that exist."""
        names = self._call("list collections", self._client.get_collections).collections
        return sorted(c.name for c in names
                      if c.name == STRUCTURE_COLLECTION or c.name.startswith(CHUNK_COLLECTION))

    def delete_repo(self, repo: str) -> None:
        """Remove every point of `repo` from every collection of this store."""
        for collection in self.collections():
            self._call(f"delete from {collection}", self._client.delete,
                       collection_name=collection,
                       points_selector=models.FilterSelector(
                           filter=models.Filter(must=[_match("repo_url", repo)])),
                       wait=True)
            self._forget(collection, repo)

    def close(self) -> None:
        with self._lock:
            self._client.close()

    # --- calls -----------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """`fn(**kwargs)`, retried on transport errors, any failure as VectorStoreError."""
        try:
            for attempt in self._attempts(what):
                with attempt, self._lock:
                    return fn(**kwargs)
        except VectorStoreError:
            raise
        except UnexpectedResponse as exc:
            kind = VectorStoreUnavailable if _is_transient(exc) else VectorStoreError
            raise kind(f"Qdrant {self._where} could not {what}: HTTP {exc.status_code} "
                       f"{_reason(exc)}") from None
        except Exception as exc:  # qdrant-client raises many types; one error type here
            kind = VectorStoreUnavailable if _is_transient(exc) else VectorStoreError
            raise kind(f"Qdrant {self._where} could not {what}: {exc}") from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _attempts(self, what: str) -> Iterator[Any]:
        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            status = getattr(exc, "status_code", None)
            cause = f"HTTP {status}" if status else f"{type(exc).__name__}: {exc}"
            log.warning("Qdrant %s could not %s (%s); attempt %d of %d, retrying in %.1f s",
                        self._where, what, cause, state.attempt_number, self.retries + 1,
                        state.next_action.sleep if state.next_action else 0.0)

        return iter(Retrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential_jitter(multiplier=self.backoff, max=self.backoff * 16,
                                         jitter=self.backoff),
            before_sleep=log_retry,
            reraise=True,
        ))


def _matrix(vectors: Any, rows: int) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != rows:
        raise VectorStoreError(
            f"expected a matrix of {rows} vectors (one per item), got shape {matrix.shape}")
    if rows and matrix.shape[1] == 0:
        raise VectorStoreError("vectors have no dimensions")
    if not np.isfinite(matrix).all():
        raise VectorStoreError("vectors hold NaN or infinite values")
    return matrix


def text_hash(text: str) -> str:
    """What a chunk point records of its text, to tell an unchanged chunk by."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def file_ids(repo: str, paths: Sequence[str]) -> list[int]:
    """The point id of each file's structural vector, as write_structure gives them."""
    return _unique_ids(repo, [(path, "") for path in paths])


def chunk_ids(repo: str, chunks: Sequence[ChunkLike]) -> list[int]:
    """The point id of each chunk, as write_chunks gives them."""
    return _unique_ids(repo, [(c.path, c.qualname) for c in chunks])


def _unique_ids(repo: str, keys: list[tuple[str, str]]) -> list[int]:
    """Node ids of (path, name); a repeat of a key in this upload gets "#2", "#3", ..."""
    seen: dict[tuple[str, str], int] = {}
    ids = []
    for path, name in keys:
        n = seen[(path, name)] = seen.get((path, name), 0) + 1
        ids.append(node_id(repo, path, name if n == 1 else f"{name}#{n}"))
    return ids


def _match(field: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=field, match=models.MatchValue(value=value))


def _filter(repo: str | None, where: Where | None) -> models.Filter | None:
    must = [_match("repo_url", repo)] if repo else []
    for field, value in (where or {}).items():
        if isinstance(value, (list, tuple)):
            must.append(models.FieldCondition(key=field, match=models.MatchAny(any=list(value))))
        else:
            must.append(_match(field, value))
    return models.Filter(must=must) if must else None


def _reason(exc: UnexpectedResponse) -> str:
    try:
        status = exc.structured().get("status")
        if isinstance(status, dict) and status.get("error"):
            return str(status["error"])[:300]
    except Exception:  # a body that is not Qdrant's JSON: the reason phrase will do
        pass
    return exc.reason_phrase
