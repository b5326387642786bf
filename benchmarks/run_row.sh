# shellcheck shell=bash
# Sourced by the comparison scripts (compare_*.sh): one row, one seed.
#
#   run_row DIR EVALUATE COMMAND...
#
# With DRY_RUN=1, prints COMMAND (quoted, one line) and runs nothing: the tests
# read the exact training commands this way. Otherwise runs COMMAND (a training
# run whose workdir is DIR), writes its wall time in seconds to DIR/wall_seconds,
# and, when EVALUATE is 1, scores DIR with `python -m egsc_jax.evaluate`.
run_row() {
  local dir="$1" evaluate="$2" start
  shift 2
  if [ "${DRY_RUN:-0}" = 1 ]; then
    printf '%q ' "$@"
    echo
    return
  fi
  start=$(date +%s)
  "$@"
  echo $(( $(date +%s) - start )) > "$dir/wall_seconds"
  if [ "$evaluate" = 1 ]; then python -m egsc_jax.evaluate --workdir="$dir"; fi
}
