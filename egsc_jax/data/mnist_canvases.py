"""MNIST-Multiple's canvases, drawn and painted with numpy alone (docs/method.md §4.2).

The rules are in `mnist_multiple`'s docstring; this module holds them without
TensorFlow, so that the TFDS builder (`mnist_multiple.MnistMultiple`) and code
that runs where only JAX is installed (`benchmarks/mask_study.py` on an
accelerator) draw the very same canvases: `split_examples(digits, split)`
yields the pairs of a split in the builder's order.
"""

from __future__ import annotations

import colorsys
import dataclasses
from typing import Iterator

import numpy as np

from egsc_jax.data import mnist_source

SEED = 0
CELL = 28
NUM_CLASSES = 10
CANDIDATES_A = 100
CANDIDATES_B = 200
SV_BASE = 0.5
SV_JITTER = 0.4
_SPLIT_STREAM = {"train": 0, "test": 1, "validation": 2}
_DOMAIN_STREAM = {"a": 0, "b": 1}


@dataclasses.dataclass(frozen=True)
class Layout:
  """Which digits a canvas holds and where.

  Attributes:
    name: the TFDS builder config's name.
    grid: cells on a side; the canvas is 28 * grid pixels square.
    classes: the digit classes a canvas may hold, None for all ten.
      None (the paper's rule): each canvas keeps the first instance of each
      class among random candidates, so nearly every canvas holds all ten.
      A tuple: each canvas holds exactly one digit of each listed class, every
      class of a source is then in its exemplar too.
  """

  name: str
  grid: int
  classes: tuple[int, ...] | None = None

  @property
  def size(self) -> int:
    return CELL * self.grid


# The paper's canvases: 112x112, up to ten digits in 16 cells.
PAPER = Layout("paper", grid=4)
# The CPU study's canvases (docs/benchmarks.md, "MNIST-Multiple"): 56x56, four
# digits in four cells, one each of 0, 2, 4 and 7 (shapes that differ, hues 0,
# 0.2, 0.4 and 0.7 that are far apart), at MNIST's own 28-pixel resolution.
SMALL = Layout("small", grid=2, classes=(0, 2, 4, 7))
LAYOUTS = {layout.name: layout for layout in (PAPER, SMALL)}


@dataclasses.dataclass(frozen=True)
class Canvas:
  """One canvas before painting.

  Attributes:
    src: int64 [k] source indices of the placed digits, k <= 10.
    classes: int64 [k] their classes, ascending.
    cells: int64 [k] grid cell (row-major, 0 to grid**2 - 1) of each digit.
    white_background: the background is white (r < 0.5).
    colours: float [10, 3] RGB in [0, 1] of each class (domain B; None for A).
  """

  src: np.ndarray
  classes: np.ndarray
  cells: np.ndarray
  white_background: bool
  colours: np.ndarray | None


def class_colours(rng: np.random.Generator) -> np.ndarray:
  """Per-class jittered HSV colours: float [10, 3] RGB in [0, 1]."""
  s = SV_BASE * rng.uniform(1 - SV_JITTER, 1 + SV_JITTER, NUM_CLASSES)
  v = SV_BASE * rng.uniform(1 - SV_JITTER, 1 + SV_JITTER, NUM_CLASSES)
  return np.array([colorsys.hsv_to_rgb(c / NUM_CLASSES, s[c], v[c]) for c in range(NUM_CLASSES)])


def draw_canvas(
  rng: np.random.Generator,
  labels: np.ndarray,
  *,
  num_candidates: int,
  coloured: bool,
  layout: Layout = PAPER,
) -> Canvas:
  """Draws the digits, cells, background (and colours) of one canvas."""
  if layout.classes is None:
    candidates = rng.integers(0, len(labels), num_candidates)
    # np.unique gives the first position of each class among the candidates.
    classes, first = np.unique(labels[candidates], return_index=True)
    src = candidates[first]
  else:
    classes = np.array(layout.classes)
    src = np.array([rng.choice(np.flatnonzero(labels == c)) for c in classes])
  cells = rng.permutation(layout.grid**2)[: len(classes)]
  white_background = bool(rng.random() < 0.5)
  colours = class_colours(rng) if coloured else None
  return Canvas(
    src=src,
    classes=classes.astype(np.int64),
    cells=cells,
    white_background=white_background,
    colours=colours,
  )


def layout_masks(canvas: Canvas, *, masks: np.ndarray, layout: Layout = PAPER) -> np.ndarray:
  """Class map of a canvas: int64 [S, S] (S = layout.size), the digit class or
  -1 (background).

  Args:
    canvas: the canvas.
    masks: bool [N, 28, 28] binarised source digits.
    layout: the layout the canvas was drawn with.
  """
  class_map = np.full((layout.size, layout.size), -1, np.int64)
  for src, c, cell in zip(canvas.src, canvas.classes, canvas.cells):
    row, col = divmod(int(cell), layout.grid)
    window = class_map[row * CELL : (row + 1) * CELL, col * CELL : (col + 1) * CELL]
    window[masks[src]] = c
  return class_map


def bytescale(image: np.ndarray) -> np.ndarray:
  """Min-max stretch to uint8 like `scipy.misc.bytescale` (as `toimage` applied it).

  Args:
    image: float [H, W, 3].
  """
  low, high = float(image.min()), float(image.max())
  scale = 255.0 / ((high - low) or 1.0)
  return (np.clip((image - low) * scale, 0, 255) + 0.5).astype(np.uint8)


def paint_bw(class_map: np.ndarray, *, white_background: bool) -> np.ndarray:
  """Black/white painting of a class map [S, S]: uint8 [S, S, 3]."""
  digit = class_map[..., None] >= 0
  value = np.where(digit != white_background, 1.0, 0.0) * np.ones(3)
  return bytescale(value)


def paint_colour(
  class_map: np.ndarray, *, colours: np.ndarray, white_background: bool
) -> np.ndarray:
  """Per-class colours on a white or black background, stretched: uint8 [S, S, 3]."""
  background = np.full(3, 1.0 if white_background else 0.0)
  image = np.where(class_map[..., None] >= 0, colours[np.maximum(class_map, 0)], background)
  return bytescale(image)


def render_pair(
  canvas_a: Canvas,
  canvas_b: Canvas,
  *,
  masks: np.ndarray,
  with_gt: bool,
  layout: Layout = PAPER,
) -> dict[str, np.ndarray]:
  """image_a, image_b, gt_a2b, gt_b2a: uint8 [S, S, 3] each (S = layout.size)."""
  map_a = layout_masks(canvas_a, masks=masks, layout=layout)
  map_b = layout_masks(canvas_b, masks=masks, layout=layout)
  out = {
    "image_a": paint_bw(map_a, white_background=canvas_a.white_background),
    "image_b": paint_colour(
      map_b, colours=canvas_b.colours, white_background=canvas_b.white_background
    ),
  }
  if with_gt:
    out["gt_a2b"] = paint_colour(
      map_a, colours=canvas_b.colours, white_background=canvas_b.white_background
    )
    out["gt_b2a"] = paint_bw(map_b, white_background=canvas_a.white_background)
  else:
    zeros = np.zeros((layout.size, layout.size, 3), np.uint8)
    out["gt_a2b"], out["gt_b2a"] = zeros, zeros
  return out


def domain_rng(*, split: str, domain: str, seed: int = SEED) -> np.random.Generator:
  """The independent random stream of one domain of one split."""
  return np.random.default_rng((seed, _SPLIT_STREAM[split], _DOMAIN_STREAM[domain]))


def split_examples(
  digits: mnist_source.MnistDigits, split: str, layout: Layout = PAPER
) -> Iterator[dict[str, np.ndarray | str]]:
  """The pairs of `split` ('train', 'validation' or 'test'), in stored order:
  render_pair's images (ground truth except for 'train') and 'id'."""
  images, labels = digits.split(split)
  masks = mnist_source.binarize(images)
  rng_a = domain_rng(split=split, domain="a")
  rng_b = domain_rng(split=split, domain="b")
  for i in range(len(labels)):
    canvas_a = draw_canvas(
      rng_a, labels, num_candidates=CANDIDATES_A, coloured=False, layout=layout
    )
    canvas_b = draw_canvas(rng_b, labels, num_candidates=CANDIDATES_B, coloured=True, layout=layout)
    example = render_pair(canvas_a, canvas_b, masks=masks, with_gt=split != "train", layout=layout)
    example["id"] = f"{i:05d}"
    yield example
