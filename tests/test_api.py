"""The control plane's API: endpoints, OpenAPI, start-up, secrets and isolation from torch."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from cloud.app import create_app
from cloud.auth import WEBHOOKS
from cloud.routes import ROUTES
from shared.jobs import WorkerStatus
from shared.queue import Lease
from shared.queue.sqlite import SqliteQueue
from shared.settings import Settings, SettingsError
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "api-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PREFIX = "/api/v1/ingestion"


@pytest.fixture
def queue(new_queue):
    return new_queue()


@pytest.fixture
def client(queue):
    with TestClient(create_app(Settings(admin_token=TOKEN), queue=queue)) as client:
        yield client


def test_job_detail_and_404(client, queue):
    job_id = client.post(f"{PREFIX}/ingest/github.com/psf/requests", headers=AUTH).json()["job_id"]
    job = client.get(f"{PREFIX}/jobs/{job_id}", headers=AUTH).json()
    assert job["job_id"] == job_id and job["state"] == "queued" and job["attempts"] == 0
    assert "lease_token" not in job and job["submitted_at"] > 0
    missing = client.get(f"{PREFIX}/jobs/{'f' * 32}", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_history_and_dead_letters_through_the_api(new_queue):
    queue = new_queue(lease=Lease(seconds=0.3, max_attempts=1))
    with TestClient(create_app(Settings(admin_token=TOKEN), queue=queue)) as client:
        client.post(f"{PREFIX}/ingest/github.com/o/lost", headers=AUTH)
        queue.claim(WorkerStatus(worker_id="w"))
        time.sleep(0.4)  # the worker vanished; one attempt allowed
        queue.claim(WorkerStatus(worker_id="w2"))
        dead = client.get(f"{PREFIX}/jobs/dead", headers=AUTH).json()["jobs"]
        assert [j["repo_url"] for j in dead] == ["https://github.com/o/lost"]
        assert dead[0]["state"] == "dead" and "lease expired" in dead[0]["error"]
        history = client.get(f"{PREFIX}/jobs/history?limit=5", headers=AUTH).json()["jobs"]
        assert history[0]["status"] == "dead"
        page = client.get(f"{PREFIX}/overview", headers=AUTH).json()
        assert page["dead"][0]["job_id"] == dead[0]["job_id"]
        assert page["queue"] == {"size": 0, "running": 0, "max": 10, "backend": queue.backend}


def test_worker_status_offline_when_heartbeat_is_missing(client, queue, backend, tmp_path):
    assert client.get(f"{PREFIX}/worker/status", headers=AUTH).json() == {
        "status": "Offline", "workers": []}
    queue.heartbeat(WorkerStatus(worker_id="laptop", heartbeat_seconds=5))
    assert client.get(f"{PREFIX}/worker/status", headers=AUTH).json()["status"] == "Idle"
    if backend != "sqlite":
        return  # the server stamps heartbeats with its own clock: a minute cannot be faked
    # A handle on the same file whose clock is a minute behind: its beat is a minute old.
    behind = SqliteQueue(queue.path, clock=lambda: time.time() - 60)
    try:
        behind.heartbeat(WorkerStatus(worker_id="laptop", heartbeat_seconds=5))
    finally:
        behind.close()
    body = client.get(f"{PREFIX}/worker/status", headers=AUTH).json()
    assert body["status"] == "Offline"
    assert body["workers"][0]["state"] == "offline" and body["workers"][0]["status"] == "Offline"


def test_health_needs_no_token(client, queue):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["backends"]["queue"]["backend"] == queue.backend


def test_openapi_describes_every_route_with_examples(client):
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for route in ROUTES:
        assert isinstance(route, Route)
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        assert path in spec["paths"], path
        for method in route.methods - {"HEAD"}:
            operation = spec["paths"][path][method.lower()]
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get("application/json")
                if content is not None:
                    assert "example" in content, (path, status)
            if path in WEBHOOKS.values():  # signed, not token-protected
                # a bad signature: 401, or Stripe's 400 (what its retries expect)
                assert operation["security"] == [] and (
                    {"401", "400"} & set(operation["responses"]))
            elif path.startswith("/api/"):
                assert operation["security"] == [{"bearer": []}]
                assert "401" in operation["responses"]


def test_status_page_is_served_without_token(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_local_repositories_only_when_allowed(new_queue):
    for allowed, status in ((False, 400), (True, 200)):
        settings = Settings(admin_token=TOKEN, allow_local_repos=allowed)
        with TestClient(create_app(settings, queue=new_queue())) as client:
            answer = client.post(f"{PREFIX}/ingest//srv/repos/project", headers=AUTH)
            assert answer.status_code == status, answer.json()
    assert answer.json()["target"] == "file:///srv/repos/project"


def test_presented_tokens_and_url_credentials_never_reach_the_logs(client, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "hunter2-very-secret"
    client.post(f"{PREFIX}/ingest/https://bob:{secret}@github.com/o/r",
                headers={"Authorization": f"Bearer {secret}"})
    answer = client.post(f"{PREFIX}/ingest/https://bob:{secret}@github.com/o/r", headers=AUTH)
    assert answer.status_code == 400 and secret not in answer.text
    server_side = [r for r in caplog.records if not r.name.startswith("httpx")]  # the client's own
    assert any("401" in r.getMessage() for r in server_side)
    assert not any(secret in r.getMessage() for r in server_side)


# --- settings ---------------------------------------------------------------------------
@pytest.mark.parametrize("env, problem", [
    ({"REDIS_URL": "redis://cache.example.com:6379"}, "REDIS_URL"),
    ({"UPSTASH_REDIS_REST_URL": "http://eu1.upstash.io", "UPSTASH_REDIS_REST_TOKEN": "t"},
     "UPSTASH_REDIS_REST_URL"),
    ({"DATABASE_URL": "postgresql://u:p@ep-x.neon.tech/db"}, "sslmode=require"),
    ({"QDRANT_URL": "http://x.cloud.qdrant.io:6333"}, "QDRANT_URL"),
    ({"UPSTASH_REDIS_REST_URL": "https://eu1.upstash.io"}, "UPSTASH_REDIS_REST_TOKEN"),
    ({"MAX_QUEUE_SIZE": "ten"}, "MAX_QUEUE_SIZE"),
    ({"MAX_QUEUE_SIZE": "0"}, "MAX_QUEUE_SIZE"),
    ({"ALLOW_LOCAL_REPOS": "maybe"}, "ALLOW_LOCAL_REPOS"),
    ({"MODE": "SERVER"}, "MODE"),
    ({"MODE": "CLOUD"}, "PHAROS_ADMIN_TOKEN"),
    ({"DEVICE": "gpu"}, "DEVICE"),
    ({"NODE2VEC_P": "0"}, "NODE2VEC_P"),
    ({"NODE2VEC_EPOCHS": "many"}, "NODE2VEC_EPOCHS"),
    ({"EMBEDDINGS_PROVIDER": "cohere"}, "EMBEDDINGS_PROVIDER"),
    ({"EMBEDDINGS_PROVIDER": "openai"}, "OPENAI_API_KEY"),
    ({"EMBEDDINGS_PROVIDER": "openai", "OPENAI_API_KEY": "k",
      "OPENAI_BASE_URL": "http://api.example.com/v1"}, "OPENAI_BASE_URL"),
])
def test_bad_settings_name_the_variable(env, problem):
    with pytest.raises(SettingsError, match=re.escape(problem)):
        Settings.from_env(env)


def test_property_12_remote_services_need_tls_loopback_may_not():
    remote = Settings.from_env({
        "REDIS_URL": "rediss://default:pw@eu1-x.upstash.io:6379",
        "DATABASE_URL": "postgresql://u:p@ep-x.neon.tech/db?sslmode=require",
        "QDRANT_URL": "https://x.cloud.qdrant.io:6333",
        "EMBEDDINGS_PROVIDER": "openai", "OPENAI_API_KEY": "sk-pw"})
    assert remote.queue_backend == "redis"
    local = Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6379/0",
                               "DATABASE_URL": "postgresql://u@localhost/db",
                               "QDRANT_URL": "http://[::1]:6333",
                               "EMBEDDINGS_PROVIDER": "openai", "OPENAI_API_KEY": "k",
                               "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert local.redis_url.startswith("redis://")
    assert "pw" not in repr(remote)  # secrets stay out of reprs and so out of logs


# --- processes --------------------------------------------------------------------------
def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in {"PHAROS_ADMIN_TOKEN", "REDIS_URL", "UPSTASH_REDIS_REST_URL", "MODE"}}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_cloud_mode_refuses_to_start_without_a_token():
    done = subprocess.run([sys.executable, "-m", "cloud"], cwd=ROOT, env=_env(MODE="CLOUD"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "PHAROS_ADMIN_TOKEN" in done.stderr


def test_embedded_run_generates_and_prints_a_token_and_logs_no_secret(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cloud"], cwd=ROOT,
                            env=_env(MODE="ALL", PORT=str(port), DATA_DIR=str(tmp_path)),
                            stderr=subprocess.PIPE, text=True)
    try:
        token = None
        deadline = time.monotonic() + 30
        while token is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            found = re.search(r"generated admin token for this run: (\S+)", line)
            token = found and found.group(1)
        assert token, "no token printed"
        base = f"http://127.0.0.1:{port}"
        # printed during startup: the port opens once the app's lifespan has started
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/health", timeout=5)
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        status = httpx.get(f"{base}{PREFIX}/worker/status",
                           headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert status.status_code == 200
        assert httpx.get(f"{base}{PREFIX}/worker/status", timeout=10).status_code == 401
        secret = "hunter2-very-secret"
        for bearer in (token, secret):
            answer = httpx.post(f"{base}{PREFIX}/ingest/https://bob:{secret}@github.com/o/r",
                                headers={"Authorization": f"Bearer {bearer}"}, timeout=10)
            assert answer.status_code in (400, 401)
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=30)[1]
    assert "ingest/https://***@github.com/o/r" in rest  # the access log, redacted
    assert secret not in rest and token not in rest


def test_the_cloud_process_never_imports_torch_or_edge():
    probe = """
import sys, importlib.abc
attempts = []
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'edge', 'torch_geometric'):
            attempts.append(name)
        return None
sys.meta_path.insert(0, Watch())
import cloud.app, cloud.__main__
from starlette.testclient import TestClient
from shared.queue.sqlite import SqliteQueue
from shared.settings import Settings
import tempfile, pathlib
app = cloud.app.create_app(Settings(admin_token='t', data_dir=pathlib.Path(tempfile.mkdtemp())))
with TestClient(app) as c:
    c.get('/health'); c.get('/api/v1/ingestion/overview', headers={'Authorization': 'Bearer t'})
print(json.dumps(attempts))
"""
    done = subprocess.run([sys.executable, "-c", "import json\n" + probe], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
