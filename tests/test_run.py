"""`make run`'s entry point (run.py) as a user meets it: a real process on a real port.

MODE=ALL: the control plane and one worker in one process on the embedded stores; a
local repository submitted over HTTP ends as history, graph facts and vectors, and
Ctrl-C leaves nothing behind. MODE=CLOUD never imports torch or the worker; MODE=EDGE
checks the device. And `make run` passes its variables to the app.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from shared.graph.model import Edge, EdgeKind, Graph, Node, NodeKind, node_id
from shared.graph.store import open_graph_store
from shared.queue import open_queue
from shared.settings import Settings
from shared.vectors import CHUNK_COLLECTION, STRUCTURE_COLLECTION, VectorStore
from tests.servers import free_port
from tests.test_project import outside_make
from tests.test_end_to_end import EXPECTED_IMPORTS, SOURCES, _make_repo
from tests.test_worker import wait_for

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/api/v1/ingestion"


class Process:
    """run.py in a subprocess, its output collected line by line as it comes."""

    def __init__(self, env: dict[str, str], *args: str):
        self.popen = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def line_with(self, pattern: str, timeout: float = 60) -> re.Match:
        def found():
            if self.popen.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"exited with {self.popen.returncode}:\n{self.output}")
            return next((m for m in map(re.compile(pattern).search, list(self.lines)) if m),
                        None)
        return wait_for(found, timeout, f"a line matching {pattern!r}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout)
        finally:
            if self.popen.poll() is None:
                self.popen.kill()
            self._reader.join(5)
        return self.popen.returncode


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"PHAROS_ADMIN_TOKEN", "REDIS_URL", "DATABASE_URL", "QDRANT_URL",
                        "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "MODE"}}
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    env.update({"DATA_DIR": str(tmp_path / "data"), "PORT": str(free_port()),
                "TMPDIR": str(scratch), "HEARTBEAT_SECONDS": "0.5", "LEASE_SECONDS": "10",
                "WORKER_ID": "all-in-one", "PYTHONPATH": str(ROOT)})
    env.update(extra)
    return env


def test_make_run_entry_point_serves_works_and_stops_cleanly(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    commit = _make_repo(source)
    env = _env(tmp_path, ALLOW_LOCAL_REPOS="true")  # no token: one is generated and shown
    app = Process(env, "run.py")
    try:
        token = app.line_with(r"admin token\s+(\S+)\s+\(generated").group(1)
        base = app.line_with(r"status page\s+(http://\S+)/").group(1)
        assert f"http://127.0.0.1:{env['PORT']}" == base
        curl = app.line_with(r"curl -X POST .*").group(0)
        assert f"Bearer {token}" in curl and f"{base}{PREFIX}/ingest/" in curl
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=auth, timeout=10) as http:
            assert http.get("/health").status_code == 200
            assert http.get(f"{PREFIX}/overview", headers={"Authorization": "Bearer no"}
                            ).status_code == 401
            submitted = http.post(f"{PREFIX}/ingest/{source}")
            assert submitted.status_code == 200, submitted.text
            job_id = submitted.json()["job_id"]

            def finished():
                job = http.get(f"{PREFIX}/jobs/{job_id}").json()
                return job if job["state"] not in ("queued", "running") else None

            job = wait_for(finished, 120, "the job to finish")
            assert job["state"] == "complete", (job, app.output)
            # the query side reads the worker's own stores in this one process
            found = http.post("/api/v1/search", json={"query": "add two numbers",
                                                      "repo": str(source)})
            assert found.status_code == 200, found.text
            assert found.json()["results"][0]["name"] == "add"
            assert found.json()["index"][0]["commit"] == commit
            record = http.get(f"{PREFIX}/jobs/history").json()["jobs"][0]
            status = http.get(f"{PREFIX}/worker/status").json()
        assert [(w["worker_id"], w["status"]) for w in status["workers"]] == \
            [("all-in-one", "Idle")]
    finally:
        code = app.stop(signal.SIGINT)
    assert code == 0, app.output
    assert token not in "\n".join(l for l in app.lines if "admin token" not in l
                                  and "curl" not in l)  # shown once, never logged
    assert "Traceback" not in app.output

    # what the job wrote, read after the process let go of the embedded stores
    assert record["job_id"] == job_id and record["status"] == "complete"
    assert record["files_processed"] == len(SOURCES) and record["commit"] == commit
    chunks = job["summary"]["embeddings"]["chunks"]
    assert record["embeddings_generated"] == len(SOURCES) + chunks
    # No workspace, no cache left in TMPDIR. onnxruntime (the query encoder, loaded by
    # /health) keeps a 51-byte session-id file `.ses` there, whatever we ask of it.
    assert [p.name for p in (tmp_path / "tmp").iterdir()] in ([], [".ses"])
    settings = Settings.from_env({"DATA_DIR": env["DATA_DIR"]})
    queue = open_queue(settings)
    try:
        assert [(w.worker_id, w.state.value) for w in queue.workers()] == \
            [("all-in-one", "offline")]
    finally:
        queue.close()
    store = open_graph_store(settings)
    try:
        graph = store.load_graph(store.latest_snapshot(f"file://{source}"))
    finally:
        store.close()
    paths = {n.id: n.path for n in graph.nodes if n.kind is NodeKind.FILE}
    assert {(paths[e.src], paths[e.dst]) for e in graph.edges
            if e.kind is EdgeKind.IMPORTS} == EXPECTED_IMPORTS
    with VectorStore(path=Path(env["DATA_DIR"]) / "qdrant") as vectors:
        assert vectors.count(f"file://{source}", STRUCTURE_COLLECTION) == len(SOURCES)
        assert vectors.count(f"file://{source}", CHUNK_COLLECTION) == chunks


def test_sigterm_stops_the_all_in_one_and_a_given_token_is_not_shown(tmp_path):
    env = _env(tmp_path, PHAROS_ADMIN_TOKEN="a-token-from-the-environment")
    app = Process(env, "run.py")
    try:
        assert "$PHAROS_ADMIN_TOKEN" in app.line_with(r"admin token\s+\S+").group(0)
        app.line_with(r"curl -X POST")
    finally:
        code = app.stop(signal.SIGTERM)
    assert code == 0, app.output
    assert "a-token-from-the-environment" not in app.output
    assert re.search(r"worker all-in-one stopped", app.output)


def test_a_busy_port_is_a_clear_failure_not_a_hang(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = _env(tmp_path, PORT=str(taken.getsockname()[1]))
        app = Process(env, "run.py")
        code = app.popen.wait(60)
        app._reader.join(5)
    assert code != 0
    assert "address already in use" in app.output.lower(), app.output
    assert "Neo Alexandria is running" not in app.output


def _one_file_snapshot(data_dir: Path, repo: str) -> None:
    """A stored snapshot to search (its vectors are not needed for the keyword side)."""
    text = "def retry_with_backoff(call):\n    return call()\n"
    file = Node(node_id(repo, "net.py"), NodeKind.FILE, "net.py", "net.py", "", 1, 2, "python")
    function = Node(node_id(repo, "net.py", "retry_with_backoff"), NodeKind.FUNCTION, "net.py",
                    "retry_with_backoff", "retry_with_backoff", 1, 2, "python")
    store = open_graph_store(Settings.from_env({"DATA_DIR": str(data_dir)}))
    try:
        store.write_snapshot(Graph(repo, "ab" * 20, [file, function],
                                   [Edge(file.id, function.id, EdgeKind.CONTAINS)],
                                   sources={"net.py": text}))
    finally:
        store.close()


@pytest.mark.parametrize("entry", [["run.py"], ["-m", "cloud"]])
def test_mode_cloud_never_imports_torch_or_the_worker(tmp_path, entry):
    """...and still embeds queries: the ONNX query model, no torch."""
    env = _env(tmp_path, MODE="CLOUD", PHAROS_ADMIN_TOKEN="t0ken")
    repo = "https://github.com/example/net"
    _one_file_snapshot(Path(env["DATA_DIR"]), repo)
    app = Process(env, "-X", "importtime", *entry)  # every import goes to stderr
    try:
        app.line_with(r"Uvicorn running on")
        base = f"http://127.0.0.1:{env['PORT']}"
        auth = {"Authorization": "Bearer t0ken"}
        with httpx.Client(base_url=base, headers=auth, timeout=30) as http:
            assert http.get("/").status_code == 200
            assert http.get(f"{PREFIX}/overview").status_code == 200
            assert http.post(f"{PREFIX}/ingest/github.com/psf/requests").status_code == 200
            found = http.post("/api/v1/search", json={"query": "retry with backoff",
                                                      "repo": repo, "mode": "hybrid"})
            assert found.status_code == 200, found.text  # hybrid embeds the query first
            assert [r["name"] for r in found.json()["results"]] == ["retry_with_backoff"]
            encoder = http.get("/health").json()["backends"]["query_encoder"]
            assert encoder == {"ok": True, "model": "all-MiniLM-L6-v2"}
    finally:
        code = app.stop(signal.SIGTERM)
    assert code == 0, app.output
    imported = {m.group(1).split(".")[0] for m in
                re.finditer(r"import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", app.output)}
    assert {"starlette", "uvicorn", "cloud", "shared"} <= imported  # the probe sees imports
    assert not imported & {"torch", "edge", "torch_geometric", "sentence_transformers",
                           "transformers", "tree_sitter"}


def test_mode_cloud_refuses_to_start_without_a_token(tmp_path):
    env = _env(tmp_path, MODE="CLOUD")
    done = subprocess.run([sys.executable, "run.py"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "PHAROS_ADMIN_TOKEN" in done.stderr


def test_mode_edge_logs_its_device_and_refuses_a_missing_gpu(tmp_path):
    worker = Process(_env(tmp_path, MODE="EDGE", DEVICE="cpu"), "run.py")
    try:
        assert worker.line_with(r"device: (\S+)").group(1) == "cpu"
        worker.line_with(r"worker all-in-one started on cpu")
    finally:
        code = worker.stop(signal.SIGTERM)
    assert code == 0, worker.output
    assert "Uvicorn" not in worker.output  # the worker only

    import torch
    if torch.cuda.is_available():
        return  # DEVICE=cuda is valid here; the refusal needs a machine without a GPU
    done = subprocess.run([sys.executable, "run.py"], cwd=ROOT, capture_output=True, text=True,
                          env=_env(tmp_path, MODE="EDGE", DEVICE="cuda"), timeout=60)
    assert done.returncode == 2
    assert "DEVICE=CUDA, but torch" in done.stderr and "setup_edge.sh" in done.stderr


def test_a_wrong_variable_stops_the_start_naming_it(tmp_path):
    done = subprocess.run([sys.executable, "run.py"], cwd=ROOT, capture_output=True, text=True,
                          env=_env(tmp_path, MAX_QUEUE_SIZE="ten"), timeout=60)
    assert done.returncode == 2
    assert "MAX_QUEUE_SIZE must be an integer" in done.stderr


def test_variables_given_to_make_run_reach_the_app(tmp_path):
    """`make run ALLOW_LOCAL_REPOS=true` hands the variable to run.py's environment."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    probe = venv / "bin" / "python"  # stands in for the venv's python: prints what it got
    probe.write_text("#!/bin/sh\necho \"args=$* allow=$ALLOW_LOCAL_REPOS port=$PORT\"\n")
    probe.chmod(0o755)
    (venv / ".installed").touch()  # newer than the requirements: no install step
    done = subprocess.run(["make", "-s", "--no-print-directory", "run", f"VENV={venv}",
                           "ALLOW_LOCAL_REPOS=true", "PORT=9123"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=outside_make())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "args=run.py allow=true port=9123"


def test_sigterm_drains_a_request_in_flight(tmp_path, upstash_server):
    """The control plane stops taking connections on SIGTERM but answers what it holds."""
    env = _env(tmp_path, MODE="CLOUD", PHAROS_ADMIN_TOKEN="t0ken",
               UPSTASH_REDIS_REST_URL=upstash_server.url,
               UPSTASH_REDIS_REST_TOKEN=upstash_server.token)
    app = Process(env, "-m", "cloud")
    base = f"http://127.0.0.1:{env['PORT']}"
    answers: list[httpx.Response] = []
    try:
        app.line_with(r"Uvicorn running on")
        upstash_server.delay_seconds = 2.0  # every queue call now takes 2 s
        upstash_server.reset_counts()
        slow = threading.Thread(target=lambda: answers.append(httpx.post(
            f"{base}{PREFIX}/ingest/github.com/psf/requests",
            headers={"Authorization": "Bearer t0ken"}, timeout=30)))
        slow.start()
        wait_for(lambda: upstash_server.requests > 0, 10, "the request to reach the queue")
        app.popen.send_signal(signal.SIGTERM)
        app.line_with(r"Shutting down", timeout=10)
        with pytest.raises(httpx.ConnectError):  # no new connections while draining
            httpx.get(f"{base}/health", timeout=5)
        slow.join(30)
    finally:
        upstash_server.delay_seconds = 0.0
        code = app.stop(signal.SIGTERM)
    assert code == 0, app.output
    assert [a.status_code for a in answers] == [200], app.output
    assert answers[0].json()["status"] == "dispatched"
