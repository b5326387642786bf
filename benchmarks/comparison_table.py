"""Markdown table of a benchmarks/compare_mnist_single.sh run: mean +- std over seeds.

  python benchmarks/comparison_table.py ROOT [DIR=VARIANT ...]

Reads every run ROOT/<variant>_s<seed> (extra runs elsewhere: DIR=VARIANT, e.g.
workdirs/mnist_single_cpu=egsc), its test scores from eval/results.json when
the evaluate command ran on it (on the test split: any other split is an
error naming the file), else training's final evaluation
(stage2/final_metrics.json: at the script's cpu budget the same 1,000 test
pairs, SSIM, colour match and digit accuracy only; at BUDGET=paper it is the
validation split, which is refused, so run EVALUATE=1 there), and its training wall time from
wall_seconds. The row names are the cpu budget's (`sn` is `:sn`, `egsc` is `:cpu`). Each cell
is the mean +- the standard deviation over the seeds (ddof 1). The last two
columns are the lowest colour match of any exemplar scheme in any seed, per
direction: the scheme a user would see fail.
"""

import json
import os
import re
import sys

import learning_curve  # benchmarks/learning_curve.py: the split a run's training evaluated
import numpy as np

ROWS = (
  ("cyclegan", "CycleGAN"),
  ("unit", "UNIT"),
  ("munit", "MUNIT"),
  ("sn_no_mask", "`:sn` w/o feature mask"),
  ("sn_no_adain", "`:sn` w/o AdaIN (and w/o the sign-normalised encoder)"),
  ("sn_no_perceptual", "`:sn` w/o L_P"),
  ("no_mask", "`:cpu` w/o feature mask"),
  ("no_adain", "`:cpu` w/o AdaIN (and w/o the sign-normalised encoder)"),
  ("no_perceptual", "`:cpu` w/o L_P"),
  ("egsc", "EGSC-IT + sign-normalised encoder + official_std AdaIN + colour loss (`:cpu`)"),
  ("sn", "EGSC-IT + sign-normalised encoder (`:sn`, the CPU default)"),
  ("faithful", "EGSC-IT as published (`:faithful` at this budget)"),
)
COLUMNS = (
  ("ssim_a2b", "SSIM A->B"),
  ("ssim_b2a", "SSIM B->A"),
  ("colour_match_a2b", "colour match A->B"),
  ("colour_match_b2a", "colour match B->A"),
  ("digit_accuracy_a2b", "digit acc. A->B"),
  ("digit_accuracy_b2a", "digit acc. B->A"),
)


def read_run(path: str, *, evaluated_only: bool = False) -> dict[str, float] | None:
  """The run's scores (flat keys as training logs them), or None if it has not
  finished (or, with `evaluated_only`, if the evaluate command has not scored it)."""
  results = os.path.join(path, "eval", "results.json")
  final = os.path.join(path, "stage2", "final_metrics.json")
  if os.path.exists(results):
    with open(results) as f:
      r = json.load(f)
    if r.get("split") != "test":
      # The table reports test numbers; a validation score would pass for one.
      raise SystemExit(
        f"{results}: scored on the {r.get('split')!r} split, not 'test': move it aside "
        "or run `python -m egsc_jax.evaluate --workdir=... --split=test`"
      )
    m = dict(r["metrics"])
    # The per-scheme (MNIST-Single) and per-grade (photo_grades) means under
    # the keys training logs them with ('a2b/red_on_green/colour_match').
    for group in ("per_scheme", "per_grade"):
      for direction, rows in r.get("details", {}).get(group, {}).items():
        for name, row in rows.items():
          m.update({f"{direction}/{name}/{k}": v for k, v in row.items() if k != "count"})
  elif os.path.exists(final) and not evaluated_only:
    # Training's evaluation is on the split its config names: the cpu
    # budget's is test, BUDGET=paper's validation.
    split, _ = learning_curve.evaluated_split(path)
    if split != "test":
      raise SystemExit(
        f"{final}: training evaluated on the {split!r} split, not 'test': score the run "
        "with `python -m egsc_jax.evaluate --workdir=...` (EVALUATE=1) first"
      )
    with open(final) as f:
      m = json.load(f)
  else:
    return None
  wall = os.path.join(path, "wall_seconds")
  if os.path.exists(wall):
    m["wall_seconds"] = float(open(wall).read())
  return m


def worst_scheme(m: dict[str, float], direction: str) -> tuple[str, float] | None:
  """(scheme, colour match) of the direction's lowest-scoring exemplar scheme."""
  cm = {
    k.split("/")[1]: v
    for k, v in m.items()
    if k.startswith(f"{direction}/") and k.endswith("/colour_match")
  }
  if not cm:
    return None
  s = min(cm, key=cm.get)
  return s.replace("_", " "), cm[s]


def collect(
  root: str, extra: dict[str, str], *, rows=ROWS, evaluated_only: bool = False
) -> dict[str, list[dict]]:
  """variant (of `rows`' keys) -> the finished runs' scores (each with its
  seed under 'seed'); `evaluated_only` as in read_run."""
  runs: dict[str, list[dict]] = {v: [] for v, _ in rows}
  names = sorted(os.listdir(root)) if os.path.isdir(root) else []
  for name in names:
    match = re.fullmatch(r"(\w+?)_s(\d+)", name)
    if match and match.group(1) in runs:
      m = read_run(os.path.join(root, name), evaluated_only=evaluated_only)
      if m is not None:
        runs[match.group(1)].append({**m, "seed": int(match.group(2))})
  for path, variant in extra.items():
    m = read_run(path, evaluated_only=evaluated_only)
    if m is not None:
      runs[variant].append({**m, "seed": path})
  return runs


def mean_std(values: list[float]) -> str:
  if not values:
    return "-"
  if len(values) == 1:
    return f"{values[0]:.3f}"
  return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def table(runs: dict[str, list[dict]]) -> str:
  lines = [
    "| method | seeds | "
    + " | ".join(c for _, c in COLUMNS)
    + " | lowest scheme colour match A->B | B->A | training wall time |",
    "|---" * (len(COLUMNS) + 5) + "|",
  ]
  for key, name in ROWS:
    rs = runs[key]
    if not rs:
      lines.append(f"| {name} | 0 | " + " | ".join("not run" for _ in COLUMNS) + " | - | - | - |")
      continue
    cells = [mean_std([r[k] for r in rs if k in r]) for k, _ in COLUMNS]
    worst = []
    for d in ("a2b", "b2a"):
      ws = [w for w in (worst_scheme(r, d) for r in rs) if w is not None]
      worst.append(
        f"{min(ws, key=lambda w: w[1])[1]:.3f} ({min(ws, key=lambda w: w[1])[0]})" if ws else "-"
      )
    walls = [r["wall_seconds"] / 60 for r in rs if "wall_seconds" in r]
    wall = f"{np.mean(walls):.1f} min" if walls else "-"
    lines.append(
      f"| {name} | {len(rs)} | " + " | ".join(cells) + f" | {worst[0]} | {worst[1]} | {wall} |"
    )
  return "\n".join(lines)


def main(root, extra):
  print(table(collect(root, extra)))


if __name__ == "__main__":
  main(sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:]))
