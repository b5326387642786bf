"""Image grids for TensorBoard, PNG files and the translate command."""
from __future__ import annotations

import numpy as np


def to_uint8(x: np.ndarray) -> np.ndarray:
  """Images in [-1, 1] (any float dtype) -> uint8 [0, 255], rounding to nearest."""
  x = np.asarray(x, np.float32)
  return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(cells: np.ndarray, *, pad: int = 2, pad_value: int = 255) -> np.ndarray:
  """Tiles cells [R, C, H, W, 3] uint8 into one [R*(H+pad)+pad, C*(W+pad)+pad, 3] image.

  Cell (r, c) starts at row pad + r*(H+pad), column pad + c*(W+pad).
  """
  cells = np.asarray(cells)
  if cells.ndim != 5 or cells.shape[-1] != 3:
    raise ValueError(f"cells must be [R, C, H, W, 3], got {cells.shape}")
  r, c, h, w, _ = cells.shape
  out = np.full((r * (h + pad) + pad, c * (w + pad) + pad, 3), pad_value, np.uint8)
  for i in range(r):
    for j in range(c):
      y, x = pad + i * (h + pad), pad + j * (w + pad)
      out[y:y + h, x:x + w] = cells[i, j]
  return out


def exemplar_grid(*, sources: list[np.ndarray], exemplars: list[np.ndarray],
                  translations: list[list[np.ndarray]], pad: int = 2) -> np.ndarray:
  """The (S + 1) x (E + 1) grid: blank corner, exemplars on top, sources on the left.

  Args:
    sources: S uint8 [H, W, 3].
    exemplars: E uint8 [H, W, 3].
    translations: S lists of E uint8 [H, W, 3]; [s][e] is source s with exemplar e.
    pad: white pixels between and around the cells (`image_grid`).
  Returns:
    uint8 [(S + 1) (H + pad) + pad, (E + 1) (W + pad) + pad, 3].
  """
  blank = np.full_like(exemplars[0], 255)
  table = [[blank] + list(exemplars)]
  table += [[s] + list(row) for s, row in zip(sources, translations)]
  return image_grid(np.stack([np.stack(r) for r in table]), pad=pad)


def heatmap(values: np.ndarray, *, cmap: str = "inferno") -> np.ndarray:
  """float [H, W] -> uint8 [H, W, 3] through a matplotlib colour map, scaled from
  the map's own min (dark) to its max (bright); a constant map is all dark."""
  from matplotlib import colormaps  # pylint: disable=g-import-not-at-top
  v = np.asarray(values, np.float64)
  lo, hi = float(v.min()), float(v.max())
  v = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
  return (colormaps[cmap](v)[..., :3] * 255 + 0.5).astype(np.uint8)


def save_png(image: np.ndarray, path: str) -> None:
  """Writes uint8 [H, W, 3] to `path`, local or gs:// (`paths`)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from egsc_jax import paths  # pylint: disable=g-import-not-at-top
  with paths.Path(path).open("wb") as f:
    Image.fromarray(np.asarray(image, np.uint8)).save(f, format="PNG")
