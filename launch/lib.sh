# shellcheck shell=bash
# Shared by the launch scripts (sourced, not run): settings and helpers.

# The exit status of a training run that saved a checkpoint after SIGTERM
# (a preempted or maintained host) and should simply be started again.
# Defined here once (exported, so the training process can read it too).
export EGSC_PREEMPTED_STATUS=75

# quote_args ARG... -> one line that a remote bash splits back into exactly ARG...
# (every argument through printf %q, e.g. --config.data.image_size='(256, 512)').
quote_args() {
  local out="" arg
  for arg in "$@"; do
    out+="$(printf '%q' "$arg") "
  done
  printf '%s' "${out% }"
}

# run CMD ARG...: runs it, or with DRY_RUN=1 prints it (quoted, one line) instead.
run() {
  if [[ "${DRY_RUN:-0}" == 1 ]]; then
    quote_args "$@"
    echo
  else
    "$@"
  fi
}

die() {
  echo "error: $*" >&2
  exit 2
}
