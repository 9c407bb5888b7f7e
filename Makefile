# The two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch goes in first, pinned: an open range would pull the newest CUDA build (GBs).
# A GPU machine gets its CUDA build from setup_edge.sh instead.
TORCH ?= torch==2.13.0

.PHONY: run worker test bench clean

$(STAMP): requirements-base.txt requirements-cloud.txt requirements-edge.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c 'import torch' 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)  ## the control plane on HOST:PORT (default 127.0.0.1:8000)
	$(PY) -m cloud

worker: $(STAMP)  ## one edge worker
	$(PY) -m edge worker

test: $(STAMP)  ## every test (needs redis-server and chromium: see .ci/run)
	$(PY) -m pytest

bench: $(STAMP)  ## the control-plane benchmarks; figures go to docs/BENCHMARKS.md
	$(PY) bench/ingest_latency.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
