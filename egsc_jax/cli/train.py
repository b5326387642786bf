"""Trains EGSC-IT: stage 1 (F networks), then stage 2, resuming from the workdir.

  egsc-train --config=mnist_single:sn --workdir=/tmp/egsc
  egsc-train --config=configs/gta5_bdd.py --workdir=gs://... --config.batch_size=24
  python -m egsc_jax.main ...     (the same command, without installing egsc-jax)

Process set-up only; the loop is `egsc_jax.train.train_and_evaluate`. The
config is validated (`config_lib.validate`) after the overrides; errors the
user can fix print one line. Exit status (`egsc_jax.errors`): 0 done, 1 a user
error, 3 a loss became NaN/Inf, 75 preempted (a checkpoint was saved: run the
same command again to resume), 70 a bug (with its traceback).
"""

from __future__ import annotations

import logging
import os

from egsc_jax import config_files, config_lib, errors


def define_flags(flag_values) -> None:
  """Defines the command's flags on `flag_values` (absl.flags.FLAGS for the CLI,
  a fresh absl.flags.FlagValues() in tests)."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  fv = dict(flag_values=flag_values)
  config_files.define_config_flag("config", **fv)
  flags.DEFINE_string("workdir", None, "Checkpoints, TensorBoard logs, images.", **fv)
  flags.DEFINE_bool(
    "distributed",
    False,
    "Call jax.distributed.initialize() (multi-host TPU pods or multi-node GPUs). "
    "Also on when EGSC_DISTRIBUTED=1.",
    **fv,
  )
  flags.mark_flags_as_required(["config", "workdir"], **fv)


def main(argv, flag_values=None) -> int:
  """Runs the command on parsed flags; returns the exit status."""
  from absl import app, flags  # pylint: disable=g-import-not-at-top

  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS if flag_values is None else flag_values
  config_lib.validate(f.config)
  from egsc_jax import checkpointing  # pylint: disable=g-import-not-at-top

  checkpointing.quiet_orbax_logs()
  import jax  # pylint: disable=g-import-not-at-top

  if f.distributed or os.environ.get("EGSC_DISTRIBUTED") == "1":
    jax.distributed.initialize()
  from egsc_jax import train  # pylint: disable=g-import-not-at-top

  logging.info(
    "JAX process %d/%d, %d local / %d global devices: %s",
    jax.process_index(),
    jax.process_count(),
    jax.local_device_count(),
    jax.device_count(),
    jax.devices()[0].platform,
  )
  result = train.train_and_evaluate(f.config, f.workdir)
  logging.info(
    "finished: %s; workdir %s (TensorBoard: tensorboard --logdir %s)",
    result["status"],
    f.workdir,
    f.workdir,
  )
  if result.get("metrics"):
    # The headline scores; stage2/final_metrics.json and TensorBoard have all.
    logging.info(
      "final metrics: %s",
      "  ".join(f"{k}={v:.4g}" for k, v in sorted(result["metrics"].items()) if "/" not in k),
    )
  # A scheduler's retry loop resubmits on EXIT_PREEMPTED only.
  return errors.EXIT_PREEMPTED if result["status"] == "preempted" else errors.EXIT_OK


def run():
  """The `egsc-train` command."""
  errors.run_command(define_flags, main)


if __name__ == "__main__":
  run()
