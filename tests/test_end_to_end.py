"""End to end: API -> queue -> a real worker process -> a real git repository ->
graph facts in PostgreSQL and in SQLite, vectors in Qdrant (local mode) -> history
shows the job complete."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cloud.app import create_app
from shared.graph.model import EdgeKind, NodeKind
from shared.graph.store import open_graph_store
from shared.queue import open_queue
from shared.settings import Settings
from shared.vectors import CHUNK_COLLECTION, STRUCTURE_COLLECTION, VectorStore
from tests.test_worker import wait_for

TOKEN = "e2e-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PREFIX = "/api/v1/ingestion"
ROOT = Path(__file__).resolve().parent.parent

SOURCES = {
    "pkg/__init__.py": "from .core import Engine\n",
    "pkg/core.py": (
        "from typing import TYPE_CHECKING\nimport os\n\nif TYPE_CHECKING:\n"
        "    from pkg.util import helper\n\n\nclass Base:\n    def start(self):\n"
        "        return os.getcwd()\n\n\nclass Engine(Base):\n"
        '    """Runs things."""\n\n    def run(self):\n        return self.start()\n'),
    "pkg/util.py": "def helper():\n    return 1\n",
    "app.py": (
        "import pkg.core\nfrom pkg import util\n\n\ndef main():\n    util.helper()\n"
        "    return pkg.core.Engine()\n"),
    "web/index.ts": "import { add } from './math';\nexport const x = add(1, 2);\n",
    "web/math.ts": "export function add(a: number, b: number): number {\n  return a + b;\n}\n",
}
EXPECTED_IMPORTS = {
    ("pkg/__init__.py", "pkg/core.py"), ("pkg/core.py", "pkg/util.py"),
    ("app.py", "pkg/core.py"), ("app.py", "pkg/util.py"), ("web/index.ts", "web/math.ts"),
}


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _make_repo(path: Path) -> str:
    for rel, text in SOURCES.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    (path / "broken.py").write_bytes(b"\x00\x01\x02 not python")
    (path / "README.md").write_text("not source\n")
    _git(path, "init", "-q", "-b", "main")
    _git(path, "add", ".")
    _git(path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    return _git(path, "rev-parse", "HEAD")


@pytest.fixture(params=["sqlite", "postgres"])
def graph_settings(request, tmp_path) -> dict[str, str]:
    env = {"DATA_DIR": str(tmp_path / "data")}
    if request.param == "postgres":
        env["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    return env


def test_a_submitted_repository_becomes_stored_graph_facts(graph_settings, redis_url, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    commit = _make_repo(source)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, **graph_settings, "REDIS_URL": redis_url, "ALLOW_LOCAL_REPOS": "true",
           "WORKER_ID": "e2e", "HEARTBEAT_SECONDS": "0.5", "LEASE_SECONDS": "10",
           "TMPDIR": str(scratch), "PYTHONPATH": str(ROOT)}
    settings = Settings.from_env({**graph_settings, "REDIS_URL": redis_url,
                                  "PHAROS_ADMIN_TOKEN": TOKEN, "ALLOW_LOCAL_REPOS": "true"})
    worker = subprocess.Popen([sys.executable, "-m", "edge", "worker"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with TestClient(create_app(settings, queue=open_queue(settings))) as client:
            submitted = client.post(f"{PREFIX}/ingest/{source}", headers=AUTH)
            assert submitted.status_code == 200, submitted.text
            job_id = submitted.json()["job_id"]

            def finished():
                job = client.get(f"{PREFIX}/jobs/{job_id}", headers=AUTH).json()
                return job if job["state"] not in ("queued", "running") else None

            job = wait_for(finished, 60, "the job to finish")
            assert job["state"] == "complete", job
            record = client.get(f"{PREFIX}/jobs/history", headers=AUTH).json()["jobs"][0]
            status = client.get(f"{PREFIX}/worker/status", headers=AUTH).json()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
        log = worker.communicate()[0]
    assert worker.returncode == 0, log

    summary = job["summary"]
    assert summary["commit"] == commit
    assert summary["edges_by_kind"]["IMPORTS"] == len(EXPECTED_IMPORTS)
    assert summary["skipped"] == [{"path": "broken.py", "reason": "binary content (NUL bytes)"}]
    assert record["job_id"] == job_id and record["status"] == "complete"
    assert record["files_processed"] == len(SOURCES) == job["files_processed"]
    assert record["commit"] == commit and record["files_skipped"] == 1
    assert record["edges"] == summary["edges"] and record["nodes"] == summary["nodes"]
    chunks = summary["embeddings"]["chunks"]
    assert record["embeddings_generated"] == len(SOURCES) + chunks  # property 9
    assert [(w["worker_id"], w["status"]) for w in status["workers"]] == [("e2e", "Idle")]
    assert list(scratch.iterdir()) == []  # property 14 in the real process

    store = open_graph_store(Settings.from_env(graph_settings))
    try:
        snapshot = store.latest_snapshot(f"file://{source}")
        assert snapshot is not None and snapshot.commit == commit
        graph = store.load_graph(snapshot)
    finally:
        store.close()
    paths = {n.id: n.path for n in graph.nodes if n.kind is NodeKind.FILE}
    assert set(paths.values()) == set(SOURCES)
    imports = {(paths[e.src], paths[e.dst]) for e in graph.edges if e.kind is EdgeKind.IMPORTS}
    assert imports == EXPECTED_IMPORTS
    assert len(graph.nodes) == record["nodes"] and len(graph.edges) == record["edges"]
    names = {n.id: n.qualname for n in graph.nodes}
    extends = {(names[e.src], names[e.dst]) for e in graph.edges if e.kind is EdgeKind.EXTENDS}
    calls = {(names[e.src], names[e.dst]) for e in graph.edges if e.kind is EdgeKind.CALLS}
    assert extends == {("Engine", "Base")}
    assert {("Engine.run", "Base.start"), ("main", "helper")} <= calls

    # Vectors: one structural point per file node, one text point per chunk (property 8).
    repo = f"file://{source}"
    with VectorStore(path=Path(graph_settings["DATA_DIR"]) / "qdrant") as vectors:
        assert vectors.count(repo, STRUCTURE_COLLECTION) == len(SOURCES)
        assert vectors.count(repo, CHUNK_COLLECTION) == chunks
        qualnames = {n.qualname for n in graph.nodes if n.kind is not NodeKind.FILE}
        hits = vectors.search(CHUNK_COLLECTION, [1.0] * 384, repo=repo, limit=100)
        assert {h.payload["qualified_name"] for h in hits} >= qualnames
        assert all(h.payload["commit"] == commit for h in hits)
