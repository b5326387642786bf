"""What every metric checks and converts first: batches, uint8 pairs, [-1, 1] floats.

"uint8 images" are RGB [N, H, W, 3] (or one [H, W, 3]) in 0..255; "float images"
are [-1, 1]. `grids.to_uint8` converts the latter to the former, `to_float` back.
"""

from __future__ import annotations

import jax
import numpy as np

# VGG-16 pools 4 times before relu5; below 64 px its last maps are 1x1 or empty
# (AlexNet-LPIPS rejects 28 px outright), so MNIST images are upsampled first.
MIN_NET_SIZE = 64


def as_batch(images: np.ndarray, *, name: str, ndim: int = 4) -> tuple[np.ndarray, bool]:
  """Adds a batch axis to a single image. Returns (batch, was_single)."""
  images = np.asarray(images)
  if images.ndim == ndim - 1:
    return images[None], True
  if images.ndim != ndim:
    raise ValueError(f"{name}: expected shape [N, H, W, C] or [H, W, C], got {images.shape}.")
  return images, False


def check_uint8_pair(
  pred: np.ndarray, ref: np.ndarray, *, pred_name: str, ref_name: str
) -> tuple[np.ndarray, np.ndarray, bool]:
  pred, single = as_batch(pred, name=pred_name)
  ref, _ = as_batch(ref, name=ref_name)
  for arr, name in ((pred, pred_name), (ref, ref_name)):
    if arr.dtype != np.uint8:
      raise ValueError(
        f"{name}: expected uint8 images (0..255), got dtype {arr.dtype}; convert "
        "[-1, 1] floats with grids.to_uint8."
      )
  if pred.shape != ref.shape:
    raise ValueError(f"{pred_name} has shape {pred.shape} but {ref_name} has {ref.shape}.")
  return pred, ref, single


def to_float(images: np.ndarray) -> np.ndarray:
  """uint8 images -> float32 in [-1, 1]. Any shape."""
  images = np.asarray(images)
  if images.dtype != np.uint8:
    raise ValueError(f"expected uint8 images, got dtype {images.dtype}.")
  return images.astype(np.float32) / 127.5 - 1.0


def upsample_to_min_size(images: jax.Array, *, min_size: int = MIN_NET_SIZE) -> jax.Array:
  """Bilinear upsampling so that the shorter side is at least `min_size`.

  [N, H, W, C] -> [N, H', W', C], aspect ratio kept (sides rounded); unchanged when
  min(H, W) >= min_size. 28x28 MNIST becomes 64x64.
  """
  n, h, w, c = images.shape
  if min(h, w) >= min_size:
    return images
  scale = min_size / min(h, w)
  new_h, new_w = max(min_size, round(h * scale)), max(min_size, round(w * scale))
  return jax.image.resize(images, (n, new_h, new_w, c), method="bilinear")
