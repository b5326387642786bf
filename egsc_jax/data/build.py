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

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence

from egsc_jax import errors
from egsc_jax.data.tf_devices import hide_accelerators_from_tensorflow

# Builder name -> module; imported only when asked for, so that building one
# dataset never needs another's code (or its optional dependencies).
BUILDER_MODULES = {
    "mnist_single": "egsc_jax.data.mnist_single",
    "mnist_multiple": "egsc_jax.data.mnist_multiple",
    "celeba_gender": "egsc_jax.data.celeba_gender",
    "gta5_bdd": "egsc_jax.data.gta5_bdd",
    "image_folder": "egsc_jax.data.image_folder",
    "photo_grades": "egsc_jax.data.photo_grades",
}


class UnknownDatasetError(errors.UserError, ValueError):
  """A dataset name that is not one of `BUILDER_MODULES`."""


def _check_name(name: str) -> None:
  if name not in BUILDER_MODULES:
    raise UnknownDatasetError(
        f"unknown dataset {name!r}; valid names: {', '.join(BUILDER_MODULES)}"
    )


def get_builder(name: str, *, data_dir: str | None = None, require_built: bool = False):
  """Imports NAME's module (registering it with TFDS) and returns its builder.

  Args:
    name: one of `BUILDER_MODULES` (config.dataset).
    data_dir: the TFDS data_dir (None: TFDS's default).
    require_built: readers (training, evaluation) pass True: a dataset not built
      in `data_dir` raises FileNotFoundError naming the command that builds it.

  Raises:
    UnknownDatasetError: NAME is not a known dataset (the message lists them).
  """
  _check_name(name)
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  importlib.import_module(BUILDER_MODULES[name])
  builder = tfds.builder(name, data_dir=data_dir)
  if require_built and not builder.is_prepared():
    raise FileNotFoundError(
        f"Dataset {name!r} is not built in {builder.data_dir}. Build it first: "
        f"python -m egsc_jax.data.build {name}"
        + (f" --data_dir {data_dir}" if data_dir else ""))
  return builder


def prepare(builder, *, manual_dir: str | None = None, overwrite: bool = False):
  """Runs `builder.download_and_prepare` offline; returns the builder."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  mode = (
      tfds.download.GenerateMode.FORCE_REDOWNLOAD
      if overwrite
      else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
  )
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(
          manual_dir=manual_dir,
          download_mode=mode,
          # Everything is local: never ask GCS for a prepared copy.
          try_download_gcs=False,
      )
  )
  return builder


def build(
    name: str,
    *,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    overwrite: bool = False,
):
  """Builds (or reuses) dataset NAME; returns the prepared `tfds.core.DatasetBuilder`.

  Raises:
    UnknownDatasetError: NAME is not a known dataset (the message lists them).
    FileNotFoundError: the builder's inputs are missing (its message says which).
  """
  _check_name(name)
  hide_accelerators_from_tensorflow()
  builder = get_builder(name, data_dir=data_dir)
  return prepare(builder, manual_dir=manual_dir, overwrite=overwrite)


def describe(builder) -> str:
  """Where a prepared builder's data lie, its split sizes and its metadata."""
  lines = [f"{builder.name} {builder.version} is in {builder.data_dir}"]
  for split, info in sorted(builder.info.splits.items()):
    lines.append(f"  {split}: {info.num_examples} examples")
  metadata = builder.info.metadata
  if metadata:
    text = json.dumps(dict(metadata), indent=2, sort_keys=True, default=str)
    lines.append("  metadata: " + text.replace("\n", "\n  "))
  return "\n".join(lines)


class _ArgumentParser(argparse.ArgumentParser):
  """Reports a bad command line as a one-line UserError (argparse would print
  the usage and exit 2)."""

  def error(self, message):
    raise errors.UserError(f"{message} (see {self.prog} --help)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = _ArgumentParser(
      prog="egsc-build",
      description="Build one of egsc-jax's TFDS datasets ahead of training.",
  )
  parser.add_argument("name", metavar="NAME", help="one of: " + ", ".join(BUILDER_MODULES))
  parser.add_argument("--data_dir", default=None, help="where TFDS writes the dataset")
  parser.add_argument(
      "--manual_dir", default=None,
      help="the hand-downloaded files (default: DATA_DIR/downloads/manual)",
  )
  parser.add_argument(
      "--overwrite", action="store_true", help="rebuild even if a build exists"
  )
  args = parser.parse_args(argv)
  if args.name not in BUILDER_MODULES:
    parser.error(
        f"unknown dataset {args.name!r}; valid names: {', '.join(BUILDER_MODULES)}"
    )
  return args


def main(argv: Sequence[str] | None = None) -> int:
  """Command-line entry point; returns the exit status (0 on success)."""
  try:
    args = parse_args(argv)
  except errors.UserError as e:
    return errors.report(e)
  logging.basicConfig(
      level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
  )
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  hide_accelerators_from_tensorflow()
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  # A notebook or an earlier caller may have turned the bars off.
  tfds.display_progress_bar(True)
  builder = get_builder(args.name, data_dir=args.data_dir)
  if builder.is_prepared() and not args.overwrite:
    print(
        f"{args.name} is already built; reusing it (pass --overwrite to rebuild).",
        flush=True,
    )
  try:
    prepare(builder, manual_dir=args.manual_dir, overwrite=args.overwrite)
  except (errors.UserError, FileNotFoundError) as e:  # The message says which input.
    return errors.report(errors.UserError(f"cannot build {args.name}: {e}"))
  print(describe(builder), flush=True)
  return errors.EXIT_OK


def run():
  """The `egsc-build` command."""
  sys.exit(errors.call(main))


if __name__ == "__main__":
  run()
