# The two commands: `make run` and `make test` (plus `make demo` to see a whole job).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch goes in first, pinned: an open range would pull the newest CUDA build (GBs).
# A GPU machine gets its CUDA build from setup_edge.sh instead.
TORCH ?= torch==2.13.0

.PHONY: run worker demo test bench clean

# requirements-cloud.txt builds deploy/query-model: a changed builder reinstalls the model.
QUERY_MODEL := $(wildcard deploy/query-model/pyproject.toml deploy/query-model/*.py)

$(STAMP): requirements-base.txt requirements-cloud.txt requirements-edge.txt requirements-dev.txt \
		$(QUERY_MODEL)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c 'import torch' 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

# Variables given to make (`make run ALLOW_LOCAL_REPOS=true`) reach the app's environment.
run: $(STAMP)  ## MODE=ALL: control plane on HOST:PORT (127.0.0.1:8000) and one worker
	$(PY) run.py

worker: $(STAMP)  ## one edge worker (MODE=EDGE), for a control plane elsewhere
	$(PY) -m edge worker

demo: $(STAMP)  ## ingest an installed package's source offline, then show graph and vectors
	$(PY) -m edge demo

test: $(STAMP)  ## every test; installs the Debian servers they start when missing
	bash tests/system_packages.sh
	$(PY) -m pytest

bench: $(STAMP)  ## the control-plane benchmarks; figures go to docs/BENCHMARKS.md
	$(PY) bench/ingest_latency.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
