"""results.json, results.md and pixel_accuracy.png of an evaluation.

`write(results, eval_dir)` writes all three from the results dict that
`evaluate.evaluate_workdir` returns; `markdown(results)` is the page the
egsc-evaluate command also prints.
"""

from __future__ import annotations

import json
import logging
import math
import os

import numpy as np

from egsc_jax import paths
from egsc_jax.eval import fid_kid, plots, scores

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
PIXEL_ACCURACY_PNG = "pixel_accuracy.png"
DIRECTION_NAMES = {"a2b": "A→B", "b2a": "B→A"}
DIRECTIONS = tuple(DIRECTION_NAMES)  # api.DIRECTIONS, without importing JAX


def write(results: dict, eval_dir: str) -> None:
  """results.json, results.md and (with pixel-accuracy curves against a ground
  truth) pixel_accuracy.png in `eval_dir`."""
  curves = results["curves"]
  if any(k.startswith("pixel_accuracy_") for k in curves):
    plot_pixel_accuracy(
      curves,
      path=os.path.join(eval_dir, PIXEL_ACCURACY_PNG),
      title=f"Pixel accuracy, {results['dataset']} {results['split']} "
      f"({results['num_examples']} pairs)",
    )
  paths.Path(eval_dir, RESULTS_JSON).write_text(json.dumps(results, indent=2))
  paths.Path(eval_dir, RESULTS_MD).write_text(markdown(results))
  logging.info("wrote %s", os.path.join(eval_dir, RESULTS_JSON))


def plot_pixel_accuracy(curves: dict[str, list], *, path: str, title: str) -> None:
  plot = {
    DIRECTION_NAMES[d]: np.asarray(curves[f"pixel_accuracy_{d}"])
    for d in DIRECTIONS
    if f"pixel_accuracy_{d}" in curves
  }
  plot.update(
    {
      f"{DIRECTION_NAMES[d]} (stretched)": np.asarray(
        curves[f"pixel_accuracy_official_stretch_{d}"]
      )
      for d in DIRECTIONS
      if f"pixel_accuracy_official_stretch_{d}" in curves
    }
  )
  plots.plot_pixel_accuracy_curves(plot, path=path, taus=scores.TAUS, title=title)


# ----------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------

_ROWS = (
  ("ssim", "SSIM vs ground truth (paper's metric)"),
  ("ssim_official_stretch", "SSIM vs ground truth, min-max stretched (authors' PNGs)"),
  ("pixel_accuracy_mean", "Pixel accuracy vs ground truth, mean over τ = 0..99"),
  (
    "pixel_accuracy_official_stretch_mean",
    "Pixel accuracy, min-max stretched, mean over τ = 0..99",
  ),
  ("lpips_gt", "LPIPS vs ground truth (VGG-16; lower = closer)"),
  ("lpips_diversity", "LPIPS diversity across exemplars (VGG-16; higher = more varied)"),
  ("kid_vgg16", f"{fid_kid.KID_VGG16_NAME} vs real target images"),
  ("fid_inception", fid_kid.FID_INCEPTION_NAME),
  ("kid_inception", fid_kid.KID_INCEPTION_NAME),
  ("digit_accuracy", "Digit accuracy of the translations"),
  (
    "colour_match",
    "Colour-match share with the exemplar's colours (its scheme on "
    "MNIST-Single; each digit class's colour on MNIST-Multiple, digit pixels)",
  ),
  ("segmentation_miou", "Segmentation mIoU of the translations (8 categories)"),
  ("segmentation_pixel_accuracy", "Segmentation pixel accuracy"),
)


def _cross_table(table: dict, direction_name: str) -> list[str]:
  """Markdown lines: SSIM / colour match for each source scheme (rows) and
  exemplar scheme (columns)."""
  exemplars = sorted({e for row in table.values() for e in row})
  lines = [
    "",
    f"By source scheme (rows) and exemplar scheme (columns), {direction_name}, "
    "SSIM / colour match:",
    "",
    "| source \\ exemplar | " + " | ".join(exemplars) + " |",
    "|---|" + "---|" * len(exemplars),
  ]
  for source, row in table.items():
    cells = [
      f"{_fmt(row[e], 'ssim')} / {_fmt(row[e], 'colour_match')}" if e in row else "–"
      for e in exemplars
    ]
    lines.append(f"| {source} | " + " | ".join(cells) + " |")
  return lines


def _is_score(value) -> bool:
  """False for the None or NaN of a metric with nothing to score."""
  return value is not None and not (isinstance(value, float) and math.isnan(value))


def _fmt(metrics: dict, key: str) -> str:
  if key not in metrics:
    return "–"
  value = metrics[key]
  if not _is_score(value):
    return "n/a"
  text = f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
  if f"{key}_std" in metrics:
    text += f" ± {metrics[key + '_std']:.2g}"
  return text


def markdown(results: dict) -> str:
  """The results as a markdown page: run facts, then metric | A→B | B→A."""
  m = results["metrics"]
  lines = [
    f"# Evaluation of `{results['workdir']}`",
    "",
    f"- dataset: {results['dataset']} (variant `{results['config_variant'] or '-'}`), "
    f"split {results['split']}, {results['num_examples']} pairs",
    f"- checkpoint: stage-2 iteration {results['checkpoint_step']}, "
    f"{'EMA' if results['used_ema'] else 'live'} parameters; test noise "
    f"{'on' if results['test_noise'] else 'off'} (seed {results['seed']})",
    f"- wall time: {results['wall_seconds']:.1f} s on {results['devices']}",
    "",
    "| metric | A→B | B→A |",
    "|---|---|---|",
  ]
  for key, title in _ROWS:
    cells = [_fmt(m, f"{key}_{d}") for d in DIRECTIONS]
    if any(c != "–" for c in cells):
      if key == "digit_accuracy" and "digit_classifier_test_accuracy" in m:
        title += f" (classifier's own test accuracy {m['digit_classifier_test_accuracy']:.4f})"
      lines.append(f"| {title} | {cells[0]} | {cells[1]} |")
  for direction, rows in results["details"].get("per_scheme", {}).items():
    lines += [
      "",
      f"By the exemplar's colour scheme, {DIRECTION_NAMES[direction]}:",
      "",
      "| exemplar scheme | pairs | SSIM | colour match | digit accuracy |",
      "|---|---|---|---|---|",
    ]
    for scheme, r in rows.items():
      lines.append(
        f"| {scheme} | {r['count']} | {_fmt(r, 'ssim')} | "
        f"{_fmt(r, 'colour_match')} | {_fmt(r, 'digit_accuracy')} |"
      )
  for direction, rows in results["details"].get("per_grade", {}).items():
    lines += [
      "",
      f"By the grade of the pair's B image, {DIRECTION_NAMES[direction]}:",
      "",
      "| grade | pairs | SSIM | LPIPS |",
      "|---|---|---|---|",
    ]
    for grade, r in rows.items():
      lines.append(f"| {grade} | {r['count']} | {_fmt(r, 'ssim')} | {_fmt(r, 'lpips')} |")
  per_class = results["details"].get("per_class", {})
  if per_class:
    # A class no canvas held (the small canvases hold 0, 2, 4 and 7) has no
    # score in either direction: no column.
    names = [
      n
      for n in next(iter(per_class.values()))
      if any(_is_score(rows[n].get("colour_match")) for rows in per_class.values())
    ]
    lines += [
      "",
      "Colour match by digit class (share of the class's pixels nearest its ground-truth colour):",
      "",
      "| direction | " + " | ".join(names) + " |",
      "|---|" + "---|" * len(names),
    ]
    for direction, rows in per_class.items():
      lines.append(
        f"| {DIRECTION_NAMES[direction]} | "
        + " | ".join(_fmt(rows[n], "colour_match") for n in names)
        + " |"
      )
  for direction, table in results["details"].get("per_source_and_exemplar_scheme", {}).items():
    lines += _cross_table(table, DIRECTION_NAMES[direction])
  mask = results["details"].get("mask")
  if mask:
    lines += [
      "",
      "What the feature mask knows of the classes (its best channel's IoU; "
      "a linear probe's pixel accuracy on held-out canvases, beside the "
      "majority class's):",
      "",
      "| sources | digit IoU (digit share) | class IoU, mean | probe accuracy "
      "(majority) | probe balanced accuracy (majority) |",
      "|---|---|---|---|---|",
    ]
    for domain, r in mask.items():
      lines.append(
        f"| {domain.upper()} | {r['digit_iou']:.3f} ({r['digit_share']:.3f}) | "
        f"{r['class_iou_mean']:.3f} | {r['probe_accuracy']:.3f} "
        f"({r['majority_accuracy']:.3f}) | {r['probe_balanced_accuracy']:.3f} "
        f"({r['majority_balanced_accuracy']:.3f}) |"
      )
  seg = results["details"].get("segmentation_a2b")
  if seg:
    lines += [
      "",
      "Per-class IoU, A→B:",
      "",
      "| " + " | ".join(seg["categories"]) + " |",
      "|" + "---|" * len(seg["categories"]),
      "| " + " | ".join("n/a" if v is None else f"{v:.4f}" for v in seg["iou"]) + " |",
    ]
  p = results["protocol"]
  lines += ["", "Protocol:", ""] + [f"- {k}: {v}" for k, v in p.items() if v]
  return "\n".join(lines) + "\n"
