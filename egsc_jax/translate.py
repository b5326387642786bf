"""Translates your own images with a trained run: every source with every exemplar.

  egsc-translate --workdir=DIR --source=PATH --exemplar=PATH \\
      --output=OUT [--direction=a2b|b2a] [--grid] [--native_size] [--seed=0]

PATH is an image file or a folder (its image files, not sub-folders, sorted by
name). With --direction=a2b the sources are domain A images and the exemplars
domain B images (b2a: the reverse). For each readable pair the translation is
written as OUT/<source stem>__<exemplar stem>.png at the source's size; --grid
also writes OUT/grid.png: sources as rows, exemplars as columns, the inputs on
the margins (top-left cell white), every cell at the trained resolution.

Inputs of any size and mode (grey, RGBA on white, palette, 16-bit) are read as
8-bit RGB (`data.images.read_image`), resized bilinearly to the network size and
scaled to [-1, 1], as the training pipeline does. The network runs at the trained
resolution, or with --native_size at the source's size rounded down to a
multiple of 2**n_downsample (exemplars are resized to the same size); the result
is resized back to the source's size. Memory grows with the pixels: about 0.26
GB per megapixel at ngf 8 and 1.6-1.9 GB at ngf 64 on CPU (docs/benchmarks.md);
a 12-megapixel photo takes 3.6 GB at ngf 8. An unreadable file gets one error line
naming it and is skipped. The latent noise follows config.model.test_noise
(seeded by --seed). An unreadable newest checkpoint is passed over with a
warning for the next older one (--nocheckpoint_fallback: stop instead). Exit
status 0 when at least one translation was written, 1 for an error the message
explains (`egsc_jax.errors`).
"""
from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np

from egsc_jax import checkpointing, errors, grids, inference, paths
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
      raise InputError(f"--{what}={path}: the folder holds no image files "
                       f"({', '.join(images_lib.IMAGE_EXTENSIONS)}).")
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
      raise InputError(f"--{what}: {other} and {p} have the same name stem "
                       f"{_stem(p)!r}, so their outputs would overwrite each other.")


def _read(path: str, skipped: list[str]) -> np.ndarray | None:
  try:
    return images_lib.read_image(path)
  except images_lib.ImageReadError as e:
    logging.error("Skipping unreadable image %s (%s)", e.path, e.reason)
    skipped.append(path)
    return None


def translate_paths(*, workdir: str, source: str, exemplar: str, output: str,
                    direction: str = "a2b", grid: bool = False, native_size: bool = False,
                    seed: int = 0, batch_size: int = inference.DEFAULT_BATCH_SIZE,
                    use_ema: bool = True, checkpoint_fallback: bool = True
                    ) -> TranslateResult:
  """The translate command, with explicit arguments (see the module docstring).

  Raises:
    InputError: a missing path, an empty folder, or clashing output names.
    inference.WorkdirError: the workdir holds no usable checkpoint.
  """
  if direction not in inference.DIRECTIONS:
    raise InputError(f"--direction must be one of {inference.DIRECTIONS}, "
                     f"got {direction!r}.")
  source_paths = input_files(source, what="source")
  exemplar_paths = input_files(exemplar, what="exemplar")
  _check_unique_stems(source_paths, what="source")
  _check_unique_stems(exemplar_paths, what="exemplar")
  translator = inference.Translator.from_workdir(
      workdir, use_ema=use_ema, checkpoint_fallback=checkpoint_fallback,
      batch_size=batch_size, seed=seed, native_size=native_size)
  trained, trained_size = translator.trained, translator.image_size
  paths.Path(output).mkdir(parents=True, exist_ok=True)

  skipped: list[str] = []
  exemplars = []   # (path, uint8 image) of the readable exemplars
  for p in exemplar_paths:
    img = _read(p, skipped)
    if img is not None:
      exemplars.append((p, img))
  ex_images = [e for _, e in exemplars]
  n_ex = len(exemplars)

  written: list[str] = []
  n_done = 0                               # readable sources translated so far
  rows: list[np.ndarray] = []              # grid margin: the readable sources
  cells: list[list[np.ndarray]] = []       # [row][exemplar] uint8 at the trained size
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
    ys = translator.translate_network([img for _, img in pending], ex_images, direction,
                                      noise_ids=ids)
    for (src_path, img), y in zip(pending, ys):
      for (ex_path, _), yk in zip(exemplars, y):
        path = os.path.join(output, f"{_stem(src_path)}__{_stem(ex_path)}.png")
        grids.save_png(inference.from_network_output(yk, img.shape[:2]), path)
        written.append(path)
      if grid:
        rows.append(grids.to_uint8(inference.to_network_input(img, trained_size)))
        cells.append([inference.from_network_output(yk, trained_size) for yk in y])
    pending.clear()

  for src_path in source_paths:
    img = _read(src_path, skipped)
    if img is None or not exemplars:
      continue
    pending.append((src_path, img))
    if len(pending) >= per_call:
      flush()
  flush()

  grid_path = None
  if grid and rows and exemplars:
    grid_path = os.path.join(output, GRID_NAME)
    grids.save_png(grids.exemplar_grid(
        sources=rows,
        exemplars=[grids.to_uint8(inference.to_network_input(e, trained_size))
                   for e in ex_images],
        translations=cells), grid_path)
  logging.info("wrote %d translations to %s (%d unreadable inputs skipped)",
               len(written), output, len(skipped))
  return TranslateResult(written=written, skipped=skipped, grid=grid_path,
                         step=trained.step, used_ema=trained.used_ema)


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------

def define_flags(flag_values) -> None:
  """Defines the command's flags on `flag_values` (absl.flags.FLAGS for the CLI,
  a fresh absl.flags.FlagValues() in tests)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = dict(flag_values=flag_values)
  flags.DEFINE_string("workdir", None, "A training workdir (config.json, stage2/).", **fv)
  flags.DEFINE_string("source", None, "An image file or a folder of images to translate.",
                      **fv)
  flags.DEFINE_string("exemplar", None, "An image file or a folder of exemplars.", **fv)
  flags.DEFINE_string("output", None, "The folder the translations are written to.", **fv)
  flags.DEFINE_enum("direction", "a2b", list(inference.DIRECTIONS),
                    "a2b: sources from domain A, exemplars from B; b2a the reverse.", **fv)
  flags.DEFINE_bool("grid", False, "Also write grid.png (sources x exemplars).", **fv)
  flags.DEFINE_bool("native_size", False,
                    "Run at the source's size (rounded down to a multiple of "
                    "2**n_downsample) instead of the trained resolution.", **fv)
  flags.DEFINE_integer("seed", 0, "Seed of the latent noise (config.model.test_noise).",
                       **fv)
  flags.DEFINE_integer("batch_size", inference.DEFAULT_BATCH_SIZE,
                       "Pairs per network call (rounded up to a multiple of the "
                       "device count).", **fv)
  flags.DEFINE_bool("use_ema", True, "Use the EMA parameters when the run kept them.", **fv)
  flags.DEFINE_bool("checkpoint_fallback", True,
                    "When the latest checkpoint cannot be read, warn and use the next "
                    "older one; --nocheckpoint_fallback stops with an error.", **fv)
  flags.mark_flags_as_required(["workdir", "source", "exemplar", "output"], **fv)


def main(argv, flag_values=None) -> int:
  """Runs the command on parsed flags; returns the exit status."""
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS if flag_values is None else flag_values
  checkpointing.quiet_orbax_logs()
  try:
    result = translate_paths(workdir=f.workdir, source=f.source, exemplar=f.exemplar,
                             output=f.output, direction=f.direction, grid=f.grid,
                             native_size=f.native_size, seed=f.seed,
                             batch_size=f.batch_size, use_ema=f.use_ema,
                             checkpoint_fallback=f.checkpoint_fallback)
  except errors.UserError as e:
    return errors.report(e)
  print(f"{len(result.written)} translations written to {f.output}"
        + (f", grid {result.grid}" if result.grid else "")
        + (f"; {len(result.skipped)} unreadable inputs skipped" if result.skipped else ""))
  if not result.written:
    return errors.report(InputError("no translation was written (every input was "
                                    "unreadable)"))
  return errors.EXIT_OK


def run():
  """The `egsc-translate` command."""
  errors.run_command(define_flags, main)


if __name__ == "__main__":
  run()
