"""Translates your own images with a trained run: every source with every exemplar.

  egsc-translate --workdir=DIR --source=PATH --exemplar=PATH \\
      --output=OUT [--direction=a2b|b2a] [--grid] [--native_size] [--tile_size=512]
      [--seed=0]
  egsc-translate --model=FILE ...      (a model written by egsc-export, no workdir)
  python -m egsc_jax.translate ...     (the same command, without installing egsc-jax)

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
is resized back to the source's size. A source larger than one tile
(--tile_size, default 512, plus the network's halo) runs in overlapping tiles
with every statistic taken over the whole image, equal to the untiled result
up to float rounding, in memory bounded by the tile (egsc_jax/tiling.py;
docs/benchmarks.md has the memory table). An unreadable file gets one error line
naming it and is skipped. The latent noise follows config.model.test_noise
(seeded by --seed). An unreadable newest checkpoint is passed over with a
warning for the next older one (--nocheckpoint_fallback: stop instead). Exit
status 0 when at least one translation was written, 1 for an error the message
explains (`egsc_jax.errors`).
"""

from __future__ import annotations

from egsc_jax import api, checkpointing, errors, tiling, translate


def define_flags(flag_values) -> None:
  """Defines the command's flags on `flag_values` (absl.flags.FLAGS for the CLI,
  a fresh absl.flags.FlagValues() in tests)."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  fv = dict(flag_values=flag_values)
  flags.DEFINE_string(
    "workdir", None, "A training workdir (config.json, stage2/); or give --model.", **fv
  )
  flags.DEFINE_string(
    "model",
    None,
    "A model file written by egsc-export, instead of --workdir (needs no TensorFlow).",
    **fv,
  )
  flags.DEFINE_string("source", None, "An image file or a folder of images to translate.", **fv)
  flags.DEFINE_string("exemplar", None, "An image file or a folder of exemplars.", **fv)
  flags.DEFINE_string("output", None, "The folder the translations are written to.", **fv)
  flags.DEFINE_enum(
    "direction",
    "a2b",
    list(api.DIRECTIONS),
    "a2b: sources from domain A, exemplars from B; b2a the reverse.",
    **fv,
  )
  flags.DEFINE_bool("grid", False, "Also write grid.png (sources x exemplars).", **fv)
  flags.DEFINE_bool(
    "native_size",
    False,
    "Run at the source's size (rounded down to a multiple of "
    "2**n_downsample) instead of the trained resolution.",
    **fv,
  )
  flags.DEFINE_integer(
    "tile_size",
    tiling.DEFAULT_TILE_SIZE,
    "With --native_size, images larger than one tile (this core side plus the "
    "network's halo) run in overlapping tiles, exactly (0: never tile).",
    **fv,
  )
  flags.DEFINE_integer("seed", 0, "Seed of the latent noise (config.model.test_noise).", **fv)
  flags.DEFINE_integer(
    "batch_size",
    api.DEFAULT_BATCH_SIZE,
    "Pairs per network call (rounded up to a multiple of the device count).",
    **fv,
  )
  flags.DEFINE_bool("use_ema", True, "Use the EMA parameters when the run kept them.", **fv)
  flags.DEFINE_bool(
    "checkpoint_fallback",
    True,
    "When the latest checkpoint cannot be read, warn and use the next "
    "older one; --nocheckpoint_fallback stops with an error.",
    **fv,
  )
  flags.mark_flags_as_required(["source", "exemplar", "output"], **fv)
  flags.mark_flags_as_mutual_exclusive(["workdir", "model"], required=True, **fv)


def main(argv, flag_values=None) -> int:
  """Runs the command on parsed flags; returns the exit status."""
  from absl import app, flags  # pylint: disable=g-import-not-at-top

  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS if flag_values is None else flag_values
  checkpointing.quiet_orbax_logs()
  result = translate.translate_paths(
    workdir=f.workdir,
    model=f.model,
    source=f.source,
    exemplar=f.exemplar,
    output=f.output,
    direction=f.direction,
    grid=f.grid,
    native_size=f.native_size,
    tile_size=f.tile_size or None,
    seed=f.seed,
    batch_size=f.batch_size,
    use_ema=f.use_ema,
    checkpoint_fallback=f.checkpoint_fallback,
  )
  print(
    f"{len(result.written)} translations written to {f.output}"
    + (f", grid {result.grid}" if result.grid else "")
    + (f"; {len(result.skipped)} unreadable inputs skipped" if result.skipped else "")
  )
  if not result.written:
    raise translate.InputError("no translation was written (every input was unreadable)")
  return errors.EXIT_OK


def run():
  """The `egsc-translate` command."""
  errors.run_command(define_flags, main)


if __name__ == "__main__":
  run()
