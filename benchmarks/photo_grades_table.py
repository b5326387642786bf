"""Markdown tables of a benchmarks/compare_photo_grades.sh run: mean +- std over seeds.

  python benchmarks/photo_grades_table.py ROOT [DIR=VARIANT ...]

Reads each run ROOT/<variant>_s<seed> (extra runs elsewhere: DIR=VARIANT)
that the evaluate command has scored on test (eval/results.json; a run still
training is left out, a score of another split is an error naming the file,
as in comparison_table.py). Prints two tables: SSIM and LPIPS against the
ground truth per direction, with the training wall time; then SSIM / LPIPS by
the grade of the pair's B image, per direction. Each cell is the mean +- the
standard deviation over the seeds (ddof 1).
"""

import os
import sys

import comparison_table  # benchmarks/comparison_table.py: read_run, collect, mean_std
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from egsc_jax.data import photo_grading  # noqa: E402  (numpy only)

ROWS = (
  ("faithful", "EGSC-IT as published (`:faithful`)"),
  ("no_mask", "EGSC-IT w/o feature mask (`:faithful,no_mask`)"),
  ("cpu", "the tailored MNIST-Single setting (`:cpu`)"),
  ("unit", "UNIT (`:faithful,unit`)"),
  ("cyclegan", "CycleGAN (`:faithful,cyclegan`)"),
)
GRADES = photo_grading.GRADE_NAMES  # the builder's order: day, night, sepia, faded, cool
DIRECTIONS = (("a2b", "A->B"), ("b2a", "B->A"))


def collect(root: str, extra: dict[str, str]) -> dict[str, list[dict]]:
  """variant -> its runs scored on test by the evaluate command; a run still
  training, or trained and not yet evaluated, is left out."""
  return comparison_table.collect(root, extra, rows=ROWS, evaluated_only=True)


def _cell(rs: list[dict], *keys: str) -> str:
  return " / ".join(comparison_table.mean_std([r[k] for r in rs if k in r]) for k in keys)


def overall_table(runs: dict[str, list[dict]]) -> str:
  head = " | ".join(f"SSIM {d} | LPIPS {d}" for _, d in DIRECTIONS)
  lines = [f"| method | runs | {head} | training wall time |", "|---" * 7 + "|"]
  for key, name in ROWS:
    rs = runs[key]
    if not rs:
      lines.append(f"| {name} | 0 |" + " not run |" * 5)
      continue
    cells = [_cell(rs, f"{m}_{d}") for d, _ in DIRECTIONS for m in ("ssim", "lpips_gt")]
    walls = [r["wall_seconds"] / 60 for r in rs if "wall_seconds" in r]
    wall = f"{np.mean(walls):.0f} min" if walls else "-"
    lines.append(f"| {name} | {len(rs)} | " + " | ".join(cells) + f" | {wall} |")
  return "\n".join(lines)


def grade_table(runs: dict[str, list[dict]], direction: str) -> str:
  lines = [
    "| method | " + " | ".join(GRADES) + " |",
    "|---" * (len(GRADES) + 1) + "|",
  ]
  for key, name in ROWS:
    rs = runs[key]
    cells = [
      _cell(rs, f"{direction}/{g}/ssim", f"{direction}/{g}/lpips") if rs else "not run"
      for g in GRADES
    ]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(root: str, extra: dict[str, str]) -> None:
  runs = collect(root, extra)
  print(overall_table(runs))
  for d, name in DIRECTIONS:
    print(f"\nSSIM / LPIPS by the grade of the pair's B image, {name}:\n")
    print(grade_table(runs, d))


if __name__ == "__main__":
  main(sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:]))
