"""Colour match with the exemplar: per scheme (MNIST-Single), per digit class (MNIST-Multiple).

`colour_match_share`: the share of pixels whose palette colour is the exemplar's
foreground / background colour; `scheme_names` and `per_scheme_means` break any
per-example metric down by the exemplar's scheme.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from egsc_jax.eval import inputs

# The colours of the MNIST-Single schemes (docs/method.md §4.1): index order also breaks ties.
PALETTE = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.int32)
PALETTE_NAMES = ("black", "white", "red", "green", "blue")


def quantize_to_palette(images: np.ndarray) -> np.ndarray:
  """Index of the nearest `PALETTE` colour (Euclidean in RGB) per pixel.

  uint8 [..., 3] -> int64 [...]; ties go to the lower index (black, white, red,
  green, blue).
  """
  x = np.asarray(images).astype(np.int32)
  d = np.square(x[..., None, :] - PALETTE).sum(-1)
  return np.argmin(d, axis=-1)


def _top_two(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Most and second most frequent palette index per image. [N, H, W] -> [N], [N].

  With one colour only, both are that colour.
  """
  counts = (indices[..., None] == np.arange(len(PALETTE))).sum(axis=(1, 2))  # [N, 5]
  # Stable sort on -counts: ties keep palette order.
  order = np.argsort(-counts, axis=-1, kind="stable")
  first, second = order[:, 0], order[:, 1]
  second = np.where(counts[np.arange(len(counts)), second] > 0, second, first)
  return first, second


def foreground_mask(images: np.ndarray) -> np.ndarray:
  """Digit mask of two-colour digit images: uint8 [N, H, W, 3] -> bool [N, H, W].

  Pixels are snapped to the nearest palette colour; the foreground is the less
  frequent of the two most frequent colours (an MNIST digit covers about 19% of
  its 28x28 canvas, rarely more than 40%). Unlike a luminance threshold this also
  works for black-on-white and for colour pairs (red on green) where the digit may
  be the brighter or the darker colour. Single-colour images get an empty mask.
  """
  images, _ = inputs.as_batch(images, name="images")
  q = quantize_to_palette(images)
  bg, fg = _top_two(q)
  return (q == fg[:, None, None]) & (fg != bg)[:, None, None]


def scheme_colours(
  images: np.ndarray, *, fg_mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """Foreground and background palette indices of digit images. -> ([N], [N]).

  Without `fg_mask`, the `foreground_mask` rule (fg = the rarer of the two most
  frequent palette colours). With `fg_mask` (bool [N, H, W]), the most frequent
  palette colour inside / outside the mask (an empty side takes the other side's).

  Args:
    images: uint8 [N, H, W, 3].
    fg_mask: optional bool [N, H, W].
  """
  images, _ = inputs.as_batch(images, name="images")
  q = quantize_to_palette(images)
  if fg_mask is None:
    bg, fg = _top_two(q)
    return fg, bg
  fg_mask = np.asarray(fg_mask, bool)
  if fg_mask.shape != q.shape:
    raise ValueError(f"fg_mask has shape {fg_mask.shape}, images {images.shape}.")
  k = np.arange(len(PALETTE))
  fg_counts = ((q[..., None] == k) & fg_mask[..., None]).sum(axis=(1, 2))
  bg_counts = ((q[..., None] == k) & ~fg_mask[..., None]).sum(axis=(1, 2))
  fg, bg = np.argmax(fg_counts, -1), np.argmax(bg_counts, -1)
  fg = np.where(fg_counts.sum(-1) > 0, fg, bg)
  bg = np.where(bg_counts.sum(-1) > 0, bg, fg)
  return fg, bg


def colour_match_share(
  pred: np.ndarray,
  exemplar: np.ndarray,
  fg_mask: np.ndarray,
  *,
  exemplar_fg_mask: np.ndarray | None = None,
) -> np.ndarray:
  """Share of pixels whose colour follows the exemplar's scheme (MNIST-Single).

  Every pixel of `pred` is snapped to the nearest of black, white, red, green,
  blue; it matches when that colour is the exemplar's foreground colour on the
  source digit (`fg_mask`) and the exemplar's background colour elsewhere. The
  exemplar's colours come from `scheme_colours` (the rarer of its two dominant
  colours is the digit, unless `exemplar_fg_mask` is given).

  Args:
    pred: uint8 [N, H, W, 3] translations.
    exemplar: uint8 [N, H, W', 3] exemplars (their size may differ).
    fg_mask: bool [N, H, W], the source digit (e.g. `foreground_mask(source)` or
      `mnist_source.binarize(digit)`).
    exemplar_fg_mask: optional bool [N, H, W'], the exemplar's digit.

  Returns:
    float64 [N] in [0, 1], or a float for a single image.
  """
  pred, single = inputs.as_batch(pred, name="pred")
  exemplar, _ = inputs.as_batch(exemplar, name="exemplar")
  fg_mask = np.asarray(fg_mask, bool)
  if single and fg_mask.ndim == 2:
    fg_mask = fg_mask[None]
  if exemplar_fg_mask is not None:
    exemplar_fg_mask = np.asarray(exemplar_fg_mask, bool)
    if single and exemplar_fg_mask.ndim == 2:
      exemplar_fg_mask = exemplar_fg_mask[None]
  if fg_mask.shape != pred.shape[:3]:
    raise ValueError(f"fg_mask has shape {fg_mask.shape}, pred {pred.shape}.")
  if len(exemplar) != len(pred):
    raise ValueError(f"{len(exemplar)} exemplars for {len(pred)} predictions.")
  ex_fg, ex_bg = scheme_colours(exemplar, fg_mask=exemplar_fg_mask)
  expected = np.where(fg_mask, ex_fg[:, None, None], ex_bg[:, None, None])
  share = (quantize_to_palette(pred) == expected).mean(axis=(1, 2))
  return float(share[0]) if single else share


def scheme_names(images: np.ndarray) -> list[str]:
  """'<fg> on <bg>' palette names of two-colour digit images ('red on green').

  The digit is the rarer of the two most frequent colours (`scheme_colours`),
  which for MNIST-Single's pure colours names the 6 B pairs and the 2 A schemes
  ('black on white', 'white on black') exactly. uint8 [N, H, W, 3] -> N names.
  """
  fg, bg = scheme_colours(images)
  return [f"{PALETTE_NAMES[f]} on {PALETTE_NAMES[b]}" for f, b in zip(fg, bg)]


def per_scheme_means(
  values: Mapping[str, np.ndarray], schemes: Sequence[str]
) -> dict[str, dict[str, float]]:
  """Means of per-example metrics grouped by colour scheme.

  Args:
    values: {metric name: float [N]} (e.g. SSIM, colour match, digit correct).
    schemes: N scheme names (`scheme_names` of the exemplars).
  Returns:
    {scheme: {'count': n, metric: mean over that scheme's examples}}, schemes
    in sorted order.
  """
  schemes = np.asarray(list(schemes))
  out = {}
  for name in sorted(set(schemes.tolist())):
    keep = schemes == name
    row = {"count": int(keep.sum())}
    for metric, v in values.items():
      v = np.asarray(v, np.float64)
      if len(v) != len(schemes):
        raise ValueError(f"{metric!r} has {len(v)} values for {len(schemes)} schemes.")
      row[metric] = float(v[keep].mean())
    out[name] = row
  return out


# ----------------------------------------------------------------------------
# MNIST-Multiple: per-class colour match
# ----------------------------------------------------------------------------

NUM_DIGIT_CLASSES = 10
BACKGROUND = -1
# Digit colours have a chroma (max - min over RGB) of at least ~20 uint8 levels
# (saturation and value >= 0.3 before the min-max stretch); the black or white
# background has none.
MIN_CHROMA = 8


def digit_class_map(images: np.ndarray) -> np.ndarray:
  """The digit class of each pixel of coloured MNIST-Multiple canvases, from its hue.

  Class c is painted with hue c/10 (docs/method.md §4.2; `data/mnist_canvases.py`),
  and the canvas-wide min-max stretch leaves hue unchanged, so the hue names the
  class. Pixels without chroma (the black or white background) are `BACKGROUND`.

  Args:
    images: uint8 [N, H, W, 3] domain-B canvases (an image_b, or a gt_a2b).
  Returns:
    int64 [N, H, W]: 0-9, or -1 for the background.
  """
  images, single = inputs.as_batch(images, name="images")
  x = images.astype(np.float64)
  r, g, b = x[..., 0], x[..., 1], x[..., 2]
  mx, mn = x.max(-1), x.min(-1)
  chroma = mx - mn
  c = np.where(chroma > 0, chroma, 1.0)
  hue = np.where(mx == r, ((g - b) / c) % 6, np.where(mx == g, (b - r) / c + 2, (r - g) / c + 4))
  classes = np.rint(hue / 6 * NUM_DIGIT_CLASSES).astype(np.int64) % NUM_DIGIT_CLASSES
  out = np.where(chroma >= MIN_CHROMA, classes, BACKGROUND)
  return out[0] if single else out


def per_class_colour_match(
  pred: np.ndarray, gt: np.ndarray, class_map: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """Per-class colour match of MNIST-Multiple translations, as pixel counts.

  A pixel of class c matches when the translation's colour there is at least as
  near (Euclidean in RGB) to the ground truth's colour of class c as to any other
  colour of that ground-truth canvas (the other classes' colours, the
  background). A->B: the ground truth's per-class colours are the exemplar's;
  B->A: every digit has the exemplar's one digit colour, so a digit pixel matches
  when it is nearer the digit colour than the background colour.

  Args:
    pred: uint8 [N, H, W, 3] translations.
    gt: uint8 [N, H, W, 3] their ground truth.
    class_map: int [N, H, W], 0-9 or `BACKGROUND` (`digit_class_map` of the
      coloured one of source and ground truth).
  Returns:
    (matched, total): int64 [N, 11] each, columns 0-9 the digit classes and 10
    the background; total counts the class's pixels in each image.
  """
  pred, _ = inputs.as_batch(pred, name="pred")
  gt, _ = inputs.as_batch(gt, name="gt")
  class_map = np.asarray(class_map)
  if class_map.ndim == 2:
    class_map = class_map[None]
  if pred.shape != gt.shape or class_map.shape != pred.shape[:3]:
    raise ValueError(
      f"pred {pred.shape}, gt {gt.shape} and class_map {class_map.shape} must be the same images."
    )
  k = NUM_DIGIT_CLASSES + 1
  index = np.where(class_map == BACKGROUND, NUM_DIGIT_CLASSES, class_map)  # [N, H, W]
  matched = np.zeros((len(pred), k), np.int64)
  total = np.zeros((len(pred), k), np.int64)
  for n in range(len(pred)):  # one canvas at a time: [H*W, k] distances, bounded memory
    idx = index[n].ravel()
    total[n] = np.bincount(idx, minlength=k)
    # Each class's ground-truth colour: its pixels' mean (they share one colour).
    g = gt[n].reshape(-1, 3).astype(np.float64)
    colours = (
      np.stack([np.bincount(idx, weights=g[:, ch], minlength=k) for ch in range(3)], -1)
      / np.maximum(total[n], 1)[:, None]
    )  # [k, 3]
    p = pred[n].reshape(-1, 3).astype(np.float64)
    d = np.square(p[:, None, :] - colours[None]).sum(-1)  # [H*W, k]
    d[:, total[n] == 0] = np.inf
    match = d[np.arange(len(idx)), idx] <= d.min(-1)
    matched[n] = np.bincount(idx, weights=match, minlength=k).astype(np.int64)
  return matched, total
