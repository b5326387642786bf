#!/usr/bin/env bash
# Train on one machine with one or more NVIDIA GPUs (all visible GPUs are used).
#
#   CONFIG=mnist_single WORKDIR=/data/runs/mnist_single bash launch/gpu.sh \
#       [extra --config.* overrides]
#
# Multi-node: run this on every node with EGSC_DISTRIBUTED=1 and the
# JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID variables set
# (or under SLURM, which jax.distributed.initialize() detects).
set -euo pipefail
: "${CONFIG:?set CONFIG}" "${WORKDIR:?set WORKDIR}"
cd "$(dirname "$0")/.."
# The locked set and JAX's CUDA 12 build of the locked JAX version (PYTHON picks
# the interpreter, see tools/setup.sh). A .venv set up for the CPU has egsc-train
# but no CUDA plugin, and JAX would train on the CPU without a word: it gets the
# plugin too, as does one whose plugin is not of its JAX's version.
has_cuda_jax() {
  [[ -x .venv/bin/egsc-train ]] && .venv/bin/python -c '
import importlib.metadata as m, sys
sys.exit(m.version("jax-cuda12-plugin") != m.version("jax"))' 2>/dev/null
}
has_cuda_jax || bash tools/setup.sh --cuda
# Let XLA take GPU memory as it needs it instead of 75% up front, so that a
# second process (TensorBoard, evaluation) can share the card.
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"
exec .venv/bin/egsc-train --config="$CONFIG" --workdir="$WORKDIR" \
    --config.model.compute_dtype=bfloat16 "$@"
