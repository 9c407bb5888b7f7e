"""all-MiniLM-L6-v2 as ONNX without torch: the model folder in, three files out.

`build(SOURCE, TARGET)` reads a sentence-transformers folder (model.safetensors,
config.json, tokenizer.json, sentence_bert_config.json, 1_Pooling/, modules.json)
and writes what `shared.query_encoder` reads:
- model.onnx: the BERT encoder, fp32, inputs input_ids / attention_mask /
  token_type_ids (int64, [batch, sequence], both axes dynamic), output
  token_embeddings (float32, [batch, sequence, hidden]). Pooling and
  normalisation stay out of the graph: a few numpy lines on the reading side.
  Its weights are ONNX external data in model.onnx.data beside it.
- tokenizer.json: the model's own, set to the sentence-transformers window (256
  word pieces, not the 128 it ships with) and padding to the longest text.
- encoder.json: model name, width, window, pooling, for the reader to check.

The graph is written op by op with onnx's helper API from the weights, which
are read with numpy (safetensors is an 8-byte header length, a JSON header,
then raw little-endian arrays). No torch: the control plane's install builds
it (deploy/query-model/backend.py) and the worker's `python -m edge
export-onnx` calls the same function. The layers are the Hugging Face BERT
ones: embeddings summed then LayerNorm; per layer self-attention with the
padding mask as an additive bias, residual + LayerNorm, erf GELU feed-forward,
residual + LayerNorm. Needs numpy and onnx only.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_FILE = "model.onnx"
WEIGHTS_SUFFIX = ".data"  # model.onnx.data: the weights, which model.onnx names
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "encoder.json"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "token_embeddings"
# LayerNormalization is an ONNX op from opset 17; IR 8 is what opset 17 needs, and
# onnxruntime 1.14+ loads it (a newer onnx would stamp an IR older runtimes refuse).
OPSET = 17
IR_VERSION = 8
SAFETENSORS_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}


class BuildError(RuntimeError):
    """The model folder is missing, damaged, or not the recipe this builder writes."""


def build(source: str | Path, target: str | Path, name: str = MODEL_NAME,
          window: int | None = None) -> Path:
    """Write model.onnx (+ model.onnx.data), tokenizer.json and encoder.json; the
    model file's path.

    `target` is a folder (created if needed), or a path ending in ".onnx" naming
    the model file, the others going beside it. `window`: word pieces per
    text; None takes the model's own (sentence_bert_config.json).
    """
    source, target = Path(source), Path(target)
    model_file = target if target.suffix == ".onnx" else target / MODEL_FILE
    model_file.parent.mkdir(parents=True, exist_ok=True)
    config = _read_json(source / "config.json")
    window = window or int(_read_json(source / "sentence_bert_config.json")["max_seq_length"])
    _check_recipe(source, config, window)
    tokenizer = _windowed_tokenizer(_read_json(source / TOKENIZER_FILE), window)
    _write_model(model_file, encoder_graph(read_safetensors(source / "model.safetensors"), config))
    _write_atomic(model_file.parent / TOKENIZER_FILE, json.dumps(tokenizer).encode())
    summary = {"model": name, "dim": int(config["hidden_size"]), "window": window,
               "pooling": "mean", "normalize": True}
    _write_atomic(model_file.parent / CONFIG_FILE, (json.dumps(summary, indent=2) + "\n").encode())
    return model_file


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file, as read-only numpy views of the mapped file
    (mapped, not read: the build's peak memory is the graph, not a second copy of it)."""
    try:
        data = np.memmap(path, dtype=np.uint8, mode="r")
        (size,) = struct.unpack("<Q", data[:8].tobytes())
        header = json.loads(data[8:8 + size].tobytes())
        body = data[8 + size:]
        return {key: body[info["data_offsets"][0]:info["data_offsets"][1]]
                .view(SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"])
                for key, info in header.items() if key != "__metadata__"}
    except (OSError, struct.error, ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"cannot read {path}: {exc!r}") from exc


class _Graph:
    """Nodes and weights being collected; each op's output gets a fresh name."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = weights
        self.nodes: list = []
        self.initializers: dict = {}

    def weight(self, key: str, transpose: bool = False) -> str:
        """A weight of the checkpoint (a Linear's stored transposed, for MatMul)."""
        from onnx import numpy_helper
        name = key + (".T" if transpose else "")
        if name not in self.initializers:
            array = self.weights[key].astype(np.float32, copy=False)
            array = np.ascontiguousarray(array.T if transpose else array)
            self.initializers[name] = numpy_helper.from_array(array, name)
        return name

    def const(self, name: str, value, dtype=np.float32) -> str:
        from onnx import numpy_helper
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(np.array(value, dtype=dtype), name)
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        from onnx import helper
        out = out or f"{op_type}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def linear(self, x: str, prefix: str) -> str:
        product = self.op("MatMul", x, self.weight(prefix + ".weight", transpose=True))
        return self.op("Add", product, self.weight(prefix + ".bias"))

    def layer_norm(self, x: str, prefix: str, eps: float) -> str:
        return self.op("LayerNormalization", x, self.weight(prefix + ".weight"),
                       self.weight(prefix + ".bias"), axis=-1, epsilon=eps)


def encoder_graph(weights: dict[str, np.ndarray], config: dict):
    """The BERT encoder as an onnx ModelProto (`_write_model` checks it)."""
    from onnx import TensorProto, helper

    g = _Graph(weights)
    eps = float(config["layer_norm_eps"])
    try:
        hidden = _embeddings(g, eps)
        bias = _mask_bias(g)
        for layer in range(int(config["num_hidden_layers"])):
            hidden = _layer(g, hidden, bias, f"encoder.layer.{layer}", config, eps,
                            out=OUTPUT if layer == int(config["num_hidden_layers"]) - 1 else None)
    except KeyError as exc:
        raise BuildError(f"the checkpoint has no weight {exc}: not a BERT encoder") from exc
    axes = ["batch", "sequence"]
    graph = helper.make_graph(
        g.nodes, "minilm_encoder",
        [helper.make_tensor_value_info(name, TensorProto.INT64, axes) for name in INPUTS],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT,
                                       axes + [int(config["hidden_size"])])],
        list(g.initializers.values()))
    model = helper.make_model(graph, producer_name="neo-alexandria",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model


def _embeddings(g: _Graph, eps: float) -> str:
    # Positions 0..sequence-1: the first rows of the position table.
    length = g.op("Shape", "input_ids", start=1, end=2)
    positions = g.op("Slice", g.weight("embeddings.position_embeddings.weight"),
                     g.const("zero", [0], np.int64), length, g.const("axis0", [0], np.int64))
    words = g.op("Gather", g.weight("embeddings.word_embeddings.weight"), "input_ids")
    types = g.op("Gather", g.weight("embeddings.token_type_embeddings.weight"), "token_type_ids")
    summed = g.op("Add", g.op("Add", words, types), positions)
    return g.layer_norm(summed, "embeddings.LayerNorm", eps)


def _mask_bias(g: _Graph) -> str:
    """[batch, 1, 1, sequence]: 0 where a token is real, the lowest float where it is padding
    (what transformers adds to the attention scores), so padding gets no attention."""
    mask = g.op("Cast", "attention_mask", to=1)  # 1: FLOAT
    padding = g.op("Sub", g.const("one", 1.0), mask)
    bias = g.op("Mul", padding, g.const("lowest", np.finfo(np.float32).min))
    return g.op("Unsqueeze", bias, g.const("axes12", [1, 2], np.int64))


def _layer(g: _Graph, x: str, bias: str, prefix: str, config: dict, eps: float,
           out: str | None) -> str:
    attended = g.layer_norm(g.op("Add", _attention(g, x, bias, prefix, config), x),
                            prefix + ".attention.output.LayerNorm", eps)
    inner = _gelu(g, g.linear(attended, prefix + ".intermediate.dense"))
    summed = g.op("Add", g.linear(inner, prefix + ".output.dense"), attended)
    normed = g.layer_norm(summed, prefix + ".output.LayerNorm", eps)
    return g.op("Identity", normed, out=out) if out else normed


def _attention(g: _Graph, x: str, bias: str, prefix: str, config: dict) -> str:
    heads = int(config["num_attention_heads"])
    size = int(config["hidden_size"]) // heads
    split = g.const("split_heads", [0, 0, heads, size], np.int64)  # 0: keep that dimension

    def projected(part: str, perm: list[int]) -> str:
        flat = g.linear(x, f"{prefix}.attention.self.{part}")
        return g.op("Transpose", g.op("Reshape", flat, split), perm=perm)

    query = projected("query", [0, 2, 1, 3])  # [batch, heads, sequence, size]
    key = projected("key", [0, 2, 3, 1])  # [batch, heads, size, sequence]
    value = projected("value", [0, 2, 1, 3])
    scores = g.op("Div", g.op("MatMul", query, key), g.const(f"sqrt_{size}", math.sqrt(size)))
    weights = g.op("Softmax", g.op("Add", scores, bias), axis=-1)
    context = g.op("Transpose", g.op("MatMul", weights, value), perm=[0, 2, 1, 3])
    merged = g.op("Reshape", context, g.const("merge_heads", [0, 0, heads * size], np.int64))
    return g.linear(merged, f"{prefix}.attention.output.dense")


def _gelu(g: _Graph, x: str) -> str:
    """Exact (erf) GELU, x * (1 + erf(x / sqrt 2)) / 2, in the order onnxruntime fuses."""
    erf = g.op("Erf", g.op("Div", x, g.const("sqrt_2", math.sqrt(2.0))))
    return g.op("Mul", g.op("Mul", x, g.op("Add", erf, g.const("one", 1.0))),
                g.const("half", 0.5))


def _windowed_tokenizer(spec: dict, window: int) -> dict:
    """tokenizer.json cut at `window` word pieces, padded to the longest text of a batch."""
    padding = spec.get("padding") or {}
    spec["truncation"] = {"direction": "Right", "max_length": window,
                          "strategy": "LongestFirst", "stride": 0}
    spec["padding"] = {"strategy": "BatchLongest", "direction": "Right",
                       "pad_to_multiple_of": None, "pad_id": padding.get("pad_id", 0),
                       "pad_type_id": padding.get("pad_type_id", 0),
                       "pad_token": padding.get("pad_token", "[PAD]")}
    return spec


def _check_recipe(source: Path, config: dict, window: int) -> None:
    """Only the recipe this builder reproduces: BERT, erf GELU, mean pooling, normalised."""
    pooling = _read_json(source / "1_Pooling" / "config.json")
    modules = [m.get("type", "") for m in _read_json(source / "modules.json")]
    problems = [
        config.get("model_type") != "bert" and f"model_type {config.get('model_type')!r}",
        config.get("hidden_act") != "gelu" and f"hidden_act {config.get('hidden_act')!r}",
        config.get("position_embedding_type", "absolute") != "absolute" and "relative positions",
        not pooling.get("pooling_mode_mean_tokens") and "pooling other than mean",
        not any(m.endswith("Normalize") for m in modules) and "no Normalize module",
        not 0 < window <= int(config.get("max_position_embeddings", 0)) and f"window {window}",
    ]
    problems = [p for p in problems if p]
    if problems:
        raise BuildError(f"{source} is not a mean-pooled BERT encoder: {', '.join(problems)}")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuildError(f"cannot read {path}: {exc}") from exc


def _write_model(model_file: Path, model) -> None:
    """Save the graph and its weights (a second file beside it), check them with onnx's
    checker and shape inference, then move both into place.

    External weights are memory-mapped by onnxruntime rather than parsed into a
    protobuf and copied: loading peaks ~90 MB lower and a served process ~45 MB lower
    (2 cores, onnxruntime 1.32), which the control plane's 512 MB host needs."""
    import onnx

    weights = model_file.with_name(model_file.name + WEIGHTS_SUFFIX)
    scratch = Path(tempfile.mkdtemp(prefix=".partial-", dir=model_file.parent))
    try:
        staged = scratch / model_file.name
        onnx.save_model(model, str(staged), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=weights.name)
        del model
        onnx.checker.check_model(str(staged), full_check=True)
        for path in (scratch / weights.name, staged):  # the graph last: it names the weights
            path.chmod(0o644)
            os.replace(path, model_file.parent / path.name)
    except (OSError, ValueError, onnx.checker.ValidationError) as exc:
        raise BuildError(f"cannot write a valid {model_file}: {exc}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write beside, then rename: a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise BuildError(f"cannot write {path}: {exc}") from exc
