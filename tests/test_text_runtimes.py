"""TEXT_RUNTIME: the text model on torch or onnxruntime, float32, bfloat16 or int8
(edge/embed/runtimes.py), with the real model files, made offline into DATA_DIR."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.embed.minilm import MiniLMEncoder
from edge.embed.runtimes import (OnnxTextEncoder, cpu_default, onnx_model, open_text_encoder,
                                 usable_cores)
from edge.analyze import analyze
from edge.embed.stages import embed_text
from shared.settings import Settings, SettingsError, TextRuntime

TEXTS = [
    "def parse(path):\n    with open(path) as handle:\n        return json.load(handle)",
    "class Retry:\n    def backoff(self, attempt):\n        return min(60, 2 ** attempt)",
    "function render(view) { return view.template(view.model); }",
    "SELECT * FROM users WHERE id = ?",
    "x" * 3000,
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return MiniLMEncoder(device="cpu").encode(TEXTS)


def test_the_setting_takes_each_runtime_and_refuses_others():
    assert Settings.from_env({}).text_runtime is TextRuntime.AUTO
    for value, expected in (("onnx-int8", TextRuntime.ONNX_INT8), ("TORCH-BF16",
                            TextRuntime.TORCH_BF16), ("onnx", TextRuntime.ONNX)):
        assert Settings.from_env({"TEXT_RUNTIME": value}).text_runtime is expected
    with pytest.raises(SettingsError, match="TEXT_RUNTIME must be one of"):
        Settings.from_env({"TEXT_RUNTIME": "tensorrt"})


def test_auto_takes_bfloat16_where_the_cpu_has_it_and_onnx_elsewhere():
    assert cpu_default({"avx2", "amx_bf16"}) is TextRuntime.TORCH_BF16
    assert cpu_default({"avx512f", "avx512_bf16"}) is TextRuntime.TORCH_BF16
    assert cpu_default({"avx2", "avx512_vnni"}) is TextRuntime.ONNX
    assert cpu_default(set()) is TextRuntime.ONNX


def test_onnx_float32_gives_the_torch_vectors(data_dir, reference):
    encoder = open_text_encoder(TextRuntime.ONNX, "cpu", data_dir)
    assert isinstance(encoder, OnnxTextEncoder) and encoder.runtime == "onnx"
    vectors = encoder.encode(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (vectors * reference).sum(axis=1).min() > 0.9999


def test_int8_and_bfloat16_stay_close_and_say_what_they_are(data_dir, reference):
    int8 = open_text_encoder(TextRuntime.ONNX_INT8, "cpu", data_dir)
    bf16 = open_text_encoder(TextRuntime.TORCH_BF16, "cpu", data_dir)
    assert (int8.runtime, bf16.runtime) == ("onnx-int8", "torch-bf16")
    assert (int8.encode(TEXTS) * reference).sum(axis=1).min() > 0.97
    assert (bf16.encode(TEXTS) * reference).sum(axis=1).min() > 0.999


def test_model_files_are_made_once_and_reused(data_dir):
    first = onnx_model(data_dir, int8=True)
    stamp = (first / "model.onnx").stat().st_mtime_ns
    again = onnx_model(data_dir, int8=True)
    assert again == first and (again / "model.onnx").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in (data_dir / "models").iterdir()) == [
        "all-MiniLM-L6-v2-onnx", "all-MiniLM-L6-v2-onnx-int8"]  # no half-made folder left


def test_progress_and_order_survive_length_sorting(data_dir, reference):
    encoder = OnnxTextEncoder(onnx_model(data_dir), "onnx", threads=usable_cores(), batch_size=2)
    told: list[tuple[int, int]] = []
    vectors = encoder.encode(TEXTS, on_batch=lambda done, total: told.append((done, total)))
    assert told == [(2, 5), (4, 5), (5, 5)]
    assert ((vectors * reference).sum(axis=1) > 0.9999).all()  # row i is still text i


def test_the_pipeline_stage_says_which_runtime_made_the_vectors(tmp_path, data_dir):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.py").write_text("def one():\n    return 1\n\n\ndef two():\n    return 2\n")
    graph = analyze(root, workers=1).graph
    encoder = open_text_encoder(TextRuntime.ONNX, "cpu", data_dir)
    text = embed_text(root, graph, encoder, lambda stage, fraction: None)
    assert text.runtime == "onnx" and text.vectors.shape == (len(text.chunks), 384) == (2, 384)
    for chunk, vector in zip(text.chunks, text.vectors):
        assert np.allclose(vector, encoder.encode([chunk.text])[0], atol=1e-5)
