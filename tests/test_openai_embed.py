"""The OpenAI-compatible embeddings provider against a real local HTTP server
(tests/embedding_server.OpenAIEmbeddingServer) that speaks the protocol and fails on cue."""
from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from edge.embed.openai import EmbeddingError, OpenAIEncoder
from tests.embedding_server import OpenAIEmbeddingServer, vector_for
from tests.servers import free_port

KEY = "sk-test-0123456789abcdef"


@pytest.fixture
def server():
    made = OpenAIEmbeddingServer(api_key=KEY, dim=1536)
    yield made
    made.stop()


def encoder(server: OpenAIEmbeddingServer, key: str = KEY, **options) -> OpenAIEncoder:
    options.setdefault("backoff", 0.001)
    return OpenAIEncoder(server.url + "/v1", key, **options)


def expected(texts: list[str], dim: int = 1536) -> np.ndarray:
    rows = np.stack([vector_for(t, dim) for t in texts])
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_vectors_are_normalised_float32_in_input_order(server):
    texts = [f"def f{i}(x): return x + {i}" for i in range(23)]
    with encoder(server, batch_size=5) as enc:
        got = enc.encode(texts)

    assert enc.model == "text-embedding-3-small" and enc.dim == 1536
    assert got.dtype == np.float32 and got.shape == (23, 1536)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # The server answers each batch in reverse order: rows must follow `index`.
    assert np.allclose(got, expected(texts), atol=1e-6)
    assert sorted(len(r) for r in server.requests) == [3, 5, 5, 5, 5]
    assert sorted(t for r in server.requests for t in r) == sorted(texts)


def test_no_texts_make_an_empty_matrix_without_a_request(server):
    with encoder(server) as enc:
        assert enc.encode([]).shape == (0, 1536)
    assert server.requests == []


def test_empty_text_is_sent_as_a_space(server):
    with encoder(server) as enc:
        got = enc.encode(["", "x"])
    assert server.requests == [[" ", "x"]]
    assert np.allclose(got, expected([" ", "x"]), atol=1e-6)


def test_429_is_retried_after_the_servers_retry_after(server):
    server.fail_next(429, times=2, retry_after="0.3")
    started = time.monotonic()
    with encoder(server) as enc:
        got = enc.encode(["a", "b"])
    elapsed = time.monotonic() - started

    assert len(server.requests) == 3
    assert np.allclose(got, expected(["a", "b"]), atol=1e-6)
    # Backoff alone would wait milliseconds here: the two waits are the server's.
    assert elapsed >= 0.6


def test_retry_after_as_an_http_date_is_honoured(server):
    server.fail_next(429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")  # in the past: now
    with encoder(server) as enc:
        enc.encode(["a"])
    assert len(server.requests) == 2


def test_5xx_answers_are_retried(server):
    server.fail_next(500)
    server.fail_next(503)
    server.fail_next(502)
    with encoder(server) as enc:
        got = enc.encode(["only"])
    assert len(server.requests) == 4
    assert np.allclose(got, expected(["only"]), atol=1e-6)


def test_retries_are_bounded_and_end_in_a_clear_error(server):
    server.fail_next(503, times=10)
    with encoder(server, max_attempts=4) as enc, pytest.raises(EmbeddingError) as caught:
        enc.encode(["x"])
    assert len(server.requests) == 4
    assert "failed 4 times" in str(caught.value) and "HTTP 503" in str(caught.value)


def test_wrong_key_fails_at_once_and_the_key_is_never_shown(server, caplog):
    wrong = "sk-wrong-secret-9876543210"
    caplog.set_level(logging.DEBUG)
    enc = encoder(server, key=wrong)
    with pytest.raises(EmbeddingError) as caught:
        enc.encode(["x"])
    enc.close()

    assert len(server.requests) == 1  # 401 is not retried
    assert "HTTP 401" in str(caught.value) and "refused the API key" in str(caught.value)
    # The server's reply quotes the key; nothing of ours does.
    for text in (str(caught.value), repr(caught.value), repr(enc), caplog.text):
        assert wrong not in text


def test_the_key_is_cut_from_any_error_a_server_quotes(server):
    server.fail_next(418, body={"error": {"message": f"no tea for {KEY}"}})
    with encoder(server) as enc, pytest.raises(EmbeddingError) as caught:
        enc.encode(["x"])
    assert "HTTP 418" in str(caught.value) and "no tea for" in str(caught.value)
    assert KEY not in str(caught.value)


def test_transport_errors_are_retried_then_reported():
    port = free_port()  # nothing listens there
    enc = OpenAIEncoder(f"http://127.0.0.1:{port}/v1", KEY, max_attempts=3, backoff=0.001)
    with pytest.raises(EmbeddingError, match="failed 3 times; last: ConnectError") as caught:
        enc.encode(["x"])
    assert KEY not in str(caught.value)


def test_too_long_input_is_shortened_until_the_server_takes_it():
    with OpenAIEmbeddingServer(api_key=KEY, max_input_tokens=1000) as server:
        long_text = "y" * 1500
        with encoder(server, max_chars=100_000, batch_size=8) as enc:
            got = enc.encode(["a", "b", long_text, "c"])

        sent = [t for request in server.requests for t in request]
        assert long_text in sent  # first tried whole
        assert "y" * 750 in sent  # then halved, which fits
        assert np.allclose(got, expected(["a", "b", "y" * 750, "c"]), atol=1e-6)


def test_texts_are_cut_to_the_character_bound_before_sending(server):
    with encoder(server, max_chars=50) as enc:
        got = enc.encode(["z" * 80])
    assert server.requests == [["z" * 50]]
    assert np.allclose(got, expected(["z" * 50]), atol=1e-6)


def test_a_request_over_the_per_request_token_cap_is_split():
    with OpenAIEmbeddingServer(api_key=KEY, max_request_tokens=100) as server:
        texts = [f"{i:02d}" + "w" * 38 for i in range(6)]  # 40 tokens each
        with encoder(server, batch_size=6) as enc:
            got = enc.encode(texts)
        assert np.allclose(got, expected(texts), atol=1e-6)
        accepted = [r for r in server.requests if sum(map(len, r)) <= 100]
        assert sorted(t for r in accepted for t in r) == sorted(texts)


def test_concurrency_is_bounded(server):
    server.delay = 0.05
    texts = [f"t{i}" for i in range(40)]
    with encoder(server, batch_size=2, concurrency=3) as enc:
        got = enc.encode(texts)
    assert len(server.requests) == 20
    assert server.max_in_flight == 3  # used, and never exceeded
    assert np.allclose(got, expected(texts), atol=1e-6)


@pytest.mark.parametrize("body", [
    b"not json",
    b'{"data": [{"index": 0, "embedding": [0.1, 0.2]}]}',  # two inputs, one vector
    b'{"data": [{"index": 0, "embedding": [1]}, {"index": 0, "embedding": [2]}]}',
    b'{"object": "list"}',
])
def test_a_malformed_reply_is_an_error(server, body):
    server.malformed_next(body)
    with encoder(server) as enc, pytest.raises(EmbeddingError, match="not an embeddings list"):
        enc.encode(["a", "b"])


def test_vectors_of_the_wrong_size_are_an_error(server):
    with encoder(server, model="text-embedding-3-large") as enc, \
            pytest.raises(EmbeddingError, match="1536-d .* expected 3072"):
        enc.encode(["a"])


def test_dimensions_are_requested_and_unknown_models_are_probed(server):
    with encoder(server, dim=256) as enc:
        assert enc.encode(["a"]).shape == (1, 256)
    with encoder(server, model="my-local-model") as enc:
        assert enc.dim == 1536  # learnt from one probe request
        assert enc.encode(["b"]).shape == (1, 1536)
    assert len(server.requests) == 3


def test_plain_http_to_another_host_is_refused_with_a_key():
    with pytest.raises(EmbeddingError, match="https"):
        OpenAIEncoder("http://api.example.com/v1", KEY)
    OpenAIEncoder("http://api.example.com/v1", "").close()  # no key, nothing to leak
    OpenAIEncoder("https://api.example.com/v1", KEY).close()
