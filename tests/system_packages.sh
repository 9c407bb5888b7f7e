#!/usr/bin/env bash
# The servers and tools the tests start for real, from Debian: installed when missing
# (as root, or with password-less sudo); otherwise this says what to install and fails.
set -euo pipefail

need=()
command -v git >/dev/null || need+=(git)
command -v redis-server >/dev/null || need+=(redis-server)
command -v chromium >/dev/null || need+=(chromium)
# Debian keeps initdb/pg_ctl in /usr/lib/postgresql/<version>/bin, off PATH.
command -v initdb >/dev/null || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null \
  || need+=(postgresql)
# systemd-analyze verifies the worker's unit file (tests/test_deploy.py).
command -v systemd-analyze >/dev/null || need+=(systemd)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo)
else
  echo "the tests need: ${need[*]}; install them with:" >&2
  echo "  sudo apt-get install ${need[*]}" >&2
  exit 1
fi
echo "installing ${need[*]} (Debian packages the tests run)" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
