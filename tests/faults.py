"""The kill -9 rig, shared by tests/test_faults.py (a sample) and bench/faults/ (every stage,
many times): a real worker process running the real pipeline on a small generated
repository is killed with SIGKILL the moment it enters a stage; after its lease runs out
the job runs again, and the rig checks what the system promises:

- the job ends exactly once in the history, complete, on its second attempt;
- no snapshot that was not ready was ever the one queries answer from, and the one they
  answer from now is complete (its chunk and file counts match the vectors stored);
- no duplicate vectors: each collection holds exactly one point per file and per chunk.

The killed process is `python -m tests.fault_worker` (the product's worker with the stage
hook); the retry runs in this process. Stores: the graph in a SQLite file both processes
open, the vectors in the Qdrant REST stand-in (tests/embedding_server.py: Qdrant's engine
behind its HTTP API), since Qdrant's local mode locks its folder to one process.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from edge.pipeline import STAGES, IngestPipeline
from edge.worker import Worker
from shared.graph.store import open_graph_store
from shared.jobs import JobState
from shared.queue import JobQueue, open_queue
from shared.settings import Settings
from shared.vectors import CHUNK_COLLECTION, STRUCTURE_COLLECTION, open_vector_store

ROOT = Path(__file__).resolve().parent.parent
KILL_STAGES = tuple(STAGES)  # fetch, parse, resolve, graph, store, node2vec, text, upload
LEASE_SECONDS = 2
_STORE_VARIABLES = ("REDIS_URL", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN",
                    "DATABASE_URL", "QDRANT_URL", "QDRANT_API_KEY", "MODE", "DATA_DIR")


def make_repository(path: Path, files: int = 6) -> Path:
    """A small Python package with imports, classes and functions, committed."""
    package = path / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for i in range(files):
        imports = f"from pkg import mod{i - 1}\n\n\n" if i else ""
        body = (f'class Thing{i}:\n    """Thing number {i}."""\n\n'
                f"    def size(self):\n        return {i}\n\n\n"
                f"def make_{i}(n):\n    return [Thing{i}() for _ in range(n)]\n")
        (package / f"mod{i}.py").write_text(imports + body)
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "first"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)
    return path


@dataclass
class Outcome:
    stage: str
    backend: str
    killed: bool  # the worker died by SIGKILL in the stage
    history: list[dict]  # the job's records
    attempts: int
    ready_commit: str | None
    chunks_stored: int
    chunks_expected: int
    files_stored: int
    files_expected: int
    unready_visible: bool  # a query target was ever a snapshot not yet ready

    @property
    def ok(self) -> bool:
        return (self.killed and len(self.history) == 1 and
                self.history[0]["status"] == JobState.COMPLETE.value and self.attempts == 2 and
                self.ready_commit is not None and not self.unready_visible and
                self.chunks_stored == self.chunks_expected and
                self.files_stored == self.files_expected)


class KillRig:
    """One repository, one queue backend, stores in `workdir`; `kill_at(stage)` per run."""

    def __init__(self, workdir: Path, backend: str, *, qdrant_url: str, redis_url: str = "",
                 upstash=None, pipeline: IngestPipeline | None = None):
        """`redis_url` / `upstash` (a REST stand-in) name an empty server for the "redis"
        and "upstash" backends: the queue uses the product's keys, as a deployment does."""
        self.workdir, self.backend = workdir, backend
        self.repo_url = make_repository(workdir / "repo").as_uri()
        queue = {"redis": dict(redis_url=redis_url),
                 "upstash": dict(upstash_url=getattr(upstash, "url", ""),
                                 upstash_token=getattr(upstash, "token", ""))}.get(backend, {})
        self.settings = Settings(data_dir=workdir / "data", qdrant_url=qdrant_url,
                                 allow_local_repos=True, lease_seconds=LEASE_SECONDS,
                                 heartbeat_seconds=0.5, **queue)
        assert self.settings.queue_backend == backend
        self.queue: JobQueue = open_queue(self.settings)
        self.pipeline = pipeline or IngestPipeline(self.settings)
        self._env = {k: v for k, v in os.environ.items() if k not in _STORE_VARIABLES}
        self._env.update(
            MODE="EDGE", DATA_DIR=str(self.settings.data_dir), QDRANT_URL=qdrant_url,
            ALLOW_LOCAL_REPOS="true", LEASE_SECONDS=str(LEASE_SECONDS), HEARTBEAT_SECONDS="0.5",
            WORKER_ID="doomed", DEVICE="cpu", PYTHONPATH=str(ROOT),
            REDIS_URL=self.settings.redis_url, UPSTASH_REDIS_REST_URL=self.settings.upstash_url,
            UPSTASH_REDIS_REST_TOKEN=self.settings.upstash_token)

    def kill_at(self, stage: str, timeout: float = 120) -> Outcome:
        job = self.queue.enqueue(self.repo_url).job
        doomed = subprocess.Popen([sys.executable, "-m", "tests.fault_worker"], cwd=ROOT,
                                  env={**self._env, "KILL_AT": stage},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, err = doomed.communicate(timeout=timeout)  # reads stderr: no full pipe
        except subprocess.TimeoutExpired:
            doomed.kill()
            _, err = doomed.communicate()
        code, stderr = doomed.returncode, err.decode(errors="replace")
        killed = code == -signal.SIGKILL
        store = open_graph_store(self.settings)
        try:
            # While the job waits for its lease to expire, queries see only ready snapshots.
            unready_visible = _answers_from_unready(store, self.repo_url)
            time.sleep(LEASE_SECONDS + 0.2)
            retry = Worker(self.queue, self.pipeline, worker_id="retry", heartbeat_seconds=0.2)
            deadline = time.monotonic() + timeout
            while self.queue.get_job(job.id).state is not JobState.COMPLETE:
                if time.monotonic() > deadline or self.queue.get_job(job.id).state in (
                        JobState.FAILED, JobState.DEAD):
                    break
                retry.run_once()
            stored = self.queue.get_job(job.id)
            history = [r for r in self.queue.history(100) if r["job_id"] == job.id]
            ready = store.latest_snapshot(self.repo_url, ready_only=True)
            stats = ready.stats if ready else {}
        finally:
            store.close()
        vectors = open_vector_store(self.settings)
        try:
            chunks = vectors.count(self.repo_url, CHUNK_COLLECTION)
            files = vectors.count(self.repo_url, STRUCTURE_COLLECTION)
        finally:
            vectors.close()
        if not killed:
            history = history + [{"status": f"worker exit {code}: {stderr[-500:]}"}]
        return Outcome(stage, self.backend, killed, history, stored.attempts,
                       ready.commit if ready else None, chunks,
                       stats.get("text", {}).get("documents", -1), files,
                       stats.get("nodes", {}).get("file", -1), unready_visible)

    def close(self) -> None:
        self.queue.close()


def _answers_from_unready(store, repo: str) -> bool:
    """What the query side would answer from: never a snapshot whose vectors are missing."""
    from cloud.query.resolve import resolve
    from cloud.query.errors import QueryError
    try:
        return not resolve(store, repo, None, {}).snapshot.ready
    except QueryError:
        return False  # nothing ready yet: the query side says so, it answers nothing
