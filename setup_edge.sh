#!/usr/bin/env bash
# Set up an edge worker on this machine (Linux; WSL and macOS too). Safe to run again:
# every step checks first and does only what is missing.
#
#   ./setup_edge.sh            .venv, torch for this GPU (or the CPU), requirements-edge.txt,
#                              .env.edge from deploy/env.edge.example, then `python -m edge check`
#   ./setup_edge.sh --cpu      the CPU build of torch even where there is a GPU
#   ./setup_edge.sh --dry-run  print the install commands instead of running them (a missing
#                              .env.edge is still created: it is the file to edit next)
#
# Environment: PYTHON (interpreter for the venv, default python3), NVIDIA_SMI (the nvidia-smi
# to ask; a missing file means no GPU), TORCH_BUILD (cpu, cu126, ...: skip the detection).
set -euo pipefail

TORCH_VERSION=2.13.0
# CUDA builds of torch 2.13.0 on the PyTorch index, oldest first. cu126 is the only one
# with kernels for GPUs older than Turing; CUDA 13 builds need a 13.x driver (R580+).
TORCH_CUDA_BUILDS="12.6 12.9 13.0 13.2"
TORCH_INDEX=https://download.pytorch.org/whl
VENV=.venv
VENV_PY=$VENV/bin/python
ENV_FILE=.env.edge
ENV_TEMPLATE=deploy/env.edge.example

usage() { sed -n '2,13s/^# \{0,1\}//p' "$0"; }
say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

DRY_RUN=0
FORCE_CPU=0

quote() {
  local line
  line=$(printf '%q ' "$@")
  printf '%s' "${line% }"
}

# Anything that installs goes through here, so --dry-run only prints it.
install_step() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '[dry-run] %s\n' "$(quote "$@")"
  else
    printf '+ %s\n' "$(quote "$@")"
    "$@"
  fi
}

# "12.8" -> 1208, for comparisons.
version_number() {
  local major=${1%%.*} minor=${1#*.}
  minor=${minor%%.*}
  echo $((10#$major * 100 + 10#$minor))
}

python_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

check_python() {
  local python=${PYTHON:-python3} version
  command -v "$python" >/dev/null \
    || die "$python not found: install Python 3.10 or newer (Debian/Ubuntu: apt-get install python3 python3-venv) or set PYTHON=/path/to/python3.X"
  version=$(python_version "$python") || die "$python does not run (set PYTHON=/path/to/python3.X)"
  [ "$(version_number "$version")" -ge 310 ] \
    || die "$python is Python $version; torch $TORCH_VERSION needs 3.10 or newer (set PYTHON=/path/to/python3.X)"
  PYTHON=$python
  say "Python: $(command -v "$python") ($version)"
}

ensure_venv() {
  if [ -x "$VENV_PY" ]; then
    local version
    version=$(python_version "$VENV_PY") || die "$VENV_PY does not run: remove $VENV and run again"
    [ "$(version_number "$version")" -ge 310 ] \
      || die "$VENV has Python $version (3.10 or newer needed): remove $VENV and run again"
    say "virtualenv: $VENV exists (Python $version)"
    return
  fi
  "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null \
    || die "$PYTHON cannot make a virtualenv: install the venv module (Debian/Ubuntu: apt-get install python3-venv)"
  say "virtualenv: creating $VENV"
  install_step "$PYTHON" -m venv "$VENV"
  install_step "$VENV_PY" -m pip install --quiet --upgrade pip
}

# Sets GPU_NAME, DRIVER_CUDA and COMPUTE_CAP from nvidia-smi; returns 1 when there is no
# usable NVIDIA GPU (the reason is printed).
detect_gpu() {
  local smi=${NVIDIA_SMI-} out query
  if [ -z "$smi" ]; then
    smi=$(command -v nvidia-smi || true)
    [ -n "$smi" ] || [ ! -x /usr/lib/wsl/lib/nvidia-smi ] || smi=/usr/lib/wsl/lib/nvidia-smi
  fi
  if [ -z "$smi" ] || [ ! -x "$smi" ]; then
    note "no nvidia-smi${smi:+ at $smi}: no NVIDIA GPU (or no NVIDIA driver)"
    return 1
  fi
  if ! out=$("$smi" 2>&1); then
    note "$smi failed: $(printf '%s\n' "$out" | head -n 1)"
    note "is the NVIDIA driver loaded? (a reboot after installing it often fixes this)"
    return 1
  fi
  DRIVER_CUDA=$(printf '%s\n' "$out" | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1)
  if [ -z "$DRIVER_CUDA" ]; then
    note "$smi did not print the driver's CUDA version"
    return 1
  fi
  # GPU 0 is the one the worker uses. Drivers before R510 have no compute_cap field.
  query=$("$smi" --query-gpu=name,compute_cap --format=csv,noheader 2>/dev/null | head -n 1 || true)
  GPU_NAME=${query%,*}
  COMPUTE_CAP=$(printf '%s' "${query##*,}" | tr -d ' ')
  [[ $COMPUTE_CAP =~ ^[0-9]+\.[0-9]+$ ]] || { COMPUTE_CAP=""; GPU_NAME=${query:-NVIDIA GPU}; }
  return 0
}

# The newest CUDA build of torch that this driver runs and that has kernels for this GPU;
# empty when none does.
choose_cuda_build() {
  local driver cc best="" build
  driver=$(version_number "$DRIVER_CUDA")
  cc=$([ -n "$COMPUTE_CAP" ] && version_number "$COMPUTE_CAP" || echo 0)
  for build in $TORCH_CUDA_BUILDS; do
    [ "$(version_number "$build")" -le "$driver" ] && best=$build
  done
  # A 12.0-12.5 driver runs the 12.6 build by CUDA minor-version compatibility (R525+).
  [ -z "$best" ] && [ $((driver / 100)) -eq 12 ] && best=12.6
  # CUDA 13 dropped Maxwell, Pascal and Volta (compute capability below 7.5).
  [ -n "$best" ] && [ "$cc" -gt 0 ] && [ "$cc" -lt 705 ] && best=12.6
  # Blackwell (10.0 and up) has no kernels in cu126; its drivers (12.8+) run cu129.
  [ "$best" = 12.6 ] && [ "$cc" -ge 1000 ] && best=12.9
  echo "$best"
}

choose_torch_build() {
  if [ -n "${TORCH_BUILD:-}" ]; then
    [[ $TORCH_BUILD =~ ^(cpu|cu[0-9]{3})$ ]] || die "TORCH_BUILD must be cpu or cuXYZ (e.g. cu130), got $TORCH_BUILD"
    TORCH_TAG=$TORCH_BUILD
    say "torch build: $TORCH_TAG (from TORCH_BUILD)"
  elif [ "$FORCE_CPU" = 1 ]; then
    TORCH_TAG=cpu
    say "torch build: cpu (--cpu)"
  elif detect_gpu; then
    local build
    build=$(choose_cuda_build)
    note "GPU: $GPU_NAME${COMPUTE_CAP:+ (compute capability $COMPUTE_CAP)}, driver supports CUDA $DRIVER_CUDA"
    if [ -n "$build" ]; then
      TORCH_TAG=cu${build/./}
      say "torch build: $TORCH_TAG (CUDA $build, the newest torch $TORCH_VERSION build for this driver and GPU)"
    else
      TORCH_TAG=cpu
      warn "torch $TORCH_VERSION has no CUDA build for a driver with CUDA $DRIVER_CUDA (12.x or newer needed: update the NVIDIA driver); using the CPU build"
    fi
  else
    TORCH_TAG=cpu
    say "torch build: cpu"
  fi
}

ensure_torch() {
  local want spec have=""
  want=$TORCH_VERSION+$TORCH_TAG
  # macOS wheels carry no local version label.
  [ "$TORCH_TAG" = cpu ] && [ "$(uname -s)" = Darwin ] && want=$TORCH_VERSION
  # The label is pinned too: `torch==2.13.0` alone is satisfied by any 2.13.0 build already there.
  spec="torch==$want"
  [ -x "$VENV_PY" ] && have=$("$VENV_PY" -c \
    'from importlib.metadata import version; print(version("torch"))' 2>/dev/null || true)
  if [ "$have" = "$want" ]; then
    say "torch $have is installed: nothing to do"
    return
  fi
  say "torch: installing $want${have:+ (replacing $have)}"
  install_step "$VENV_PY" -m pip install --index-url "$TORCH_INDEX/$TORCH_TAG" "$spec"
}

ensure_requirements() {
  say "requirements-edge.txt"
  install_step "$VENV_PY" -m pip install --quiet -r requirements-edge.txt
  command -v git >/dev/null || warn "git is not installed: the worker clones with it (apt-get install git)"
}

ensure_env_file() {
  if [ -e "$ENV_FILE" ]; then
    say "$ENV_FILE exists: left as it is"
    return
  fi
  [ -f "$ENV_TEMPLATE" ] || die "$ENV_TEMPLATE is missing: is this a complete checkout?"
  (umask 077 && cp "$ENV_TEMPLATE" "$ENV_FILE")
  chmod 600 "$ENV_FILE"
  say "created $ENV_FILE from $ENV_TEMPLATE (mode 600): fill in the queue, database and Qdrant"
}

# KEY=value lines read the way systemd's EnvironmentFile= reads them: no shell evaluation,
# so a URL's & or $ stays as written.
load_env_file() {
  local line key value number=0
  while IFS= read -r line || [ -n "$line" ]; do
    number=$((number + 1))
    line=${line%$'\r'}
    [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
    if [[ ! $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
      warn "$1 line $number is not KEY=value: ignored"
      continue
    fi
    key=${BASH_REMATCH[2]}
    value=${BASH_REMATCH[3]}
    value=${value#"${value%%[![:space:]]*}"}
    value=${value%"${value##*[![:space:]]}"}
    if [[ $value =~ ^\"(.*)\"$ ]] || [[ $value =~ ^\'(.*)\'$ ]]; then
      value=${BASH_REMATCH[1]}
    fi
    export "$key=$value"
  done <"$1"
  return 0
}

run_check() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '[dry-run] %s -m edge check   (with %s loaded)\n' "$VENV_PY" "$ENV_FILE"
    return 0
  fi
  say "python -m edge check (with $ENV_FILE)"
  local status=0
  (export MODE=EDGE && load_env_file "$ENV_FILE" && exec "$VENV_PY" -m edge check) || status=$?
  if [ "$status" -eq 0 ]; then
    say "edge worker ready: run it as a service (deploy/README.md)"
  elif [ "$status" -eq 2 ]; then
    warn "the configuration is wrong (see above): fix $ENV_FILE, then run ./setup_edge.sh again"
  else
    warn "the self-test failed (exit $status): each FAIL line above says what to fix; then run ./setup_edge.sh again"
  fi
  return "$status"
}

main() {
  local arg
  for arg in "$@"; do
    case $arg in
      --dry-run) DRY_RUN=1 ;;
      --cpu) FORCE_CPU=1 ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $arg" ;;
    esac
  done
  cd "$(dirname "${BASH_SOURCE[0]}")"
  [ "$DRY_RUN" = 1 ] && say "dry run: install commands are printed, not run"
  check_python
  ensure_venv
  choose_torch_build
  ensure_torch
  ensure_requirements
  ensure_env_file
  run_check
}

# Sourcing the file (tests) defines the functions and runs nothing.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
