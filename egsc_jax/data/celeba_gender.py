"""TFDS builder `celeba_gender`: CelebA male (A) <-> female (B), docs/method.md §4.5.

Source: the aligned-and-cropped CelebA (178x218 JPEGs), downloaded by hand from the
CelebA website (https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, "Align&Cropped
Images" and the annotation files, hosted on Google Drive and Baidu). Nothing is
downloaded here. `manual_dir` may hold the files flat, or in the folders of the
official Google Drive tree (`Img/`, `Anno/`, `Eval/`); both are accepted:

```
manual_dir/
  img_align_celeba/000001.jpg ... 202599.jpg   or  Img/img_align_celeba/...
                                                   (unzip Img/img_align_celeba.zip)
  list_attr_celeba.txt                         or  Anno/list_attr_celeba.txt
  list_eval_partition.txt                      or  Eval/list_eval_partition.txt
```

`list_attr_celeba.txt` is the official text format: line 1 the image count, line 2
the 40 attribute names, then `000001.jpg -1  1 ...` rows; the `Male` column gives
A (Male = 1) and B (Male = -1). `list_eval_partition.txt` rows are `000001.jpg 0`:
train = partition 0, test = partition 2 (validation, 1, is unused).

Preprocessing (docs/method.md §4.5): rows 20:198 are cropped (178x178), resized to 132x132
with plain bilinear (the authors' cv2.resize), then to 128x128 with PIL's bilinear
(the authors' scipy.misc.imresize); stored uint8 `[128, 128, 3]`.

Pairs: the shorter gender list is repeated to the longer one's length; train pairs
are shuffled (seeded), test pairs are in sorted file order. Images listed in the
annotation files but absent from the folder are skipped with one warning; images
that fail to decode drop their pairs with a warning naming the file. Both counts
are in the dataset's metadata.
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

IMAGE_SIZE = 128
SOURCE_HEIGHT, SOURCE_WIDTH = 218, 178
CROP_ROWS = (20, 198)
INTERMEDIATE_SIZE = 132
TRAIN_PARTITION, TEST_PARTITION = 0, 2

IMAGE_FOLDER = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
# (flat layout, official Google Drive layout), relative to manual_dir.
_CANDIDATES = {
  IMAGE_FOLDER: (IMAGE_FOLDER, os.path.join("Img", IMAGE_FOLDER)),
  ATTR_FILE: (ATTR_FILE, os.path.join("Anno", ATTR_FILE)),
  PARTITION_FILE: (PARTITION_FILE, os.path.join("Eval", PARTITION_FILE)),
}
_SOURCES = {
  IMAGE_FOLDER: 'Img/img_align_celeba.zip ("Align&Cropped Images"; unzip it)',
  ATTR_FILE: "Anno/list_attr_celeba.txt",
  PARTITION_FILE: "Eval/list_eval_partition.txt",
}

EXPECTED_LAYOUT = f"""celeba_gender reads the aligned-and-cropped CelebA from the manual dir:
  manual_dir/{IMAGE_FOLDER}/000001.jpg ...  (or manual_dir/Img/{IMAGE_FOLDER}/)
  manual_dir/{ATTR_FILE}           (or manual_dir/Anno/{ATTR_FILE})
  manual_dir/{PARTITION_FILE}        (or manual_dir/Eval/{PARTITION_FILE})
Download them by hand from the CelebA website,
https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (its Google Drive folder "CelebA"
holds {_SOURCES[IMAGE_FOLDER]},
{_SOURCES[ATTR_FILE]} and {_SOURCES[PARTITION_FILE]})."""


class CelebAFormatError(errors.UserError, ValueError):
  """An annotation file that does not follow the official format."""


@dataclasses.dataclass(frozen=True)
class CelebAFiles:
  """Where the three inputs were found."""

  image_dir: str
  attr_file: str
  partition_file: str


def find_celeba_files(manual_dir: str) -> CelebAFiles:
  """Locates the images and the two annotation files (flat or official layout).

  Raises:
    FileNotFoundError: names each missing input, every place it was looked for,
      and where it comes from.
  """
  found, missing = {}, []
  for key, candidates in _CANDIDATES.items():
    paths = [os.path.join(manual_dir, c) for c in candidates]
    exists = os.path.isdir if key == IMAGE_FOLDER else os.path.isfile
    hit = next((p for p in paths if exists(p)), None)
    if hit is None:
      missing.append(
        f"  {key}: looked for {' and '.join(paths)} "
        f"(from the CelebA Google Drive folder: {_SOURCES[key]})"
      )
    found[key] = hit
  if missing:
    raise FileNotFoundError(
      "celeba_gender: missing input(s):\n" + "\n".join(missing) + "\n" + EXPECTED_LAYOUT
    )
  return CelebAFiles(
    image_dir=found[IMAGE_FOLDER],
    attr_file=found[ATTR_FILE],
    partition_file=found[PARTITION_FILE],
  )


def _data_lines(path: str) -> list[tuple[int, list[str]]]:
  with open(path, encoding="utf-8") as f:
    return [(n, line.split()) for n, line in enumerate(f, start=1) if line.strip()]


def parse_attributes(path: str, *, attribute: str = "Male") -> dict[str, int]:
  """Reads one attribute column of `list_attr_celeba.txt`.

  Returns:
    {file name: +1 or -1}.

  Raises:
    CelebAFormatError: naming the file, the line and what was wrong.
  """
  lines = _data_lines(path)
  if len(lines) < 2:
    raise CelebAFormatError(f"{path}: expected a count line and a header line")
  (_, count_tokens), (header_line, names) = lines[0], lines[1]
  if len(count_tokens) != 1 or not count_tokens[0].isdigit():
    raise CelebAFormatError(f"{path}:1: expected the image count, got {count_tokens}")
  if attribute not in names:
    raise CelebAFormatError(f"{path}:{header_line}: no {attribute!r} column in the header {names}")
  column = names.index(attribute) + 1  # Rows start with the file name.
  values = {}
  for line_no, tokens in lines[2:]:
    if len(tokens) != len(names) + 1:
      raise CelebAFormatError(
        f"{path}:{line_no}: expected a file name and {len(names)} values, got {len(tokens)} fields"
      )
    if tokens[column] not in ("1", "-1"):
      raise CelebAFormatError(
        f"{path}:{line_no}: {attribute} must be 1 or -1, got {tokens[column]!r}"
      )
    values[tokens[0]] = int(tokens[column])
  if len(values) != int(count_tokens[0]):
    logger.warning("%s: header says %s images, found %d rows", path, count_tokens[0], len(values))
  return values


def parse_partition(path: str) -> dict[str, int]:
  """Reads `list_eval_partition.txt`: {file name: 0 (train), 1 (val) or 2 (test)}."""
  partition = {}
  for line_no, tokens in _data_lines(path):
    if len(tokens) != 2 or tokens[1] not in ("0", "1", "2"):
      raise CelebAFormatError(
        f"{path}:{line_no}: expected '<file name> <0|1|2>', got {' '.join(tokens)!r}"
      )
    partition[tokens[0]] = int(tokens[1])
  return partition


def split_by_gender(
  male: dict[str, int], partition: dict[str, int], *, split: int
) -> tuple[list[str], list[str]]:
  """Sorted (male, female) file names of one partition."""
  names = sorted(n for n, p in partition.items() if p == split and n in male)
  return [n for n in names if male[n] == 1], [n for n in names if male[n] == -1]


def preprocess(image: np.ndarray) -> np.ndarray:
  """uint8 `[218, 178, 3]` -> uint8 `[128, 128, 3]` as docs/method.md §4.5."""
  if image.shape != (SOURCE_HEIGHT, SOURCE_WIDTH, 3):
    raise ValueError(
      f"expected an aligned-and-cropped CelebA image of {SOURCE_WIDTH}x"
      f"{SOURCE_HEIGHT} (W x H), got {image.shape[1]}x{image.shape[0]}"
    )
  face = image[CROP_ROWS[0] : CROP_ROWS[1]]
  # cv2.resize(INTER_LINEAR) in the authors' divide script: no antialiasing.
  face = images.resize_bilinear_half_pixel(
    face, height=INTERMEDIATE_SIZE, width=INTERMEDIATE_SIZE, antialias=False
  )
  # scipy.misc.imresize(interp="bilinear") is PIL's BILINEAR.
  return images.resize_bilinear_half_pixel(
    face, height=IMAGE_SIZE, width=IMAGE_SIZE, antialias=True
  )


def load_face(path: str) -> np.ndarray | images.ImageReadError:
  """Reads and preprocesses one image; returns the error instead of raising."""
  try:
    return preprocess(images.read_image(path))
  except images.ImageReadError as e:
    return e
  except ValueError as e:
    return images.ImageReadError(path, str(e))


class CelebaGender(tfds.core.GeneratorBasedBuilder):
  """CelebA aligned faces, A = male, B = female, 128x128."""

  name = "celeba_gender"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = EXPECTED_LAYOUT

  def _info(self) -> tfds.core.DatasetInfo:
    shape = (IMAGE_SIZE, IMAGE_SIZE, 3)
    return self.dataset_info_from_configs(
      description="CelebA male (A) <-> female (B), docs/method.md §4.5 preprocessing.",
      features=tfds.features.FeaturesDict(
        {
          "image_a": tfds.features.Image(shape=shape, dtype=np.uint8),
          "image_b": tfds.features.Image(shape=shape, dtype=np.uint8),
          "id": tfds.features.Text(),
        }
      ),
      homepage="https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",
      disable_shuffling=True,
      metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    files = find_celeba_files(resolve_manual_dir(dl_manager))
    male = parse_attributes(files.attr_file)
    partition = parse_partition(files.partition_file)
    present = set(os.listdir(files.image_dir))
    lists, missing = {}, []
    for split_name, split in (("train", TRAIN_PARTITION), ("test", TEST_PARTITION)):
      a, b = split_by_gender(male, partition, split=split)
      missing += [n for n in a + b if n not in present]
      a = [n for n in a if n in present]
      b = [n for n in b if n in present]
      if not a or not b:
        raise FileNotFoundError(
          f"celeba_gender: the {split_name} split (partition {split}) has "
          f"{len(a)} male and {len(b)} female images in {files.image_dir}; "
          f"both must be non-empty.\n{EXPECTED_LAYOUT}"
        )
      lists[split_name] = (a, b)
    if missing:
      logger.warning(
        "celeba_gender: %d listed image(s) are not in %s and are left out, e.g. %s",
        len(missing),
        files.image_dir,
        ", ".join(missing[:5]),
      )
    # Catch the in-the-wild images (or another data set) before any work.
    first = os.path.join(files.image_dir, lists["train"][0][0])
    sample = images.read_image(first)
    if sample.shape != (SOURCE_HEIGHT, SOURCE_WIDTH, 3):
      raise CelebAFormatError(
        f"celeba_gender: {first} is {sample.shape[1]}x{sample.shape[0]}; the "
        f"aligned-and-cropped images are {SOURCE_WIDTH}x{SOURCE_HEIGHT}.\n" + EXPECTED_LAYOUT
      )
    # A rebuild (--overwrite) starts from the metadata of the old build.
    self.info.metadata.clear()
    self.info.metadata.update(
      {
        "num_missing_images": len(missing),
        "num_skipped_files": 0,
        "skipped_files": [],
        "num_dropped_pairs": {"train": 0, "test": 0},
        "num_images": {
          f"{s}_{d}": len(lists[s][i])
          for s in ("train", "test")
          for i, d in enumerate(("male", "female"))
        },
        "pairing_seed": PAIRING_SEED,
      }
    )
    return {
      split_name: self._generate_examples(
        files.image_dir, *lists[split_name], split_name=split_name
      )
      for split_name in ("train", "test")
    }

  def _generate_examples(
    self,
    image_dir: str,
    names_a: Sequence[str],
    names_b: Sequence[str],
    *,
    split_name: str,
  ) -> Iterator[tuple[str, dict]]:
    shuffle = split_name == "train"
    idx_a, idx_b = pair_indices(len(names_a), len(names_b), seed=PAIRING_SEED, shuffle=shuffle)
    total = len(idx_a)
    paths_a = [os.path.join(image_dir, n) for n in names_a]
    paths_b = [os.path.join(image_dir, n) for n in names_b]

    def load(k: int):
      return load_face(paths_a[idx_a[k]]), load_face(paths_b[idx_b[k]])

    skipped = images.SkippedFiles()
    dropped = 0
    pairs = images.map_ordered(load, range(total), num_threads=images.default_num_threads())
    for k, (face_a, face_b) in enumerate(pairs):
      errors = [f for f in (face_a, face_b) if isinstance(f, images.ImageReadError)]
      if errors:
        for e in errors:
          skipped.add(e.path, e.reason)
        dropped += 1
        continue
      key = pair_id(k, total)
      yield key, {"image_a": face_a, "image_b": face_b, "id": key}
    record_skips(self.info.metadata, skipped, dropped, split_name=split_name)
