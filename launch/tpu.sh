#!/usr/bin/env bash
# Cloud TPU VM slices, from creation to deletion. Run on your machine (needs gcloud).
#
#   launch/tpu.sh [--dry-run] COMMAND [ARG...]
#
#   create               create the slice: on demand, SPOT=1 for spot, or QUEUED=1 for
#                        a queued resource (waits until it is ACTIVE)
#   setup                copy the repo at COMMIT to every worker and build its pinned
#                        venv (once per lock file; a second setup only unpacks the code)
#   train [OVERRIDE...]  start training detached on every worker (nohup; the log goes to
#                        ~/egsc-jax/logs/train.log and WORKDIR/logs/); returns at once
#   logs [WORKER]        follow one worker's log (default 0)
#   status               the slice's state
#   resume [OVERRIDE...] after a preemption: re-create the slice if it is gone, set it
#                        up and train again (the run continues from its last checkpoint)
#   supervise [OVERRIDE...]  resume whenever the slice is preempted, until the run exits
#   delete               delete the slice (and its queued resource)
#
# Settings (environment): TPU_NAME, ZONE, ACCELERATOR_TYPE (e.g. v5litepod-16),
# RUNTIME_VERSION (default tpu-ubuntu2204-base), PROJECT (default: gcloud's),
# SPOT=1, QUEUED=1, COMMIT (default HEAD), CONFIG, WORKDIR, DATA_DIR (gs:// paths
# for a slice; each worker is its own machine), POLL (seconds, default 60).
# OVERRIDEs are --config.* flags, passed to every worker exactly as given.
# --dry-run prints the gcloud commands instead of running them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"

DRY_RUN=0
if [[ "${1:-}" == --dry-run ]]; then
  DRY_RUN=1
  shift
fi
command="${1:-}"
shift || true

RUNTIME_VERSION="${RUNTIME_VERSION:-tpu-ubuntu2204-base}"
POLL="${POLL:-60}"
REMOTE_HOME=egsc-jax   # on each worker, relative to the home directory ssh starts in

need() {
  local name
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || die "set $name (see launch/tpu.sh's header)"
  done
}

# The flags every gcloud tpus command takes.
where() {
  need TPU_NAME ZONE
  local flags=(--zone="$ZONE")
  [[ -n "${PROJECT:-}" ]] && flags+=(--project="$PROJECT")
  printf '%s\n' "${flags[@]}"
}

tpu_ssh() {   # tpu_ssh WORKER REMOTE_COMMAND
  local flags
  mapfile -t flags < <(where)
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${flags[@]}" --worker="$1" --command="$2"
}

create() {
  need ACCELERATOR_TYPE
  local flags
  mapfile -t flags < <(where)
  local spot=()
  [[ "${SPOT:-0}" == 1 ]] && spot=(--spot)
  if [[ "${QUEUED:-0}" == 1 ]]; then
    run gcloud compute tpus queued-resources create "$TPU_NAME" "${flags[@]}" \
        --node-id="$TPU_NAME" --accelerator-type="$ACCELERATOR_TYPE" \
        --runtime-version="$RUNTIME_VERSION" "${spot[@]}"
    [[ "$DRY_RUN" == 1 ]] && return
    local state
    while true; do
      state="$(gcloud compute tpus queued-resources describe "$TPU_NAME" "${flags[@]}" \
          --format='value(state.state)')"
      echo "queued resource $TPU_NAME: $state"
      case "$state" in
        ACTIVE) return ;;
        FAILED|SUSPENDED) die "queued resource $TPU_NAME is $state" ;;
      esac
      sleep "$POLL"
    done
  else
    run gcloud compute tpus tpu-vm create "$TPU_NAME" "${flags[@]}" \
        --accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION" "${spot[@]}"
  fi
}

setup() {
  local commit archive flags
  commit="$(git -C "$here/.." rev-parse "${COMMIT:-HEAD}")"
  archive="${TMPDIR:-/tmp}/egsc-jax-$commit.tar.gz"
  mapfile -t flags < <(where)
  # The exact commit, without needing repository access on the workers.
  run git -C "$here/.." archive --format=tar.gz --output="$archive" "$commit"
  run gcloud compute tpus tpu-vm scp "$archive" "$TPU_NAME:egsc-jax-$commit.tar.gz" \
      "${flags[@]}" --worker=all
  tpu_ssh all "set -e; mkdir -p $REMOTE_HOME/src-$commit; \
tar -xzf egsc-jax-$commit.tar.gz -C $REMOTE_HOME/src-$commit; \
ln -sfn src-$commit $REMOTE_HOME/current; \
bash $REMOTE_HOME/current/launch/tpu_worker.sh setup"
}

# The worker's training command line: CONFIG, WORKDIR, DATA_DIR and the overrides.
train_args() {
  need CONFIG WORKDIR
  local args=(--config="$CONFIG" --workdir="$WORKDIR" --config.model.compute_dtype=bfloat16)
  [[ -n "${DATA_DIR:-}" ]] && args+=(--config.data.data_dir="$DATA_DIR")
  quote_args "${args[@]}" "$@"
}

train() {
  local args
  args="$(train_args "$@")"
  # nohup + setsid: the run survives the ssh session; this command returns at once.
  # Only setsid goes to the background ({ ... & }): a backgrounded `a && b && c`
  # would be a subshell that keeps the ssh session's output open until the run ends.
  tpu_ssh all "cd $REMOTE_HOME && mkdir -p logs && \
{ setsid nohup bash current/launch/tpu_worker.sh train $args \
>>logs/train.log 2>&1 </dev/null & } && echo started on \$(hostname)"
}

logs() {
  tpu_ssh "${1:-0}" "tail -n 200 -F $REMOTE_HOME/logs/train.log"
}

state() {
  local flags
  mapfile -t flags < <(where)
  gcloud compute tpus tpu-vm describe "$TPU_NAME" "${flags[@]}" --format='value(state)' \
      2>/dev/null || echo MISSING
}

status() {
  local flags
  mapfile -t flags < <(where)
  run gcloud compute tpus tpu-vm describe "$TPU_NAME" "${flags[@]}" \
      --format='value(state,health,acceleratorType)'
}

delete() {
  local flags
  mapfile -t flags < <(where)
  if [[ "${QUEUED:-0}" == 1 ]]; then
    run gcloud compute tpus queued-resources delete "$TPU_NAME" "${flags[@]}" --force --quiet
  else
    run gcloud compute tpus tpu-vm delete "$TPU_NAME" "${flags[@]}" --quiet
  fi
}

resume() {
  if [[ "$DRY_RUN" != 1 ]]; then
    case "$(state)" in
      READY) ;;
      MISSING) create ;;
      *) delete; create ;;   # PREEMPTED, TERMINATED, ...: a preempted slice is not restartable
    esac
  fi
  setup
  train "$@"
}

# The run's exit status once it finished (written by worker 0's loop), else nothing.
run_exit_status() {
  need WORKDIR
  if [[ "$WORKDIR" == gs://* ]]; then
    gcloud storage cat "$WORKDIR/logs/exit_status-*w-0" 2>/dev/null || true
  fi
}

supervise() {
  [[ "$DRY_RUN" == 1 ]] && die "supervise has no dry run (it polls the slice)"
  local s
  while true; do
    s="$(run_exit_status)"
    if [[ -n "$s" && "$s" != "$EGSC_PREEMPTED_STATUS" ]]; then
      echo "training finished with exit status $s"
      return "$s"
    fi
    case "$(state)" in
      READY) ;;
      CREATING|STARTING|RESTARTING|REPAIRING) ;;
      *) echo "$(date -u +%FT%TZ) slice $TPU_NAME is not running: resuming"; resume "$@" ;;
    esac
    sleep "$POLL"
  done
}

case "$command" in
  create|setup|train|logs|status|resume|supervise|delete) "$command" "$@" ;;
  *) sed -n '2,25p' "$0" >&2; exit 2 ;;
esac
