"""The datasets by name: `get_builder(name)` (a reader's TFDS builder) and
`build(name)` (prepares it offline).

The egsc-build command (`egsc_jax.cli.build`) runs `prepare`; its docstring
says what the options do.
"""

from __future__ import annotations

import importlib
import json
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


# Builders that store images resized at build time: they take `max_side`.
RESIZED_AT_BUILD = ("image_folder",)


class UnknownDatasetError(errors.UserError, ValueError):
  """A dataset name that is not one of `BUILDER_MODULES`."""


class StaleBuildError(errors.UserError, ValueError):
  """An existing build that does not match what it would be reused for."""


def check_name(name: str) -> None:
  """NAME is a builder of BUILDER_MODULES, alone or with a config (`mnist_multiple/small`)."""
  if name.partition("/")[0] not in BUILDER_MODULES:
    raise UnknownDatasetError(
      f"unknown dataset {name!r}; valid names: {', '.join(BUILDER_MODULES)}"
    )


def dataset_name(config) -> str:
  """The TFDS name a config reads: config.dataset, with its builder config
  where it picks one (`config.data.layout` of mnist_multiple: `mnist_multiple/small`)."""
  layout = config.data.get("layout")
  return f"{config.dataset}/{layout}" if layout else config.dataset


def config_builder(config):
  """The prepared builder a config reads (`dataset_name`, config.data.data_dir);
  FileNotFoundError naming the build command when it is not built."""
  return get_builder(dataset_name(config), data_dir=config.data.get("data_dir"), require_built=True)


def get_builder(
  name: str, *, data_dir: str | None = None, require_built: bool = False, **builder_kwargs
):
  """Imports NAME's module (registering it with TFDS) and returns its builder.

  Args:
    name: one of `BUILDER_MODULES`, or one with its builder config
      (`dataset_name(config)`).
    data_dir: the TFDS data_dir (None: TFDS's default).
    require_built: readers (training, evaluation) pass True: a dataset not built
      in `data_dir` raises FileNotFoundError naming the command that builds it.
    **builder_kwargs: passed to the builder (`max_side` for RESIZED_AT_BUILD).

  Raises:
    UnknownDatasetError: NAME is not a known dataset (the message lists them).
  """
  check_name(name)
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  importlib.import_module(BUILDER_MODULES[name.partition("/")[0]])
  builder = tfds.builder(name, data_dir=data_dir, **builder_kwargs)
  if require_built and not builder.is_prepared():
    raise FileNotFoundError(
      f"Dataset {name!r} is not built in {builder.data_dir}. Build it first: "
      f"python -m egsc_jax.data.build {name}" + (f" --data_dir {data_dir}" if data_dir else "")
    )
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


def check_reuse(
  builder,
  *,
  manual_dir: str | None = None,
  max_side: int | None = None,
  image_size: Sequence[int] | None = None,
) -> None:
  """Refuses to reuse a prepared build that was made from something else.

  Only builders with a `reuse_problem` method (image_folder) record what they
  were built from; for the others this does nothing.

  Args:
    builder: a prepared builder.
    manual_dir: the source asked for now (None: not checked).
    max_side: the max side asked for exactly, 0 for full size (None: not checked).
    image_size: the (H, W) training asks for: a build whose stored images are
      smaller would be enlarged (None: not checked).

  Raises:
    StaleBuildError: one line saying what differs and how to rebuild.
  """
  check = getattr(builder, "reuse_problem", None)
  if check is None:
    return
  problem = check(
    manual_dir=manual_dir, max_side=max_side, min_side=max(image_size) if image_size else None
  )
  if problem:
    rebuild = f"egsc-build {builder.name} --data_dir {builder.data_dir_root}"
    rebuild += f" --manual_dir {manual_dir}" if manual_dir else " --manual_dir DIR"
    if max_side is not None or image_size:
      rebuild += f" --max_side {max_side if max_side is not None else max(image_size)}"
    raise StaleBuildError(
      f"refusing to reuse {builder.name} in {builder.data_dir}: {problem}. "
      f"Rebuild it ({rebuild} --overwrite) or build into another data_dir."
    )


def build(
  name: str,
  *,
  data_dir: str | None = None,
  manual_dir: str | None = None,
  overwrite: bool = False,
  max_side: int | None = None,
  image_size: Sequence[int] | None = None,
):
  """Builds (or reuses) dataset NAME; returns the prepared `tfds.core.DatasetBuilder`.

  Args:
    name: one of BUILDER_MODULES, or one with its builder config.
    data_dir: the TFDS data_dir (None: TFDS's default).
    manual_dir: the hand-downloaded files (None: DATA_DIR/downloads/manual).
    overwrite: rebuild even if a build exists.
    max_side: RESIZED_AT_BUILD only: the longest side stored, 0 for full size
      (None: max(image_size) when given, else the builder's default).
    image_size: the (H, W) training will read (training passes
      config.data.image_size); RESIZED_AT_BUILD builders store at least that.

  Raises:
    UnknownDatasetError: NAME is not a known dataset (the message lists them).
    StaleBuildError: an existing build was made from other files or at too
      small a size (`check_reuse`).
    FileNotFoundError: the builder's inputs are missing (its message says which).
  """
  check_name(name)
  hide_accelerators_from_tensorflow()
  kwargs = {}
  if name in RESIZED_AT_BUILD:
    if max_side is not None:
      kwargs["max_side"] = max_side or None
    elif image_size:
      kwargs["max_side"] = max(int(s) for s in image_size)
  elif max_side is not None:
    raise errors.UserError(
      f"--max_side is for {', '.join(RESIZED_AT_BUILD)} only; "
      f"{name} stores its images at a fixed size"
    )
  builder = get_builder(name, data_dir=data_dir, **kwargs)
  if builder.is_prepared() and not overwrite:
    check_reuse(builder, manual_dir=manual_dir, max_side=max_side, image_size=image_size)
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
