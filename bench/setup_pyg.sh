#!/usr/bin/env bash
# The reference Node2Vec for bench/node2vec_bench.py, kept apart from the product:
# torch-geometric 2.6.1 + torch-cluster 1.6.3 in bench/.venv-pyg. torch-geometric 2.8
# demands pyg-lib (not on PyPI); 2.6.1 falls back to torch-cluster's random walk, whose
# source build takes ~30 min on 2 cores, so the prebuilt wheel in ../shared/wheels is used.
# torch is pinned: a bare `torch` pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")"

TORCH_VERSION=2.13.0
PYG_VERSION=2.6.1
WHEELS="${PYG_WHEELS:-$(cd .. && pwd)/../shared/wheels}"

[ -x .venv-pyg/bin/python ] || python3 -m venv .venv-pyg
.venv-pyg/bin/pip install --quiet "torch==${TORCH_VERSION}"
.venv-pyg/bin/pip install --quiet "${WHEELS}"/torch_cluster-1.6.3-*.whl \
    "torch-geometric==${PYG_VERSION}" numpy

.venv-pyg/bin/python - <<'PY'
import torch, torch_cluster, torch_geometric
from torch_geometric.nn import Node2Vec
Node2Vec(torch.tensor([[0, 1], [1, 0]]), embedding_dim=8, walk_length=4, context_size=2)
print("torch", torch.__version__, "torch-cluster", torch_cluster.__version__,
      "torch-geometric", torch_geometric.__version__)
PY
