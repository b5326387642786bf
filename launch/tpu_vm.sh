#!/usr/bin/env bash
# Train on a Cloud TPU VM slice: the same command runs on every host of the slice.
#
#   TPU_NAME=my-v4-32 ZONE=us-central2-b CONFIG=configs/gta5_bdd.py \
#   WORKDIR=gs://my-bucket/egsc/gta5_bdd DATA_DIR=gs://my-bucket/tfds \
#   bash launch/tpu_vm.sh [extra --config.* overrides]
#
# Every host reads its own part of the data (global batch / hosts) and joins
# one jax.distributed job; Orbax writes the checkpoints to WORKDIR. A
# preempted slice gets SIGTERM: the run saves and exits, and re-running this
# script resumes from the last checkpoint.
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}" "${CONFIG:?set CONFIG}" "${WORKDIR:?set WORKDIR}"
REPO_URL="${REPO_URL:-$(git config --get remote.origin.url || true)}"
BRANCH="${BRANCH:-main}"
DATA_DIR_FLAG=${DATA_DIR:+--config.data.data_dir=$DATA_DIR}

gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all --command "
  set -e
  if [ ! -d egsc-jax ]; then git clone --branch $BRANCH $REPO_URL egsc-jax; fi
  cd egsc-jax && git pull --ff-only
  python3 -m venv .venv && . .venv/bin/activate
  pip install -q -U 'jax[tpu]' && pip install -q -r requirements.txt
  python -m egsc_jax.main --distributed --config=$CONFIG --workdir=$WORKDIR \
      --config.model.compute_dtype=bfloat16 $DATA_DIR_FLAG $*
"
