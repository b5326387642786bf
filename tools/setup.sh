#!/usr/bin/env bash
# Sets up a checkout: a venv with the versions we test (requirements/lock-*.txt)
# and egsc-jax itself (editable, so the egsc-* commands are on the venv's PATH).
#
#   bash tools/setup.sh           # .venv: the runtime lock (training, evaluation)
#   bash tools/setup.sh --test    # .venv: the test lock (+ demo), and Debian's
#                                 # chromium for the web demo's browser test
#   bash tools/setup.sh --cuda    # + JAX's CUDA 12 build, of the locked JAX version
#   bash tools/setup.sh --tpu     # + JAX's TPU runtime, of the locked JAX version
#
# The locks pin the CPU jaxlib; --cuda / --tpu add the accelerator build of the
# same JAX version with the lock as a constraint, so nothing else moves. Every
# install path (the README, launch/*.sh, SLURM, Colab) installs this way: the
# locked JAX, never an unpinned `pip install -U jax`.
#
# The README's two commands and .ci/run call this script, so a new user's set-up
# and CI's are the same. Settings: PYTHON (default python3), VENV (default .venv).
# An existing venv is updated in place. Needs network access to PyPI (and to
# Debian's archive for chromium, installed with apt-get as root or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
kind=""
accelerator=""
for arg in "$@"; do
  case "$arg" in
    --test) kind="test-" ;;
    --cuda) accelerator="cuda12" ;;
    --tpu) accelerator="tpu" ;;
    *) echo "usage: bash tools/setup.sh [--test] [--cuda | --tpu]" >&2; exit 2 ;;
  esac
done

command -v "$PYTHON" >/dev/null || { echo "setup: no $PYTHON on the PATH (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
version="$("$PYTHON" -c 'import sys; print(*sys.version_info[:2], sep=".")')"
lock="requirements/lock-${kind}py${version/./}.txt"
if [[ ! -f "$lock" ]]; then
  supported=""
  for f in requirements/lock-py3*.txt; do
    f="${f#requirements/lock-py3}"
    supported+="${supported:+, }3.${f%.txt}"
  done
  echo "setup: egsc-jax supports Python $supported, not $version ($PYTHON); run with PYTHON=python3.11 (for example), or get one with: uv python install 3.11" >&2
  exit 1
fi

if [[ -n "$kind" ]] && ! command -v chromium >/dev/null; then
  # tests/test_demo.py drives Debian's chromium headless (no browser download).
  sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  if [[ "${#sudo[@]}" -eq 0 ]] || command -v sudo >/dev/null; then
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: the web demo's test needs Debian's chromium: apt-get install -y chromium (as root)" >&2
    exit 1
  fi
fi

[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip uv
# --compile-bytecode: what pip does by default and uv does not. Without .pyc
# files, and where PYTHONDONTWRITEBYTECODE is set, every Python process compiles
# TensorFlow, JAX and Flax from source again: 28 s instead of 12 s to import them
# (docs/benchmarks.md).
"$VENV/bin/python" -m uv pip install -q --compile-bytecode --python "$VENV/bin/python" -r "$lock"
if [[ -n "$accelerator" ]]; then
  jax_version="$(sed -n 's/^jax==\([^ ]*\).*/\1/p' "$lock")"
  "$VENV/bin/python" -m uv pip install -q --compile-bytecode --python "$VENV/bin/python" \
    -c "$lock" "jax[$accelerator]==$jax_version"
fi
"$VENV/bin/python" -m uv pip install -q --no-deps --python "$VENV/bin/python" -e .
echo "setup: $VENV has Python $version with $lock and egsc-jax $("$VENV/bin/python" -c 'import egsc_jax; print(egsc_jax.__version__)')"
