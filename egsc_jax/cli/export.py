"""A trained model as one file to share: the inference parameters and the config.

  egsc-export --workdir=workdirs/mnist_single_sn --output=mnist_single.egsc
  python -m egsc_jax.export ...            (the same command from a checkout)

then, anywhere with egsc-jax installed (no TensorFlow, no workdir needed):

  t = Translator.from_export("mnist_single.egsc")

The file holds the stage-2 generator's parameters (the EMA ones when the run
kept them), the frozen exemplar feature networks and the run's config; no
optimizer states, no discriminators. What is in it, exactly: `egsc_jax.export`.
"""

from __future__ import annotations

from typing import Sequence

from egsc_jax import errors, export


def define_flags(flag_values) -> None:
  """Defines the command's flags on `flag_values` (absl.flags.FLAGS for the CLI,
  a fresh absl.flags.FlagValues() in tests)."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  fv = dict(flag_values=flag_values)
  flags.DEFINE_string("workdir", None, "The training workdir to export (local or gs://).", **fv)
  flags.DEFINE_string("output", None, "The file to write, e.g. model.egsc (local or gs://).", **fv)
  flags.DEFINE_bool("use_ema", True, "Export the EMA parameters when the run kept them.", **fv)
  flags.DEFINE_bool(
    "checkpoint_fallback",
    True,
    "When the latest checkpoint cannot be read, export the next older one (with a warning).",
    **fv,
  )
  flags.mark_flags_as_required(["workdir", "output"], **fv)


def main(argv: Sequence[str], flag_values=None) -> int:
  """Runs the command on parsed flags; returns the exit status."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  if len(argv) > 1:
    raise errors.UserError(f"unexpected arguments: {list(argv[1:])}")
  fv = flags.FLAGS if flag_values is None else flag_values
  written = export.export(
    fv.workdir, fv.output, use_ema=fv.use_ema, checkpoint_fallback=fv.checkpoint_fallback
  )
  print(
    f"wrote {written['output']}: {written['bytes'] / 2**20:.1f} MiB, stage-2 "
    f"iteration {written['step']} ({'EMA' if written['used_ema'] else 'live'} "
    f"parameters); load it with Translator.from_export",
    flush=True,
  )
  return errors.EXIT_OK


def run():
  """The `egsc-export` command."""
  errors.run_command(define_flags, main)


if __name__ == "__main__":
  run()
