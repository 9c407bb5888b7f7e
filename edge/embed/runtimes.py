"""Which engine and precision run all-MiniLM-L6-v2 on the worker (`TEXT_RUNTIME`).

    torch       sentence-transformers; float32 on a CPU, float16 on CUDA
    torch-bf16  torch in bfloat16: twice as fast on CPUs with AMX or AVX512-BF16,
                slower on the others
    onnx        onnxruntime, float32, all graph optimisations (fused attention and
                layer norms), one thread per core the worker may use
    onnx-int8   onnxruntime with the MatMul weights quantised to int8 (dynamic
                quantisation; VNNI makes it fast)
    auto        CUDA: torch (float16). A CPU: the fastest of the above whose vectors
                hold the quality bar (cosine to torch float32 >= 0.999 on average,
                >= 0.99 at worst, over real chunks; docs/BENCHMARKS.md): torch-bf16
                where the CPU has AMX or AVX512-BF16, else onnx. onnx-int8 is the
                fastest everywhere but misses the bar (cosine 0.995 on average).

Every runtime's vectors carry its name (`TextEncoder.runtime`, stored with each vector),
so a later sync can tell vectors made another way apart. The ONNX files are made once
from the installed weights, offline, into DATA_DIR/models/ (the same converter as the
control plane's query model; about 2 s, and 2 s more for int8), and reused.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np

from edge.embed.minilm import CPU_BATCH, DIM, MODEL_NAME, BatchProgress, EncoderError
from shared.settings import TextRuntime

log = logging.getLogger("edge.embed")

# CPU features that make torch's bfloat16 matrix products fast (oneDNN uses them).
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
ONNX_FOLDER = "all-MiniLM-L6-v2-onnx"
INT8_FOLDER = "all-MiniLM-L6-v2-onnx-int8"


def open_text_encoder(runtime: TextRuntime, device: str | None, data_dir: Path):
    """The encoder `runtime` names (AUTO resolved for this machine)."""
    import torch
    on_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    if runtime is TextRuntime.AUTO:
        runtime = TextRuntime.TORCH if on_cuda else cpu_default()
    if runtime in (TextRuntime.TORCH, TextRuntime.TORCH_BF16):
        from edge.embed.minilm import MiniLMEncoder
        dtype = "bfloat16" if runtime is TextRuntime.TORCH_BF16 else None
        return MiniLMEncoder(device=device, dtype=dtype)
    if on_cuda and device is not None:
        raise EncoderError(f"TEXT_RUNTIME={runtime.value} runs on the CPU; with DEVICE=CUDA "
                           "use TEXT_RUNTIME=auto or torch")
    folder = onnx_model(data_dir, int8=runtime is TextRuntime.ONNX_INT8)
    return OnnxTextEncoder(folder, runtime.value.lower())


def cpu_default(flags: set[str] | None = None) -> TextRuntime:
    """What `auto` runs on this CPU (measured: docs/BENCHMARKS.md, issue 14)."""
    flags = cpu_flags() if flags is None else flags
    return TextRuntime.TORCH_BF16 if flags.intersection(BF16_FLAGS) else TextRuntime.ONNX


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def onnx_model(data_dir: Path, int8: bool = False) -> Path:
    """The folder of the ONNX export (or its int8 copy) under data_dir/models, made if missing."""
    models = Path(data_dir) / "models"
    plain = models / ONNX_FOLDER
    if not (plain / "encoder.json").is_file():
        from edge.embed.onnx_export import export_onnx
        _build(plain, lambda target: export_onnx(target))
    if not int8:
        return plain
    quantized = models / INT8_FOLDER
    if not (quantized / "encoder.json").is_file():
        _build(quantized, lambda target: _quantize(plain, target))
    return quantized


def _build(folder: Path, make) -> None:
    """Make `folder` in a sibling and rename it into place: a crash leaves no half model."""
    staging = folder.with_name(folder.name + f".partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        make(staging)
        log.info("text model: wrote %s", folder)
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _quantize(plain: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from shared.query_encoder import CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE
    quantize_dynamic(str(plain / MODEL_FILE), str(target / MODEL_FILE),
                     weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"],
                     use_external_data_format=True)
    for name in (TOKENIZER_FILE, CONFIG_FILE):
        shutil.copy(plain / name, target / name)


def usable_cores() -> int:
    """The cores this process may run on (a service's CPU affinity counts)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class OnnxTextEncoder:
    """The worker's text encoder on onnxruntime (see `edge.embed.chunks.TextEncoder`)."""
    model = MODEL_NAME
    dim = DIM

    def __init__(self, folder: Path, runtime: str, threads: int | None = None,
                 batch_size: int = CPU_BATCH):
        from shared.query_encoder import QueryEncoder, QueryEncoderError
        self.runtime = runtime
        self.batch_size = batch_size
        try:
            self._encoder = QueryEncoder(folder, threads=threads or usable_cores(),
                                         batch=batch_size)
        except QueryEncoderError as exc:
            raise EncoderError(f"cannot load the ONNX text model in {folder}: {exc}") from exc

    def encode(self, texts: list[str], on_batch: BatchProgress | None = None) -> np.ndarray:
        """One L2-normalised float32 row per text, in the order given; batches of
        similar length, longest first, so padding costs little."""
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            picked = order[start:start + self.batch_size]
            vectors[picked] = self._encoder.encode([texts[i] for i in picked])
            if on_batch is not None:
                on_batch(start + len(picked), len(texts))
        return vectors
