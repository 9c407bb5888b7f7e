"""Text embeddings from an OpenAI-compatible API (the optional provider).

`OpenAIEncoder` has the encoder interface of the pipeline: `model`, `dim` and
`encode(texts) -> float32 [n, dim]`, rows L2-normalised and in input order. It
POSTs `{"model", "input": [...]}` to `{base_url}/embeddings` with a Bearer key,
`batch_size` texts a request, at most `concurrency` requests in flight.

Failures, and what happens to them:

* 408, 429, 5xx and transport errors (connection refused or reset, timeouts): retried
  with exponential backoff and jitter, waiting what Retry-After (or OpenAI's
  retry-after-ms) asks for when the server says, up to `max_attempts` tries.
* Input too long (400/413/422 saying so): the model takes 8191 tokens, and without
  the model's BPE files (tiktoken would download them at run time) tokens can only
  be bounded by characters. Texts are cut to `max_chars` first: 16,000 characters is
  about 2 characters a token, where code runs 3 to 4. A refusal all the same splits
  the request in halves until the single text it names is found, then halves that
  text until it passes (per-request token caps are met by the same splitting).
* 401/403: no retry, an error that says the key was refused.
* Anything else, or a reply that is not the protocol's: EmbeddingError at once.

The key is sent in a header only: it is never part of a message, a log line or a
repr (httpx masks the header in its own reprs).
"""
from __future__ import annotations

import email.utils
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence
from urllib.parse import urlsplit

import httpx
import numpy as np
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from shared.secrets import Scrubber
from shared.settings import is_loopback_host

__all__ = ["EmbeddingError", "KNOWN_DIMS", "OpenAIEncoder"]

log = logging.getLogger(__name__)

# Output sizes of OpenAI's models; another model's size is learnt from its first reply.
KNOWN_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072,
              "text-embedding-ada-002": 1536}
MAX_CHARS = 16_000
_MAX_SHORTENINGS = 8  # a text is halved at most this often (down to 1/256 of it)
_TOO_LONG_STATUS = {400, 413, 422}
_TOO_LONG = re.compile(
    r"context length|too long|too large|too many tokens|tokens per request|"
    r"maximum (input )?length|exceeds? .*(token|length|limit)|less than \d+ tokens",
    re.IGNORECASE)


class EmbeddingError(Exception):
    """The embeddings API could not embed the texts; the message never has the key."""


class _Transient(Exception):
    """A reply worth trying again (429, 5xx); carries the server's wait hint."""

    def __init__(self, status: int, detail: str, retry_after: float | None):
        super().__init__(f"HTTP {status}: {detail}" if detail else f"HTTP {status}")
        self.retry_after = retry_after


class _TooLong(Exception):
    """The server refused an input (or the request) as too many tokens."""


class _WaitRetryAfter(wait_base):
    """The server's Retry-After when it gave one (capped), else exponential backoff."""

    def __init__(self, backoff: wait_base, cap: float):
        self.backoff = backoff
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        hint = getattr(exc, "retry_after", None)
        if hint is not None:
            return min(max(hint, 0.0), self.cap)
        return self.backoff(retry_state)


class OpenAIEncoder:
    def __init__(self, base_url: str, api_key: str, model: str = "text-embedding-3-small",
                 dim: int | None = None, concurrency: int = 4, batch_size: int = 128,
                 timeout: float = 60.0, max_attempts: int = 6, max_chars: int = MAX_CHARS,
                 backoff: float = 1.0, max_wait: float = 60.0):
        if concurrency < 1 or batch_size < 1 or max_attempts < 1 or max_chars < 1:
            raise ValueError("concurrency, batch_size, max_attempts and max_chars must be >= 1")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EmbeddingError(f"embeddings base URL must be http(s)://host..., got {base_url!r}")
        if parts.scheme == "http" and api_key and not is_loopback_host(parts.hostname):
            raise EmbeddingError(
                f"embeddings base URL {base_url} is plain http to another machine: the API key "
                "would travel unencrypted; use https")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.max_chars = max_chars
        self.backoff = backoff
        self.max_wait = max_wait
        # `dimensions` asks the model to shorten its vectors; sent only when asked for.
        self._dimensions = dim if dim is not None and dim != KNOWN_DIMS.get(model) else None
        self._dim = dim if dim is not None else KNOWN_DIMS.get(model)
        self._dim_lock = threading.Lock()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            headers=headers, timeout=timeout,
            limits=httpx.Limits(max_connections=concurrency,
                                max_keepalive_connections=concurrency))

    def __repr__(self) -> str:
        return f"OpenAIEncoder(base_url={self.base_url!r}, model={self.model!r}, dim={self._dim})"

    def __enter__(self) -> "OpenAIEncoder":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def dim(self) -> int:
        """Vector size; a model not in KNOWN_DIMS is asked once, by embedding a probe."""
        if self._dim is None:
            self.encode(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [len(texts), dim], each row of length 1 (or 0 for a zero vector)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prepared = [_prepare(text, self.max_chars) for text in texts]
        batches = [prepared[i:i + self.batch_size]
                   for i in range(0, len(prepared), self.batch_size)]
        if len(batches) == 1:
            parts = [self._embed_fitting(batches[0])]
        else:
            pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(batches)),
                                      thread_name_prefix="embed")
            try:
                parts = list(pool.map(self._embed_fitting, batches))
            finally:  # after a failure, batches not started yet are not sent
                pool.shutdown(wait=True, cancel_futures=True)
        return _normalise(np.concatenate(parts))

    # --- one batch -------------------------------------------------------------------------
    def _embed_fitting(self, texts: list[str], shortenings: int = 0) -> np.ndarray:
        """Embed `texts`, splitting the batch or shortening a text the server finds too long."""
        try:
            return self._embed_retried(texts)
        except _TooLong as exc:
            if len(texts) > 1:
                half = len(texts) // 2
                return np.concatenate([self._embed_fitting(texts[:half], shortenings),
                                       self._embed_fitting(texts[half:], shortenings)])
            if shortenings >= _MAX_SHORTENINGS or len(texts[0]) < 2:
                raise EmbeddingError(
                    f"embeddings API at {self.base_url} still finds a text too long after "
                    f"cutting it to {len(texts[0])} characters: {exc}") from None
            shorter = texts[0][:len(texts[0]) // 2]
            log.info("embeddings API refused a %d-character text as too long; retrying with %d",
                     len(texts[0]), len(shorter))
            return self._embed_fitting([shorter], shortenings + 1)

    def _embed_retried(self, texts: list[str]) -> np.ndarray:
        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, (_Transient, httpx.TransportError))),
            stop=stop_after_attempt(self.max_attempts),
            wait=_WaitRetryAfter(wait_exponential_jitter(multiplier=self.backoff,
                                                         max=self.max_wait,
                                                         jitter=self.backoff),
                                 cap=self.max_wait),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._embed_once, texts)
        except (_Transient, httpx.TransportError) as exc:
            raise EmbeddingError(
                f"embeddings API at {self.base_url} failed {self.max_attempts} times; last: "
                f"{_describe(exc)}") from None

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("embeddings API at %s: %s; attempt %d of %d, retrying in %.1f s",
                    self.base_url, _describe(exc), state.attempt_number, self.max_attempts, wait)

    def _embed_once(self, texts: list[str]) -> np.ndarray:
        body: dict[str, Any] = {"model": self.model, "input": texts}
        if self._dimensions is not None:
            body["dimensions"] = self._dimensions
        response = self._http.post(f"{self.base_url}/embeddings", json=body)
        status = response.status_code
        if status == 200:
            return self._vectors(response, len(texts))
        if status in (401, 403):  # the body may quote the key: it is not repeated here
            raise EmbeddingError(
                f"embeddings API at {self.base_url} refused the API key (HTTP {status})")
        detail = self._redact(_error_detail(response))
        if status in (408, 429) or status >= 500:
            raise _Transient(status, detail, _retry_after(response.headers))
        if status in _TOO_LONG_STATUS and _TOO_LONG.search(detail or response.reason_phrase):
            raise _TooLong(f"HTTP {status}: {detail}")
        raise EmbeddingError(f"embeddings API at {self.base_url} answered HTTP {status}: "
                             f"{detail or response.reason_phrase}")

    def _redact(self, text: str) -> str:
        """`text` with the key cut out, should a server quote it in an error."""
        key = self._http.headers.get("authorization", "").removeprefix("Bearer ")
        return Scrubber([key])(text)

    def _vectors(self, response: httpx.Response, n: int) -> np.ndarray:
        """The reply's vectors in input order; anything off the protocol is an error."""
        try:
            data = response.json()["data"]
            order = [int(item["index"]) for item in data]
            rows = [item["embedding"] for item in data]
            if sorted(order) != list(range(n)):
                raise ValueError(f"indexes {sorted(order)[:5]}... do not match {n} inputs")
            matrix = np.empty((n, len(rows[0])), dtype=np.float32)
            matrix[order] = np.asarray(rows, dtype=np.float32)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise EmbeddingError(
                f"embeddings API at {self.base_url} sent a reply that is not an embeddings "
                f"list: {type(exc).__name__}: {str(exc)[:200]}") from None
        if not np.isfinite(matrix).all():
            raise EmbeddingError(f"embeddings API at {self.base_url} sent NaN or infinity")
        with self._dim_lock:
            if self._dim is None:
                self._dim = matrix.shape[1]
        if matrix.shape[1] != self._dim:
            raise EmbeddingError(f"embeddings API at {self.base_url} sent {matrix.shape[1]}-d "
                                 f"vectors for model {self.model}, expected {self._dim}")
        return matrix


def _prepare(text: str, max_chars: int) -> str:
    # The API refuses empty strings; a lone space embeds as "nothing here".
    return text[:max_chars] if text.strip() else " "


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asks to wait: retry-after-ms, Retry-After seconds or date."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_detail(response: httpx.Response) -> str:
    """The server's error message (OpenAI's {"error": {"message"}} or plain text), short."""
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = response.text
    return " ".join(str(message or "").split())[:300]


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, httpx.TransportError):
        return f"{type(exc).__name__}: {exc}"
    return str(exc)
