"""Builds a dataset ahead of training.

  egsc-build NAME [--data_dir DIR] [--manual_dir DIR] [--max_side N] [--overwrite]
  python -m egsc_jax.data.build ...       (the same, without installing egsc-jax)

NAME is one of mnist_single, mnist_multiple, celeba_gender, gta5_bdd, image_folder,
photo_grades.
`--data_dir` defaults to TFDS's (`$TFDS_DATA_DIR` or ~/tensorflow_datasets);
`--manual_dir` to `DATA_DIR/downloads/manual`. `--max_side` (image_folder only)
is the longest side stored, 0 for full size (image_folder.py has the policy).

A build that exists is reused unless `--overwrite` is given. TFDS keys builds by
name and version only, so before reusing one, builders that record what they
were built from (image_folder) compare it with what is asked now (`--manual_dir`
when given, `--max_side`, or training's image size): a build of other files or
of too small images is refused with one line saying how to rebuild
(`StaleBuildError`). Training goes through the same check (`data.build.build`).
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
  flags.DEFINE_string(
    "manual_dir", None, "The hand-downloaded files (default: DATA_DIR/downloads/manual).", **fv
  )
  flags.DEFINE_integer(
    "max_side",
    None,
    "image_folder only: the longest side stored, aspect kept, never "
    "enlarged; 0 keeps full size (default: the builder's, 256).",
    lower_bound=0,
    **fv,
  )
  flags.DEFINE_bool("overwrite", False, "Rebuild even if a build exists.", **fv)


def main(argv, flag_values=None) -> int:
  """Builds the dataset named by the one positional argument; returns the exit status."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  f = flags.FLAGS if flag_values is None else flag_values
  if len(argv) != 2:
    raise errors.UserError(
      f"expected one dataset NAME (one of: {', '.join(build.BUILDER_MODULES)}), got "
      f"{list(argv[1:])} (see egsc-build --help)"
    )
  name = argv[1]
  build.check_name(name)  # before TensorFlow is imported
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  hide_accelerators_from_tensorflow()
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  # A notebook or an earlier caller may have turned the bars off.
  tfds.display_progress_bar(True)
  reused = build.get_builder(name, data_dir=f.data_dir).is_prepared() and not f.overwrite
  try:
    # build() refuses to reuse a build of other files or sizes (StaleBuildError,
    # whose message says how to rebuild).
    builder = build.build(
      name, data_dir=f.data_dir, manual_dir=f.manual_dir, overwrite=f.overwrite, max_side=f.max_side
    )
  except build.StaleBuildError:
    raise
  except (errors.UserError, FileNotFoundError) as e:  # The message says which input.
    raise errors.UserError(f"cannot build {name}: {e}") from e
  if reused:
    print(f"{name} is already built; reusing it (pass --overwrite to rebuild).", flush=True)
  print(build.describe(builder), flush=True)
  return errors.EXIT_OK


def run():
  """The `egsc-build` command."""
  errors.run_command(define_flags, main)


if __name__ == "__main__":
  run()
