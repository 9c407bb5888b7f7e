"""The Qdrant vector sink, for real: qdrant-client's local mode on disk, and its REST
client against tests/embedding_server.QdrantRestServer.

Why an emulated server for the remote path: no Qdrant server binary exists for this
machine, and transport failures (503, refused connections) can only happen over HTTP.
The emulator runs every call on Qdrant's own in-memory engine, so the store under test
is unchanged, its real HTTP client does the talking, and the server decides what
fails. Local mode is the embedded default and is tested as such, on disk.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from edge.embed.chunks import Chunk
from shared.graph.model import node_id
from shared.settings import Settings
from shared.vectors import (
    CHUNK_COLLECTION,
    STRUCTURE_COLLECTION,
    VectorStore,
    VectorStoreError,
    chunk_collection,
    chunk_ids,
    open_vector_store,
    text_hash,
)
from tests.embedding_server import QdrantRestServer
from tests.servers import free_port

# qdrant-client checks the server's version on a thread of its own, which loses the race
# with servers that a test stops early or never starts.
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning")

REPO = "https://github.com/example/one"
OTHER = "https://github.com/example/two"




@pytest.fixture
def qdrant_server():
    server = QdrantRestServer()
    yield server
    server.stop()


@pytest.fixture(params=["local", "remote"])
def store(request, tmp_path):
    if request.param == "local":
        made = VectorStore(path=tmp_path / "qdrant", backoff=0.001)
    else:
        made = VectorStore(url=request.getfixturevalue("qdrant_server").url, backoff=0.001)
    yield made
    made.close()


@pytest.fixture
def remote(qdrant_server):
    made = VectorStore(url=qdrant_server.url, backoff=0.001)
    yield made
    made.close()


def vectors(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def files(n: int) -> list[str]:
    return [f"pkg/mod_{i}.py" for i in range(n)]


def chunks(n: int, path: str = "pkg/a.py") -> list[Chunk]:
    return [Chunk(path, f"f{i}", "function", 10 * i + 1, 10 * i + 5, f"def f{i}(): ...")
            for i in range(n)]


def all_points(store: VectorStore, collection: str, repo: str, dim: int) -> list:
    # A search with a limit above the count returns every point of the repo.
    return store.search(collection, np.ones(dim), repo=repo, limit=10_000)


# --- properties 6 and 8: one point per embedding, with its payload -------------------------
def test_every_structural_embedding_is_one_point_with_file_path_and_repo_url(store):
    paths = files(250)
    written = store.write_structure(REPO, "abc123", "job-1", paths, vectors(250))

    assert written == 250
    assert store.count(REPO, STRUCTURE_COLLECTION) == 250
    points = all_points(store, STRUCTURE_COLLECTION, REPO, 64)
    assert sorted(p.payload["file_path"] for p in points) == sorted(paths)
    for point in points:
        assert point.payload["repo_url"] == REPO
        assert point.payload["embedding_type"] == "structural"
        assert point.payload["model"] == "node2vec"
        assert point.payload["commit"] == "abc123"
        # Point ids are the graph's node ids: a hit leads to its file node.
        assert point.id == node_id(REPO, point.payload["file_path"], "")


def test_every_chunk_is_one_point_with_its_payload(store):
    items = chunks(130)
    written = store.write_chunks(REPO, "abc123", "job-1", items, vectors(130, 384),
                                 model="all-MiniLM-L6-v2", fence=41, runtime="onnx-int8")

    assert written == 130
    assert store.count(REPO, CHUNK_COLLECTION) == 130
    points = {p.payload["qualified_name"]: p for p in all_points(store, CHUNK_COLLECTION,
                                                                  REPO, 384)}
    for chunk in items:
        payload = points[chunk.qualname].payload
        assert payload == {
            "repo_url": REPO, "file_path": chunk.path, "qualified_name": chunk.qualname,
            "kind": "function", "start_line": chunk.start_line, "end_line": chunk.end_line,
            "commit": "abc123", "text": chunk.text, "text_hash": text_hash(chunk.text),
            "model": "all-MiniLM-L6-v2", "runtime": "onnx-int8", "embedding_type": "text",
            "ingest": "job-1", "fence": 41}


def test_a_sync_rewrites_only_changed_chunks_and_a_late_one_cannot_keep_over_a_newer(store):
    model = "all-MiniLM-L6-v2"
    items, first = chunks(4), vectors(4, 384, seed=1)
    store.write_chunks(REPO, "c1", "job-1", items, first, model=model, fence=10, runtime="r")
    state = store.chunk_state(REPO, model)
    ids = chunk_ids(REPO, items)
    assert state[ids[0]] == (text_hash(items[0].text), 1, 5, "function", "r")
    # the sync: chunks 0 and 1 unchanged, 2 changed, 3 gone
    changed = items[:2] + [Chunk("pkg/a.py", "f2", "function", 21, 25, "def f2(): return 2")]
    fresh = vectors(3, 384, seed=2)
    written = store.write_chunks(REPO, "c2", "job-2", changed, fresh, model=model, fence=20,
                                 runtime="r", kept=[0, 1])
    assert written == 3
    points = {int(p.id): p for p in all_points(store, CHUNK_COLLECTION, REPO, 384)}
    assert sorted(points) == sorted(ids[:3])
    assert {p.payload["commit"] for p in points.values()} == {"c2"}
    assert {p.payload["fence"] for p in points.values()} == {20}
    stored = store.vectors(CHUNK_COLLECTION, ids[:3], repo=REPO)
    for i in (0, 1):  # kept: the vectors they had
        assert np.allclose(stored[ids[i]], first[i] / np.linalg.norm(first[i]), atol=1e-5)
    assert np.allclose(stored[ids[2]], fresh[2] / np.linalg.norm(fresh[2]), atol=1e-5)
    # a late job of an older lease keeps nothing over what the newer one wrote
    store.write_chunks(REPO, "c0", "job-0", changed, fresh, model=model, fence=15,
                       runtime="r", kept=[0, 1, 2])
    assert {p.payload["commit"] for p in all_points(store, CHUNK_COLLECTION, REPO,
                                                     384)} == {"c2"}


keys = st.lists(st.tuples(st.sampled_from(["a.py", "b/c.ts", "d.js"]),
                          st.sampled_from(["", "A", "A.x", "f"])), max_size=30)


@hsettings(max_examples=100)
@given(items=keys)
def test_property_8_points_counted_against_embeddings(tmp_path_factory, items):
    # Names repeat within a file (a property's getter and setter): still one point each.
    repo = f"https://example.com/{len(items)}/{hash(tuple(items))}"
    store = _shared_local_store(tmp_path_factory)
    batch = [Chunk(path, name, "method", 1, 2, name) for path, name in items]
    written = store.write_chunks(repo, "sha", "i", batch, vectors(len(items), 8), model="m8")
    assert written == len(items)
    assert store.count(repo, chunk_collection("m8")) == len(items)


_STORES: dict[str, VectorStore] = {}


def _shared_local_store(factory) -> VectorStore:
    # One local store for all examples (opening one per example would dominate the run).
    if "s" not in _STORES:
        _STORES["s"] = VectorStore(path=factory.mktemp("hypothesis") / "qdrant")
    return _STORES["s"]


@pytest.fixture(scope="module", autouse=True)
def _close_shared_store():
    yield
    for made in _STORES.values():
        made.close()
    _STORES.clear()


# --- re-ingest -----------------------------------------------------------------------------
def test_reupload_overwrites_and_keeps_the_count(store):
    paths = files(120)
    store.write_structure(REPO, "c1", "job-1", paths, vectors(120, seed=1))
    store.write_structure(REPO, "c1", "job-1", paths, vectors(120, seed=1))  # retried upload
    assert store.count(REPO, STRUCTURE_COLLECTION) == 120

    fresh = vectors(120, seed=2)
    store.write_structure(REPO, "c2", "job-2", paths, fresh)  # re-ingest, new vectors
    assert store.count(REPO, STRUCTURE_COLLECTION) == 120
    hit = store.search(STRUCTURE_COLLECTION, fresh[7], repo=REPO, limit=1)[0]
    assert hit.payload["file_path"] == paths[7]
    assert hit.payload["commit"] == "c2"
    assert hit.score == pytest.approx(1.0, abs=1e-5)


def test_reingest_removes_points_of_deleted_files_and_renamed_symbols(store):
    store.write_structure(REPO, "c1", "job-1", files(5), vectors(5))
    store.write_chunks(REPO, "c1", "job-1", chunks(4), vectors(4, 384), "all-MiniLM-L6-v2")

    store.write_structure(REPO, "c2", "job-2", files(3), vectors(3))
    renamed = chunks(3) + [Chunk("pkg/a.py", "renamed", "function", 40, 45, "def renamed")]
    store.write_chunks(REPO, "c2", "job-2", renamed, vectors(4, 384), "all-MiniLM-L6-v2")

    assert {p.payload["file_path"] for p in all_points(store, STRUCTURE_COLLECTION, REPO, 64)
            } == set(files(3))
    assert {p.payload["qualified_name"] for p in all_points(store, CHUNK_COLLECTION, REPO, 384)
            } == {"f0", "f1", "f2", "renamed"}


def test_a_late_upload_under_an_older_fence_neither_replaces_nor_deletes_newer_points(store):
    """A worker that lost its lease (fence 5) uploads after the job's next run (fence 7)."""
    model = "all-MiniLM-L6-v2"
    newer = vectors(3, 384, seed=7)
    store.write_chunks(REPO, "c2", "job-1", chunks(3), newer, model, fence=7)
    late = [chunks(3)[0], Chunk("pkg/a.py", "gone_since", "function", 90, 95, "def gone()")]
    store.write_chunks(REPO, "c1", "job-1", late, vectors(2, 384, seed=5), model, fence=5)

    points = {p.payload["qualified_name"]: p.payload for p in
              all_points(store, CHUNK_COLLECTION, REPO, 384)}
    assert {name: (p["fence"], p["commit"]) for name, p in points.items()} == {
        "f0": (7, "c2"), "f1": (7, "c2"), "f2": (7, "c2"), "gone_since": (5, "c1")}
    hit = store.search(CHUNK_COLLECTION, newer[0], repo=REPO, limit=1, where={"commit": "c2"})
    assert hit[0].payload["qualified_name"] == "f0" and hit[0].score == pytest.approx(1, abs=1e-5)
    # what the stale upload added is out of the newer commit's searches, and the next
    # ingest removes it
    store.write_chunks(REPO, "c3", "job-2", chunks(2), vectors(2, 384), model, fence=9)
    assert {p.payload["qualified_name"] for p in
            all_points(store, CHUNK_COLLECTION, REPO, 384)} == {"f0", "f1"}


def test_cleanup_leaves_other_repositories_alone(store):
    store.write_structure(OTHER, "x", "job-a", files(7), vectors(7))
    store.write_structure(REPO, "c1", "job-b", files(5), vectors(5))
    store.write_structure(REPO, "c2", "job-c", files(2), vectors(2))  # cleans REPO only

    assert store.count(REPO, STRUCTURE_COLLECTION) == 2
    assert store.count(OTHER, STRUCTURE_COLLECTION) == 7


def test_an_empty_upload_empties_the_repository(store):
    store.write_structure(REPO, "c1", "job-1", files(3), vectors(3))
    assert store.write_structure(REPO, "c2", "job-2", [], np.zeros((0, 64))) == 0
    assert store.count(REPO, STRUCTURE_COLLECTION) == 0
    # No chunks and no collection yet: nothing to create (an empty matrix has no size).
    assert store.write_chunks(REPO, "c2", "job-2", [], np.zeros((0, 0)), "some-model") == 0
    assert chunk_collection("some-model") not in store.collections()


def test_delete_repo_clears_every_collection_of_that_repo_only(store):
    for repo in (REPO, OTHER):
        store.write_structure(repo, "c", "j", files(3), vectors(3))
        store.write_chunks(repo, "c", "j", chunks(2), vectors(2, 384), "all-MiniLM-L6-v2")
        store.write_chunks(repo, "c", "j", chunks(2), vectors(2, 16), "other/model")
    store.delete_repo(REPO)

    for collection in (STRUCTURE_COLLECTION, CHUNK_COLLECTION, chunk_collection("other/model")):
        assert store.count(REPO, collection) == 0
        assert store.count(OTHER, collection) > 0


# --- batches, progress, search -------------------------------------------------------------
def test_progress_is_reported_per_batch_of_100(store):
    seen: list[tuple[int, int]] = []
    store.write_structure(REPO, "c", "j", files(250), vectors(250),
                          on_batch=lambda done, total: seen.append((done, total)))
    assert seen == [(100, 250), (200, 250), (250, 250)]


def test_search_returns_the_nearest_first(store):
    base = vectors(50, seed=3)
    store.write_structure(REPO, "c", "j", files(50), base)
    store.write_structure(OTHER, "c", "j", files(50), vectors(50, seed=4))
    query = base[11] + 0.01 * vectors(1, seed=5)[0]

    hits = store.search(STRUCTURE_COLLECTION, query, repo=REPO, limit=3)
    assert [h.payload["file_path"] for h in hits][0] == files(50)[11]
    assert all(h.payload["repo_url"] == REPO for h in hits)
    assert hits[0].score > hits[1].score >= hits[2].score
    cosine = base @ query / np.linalg.norm(base, axis=1) / np.linalg.norm(query)
    assert hits[0].score == pytest.approx(float(cosine.max()), abs=1e-4)


def test_similar_finds_a_stored_points_neighbours_without_itself(store):
    base = vectors(40, seed=6)
    base[7] = base[3] + 0.01 * vectors(1, seed=7)[0]  # 3's nearest neighbour is 7
    store.write_structure(REPO, "c", "j", files(40), base)
    store.write_structure(OTHER, "c", "j", files(40), base)  # same vectors, other repo
    anchor = node_id(REPO, files(40)[3], "")

    hits = store.similar(STRUCTURE_COLLECTION, anchor, repo=REPO, limit=5)
    assert hits[0].payload["file_path"] == files(40)[7]
    assert anchor not in [h.id for h in hits]
    assert len(hits) == 5 and all(h.payload["repo_url"] == REPO for h in hits)
    assert store.similar(CHUNK_COLLECTION, anchor) == []


def test_search_filters_on_payload_values_and_lists(store):
    items = [Chunk(f"pkg/{name}.py", f"f{i}", kind, 1, 2, "x")
             for i, (name, kind) in enumerate([("a", "function"), ("a", "class"),
                                               ("b", "function"), ("c", "method")])]
    store.write_chunks(REPO, "c1", "i1", items, vectors(4, 384), "all-MiniLM-L6-v2")
    query = vectors(1, 384, seed=9)[0]

    def found(**where):
        return sorted((h.payload["file_path"], h.payload["kind"]) for h in store.search(
            CHUNK_COLLECTION, query, repo=REPO, limit=10, where=where))

    assert found(file_path=["pkg/a.py", "pkg/c.py"]) == [
        ("pkg/a.py", "class"), ("pkg/a.py", "function"), ("pkg/c.py", "method")]
    assert found(kind=["function"], commit="c1") == [("pkg/a.py", "function"),
                                                     ("pkg/b.py", "function")]
    assert found(commit="other") == [] and found(file_path=[]) == []


def test_a_search_sees_every_upload_and_deletion_before_it(store):
    """Local mode answers from a copy of the repository's points: writes must drop it."""
    matrix = vectors(3, 384)
    store.write_chunks(REPO, "c1", "i1", chunks(2), matrix[:2], "all-MiniLM-L6-v2")
    assert len(store.search(CHUNK_COLLECTION, matrix[2], repo=REPO, limit=10)) == 2
    store.write_chunks(REPO, "c2", "i2", chunks(3), matrix, "all-MiniLM-L6-v2")
    (best, *_) = store.search(CHUNK_COLLECTION, matrix[2], repo=REPO, limit=10)
    assert best.payload["qualified_name"] == "f2" and best.score == pytest.approx(1.0)
    assert {h.payload["commit"] for h in store.search(CHUNK_COLLECTION, matrix[0], repo=REPO,
                                                      limit=10)} == {"c2"}
    store.delete_repo(REPO)
    assert store.search(CHUNK_COLLECTION, matrix[2], repo=REPO, limit=10) == []


def test_stored_vectors_are_read_back_by_id(store):
    matrix = vectors(3, 384)
    store.write_chunks(REPO, "c1", "i1", chunks(3), matrix, "all-MiniLM-L6-v2")
    ids = [node_id(REPO, "pkg/a.py", f"f{i}") for i in range(3)]
    back = store.vectors(CHUNK_COLLECTION, [ids[2], ids[0], 12345])
    assert set(back) == {ids[0], ids[2]}
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)  # cosine stores normalised
    np.testing.assert_allclose(back[ids[2]], unit[2], atol=1e-6)
    assert store.vectors("no_such_collection", ids) == {} and store.vectors(
        CHUNK_COLLECTION, []) == {}


def test_search_and_count_of_a_missing_collection_are_empty(store):
    assert store.count(REPO, CHUNK_COLLECTION) == 0
    assert store.search(CHUNK_COLLECTION, np.ones(384)) == []


# --- collections and sizes -----------------------------------------------------------------
def test_chunk_collections_are_named_per_model():
    assert chunk_collection("all-MiniLM-L6-v2") == CHUNK_COLLECTION
    assert chunk_collection("sentence-transformers/all-MiniLM-L6-v2") == CHUNK_COLLECTION
    assert chunk_collection("text-embedding-3-small") == \
        "code_chunk_embeddings_text-embedding-3-small"
    assert chunk_collection("Org/Some Model:v2") == "code_chunk_embeddings_some-model-v2"


def test_a_collection_refuses_vectors_of_another_size(store):
    store.write_chunks(REPO, "c", "j", chunks(2), vectors(2, 384), "all-MiniLM-L6-v2")
    with pytest.raises(VectorStoreError, match=r"holds 384-d vectors, these have 1536"):
        store.write_chunks(REPO, "c", "j2", chunks(2), vectors(2, 1536), "all-MiniLM-L6-v2")
    with pytest.raises(VectorStoreError, match="384"):
        store.search(CHUNK_COLLECTION, np.ones(10))
    # Another model has its own collection at its own size.
    store.write_chunks(REPO, "c", "j", chunks(2), vectors(2, 1536), "text-embedding-3-small")
    assert store.count(REPO, chunk_collection("text-embedding-3-small")) == 2
    assert store.count(REPO, CHUNK_COLLECTION) == 2  # the refused upload removed nothing


@pytest.mark.parametrize("bad, message", [
    (np.zeros((3, 32)), "64 dimensions"),
    (np.zeros((2, 64)), "3 vectors"),
    (np.full((3, 64), np.nan), "NaN"),
])
def test_bad_structural_vectors_are_refused(store, bad, message):
    with pytest.raises(VectorStoreError, match=message):
        store.write_structure(REPO, "c", "j", files(3), bad)


def test_an_upload_needs_an_ingest_id(store):
    with pytest.raises(VectorStoreError, match="ingest"):
        store.write_structure(REPO, "c", "", files(1), vectors(1))


# --- local mode ----------------------------------------------------------------------------
def test_local_mode_is_one_client_at_a_time_and_persists(tmp_path):
    first = VectorStore(path=tmp_path / "q")
    first.write_structure(REPO, "c", "j", files(30), vectors(30))
    with pytest.raises(VectorStoreError, match="already open"):
        VectorStore(path=tmp_path / "q")
    first.close()

    reopened = VectorStore(path=tmp_path / "q")
    try:
        assert reopened.count(REPO, STRUCTURE_COLLECTION) == 30
    finally:
        reopened.close()


def test_open_vector_store_follows_the_settings(tmp_path, qdrant_server):
    local = open_vector_store(Settings(data_dir=tmp_path))
    try:
        assert local.is_local
        local.write_structure(REPO, "c", "j", files(2), vectors(2))
        assert (tmp_path / "qdrant" / "collection" / STRUCTURE_COLLECTION).is_dir()
    finally:
        local.close()

    served = open_vector_store(Settings(data_dir=tmp_path, qdrant_url=qdrant_server.url))
    try:
        assert not served.is_local
        served.write_structure(REPO, "c", "j", files(2), vectors(2))
        assert qdrant_server.calls["upsert"] == 1
        assert qdrant_server.indexes[STRUCTURE_COLLECTION] == {
            "repo_url": "keyword", "file_path": "keyword", "commit": "keyword",
            "kind": "keyword", "fence": "integer"}
    finally:
        served.close()


# --- a server that fails -------------------------------------------------------------------
def test_an_upsert_is_retried_after_a_503(remote, qdrant_server):
    qdrant_server.fail_upserts(times=2, status=503)
    assert remote.write_structure(REPO, "c", "j", files(150), vectors(150)) == 150
    assert qdrant_server.calls["upsert"] == 2 + 2  # two batches, two refusals
    assert remote.count(REPO, STRUCTURE_COLLECTION) == 150


def test_a_retried_upsert_whose_reply_was_lost_is_idempotent(remote, qdrant_server):
    qdrant_server.fail_upserts(times=3, status=502, apply=True)
    remote.write_structure(REPO, "c", "j", files(100), vectors(100))
    assert qdrant_server.calls["upsert"] == 4
    assert remote.count(REPO, STRUCTURE_COLLECTION) == 100


def test_a_failed_upload_loses_nothing(remote, qdrant_server):
    remote.write_structure(REPO, "c1", "job-1", files(300), vectors(300))
    # The new upload writes its first batch, then the server fails for good.
    qdrant_server.fail_upserts(times=4, status=503, after=1)
    with pytest.raises(VectorStoreError, match="HTTP 503"):
        remote.write_structure(REPO, "c2", "job-2", files(150), vectors(150, seed=9))
    assert qdrant_server.calls["upsert"] == 3 + 1 + 4  # 3 + 1 batches, 4 attempts
    # No cleanup ran: every point of the old upload is still there.
    assert remote.count(REPO, STRUCTURE_COLLECTION) == 300


def test_a_client_error_is_not_retried(remote, qdrant_server):
    qdrant_server.fail_upserts(times=1, status=400)
    with pytest.raises(VectorStoreError, match="HTTP 400"):
        remote.write_structure(REPO, "c", "j", files(3), vectors(3))
    assert qdrant_server.calls["upsert"] == 1


def test_an_unreachable_server_is_retried_then_reported():
    store = VectorStore(url=f"http://127.0.0.1:{free_port()}", retries=2, backoff=0.001,
                        timeout=2, check_compatibility=False)
    try:
        with pytest.raises(VectorStoreError, match="could not look up"):
            store.write_structure(REPO, "c", "j", files(1), vectors(1))
    finally:
        store.close()


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_the_api_key_stays_out_of_repr_and_errors():
    secret = "qdrant-secret-key-123"
    store = VectorStore(url=f"http://127.0.0.1:{free_port()}", api_key=secret, retries=0,
                        timeout=2, check_compatibility=False)
    try:
        assert secret not in repr(store)
        with pytest.raises(VectorStoreError) as caught:
            store.count(REPO, STRUCTURE_COLLECTION)
        assert secret not in str(caught.value)
    finally:
        store.close()
