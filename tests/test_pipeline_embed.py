"""The worker pipeline's embedding stages on real git repositories: Node2Vec, MiniLM
and Qdrant local mode, in-process. Properties 6-9 at the pipeline level, the forced
out-of-memory drill as the status shows it, and re-ingest after files were deleted."""
from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from edge.embed.minilm import MiniLMEncoder
from edge.pipeline import IngestPipeline
from shared.jobs import Job, new_job_id
from shared.settings import Settings
from shared.vectors import CHUNK_COLLECTION, STRUCTURE_COLLECTION, VectorStore

FILES = {
    "pkg/__init__.py": "",
    "pkg/core.py": "from pkg import util\n\n\nclass Engine:\n    def run(self):\n"
                   "        return util.helper()\n",
    "pkg/util.py": "def helper():\n    \"\"\"Help.\"\"\"\n    return 1\n",
    "pkg/extra.py": "import pkg.util\n\n\ndef extra():\n    return pkg.util.helper()\n",
    "lonely.py": "X = 1\n",  # no imports either way: an isolated node still gets a vector
}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    return MiniLMEncoder(device="cpu")


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    _git(root, "init", "-q", "-b", "main")
    _commit(root, "one")
    return root


def _ingest(pipeline: IngestPipeline, repo: Path, reports: list | None = None):
    job = Job(id=new_job_id(), repo_url=repo.as_uri(), submitted_at=time.time(), ttl=3600)
    sink = reports if reports is not None else []
    return pipeline(job, lambda stage, progress: sink.append((stage, progress)))


def _settings(tmp_path: Path, **env: str) -> Settings:
    base = Settings.from_env({"DATA_DIR": str(tmp_path / "data"), "DEVICE": "cpu", **env})
    return replace(base, allow_local_repos=True)


def test_every_file_and_chunk_becomes_one_point_with_its_payload(tmp_path, repo, encoder):
    pipeline = IngestPipeline(_settings(tmp_path), encoder=encoder)
    reports: list = []
    try:
        result = _ingest(pipeline, repo, reports)
        vectors = pipeline.vectors
        url = repo.as_uri()
        structural = vectors.search(STRUCTURE_COLLECTION, [1.0] * 64, repo=url, limit=100)
        chunks = vectors.search(CHUNK_COLLECTION, [1.0] * 384, repo=url, limit=100)
    finally:
        pipeline.close()
    embedded = result.summary["embeddings"]
    # Property 6: N file nodes -> N structural vectors; property 9: the counts reach the record.
    assert sorted(h.payload["file_path"] for h in structural) == sorted(FILES)
    assert embedded["structural"] == len(FILES) and embedded["node2vec_device"] == "cpu"
    assert result.files_processed == len(FILES)
    assert result.embeddings_generated == len(FILES) + len(chunks) == len(FILES) + embedded["chunks"]
    # Property 8: every point carries file_path and repo_url.
    assert all(h.payload["repo_url"] == url and h.payload["file_path"] for h in structural + chunks)
    # What made the text vectors is on each and on the record.
    assert {h.payload["runtime"] for h in chunks} == {"torch-fp32"}
    assert embedded["text_runtime"] == "torch-fp32"
    names = {h.payload["qualified_name"] for h in chunks}
    assert {"Engine", "Engine.run", "helper", "extra"} <= names
    assert "lonely.py" in {h.payload["file_path"] for h in chunks}  # a file without symbols
    # The bar only moves forward and every embedding stage shows up in the status.
    stages = [stage for stage, _ in reports]
    assert {"node2vec", "text", "upload"} <= set(stages)
    progress = [p for _, p in reports]
    assert progress == sorted(progress) and progress[-1] == 100.0


def test_reingest_after_deleting_files_removes_their_points(tmp_path, repo, encoder):
    pipeline = IngestPipeline(_settings(tmp_path), encoder=encoder)
    url = repo.as_uri()
    try:
        first = _ingest(pipeline, repo)
        again = _ingest(pipeline, repo)  # same commit again: idempotent, nothing doubles
        assert again.embeddings_generated == first.embeddings_generated
        assert pipeline.vectors.count(url, STRUCTURE_COLLECTION) == len(FILES)
        (repo / "pkg" / "extra.py").unlink()
        _commit(repo, "two")
        second = _ingest(pipeline, repo)
        structural = pipeline.vectors.search(STRUCTURE_COLLECTION, [1.0] * 64, repo=url,
                                             limit=100)
        chunks = pipeline.vectors.search(CHUNK_COLLECTION, [1.0] * 384, repo=url, limit=100)
    finally:
        pipeline.close()
    assert second.embeddings_generated == first.embeddings_generated - 2  # file and `extra`
    assert "pkg/extra.py" not in {h.payload["file_path"] for h in structural + chunks}
    assert len(structural) == len(FILES) - 1
    assert {h.payload["commit"] for h in structural + chunks} == {second.summary["commit"]}


def test_forced_out_of_memory_falls_back_to_the_cpu_and_says_so(tmp_path, repo, encoder):
    pipeline = IngestPipeline(_settings(tmp_path, NODE2VEC_FORCE_OOM="true"), encoder=encoder)
    reports: list = []
    try:
        result = _ingest(pipeline, repo, reports)
    finally:
        pipeline.close()
    embedded = result.summary["embeddings"]
    assert embedded["node2vec_device"] == "cpu"
    assert "out of memory" in embedded["node2vec_fallback"]
    assert embedded["structural"] == len(FILES)
    # the status page shows it while training goes on
    assert any(stage.startswith("node2vec (on the CPU") for stage, _ in reports)


def test_vectors_survive_the_pipeline_and_reopen(tmp_path, repo, encoder):
    settings = _settings(tmp_path)
    pipeline = IngestPipeline(settings, encoder=encoder)
    try:
        result = _ingest(pipeline, repo)
    finally:
        pipeline.close()  # local mode holds a folder lock until closed
    with VectorStore(path=settings.data_dir / "qdrant") as reopened:
        total = (reopened.count(repo.as_uri(), STRUCTURE_COLLECTION)
                 + reopened.count(repo.as_uri(), CHUNK_COLLECTION))
    assert total == result.embeddings_generated


def test_openai_provider_and_a_qdrant_server_through_the_pipeline(tmp_path, repo):
    """EMBEDDINGS_PROVIDER=openai and QDRANT_URL: the same pipeline against local servers
    speaking both protocols, each failing once (429, 503) before it succeeds."""
    from tests.embedding_server import OpenAIEmbeddingServer, QdrantRestServer

    with OpenAIEmbeddingServer(api_key="sk-pipeline", dim=1536) as api, \
            QdrantRestServer() as qdrant:
        api.fail_next(429, retry_after="0")
        qdrant.fail_upserts(times=1, status=503)
        settings = _settings(tmp_path, EMBEDDINGS_PROVIDER="openai", OPENAI_API_KEY="sk-pipeline",
                             OPENAI_BASE_URL=f"{api.url}/v1", QDRANT_URL=qdrant.url)
        pipeline = IngestPipeline(settings)
        try:
            result = _ingest(pipeline, repo)
            collection = "code_chunk_embeddings_text-embedding-3-small"
            chunks = pipeline.vectors.count(repo.as_uri(), collection)
            structural = pipeline.vectors.count(repo.as_uri(), STRUCTURE_COLLECTION)
        finally:
            pipeline.close()
    embedded = result.summary["embeddings"]
    assert embedded["text_model"] == "text-embedding-3-small"
    assert chunks == embedded["chunks"] > 0 and structural == len(FILES)
    assert result.embeddings_generated == chunks + structural
    assert len(api.requests) >= 2  # the 429 was retried
