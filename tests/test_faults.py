"""kill -9 of a real worker in the middle of a real job, a sample of stages and queue
backends (bench/faults/kill9.py runs every stage on every backend, many times): the job
ends exactly once, complete, on its second attempt; queries never answer from a snapshot
whose vectors are missing; no vector is stored twice. The rig: tests/faults.py."""
from __future__ import annotations

import contextlib
import threading
import time

import pytest
from starlette.testclient import TestClient

from cloud.app import create_app
from edge.embed.minilm import MiniLMEncoder
from edge.pipeline import IngestPipeline
from edge.worker import Worker
from shared.jobs import JobState
from shared.queue import Lease
from shared.queue.sqlite import SqliteQueue
from shared.settings import Settings
from shared.vectors import VectorStore
from tests.embedding_server import QdrantRestServer
from tests.faults import KillRig, make_repository
from tests.servers import PostgresServer

TOKEN = "faults-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


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


@pytest.mark.timeout(300)
# Qdrant's outage is longer: the query side's own retries wait out about 4 s of one.
@pytest.mark.parametrize("store, stage, seconds", [("postgres", "store", 4.0),
                                                  ("qdrant", "text", 8.0)])
def test_a_store_stopped_mid_job_the_job_retries_and_the_api_recovers(store, stage, seconds,
                                                                       encoder, tmp_path):
    """A store goes down as the job is about to write to it (PostgreSQL: the graph;
    Qdrant: the vectors) and comes back seconds later: the job is not failed but left to
    its lease, runs again and completes once; meanwhile the query API answers 503 for
    what needs that store and recovers without a restart."""
    postgres = PostgresServer()
    url = postgres.url_for(postgres.create_database())
    queue = SqliteQueue(tmp_path / "queue.sqlite3", lease=Lease(seconds=2, max_attempts=6))
    during: list[int] = []
    try:
        with QdrantRestServer() as qdrant:
            settings = Settings(data_dir=tmp_path / "data", database_url=url,
                                qdrant_url=qdrant.url, allow_local_repos=True,
                                admin_token=TOKEN)
            # few, quick retries: the outage outlasts them, as a real one would
            vectors = VectorStore(url=qdrant.url, retries=1, backoff=0.05)
            pipeline = IngestPipeline(settings, encoder=encoder, vectors=vectors)
            server = postgres if store == "postgres" else qdrant
            outage, started = contextlib.ExitStack(), []

            def pipeline_with_outage(job, report):
                def hooked(name: str, progress: float) -> None:
                    if name == stage and job.attempts == 1 and not started:
                        started.append(time.monotonic())
                        outage.enter_context(server.down())
                        threading.Timer(seconds, outage.close).start()
                    report(name, progress)
                return pipeline(job, hooked)

            repo = make_repository(tmp_path / "repo").as_uri()
            job = queue.enqueue(repo).job
            worker = Worker(queue, pipeline_with_outage, worker_id="w", heartbeat_seconds=0.2)
            ask = (("GET", "/api/v1/repos", None) if store == "postgres" else
                   ("POST", "/api/v1/search", {"query": "make things", "repo": repo,
                                               "mode": "semantic"}))
            app = create_app(settings, queue=queue)
            with TestClient(app) as client:
                if store == "qdrant":  # a first version to search while Qdrant is down
                    IngestPipeline(settings, encoder=encoder)(
                        queue.get_job(job.id), lambda *_: None)
                assert worker.run_once()  # attempt 1 meets the outage
                assert queue.get_job(job.id).state is JobState.RUNNING  # not failed
                during.append(client.request(ask[0], ask[1], headers=AUTH,
                                             json=ask[2]).status_code)
                deadline = time.monotonic() + 60
                while queue.get_job(job.id).state is not JobState.COMPLETE:
                    assert time.monotonic() < deadline, queue.get_job(job.id)
                    worker.run_once() or time.sleep(0.2)
                after = client.request(ask[0], ask[1], headers=AUTH, json=ask[2])
            pipeline.close()
    finally:
        queue.close()
        postgres.stop()
    assert during == [503]
    assert after.status_code == 200, after.text
    reopened = SqliteQueue(tmp_path / "queue.sqlite3")
    history = [r for r in reopened.history(10) if r["job_id"] == job.id]
    reopened.close()
    # complete, once, after the attempts that met the outage (each then waits a lease)
    assert [r["status"] for r in history] == ["complete"] and 2 <= history[0]["attempts"] <= 6
