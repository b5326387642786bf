"""Training's image grids: exact nearest-neighbour enlargement, titles drawn
on a strip above, and an import without TensorFlow."""

import os
import subprocess
import sys

import numpy as np
import pytest

from egsc_jax import grids

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_upscale_is_an_exact_nearest_neighbour_repeat():
  image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
  big = grids.upscale(image, 4)
  assert big.shape == (8, 12, 3)
  np.testing.assert_array_equal(big, np.repeat(np.repeat(image, 4, 0), 4, 1))
  # Known pixels: the 4x4 block of input pixel (1, 2) is all of that pixel.
  np.testing.assert_array_equal(big[4:8, 8:12], np.broadcast_to(image[1, 2], (4, 4, 3)))
  assert big[3, 7].tolist() == image[0, 1].tolist()
  np.testing.assert_array_equal(grids.upscale(image, 1), image)
  for bad in (0, 2.5, -1):
    with pytest.raises(ValueError, match="factor"):
      grids.upscale(image, bad)


def test_scale_for_brings_the_shorter_side_to_the_minimum():
  assert grids.scale_for((28, 28)) == 5  # 140 >= 128 > 112
  assert grids.scale_for((64, 64)) == 2
  assert grids.scale_for((112, 112)) == 2
  assert grids.scale_for((128, 128)) == 1
  assert grids.scale_for((256, 512)) == 1
  assert grids.scale_for((32, 100)) == 4  # the shorter side decides
  assert grids.scale_for((28, 28), min_side=10) == 1


def test_titled_grid_body_is_the_upscaled_grid_and_titles_are_drawn():
  rng = np.random.default_rng(0)
  cells = rng.integers(0, 256, (3, 4, 28, 28, 3), np.uint8)
  titles = ["source A", "exemplar B", "translation", ""]
  out = grids.titled_grid(cells, titles)
  k = 5
  plain = grids.image_grid(cells)
  assert plain.shape == (3 * 30 + 2, 4 * 30 + 2, 3)
  assert out.shape == (grids.TITLE_HEIGHT + k * plain.shape[0], k * plain.shape[1], 3)
  body = out[grids.TITLE_HEIGHT :]
  np.testing.assert_array_equal(body, np.repeat(np.repeat(plain, k, 0), k, 1))
  # Cell (r, c) of the body starts at k * (pad + r * (H + pad)) on each axis.
  np.testing.assert_array_equal(
    body[k * 32 : k * 32 + 140, k * 62 : k * 62 + 140], grids.upscale(cells[1, 2], k)
  )
  strip = out[: grids.TITLE_HEIGHT]
  column = k * 30
  for j, title in enumerate(titles):
    # The strip over the column's cell, away from the neighbours' titles.
    part = strip[:, k * 2 + j * column : k * 2 + j * column + k * 28]
    inked = (part != 255).any(-1).sum()
    if title:
      assert inked > 20, (title, inked)
      assert part.min() < 100  # dark text on white
    else:
      assert inked == 0  # no title: plain background
  with pytest.raises(ValueError, match="3 titles for 4 columns"):
    grids.titled_grid(cells, titles[:3])


def test_titles_differ_in_what_they_draw():
  a = grids.title_strip(200, [(100, "source A")])
  b = grids.title_strip(200, [(100, "translation")])
  assert a.shape == b.shape == (grids.TITLE_HEIGHT, 200, 3)
  assert not np.array_equal(a, b)
  np.testing.assert_array_equal(grids.title_strip(50, []), np.full((24, 50, 3), 255))


def test_grids_import_without_tensorflow():
  code = (
    "import sys; sys.modules['tensorflow'] = None; "
    "import numpy as np; from egsc_jax import grids; "
    "g = grids.titled_grid(np.zeros((1, 2, 8, 8, 3), np.uint8), ['a', 'b']); "
    "print(g.shape)"
  )
  out = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
  )
  assert out.stdout.strip() == f"({grids.TITLE_HEIGHT + 16 * 12}, {16 * 22}, 3)"


def test_save_png_makes_its_folder_and_round_trips(tmp_path):
  """save_png writes into a folder that does not exist yet, and the PNG reads
  back pixel for pixel."""
  from PIL import Image

  image = np.random.default_rng(0).integers(0, 256, (5, 7, 3)).astype(np.uint8)
  path = tmp_path / "new" / "deeper" / "grid.png"
  grids.save_png(image, str(path))
  with Image.open(path) as im:
    np.testing.assert_array_equal(np.asarray(im.convert("RGB")), image)
