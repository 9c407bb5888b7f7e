"""all-MiniLM-L6-v2 exported for the control plane, which runs it without torch.

`export_onnx(DIR)` writes the files `shared.query_encoder` reads (model.onnx
and its weights model.onnx.data, tokenizer.json, encoder.json) from the worker's
installed weights.
It is the converter the control plane's install runs, deploy/query-model/
minilm_onnx.py (numpy + onnx, no torch), so there is one way to make the model:
the folder written here equals the installed package's model/ folder. That file
is loaded by path because deploy/query-model is a build folder, not a package
the worker installs.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from edge.embed.chunks import WINDOW_TOKENS
from edge.embed.minilm import MODEL_NAME, EncoderError, model_dir

BUILDER = Path(__file__).resolve().parents[2] / "deploy" / "query-model" / "minilm_onnx.py"


def export_onnx(path: str | Path) -> Path:
    """Write the export into directory `path` (created if needed); the model file's path.

    A path ending in ".onnx" names the model file itself; the others go beside it.
    """
    builder = load_builder()
    try:
        return builder.build(model_dir(), path, name=MODEL_NAME, window=WINDOW_TOKENS)
    except builder.BuildError as exc:
        raise EncoderError(f"ONNX export failed: {exc}") from exc


def load_builder():
    """deploy/query-model/minilm_onnx.py as a module."""
    spec = importlib.util.spec_from_file_location("minilm_onnx", BUILDER)
    if spec is None or not BUILDER.is_file():
        raise EncoderError(f"{BUILDER} is missing: the export needs the repository's deploy/")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
