"""What training shows and scores of its own state: image grids of both stages
and the periodic scores, on `config.train.eval_split` (validation where the
dataset has it: settings are chosen there, and the test split is kept for
reported numbers). The scores:

- every dataset, no labels needed (`label_free_scores`): KID on VGG-16 relu5_1
  features between the translations and the real target-domain images, and
  LPIPS diversity across exemplars;
- MNIST-Single / -Multiple, against the ground truth (`training_scores`): SSIM;
  colour match and digit accuracy on MNIST-Single, colour match per digit class
  on MNIST-Multiple.

Process-local: each process evaluates the same examples on its own devices;
only process 0 writes (train.py decides).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from egsc_jax import grids, jit_cache, steps
from egsc_jax.eval import digit_classifier, features, lpips, scores, ssim
from egsc_jax.models import Models

PyTree = Any
# The datasets with a per-pair ground truth, scored by `training_scores`.
GROUND_TRUTH_DATASETS = ("mnist_single", "mnist_multiple", "photo_grades")
# LPIPS diversity: the first sources of the label-free pairs, each translated
# with the first exemplars (4 x 4: 24 LPIPS pairs per direction).
DIVERSITY_SOURCES = 4
DIVERSITY_EXEMPLARS = 4


def _local(tree: PyTree) -> PyTree:
  """The process-local copy of replicated arrays (no collective needed)."""
  return jax.tree.map(lambda x: x.addressable_data(0), tree)


def _splits(config):
  from egsc_jax.data import build  # pylint: disable=g-import-not-at-top

  return build.config_builder(config).info.splits


def eval_split(config) -> str:
  """config.train.eval_split, or 'test' for a dataset without that split
  (GTA5/BDD, CelebA and image folders have train and test only)."""
  return _eval_examples(config, 0, key="")[0]


def _eval_examples(config, wanted: int, *, key: str) -> tuple[str, int]:
  """(the evaluation split, min(wanted, its size)), saying so when it is smaller.
  One read of the dataset's info for both."""
  splits = _splits(config)
  split = config.train.get("eval_split", "test")
  if split not in splits:
    logging.warning("%s has no %r split; training evaluates on 'test'", config.dataset, split)
    split = "test"
  total = splits[split].num_examples
  if total < wanted:
    logging.warning(
      "%s's %s split has %d pairs, fewer than config.%s = %d; using all %d",
      config.dataset,
      split,
      total,
      key,
      wanted,
      total,
    )
  return split, min(wanted, total)


def fixed_examples(config) -> dict:
  """The first num_image_examples pairs of the evaluation split (with ground
  truth when present), or the whole split when it is smaller."""
  from egsc_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top

  split, k = _eval_examples(config, config.train.num_image_examples, key="train.num_image_examples")
  batch = next(
    iter(
      input_pipeline.eval_batches(
        config, split=split, batch_size=k, num_examples=k, process_index=0, process_count=1
      )
    )
  )
  return batch


def _generator_params(state) -> PyTree:
  """EMA parameters when kept, else the live ones."""
  return state.ema_params if state.ema_params is not None else state.g_params


def _translator(state, models: Models):
  from egsc_jax import api  # pylint: disable=g-import-not-at-top

  return api.Translator(models, _local(_generator_params(state)), _local(state.frozen))


def stage2_images(state, fixed: dict, *, models: Models) -> dict[str, np.ndarray]:
  """Rows: source | exemplar | translation | ground truth (when the dataset has
  it), under their titles, enlarged (`grids.titled_grid`)."""
  translator = _translator(state, models)
  out = {}
  for direction, src, ex, gt in (("a2b", "a", "b", "gt_a2b"), ("b2a", "b", "a", "gt_b2a")):
    y = translator(fixed[src], fixed[ex], np.arange(len(fixed[src])), direction=direction)
    cols = [fixed[src], fixed[ex], np.asarray(y)] + ([fixed[gt]] if gt in fixed else [])
    titles = [f"source {src.upper()}", f"exemplar {ex.upper()}", "translation", "ground truth"][
      : len(cols)
    ]
    cells = np.stack([grids.to_uint8(c) for c in cols], axis=1)
    out[f"translate_{direction}"] = grids.titled_grid(cells, titles)
  return out


def _reconstruct(models: Models, domain: str):
  # One jitted function per (models, domain): image steps do not retrace.
  return jit_cache.jitted(steps.stage1_reconstruct, models=models, domain=domain)


def stage1_images(state, fixed: dict, *, models: Models) -> dict[str, np.ndarray]:
  """Rows: image | stage-1 reconstruction, per domain, under their titles,
  enlarged (`grids.titled_grid`)."""
  params = _local(state.g_params)
  out = {}
  for d in ("a", "b"):
    y = _reconstruct(models, d)(params, fixed[d], jax.random.key(0))
    cells = np.stack([grids.to_uint8(fixed[d]), grids.to_uint8(y)], axis=1)
    out[f"reconstruct_{d}"] = grids.titled_grid(cells, [f"image {d.upper()}", "reconstruction"])
  return out


def has_scores(config) -> bool:
  """Whether stage 2 scores itself: every dataset unless
  train.label_free_examples is 0, and the ground-truth datasets always."""
  return (
    config.dataset in GROUND_TRUTH_DATASETS or int(config.train.get("label_free_examples", 0)) > 0
  )


def label_free_reference(config) -> dict | None:
  """What the label-free scores compare with, read once per run (it does not
  change during training): the first train.label_free_examples pairs of the
  evaluation split ('a', 'b': float [N, H, W, 3] in [-1, 1]) and the VGG-16
  features of their images ('features': {'a': [N, 512], 'b': [N, 512]}).
  None when train.label_free_examples is 0."""
  wanted = int(config.train.get("label_free_examples", 0))
  if wanted <= 0:
    return None
  from egsc_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top

  split, k = _eval_examples(config, wanted, key="train.label_free_examples")
  batch = next(
    iter(
      input_pipeline.eval_batches(
        config, split=split, batch_size=k, num_examples=k, process_index=0, process_count=1
      )
    )
  )
  pairs = {d: np.asarray(batch[d], np.float32) for d in ("a", "b")}
  pairs["features"] = {d: features.vgg16_features(grids.to_uint8(pairs[d])) for d in ("a", "b")}
  return pairs


def exemplar_diversity(
  translator, sources: np.ndarray, exemplars: np.ndarray, *, direction: str
) -> float:
  """Mean pairwise LPIPS between the translations of each source with every
  exemplar (`lpips.lpips_diversity`). Source s keeps one latent noise (id s)
  for all its exemplars, so only the exemplar changes: identical exemplars
  give exactly 0.

  Args:
    translator: an `api.Translator`.
    sources: float [S, H, W, 3] in [-1, 1].
    exemplars: float [E, H, W, 3] in [-1, 1], E >= 2, of the other domain.
    direction: 'a2b' or 'b2a'.
  """
  s, e = len(sources), len(exemplars)
  y = translator(
    np.repeat(np.asarray(sources, np.float32), e, axis=0),
    np.tile(np.asarray(exemplars, np.float32), (s, 1, 1, 1)),
    np.repeat(np.arange(s), e),
    direction=direction,
  )
  return lpips.lpips_diversity(y.reshape((s, e) + y.shape[1:]))


def label_free_scores(translator, reference: dict) -> dict[str, float]:
  """Scores that need no labels, per direction, on the pairs of
  `label_free_reference`:

  - 'kid_vgg16_{direction}': KID (`fid_kid.KID_VGG16_NAME`) between the
    translations of the N pairs (source i with the other domain's image of
    pair i as exemplar, noise id i, as `translations.translate_split`) and the N
    real target-domain images (those exemplars); the unbiased estimate over all
    N of each (`scores.kid_estimate`), about 0 when the two look alike. Needs
    N >= 2.
  - 'lpips_diversity_{direction}': `exemplar_diversity` of the first
    DIVERSITY_SOURCES sources with the first DIVERSITY_EXEMPLARS exemplars
    (fewer when N is smaller; none below 2 exemplars).
  """
  from egsc_jax import api  # pylint: disable=g-import-not-at-top

  out = {}
  for direction in api.DIRECTIONS:
    src, ex = direction[0], direction[2]
    n = len(reference[src])
    y = translator(reference[src], reference[ex], np.arange(n), direction=direction)
    kid = scores.kid_estimate(
      [reference["features"][ex]], [features.vgg16_features(grids.to_uint8(y))], seed=0
    )
    if kid is not None:
      out[f"kid_vgg16_{direction}"] = kid[0]
    if min(n, DIVERSITY_EXEMPLARS) >= 2:
      out[f"lpips_diversity_{direction}"] = exemplar_diversity(
        translator,
        reference[src][:DIVERSITY_SOURCES],
        reference[ex][:DIVERSITY_EXEMPLARS],
        direction=direction,
      )
  return out


def stage2_scores(
  state, *, models: Models, config, workdir: str, reference: Callable[[], dict | None] | None = None
) -> dict[str, float]:
  """The scores of an evaluation (the module docstring): `label_free_scores`
  on every dataset, and on MNIST-Single / -Multiple `training_scores` as well.
  The digit classifier is trained on first use and cached beside the dataset,
  where every other run and the evaluate command find it.

  Args:
    reference: returns `label_free_reference(config)`; training passes one that
      reads it once per run (default: read on every call).
  """
  del workdir  # the scores depend on the state and the dataset only
  translator = _translator(state, models)
  ref = reference() if reference is not None else label_free_reference(config)
  out = label_free_scores(translator, ref) if ref is not None else {}
  if config.dataset in GROUND_TRUTH_DATASETS:
    out.update(_ground_truth_scores(translator, config))
  return out


def _ground_truth_scores(translator, config) -> dict[str, float]:
  """`training_scores` on train.eval_examples pairs, with the digit classifier
  on MNIST-Single."""
  classifier = None
  clf_steps = int(config.train.get("digit_classifier_steps", digit_classifier.CLASSIFIER_STEPS))
  if config.dataset == "mnist_single" and clf_steps > 0:
    classifier, _ = digit_classifier.load_or_train(
      digit_classifier.dataset_cache_dir(config.dataset, data_dir=config.data.get("data_dir")),
      manual_dir=config.data.get("manual_dir"),
      steps=clf_steps,
    )
  split, num = _eval_examples(config, config.train.eval_examples, key="train.eval_examples")
  return training_scores(translator, config, num_examples=num, classifier=classifier, split=split)


def training_scores(
  translator, config, *, num_examples: int, classifier: dict | None, split: str
) -> dict[str, float]:
  """The scores training logs at each evaluation: SSIM against the ground
  truth per direction and, on MNIST-Single, colour match and digit accuracy,
  overall and per exemplar scheme (keys 'a2b/red_on_green/ssim', ...); on
  MNIST-Multiple colour match over the digit pixels and per class (keys
  'a2b/class_3/colour_match', 'a2b/class_background/colour_match'); on
  photo_grades SSIM by the grade of the pair's B image ('a2b/sepia/ssim').

  Args:
    translator: an `api.Translator`.
    num_examples: pairs from the start of `split`.
    classifier: the digit classifier's params (MNIST-Single), or None.
    split: the TFDS split scored.
  """
  from egsc_jax import api  # pylint: disable=g-import-not-at-top
  from egsc_jax.eval import translations  # pylint: disable=g-import-not-at-top

  is_single = config.dataset == "mnist_single"
  is_multiple = config.dataset == "mnist_multiple"
  out = {}
  for direction in api.DIRECTIONS:
    s = scores.Stats()
    for batch in translations.translate_split(
      translator, config, direction=direction, num_examples=num_examples, split=split
    ):
      s.ssim.append(ssim.ssim(batch["pred"], batch["gt"]))
      scores.accumulate_scheme_scores(
        s,
        batch,
        classifier=classifier if is_single else None,
        colour_match=is_single,
        class_colour_match=is_multiple,
        direction=direction,
      )
    out[f"ssim_{direction}"] = float(np.mean(np.concatenate(s.ssim)))
    if is_multiple:
      for name, row in scores.per_class(s).items():
        key = (
          f"colour_match_{direction}"
          if name == "digits"
          else f"{direction}/class_{name}/colour_match"
        )
        out[key] = row["colour_match"]
    if s.schemes and not is_single:  # photo_grades: SSIM by the B image's grade
      for grade, row in scores.per_scheme(s).items():
        out[f"{direction}/{grade}/ssim"] = row["ssim"]
    if is_single:
      out[f"colour_match_{direction}"] = float(np.mean(np.concatenate(s.colour)))
      if s.digits_correct:
        out[f"digit_accuracy_{direction}"] = float(np.mean(np.concatenate(s.digits_correct)))
      for scheme, row in scores.per_scheme(s).items():
        for metric, value in row.items():
          if metric != "count":
            out[f"{direction}/{scheme.replace(' ', '_')}/{metric}"] = value
  return out
