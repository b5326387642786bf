"""Every metric of one translation direction, accumulated batch by batch.

`Stats` holds what a direction has seen so far in bounded memory (per-image
scores, pooled pixel-accuracy histograms, features for KID / FID, a segmentation
confusion matrix); `accumulate` adds one batch of `translations.translate_split`;
`summarize` turns a run's Stats into the metrics of results.json.
The evaluate command and training's periodic scores both go through here.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np

from egsc_jax.eval import (
  colour,
  features,
  fid_kid,
  inputs,
  lpips,
  pixel_accuracy,
  segmentation,
  ssim,
)

TAUS = tuple(range(100))
KID_SUBSET_SIZE = 1000
KID_NUM_SUBSETS = 100

Segment = Callable[[np.ndarray], np.ndarray]  # uint8 [N, H, W, 3] -> int [N, H, W]


@dataclasses.dataclass
class Stats:
  """Everything one direction needs, accumulated batch by batch (bounded memory)."""

  count: int = 0
  ssim: list = dataclasses.field(default_factory=list)
  ssim_stretch: list = dataclasses.field(default_factory=list)
  lpips: list = dataclasses.field(default_factory=list)  # LPIPS vs the ground truth
  # Pixel-accuracy curves times the batch's pixel count: their sum over batches
  # divided by the total pixel count is the pooled curve.
  pix: np.ndarray | None = None
  pix_stretch: np.ndarray | None = None
  pixels: int = 0
  vgg_fake: list = dataclasses.field(default_factory=list)
  vgg_real: list = dataclasses.field(default_factory=list)
  inc_fake: list = dataclasses.field(default_factory=list)
  inc_real: list = dataclasses.field(default_factory=list)
  digits_correct: list = dataclasses.field(default_factory=list)  # bool [n] per batch
  colour: list = dataclasses.field(default_factory=list)
  # The exemplars' schemes (MNIST-Single), or the grades of the pairs' B images
  # (photo_grades).
  schemes: list = dataclasses.field(default_factory=list)
  source_schemes: list = dataclasses.field(default_factory=list)
  # MNIST-Multiple: matched / total pixels per digit class (columns 0-9) and
  # the background (column 10), summed over the batches.
  class_matched: np.ndarray | None = None
  class_total: np.ndarray | None = None
  confusion: np.ndarray | None = None


def _add(total: np.ndarray | None, x: np.ndarray) -> np.ndarray:
  return x if total is None else total + x


def accumulate(
  stats: Stats,
  batch: dict,
  *,
  direction: str,
  official_stretch: bool,
  inception_weights: str | None,
  classifier: dict | None,
  colour_match: bool,
  segment: Segment | None,
  class_colour_match: bool = False,
  lpips_gt: bool = False,
) -> None:
  """Adds one batch (pred, exemplar, gt, ...) of `direction` to `stats`.

  `segment` (A->B only, when the batch has source labels) labels the
  translations for the segmentation scores; `lpips_gt` adds each
  translation's LPIPS to its ground truth.
  """
  pred, real = batch["pred"], batch["exemplar"]
  stats.count += len(pred)
  gt = batch["gt"]
  if gt is not None:
    stats.ssim.append(ssim.ssim(pred, gt))
    if lpips_gt:
      stats.lpips.append(lpips.lpips_distance(inputs.to_float(pred), inputs.to_float(gt)))
    npix = pred.shape[0] * pred.shape[1] * pred.shape[2]
    stats.pixels += npix
    stats.pix = _add(stats.pix, npix * pixel_accuracy.pixel_accuracy_curve(pred, gt, taus=TAUS))
    if official_stretch:
      p, g = ssim.minmax_stretch(pred), ssim.minmax_stretch(gt)
      stats.ssim_stretch.append(ssim.ssim(p, g))
      stats.pix_stretch = _add(
        stats.pix_stretch, npix * pixel_accuracy.pixel_accuracy_curve(p, g, taus=TAUS)
      )
  # The exemplars are the real target-domain images of the same pairs.
  stats.vgg_fake.append(features.vgg16_features(pred))
  stats.vgg_real.append(features.vgg16_features(real))
  if inception_weights:
    stats.inc_fake.append(features.inception_features(pred, weights_path=inception_weights))
    stats.inc_real.append(features.inception_features(real, weights_path=inception_weights))
  accumulate_scheme_scores(
    stats,
    batch,
    classifier=classifier,
    colour_match=colour_match,
    class_colour_match=class_colour_match,
    direction=direction,
  )
  if segment is not None and direction == "a2b" and "label" in batch:
    stats.confusion = _add(
      stats.confusion,
      segmentation.confusion_matrix(
        segment(pred), batch["label"], num_classes=len(category_names())
      ),
    )


def accumulate_scheme_scores(
  stats: Stats,
  batch: dict,
  *,
  classifier: dict | None,
  colour_match: bool,
  class_colour_match: bool = False,
  direction: str | None = None,
) -> None:
  """Per-example digit correctness, colour match and exemplar scheme of a batch
  (MNIST-Single), the per-class colour match of `direction` (MNIST-Multiple,
  `class_colour_match`; needs the ground truth), or the grade of each pair's
  B image (photo_grades, whose batches have 'grade')."""
  if classifier is not None and "digit" in batch:
    from egsc_jax.eval import digit_classifier as dc  # pylint: disable=g-import-not-at-top

    stats.digits_correct.append(dc.classify(classifier, batch["pred"]) == batch["digit"])
  if colour_match:
    stats.colour.append(scheme_match(batch))
    stats.schemes += colour.scheme_names(batch["exemplar"])
    stats.source_schemes += colour.scheme_names(batch["source"])
  if "grade" in batch:
    from egsc_jax.data import photo_grading  # pylint: disable=g-import-not-at-top

    stats.schemes += photo_grading.grade_names(batch["grade"])
  if class_colour_match and batch.get("gt") is not None:
    if direction not in ("a2b", "b2a"):
      raise ValueError(f"class_colour_match needs direction 'a2b' or 'b2a', got {direction!r}.")
    # The coloured image of the pair names each pixel's class: the ground truth
    # A->B, the source B->A.
    coloured = batch["gt"] if direction == "a2b" else batch["source"]
    matched, total = colour.per_class_colour_match(
      batch["pred"], batch["gt"], colour.digit_class_map(coloured)
    )
    stats.class_matched = _add(stats.class_matched, matched.sum(0))
    stats.class_total = _add(stats.class_total, total.sum(0))


def scheme_match(batch: dict) -> np.ndarray:
  """Colour/scheme-match share of each translation (MNIST-Single): the source's
  digit pixels in the exemplar's digit colour, the rest in its background colour.
  float [n]."""
  fg = colour.foreground_mask(batch["source"])
  return colour.colour_match_share(batch["pred"], batch["exemplar"], fg)


def _per_example_values(stats: Stats) -> dict[str, np.ndarray]:
  values = {}
  if stats.ssim:
    values["ssim"] = np.concatenate(stats.ssim)
  if stats.lpips:
    values["lpips"] = np.concatenate(stats.lpips)
  if stats.colour:
    values["colour_match"] = np.concatenate(stats.colour)
  if stats.digits_correct:
    values["digit_accuracy"] = np.concatenate(stats.digits_correct)
  return values


def per_class(stats: Stats) -> dict[str, dict[str, float]]:
  """Colour match by digit class, then over all digit pixels and on the background
  (MNIST-Multiple): {'0': {'pixels': n, 'colour_match': share}, ..., 'digits': ...,
  'background': ...}; a class with no pixels has colour_match NaN."""
  m, t = stats.class_matched, stats.class_total
  share = lambda a, b: float(a / b) if b else float("nan")
  out = {
    str(c): {"pixels": int(t[c]), "colour_match": share(m[c], t[c])}
    for c in range(colour.NUM_DIGIT_CLASSES)
  }
  d = colour.NUM_DIGIT_CLASSES
  out["digits"] = {"pixels": int(t[:d].sum()), "colour_match": share(m[:d].sum(), t[:d].sum())}
  out["background"] = {"pixels": int(t[d]), "colour_match": share(m[d], t[d])}
  return out


def per_scheme(stats: Stats) -> dict[str, dict[str, float]]:
  """SSIM, colour match and digit accuracy by the exemplar's colour scheme
  (MNIST-Single); SSIM and LPIPS by the grade of the B image (photo_grades)."""
  return colour.per_scheme_means(_per_example_values(stats), stats.schemes)


def per_source_and_exemplar_scheme(stats: Stats) -> dict[str, dict[str, dict[str, float]]]:
  """The same scores for every (source scheme, exemplar scheme) combination:
  {source scheme: {exemplar scheme: {'count', 'ssim', ...}}}.

  The per-exemplar means can hide a model that is right for one source scheme
  and swaps the two colours for the other (docs/benchmarks.md, "The failure is
  a colour swap"); this table shows it.
  """
  values = _per_example_values(stats)
  sources = np.asarray(stats.source_schemes)
  out = {}
  for name in sorted(set(stats.source_schemes)):
    keep = sources == name
    out[name] = colour.per_scheme_means(
      {k: np.asarray(v)[keep] for k, v in values.items()}, np.asarray(stats.schemes)[keep]
    )
  return out


def kid_estimate(real: list, fake: list, *, seed: int) -> tuple[float, float, int] | None:
  """(mean, std, subset size) of KID over accumulated features, or None with
  fewer than 2 samples."""
  real, fake = np.concatenate(real), np.concatenate(fake)
  subset = min(KID_SUBSET_SIZE, len(real), len(fake))
  if subset < 2:
    return None
  # Subsets as large as both sets are permutations of them, and MMD does not
  # depend on the order: one round gives the same value as a hundred.
  rounds = 1 if subset == len(real) == len(fake) else KID_NUM_SUBSETS
  mean, std = fid_kid.kid(real, fake, subset_size=subset, num_subsets=rounds, seed=seed)
  return mean, std, subset


def category_names() -> tuple[str, ...]:
  """The 8 street-scene categories of the segmentation scores (gta5_bdd)."""
  from egsc_jax.data import gta5_bdd  # pylint: disable=g-import-not-at-top

  return tuple(gta5_bdd.CATEGORY_NAMES)


def summarize(
  stats: dict[str, Stats],
  diversity: dict[str, float],
  *,
  seed: int,
  classifier: bool,
  classifier_accuracy: float | None,
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
      metrics[f"ssim_official_stretch_{direction}"] = float(np.mean(np.concatenate(s.ssim_stretch)))
      curve = s.pix_stretch / s.pixels
      curves[f"pixel_accuracy_official_stretch_{direction}"] = curve.tolist()
      metrics[f"pixel_accuracy_official_stretch_mean_{direction}"] = float(curve.mean())
    if direction in diversity:
      metrics[f"lpips_diversity_{direction}"] = diversity[direction]
    k = kid_estimate(s.vgg_real, s.vgg_fake, seed=seed)
    if k is not None:
      metrics[f"kid_vgg16_{direction}"], metrics[f"kid_vgg16_{direction}_std"] = k[:2]
      details["kid_subset_size"] = k[2]
    if s.inc_fake:
      real, fake = np.concatenate(s.inc_real), np.concatenate(s.inc_fake)
      if min(len(real), len(fake)) >= 2:
        metrics[f"fid_inception_{direction}"] = fid_kid.fid(real, fake)
      k = kid_estimate(s.inc_real, s.inc_fake, seed=seed)
      if k is not None:
        metrics[f"kid_inception_{direction}"], metrics[f"kid_inception_{direction}_std"] = k[:2]
    if classifier:
      metrics[f"digit_accuracy_{direction}"] = float(np.mean(np.concatenate(s.digits_correct)))
    if s.colour:
      metrics[f"colour_match_{direction}"] = float(np.mean(np.concatenate(s.colour)))
      details.setdefault("per_scheme", {})[direction] = per_scheme(s)
      details.setdefault("per_source_and_exemplar_scheme", {})[direction] = (
        per_source_and_exemplar_scheme(s)
      )
    elif s.schemes:  # photo_grades: the grades of the pairs' B images
      details.setdefault("per_grade", {})[direction] = per_scheme(s)
    if s.class_total is not None:
      by_class = per_class(s)
      metrics[f"colour_match_{direction}"] = by_class["digits"]["colour_match"]
      details.setdefault("per_class", {})[direction] = by_class
    if s.confusion is not None:
      seg = segmentation.scores_from_confusion(s.confusion)
      metrics[f"segmentation_miou_{direction}"] = seg["miou"]
      metrics[f"segmentation_pixel_accuracy_{direction}"] = seg["pixel_accuracy"]
      details[f"segmentation_{direction}"] = dict(
        categories=list(category_names()),
        iou=[None if math.isnan(v) else float(v) for v in seg["iou"]],
        confusion=s.confusion.tolist(),
      )
  if classifier_accuracy is not None:
    metrics["digit_classifier_test_accuracy"] = classifier_accuracy
  # Strict JSON has no NaN (e.g. an mIoU without labelled pixels): null instead.
  metrics = {
    k: None if isinstance(v, float) and math.isnan(v) else float(v) for k, v in metrics.items()
  }
  if curves:
    curves["taus"] = list(TAUS)
  return metrics, curves, details
