"""kill -9 of a real worker in the middle of a real job, a sample of stages and queue
backends (bench/faults/kill9.py runs every stage on every backend, many times): the job
ends exactly once, complete, on its second attempt; queries never answer from a snapshot
whose vectors are missing; no vector is stored twice. The rig: tests/faults.py."""
from __future__ import annotations

import pytest

from edge.embed.minilm import MiniLMEncoder
from edge.pipeline import IngestPipeline
from tests.embedding_server import QdrantRestServer
from tests.faults import KillRig


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    return MiniLMEncoder(device="cpu")


# Before anything is written, after the unready snapshot is written, and mid-upload.
@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend, stage", [("sqlite", "parse"), ("redis", "node2vec"),
                                            ("upstash", "upload")])
def test_a_worker_killed_mid_stage_loses_nothing_and_duplicates_nothing(
        backend, stage, encoder, tmp_path, request):
    redis_url = request.getfixturevalue("redis_url") if backend != "sqlite" else ""
    upstash = request.getfixturevalue("upstash_server") if backend == "upstash" else None
    with QdrantRestServer() as qdrant:
        rig = KillRig(tmp_path, backend, qdrant_url=qdrant.url, redis_url=redis_url,
                      upstash=upstash)
        rig.pipeline = IngestPipeline(rig.settings, encoder=encoder)
        try:
            outcome = rig.kill_at(stage)
        finally:
            rig.pipeline.close()
            rig.close()
    assert outcome.killed, outcome.history
    assert [r["status"] for r in outcome.history] == ["complete"] and outcome.attempts == 2
    assert not outcome.unready_visible and outcome.ready_commit
    assert outcome.chunks_stored == outcome.chunks_expected > 0
    assert outcome.files_stored == outcome.files_expected > 0
    assert outcome.ok
