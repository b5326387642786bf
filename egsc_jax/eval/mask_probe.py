"""What the feature mask knows of a canvas's semantics (MNIST-Multiple).

The mask m = 0.5 + 0.5 sigmoid(F(x)) (docs/method.md §1.5) is meant to keep
semantics in place: its channels should light up on the digits, and on
different classes differently. Two measures, on images whose pixel classes are
known (`colour.digit_class_map`; -1 = background):

- best-channel IoU: each channel, thresholded at its own mean over the canvas
  (or below it: a channel may mark a class by being low), is a binary map; its
  IoU with the digit pixels, and with each class's pixels, summed over the
  canvases; the best channel per target. A flat or noisy mask scores about the
  target's share of the pixels.
- a linear probe: a ridge-regularised least-squares map from the C mask values
  of a pixel to its 11 classes (10 digits and background), fitted on the first
  half of the canvases and scored on the second half; pixel accuracy and
  balanced accuracy (the mean per-class recall, as the background is most
  pixels), beside the same probe on a constant input (the majority class).

Two more, of the mask inside the generator (benchmarks/mask_anatomy.py):
`pattern_share`, how much of the masked content m * c is the mask's own
pattern, and `channel_correlation`, to compare the masks of two images (a
canvas and its inverse).

F is frozen in stage 2, so the mask of a stage-2 run is that of its stage 1:
these numbers describe what stage 1 learned. The mask is at F's feature
resolution; each value is repeated over the pixels it covers
(2**n_downsample on a side).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from egsc_jax.eval.colour import BACKGROUND, NUM_DIGIT_CLASSES

NUM_PROBE_CLASSES = NUM_DIGIT_CLASSES + 1  # the digits, then the background
RIDGE = 1e-3


def upsample_to(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """[N, h, w, C] -> [N, H, W, C] by repetition; H, W multiples of h, w."""
  n, h, w, _ = mask.shape
  if size[0] % h or size[1] % w:
    raise ValueError(f"mask {mask.shape[1:3]} does not tile the image size {size}")
  return np.repeat(np.repeat(mask, size[0] // h, axis=1), size[1] // w, axis=2)


def _classes(class_map: np.ndarray) -> np.ndarray:
  """-1..9 -> 0..10 with the background last."""
  return np.where(class_map == BACKGROUND, NUM_DIGIT_CLASSES, class_map)


def best_channel_iou(mask: np.ndarray, class_map: np.ndarray) -> dict[str, Any]:
  """The best single channel's IoU with the digits and with each class.

  Args:
    mask: float [N, H, W, C] (at the images' resolution: `upsample_to`).
    class_map: int [N, H, W], 0-9 or -1 (background).
  Returns:
    {'digits': IoU, 'digits_channel': c, 'classes': {k: IoU} for the classes
    present, 'class_mean': their mean, 'digits_share': the digit pixels' share
    (the IoU of marking every pixel)}.
  """
  mask = np.asarray(mask, np.float64)
  if mask.shape[:3] != class_map.shape:
    raise ValueError(f"mask {mask.shape} and class_map {class_map.shape} differ")
  # [N, H, W, 2C]: above its canvas mean, and below it.
  above = mask > mask.mean(axis=(1, 2), keepdims=True)
  on = np.concatenate([above, ~above], axis=-1).reshape(-1, 2 * mask.shape[-1])
  targets = {"digits": class_map.ravel() != BACKGROUND}
  targets.update({k: class_map.ravel() == k for k in range(NUM_DIGIT_CLASSES)})
  out: dict[str, Any] = {"classes": {}}
  for name, t in targets.items():
    if not t.any():
      continue
    inter = (on & t[:, None]).sum(0)
    union = (on | t[:, None]).sum(0)
    iou = inter / np.maximum(union, 1)
    best = int(np.argmax(iou))
    if name == "digits":
      out.update(
        digits=float(iou[best]), digits_channel=best % mask.shape[-1], digits_share=float(t.mean())
      )
    else:
      out["classes"][name] = float(iou[best])
  out["class_mean"] = (
    float(np.mean(list(out["classes"].values()))) if out["classes"] else float("nan")
  )
  return out


def _design(mask: np.ndarray) -> np.ndarray:
  """[n, H, W, C] -> [n * H * W, C + 1] with a bias column."""
  x = mask.reshape(-1, mask.shape[-1]).astype(np.float64)
  return np.concatenate([x, np.ones((len(x), 1))], axis=1)


def linear_probe(
  mask: np.ndarray, class_map: np.ndarray, *, ridge: float = RIDGE
) -> dict[str, float]:
  """Pixel classes from the mask's channels by a linear map (module docstring).

  Args:
    mask: float [N, H, W, C], N >= 2 (at the images' resolution).
    class_map: int [N, H, W], 0-9 or -1.
    ridge: the L2 penalty, relative to the mean diagonal of X^T X.
  Returns:
    {'accuracy', 'balanced_accuracy'} on the held-out half, and
    {'majority_accuracy', 'majority_balanced_accuracy'}: what predicting the
    fitted half's most frequent class scores there.
  """
  if len(mask) < 2:
    raise ValueError("the probe needs at least two canvases (fit and held-out halves)")
  half = len(mask) // 2
  y = _classes(np.asarray(class_map))
  x_fit, y_fit = _design(mask[:half]), y[:half].ravel()
  x_out, y_out = _design(mask[half:]), y[half:].ravel()
  onehot = np.eye(NUM_PROBE_CLASSES)[y_fit]
  gram = x_fit.T @ x_fit
  reg = ridge * np.trace(gram) / len(gram) * np.eye(len(gram))
  weights = np.linalg.solve(gram + reg, x_fit.T @ onehot)  # [C + 1, 11]
  predicted = np.argmax(x_out @ weights, axis=-1)
  majority = np.full_like(y_out, np.bincount(y_fit, minlength=NUM_PROBE_CLASSES).argmax())
  return dict(
    accuracy=float(np.mean(predicted == y_out)),
    balanced_accuracy=_balanced(predicted, y_out),
    majority_accuracy=float(np.mean(majority == y_out)),
    majority_balanced_accuracy=_balanced(majority, y_out),
  )


def _balanced(predicted: np.ndarray, truth: np.ndarray) -> float:
  recalls = [np.mean(predicted[truth == k] == k) for k in np.unique(truth)]
  return float(np.mean(recalls))


def mask_scores(mask: np.ndarray, class_map: np.ndarray) -> dict[str, float]:
  """Both measures as flat scores (for results.json and TensorBoard).

  Args:
    mask: float [N, h, w, C] at F's resolution; class_map: int [N, H, W].
  """
  full = upsample_to(np.asarray(mask), class_map.shape[1:3])
  iou = best_channel_iou(full, class_map)
  probe = linear_probe(full, class_map)
  return dict(
    digit_iou=iou["digits"],
    digit_share=iou["digits_share"],
    class_iou_mean=iou["class_mean"],
    probe_accuracy=probe["accuracy"],
    probe_balanced_accuracy=probe["balanced_accuracy"],
    majority_accuracy=probe["majority_accuracy"],
    majority_balanced_accuracy=probe["majority_balanced_accuracy"],
  )


# ----------------------------------------------------------------------------
# The masks of a trained run
# ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _channel_masks_fn(models, domain: str):
  # One jitted function per (models, domain), the Translator's call signature.
  import jax  # pylint: disable=g-import-not-at-top

  from egsc_jax import steps  # pylint: disable=g-import-not-at-top

  def masks(params, frozen, x):
    del params
    return steps.conditioning(models, frozen, x, domain)[0]

  return jax.jit(masks)


def channel_masks(translator, images: np.ndarray, domain: str) -> np.ndarray:
  """Every channel of the feature mask of images [N, H, W, 3] in [-1, 1] of
  `domain`, batched over the translator's devices: float32 [N, h, w, C]."""
  if not translator.models.use_mask:
    raise ValueError("this run has no feature mask (config.model.use_feature_mask)")
  return translator._run(
    _channel_masks_fn(translator.models, domain),  # pylint: disable=protected-access
    np.asarray(images, np.float32),
  )


def pattern_share(content: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Share of the variance of mean(c) * m in that of the two parts of m * c.

  Args:
    content: c [N, h, w, C].
    mask: m [N, h, w, C].
  Returns:
    float64 [N, C] in [0, 1]: Var(mean(c) m) / (Var(mean(c) m) + Var(m (c -
    mean(c)))), variances over the h*w pixels; 0 where both parts are flat.
  """
  c = np.asarray(content, np.float64)
  m = np.asarray(mask, np.float64)
  mean = c.mean(axis=(1, 2), keepdims=True)
  pattern = (mean * m).var(axis=(1, 2))
  rest = (m * (c - mean)).var(axis=(1, 2))
  total = pattern + rest
  return np.divide(pattern, total, out=np.zeros_like(total), where=total > 0)


def channel_correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Pearson correlation per channel of x and y [N, h, w, C] over N*h*w: [C]
  (0 for a channel that is constant in either)."""
  x = np.asarray(x, np.float64).reshape(-1, x.shape[-1])
  y = np.asarray(y, np.float64).reshape(-1, y.shape[-1])
  x, y = x - x.mean(0), y - y.mean(0)
  denom = np.sqrt((x * x).sum(0) * (y * y).sum(0))
  return np.divide((x * y).sum(0), denom, out=np.zeros(x.shape[1]), where=denom > 0)
