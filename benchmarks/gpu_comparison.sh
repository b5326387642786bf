#!/usr/bin/env bash
# Our accelerator sweep and the official MUNIT iteration on the same card, in
# one command, then the two ratios of docs/benchmarks.md ("The accelerator
# sweep"): about 8 minutes on one GPU.
#
#   bash benchmarks/gpu_comparison.sh MUNIT_DIR OUT [SWEEP_SECONDS]
#
# MUNIT_DIR: a snapshot of https://github.com/NVlabs/MUNIT taken at run time
# (CC BY-NC-SA: never commit it here). OUT gets sweep.json, peer.json,
# compare.json and log.txt. SWEEP_SECONDS (default 330) is our sweep's
# --time_budget; MUNIT's rows get the 120 s after it. Each side runs in its own
# process, one after the other: JAX holds most of the card's memory while its
# process lives, and PyTorch would find too little beside it.
# SWEEP_ARGS, PEER_ARGS and COMPARE_ARGS are appended to the three commands:
# the script's check on a CPU (docs/benchmarks.md) runs at tiny sizes with them.
set -euo pipefail
cd "$(dirname "$0")/.."
munit="${1:?MUNIT_DIR: a checkout of NVlabs/MUNIT}"
out="${2:?OUT: a folder for the results}"
budget="${3:-330}"
mkdir -p "$out"
# The extra arguments, split into words as a shell would.
read -r -a sweep_args <<< "${SWEEP_ARGS:-}"
read -r -a peer_args <<< "${PEER_ARGS:-}"
read -r -a compare_args <<< "${COMPARE_ARGS:-}"
{
  nvidia-smi -L 2>/dev/null || true
  python benchmarks/train_step.py --sweep --experiment gta5_bdd \
    --time_budget "$budget" --json_out "$out/sweep.json" "${sweep_args[@]}"
  python benchmarks/peer_munit.py --munit_dir "$munit" --json_out "$out/peer.json" "${peer_args[@]}"
  python benchmarks/peer_munit.py --compare "$out/sweep.json" "$out/peer.json" \
    --json_out "$out/compare.json" "${compare_args[@]}"
} 2>&1 | tee "$out/log.txt"
