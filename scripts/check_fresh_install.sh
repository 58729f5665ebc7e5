#!/usr/bin/env bash
# `make check-fresh-install`: the new user's path, timed. A clone of the committed HEAD in a
# temporary folder (so a fresh .venv), a temporary HOME (empty ~/.cache/pe_dense and pip
# cache), no wheelhouse (PIP_FIND_LINKS and PE_DENSE_WHEEL_CACHE unset), then `make demo`,
# mmcv source build included. pip's own configuration (index URLs, constraints) belongs to
# the machine, not to a cache, and is carried over. Keeps the folder with KEEP=1.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# Resolved before HOME changes: a pyenv shim looks for its versions under $HOME.
python=$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "check-fresh-install: uncommitted changes in $repo are NOT tested (the clone has HEAD)"
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pe_dense_fresh.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$tmp"' EXIT
git clone -q "$repo" "$tmp/pe_dense"
echo "check-fresh-install: $(git -C "$tmp/pe_dense" log -1 --format='%h %s' | cut -c1-80)"
mkdir -p "$tmp/home"
conf=${XDG_CONFIG_HOME:-$HOME/.config}/pip
if [ -d "$conf" ]; then mkdir -p "$tmp/home/.config" && cp -r "$conf" "$tmp/home/.config/pip"; fi
if [ -d "$HOME/.pip" ]; then cp -r "$HOME/.pip" "$tmp/home/.pip"; fi
unset PIP_FIND_LINKS PE_DENSE_WHEEL_CACHE XDG_CACHE_HOME XDG_CONFIG_HOME PYTHONPATH VIRTUAL_ENV
unset MAKEFLAGS MAKELEVEL MFLAGS
export HOME=$tmp/home
start=$(date +%s)
make -C "$tmp/pe_dense" demo PYTHON="$python" 2>&1 | tee "$tmp/make_demo.log"
elapsed=$(( $(date +%s) - start ))
if ! grep -q 'building from source' "$tmp/make_demo.log"; then
  echo "check-fresh-install: FAILED, mmcv was not built from source (a wheel was found)"; exit 1
fi
printf 'check-fresh-install: passed; make demo from nothing took %d min %02d s (%s, %s cores, load %s)\n' \
  $((elapsed / 60)) $((elapsed % 60)) "$(date -u +%F)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
