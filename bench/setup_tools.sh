#!/usr/bin/env bash
# Reference tools for bench/accuracy.py and bench/speed.py, kept apart from the
# product: grimp in bench/.venv, dependency-cruiser (+ the TypeScript compiler
# it parses TS with; it accepts typescript <7) in bench/node_modules; jedi in
# bench/.venv too, the call-graph reference of bench/calls.py.
# Versions are pinned so figures can be reproduced. Needs PyPI and npm once.
set -euo pipefail
cd "$(dirname "$0")"

GRIMP_VERSION=3.19
JEDI_VERSION=0.20.1
DEPCRUISE_VERSION=17.4.3
TYPESCRIPT_VERSION=5.9.3

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet "grimp==${GRIMP_VERSION}" "jedi==${JEDI_VERSION}"

# --no-save: no package.json/lock in bench/; the pins above are the record.
npm install --no-save --no-audit --no-fund --prefix . \
    "dependency-cruiser@${DEPCRUISE_VERSION}" "typescript@${TYPESCRIPT_VERSION}"

.venv/bin/python -c 'import grimp, importlib.metadata as m; print("grimp", m.version("grimp"))'
.venv/bin/python -c 'import jedi; print("jedi", jedi.__version__)'
node_modules/.bin/depcruise --version | sed 's/^/dependency-cruiser /'
node_modules/.bin/tsc --version

# The HTTP load generator of bench/faults/load.py (C, epoll: it leaves the cores to the
# server it measures). Debian/Ubuntu package.
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
wrk --version 2>&1 | head -1
