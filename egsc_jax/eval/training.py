"""What training shows and scores of its own state: image grids of both stages
and the periodic scores (SSIM; colour match and digit accuracy on
MNIST-Single), on `config.train.eval_split` (validation where the dataset has
it: settings are chosen there, and the test split is kept for reported numbers).

Process-local: each process evaluates the same examples on its own devices;
only process 0 writes (train.py decides).
"""
from __future__ import annotations

import functools
import logging
from typing import Any

import jax
import numpy as np

from egsc_jax import grids, steps
from egsc_jax.eval import digit_classifier, scores, ssim
from egsc_jax.models import Models

PyTree = Any


def _local(tree: PyTree) -> PyTree:
  """The process-local copy of replicated arrays (no collective needed)."""
  return jax.tree.map(lambda x: x.addressable_data(0), tree)


def _splits(config):
  from egsc_jax.data import build  # pylint: disable=g-import-not-at-top
  return build.get_builder(config.dataset, data_dir=config.data.get("data_dir"),
                           require_built=True).info.splits


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
    logging.warning("%s has no %r split; training evaluates on 'test'",
                    config.dataset, split)
    split = "test"
  total = splits[split].num_examples
  if total < wanted:
    logging.warning("%s's %s split has %d pairs, fewer than config.%s = %d; "
                    "using all %d", config.dataset, split, total, key, wanted, total)
  return split, min(wanted, total)


def fixed_examples(config) -> dict:
  """The first num_image_examples pairs of the evaluation split (with ground
  truth when present), or the whole split when it is smaller."""
  from egsc_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  split, k = _eval_examples(config, config.train.num_image_examples,
                            key="train.num_image_examples")
  batch = next(iter(input_pipeline.eval_batches(
      config, split=split, batch_size=k, num_examples=k,
      process_index=0, process_count=1)))
  return batch


def _generator_params(state) -> PyTree:
  """EMA parameters when kept, else the live ones."""
  return state.ema_params if state.ema_params is not None else state.g_params


def _translator(state, models: Models):
  from egsc_jax import inference  # pylint: disable=g-import-not-at-top
  return inference.Translator(models, _local(_generator_params(state)),
                              _local(state.frozen))


def stage2_images(state, fixed: dict, *, models: Models) -> dict[str, np.ndarray]:
  """Rows: source | exemplar | translation | ground truth (when the dataset has it)."""
  translator = _translator(state, models)
  out = {}
  for direction, src, ex, gt in (("a2b", "a", "b", "gt_a2b"), ("b2a", "b", "a", "gt_b2a")):
    y = translator(fixed[src], fixed[ex], np.arange(len(fixed[src])), direction=direction)
    cols = [fixed[src], fixed[ex], np.asarray(y)] + ([fixed[gt]] if gt in fixed else [])
    cells = np.stack([grids.to_uint8(c) for c in cols], axis=1)
    out[f"translate_{direction}"] = grids.image_grid(cells)
  return out


@functools.cache
def _reconstruct(models: Models, domain: str):
  # One jitted function per (models, domain): image steps do not retrace.
  return jax.jit(functools.partial(steps.stage1_reconstruct, models=models, domain=domain))


def stage1_images(state, fixed: dict, *, models: Models) -> dict[str, np.ndarray]:
  """Rows: image | stage-1 reconstruction, per domain."""
  params = _local(state.g_params)
  out = {}
  for d in ("a", "b"):
    y = _reconstruct(models, d)(params, fixed[d], jax.random.key(0))
    cells = np.stack([grids.to_uint8(fixed[d]), grids.to_uint8(y)], axis=1)
    out[f"reconstruct_{d}"] = grids.image_grid(cells)
  return out


def stage2_scores(state, *, models: Models, config, workdir: str) -> dict[str, float]:
  """SSIM against the ground truth on the evaluation split, A->B and B->A
  (docs/method.md §5.1); on
  MNIST-Single also colour match and digit accuracy per exemplar scheme, on
  MNIST-Multiple colour match per digit class (`training_scores`). The digit
  classifier is trained on first use and cached beside the dataset, where every
  other run and the evaluate command find it."""
  del workdir  # the scores depend on the state and the dataset only
  classifier = None
  clf_steps = int(config.train.get("digit_classifier_steps",
                                   digit_classifier.CLASSIFIER_STEPS))
  if config.dataset == "mnist_single" and clf_steps > 0:
    classifier, _ = digit_classifier.load_or_train(
        digit_classifier.dataset_cache_dir(config.dataset,
                                           data_dir=config.data.get("data_dir")),
        manual_dir=config.data.get("manual_dir"), steps=clf_steps)
  split, num = _eval_examples(config, config.train.eval_examples,
                              key="train.eval_examples")
  return training_scores(_translator(state, models), config, num_examples=num,
                         classifier=classifier, split=split)


def training_scores(translator, config, *, num_examples: int,
                    classifier: dict | None, split: str) -> dict[str, float]:
  """The scores training logs at each evaluation: SSIM against the ground
  truth per direction and, on MNIST-Single, colour match and digit accuracy,
  overall and per exemplar scheme (keys 'a2b/red_on_green/ssim', ...); on
  MNIST-Multiple colour match over the digit pixels and per class (keys
  'a2b/class_3/colour_match', 'a2b/class_background/colour_match'); on
  photo_grades SSIM by the grade of the pair's B image ('a2b/sepia/ssim').

  Args:
    translator: an `inference.Translator`.
    num_examples: pairs from the start of `split`.
    classifier: the digit classifier's params (MNIST-Single), or None.
    split: the TFDS split scored.
  """
  from egsc_jax import inference  # pylint: disable=g-import-not-at-top
  is_single = config.dataset == "mnist_single"
  is_multiple = config.dataset == "mnist_multiple"
  out = {}
  for direction in inference.DIRECTIONS:
    s = scores.Stats()
    for batch in inference.translate_split(translator, config, direction=direction,
                                           num_examples=num_examples, split=split):
      s.ssim.append(ssim.ssim(batch["pred"], batch["gt"]))
      scores.accumulate_scheme_scores(s, batch,
                                      classifier=classifier if is_single else None,
                                      colour_match=is_single,
                                      class_colour_match=is_multiple, direction=direction)
    out[f"ssim_{direction}"] = float(np.mean(np.concatenate(s.ssim)))
    if is_multiple:
      for name, row in scores.per_class(s).items():
        key = (f"colour_match_{direction}" if name == "digits"
               else f"{direction}/class_{name}/colour_match")
        out[key] = row["colour_match"]
    if s.schemes and not is_single:   # photo_grades: SSIM by the B image's grade
      for grade, row in scores.per_scheme(s).items():
        out[f"{direction}/{grade}/ssim"] = row["ssim"]
    if is_single:
      out[f"colour_match_{direction}"] = float(np.mean(np.concatenate(s.colour)))
      if s.digits_correct:
        out[f"digit_accuracy_{direction}"] = float(np.mean(np.concatenate(
            s.digits_correct)))
      for scheme, row in scores.per_scheme(s).items():
        for metric, value in row.items():
          if metric != "count":
            out[f"{direction}/{scheme.replace(' ', '_')}/{metric}"] = value
  return out
