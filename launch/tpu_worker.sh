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

# sync_log LOG DEST: every minute until this script ends (also by SIGKILL: it
# watches its parent rather than rely on a trap), copies LOG to DEST.
sync_log() {
  local parent=$$ tick=0
  while kill -0 "$parent" 2>/dev/null; do
    sleep 1
    (( ++tick % 60 )) || copy_log "$1" "$2"
  done
}

# Globals, not locals: the EXIT and signal traps run after train() has returned.
syncer=""
child=""
stopping=0

# A SIGTERM/SIGINT/SIGHUP of this script is passed to the training process (which
# saves a checkpoint and exits); the loop then ends instead of restarting it.
stop_run() {
  stopping=1
  [[ -z "$child" ]] || kill -TERM "$child" 2>/dev/null || true
}

# Sets status to the training's exit status. A trapped signal interrupts `wait`
# (status 128+n); bash keeps the status of an ended child, so waiting again once
# it has ended returns the training's own.
wait_child() {
  status=0
  wait "$child" || status=$?
  (( stopping )) || return 0
  while kill -0 "$child" 2>/dev/null; do
    wait "$child" || true
  done
  status=0
  wait "$child" || status=$?
}

train() {
  local venv log workdir worker status attempt=0
  venv="$(venv_dir)"
  [[ -f "$venv/.complete" ]] || die "run 'launch/tpu.sh setup' first ($venv is not set up)"
  log="$EGSC_HOME/logs/train.log"
  workdir="$(workdir_of "$@")"
  worker="${TPU_WORKER_ID:-$(hostname)}"
  mkdir -p "$(dirname "$log")"
  # The log also goes to the workdir every minute, for watching without ssh.
  sync_log "$log" "$workdir/logs/worker-$worker.log" &
  syncer=$!
  trap '[[ -z "$syncer" ]] || kill "$syncer" 2>/dev/null || true' EXIT
  trap stop_run TERM INT HUP
  cd "$repo"
  while true; do
    echo "=== $(date -u +%FT%TZ) worker $worker attempt $attempt: python -m egsc_jax.main $(quote_args "$@")" >>"$log"
    # In the background, so that a signal to this script runs stop_run at once;
    # --pdeathsig: if this script is SIGKILLed, the training still gets SIGTERM.
    setpriv --pdeathsig TERM "$venv/bin/python" -m egsc_jax.main --distributed "$@" \
      >>"$log" 2>&1 &
    child=$!
    wait_child
    child=""
    echo "=== $(date -u +%FT%TZ) exit status $status" >>"$log"
    if (( stopping )) || [[ "$status" != "$EGSC_PREEMPTED_STATUS" ]] \
        || (( ++attempt > MAX_RESTARTS )); then
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
