"""Writes a small pair of image domains for the "Train on your own images" guide.

  python tools/example_domains.py OUT_DIR

Domain A is colour photographs, domain B black-and-white ones, all from the
photographs that ship inside scikit-image (`skimage.data`, installed with the
test extra: `bash tools/setup.sh --test`), so nothing is downloaded. Each
photograph gives five crops (its four corners and its centre, 3/4 of each side),
written as JPEGs at their own size into the image_folder layout:

  OUT_DIR/trainA/  20 crops of astronaut, chelsea, coffee, motorcycle
  OUT_DIR/trainB/  25 crops of camera, moon, coins, brick, grass
  OUT_DIR/testA/    5 crops of rocket
  OUT_DIR/testB/    5 crops of gravel

The test photographs are not among the training ones. Running it again writes
the same files (JPEG quality 95).
"""

from __future__ import annotations

import os
import sys

import numpy as np
from PIL import Image

# folder -> skimage.data photographs (colour ones are [H, W, 3], grey ones [H, W]).
DOMAINS = {
  "trainA": ("astronaut", "chelsea", "coffee", "motorcycle"),
  "trainB": ("camera", "moon", "coins", "brick", "grass"),
  "testA": ("rocket",),
  "testB": ("gravel",),
}
CROP_FRACTION = 0.75


def photograph(name: str) -> np.ndarray:
  """A photograph of skimage.data as a uint8 array."""
  from skimage import data  # pylint: disable=g-import-not-at-top

  if name == "motorcycle":
    return data.stereo_motorcycle()[0]  # the left view
  return getattr(data, name)()


def crops(image: np.ndarray) -> list[np.ndarray]:
  """The four corner crops and the centre crop, each CROP_FRACTION of each side."""
  height, width = image.shape[:2]
  h, w = int(height * CROP_FRACTION), int(width * CROP_FRACTION)
  corners = [
    (0, 0),
    (0, width - w),
    (height - h, 0),
    (height - h, width - w),
    ((height - h) // 2, (width - w) // 2),
  ]
  return [image[y : y + h, x : x + w] for y, x in corners]


def write(out_dir: str) -> dict[str, int]:
  """Writes the four folders; returns the number of files in each."""
  counts = {}
  for folder, names in DOMAINS.items():
    os.makedirs(os.path.join(out_dir, folder), exist_ok=True)
    counts[folder] = 0
    for name in names:
      for i, crop in enumerate(crops(photograph(name))):
        Image.fromarray(crop).save(os.path.join(out_dir, folder, f"{name}_{i}.jpg"), quality=95)
        counts[folder] += 1
  return counts


def main(argv: list[str]) -> int:
  if len(argv) != 2:
    print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
    return 2
  counts = write(argv[1])
  print(", ".join(f"{folder}: {n} images" for folder, n in counts.items()))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
