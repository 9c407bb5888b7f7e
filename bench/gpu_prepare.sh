#!/usr/bin/env bash
# Run HERE (PyPI reachable) before bench/gpu.sh goes to a GPU machine that can reach
# nothing: it fills .gpu/ (git-ignored, carried with `carry: [".gpu"]`, < 64 MiB) with
#   wheels/  what the worker needs and the machine's image lacks, for its Python 3.12
#   minilm/  all-MiniLM-L6-v2 with its weights in float16 (45 MB instead of 90: the
#            fp32 package does not fit the carry limit; the GPU runs fp16 anyway)
# The image already has torch (CUDA), sentence-transformers, numpy, onnxruntime,
# tokenizers, httpx, grpcio, protobuf, portalocker, pytest and hypothesis. The tests'
# shared fixtures import psycopg, starlette and uvicorn, so `pytest -k cuda` needs them too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/minilm
# The versions this checkout's .venv runs, so the GPU machine runs the same code paths.
NAMES="tree-sitter tree-sitter-python tree-sitter-javascript tree-sitter-typescript gitpython
       gitdb smmap qdrant-client pydantic pydantic-core annotated-types typing-inspection
       tenacity snowballstemmer redis psycopg psycopg-binary starlette uvicorn h11"
WHEELS=($($PY -c 'import sys, importlib.metadata as m
print(" ".join(f"{n}=={m.version(n)}" for n in sys.argv[1:]))' $NAMES))
for wheel in "${WHEELS[@]}"; do
  platforms=()
  for n in 17 27 28 31 34 39; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
  $PY -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp "${platforms[@]}" --platform manylinux2014_x86_64 \
      -d .gpu/wheels "$wheel"
done
$PY - <<'PY'
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from edge.embed.minilm import model_dir

source, target = model_dir(), Path(".gpu/minilm")
for item in source.iterdir():
    if item.is_file() and item.suffix not in (".safetensors", ".bin", ".onnx", ".h5", ".msgpack"):
        shutil.copy(item, target / item.name)
    elif item.is_dir() and item.name not in ("onnx", "openvino"):
        shutil.copytree(item, target / item.name)
weights = {k: v.half() if v.is_floating_point() else v
           for k, v in load_file(source / "model.safetensors").items()}
save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
PY
du -sh .gpu/wheels .gpu/minilm
