#!/usr/bin/env bash
# The paper's MNIST-Single comparison (docs/method.md §5.2) at one shared budget: EGSC-IT,
# its three ablations and the UNIT and CycleGAN baselines, each trained from
# scratch and evaluated with the same command.
#
#   [BUDGET=cpu|paper] [ROOT=DIR] bash benchmarks/compare_mnist_single.sh [VARIANT ...]
#
# BUDGET=cpu (default) is the README's 2-core-CPU budget (configs/mnist_single.py:cpu);
# BUDGET=paper the paper setting. VARIANTs default to all six: egsc no_mask
# no_adain no_perceptual unit cyclegan. Results: ROOT/<variant>/eval/results.md
# and .json, and the training wall time in ROOT/<variant>/wall_seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
budget="${BUDGET:-cpu}"
root="${ROOT:-workdirs/compare_mnist_single_$budget}"
variants=("$@")
[ ${#variants[@]} -eq 0 ] && variants=(egsc no_mask no_adain no_perceptual unit cyclegan)
for v in "${variants[@]}"; do
  spec=()
  [ "$budget" = cpu ] && spec+=(cpu)
  [ "$v" != egsc ] && spec+=("$v")
  config="configs/mnist_single.py"
  [ ${#spec[@]} -gt 0 ] && config="$config:$(IFS=,; echo "${spec[*]}")"
  dir="$root/$v"
  start=$(date +%s)
  python -m egsc_jax.main --config="$config" --workdir="$dir"
  echo $(( $(date +%s) - start )) > "$dir/wall_seconds"
  python -m egsc_jax.evaluate --workdir="$dir"
done
