"""A sync (an ingest that reuses the last one's parse results and vectors) gives what a
full ingest of the same commit gives: the same graph facts, the same chunk points with
the same vectors. Real git repositories, MiniLM, Qdrant local mode, SQLite; the sync's
own account of what it reused is checked too.

The property test drives random sequences of edits, new files, renames and deletions
of generated Python packages, syncing after each commit, and compares the last sync
with a from-nothing ingest of the same commit in a separate data folder.
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings as hyp_settings, strategies as st

from edge.embed.minilm import MiniLMEncoder
from edge.parse.cache import FOLDER, ParseCache
from edge.pipeline import IngestPipeline
from shared.jobs import Job, new_job_id
from shared.settings import Settings
from shared.vectors import CHUNK_COLLECTION, STRUCTURE_COLLECTION

NAMES = ("alpha", "beta", "gamma", "delta", "omega")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _commit(repo: Path) -> None:
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c",
         "--allow-empty")


def _module(name: str, version: int, imports: list[str]) -> str:
    lines = [f"from pkg import {other}" for other in imports]
    lines += ["", "", f"class {name.title()}Store:",
              f'    """Keeps {name} records, revision {version}."""',
              "    def save(self, item):",
              f"        return {version} + len(str(item))", "",
              f"def make_{name}():",
              f"    return {name.title()}Store().save({version})"]
    for other in imports:
        lines += ["", f"def use_{other}_{version}():", f"    return {other}.make_{other}()"]
    return "\n".join(lines) + "\n"


def _settings(data: Path) -> Settings:
    base = Settings.from_env({"DATA_DIR": str(data), "DEVICE": "cpu", "NODE2VEC_EPOCHS": "2"})
    return replace(base, allow_local_repos=True)


def _ingest(pipeline: IngestPipeline, repo: Path):
    job = Job(id=new_job_id(), repo_url=repo.as_uri(), submitted_at=time.time(), ttl=3600)
    return pipeline(job, lambda stage, progress: None)


def _facts(pipeline: IngestPipeline, url: str):
    store = pipeline.store
    graph = store.load_graph(store.latest_snapshot(url, ready_only=True))
    nodes = sorted((n.id, n.kind.value, n.path, n.qualname, n.start_line, n.end_line)
                   for n in graph.nodes)
    edges = sorted((e.src, e.dst, e.kind.value, e.line, e.weight, e.type_only, e.candidates)
                   for e in graph.edges)
    return graph.commit, nodes, edges, store.source_hashes(store.latest_snapshot(url))


def _points(pipeline: IngestPipeline, url: str, collection: str, dim: int):
    """id -> (payload without the job's own marks, vector) of every point of the repo."""
    store = pipeline.vectors
    hits = store.search(collection, [1.0] * dim, repo=url, limit=10_000)
    vectors = store.vectors(collection, [h.id for h in hits], repo=url)
    drop = ("ingest", "fence")
    return {h.id: ({k: v for k, v in h.payload.items() if k not in drop}, vectors[h.id])
            for h in hits}


def _same_index(synced: IngestPipeline, full: IngestPipeline, url: str) -> None:
    assert _facts(synced, url) == _facts(full, url)
    for collection, dim in ((CHUNK_COLLECTION, 384), (STRUCTURE_COLLECTION, 64)):
        a, b = _points(synced, url, collection, dim), _points(full, url, collection, dim)
        assert sorted(a) == sorted(b), collection
        for point, (payload, vector) in a.items():
            assert payload == b[point][0], (collection, payload["file_path"])
            if collection == CHUNK_COLLECTION:  # Node2Vec's are trained anew each time
                # Batches pad differently: the same text gives the same vector to ~1e-6.
                assert np.allclose(vector, b[point][1], atol=1e-4)


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    return MiniLMEncoder(device="cpu")


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    for i, name in enumerate(NAMES[:4]):
        (root / "pkg" / f"{name}.py").write_text(_module(name, 1, list(NAMES[:i])))
    _git(root, "init", "-q", "-b", "main")
    _commit(root)
    return root


def test_a_one_file_change_parses_and_embeds_only_that_file(tmp_path, repo, encoder):
    synced = IngestPipeline(_settings(tmp_path / "a"), encoder=encoder)
    full = IngestPipeline(_settings(tmp_path / "b"), encoder=encoder)
    try:
        first = _ingest(synced, repo).summary["sync"]
        assert first["mode"] == "full" and "no parse results" in first["reason"]
        (repo / "pkg" / "gamma.py").write_text(_module("gamma", 2, ["alpha", "beta"]))
        _commit(repo)
        sync = _ingest(synced, repo).summary["sync"]
        _ingest(full, repo)
        _same_index(synced, full, repo.as_uri())
    finally:
        synced.close()
        full.close()
    assert sync["mode"] == "incremental" and sync["reason"] == ""
    assert (sync["files_parsed"], sync["files_reused"]) == (1, 4)
    # gamma's class, its method, make_gamma, use_alpha_2, use_beta_2 (all new text)
    assert sync["chunks_embedded"] == 5
    # alpha's 3, beta's 4, delta's 6 (pkg/__init__.py is empty: no chunk)
    assert sync["chunks_kept"] == 13
    assert sync["chunks_moved"] == 0
    assert sync["structure_kept"]  # gamma imports what it did: the file graph is the same


def test_lines_moved_reuse_the_vector_and_force_rebuilds(tmp_path, repo, encoder):
    pipeline = IngestPipeline(_settings(tmp_path / "a"), encoder=encoder)
    try:
        _ingest(pipeline, repo)
        beta = repo / "pkg" / "beta.py"
        beta.write_text("# a comment moves every line down\n" + beta.read_text())
        _commit(repo)
        moved = _ingest(pipeline, repo).summary["sync"]
        pipeline.store.request_sync(repo.as_uri(), force=True)  # POST /repos/{id}/sync
        forced = _ingest(pipeline, repo).summary["sync"]
        again = _ingest(pipeline, repo).summary["sync"]
        record = pipeline.store.repo_record(repo.as_uri())
    finally:
        pipeline.close()
    # beta's class, its method and make_beta, use_alpha_1: same text, other lines
    assert (moved["chunks_embedded"], moved["chunks_moved"]) == (0, 4)
    assert forced["mode"] == "full" and forced["reason"] == "a full rebuild was asked for"
    assert forced["files_reused"] == 0 and forced["chunks_kept"] == 0
    assert again["mode"] == "incremental"  # the request is taken once
    assert moved["structure_kept"] and not forced["structure_kept"]
    # the registry follows the jobs
    assert record.state.value == "ready" and record.default_branch == "main"
    assert record.indexed().commit == record.indexed("main").commit != ""
    assert record.size["files"] == 5 and record.size["chunks"] == 18


def test_a_cache_of_another_parser_version_is_not_used(tmp_path, repo, encoder):
    data = tmp_path / "a"
    pipeline = IngestPipeline(_settings(data), encoder=encoder)
    try:
        _ingest(pipeline, repo)
        cache_file = next((data / FOLDER).glob("*.pickle"))
        cache = ParseCache.open(data, repo.as_uri())
        assert len(cache.entries) == 5
        import pickle
        stored = pickle.loads(cache_file.read_bytes())
        cache_file.write_bytes(pickle.dumps({**stored, "version": "older"}))
        _commit(repo)
        sync = _ingest(pipeline, repo).summary["sync"]
    finally:
        pipeline.close()
    assert sync["files_reused"] == 0 and sync["reason"] == "the parser changed since the last ingest"
    assert sync["chunks_kept"] == 18  # every chunk: its vector is reused (same model, runtime)


EDIT = st.one_of(
    st.tuples(st.just("edit"), st.sampled_from(NAMES), st.integers(2, 9)),
    st.tuples(st.just("rename"), st.sampled_from(NAMES), st.sampled_from(NAMES)),
    st.tuples(st.just("delete"), st.sampled_from(NAMES), st.just(0)),
    st.tuples(st.just("shift"), st.sampled_from(NAMES), st.just(0)),
)


def _apply(repo: Path, edit: tuple) -> None:
    kind, name, arg = edit
    path = repo / "pkg" / f"{name}.py"
    present = sorted(p.stem for p in (repo / "pkg").glob("*.py") if p.stem != "__init__")
    if kind == "edit":
        path.write_text(_module(name, arg, [n for n in present if n < name][:2]))
    elif kind == "rename" and path.exists() and name != arg:
        # a plain move (the file may be new in this commit: git mv refuses those);
        # `git add -A` at the commit records it as the rename it is
        path.replace(repo / "pkg" / f"{arg}.py")
    elif kind == "delete" and path.exists():
        path.unlink()
    elif kind == "shift" and path.exists():
        path.write_text("\n" + path.read_text())


@hyp_settings(max_examples=5, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
@given(commits=st.lists(st.lists(EDIT, min_size=1, max_size=3), min_size=1, max_size=3))
@example(commits=[[("edit", "omega", 2), ("rename", "omega", "alpha")], [("delete", "beta", 0)]])
def test_any_sequence_of_syncs_equals_a_full_ingest(tmp_path_factory, encoder, commits):
    base = tmp_path_factory.mktemp("seq")
    repo = base / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text("")
    for name in NAMES[:3]:
        (repo / "pkg" / f"{name}.py").write_text(_module(name, 1, []))
    _git(repo, "init", "-q", "-b", "main")
    _commit(repo)
    synced = IngestPipeline(_settings(base / "a"), encoder=encoder)
    full = IngestPipeline(_settings(base / "b"), encoder=encoder)
    try:
        _ingest(synced, repo)
        for edits in commits:
            for edit in edits:
                _apply(repo, edit)
            _commit(repo)
            _ingest(synced, repo)
        _ingest(full, repo)
        _same_index(synced, full, repo.as_uri())
    finally:
        synced.close()
        full.close()


def test_a_failed_job_leaves_the_reason_on_the_record(tmp_path, encoder):
    pipeline = IngestPipeline(_settings(tmp_path / "a"), encoder=encoder)
    missing = tmp_path / "gone"
    try:
        with pytest.raises(Exception, match="clone of"):
            _ingest(pipeline, missing)
        record = pipeline.store.repo_record(missing.as_uri())
    finally:
        pipeline.close()
    assert record.state.value == "failed" and "FetchError: clone of" in record.reason


def test_a_branch_is_indexed_beside_the_default_one(tmp_path, repo, encoder):
    """A tracked branch other than the default one has its own index (URL#branch): its
    own snapshots and vectors; queries reach it with `ref`, and answer which it was."""
    from cloud.query import QueryService
    from shared.query_encoder import QueryEncoder, default_model_dir

    url = repo.as_uri()
    _git(repo, "checkout", "-q", "-b", "dev")
    (repo / "pkg" / "omega.py").write_text(_module("omega", 1, ["alpha"]))
    _commit(repo)
    _git(repo, "checkout", "-q", "main")
    pipeline = IngestPipeline(_settings(tmp_path / "a"), encoder=encoder)
    service = QueryService(lambda: pipeline.store, lambda: pipeline.vectors,
                           lambda: QueryEncoder(default_model_dir()), allow_local=True)
    try:
        _ingest(pipeline, repo)
        dev = Job(id=new_job_id(), repo_url=url + "#dev", submitted_at=time.time(), ttl=60)
        pipeline(dev, lambda stage, progress: None)
        record = pipeline.store.repo_record(url)
        head = lambda ref: subprocess.run(["git", "rev-parse", ref], cwd=repo, check=True,
                                          capture_output=True, text=True).stdout.strip()
        assert pipeline.store.latest_snapshot(url).commit == head("main")
        assert pipeline.store.latest_snapshot(url + "#dev").commit == head("dev")
        assert record.default_branch == "main" and record.state.value == "ready"
        assert record.indexed("dev").commit == head("dev") and record.size["files"] == 5
        assert pipeline.vectors.count(url + "#dev") == pipeline.vectors.count(url) + 1
        ask = lambda **extra: service.search({"query": "make_omega", "repo": url,
                                              "mode": "keyword", **extra})
        on_main, on_dev = ask(), ask(ref="dev")
        assert not any("omega" in hit["path"] for hit in on_main["results"])
        assert on_dev["results"][0]["path"] == "pkg/omega.py"
        assert on_dev["index"][0]["ref"] == "dev" and on_dev["index"][0]["commit"] == head("dev")
        assert ask(ref="main")["index"] == on_main["index"]  # the default branch by name
        with pytest.raises(Exception, match="branch nope of .* is not indexed"):
            ask(ref="nope")
        assert [r.url for r in pipeline.store.repo_records()] == [url]
    finally:
        service.close()
        pipeline.close()


class _BrokenEncoder:
    """A text model's name and width, but every batch fails: a job that dies mid-way."""

    def __init__(self, model: str, dim: int):
        self.model, self.dim = model, dim

    def encode(self, texts):
        raise RuntimeError("the text model crashed")


def test_a_forced_rebuild_is_not_lost_when_its_job_fails(tmp_path, repo, encoder):
    data = tmp_path / "a"
    pipeline = IngestPipeline(_settings(data), encoder=encoder)
    try:
        _ingest(pipeline, repo)
        pipeline.store.request_sync(repo.as_uri(), force=True)
    finally:
        pipeline.close()
    broken = IngestPipeline(_settings(data), encoder=_BrokenEncoder(encoder.model, encoder.dim))
    try:
        with pytest.raises(RuntimeError, match="crashed"):
            _ingest(broken, repo)
        assert broken.store.repo_record(repo.as_uri()).force_next  # asked for again
    finally:
        broken.close()
    pipeline = IngestPipeline(_settings(data), encoder=encoder)
    try:
        rebuilt = _ingest(pipeline, repo).summary["sync"]
        assert pipeline.store.forced(repo.as_uri()) == 0  # done: the next sync reuses
    finally:
        pipeline.close()
    assert rebuilt["mode"] == "full" and rebuilt["reason"] == "a full rebuild was asked for"


def test_a_sync_past_the_head_a_push_told_of_is_not_stale(tmp_path, repo, encoder):
    """A push recorded head B; a manual sync later fetched C, past it: the index is at
    the remote's head, not behind it."""
    url = repo.as_uri()
    pipeline = IngestPipeline(_settings(tmp_path / "a"), encoder=encoder)
    try:
        _ingest(pipeline, repo)
        branch = pipeline.store.repo_record(url).default_branch
        (repo / "pkg" / "later.py").write_text("def later():\n    return 1\n")
        _commit(repo)
        pushed = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                                text=True, check=True).stdout.strip()
        pipeline.store.request_sync(url, branch=branch, remote_commit=pushed)
        assert pipeline.store.repo_record(url).stale
        (repo / "pkg" / "later.py").write_text("def later():\n    return 2\n")
        _commit(repo)
        _ingest(pipeline, repo)
        record = pipeline.store.repo_record(url)
        assert not record.stale and record.indexed().remote_commit == record.indexed().commit
    finally:
        pipeline.close()


def test_a_repository_deleted_while_its_job_runs_stays_deleted(tmp_path, repo, encoder):
    """DELETE /api/v1/repos/{id} (as cloud/repos.py does it) while the job embeds: the
    job's later writes are fenced out and what it uploaded meanwhile goes too."""
    from edge.worker import Dropped
    from shared.graph.store import FencedOut
    from shared.jobs import fence_now

    url = repo.as_uri()
    pipeline = IngestPipeline(_settings(tmp_path / "a"), encoder=encoder)
    pipeline.store.register(url)

    def report(stage: str, progress: float) -> None:
        store = pipeline.store
        if stage.startswith("text") and store.repo_record(url) is not None:
            for key in store.index_keys(url):
                pipeline.vectors.delete_repo(key)
            store.delete_repository(url, fence=fence_now())  # the queue's issue_fence
    job = Job(id=new_job_id(), repo_url=url, submitted_at=time.time(), ttl=60,
              fence=fence_now())
    try:
        with pytest.raises(Dropped) as raised:  # the worker ends the job skipped
            pipeline(job, report)
        assert isinstance(raised.value.__cause__, FencedOut)
        assert pipeline.store.repo_record(url) is None and pipeline.store.snapshots(url) == []
        assert len(pipeline.vectors.collections()) == 2  # it did upload, then lost them
        for collection in pipeline.vectors.collections():
            assert pipeline.vectors.count(url, collection) == 0, collection
    finally:
        pipeline.close()


def test_each_owning_account_is_charged_the_chunks_its_ingest_embedded(tmp_path, repo,
                                                                      encoder):
    charged: list[tuple[int, int]] = []
    pipeline = IngestPipeline(_settings(tmp_path / "a"), encoder=encoder,
                              meter=lambda account, chunks: charged.append((account, chunks)))
    try:
        store = pipeline.store
        one, two = (store.create_account(n, f"{n}@y.example").id for n in ("one", "two"))
        for account in (one, two):
            store.grant_repo(repo.as_uri(), account)
        first = _ingest(pipeline, repo).summary["sync"]["chunks_embedded"]
        (repo / "pkg" / "gamma.py").write_text(_module("gamma", 2, ["alpha", "beta"]))
        _commit(repo)
        _ingest(pipeline, repo)
        _ingest(pipeline, repo)  # nothing changed: nothing embedded, nothing charged
    finally:
        pipeline.close()
    assert first == 18 and charged == [(one, 18), (two, 18), (one, 5), (two, 5)]


def test_each_snapshot_is_mirrored_to_neo4j_and_forgotten_with_its_index(tmp_path, repo,
                                                                         encoder):
    """NEO4J_URI's mirror (shared/graph/mirror.py), here on a real FalkorDB: every job
    writes its snapshot there too, ready with the SQL one; a removed index leaves it."""
    from shared.graph.cypher_falkordb import FalkorDBServer, FalkorDBSession
    from shared.graph.cypher_store import CypherGraphStore
    from shared.graph.mirror import forget

    server = FalkorDBServer()
    mirror = CypherGraphStore(FalkorDBSession(server.client(), "sync"))
    pipeline = IngestPipeline(_settings(tmp_path / "a"), encoder=encoder, mirror=mirror)
    url = repo.as_uri()
    try:
        _ingest(pipeline, repo)
        (repo / "pkg" / "gamma.py").write_text(_module("gamma", 2, ["alpha", "beta"]))
        _commit(repo)
        _ingest(pipeline, repo)
        sql = pipeline.store.latest_snapshot(url)
        mirrored = mirror.snapshots(url)
        assert [s.commit for s in mirrored] == [s.commit for s in pipeline.store.snapshots(url)]
        assert all(s.ready for s in mirrored)
        ours, theirs = pipeline.store.load_graph(sql), mirror.load_graph(mirrored[0])
        assert sorted(n.id for n in theirs.nodes) == sorted(n.id for n in ours.nodes)
        assert sorted((e.src, e.dst, e.kind) for e in theirs.edges) == sorted(
            (e.src, e.dst, e.kind) for e in ours.edges)
        forget(mirror, pipeline.store.index_keys(url))
        assert mirror.snapshots(url) == []
    finally:
        pipeline.close()
        server.stop()


def test_a_failed_branch_job_leaves_its_reason_on_the_branch_only(tmp_path, repo, encoder):
    pipeline = IngestPipeline(_settings(tmp_path / "a"), encoder=encoder)
    url = repo.as_uri()
    try:
        _ingest(pipeline, repo)
        gone = Job(id=new_job_id(), repo_url=url + "#no-such-branch", submitted_at=time.time(),
                   ttl=60)
        with pytest.raises(Exception, match="clone of"):
            pipeline(gone, lambda stage, progress: None)
        record = pipeline.store.repo_record(url)
    finally:
        pipeline.close()
    assert record.state.value == "ready" and record.reason == ""
    assert "FetchError" in record.branch_states["no-such-branch"].reason
