"""What the manual_dir builders (image_folder, celeba_gender, gta5_bdd) share
besides pairing: the manual dir itself, TFDS progress bars, skipped files in
the dataset's metadata."""

from __future__ import annotations

import logging
import os

import tensorflow_datasets as tfds

from egsc_jax.data import images

logger = logging.getLogger(__name__)


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
      split_name,
      dropped,
      len(skipped),
      ", ".join(skipped.paths),
    )
