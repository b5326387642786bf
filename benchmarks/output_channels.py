"""Which output colours a trained MNIST-Single run can draw: the range of each
RGB channel of its A->B translations, per exemplar colour scheme.

  python benchmarks/output_channels.py --workdir=DIR [--workdir=DIR2 ...]

Sources: a black bar on white and its inverse (28x28, domain A's two
schemes). Exemplars: a bar of each of domain B's six (digit, background)
colour pairs. For each scheme it prints [min, max] of R, G and B over the
translations of both sources, in [-1, 1]. A channel whose maximum stays near
-1 for every scheme is never drawn (a tanh output pinned at its lower end):
docs/results.md, "The faithful runs with a signed AdaIN scale never draw
blue". Runs without TensorFlow.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from egsc_jax import Translator  # noqa: E402

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


def canvases() -> tuple[list[np.ndarray], list[str], list[np.ndarray]]:
  """(two A sources, six scheme names, six B exemplars), uint8 [28, 28, 3]."""
  black_on_white = np.full((28, 28, 3), 255, np.uint8)
  black_on_white[8:20, 10:18] = 0
  names, exemplars = [], []
  for fg, fg_rgb in COLOURS.items():
    for bg, bg_rgb in COLOURS.items():
      if fg == bg:
        continue
      e = np.empty((28, 28, 3), np.uint8)
      e[:] = bg_rgb
      e[6:22, 11:17] = fg_rgb
      names.append(f"{fg} on {bg}")
      exemplars.append(e)
  return [black_on_white, 255 - black_on_white], names, exemplars


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", action="append", required=True)
  args = parser.parse_args()
  sources, names, exemplars = canvases()
  for workdir in args.workdir:
    t = Translator.from_workdir(workdir, batch_size=12)
    y = np.stack(t.translate_network(sources, exemplars, "a2b"))  # [2, 6, 28, 28, 3]
    print(f"{workdir} (stage-2 iteration {t.trained.step})")
    for j, name in enumerate(names):
      ranges = "  ".join(
        f"{c} [{y[:, j, ..., k].min():+.2f}, {y[:, j, ..., k].max():+.2f}]"
        for k, c in enumerate("RGB")
      )
      print(f"  {name:15s} {ranges}")


if __name__ == "__main__":
  main()
