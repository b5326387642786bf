"""SSIM against the ground truth as the authors computed it (docs/method.md §5.1),
and `minmax_stretch`, the "official" post-processing of their saved PNGs.

`ssim` is skimage-0.13 `compare_ssim(..., multichannel=True)` on uint8 RGB,
written here in numpy (7x7 uniform window, sample covariance, K1=0.01, K2=0.03,
data range 255, mean after cropping the 3-px border, channels averaged).
"""

from __future__ import annotations

import numpy as np

from egsc_jax.eval import inputs

SSIM_WIN_SIZE = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_DATA_RANGE = 255.0


def _box_mean_valid(x: np.ndarray, win: int) -> np.ndarray:
  """Mean over every win x win window fully inside the image.

  [..., H, W] -> [..., H - win + 1, W - win + 1], via cumulative sums. skimage filters
  with reflect padding and then crops (win - 1) // 2 pixels, which leaves exactly
  these windows, so no padding is needed.
  """
  # Window sum ending at row k + win - 1: c[k + win - 1] - c[k - 1], with c[-1] = 0.
  c = np.cumsum(x, axis=-2)
  rows = c[..., win - 1 :, :].copy()
  rows[..., 1:, :] -= c[..., :-win, :]
  c = np.cumsum(rows, axis=-1)
  x = c[..., win - 1 :].copy()
  x[..., 1:] -= c[..., :-win]
  return x / (win * win)


def _ssim_batch(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """SSIM of float64 [N, H, W, C] pairs -> [N]."""
  win = SSIM_WIN_SIZE
  # Channels first so that the window runs over the two last axes.
  x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
  y = np.ascontiguousarray(np.moveaxis(y, -1, 1))
  cov_norm = win * win / (win * win - 1.0)  # use_sample_covariance=True
  ux, uy = _box_mean_valid(x, win), _box_mean_valid(y, win)
  vx = cov_norm * (_box_mean_valid(x * x, win) - ux * ux)
  vy = cov_norm * (_box_mean_valid(y * y, win) - uy * uy)
  vxy = cov_norm * (_box_mean_valid(x * y, win) - ux * uy)
  c1 = (SSIM_K1 * SSIM_DATA_RANGE) ** 2
  c2 = (SSIM_K2 * SSIM_DATA_RANGE) ** 2
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
  # Mean per channel, then over channels (= skimage's channel_axis averaging).
  return s.mean(axis=(-2, -1)).mean(axis=-1)


def ssim(pred: np.ndarray, ref: np.ndarray, *, chunk_size: int = 64) -> np.ndarray | float:
  """Per-image SSIM as the authors computed it (docs/method.md §5.1).

  Equal to `skimage.metrics.structural_similarity(p, r, channel_axis=-1,
  data_range=255)` (the defaults of skimage 0.13's `compare_ssim(...,
  multichannel=True)`): 7x7 uniform window, sample covariance (N / (N - 1)), K1 =
  0.01, K2 = 0.03, data range 255, mean over the map after cropping a 3-px border,
  channels averaged.

  Args:
    pred: uint8 [N, H, W, C] or [H, W, C], H, W >= 7.
    ref: uint8, same shape (the ground truth).
    chunk_size: images per vectorised chunk (bounds float64 memory).

  Returns:
    float64 [N], or a float for single images.
  """
  pred, ref, single = inputs.check_uint8_pair(pred, ref, pred_name="pred", ref_name="ref")
  if min(pred.shape[1:3]) < SSIM_WIN_SIZE:
    raise ValueError(
      f"SSIM needs images of at least {SSIM_WIN_SIZE}x{SSIM_WIN_SIZE}, got {pred.shape[1:3]}."
    )
  scores = [
    _ssim_batch(
      pred[i : i + chunk_size].astype(np.float64), ref[i : i + chunk_size].astype(np.float64)
    )
    for i in range(0, len(pred), chunk_size)
  ]
  scores = np.concatenate(scores) if scores else np.zeros([0])
  return float(scores[0]) if single else scores


def minmax_stretch(images: np.ndarray) -> np.ndarray:
  """The "official" post-processing: per-image min-max stretch to uint8 0..255.

  The authors saved float outputs (and real images) with `scipy.misc.imsave`, whose
  `bytescale` maps each image's [min, max] (over all pixels and channels) to
  [0, 255] and rounds; SSIM and pixel accuracy were then computed on those files
  (docs/method.md §5.1). Apply this to both pred and reference to mimic them; the default
  scores use the images as they are. As in bytescale, a constant image maps to 0.
  (bytescale left uint8 input untouched; this function stretches any dtype.)

  Args:
    images: [N, H, W, C] or [H, W, C], any real dtype.

  Returns:
    uint8, same shape.
  """
  x, single = inputs.as_batch(images, name="images")
  x = x.astype(np.float64)
  lo = x.min(axis=(1, 2, 3), keepdims=True)
  span = x.max(axis=(1, 2, 3), keepdims=True) - lo
  span = np.where(span == 0, 1.0, span)
  out = (np.clip((x - lo) * (255.0 / span), 0, 255) + 0.5).astype(np.uint8)
  return out[0] if single else out
