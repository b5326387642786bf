"""Translating image files with a trained run: `translate_paths(...)`, every
source with every exemplar, one PNG per pair and optionally a grid.

The egsc-translate command (`egsc_jax.cli.translate`) runs it; its docstring
says what is read, how it is resized and what is written.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np

from egsc_jax import api, errors, grids, paths, tiling
from egsc_jax.data import images as images_lib

GRID_NAME = "grid.png"


class InputError(errors.UserError, ValueError):
  """A --source or --exemplar path that cannot be used."""


@dataclasses.dataclass
class TranslateResult:
  """What `translate_paths` did.

  Attributes:
    written: the translation files written, source-major order.
    skipped: the unreadable input files, in the order met.
    grid: the grid file, or None.
    step: the stage-2 iteration of the checkpoint used.
    used_ema: whether the EMA parameters were used.
  """

  written: list[str]
  skipped: list[str]
  grid: str | None
  step: int
  used_ema: bool


def input_files(path: str, *, what: str) -> list[str]:
  """[path] for a file, the folder's image files (sorted, non-recursive) for a folder."""
  if paths.Path(path).is_file():
    return [path]
  if paths.Path(path).is_dir():
    files = images_lib.list_image_files(path)
    if not files:
      raise InputError(
        f"--{what}={path}: the folder holds no image files "
        f"({', '.join(images_lib.IMAGE_EXTENSIONS)})."
      )
    return files
  raise InputError(f"--{what}={path}: no such file or folder.")


def _stem(path: str) -> str:
  return os.path.splitext(os.path.basename(path))[0]


def _check_unique_stems(paths: list[str], *, what: str) -> None:
  """Output names use stems, so 'x.png' and 'x.jpg' would overwrite each other."""
  seen: dict[str, str] = {}
  for p in paths:
    other = seen.setdefault(_stem(p), p)
    if other != p:
      raise InputError(
        f"--{what}: {other} and {p} have the same name stem "
        f"{_stem(p)!r}, so their outputs would overwrite each other."
      )


def _read(path: str, skipped: list[str]) -> np.ndarray | None:
  try:
    return images_lib.read_image(path)
  except images_lib.ImageReadError as e:
    logging.error("Skipping unreadable image %s (%s)", e.path, e.reason)
    skipped.append(path)
    return None


def translate_paths(
  *,
  workdir: str | None = None,
  model: str | None = None,
  source: str,
  exemplar: str,
  output: str,
  direction: str = "a2b",
  grid: bool = False,
  native_size: bool = False,
  tile_size: int | None = tiling.DEFAULT_TILE_SIZE,
  seed: int = 0,
  batch_size: int = api.DEFAULT_BATCH_SIZE,
  use_ema: bool = True,
  checkpoint_fallback: bool = True,
) -> TranslateResult:
  """The translate command, with explicit arguments (see `cli.translate`).

  The model is a training workdir (`workdir`) or a file written by egsc-export
  (`model`): exactly one of them.

  Raises:
    InputError: a missing path, an empty folder, clashing output names, or not
      exactly one of workdir and model.
    trained_run.WorkdirError: the workdir holds no usable checkpoint.
    export.ExportError: `model` is not a readable export file.
  """
  if (workdir is None) == (model is None):
    raise InputError(
      "give the model as exactly one of --workdir (a training run) and "
      f"--model (an egsc-export file); got workdir={workdir!r}, "
      f"model={model!r}"
    )
  if direction not in api.DIRECTIONS:
    raise InputError(f"--direction must be one of {api.DIRECTIONS}, got {direction!r}.")
  source_paths = input_files(source, what="source")
  exemplar_paths = input_files(exemplar, what="exemplar")
  _check_unique_stems(source_paths, what="source")
  _check_unique_stems(exemplar_paths, what="exemplar")
  if model is not None:
    # An export holds the parameters it was written with (EMA where kept).
    translator = api.Translator.from_export(
      model, batch_size=batch_size, seed=seed, native_size=native_size, tile_size=tile_size
    )
  else:
    translator = api.Translator.from_workdir(
      workdir,
      use_ema=use_ema,
      checkpoint_fallback=checkpoint_fallback,
      batch_size=batch_size,
      seed=seed,
      native_size=native_size,
      tile_size=tile_size,
    )
  trained, trained_size = translator.trained, translator.image_size
  paths.Path(output).mkdir(parents=True, exist_ok=True)

  skipped: list[str] = []
  exemplars = []  # (path, uint8 image) of the readable exemplars
  for p in exemplar_paths:
    img = _read(p, skipped)
    if img is not None:
      exemplars.append((p, img))
  ex_images = [e for _, e in exemplars]
  n_ex = len(exemplars)

  written: list[str] = []
  n_done = 0  # readable sources translated so far
  rows: list[np.ndarray] = []  # grid margin: the readable sources
  cells: list[list[np.ndarray]] = []  # [row][exemplar] uint8 at the trained size
  # Sources are read and translated a few at a time, enough to fill one network
  # call, so a large folder is never held in memory at once.
  per_call = max(1, -(-translator.batch_size // max(n_ex, 1)))
  pending: list[tuple[str, np.ndarray]] = []

  def flush():
    if not pending:
      return
    # Readable source r with exemplar j: noise id r * E + j, as one call over
    # the whole folder would give.
    nonlocal n_done
    ids = (n_done + np.arange(len(pending)))[:, None] * n_ex + np.arange(n_ex)
    n_done += len(pending)
    ys = translator.translate_network(
      [img for _, img in pending], ex_images, direction, noise_ids=ids
    )
    for (src_path, img), y in zip(pending, ys):
      for (ex_path, _), yk in zip(exemplars, y):
        path = os.path.join(output, f"{_stem(src_path)}__{_stem(ex_path)}.png")
        grids.save_png(api.from_network_output(yk, img.shape[:2]), path)
        written.append(path)
      if grid:
        rows.append(grids.to_uint8(api.to_network_input(img, trained_size)))
        cells.append([api.from_network_output(yk, trained_size) for yk in y])
    pending.clear()

  for src_path in source_paths:
    img = _read(src_path, skipped)
    if img is None or not exemplars:
      continue
    if translator.needs_tiles(img):
      flush()  # a photo large enough for tiles goes alone, to bound the memory
    pending.append((src_path, img))
    if len(pending) >= per_call or translator.needs_tiles(img):
      flush()
  flush()

  grid_path = None
  if grid and rows and exemplars:
    grid_path = os.path.join(output, GRID_NAME)
    grids.save_png(
      grids.exemplar_grid(
        sources=rows,
        exemplars=[grids.to_uint8(api.to_network_input(e, trained_size)) for e in ex_images],
        translations=cells,
      ),
      grid_path,
    )
  logging.info(
    "wrote %d translations to %s (%d unreadable inputs skipped)", len(written), output, len(skipped)
  )
  return TranslateResult(
    written=written, skipped=skipped, grid=grid_path, step=trained.step, used_ema=trained.used_ema
  )


if __name__ == "__main__":
  # `python -m egsc_jax.translate` is the egsc-translate command.
  from egsc_jax.cli import translate as _command  # pylint: disable=g-import-not-at-top

  _command.run()
