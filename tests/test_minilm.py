"""all-MiniLM-L6-v2 on the CPU, loaded offline from the installed package (GPU part where CUDA is)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edge.embed.minilm import DIM, MODEL_NAME, EncoderError, MiniLMEncoder

CODE = [
    "src/queue.py: Queue.put\ndef put(self, job):\n    \"\"\"Enqueue a job.\"\"\"\n    self._items.append(job)",
    "web/stack.ts: Stack.push\npush(item: T): void {\n  this.items.push(item);\n}",
    "README.py\nprint('hello')",
    "x",
    "",
]


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    return MiniLMEncoder(device="cpu")


def test_rows_are_normalised_float32_of_the_model_width(encoder):
    vectors = encoder.encode(CODE)

    assert (encoder.model, encoder.dim, encoder.device, encoder.dtype) == (
        MODEL_NAME, DIM, "cpu", "float32")
    assert vectors.shape == (len(CODE), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert len({row.tobytes() for row in vectors}) == len(CODE)
    assert encoder.encode([]).shape == (0, 384)


def test_encoding_is_deterministic(encoder):
    assert np.array_equal(encoder.encode(CODE), encoder.encode(CODE))


def test_a_batch_padded_to_its_longest_gives_each_text_its_own_vector(encoder):
    together = encoder.encode(CODE)
    alone = np.stack([encoder.encode([text])[0] for text in CODE])

    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_similar_code_is_closer_than_unrelated_code(encoder):
    add, add_again, http = encoder.encode([
        "def add(a, b):\n    return a + b",
        "def sum_two(x, y):\n    return x + y",
        "async def fetch(url):\n    return await client.get(url, timeout=5)",
    ])
    assert add @ add_again > add @ http + 0.1


def test_the_window_is_256_tokens_not_the_shipped_128(encoder):
    # "hello" is one word piece: after [CLS], the word at index i is token i + 1.
    def text(words: int, tail: str) -> str:
        return "hello " * words + tail

    past_128 = encoder.encode([text(150, "database migration"), text(150, "keyboard shortcut")])
    past_300 = encoder.encode([text(300, "database migration"), text(300, "keyboard shortcut")])

    assert past_128[0] @ past_128[1] < 0.99  # seen: the window reaches past 128
    np.testing.assert_array_equal(past_300[0], past_300[1])  # cut: the window ends before 300


def test_a_5000_token_text_is_truncated_not_an_error(encoder):
    (vector,) = encoder.encode(["token " * 5000])
    assert vector.shape == (384,) and np.isfinite(vector).all()


def test_progress_is_told_per_batch_and_order_is_kept(encoder):
    seen = []
    encoder.batch_size = 2
    try:
        vectors = encoder.encode(CODE, on_batch=lambda done, total: seen.append((done, total)))
    finally:
        encoder.batch_size = 32

    assert seen == [(2, 5), (4, 5), (5, 5)]
    np.testing.assert_allclose(vectors, encoder.encode(CODE), atol=1e-5)


def test_bfloat16_on_the_cpu_agrees_with_float32(encoder):
    half = MiniLMEncoder(device="cpu", dtype="bfloat16")
    vectors = half.encode(CODE)

    assert half.dtype == "bfloat16" and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (vectors * encoder.encode(CODE)).sum(axis=1).min() >= 0.999


def test_an_unknown_dtype_is_refused():
    with pytest.raises(EncoderError, match="int4"):
        MiniLMEncoder(device="cpu", dtype="int4")


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a CUDA GPU: the fp16 path runs only on one")
def test_cuda_fp16_agrees_with_cpu(encoder):
    gpu = MiniLMEncoder()
    vectors = gpu.encode(CODE * 100)

    assert gpu.device == "cuda" and gpu.dtype == "float16" and gpu.batch_size >= 128
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = (vectors[:len(CODE)] * encoder.encode(CODE)).sum(axis=1)
    print("cuda fp16 vs cpu fp32 cosine:", cosine)
    assert cosine.min() >= 0.999
