#!/usr/bin/env bash
# Train on one machine with one or more NVIDIA GPUs (all visible GPUs are used).
#
#   CONFIG=configs/mnist_single.py WORKDIR=/data/runs/mnist_single bash launch/gpu.sh \
#       [extra --config.* overrides]
#
# Multi-node: run this on every node with EGSC_DISTRIBUTED=1 and the
# JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID variables set
# (or under SLURM, which jax.distributed.initialize() detects).
set -euo pipefail
: "${CONFIG:?set CONFIG}" "${WORKDIR:?set WORKDIR}"
cd "$(dirname "$0")/.."
if [ ! -d .venv ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q -U "jax[cuda12]"
  .venv/bin/pip install -q -r requirements.txt
fi
# Let XLA take GPU memory as it needs it instead of 75% up front, so that a
# second process (TensorBoard, evaluation) can share the card.
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"
exec .venv/bin/python -m egsc_jax.main --config="$CONFIG" --workdir="$WORKDIR" \
    --config.model.compute_dtype=bfloat16 "$@"
