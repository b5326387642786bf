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

Build with `python -m egsc_jax.data.build image_folder --manual_dir DIR
[--max_side N]` (training builds it on first use, too).

Size (version 1.1.0 on). Each image is stored shrunk so that its longer side is at
most `max_side` pixels, aspect kept (640x480 at max side 256: 256x192), bilinear
with PIL's antialiasing kernel; an image already that small is stored as it is,
never enlarged. `max_side=None` keeps every image at its own size (1.0.0's
behaviour). Training builds with `max_side = max(config.data.image_size)`, the
build command with `--max_side` (default `DEFAULT_MAX_SIDE`, the longer side of
configs/image_folder.py's image size). Stored images are uint8 `[H, W, 3]` PNGs
with H and W free; the input pipeline resizes them to `config.data.image_size`.
Why: a 12-megapixel JPEG takes far longer to decode than one training step at
256x256 takes to compute (docs/benchmarks.md, "Input pipeline").

What it was built from. The metadata records the manual dir, the max side, and
per folder the number of image files and a fingerprint of their names, sizes and
modification times (`source_record`). `reuse_problem` compares a build with a
manual dir and a size asked for later; `egsc_jax.data.build` refuses to reuse a
build made from other files (TFDS itself keys builds by name and version only).

Every mode is converted to 8-bit RGB as `images.py` documents (grey, palette, alpha on
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

import hashlib
import logging
import os
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

from egsc_jax import paths
from egsc_jax.data import images
from egsc_jax.data.manual_dir import progress_bar, resolve_manual_dir
from egsc_jax.data.pairing import PAIRING_SEED, pair_id, pair_indices

logger = logging.getLogger(__name__)

DOMAIN_FOLDERS = ("trainA", "trainB", "testA", "testB")
# The longer side of configs/image_folder.py's default image_size (256, 256);
# tests/test_real_builders.py checks that the two agree.
DEFAULT_MAX_SIDE = 256


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
      problems.append(f"  {path}: no image files ({', '.join(images.IMAGE_EXTENSIONS)})")
    else:
      _warn_unsupported_files(path)
  if problems:
    raise FileNotFoundError(
      "image_folder needs four folders of images in the manual dir "
      f"{manual_dir}:\n"
      + "\n".join(f"  {manual_dir}/{f}/" for f in DOMAIN_FOLDERS)
      + "\nProblems:\n"
      + "\n".join(problems)
    )
  return files


def _warn_unsupported_files(folder: str) -> None:
  with os.scandir(folder) as entries:
    others = sorted(
      e.name
      for e in entries
      if e.is_file() and not e.name.startswith(".") and not images.is_image_file(e.name)
    )
  if others:
    logger.warning(
      "Ignoring %d file(s) in %s without an image extension (%s), e.g. %s",
      len(others),
      folder,
      ", ".join(images.IMAGE_EXTENSIONS),
      ", ".join(others[:5]),
    )


# ---------------------------------------------------------------------------
# What a build was made from.
# ---------------------------------------------------------------------------


def source_record(manual_dir: str, listed: dict[str, list[str]]) -> dict[str, dict]:
  """Per folder: the number of image files and a fingerprint of the listing.

  The fingerprint is the first 16 hex digits of the SHA-256 of one line per
  file, `name<TAB>size in bytes<TAB>modification time in whole seconds`, in
  sorted order. Adding, removing, renaming, resizing or touching a file changes
  it; copying the folder with its times kept (`cp -p`, `rsync -a`, `mv`) does not.
  A gs:// folder is one request per file.

  Args:
    manual_dir: the folder holding trainA/ trainB/ testA/ testB/.
    listed: `list_domain_files(manual_dir)`.

  Returns:
    {folder: {"files": int, "fingerprint": str}} for each of DOMAIN_FOLDERS.
  """
  record = {}
  for folder in DOMAIN_FOLDERS:
    digest = hashlib.sha256()
    for path in listed[folder]:
      name = os.path.relpath(path, os.path.join(manual_dir, folder))
      digest.update(f"{name}\t{_size_and_mtime(path)}\n".encode())
    record[folder] = {"files": len(listed[folder]), "fingerprint": digest.hexdigest()[:16]}
  return record


def _size_and_mtime(path: str) -> str:
  """`size<TAB>mtime` of a file; `-1<TAB>0` for a dangling symbolic link (listed,
  so that the build skips it by name)."""
  try:
    stat = paths.Path(path).stat()
  except OSError:
    return "-1\t0"
  return f"{stat.length}\t{int(stat.mtime)}"


def reuse_problem(
  metadata,
  *,
  manual_dir: str | None = None,
  max_side: int | None = None,
  min_side: int | None = None,
) -> str | None:
  """Why a build with `metadata` cannot stand for what is asked now, or None.

  Args:
    metadata: the build's `info.metadata` (what `_split_generators` recorded).
    manual_dir: the folder asked for now (None: no check of the source).
    max_side: the max side asked for exactly (the build command's --max_side;
      0: full size; None: not checked).
    min_side: the smallest max side that serves the request (training's
      `max(config.data.image_size)`: a larger stored size is resized down by the
      input pipeline, a smaller one would be enlarged).

  Returns:
    One sentence saying what differs, or None when the build may be reused.
  """
  stored_side = metadata.get("max_side")
  side_text = "full size" if stored_side is None else f"max side {stored_side}"
  if manual_dir is not None:
    built = metadata.get("source")
    now = source_record(manual_dir, list_domain_files(manual_dir))
    if built != now:
      changed = [f for f in DOMAIN_FOLDERS if (built or {}).get(f) != now[f]]
      counts = ", ".join(
        f"{f} {(built or {}).get(f, {}).get('files', '?')} -> {now[f]['files']} files"
        for f in changed
      )
      detail = f"{counts}; names, sizes or modification times differ"
      built_from = metadata.get("manual_dir")
      if built_from and paths.absolute(built_from) == paths.absolute(manual_dir):
        return f"the files in {manual_dir} changed since it was built ({detail})"
      return (
        f"it was built from {built_from or 'other files'}, and {manual_dir} "
        f"holds other files ({detail})"
      )
  if max_side is not None and (max_side or None) != stored_side:
    asked = f"max side {max_side}" if max_side else "full size"
    return f"it stores images at {side_text}, and {asked} was asked for"
  if min_side is not None and stored_side is not None and stored_side < min_side:
    return (
      f"it stores images at {side_text}, smaller than the image size asked "
      f"for (longer side {min_side}), which would enlarge them"
    )
  return None


def shrink_to_max_side(image: np.ndarray, max_side: int | None) -> np.ndarray:
  """uint8 `[H, W, 3]` shrunk so that max(H', W') = max_side, aspect kept.

  H' = round(H * s), W' = round(W * s) with s = max_side / max(H, W) (each at
  least 1); PIL's bilinear with its antialiasing kernel
  (`images.resize_bilinear_half_pixel`). An image with max(H, W) <= max_side,
  or max_side None, is returned as it is: never enlarged.
  """
  height, width = image.shape[:2]
  if max_side is None or max(height, width) <= max_side:
    return image
  scale = max_side / max(height, width)
  new_height = max(1, min(max_side, round(height * scale)))
  new_width = max(1, min(max_side, round(width * scale)))
  return images.resize_bilinear_half_pixel(image, height=new_height, width=new_width)


class ImageFolder(tfds.core.GeneratorBasedBuilder):
  """Two unpaired image domains from trainA/ trainB/ testA/ testB/ folders."""

  name = "image_folder"
  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
    "1.0.0": "Initial release.",
    "1.1.0": "Images stored shrunk to a max side chosen at build time (aspect "
    "kept, never enlarged); the metadata records max_side and a "
    "fingerprint of the source folders (source).",
  }
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put your two domains in four folders of images (jpg, jpeg, png, bmp or webp, any
  size) inside the manual dir:
    manual_dir/trainA/  manual_dir/trainB/  manual_dir/testA/  manual_dir/testB/
  """

  def __init__(self, *, max_side: int | None = DEFAULT_MAX_SIDE, **kwargs):
    """`max_side`: the longest side stored (None: full size); only building reads it."""
    if max_side is not None and (
      isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 1
    ):
      raise ValueError(f"image_folder: max_side must be an integer >= 1 or None, got {max_side!r}")
    self.max_side = max_side
    super().__init__(**kwargs)
    self._original_state["max_side"] = max_side  # For pickling.

  def reuse_problem(self, **request) -> str | None:
    """`reuse_problem` of this build's metadata (see the module function)."""
    return reuse_problem(self.info.metadata, **request)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
      description="A user's two image domains, one example per (A, B) pair.",
      features=tfds.features.FeaturesDict(
        {
          "image_a": tfds.features.Image(shape=(None, None, 3), dtype=np.uint8),
          "image_b": tfds.features.Image(shape=(None, None, 3), dtype=np.uint8),
          "id": tfds.features.Text(),
        }
      ),
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
        len(skipped),
        ", ".join(skipped),
      )
    # A rebuild (--overwrite) starts from the metadata of the old build.
    self.info.metadata.clear()
    self.info.metadata.update(
      {
        "manual_dir": manual_dir,
        "source": source_record(manual_dir, listed),
        "max_side": self.max_side,
        "num_images": {f: len(readable[f]) for f in DOMAIN_FOLDERS},
        "num_skipped_files": len(skipped),
        "skipped_files": [os.path.relpath(p, manual_dir) for p in skipped],
        "pairing_seed": PAIRING_SEED,
      }
    )
    return {
      "train": self._generate_examples(readable["trainA"], readable["trainB"], shuffle=True),
      "test": self._generate_examples(readable["testA"], readable["testB"], shuffle=False),
    }

  def _generate_examples(
    self, paths_a: Sequence[str], paths_b: Sequence[str], *, shuffle: bool
  ) -> Iterator[tuple[str, dict]]:
    idx_a, idx_b = pair_indices(len(paths_a), len(paths_b), seed=PAIRING_SEED, shuffle=shuffle)
    total = len(idx_a)

    def load(k: int):
      return (
        shrink_to_max_side(images.read_image(paths_a[idx_a[k]]), self.max_side),
        shrink_to_max_side(images.read_image(paths_b[idx_b[k]]), self.max_side),
      )

    pairs = images.map_ordered(load, range(total), num_threads=images.default_num_threads())
    for k, (image_a, image_b) in enumerate(pairs):
      key = pair_id(k, total)
      yield key, {"image_a": image_a, "image_b": image_b, "id": key}
