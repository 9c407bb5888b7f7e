"""Search queries to vectors on the control plane, with the worker's model and no torch.

The model arrives as an installed package: `pip install -r requirements-cloud.txt`
builds deploy/query-model, whose build converts the worker's all-MiniLM-L6-v2
weights to ONNX without torch, and `default_model_dir()` finds its folder. Any
folder of the same files works too (`python -m edge export-onnx DIR` writes
one with the same converter): model.onnx run by onnxruntime on the CPU, its
weights in model.onnx.data (memory-mapped: the process peaks ~45 MB lower),
tokenizer.json run by the `tokenizers` library with the same 256-token window and
padding to the longest text, and encoder.json. Mean pooling over the attention
mask and L2 normalisation, as sentence-transformers does them, are numpy here.
Vectors agree with the worker's MiniLMEncoder to cosine >= 0.999, so a query
lands next to the chunks it describes.

Every failure is a QueryEncoderError whose message says what to install: the
control plane answers 503 with it, and its other routes keep working.

Never imports torch, sentence-transformers or onnx (the model package is files
and a path): the control plane's host has 512 MB.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

MODEL_FILE = "model.onnx"
WEIGHTS_SUFFIX = ".data"  # model.onnx.data: the weights beside the graph, mapped, not copied
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "encoder.json"
# Texts per onnxruntime call. Activations grow with batch x window^2 (attention scores)
# and onnxruntime's arena keeps its peak: 32 full-window texts took the process to 643 MB
# (the host has 512), 4 to 248 MB, and 4 are as fast (21.6 against 12.0 full-window
# texts/s, short queries 533 against 613/s; 2 cores, deploy/query-model/measure.py's venv).
BATCH = 4
# The installed package holding the model's files (deploy/query-model).
MODEL_PACKAGE = "neo_alexandria_query_model"
INSTALL_HINT = ("install the query model from the repository root: pip install -r "
                "requirements-cloud.txt (it builds ./deploy/query-model: all-MiniLM-L6-v2 as "
                "ONNX, no torch); to repair it, pip install --force-reinstall ./deploy/query-model")


class QueryEncoderError(RuntimeError):
    """The model is missing, incomplete or unusable; the message says what to install."""


def default_model_dir() -> Path:
    """The installed query-model package's folder, which QueryEncoder opens."""
    try:
        package = importlib.import_module(MODEL_PACKAGE)
    except ImportError:
        raise QueryEncoderError(f"the query model is not installed: {INSTALL_HINT}") from None
    return Path(package.MODEL_DIR)


class QueryEncoder:
    """The control plane's text encoder (same interface as the worker's)."""

    def __init__(self, onnx_path: str | Path, threads: int | None = 1, batch: int = BATCH):
        """`onnx_path`: the model.onnx file or the directory holding it.

        `threads`: onnxruntime's intra-op threads (None: one per core). One by
        default: a short query is answered faster by one thread than by a pool
        that must wake (6.6 ms against 12.6 ms p50 on 2 cores), and the control
        plane's host shares its CPU. `batch`: texts per run (see BATCH; the
        worker, with memory to spare, runs more).
        """
        self.batch = batch
        path = Path(onnx_path)
        model_file = path if path.suffix == ".onnx" else path / MODEL_FILE
        folder = model_file.parent
        config = _read_config(folder / CONFIG_FILE)
        self.model: str = config["model"]
        self.dim: int = int(config["dim"])
        self.window: int = int(config["window"])
        self._tokenizer = load_tokenizer(folder / TOKENIZER_FILE, self.window)
        self._session = _load_session(model_file, threads)
        self._inputs = [i.name for i in self._session.get_inputs()]

    def encode(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised float32 row per text, in the order given."""
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch):
            vectors[start:start + self.batch] = self._encode_batch(texts[start:start + self.batch])
        return vectors

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        try:
            (tokens,) = self._session.run(None, {name: feeds[name] for name in self._inputs})
        except Exception as exc:  # onnxruntime raises its own unexported exception types
            raise QueryEncoderError(f"the ONNX model failed to run: {exc}; {INSTALL_HINT}") from exc
        mask = feeds["attention_mask"][:, :, None].astype(np.float32)
        pooled = (tokens * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise QueryEncoderError(f"{path} is missing: {INSTALL_HINT}") from None
    except (OSError, ValueError) as exc:
        raise QueryEncoderError(f"cannot read {path}: {exc}; {INSTALL_HINT}") from exc
    missing = {"model", "dim", "window"} - set(config if isinstance(config, dict) else ())
    if missing:
        raise QueryEncoderError(f"{path} lacks {', '.join(sorted(missing))}; {INSTALL_HINT}")
    return config


def load_tokenizer(path: Path, window: int):
    """tokenizer.json set to `window` tokens and padding to the longest text (the
    sentence-transformers recipe, which the model builder also writes into the file)."""
    from tokenizers import Tokenizer
    if not path.is_file():
        raise QueryEncoderError(f"{path} is missing: {INSTALL_HINT}")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on a bad file
        raise QueryEncoderError(f"cannot read {path}: {exc}; {INSTALL_HINT}") from exc
    # Set here too, not only trusted from the file: the model's own tokenizer.json says 128.
    tokenizer.enable_truncation(window)
    pad = tokenizer.padding or {}
    tokenizer.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"),
                             pad_type_id=pad.get("pad_type_id", 0))
    return tokenizer


def _load_session(model_file: Path, threads: int | None):
    import onnxruntime
    for needed in (model_file, model_file.with_name(model_file.name + WEIGHTS_SUFFIX)):
        if not needed.is_file():
            raise QueryEncoderError(f"{needed} is missing: {INSTALL_HINT}")
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(str(model_file), options,
                                            providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's load errors share no public base class
        raise QueryEncoderError(f"cannot load {model_file}: {exc}; {INSTALL_HINT}") from exc
