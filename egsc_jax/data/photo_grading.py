"""Photo-Grades' photographs, crops and colour grades, with numpy and Pillow alone.

The rules are in `photo_grades`' docstring; this module holds them without
TensorFlow, so that the TFDS builder (`photo_grades.PhotoGrades`), the tests
and the evaluation (grade names) share them: `split_examples(split, num)`
yields the pairs of a split in the builder's order.

A grade is a pure per-pixel function of the RGB values (`apply_grade`), so the
ground truth of a translation into grade g is `apply_grade(source, GRADES[g])`
exactly, pixel by pixel.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import pathlib
from typing import Iterator

import numpy as np

SEED = 0
SIZE = 64
# A crop's side, as a share of the photograph's shorter side: U(0.25, 0.75),
# i.e. 75 to 384 px squares of 300 to 512 px photographs, 1.2 to 6 times the
# output size (always a down-sampling).
CROP_SCALE = (0.25, 0.75)
_SPLIT_STREAM = {"train": 0, "test": 1, "validation": 2}
# Pairs per split (`photo_grades` builds these many).
SPLIT_SIZES = {"train": 4000, "validation": 500, "test": 1000}

# Rec. 601 luma weights: the grey a saturation of 0 leaves.
LUMA = np.array([0.299, 0.587, 0.114])


@dataclasses.dataclass(frozen=True)
class Photo:
  """A colour photograph shipped inside an installed package.

  Attributes:
    name: our name for it.
    package: the importable package whose folder holds the file.
    path: the file, relative to that folder.
  """

  name: str
  package: str
  path: str


# Every everyday colour photograph scikit-image ships in its wheel (no pooch
# download), its immunohistochemistry slide, and matplotlib's portrait of Grace
# Hopper (a runtime dependency of egsc-jax). Left out: greyscale images,
# synthetic ones (color.png, the chessboards, the logo) and the mostly black
# hubble_deep_field.jpg and retina.jpg, whose crops would be mostly uniform.
PHOTOS = {
  p.name: p
  for p in (
    Photo("astronaut", "skimage", "data/astronaut.png"),
    Photo("rocket", "skimage", "data/rocket.jpg"),
    # A stereo pair: one scene, so both views stay in the same split.
    Photo("motorcycle_left", "skimage", "data/motorcycle_left.png"),
    Photo("motorcycle_right", "skimage", "data/motorcycle_right.png"),
    Photo("immunohistochemistry", "skimage", "data/ihc.png"),
    Photo("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    Photo("chelsea", "skimage", "data/chelsea.png"),
    Photo("coffee", "skimage", "data/coffee.png"),
  )
}

# Split by photograph: no validation or test photograph is seen in training.
# Validation is a held-out photograph of its own (settings are chosen there),
# test two more (the numbers we report): a cat's fur and a cup on a table.
SPLIT_PHOTOS = {
  "train": ("astronaut", "rocket", "motorcycle_left", "motorcycle_right", "immunohistochemistry"),
  "validation": ("grace_hopper",),
  "test": ("chelsea", "coffee"),
}


@dataclasses.dataclass(frozen=True)
class Grade:
  """A photographic colour grade: a saturation change, then a tone curve per channel.

  out_c = lift_c + (gain_c - lift_c) * clip(s_c, 0, 1) ** gamma_c, where
  s = luma + saturation * (rgb - luma) with the Rec. 601 luma of the pixel;
  everything in [0, 1], the result clipped to [0, 1] and rounded to uint8.

  Attributes:
    name: the grade's name.
    saturation: 1 keeps the colours, 0 gives grey, > 1 strengthens them.
    gamma: [3] per-channel exponent (R, G, B); < 1 brightens the mid-tones.
    lift: [3] per-channel output of black: > 0 lifts (fades) the shadows.
    gain: [3] per-channel output of white: < 1 darkens and tints the highlights.
  """

  name: str
  saturation: float
  gamma: tuple[float, float, float]
  lift: tuple[float, float, float]
  gain: tuple[float, float, float]


# Domain B's grades, in label order (ClassLabel names of `grade_b`). Domain A
# is the photographs as they are ("neutral": the identity grade).
GRADES = (
  # Warm (golden) daylight: richer colours, brighter warm mid-tones, yellow whites.
  Grade(
    "day", saturation=1.35, gamma=(0.8, 0.85, 1.0), lift=(0.03, 0.01, 0.0), gain=(1.0, 0.9, 0.7)
  ),
  # Night ("day for night"): dark, blue and washed of colour.
  Grade(
    "night", saturation=0.35, gamma=(1.6, 1.5, 1.2), lift=(0.0, 0.02, 0.06), gain=(0.35, 0.45, 0.7)
  ),
  # Sepia: grey, then a brown tone from warm lifted shadows to cream highlights.
  Grade(
    "sepia",
    saturation=0.0,
    gamma=(0.9, 0.95, 1.05),
    lift=(0.12, 0.08, 0.04),
    gain=(0.98, 0.85, 0.64),
  ),
  # Faded film: lifted blacks, dimmed whites (low contrast), muted colours.
  Grade(
    "faded", saturation=0.6, gamma=(0.9, 0.9, 0.95), lift=(0.22, 0.2, 0.24), gain=(0.88, 0.86, 0.8)
  ),
  # Cool: a blue-cyan cast, muted colours, brightness kept.
  Grade(
    "cool", saturation=0.8, gamma=(1.2, 1.05, 0.85), lift=(0.0, 0.03, 0.08), gain=(0.78, 0.92, 1.0)
  ),
)
GRADE_NAMES = tuple(g.name for g in GRADES)
NEUTRAL = Grade(
  "neutral", saturation=1.0, gamma=(1.0, 1.0, 1.0), lift=(0.0, 0.0, 0.0), gain=(1.0, 1.0, 1.0)
)


def grade_names(labels: np.ndarray) -> list[str]:
  """Names of `grade_b` labels: int [N] -> N names of GRADE_NAMES."""
  return [GRADE_NAMES[int(k)] for k in np.asarray(labels).reshape(-1)]


def apply_grade(image: np.ndarray, grade: Grade) -> np.ndarray:
  """Grades uint8 RGB images, pixel by pixel (see `Grade`): uint8 [..., 3] -> same."""
  x = np.asarray(image, np.float64) / 255.0
  luma = (x @ LUMA)[..., None]
  x = np.clip(luma + grade.saturation * (x - luma), 0.0, 1.0)
  lift, gain = np.asarray(grade.lift), np.asarray(grade.gain)
  y = lift + (gain - lift) * x ** np.asarray(grade.gamma)
  return np.round(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8)


# ----------------------------------------------------------------------------
# Photographs
# ----------------------------------------------------------------------------


def photo_path(photo: Photo) -> pathlib.Path:
  """The file inside the installed package (found without importing it).

  Raises:
    FileNotFoundError: the package is not installed or lacks the file (the
      message names both and how to install the package).
  """
  spec = importlib.util.find_spec(photo.package)
  locations = list(spec.submodule_search_locations or []) if spec else []
  for location in locations:
    path = pathlib.Path(location) / photo.path
    if path.is_file():
      return path
  pip_name = {"skimage": "scikit-image"}.get(photo.package, photo.package)
  problem = (
    f"the installed {photo.package} ({', '.join(locations)}) has no {photo.path}"
    if locations
    else f"{photo.package} is not installed"
  )
  raise FileNotFoundError(
    f"photograph {photo.name!r}: {problem}; photo_grades reads it from that "
    f"package: pip install {pip_name}"
  )


def load_photo(photo: Photo) -> np.ndarray:
  """The photograph as uint8 [H, W, 3] RGB."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  with Image.open(photo_path(photo)) as im:
    return np.asarray(im.convert("RGB"))


def photo_digest(photo: Photo) -> str:
  """sha256 of the photograph's file: the builder records it, as a different
  package version could ship a different file."""
  return hashlib.sha256(photo_path(photo).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------
# Crops
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Crop:
  """A square region of a photograph, in pixels (floats: sub-pixel edges).

  Attributes:
    photo: the photograph's name.
    left, top: its top-left corner.
    side: its side.
  """

  photo: str
  left: float
  top: float
  side: float


def draw_crops(
  rng: np.random.Generator, photos: tuple[str, ...], shapes: dict[str, tuple[int, int]], num: int
) -> list[Crop]:
  """`num` random square crops, the photographs taken in turn (as equal shares as
  `num` allows) in a random order.

  The side is U(CROP_SCALE) times the photograph's shorter side; the position is
  uniform over the places where the square fits.

  Args:
    rng: the stream to draw from.
    photos: the split's photograph names.
    shapes: (H, W) of each photograph.
    num: how many crops.
  """
  which = rng.permutation(np.arange(num) % len(photos))
  u = rng.random((num, 3))
  crops = []
  for k, (us, ux, uy) in zip(which, u):
    name = photos[k]
    h, w = shapes[name]
    side = (CROP_SCALE[0] + (CROP_SCALE[1] - CROP_SCALE[0]) * us) * min(h, w)
    crops.append(Crop(photo=name, left=ux * (w - side), top=uy * (h - side), side=side))
  return crops


def render_crop(image: np.ndarray, crop: Crop) -> np.ndarray:
  """The crop of uint8 [H, W, 3] resized to uint8 [64, 64, 3].

  Pillow's BOX filter: each output pixel is the area-weighted mean of the
  source pixels under it (no aliasing when shrinking; sub-pixel crop edges).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top

  box = (crop.left, crop.top, crop.left + crop.side, crop.top + crop.side)
  out = Image.fromarray(image).resize((SIZE, SIZE), resample=Image.Resampling.BOX, box=box)
  return np.asarray(out)


# ----------------------------------------------------------------------------
# Pairs
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PairPlan:
  """What every pair of a split shows.

  Attributes:
    crops_a: N crops of domain A (shown neutral).
    crops_b: N crops of domain B.
    grades_b: int64 [N] index into GRADES of B's grade.
  """

  crops_a: list[Crop]
  crops_b: list[Crop]
  grades_b: np.ndarray


def plan_split(
  split: str, num: int, *, shapes: dict[str, tuple[int, int]], seed: int = SEED
) -> PairPlan:
  """Draws the crops and grades of `num` pairs of `split`.

  A and B crops are independent draws from the split's photographs; the grades
  are balanced (each grade num / len(GRADES) times, up to one) in random order.
  """
  if split not in _SPLIT_STREAM:
    raise ValueError(f"split must be one of {sorted(_SPLIT_STREAM)}, got {split!r}")
  rng = np.random.default_rng((seed, _SPLIT_STREAM[split]))
  photos = SPLIT_PHOTOS[split]
  crops_a = draw_crops(rng, photos, shapes, num)
  crops_b = draw_crops(rng, photos, shapes, num)
  grades_b = rng.permutation(np.arange(num) % len(GRADES)).astype(np.int64)
  return PairPlan(crops_a=crops_a, crops_b=crops_b, grades_b=grades_b)


def render_pair(
  plan: PairPlan, i: int, *, images: dict[str, np.ndarray], with_gt: bool
) -> dict[str, np.ndarray]:
  """Images of pair i: image_a, image_b, gt_a2b, gt_b2a, uint8 [64, 64, 3] each.

  image_a is A's crop as photographed; image_b is B's crop in grade g =
  plan.grades_b[i]. The ground truth A->B is A's crop in grade g, B->A B's
  crop as photographed (zeros when not `with_gt`, the training split).

  Args:
    plan: the split's plan.
    i: pair index.
    images: the split's photographs by name, uint8 [H, W, 3].
    with_gt: draw the ground truth.
  """
  crop_a, crop_b = plan.crops_a[i], plan.crops_b[i]
  neutral_a = render_crop(images[crop_a.photo], crop_a)
  neutral_b = render_crop(images[crop_b.photo], crop_b)
  grade = GRADES[plan.grades_b[i]]
  out = {"image_a": neutral_a, "image_b": apply_grade(neutral_b, grade)}
  if with_gt:
    out["gt_a2b"], out["gt_b2a"] = apply_grade(neutral_a, grade), neutral_b
  else:
    zeros = np.zeros((SIZE, SIZE, 3), np.uint8)
    out["gt_a2b"], out["gt_b2a"] = zeros, zeros
  return out


def split_examples(
  split: str, num: int | None = None, *, seed: int = SEED
) -> Iterator[dict[str, np.ndarray | str | int]]:
  """The pairs of `split` ('train', 'validation' or 'test'), in stored order:
  render_pair's images (ground truth except for 'train'), 'grade_b' (int),
  'photo_a', 'photo_b' (names) and 'id'.

  Args:
    split: the split.
    num: how many pairs (default SPLIT_SIZES[split]).
    seed: the dataset seed; each split draws from its own stream of it.
  """
  num = SPLIT_SIZES[split] if num is None else num
  images = {name: load_photo(PHOTOS[name]) for name in SPLIT_PHOTOS[split]}
  shapes = {name: im.shape[:2] for name, im in images.items()}
  plan = plan_split(split, num, shapes=shapes, seed=seed)
  for i in range(num):
    example = render_pair(plan, i, images=images, with_gt=split != "train")
    example["grade_b"] = int(plan.grades_b[i])
    example["photo_a"] = plan.crops_a[i].photo
    example["photo_b"] = plan.crops_b[i].photo
    example["id"] = f"{i:05d}"
    yield example
