#!/usr/bin/env bash
# The paper's MNIST-Single comparison (docs/method.md §5.2) at one shared budget: EGSC-IT,
# its three ablations and the UNIT and CycleGAN baselines, each trained from
# scratch, for every seed.
#
#   [BUDGET=cpu|paper] [SEEDS="19 20 21"] [EVALUATE=1] [ROOT=DIR] \
#     bash benchmarks/compare_mnist_single.sh [VARIANT ...] [-- --config.KEY=VALUE ...]
#
# BUDGET=cpu (default) is the README's 2-core-CPU budget (configs/mnist_single.py:cpu);
# BUDGET=paper the paper setting. VARIANTs default to all six: egsc no_mask
# no_adain no_perceptual unit cyclegan. SEEDS default to 19 (the config's).
# Flags after `--` go to every training run (e.g. --config.train.eval_every=120
# to evaluate only at the end). Each run's training ends with its test scores
# in ROOT/<variant>_s<seed>/stage2/final_metrics.json; EVALUATE=1 also runs
# `python -m egsc_jax.evaluate` on it (KID, pixel accuracy; ~3 min a run on a
# 2-core CPU). The training wall time goes to ROOT/<variant>_s<seed>/wall_seconds.
# Tabulate with: python benchmarks/comparison_table.py ROOT
set -euo pipefail
cd "$(dirname "$0")/.."
budget="${BUDGET:-cpu}"
root="${ROOT:-workdirs/compare_mnist_single_$budget}"
read -r -a seeds <<< "${SEEDS:-19}"
variants=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do variants+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ ${#variants[@]} -eq 0 ] && variants=(egsc no_mask no_adain no_perceptual unit cyclegan)
for v in "${variants[@]}"; do
  spec=()
  [ "$budget" = cpu ] && spec+=(cpu)
  [ "$v" != egsc ] && spec+=("$v")
  config="configs/mnist_single.py"
  [ ${#spec[@]} -gt 0 ] && config="$config:$(IFS=,; echo "${spec[*]}")"
  for seed in "${seeds[@]}"; do
    dir="$root/${v}_s$seed"
    start=$(date +%s)
    python -m egsc_jax.main --config="$config" --workdir="$dir" --config.seed="$seed" "$@"
    echo $(( $(date +%s) - start )) > "$dir/wall_seconds"
    if [ "${EVALUATE:-0}" = 1 ]; then python -m egsc_jax.evaluate --workdir="$dir"; fi
  done
done
