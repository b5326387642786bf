"""The datasets by name: `get_builder(name)` (a reader's TFDS builder) and
`build(name)` (prepares it offline).

The egsc-build command (`egsc_jax.cli.build`) runs `prepare`; its docstring
says what the options do.
"""

from __future__ import annotations

import importlib
import json

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


def check_name(name: str) -> None:
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
  check_name(name)
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
  check_name(name)
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


if __name__ == "__main__":
  # `python -m egsc_jax.data.build` is the egsc-build command.
  from egsc_jax.cli import build as _command  # pylint: disable=g-import-not-at-top
  _command.run()
