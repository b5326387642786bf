"""The learning curve of a training run: its periodic scores as a table and a plot.

  python benchmarks/learning_curve.py --workdir=DIR [--out=docs/images/curve.png] [--stage=2]
  python benchmarks/learning_curve.py --workdir=official=DIR1 --workdir=standard=DIR2 --out=...

Reads the scalars training wrote to DIR/stage2's TensorBoard event files (the
scores of `train.eval_every` on `train.eval_split`, validation for runs since
the MNIST builders' 1.1.0 and test before: SSIM per direction and, on MNIST-Single,
colour match, digit accuracy and the per-exemplar-scheme scores) and prints
one markdown row per evaluation: the means and the weakest exemplar scheme of
each direction. With --out it also writes the SSIM curves as a PNG. DIR may be
gs://. Needs TensorFlow (to read the event files), like training.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from egsc_jax import paths  # pylint: disable=wrong-import-position
from egsc_jax.eval import plots  # pylint: disable=wrong-import-position

DIRECTIONS = (("a2b", "A->B"), ("b2a", "B->A"))
# In the plot, a run's two directions share a colour: A->B solid, B->A dashed.
LINESTYLES = {"a2b": "-", "b2a": "--"}


def read_scalars(stage_dir: str) -> dict[int, dict[str, float]]:
  """step -> {tag: value} over every event file in `stage_dir` (later files win)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  files = sorted(str(p) for p in paths.Path(stage_dir).glob("events.out.tfevents.*"))
  if not files:
    raise FileNotFoundError(
      f"no TensorBoard event files in {stage_dir}: is it a training "
      "run's stage directory (DIR/stage2)?"
    )
  out: dict[int, dict[str, float]] = {}
  for path in files:
    for record in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(record.numpy())
      for v in event.summary.value:
        if v.HasField("tensor"):
          array = tf.make_ndarray(v.tensor)
          if array.ndim:  # images and other non-scalar summaries
            continue
          value = float(array)
        else:
          value = v.simple_value
        out.setdefault(int(event.step), {})[v.tag] = value
  return out


def eval_rows(scalars: dict[int, dict[str, float]]) -> list[dict]:
  """The evaluations only (steps with `ssim_a2b`), in step order, each with the
  weakest exemplar scheme per direction (by SSIM) when per-scheme scores exist."""
  rows = []
  for step in sorted(scalars):
    s = scalars[step]
    if "ssim_a2b" not in s:
      continue
    row = {"iteration": step, **s}
    for d, _ in DIRECTIONS:
      schemes = {
        k.split("/")[1]: v for k, v in s.items() if k.startswith(f"{d}/") and k.endswith("/ssim")
      }
      if schemes:
        worst = min(schemes, key=schemes.get)
        row[f"worst_{d}"] = (
          worst.replace("_", " "),
          schemes[worst],
          s.get(f"{d}/{worst}/colour_match", np.nan),
        )
    rows.append(row)
  return rows


def markdown(rows: list[dict]) -> str:
  def cell(row, key):
    return f"{row[key]:.3f}" if key in row else "-"

  lines = [
    "| stage-2 iteration | SSIM A->B | SSIM B->A | colour match A->B / B->A | "
    "digit acc. A->B / B->A | weakest A->B scheme (SSIM / colour match) | "
    "weakest B->A scheme (SSIM / colour match) |",
    "|---" * 7 + "|",
  ]
  for r in rows:
    worst = [
      f"{r[f'worst_{d}'][0]} {r[f'worst_{d}'][1]:.3f} / {r[f'worst_{d}'][2]:.3f}"
      if f"worst_{d}" in r
      else "-"
      for d, _ in DIRECTIONS
    ]
    lines.append(
      f"| {r['iteration']} | {cell(r, 'ssim_a2b')} | {cell(r, 'ssim_b2a')} | "
      f"{cell(r, 'colour_match_a2b')} / {cell(r, 'colour_match_b2a')} | "
      f"{cell(r, 'digit_accuracy_a2b')} / {cell(r, 'digit_accuracy_b2a')} | "
      f"{worst[0]} | {worst[1]} |"
    )
  return "\n".join(lines)


def evaluated_split(workdir: str) -> tuple[str, str]:
  """(the split training evaluated, the dataset) from the run's config.json;
  runs from before train.eval_split evaluated on test."""
  import json  # pylint: disable=g-import-not-at-top

  config = json.loads(paths.Path(workdir, "config.json").read_text())
  return config.get("train", {}).get("eval_split", "test"), config["dataset"]


def _labelled(spec: str) -> tuple[str, str]:
  """'LABEL=DIR' -> (LABEL, DIR); a bare DIR is labelled by its last folder."""
  label, sep, workdir = spec.partition("=")
  if not sep or "/" in label or ":" in label:  # a path (or gs://...) without a label
    return os.path.basename(spec.rstrip("/")), spec
  return label, workdir


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument(
    "--workdir",
    required=True,
    action="append",
    help="a run's workdir; repeat as LABEL=DIR to compare runs",
  )
  p.add_argument("--stage", type=int, default=2)
  p.add_argument("--out", help="PNG of the SSIM curves (local or gs://)")
  p.add_argument("--title", help="default: the dataset and the split evaluated")
  args = p.parse_args(argv)
  runs = [_labelled(w) for w in args.workdir]
  curves, styles, splits = {}, {}, set()
  for label, workdir in runs:
    split, dataset = evaluated_split(workdir)
    splits.add(split)
    rows = eval_rows(read_scalars(os.path.join(workdir, f"stage{args.stage}")))
    if not rows:
      raise SystemExit(f"{workdir}/stage{args.stage} has no evaluations yet (train.eval_every).")
    if len(runs) > 1:
      print(f"\n{label} ({workdir}, {split}):\n")
    print(markdown(rows))
    its = [r["iteration"] for r in rows]
    prefix = f"{label}: " if len(runs) > 1 else ""
    for d, name in DIRECTIONS:
      curves[f"{prefix}SSIM {name}"] = (its, [r[f"ssim_{d}"] for r in rows])
      styles[f"{prefix}SSIM {name}"] = dict(
        color=f"C{len(styles) // 2 % 10}", linestyle=LINESTYLES[d]
      )
    if len(runs) == 1:
      for d, name in DIRECTIONS:
        if all(f"worst_{d}" in r for r in rows):
          curves[f"weakest {name} scheme"] = (its, [r[f"worst_{d}"][1] for r in rows])
          styles[f"weakest {name} scheme"] = dict(color="C1", linestyle=LINESTYLES[d])
  if len(splits) > 1:
    raise SystemExit(
      f"the runs were evaluated on different splits {sorted(splits)}: "
      "their curves are not comparable"
    )
  if args.out:
    split = splits.pop()
    paths.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    plots.plot_learning_curves(
      curves,
      path=args.out,
      styles=styles,
      ylabel=f"{split} SSIM",
      title=args.title or f"{dataset}, {split} SSIM against the ground truth",
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
