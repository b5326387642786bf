#!/usr/bin/env bash
# The Photo-Grades benchmark (configs/photo_grades.py, docs/results.md): every
# row trained from scratch at the config's one 2-hour-CPU budget (300 stage-1 +
# 150 stage-2 iterations, batch 8, 64x64) for every seed, then scored once on
# the test split (photographs never seen in training or validation) by the
# evaluate command: SSIM and LPIPS against the ground truth, overall and by grade.
#
#   [SEEDS="19 20"] [ROOT=DIR] bash benchmarks/compare_photo_grades.sh [VARIANT ...] \
#     [-- --config.KEY=VALUE ...]
#
# VARIANTs default to the five rows:
#   faithful  EGSC-IT as published at CPU capacity (`:faithful`)
#   cpu       the tailored MNIST-Single setting, sign-normalised encoder
#             included (`:cpu`): what the MNIST tailoring costs on photographs
#   no_mask   `:faithful` w/o the feature mask
#   unit      UNIT (`:faithful,unit`)
#   cyclegan  CycleGAN (`:faithful,cyclegan`)
# Training evaluates on the validation photograph only; the test numbers are
# the evaluate command's (ROOT/<variant>_s<seed>/eval/results.json). Flags after
# `--` go to every training run (the dataset's directory, say:
# -- --config.data.data_dir=DIR). The training wall time goes to
# ROOT/<variant>_s<seed>/wall_seconds. DRY_RUN=1 prints each training command
# instead of running it. Tabulate with: python benchmarks/photo_grades_table.py ROOT
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=run_row.sh
source benchmarks/run_row.sh
root="${ROOT:-workdirs/compare_photo_grades}"
read -r -a seeds <<< "${SEEDS:-19 20}"
variants=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do variants+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ ${#variants[@]} -eq 0 ] && variants=(faithful cpu no_mask unit cyclegan)
for v in "${variants[@]}"; do
  case "$v" in
    faithful | cpu) spec="$v" ;;
    *) spec="faithful,$v" ;;
  esac
  for seed in "${seeds[@]}"; do
    dir="$root/${v}_s$seed"
    run_row "$dir" 1 python -m egsc_jax.main --config="configs/photo_grades.py:$spec" \
      --workdir="$dir" --config.seed="$seed" "$@"
  done
done
