"""all-MiniLM-L6-v2 exported for the control plane, which runs it without torch.

`export_onnx(DIR)` writes three files, all that `shared.query_encoder` reads:
- model.onnx: the transformer alone, fp32, inputs input_ids / attention_mask /
  token_type_ids (int64, [batch, sequence], both axes dynamic), output
  token_embeddings (float32, [batch, sequence, 384]). Pooling and normalisation
  stay out of the graph: they are a few numpy lines on the other side and keep
  the graph the plain BERT encoder any runtime knows.
- tokenizer.json: the model's own tokenizer, set to the sentence-transformers
  window (256 tokens) and padding to the longest text, instead of the 128 /
  fixed-128 the model ships with.
- encoder.json: model name, width, window, pooling, for the reader to check.

The graph is traced by torch's TorchScript exporter: the newer torch.export one
needs onnxscript, which the worker does not otherwise install. The trace runs on
a padded batch, so the attention-mask path is the one recorded; tests and
bench/text_embed.py check the result against the torch model (cosine >= 0.999).
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch

from edge.embed.chunks import WINDOW_TOKENS
from edge.embed.minilm import DIM, MODEL_NAME, EncoderError, load_sentence_transformer, model_dir
from shared.query_encoder import CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE, load_tokenizer

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "token_embeddings"
OPSET = 17
# Two texts of different lengths: the traced batch has padding to mask.
TRACE_TEXTS = ("def add(a, b):\n    return a + b", "class Queue:\n    \"\"\"Jobs waiting for a worker.\"\"\"")


def export_onnx(path: str | Path) -> Path:
    """Write the export into directory `path` (created if needed); the model file's path.

    A path ending in ".onnx" names the model file itself; the other two files go beside it.
    """
    path = Path(path)
    model_file = path if path.suffix == ".onnx" else path / MODEL_FILE
    model_file.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(model_dir() / TOKENIZER_FILE, WINDOW_TOKENS)
    _export_graph(model_file, tokenizer)
    tokenizer.save(str(model_file.parent / TOKENIZER_FILE))
    config = {"model": MODEL_NAME, "dim": DIM, "window": WINDOW_TOKENS, "pooling": "mean",
              "normalize": True}
    (model_file.parent / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return model_file


class _TokenEmbeddings(torch.nn.Module):
    """The transformer with positional inputs and one tensor out, as the exporter wants."""

    def __init__(self, transformer: torch.nn.Module):
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state


def _export_graph(model_file: Path, tokenizer) -> None:
    transformer = load_sentence_transformer("cpu")[0].auto_model
    encoded = tokenizer.encode_batch(list(TRACE_TEXTS))
    sample = tuple(torch.tensor([getattr(e, field) for e in encoded], dtype=torch.long)
                   for field in ("ids", "attention_mask", "type_ids"))
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUTS, OUTPUT)}
    partial = model_file.with_name(model_file.name + ".partial")
    try:
        with warnings.catch_warnings():
            # The tracer warns about shape checks it folds (is_causal, mask padding): both
            # are constant for an encoder whose mask matches its input, whatever the shape.
            warnings.simplefilter("ignore")
            torch.onnx.export(_TokenEmbeddings(transformer).eval(), sample, str(partial),
                              dynamo=False, input_names=list(INPUTS), output_names=[OUTPUT],
                              dynamic_axes=axes, opset_version=OPSET)
        os.replace(partial, model_file)  # a reader never sees half a model
    except (RuntimeError, OSError, ValueError) as exc:  # torch's export errors are RuntimeErrors
        partial.unlink(missing_ok=True)
        raise EncoderError(f"ONNX export failed: {exc}") from exc
