"""TFDS builder `image_folder`: a user's own two domains.

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

Pairing as the authors stored their TFRecords (`pairing.py`): one example is one
(A, B) pair, the shorter domain repeated; random train pairs, test pairs in sorted
file order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

from egsc_jax.data import images
from egsc_jax.data.manual_dir import progress_bar, resolve_manual_dir
from egsc_jax.data.pairing import PAIRING_SEED, pair_id, pair_indices

logger = logging.getLogger(__name__)

DOMAIN_FOLDERS = ("trainA", "trainB", "testA", "testB")


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
