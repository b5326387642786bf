"""Builds a dataset ahead of training.

  egsc-build NAME [--data_dir DIR] [--manual_dir DIR] [--overwrite]
  python -m egsc_jax.data.build ...       (the same, without installing egsc-jax)

NAME is one of mnist_single, mnist_multiple, celeba_gender, gta5_bdd, image_folder,
photo_grades.
`--data_dir` defaults to TFDS's (`$TFDS_DATA_DIR` or ~/tensorflow_datasets);
`--manual_dir` to `DATA_DIR/downloads/manual`. A build that exists is reused unless
`--overwrite` is given (TFDS keys builds by name and version only, so a second
`image_folder` with other folders needs its own `--data_dir` or `--overwrite`).
TFDS shows a progress bar per split while it writes; at the end this prints where
the data went, the split sizes and the builder's metadata (skipped files, sources).
Nothing is downloaded. Exit status 0 when built, 1 with one `error: ...` line
for anything the user can fix (a missing input, an unknown name, a bad flag),
70 with a traceback for a bug (`egsc_jax.errors`).
"""
from __future__ import annotations

import os

from egsc_jax import errors
from egsc_jax.data import build
from egsc_jax.data.tf_devices import hide_accelerators_from_tensorflow


def define_flags(flag_values) -> None:
  """Defines the command's flags on `flag_values` (absl.flags.FLAGS for the CLI,
  a fresh absl.flags.FlagValues() in tests)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = dict(flag_values=flag_values)
  flags.DEFINE_string("data_dir", None, "Where TFDS writes the dataset.", **fv)
  flags.DEFINE_string("manual_dir", None,
                      "The hand-downloaded files (default: DATA_DIR/downloads/manual).",
                      **fv)
  flags.DEFINE_bool("overwrite", False, "Rebuild even if a build exists.", **fv)


def main(argv, flag_values=None) -> int:
  """Builds the dataset named by the one positional argument; returns the exit status."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS if flag_values is None else flag_values
  if len(argv) != 2:
    raise errors.UserError(
        f"expected one dataset NAME (one of: {', '.join(build.BUILDER_MODULES)}), got "
        f"{list(argv[1:])} (see egsc-build --help)")
  name = argv[1]
  build.check_name(name)   # before TensorFlow is imported
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  hide_accelerators_from_tensorflow()
  builder = build.get_builder(name, data_dir=f.data_dir)
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  # A notebook or an earlier caller may have turned the bars off.
  tfds.display_progress_bar(True)
  if builder.is_prepared() and not f.overwrite:
    print(f"{name} is already built; reusing it (pass --overwrite to rebuild).",
          flush=True)
  try:
    build.prepare(builder, manual_dir=f.manual_dir, overwrite=f.overwrite)
  except (errors.UserError, FileNotFoundError) as e:  # The message says which input.
    raise errors.UserError(f"cannot build {name}: {e}") from e
  print(build.describe(builder), flush=True)
  return errors.EXIT_OK


def run():
  """The `egsc-build` command."""
  errors.run_command(define_flags, main)


if __name__ == "__main__":
  run()
