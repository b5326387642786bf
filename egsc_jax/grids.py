"""Image grids for TensorBoard, PNG files and the translate command."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Training's grids show each cell at least this many pixels on its shorter side
# (an integer nearest-neighbour factor): a 28x28 digit is 140x140, readable in
# TensorBoard, which shows images at their own size.
MIN_CELL_SIDE = 128
TITLE_FONT_SIZE = 16
TITLE_HEIGHT = 24


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
      out[y : y + h, x : x + w] = cells[i, j]
  return out


def exemplar_grid(
  *,
  sources: list[np.ndarray],
  exemplars: list[np.ndarray],
  translations: list[list[np.ndarray]],
  pad: int = 2,
) -> np.ndarray:
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


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
  """Nearest-neighbour integer enlargement: uint8 [H, W, C] -> [kH, kW, C], each
  pixel a k x k block."""
  if int(factor) != factor or factor < 1:
    raise ValueError(f"factor must be an integer >= 1, got {factor!r}")
  return np.repeat(np.repeat(image, int(factor), axis=0), int(factor), axis=1)


def scale_for(cell_size: tuple[int, int], min_side: int = MIN_CELL_SIDE) -> int:
  """The smallest integer factor that brings a cell's shorter side to
  `min_side` pixels (1 when it is that large already)."""
  return max(1, -(-int(min_side) // min(int(cell_size[0]), int(cell_size[1]))))


def title_strip(
  width: int,
  titles: Sequence[tuple[float, str]],
  *,
  height: int = TITLE_HEIGHT,
  font_size: int = TITLE_FONT_SIZE,
  pad_value: int = 255,
) -> np.ndarray:
  """A [height, width, 3] uint8 strip of `pad_value` with each (centre x, text)
  of `titles` drawn in black, centred on x.

  Pillow's built-in font (no font file is read or downloaded)."""
  from PIL import Image, ImageDraw, ImageFont  # pylint: disable=g-import-not-at-top

  strip = Image.new("RGB", (int(width), int(height)), (pad_value,) * 3)
  draw = ImageDraw.Draw(strip)
  font = ImageFont.load_default(size=font_size)
  for x, text in titles:
    draw.text((x, height / 2), text, fill=(0, 0, 0), font=font, anchor="mm")
  return np.asarray(strip)


def titled_grid(
  cells: np.ndarray, titles: Sequence[str], *, pad: int = 2, min_side: int = MIN_CELL_SIDE
) -> np.ndarray:
  """`image_grid` enlarged by `scale_for` (nearest neighbour) under a strip
  naming each column.

  Args:
    cells: uint8 [R, C, H, W, 3].
    titles: C column titles ('' for none).
    pad: white pixels between the cells before the enlargement.
    min_side: the shorter side of a cell after it.
  Returns:
    uint8 [TITLE_HEIGHT + k (R (H + pad) + pad), k (C (W + pad) + pad), 3],
    k = scale_for((H, W), min_side); below the strip, exactly
    upscale(image_grid(cells, pad=pad), k).
  """
  cells = np.asarray(cells)
  grid = image_grid(cells, pad=pad)
  _, c, h, w, _ = cells.shape
  if len(titles) != c:
    raise ValueError(f"{len(titles)} titles for {c} columns: {list(titles)}")
  k = scale_for((h, w), min_side)
  body = upscale(grid, k)
  centres = [k * (pad + j * (w + pad) + w / 2) for j in range(c)]
  strip = title_strip(body.shape[1], [(x, t) for x, t in zip(centres, titles) if t])
  return np.concatenate([strip, body], axis=0)


def heatmap(values: np.ndarray, *, cmap: str = "inferno") -> np.ndarray:
  """float [H, W] -> uint8 [H, W, 3] through a matplotlib colour map, scaled from
  the map's own min (dark) to its max (bright); a constant map is all dark."""
  from matplotlib import colormaps  # pylint: disable=g-import-not-at-top

  v = np.asarray(values, np.float64)
  lo, hi = float(v.min()), float(v.max())
  v = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
  return (colormaps[cmap](v)[..., :3] * 255 + 0.5).astype(np.uint8)


def save_png(image: np.ndarray, path: str) -> None:
  """Writes uint8 [H, W, 3] to `path`, local or gs:// (`paths`), making its
  folder if need be."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  from egsc_jax import paths  # pylint: disable=g-import-not-at-top

  path = paths.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with path.open("wb") as f:
    Image.fromarray(np.asarray(image, np.uint8)).save(f, format="PNG")
