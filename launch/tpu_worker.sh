#!/usr/bin/env bash
# Runs ON each TPU VM worker (launch/tpu.sh sends it there); not for your machine.
#
#   bash launch/tpu_worker.sh setup            # once per lock file: Python + pinned venv
#   bash launch/tpu_worker.sh train ARG...     # the training command, restarted after
#                                              # a preemption exit (EGSC_PREEMPTED_STATUS)
#
# Layout on the worker (EGSC_HOME, default ~/egsc-jax):
#   src-<commit>/        the repo at that commit (unpacked by launch/tpu.sh setup)
#   venv-<lock hash>/    Python PYTHON_VERSION with LOCK_FILE (default
#                        requirements/lock-py3XX.txt) + jax[tpu] of the same jax
#   logs/train.log       this worker's log; also copied to WORKDIR/logs/worker-<id>.log
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"
repo="$(dirname "$here")"
EGSC_HOME="${EGSC_HOME:-$HOME/egsc-jax}"
PYTHON_VERSION="${PYTHON_VERSION:-3.11}"
MAX_RESTARTS="${MAX_RESTARTS:-20}"
lock="${LOCK_FILE:-$repo/requirements/lock-py${PYTHON_VERSION/./}.txt}"

venv_dir() {
  [[ -f "$lock" ]] || die "no lock file $lock"
  echo "$EGSC_HOME/venv-$(sha256sum "$lock" | cut -c1-12)"
}

setup() {
  local venv jax_version
  venv="$(venv_dir)"
  if [[ -f "$venv/.complete" ]]; then
    echo "worker $(hostname): $venv already set up"
    return
  fi
  # uv brings its own Python build, so the VM image's Python version does not matter.
  command -v uv >/dev/null || python3 -m pip install --quiet --user uv
  export PATH="$HOME/.local/bin:$PATH"
  rm -rf "$venv"
  uv venv --quiet --python "$PYTHON_VERSION" "$venv"
  uv pip install --quiet --python "$venv/bin/python" -r "$lock"
  # The lock pins the CPU jaxlib; add the TPU runtime for the same jax version.
  jax_version="$(sed -n 's/^jax==\([^ ]*\).*/\1/p' "$lock")"
  uv pip install --quiet --python "$venv/bin/python" -c "$lock" "jax[tpu]==$jax_version"
  touch "$venv/.complete"
  echo "worker $(hostname): set up $venv (jax $jax_version)"
}

# The workdir of a training command line (--workdir=DIR or --workdir DIR).
workdir_of() {
  local prev=""
  for arg in "$@"; do
    case "$arg" in
      --workdir=*) echo "${arg#--workdir=}"; return ;;
    esac
    [[ "$prev" == --workdir ]] && { echo "$arg"; return; }
    prev="$arg"
  done
}

# copy_log FILE DEST: a local file to a local or gs:// destination.
copy_log() {
  if [[ "$2" == gs://* ]]; then
    gcloud storage cp --quiet "$1" "$2" >/dev/null 2>&1 || true
  else
    mkdir -p "$(dirname "$2")" && cp "$1" "$2"
  fi
}

train() {
  local venv log workdir worker status attempt=0 syncer
  venv="$(venv_dir)"
  [[ -f "$venv/.complete" ]] || die "run 'launch/tpu.sh setup' first ($venv is not set up)"
  log="$EGSC_HOME/logs/train.log"
  workdir="$(workdir_of "$@")"
  worker="${TPU_WORKER_ID:-$(hostname)}"
  mkdir -p "$(dirname "$log")"
  # The log also goes to the workdir every minute, for watching without ssh.
  ( while sleep 60; do copy_log "$log" "$workdir/logs/worker-$worker.log"; done ) &
  syncer=$!
  trap 'kill "$syncer" 2>/dev/null || true' EXIT
  cd "$repo"
  while true; do
    echo "=== $(date -u +%FT%TZ) worker $worker attempt $attempt: python -m egsc_jax.main $(quote_args "$@")" >>"$log"
    status=0
    "$venv/bin/python" -m egsc_jax.main --distributed "$@" >>"$log" 2>&1 || status=$?
    echo "=== $(date -u +%FT%TZ) exit status $status" >>"$log"
    if [[ "$status" != "$EGSC_PREEMPTED_STATUS" ]] || (( ++attempt > MAX_RESTARTS )); then
      break
    fi
    sleep "${RESTART_DELAY:-30}"   # a maintenance event: give the host time first
  done
  echo "$status" >"$EGSC_HOME/logs/exit_status"
  copy_log "$log" "$workdir/logs/worker-$worker.log"
  copy_log "$EGSC_HOME/logs/exit_status" "$workdir/logs/exit_status-$worker"
  return "$status"
}

case "${1:-}" in
  setup) setup ;;
  train) shift; train "$@" ;;
  *) die "usage: tpu_worker.sh setup | train --config=... --workdir=... [overrides]" ;;
esac
