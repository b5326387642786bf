"""What copying the source scores on Photo-Grades: the floor a model must beat.

The grades change colours and contrast, which SSIM and LPIPS weigh less than
structure, so the untranslated source already scores high against the ground
truth. This prints SSIM / LPIPS (VGG-16) of the source itself against the
ground truth, over every pair of each split and direction, overall and by the
grade of the pair's B image, with the scorer the evaluate command uses
(`eval.scores.accumulate` with `lpips_gt`):

  python benchmarks/photo_grades_floor.py [--data_dir=DIR] [--splits=validation,test]

Needs the built dataset (python -m egsc_jax.data.build photo_grades); no model.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from egsc_jax import config_lib, grids  # pylint: disable=wrong-import-position
from egsc_jax.data import input_pipeline  # pylint: disable=wrong-import-position
from egsc_jax.eval import scores  # pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def copy_scores(config, split: str, direction: str) -> scores.Stats:
  """The source as the translation of every pair of `split`, scored."""
  src, ex = ("a", "b") if direction == "a2b" else ("b", "a")
  s = scores.Stats()
  for b in input_pipeline.eval_batches(config, split=split, batch_size=100):
    keep = b["mask"]
    source = grids.to_uint8(b[src][keep])
    scores.accumulate(
      s,
      dict(
        pred=source,
        source=source,
        gt=grids.to_uint8(b[f"gt_{direction}"][keep]),
        exemplar=grids.to_uint8(b[ex][keep]),
        grade=b["grade_b"][keep],
      ),
      direction=direction,
      official_stretch=False,
      inception_weights=None,
      classifier=None,
      colour_match=False,
      segment=None,
      lpips_gt=True,
    )
  return s


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data_dir", default=None, help="TFDS data_dir of the build")
  parser.add_argument("--splits", default="validation,test")
  args = parser.parse_args()
  config = config_lib.load_file(os.path.join(REPO, "configs", "photo_grades.py"))
  config.data.data_dir = args.data_dir
  print("| split, direction | all | " + " | ".join(scores_order()) + " |")
  for split in args.splits.split(","):
    for direction in ("a2b", "b2a"):
      s = copy_scores(config, split, direction)
      rows = scores.per_scheme(s)
      cells = [f"{np.concatenate(s.ssim).mean():.3f} / {np.concatenate(s.lpips).mean():.3f}"]
      cells += [f"{rows[g]['ssim']:.3f} / {rows[g]['lpips']:.3f}" for g in scores_order()]
      print(f"| {split}, {direction} | " + " | ".join(cells) + " |", flush=True)


def scores_order() -> tuple[str, ...]:
  from egsc_jax.data import photo_grading  # pylint: disable=g-import-not-at-top

  return photo_grading.GRADE_NAMES


if __name__ == "__main__":
  main()
