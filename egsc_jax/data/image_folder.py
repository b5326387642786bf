"""TFDS builder `image_folder`: a user's own two domains, and the pairing helpers.

Layout of `manual_dir` (image files of any size; jpg/jpeg/png/bmp/webp, any case;
sub-folders and other files are ignored):

```
manual_dir/
  trainA/  training images of domain A
  trainB/  training images of domain B
  testA/   test images of domain A
  testB/   test images of domain B
```

Build with `python -m egsc_jax.data.build image_folder --manual_dir DIR` (use a
separate `--data_dir` per pair of domains: TFDS caches by name and version).

Images are stored at their own size (`image_a`, `image_b`: uint8 `[H, W, 3]` with H
and W free); the input pipeline resizes them to `config.data.image_size`. Every
mode is converted to 8-bit RGB as `images.py` documents (grey, palette, alpha on
white, 16-bit scaled). Before anything is written, all four folders are checked and
every file is decoded once: a missing folder or an empty domain stops the build with
one error naming the expected folders; an unreadable file is skipped with a warning
naming it, and the skipped files are counted in the log and in the dataset's
metadata (`num_skipped_files`, `skipped_files`).

Pairing, as the authors stored their TFRecords: one example is one (A, B) pair and
the shorter domain is repeated to the longer one's length. Train pairs are random
(seeded; each image of the shorter domain appears floor or ceil of the ratio
times); test pairs go in sorted file order, the shorter domain cycled.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

from egsc_jax.data import images

logger = logging.getLogger(__name__)

# The authors seeded their dataset scripts with np.random.seed(0).
PAIRING_SEED = 0

DOMAIN_FOLDERS = ("trainA", "trainB", "testA", "testB")


# ---------------------------------------------------------------------------
# Helpers shared by the builders (celeba_gender and gta5_bdd import these).
# ---------------------------------------------------------------------------


def _stretch(
    num: int, length: int, rng: np.random.Generator | None
) -> np.ndarray:
  """Indices into a list of `num` items, repeated or cut to `length` entries.

  With `rng`, the whole list repeats floor(length / num) times and a seeded sample
  without replacement fills the rest; without, the list is cycled in order.
  """
  if num <= 0:
    raise ValueError(f"cannot pair an empty domain (num={num})")
  if num >= length or rng is None:
    return np.arange(length, dtype=np.int64) % num
  repeats, rest = divmod(length, num)
  extra = np.sort(rng.choice(num, size=rest, replace=False))
  return np.concatenate([np.tile(np.arange(num, dtype=np.int64), repeats), extra])


def pair_indices(
    num_a: int,
    num_b: int,
    *,
    seed: int,
    shuffle: bool,
    length: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
  """The (A, B) index pairs of a split, as two int64 arrays `[length]`.

  Args:
    num_a, num_b: the sizes of the two domains' (sorted) file lists.
    seed: seeds the repetition and the shuffles (only used when `shuffle`).
    shuffle: True for training: each domain's index list is repeated to `length`
      (see `_stretch`) and permuted independently, so pairs are random. False for
      test: pair k is (k mod num_a, k mod num_b), i.e. sorted order.
    length: the number of pairs; default max(num_a, num_b), the shorter domain
      repeated. A domain longer than `length` is cut to its first `length` items.

  Returns:
    `(idx_a, idx_b)`, int64 `[length]` each.
  """
  length = max(num_a, num_b) if length is None else length
  if not shuffle:
    return _stretch(num_a, length, None), _stretch(num_b, length, None)
  rng = np.random.default_rng(seed)
  idx_a = rng.permutation(_stretch(num_a, length, rng))
  idx_b = rng.permutation(_stretch(num_b, length, rng))
  return idx_a, idx_b


def pair_id(index: int, total: int) -> str:
  """Zero-padded example id, e.g. `pair_id(42, 500) == "00042"` (at least 5 digits)."""
  return f"{index:0{max(5, len(str(max(total - 1, 0))))}d}"


def resolve_manual_dir(dl_manager: tfds.download.DownloadManager) -> str:
  """`dl_manager.manual_dir` as a str; a missing/empty one is a FileNotFoundError.

  TFDS raises AssertionError there; the message (kept) already carries the
  builder's MANUAL_DOWNLOAD_INSTRUCTIONS, which list the expected files.
  """
  try:
    return os.fspath(dl_manager.manual_dir)
  except AssertionError as e:
    raise FileNotFoundError(str(e)) from None


def progress_bar(desc: str, total: int):
  """A function wrapping an iterable in TFDS's tqdm bar (honours
  `tfds.disable_progress_bar()`)."""
  from tensorflow_datasets.core.utils import tqdm_utils  # pylint: disable=g-import-not-at-top

  def wrap(iterable):
    return tqdm_utils.tqdm(iterable, desc=desc, total=total, unit=" files", leave=False)

  return wrap


def record_skips(
    metadata: dict,
    skipped: images.SkippedFiles,
    dropped: int,
    *,
    split_name: str,
) -> None:
  """Adds one split's unreadable files and dropped pairs to a builder's metadata.

  For builders that skip while writing (too many files to decode twice): a pair
  with an unreadable image is dropped, and `num_dropped_pairs[split_name]` counts
  those; `skipped_files`/`num_skipped_files` hold the unique files over all splits.
  """
  names = sorted(set(metadata.get("skipped_files", [])) | set(skipped.paths))
  metadata["skipped_files"] = names
  metadata["num_skipped_files"] = len(names)
  metadata.setdefault("num_dropped_pairs", {})[split_name] = dropped
  if dropped:
    logger.warning(
        "%s split: dropped %d pair(s) with %d unreadable file(s): %s",
        split_name, dropped, len(skipped), ", ".join(skipped.paths),
    )


# ---------------------------------------------------------------------------
# The image_folder layout.
# ---------------------------------------------------------------------------


def list_domain_files(manual_dir: str) -> dict[str, list[str]]:
  """The sorted image files of each of trainA, trainB, testA, testB.

  Raises:
    FileNotFoundError: one error listing every missing folder and every folder
      without an image file, and the layout expected.
  """
  problems, files = [], {}
  for folder in DOMAIN_FOLDERS:
    path = os.path.join(manual_dir, folder)
    if not os.path.isdir(path):
      problems.append(f"  {path}: missing")
      continue
    files[folder] = images.list_image_files(path)
    if not files[folder]:
      problems.append(
          f"  {path}: no image files ({', '.join(images.IMAGE_EXTENSIONS)})"
      )
    else:
      _warn_unsupported_files(path)
  if problems:
    raise FileNotFoundError(
        "image_folder needs four folders of images in the manual dir "
        f"{manual_dir}:\n" + "\n".join(f"  {manual_dir}/{f}/" for f in DOMAIN_FOLDERS)
        + "\nProblems:\n" + "\n".join(problems)
    )
  return files


def _warn_unsupported_files(folder: str) -> None:
  with os.scandir(folder) as entries:
    others = sorted(
        e.name for e in entries
        if e.is_file() and not e.name.startswith(".") and not images.is_image_file(e.name)
    )
  if others:
    logger.warning(
        "Ignoring %d file(s) in %s without an image extension (%s), e.g. %s",
        len(others), folder, ", ".join(images.IMAGE_EXTENSIONS), ", ".join(others[:5]),
    )


class ImageFolder(tfds.core.GeneratorBasedBuilder):
  """Two unpaired image domains from trainA/ trainB/ testA/ testB/ folders."""

  name = "image_folder"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put your two domains in four folders of images (jpg, jpeg, png, bmp or webp, any
  size) inside the manual dir:
    manual_dir/trainA/  manual_dir/trainB/  manual_dir/testA/  manual_dir/testB/
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description="A user's two image domains, one example per (A, B) pair.",
        features=tfds.features.FeaturesDict({
            "image_a": tfds.features.Image(shape=(None, None, 3), dtype=np.uint8),
            "image_b": tfds.features.Image(shape=(None, None, 3), dtype=np.uint8),
            "id": tfds.features.Text(),
        }),
        # The stored order is the pairing's order: shuffled train, sorted test.
        disable_shuffling=True,
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = resolve_manual_dir(dl_manager)
    listed = list_domain_files(manual_dir)
    num_threads = images.default_num_threads()
    readable, skipped = {}, []
    for folder in DOMAIN_FOLDERS:
      readable[folder], bad = images.check_images(
          listed[folder],
          num_threads=num_threads,
          progress=progress_bar(f"Checking {folder}", len(listed[folder])),
      )
      skipped.extend(bad)
    empty = [f for f in DOMAIN_FOLDERS if not readable[f]]
    if empty:
      raise FileNotFoundError(
          "image_folder: no readable image left in "
          + ", ".join(os.path.join(manual_dir, f) for f in empty)
          + f" after skipping {len(skipped)} unreadable file(s)."
      )
    if skipped:
      logger.warning(
          "image_folder: skipped %d unreadable file(s): %s",
          len(skipped), ", ".join(skipped),
      )
    # A rebuild (--overwrite) starts from the metadata of the old build.
    self.info.metadata.clear()
    self.info.metadata.update({
        "manual_dir": manual_dir,
        "num_images": {f: len(readable[f]) for f in DOMAIN_FOLDERS},
        "num_skipped_files": len(skipped),
        "skipped_files": [os.path.relpath(p, manual_dir) for p in skipped],
        "pairing_seed": PAIRING_SEED,
    })
    return {
        "train": self._generate_examples(
            readable["trainA"], readable["trainB"], shuffle=True
        ),
        "test": self._generate_examples(
            readable["testA"], readable["testB"], shuffle=False
        ),
    }

  def _generate_examples(
      self, paths_a: Sequence[str], paths_b: Sequence[str], *, shuffle: bool
  ) -> Iterator[tuple[str, dict]]:
    idx_a, idx_b = pair_indices(
        len(paths_a), len(paths_b), seed=PAIRING_SEED, shuffle=shuffle
    )
    total = len(idx_a)

    def load(k: int):
      return (
          images.read_image(paths_a[idx_a[k]]),
          images.read_image(paths_b[idx_b[k]]),
      )

    pairs = images.map_ordered(
        load, range(total), num_threads=images.default_num_threads()
    )
    for k, (image_a, image_b) in enumerate(pairs):
      key = pair_id(k, total)
      yield key, {"image_a": image_a, "image_b": image_b, "id": key}
