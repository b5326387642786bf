"""The same test pairs translated by several trained runs, side by side.

  python benchmarks/comparison_grid.py --workdir=LABEL=DIR [--workdir=LABEL=DIR ...] \\
      --out=PREFIX [--pairs=8] [--split=test]

For each direction, writes PREFIX_a2b.png and PREFIX_b2a.png: one row per pair
(the first --pairs pairs of the split, in stored order, exemplar = the other
image of the pair, noise id = the pair's index, as egsc-evaluate translates
them), the columns source | exemplar | ground truth | one translation per run,
titled with the runs' labels. The runs must be trained on the same dataset;
the pairs are read with the first run's config (DATA_DIR included).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from egsc_jax import api, grids, trained_run  # noqa: E402
from egsc_jax.eval import translations  # noqa: E402


def translated(trained, *, direction: str, pairs: int, split: str) -> dict[str, np.ndarray]:
  """A loaded run's (`trained_run.load_trained`) translations of the first
  `pairs` pairs, with their sources, exemplars and ground truth: uint8
  [pairs, H, W, 3] each."""
  translator = api.Translator.from_trained(trained, batch_size=pairs)
  batches = list(
    translations.translate_split(
      translator, trained.config, direction=direction, num_examples=pairs, split=split
    )
  )
  return {k: np.concatenate([b[k] for b in batches]) for k in ("pred", "source", "exemplar", "gt")}


def grid(runs: list[tuple[str, object]], *, direction: str, pairs: int, split: str) -> np.ndarray:
  """uint8 titled grid [.., .., 3] of the pairs (rows) by source, exemplar, ground
  truth and each run's translation (columns); runs are (label, loaded run)."""
  outs = [translated(t, direction=direction, pairs=pairs, split=split) for _, t in runs]
  first = outs[0]
  for (label, _), out in zip(runs, outs):
    if not np.array_equal(out["source"], first["source"]):
      raise SystemExit(f"{label}: its {split} pairs differ from {runs[0][0]}'s (another dataset?)")
  cols = [first["source"], first["exemplar"], first["gt"]] + [o["pred"] for o in outs]
  src, ex = direction[0].upper(), direction[-1].upper()
  titles = [f"source {src}", f"exemplar {ex}", "ground truth"] + [label for label, _ in runs]
  return grids.titled_grid(np.stack(cols, axis=1), titles)


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--workdir", action="append", required=True, help="LABEL=DIR, repeated")
  p.add_argument("--out", required=True, help="PREFIX of PREFIX_a2b.png and PREFIX_b2a.png")
  p.add_argument("--pairs", type=int, default=8)
  p.add_argument("--split", default="test")
  args = p.parse_args(argv)
  runs = []
  for spec in args.workdir:
    label, sep, workdir = spec.partition("=")
    if not sep:
      raise SystemExit(f"--workdir={spec!r}: expected LABEL=DIR")
    runs.append((label, trained_run.load_trained(workdir)))  # once, for both directions
  for direction in api.DIRECTIONS:
    path = f"{args.out}_{direction}.png"
    grids.save_png(grid(runs, direction=direction, pairs=args.pairs, split=args.split), path)
    print(f"wrote {path}")


if __name__ == "__main__":
  main()
