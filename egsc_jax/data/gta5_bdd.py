"""TFDS builder `gta5_bdd`: GTA5 (A) <-> BDD100K (B) street scenes, docs/method.md §4.3.

Both data sets are downloaded by hand; nothing is downloaded here. `manual_dir`:

```
manual_dir/
  gta5/                              "Playing for Data" (Richter et al. 2016),
    images/00001.png ... 24966.png   https://download.visinf.tu-darmstadt.de/data/from_games/
    labels/00001.png ... 24966.png   01_images.zip..10_images.zip and 01_labels.zip..
                                     10_labels.zip, all unzipped into gta5/ (each zip
                                     holds images/ or labels/). Labels are optional:
                                     palette PNGs whose index is the Cityscapes label
                                     id (0..33); colour-coded RGB labels also work.
  bdd100k/                           BDD100K (https://bdd-data.berkeley.edu/, or
                                     https://dl.cv.ethz.ch/bdd100k/data/), unzipped as is:
    seg/images/train/*.jpg           the 2018 "Segmentation" zip (bdd100k_seg.zip),
    seg/images/val/*.jpg
    seg/labels/train/*_train_id.png  (optional) train ids 0..18, 255 = ignore
    seg/labels/val/*_train_id.png
      -- or the current release --
    images/10k/train/*.jpg           bdd100k_images_10k.zip
    images/10k/val/*.jpg
    labels/sem_seg/masks/train/*.png (optional) bdd100k_sem_seg_labels_trainval.zip
    labels/sem_seg/masks/val/*.png
    videos/out_img/**/*.jpg          (optional) extra frames from BDD videos for
                                     trainB (docs/method.md §9 A9; the authors' extraction is
                                     not published)
```

Splits (docs/method.md §4.3):
- A: the GTA5 images sorted by relative path, permuted with `default_rng(0)`; the
  first 24,466 are train and the next 500 test (all 24,966 frames). With N != 24,966
  frames the test share scales: n_test = clip(round(N * 500 / 24,966), 1, 500) and
  n_train = min(24,466, N - n_test); extra frames beyond 24,966 are unused.
- B train: the sorted segmentation-train images followed by the sorted extra frames,
  repeated (seeded) or cut to A's train length (A9). B test: the first 500 sorted
  segmentation-val images.
- Train pairs are random (seeded); test pairs go in sorted order, the shorter
  side cycled (500 each on the full data).

Stored: images at 256x512 (PIL bilinear, which antialiases when shrinking) and the
labels resized with nearest neighbour and mapped to the 8 Cityscapes categories
(categoryId: 0 void, 1 flat, 2 construction, 3 object, 4 nature, 5 sky, 6 human,
7 vehicle; 255 = unknown). GTA5 label ids and BDD train ids both map through the
Cityscapes label table; ids outside it, and BDD's 255, stay 255. A domain without
labels (or the extra frames, which have none) stores 255 everywhere; metadata
`labels_a`/`labels_b` say whether labels were found, and `missing_label_files`
counts images of a labelled domain whose label file is absent or unreadable.
An image that fails to decode drops its pair, with a warning naming it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

from egsc_jax import errors
from egsc_jax.data import images
from egsc_jax.data.manual_dir import record_skips, resolve_manual_dir
from egsc_jax.data.pairing import PAIRING_SEED, pair_id, pair_indices

logger = logging.getLogger(__name__)

HEIGHT, WIDTH = 256, 512
UNKNOWN = 255
GTA5_SPLIT_SEED = 0
GTA5_TOTAL, GTA5_TRAIN, GTA5_TEST = 24_966, 24_466, 500
BDD_TEST = 500

CATEGORY_NAMES = ("void", "flat", "construction", "object", "nature", "sky", "human", "vehicle")

# Cityscapes labels (cityscapesScripts `labels.py`): (label id, train id,
# category id, colour). Train id 255 = not trained on.
CITYSCAPES_LABELS = (
  (0, 255, 0, (0, 0, 0)),  # unlabeled
  (1, 255, 0, (0, 0, 0)),  # ego vehicle
  (2, 255, 0, (0, 0, 0)),  # rectification border
  (3, 255, 0, (0, 0, 0)),  # out of roi
  (4, 255, 0, (0, 0, 0)),  # static
  (5, 255, 0, (111, 74, 0)),  # dynamic
  (6, 255, 0, (81, 0, 81)),  # ground
  (7, 0, 1, (128, 64, 128)),  # road
  (8, 1, 1, (244, 35, 232)),  # sidewalk
  (9, 255, 1, (250, 170, 160)),  # parking
  (10, 255, 1, (230, 150, 140)),  # rail track
  (11, 2, 2, (70, 70, 70)),  # building
  (12, 3, 2, (102, 102, 156)),  # wall
  (13, 4, 2, (190, 153, 153)),  # fence
  (14, 255, 2, (180, 165, 180)),  # guard rail
  (15, 255, 2, (150, 100, 100)),  # bridge
  (16, 255, 2, (150, 120, 90)),  # tunnel
  (17, 5, 3, (153, 153, 153)),  # pole
  (18, 255, 3, (153, 153, 153)),  # polegroup
  (19, 6, 3, (250, 170, 30)),  # traffic light
  (20, 7, 3, (220, 220, 0)),  # traffic sign
  (21, 8, 4, (107, 142, 35)),  # vegetation
  (22, 9, 4, (152, 251, 152)),  # terrain
  (23, 10, 5, (70, 130, 180)),  # sky
  (24, 11, 6, (220, 20, 60)),  # person
  (25, 12, 6, (255, 0, 0)),  # rider
  (26, 13, 7, (0, 0, 142)),  # car
  (27, 14, 7, (0, 0, 70)),  # truck
  (28, 15, 7, (0, 60, 100)),  # bus
  (29, 255, 7, (0, 0, 90)),  # caravan
  (30, 255, 7, (0, 0, 110)),  # trailer
  (31, 16, 7, (0, 80, 100)),  # train
  (32, 17, 7, (0, 0, 230)),  # motorcycle
  (33, 18, 7, (119, 11, 32)),  # bicycle
)


def _lookup_tables() -> tuple[np.ndarray, np.ndarray]:
  """uint8 [65536] tables: label id -> category, train id -> category."""
  from_id = np.full(65536, UNKNOWN, np.uint8)
  from_train_id = np.full(65536, UNKNOWN, np.uint8)
  for label_id, train_id, category, _ in CITYSCAPES_LABELS:
    from_id[label_id] = category
    if train_id != 255:
      from_train_id[train_id] = category
  return from_id, from_train_id


LABEL_ID_TO_CATEGORY, TRAIN_ID_TO_CATEGORY = _lookup_tables()


def _colour_key(rgb: np.ndarray) -> np.ndarray:
  rgb = rgb.astype(np.int64)
  return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


# Colour-coded labels: colours shared by several ids share the category too.
_COLOUR_KEYS = np.array(sorted({_colour_key(np.array(c)).item() for *_, c in CITYSCAPES_LABELS}))
_COLOUR_CATEGORIES = np.array(
  [
    next(cat for _, _, cat, c in CITYSCAPES_LABELS if _colour_key(np.array(c)) == key)
    for key in _COLOUR_KEYS
  ],
  np.uint8,
)


def _look_up(table: np.ndarray, values: np.ndarray) -> np.ndarray:
  values = np.asarray(values, dtype=np.int64)
  inside = (values >= 0) & (values < len(table))
  # Out-of-table values (negative, e.g. Cityscapes' license plate -1) are unknown.
  return np.where(inside, table[np.where(inside, values, 0)], UNKNOWN).astype(np.uint8)


def label_ids_to_categories(label_ids: np.ndarray) -> np.ndarray:
  """Cityscapes label ids (0..33; GTA5 labels) -> category ids, others 255."""
  return _look_up(LABEL_ID_TO_CATEGORY, label_ids)


def train_ids_to_categories(train_ids: np.ndarray) -> np.ndarray:
  """Cityscapes train ids (0..18; BDD100K masks) -> category ids, 255 -> 255."""
  return _look_up(TRAIN_ID_TO_CATEGORY, train_ids)


def colours_to_categories(rgb: np.ndarray) -> np.ndarray:
  """Cityscapes label colours uint8 `[H, W, 3]` -> category ids `[H, W]`; others 255."""
  keys = _colour_key(rgb)
  pos = np.clip(np.searchsorted(_COLOUR_KEYS, keys), 0, len(_COLOUR_KEYS) - 1)
  return np.where(_COLOUR_KEYS[pos] == keys, _COLOUR_CATEGORIES[pos], UNKNOWN).astype(np.uint8)


def read_categories(path: str, *, kind: str) -> np.ndarray:
  """Reads one label file as category ids uint8 `[H, W]`.

  Args:
    path: a label PNG.
    kind: "label_id" (GTA5: Cityscapes label ids, or the Cityscapes colours when
      the file is RGB) or "train_id" (BDD100K masks).

  Raises:
    images.ImageReadError: unreadable, or an RGB file where train ids are expected.
  """
  mode = images.label_image_mode(path)
  if mode in ("RGB", "RGBA") and kind == "label_id":
    return colours_to_categories(images.read_rgb_label_image(path))
  values = images.read_label_image(path)
  if kind == "label_id":
    return label_ids_to_categories(values)
  return train_ids_to_categories(values)


# ---------------------------------------------------------------------------
# Finding the files.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BddLayout:
  """One of the BDD100K release layouts, relative to manual_dir."""

  name: str
  image_dirs: dict[str, str]  # "train"/"val" -> folder
  label_dirs: dict[str, str]
  label_suffix: str  # label file = image stem + suffix


BDD_LAYOUTS = (
  BddLayout(
    name="seg (2018 release)",
    image_dirs={s: os.path.join("bdd100k", "seg", "images", s) for s in ("train", "val")},
    label_dirs={s: os.path.join("bdd100k", "seg", "labels", s) for s in ("train", "val")},
    label_suffix="_train_id.png",
  ),
  BddLayout(
    name="images/10k + labels/sem_seg (current release)",
    image_dirs={s: os.path.join("bdd100k", "images", "10k", s) for s in ("train", "val")},
    label_dirs={
      s: os.path.join("bdd100k", "labels", "sem_seg", "masks", s) for s in ("train", "val")
    },
    label_suffix=".png",
  ),
)
BDD_EXTRA_DIR = os.path.join("bdd100k", "videos", "out_img")
GTA5_IMAGE_DIR = os.path.join("gta5", "images")
GTA5_LABEL_DIR = os.path.join("gta5", "labels")

EXPECTED_LAYOUT = """gta5_bdd reads GTA5 and BDD100K from the manual dir:
  manual_dir/gta5/images/*.png           GTA5 "Playing for Data" images (NN_images.zip)
  manual_dir/gta5/labels/*.png           optional, same names (NN_labels.zip)
  manual_dir/bdd100k/seg/images/{train,val}/*.jpg           BDD100K bdd100k_seg.zip
  manual_dir/bdd100k/seg/labels/{train,val}/*_train_id.png  optional
    or manual_dir/bdd100k/images/10k/{train,val}/*.jpg      bdd100k_images_10k.zip
       manual_dir/bdd100k/labels/sem_seg/masks/{train,val}/*.png  optional
  manual_dir/bdd100k/videos/out_img/**/*.jpg                optional extra trainB frames
GTA5: https://download.visinf.tu-darmstadt.de/data/from_games/ ; BDD100K:
https://bdd-data.berkeley.edu/ (download portal; also https://dl.cv.ethz.ch/bdd100k/data/).
Unzip them as they are into manual_dir/gta5/ and manual_dir/ respectively."""


@dataclasses.dataclass(frozen=True)
class Gta5BddFiles:
  """The sorted inputs, absolute paths; label maps None when a domain has none."""

  gta5_images: list[str]
  gta5_labels: dict[str, str] | None  # image path -> label path (when present)
  bdd_layout: str
  bdd_images: dict[str, list[str]]  # "train", "val"
  bdd_labels: dict[str, str] | None
  bdd_extra: list[str]


def _has_files(folder: str) -> bool:
  return os.path.isdir(folder) and bool(images.list_image_files(folder))


def _label_map(
  image_paths: Sequence[str], image_root: str, label_root: str, suffix: str
) -> dict[str, str]:
  """image path -> expected label path (same relative folder, stem + suffix)."""
  out = {}
  for path in image_paths:
    rel = os.path.relpath(path, image_root)
    out[path] = os.path.join(label_root, os.path.splitext(rel)[0] + suffix)
  return out


def find_gta5_bdd_files(manual_dir: str) -> Gta5BddFiles:
  """Lists every input; a missing required folder is one FileNotFoundError."""
  problems = []
  gta5_dir = os.path.join(manual_dir, GTA5_IMAGE_DIR)
  if not _has_files(gta5_dir):
    problems.append(f"  {gta5_dir}/*.png: missing or empty (GTA5 images)")
  layout = next(
    (
      lay
      for lay in BDD_LAYOUTS
      if all(_has_files(os.path.join(manual_dir, d)) for d in lay.image_dirs.values())
    ),
    None,
  )
  if layout is None:
    looked = [os.path.join(manual_dir, d) for lay in BDD_LAYOUTS for d in lay.image_dirs.values()]
    problems.append(
      "  BDD100K train and val images: found neither layout; looked for\n"
      + "\n".join(f"    {p}/*.jpg" for p in looked)
    )
  if problems:
    raise FileNotFoundError(
      "gta5_bdd: missing input(s):\n" + "\n".join(problems) + "\n" + EXPECTED_LAYOUT
    )
  gta5_images = images.list_image_files(gta5_dir, recursive=True)
  gta5_label_dir = os.path.join(manual_dir, GTA5_LABEL_DIR)
  gta5_labels = (
    _label_map(gta5_images, gta5_dir, gta5_label_dir, ".png")
    if _has_files(gta5_label_dir)
    else None
  )
  bdd_images = {
    s: images.list_image_files(os.path.join(manual_dir, d)) for s, d in layout.image_dirs.items()
  }
  label_dirs = {s: os.path.join(manual_dir, d) for s, d in layout.label_dirs.items()}
  bdd_labels = None
  if any(_has_files(d) for d in label_dirs.values()):
    bdd_labels = {}
    for s in ("train", "val"):
      bdd_labels.update(
        _label_map(
          bdd_images[s],
          os.path.join(manual_dir, layout.image_dirs[s]),
          label_dirs[s],
          layout.label_suffix,
        )
      )
  extra_dir = os.path.join(manual_dir, BDD_EXTRA_DIR)
  extra = images.list_image_files(extra_dir, recursive=True) if os.path.isdir(extra_dir) else []
  return Gta5BddFiles(
    gta5_images=gta5_images,
    gta5_labels=gta5_labels,
    bdd_layout=layout.name,
    bdd_images=bdd_images,
    bdd_labels=bdd_labels,
    bdd_extra=extra,
  )


def gta5_split_sizes(num: int) -> tuple[int, int]:
  """(n_train, n_test) for `num` GTA5 frames: 24,466/500 on the full set, scaled."""
  if num < 2:
    raise errors.UserError(f"gta5_bdd needs at least 2 GTA5 images, found {num}")
  n_test = int(min(GTA5_TEST, max(1, round(num * GTA5_TEST / GTA5_TOTAL))))
  return min(GTA5_TRAIN, num - n_test), n_test


def split_gta5(paths: Sequence[str], *, seed: int = GTA5_SPLIT_SEED) -> tuple[list[str], list[str]]:
  """Seeded split of the sorted GTA5 images: (sorted train, sorted test)."""
  n_train, n_test = gta5_split_sizes(len(paths))
  order = np.random.default_rng(seed).permutation(len(paths))
  shuffled = [paths[i] for i in order]
  return sorted(shuffled[:n_train]), sorted(shuffled[n_train : n_train + n_test])


# ---------------------------------------------------------------------------
# Loading one frame.
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class _Frame:
  image: np.ndarray | None = None  # uint8 [256, 512, 3]
  label: np.ndarray | None = None  # uint8 [256, 512, 1]
  error: images.ImageReadError | None = None
  label_problem: tuple[str, str] | None = None  # (label path, why it got 255s)


def load_frame(image_path: str, label_path: str | None, *, kind: str) -> _Frame:
  """Reads, resizes and maps one frame; never raises (errors are returned)."""
  frame = _Frame()
  try:
    frame.image = images.resize_bilinear_half_pixel(
      images.read_image(image_path), height=HEIGHT, width=WIDTH, antialias=True
    )
  except images.ImageReadError as e:
    frame.error = e
    return frame
  categories = None
  if label_path is not None:
    if not os.path.isfile(label_path):
      frame.label_problem = (label_path, "missing")
    else:
      try:
        categories = images.resize_nearest(
          read_categories(label_path, kind=kind), height=HEIGHT, width=WIDTH
        )
      except images.ImageReadError as e:
        frame.label_problem = (label_path, e.reason)
  if categories is None:
    categories = np.full((HEIGHT, WIDTH), UNKNOWN, np.uint8)
  frame.label = categories[..., None]
  return frame


class Gta5Bdd(tfds.core.GeneratorBasedBuilder):
  """GTA5 (A) <-> BDD100K (B) at 256x512, with 8-category labels when present."""

  name = "gta5_bdd"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = EXPECTED_LAYOUT

  def _info(self) -> tfds.core.DatasetInfo:
    image = lambda: tfds.features.Image(shape=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    label = lambda: tfds.features.Image(shape=(HEIGHT, WIDTH, 1), dtype=np.uint8)
    return self.dataset_info_from_configs(
      description=(
        "GTA5 (A) <-> BDD100K (B), 256x512, labels as Cityscapes categoryId "
        f"{dict(enumerate(CATEGORY_NAMES))}, 255 = unknown."
      ),
      features=tfds.features.FeaturesDict(
        {
          "image_a": image(),
          "image_b": image(),
          "label_a": label(),
          "label_b": label(),
          "id": tfds.features.Text(),
        }
      ),
      disable_shuffling=True,
      metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    files = find_gta5_bdd_files(resolve_manual_dir(dl_manager))
    a_train, a_test = split_gta5(files.gta5_images)
    # A9: segmentation-train images, then the extra frames (cut if too many).
    b_train = files.bdd_images["train"] + files.bdd_extra
    b_test = files.bdd_images["val"][:BDD_TEST]
    if files.gta5_labels is None:
      logger.warning("gta5_bdd: no GTA5 labels in %s; label_a is all 255.", GTA5_LABEL_DIR)
    if files.bdd_labels is None:
      logger.warning("gta5_bdd: no BDD100K labels found; label_b is all 255.")
    # A rebuild (--overwrite) starts from the metadata of the old build.
    self.info.metadata.clear()
    self.info.metadata.update(
      {
        "labels_a": files.gta5_labels is not None,
        "labels_b": files.bdd_labels is not None,
        "bdd_layout": files.bdd_layout,
        "num_images": {
          "gta5": len(files.gta5_images),
          "gta5_train": len(a_train),
          "gta5_test": len(a_test),
          "bdd_seg_train": len(files.bdd_images["train"]),
          "bdd_extra_frames": len(files.bdd_extra),
          "bdd_test": len(b_test),
        },
        "num_skipped_files": 0,
        "skipped_files": [],
        "missing_label_files": 0,
        "pairing_seed": PAIRING_SEED,
        "gta5_split_seed": GTA5_SPLIT_SEED,
      }
    )
    return {
      "train": self._generate_examples(files, a_train, b_train, split_name="train"),
      "test": self._generate_examples(files, a_test, b_test, split_name="test"),
    }

  def _generate_examples(
    self,
    files: Gta5BddFiles,
    paths_a: Sequence[str],
    paths_b: Sequence[str],
    *,
    split_name: str,
  ) -> Iterator[tuple[str, dict]]:
    if split_name == "train":
      # docs/method.md §4.3: B is repeated or cut to A's length; the pairs are shuffled.
      idx_a, idx_b = pair_indices(
        len(paths_a), len(paths_b), seed=PAIRING_SEED, shuffle=True, length=len(paths_a)
      )
    else:
      idx_a, idx_b = pair_indices(len(paths_a), len(paths_b), seed=PAIRING_SEED, shuffle=False)
    labels_a, labels_b = files.gta5_labels or {}, files.bdd_labels or {}
    total = len(idx_a)

    def load(k: int) -> tuple[_Frame, _Frame]:
      a, b = paths_a[idx_a[k]], paths_b[idx_b[k]]
      return (
        load_frame(a, labels_a.get(a), kind="label_id"),
        load_frame(b, labels_b.get(b), kind="train_id"),
      )

    skipped = images.SkippedFiles()
    label_problems: dict[str, str] = {}
    dropped = 0
    pairs = images.map_ordered(load, range(total), num_threads=images.default_num_threads())
    for k, (a, b) in enumerate(pairs):
      for frame in (a, b):
        if frame.label_problem:
          label_problems.setdefault(*frame.label_problem)
      if a.error or b.error:
        for frame in (a, b):
          if frame.error:
            skipped.add(frame.error.path, frame.error.reason)
        dropped += 1
        continue
      key = pair_id(k, total)
      yield (
        key,
        {
          "image_a": a.image,
          "image_b": b.image,
          "label_a": a.label,
          "label_b": b.label,
          "id": key,
        },
      )
    record_skips(self.info.metadata, skipped, dropped, split_name=split_name)
    if label_problems:
      shown = list(label_problems.items())[:10]
      logger.warning(
        "gta5_bdd %s: %d label file(s) missing or unreadable, stored as 255: %s",
        split_name,
        len(label_problems),
        "; ".join(f"{p}: {r}" for p, r in shown),
      )
    self.info.metadata["missing_label_files"] += len(label_problems)
