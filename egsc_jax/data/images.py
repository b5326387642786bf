"""Robust image reading for the dataset builders and the translate command.

Every reader here returns uint8 RGB arrays `[H, W, 3]`, whatever the file holds:

| PIL mode                 | conversion                                                  |
|--------------------------|-------------------------------------------------------------|
| `RGB`                    | as is                                                       |
| `L`, `1`                 | grey replicated to R, G, B (`1` becomes 0/255)              |
| `I;16*`, `I` (16-bit)    | 0..65535 scaled to 0..255 by rounding v * 255 / 65535       |
| `F` (float)              | taken on the 0..255 scale (PIL's own convention), clipped   |
| `P` (palette)            | palette looked up; a transparent index is composited        |
| `RGBA`, `LA`, `PA`, ...  | composited on white: out = (rgb * a + 255 * (255 - a)) / 255 |
| `CMYK`, `YCbCr`, ...     | PIL's conversion to RGB                                     |

Transparent pixels go on white rather than having their alpha dropped: the colour
under alpha 0 is arbitrary (often black or leftovers of an editor) and a white
page is what image viewers show. 16-bit RGB(A) PNGs are reduced to 8 bits by
Pillow itself, which keeps the high byte (at most one level below exact rounding).
JPEG EXIF orientation is applied, so images come out the way viewers show them.

A file that cannot be opened or decoded (missing, corrupt, truncated, not an image)
raises `ImageReadError(path, reason)`. `check_images` and `read_images` skip such
files with one warning per file, naming it, and report what they skipped.

Also here: `list_image_files` (a deterministic listing of a folder's images), the
numpy resizers, one per convention: `resize_bilinear_half_pixel` (pixel centres
at half-pixel offsets, as PIL and cv2; the builders' resizer),
`resize_bilinear_align_corners` (corners onto corners, as the training
pipeline's `tf.image.crop_and_resize`; the Translator's resizer) and
`resize_nearest` (label maps), and `map_ordered`, a bounded, order-preserving
thread map for decoding while the builder writes.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import io
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np
from PIL import Image, ImageOps

from egsc_jax import paths

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

_T = TypeVar("_T")
_R = TypeVar("_R")


class ImageReadError(OSError):
  """An image file that could not be read; `path` and `reason` say which and why."""

  def __init__(self, path: str | os.PathLike[str], reason: str):
    self.path = os.fspath(path)
    self.reason = reason
    super().__init__(f"cannot read image {self.path}: {reason}")

  def __reduce__(self):  # Keeps the two-argument constructor picklable.
    return (type(self), (self.path, self.reason))


# ---------------------------------------------------------------------------
# Listing.
# ---------------------------------------------------------------------------


def is_image_file(path: str | os.PathLike[str]) -> bool:
  """True for a visible file name ending in jpg/jpeg/png/bmp/webp (any case)."""
  name = os.path.basename(os.fspath(path))
  # Dot files are macOS "._x.jpg" resource forks or editor temporaries, never images.
  return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def list_image_files(folder: str | os.PathLike[str], *, recursive: bool = False) -> list[str]:
  """Paths of the image files in `folder`, sorted by their path relative to it.

  Args:
    folder: the folder to list, local or gs:// (`egsc_jax.paths`); it must exist.
    recursive: also list the sub-folders (sorted by relative path, so the order
      does not depend on the file system).

  Returns:
    Absolute-or-as-given paths (`os.path.join(folder, relative)`), deterministic.

  Raises:
    NotADirectoryError: `folder` is not an existing directory.
  """
  folder = os.fspath(folder)
  top = paths.Path(folder)
  if not top.is_dir():
    raise NotADirectoryError(f"not a folder: {folder}")
  relative = []
  if recursive:
    for root, dirs, files in top.walk():
      dirs[:] = [d for d in dirs if not d.startswith(".")]
      rel_root = os.fspath(paths.Path(root).relative_to(top))
      for name in files:
        if is_image_file(name):
          relative.append(os.path.normpath(os.path.join(rel_root, name)))
  else:
    # A dangling symlink is listed too, so that it is skipped by name with the
    # other unreadable files rather than passed over silently (local folders;
    # object stores have no links).
    relative = [
      p.name
      for p in top.iterdir()
      if is_image_file(p.name)
      and (p.is_file() or (os.path.islink(os.fspath(p)) and not os.path.exists(os.fspath(p))))
    ]
  # Sort on "/"-separated parts so the order is the same on every platform.
  relative.sort(key=lambda r: r.replace(os.sep, "/"))
  return [os.path.join(folder, r) for r in relative]


# ---------------------------------------------------------------------------
# Conversion and reading.
# ---------------------------------------------------------------------------


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
  """`[H, W, 4]` uint8 straight alpha -> `[H, W, 3]` uint8 on a white background."""
  rgb = rgba[..., :3].astype(np.uint32)
  alpha = rgba[..., 3:4].astype(np.uint32)
  # Integer round-half-up of (rgb * a + 255 * (255 - a)) / 255.
  out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
  return out.astype(np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
  return np.repeat(grey[..., None], 3, axis=-1)


def to_rgb_uint8(image: Image.Image) -> np.ndarray:
  """Converts a PIL image of any mode to uint8 RGB (see the module table).

  Args:
    image: an opened (and loaded) PIL image.

  Returns:
    uint8 `[H, W, 3]`.

  Raises:
    ValueError: a mode PIL cannot convert to RGB.
  """
  mode = image.mode
  if mode == "RGB":
    return np.asarray(image, dtype=np.uint8).copy()
  if mode == "L":
    return _grey_to_rgb(np.asarray(image, dtype=np.uint8))
  if mode == "1":
    return _grey_to_rgb(np.asarray(image.convert("L"), dtype=np.uint8))
  if mode.startswith("I"):  # I;16, I;16B, I;16L, I;16N, I (16-bit PNGs in old Pillow)
    values = np.asarray(image).astype(np.float64)
    scaled = np.rint(np.clip(values, 0, 65535) * (255.0 / 65535.0))
    return _grey_to_rgb(scaled.astype(np.uint8))
  if mode == "F":
    values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
    return _grey_to_rgb(np.rint(np.clip(values, 0, 255)).astype(np.uint8))
  if mode == "P":
    # A palette image with a transparent index has "transparency" in info.
    if "transparency" in image.info:
      return _composite_on_white(np.asarray(image.convert("RGBA"), dtype=np.uint8))
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
  if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
    return _composite_on_white(np.asarray(image.convert("RGBA"), dtype=np.uint8))
  try:
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
  except (ValueError, OSError) as e:
    raise ValueError(f"cannot convert PIL mode {mode!r} to RGB: {e}") from e


def _dangling_link(path: str) -> str | None:
  """The reason for a symlink whose target does not exist, else None."""
  if os.path.islink(path) and not os.path.exists(path):
    return f"dangling symbolic link to {os.readlink(path)}"
  return None


def as_rgb(image) -> np.ndarray:
  """An in-memory image -> uint8 RGB `[H, W, 3]`, by the rules of `to_rgb_uint8`.

  Args:
    image: a PIL image of any mode, or a uint8 array `[H, W]` (grey),
      `[H, W, 1]`, `[H, W, 2]` (grey + alpha), `[H, W, 3]` or `[H, W, 4]` (RGBA,
      composited on white).

  Raises:
    ValueError: another dtype or shape, or an empty image.
  """
  if isinstance(image, Image.Image):
    array = to_rgb_uint8(image)
  else:
    a = np.asarray(image)
    if a.dtype != np.uint8:
      raise ValueError(
        f"images must be uint8 arrays (or PIL images), got dtype {a.dtype} of shape {a.shape}."
      )
    if a.ndim == 3 and a.shape[-1] == 1:
      a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (2, 3, 4))):
      raise ValueError(f"images must be [H, W] or [H, W, 1|2|3|4], got shape {a.shape}.")
    array = to_rgb_uint8(Image.fromarray(a))
  if 0 in array.shape:
    raise ValueError(f"empty image of shape {array.shape}.")
  return array


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
  """Reads one image file as uint8 RGB `[H, W, 3]`.

  Raises:
    ImageReadError: the file is missing, unreadable, corrupt, truncated or not an
      image (or a dangling symlink); the message names the file and the reason.
  """
  path = os.fspath(path)
  if (reason := _dangling_link(path)) is not None:
    raise ImageReadError(path, reason)
  try:
    # Read whole first: one request for a gs:// file, and PIL never seeks remotely.
    with Image.open(io.BytesIO(paths.Path(path).read_bytes())) as image:
      image.load()  # Decode now: a truncated file fails here, not later.
      try:
        image = ImageOps.exif_transpose(image)
      except Exception:  # pylint: disable=broad-except
        # A malformed EXIF block is no reason to lose the pixels.
        logger.debug("ignoring unreadable EXIF orientation in %s", path)
      array = to_rgb_uint8(image)
  except Exception as e:  # pylint: disable=broad-except
    # Corrupt files make PIL raise more than OSError (SyntaxError, struct.error,
    # DecompressionBombError, ...): all of them mean "this file is unusable".
    raise ImageReadError(path, f"{type(e).__name__}: {e}") from e
  if array.ndim != 3 or array.shape[-1] != 3 or 0 in array.shape:
    raise ImageReadError(path, f"decoded to unusable shape {array.shape}")
  return array


def read_label_image(path: str | os.PathLike[str]) -> np.ndarray:
  """Reads a single-channel label map, raw values, no palette lookup.

  Palette (`P`) label PNGs store the class id as the palette index, which is what
  this returns; `L`/`I;16` values are returned as they are.

  Returns:
    `[H, W]` integer array (int64).

  Raises:
    ImageReadError: unreadable file, or not a single-channel image (the message
      says which mode it has).
  """
  path = os.fspath(path)
  try:
    with Image.open(path) as image:
      image.load()
      mode = image.mode
      if mode not in ("P", "L", "I", "I;16", "I;16B", "I;16L", "I;16N"):
        raise ImageReadError(path, f"expected a single-channel label map, got PIL mode {mode!r}")
      return np.asarray(image).astype(np.int64)
  except ImageReadError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise ImageReadError(path, f"{type(e).__name__}: {e}") from e


def read_rgb_label_image(path: str | os.PathLike[str]) -> np.ndarray:
  """Reads a colour-coded label map as uint8 `[H, W, 3]` without compositing."""
  path = os.fspath(path)
  try:
    with Image.open(path) as image:
      image.load()
      return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
  except Exception as e:  # pylint: disable=broad-except
    raise ImageReadError(path, f"{type(e).__name__}: {e}") from e


def label_image_mode(path: str | os.PathLike[str]) -> str:
  """PIL mode of an image file without decoding it (e.g. "P", "L", "RGB")."""
  path = os.fspath(path)
  try:
    with Image.open(path) as image:
      return image.mode
  except Exception as e:  # pylint: disable=broad-except
    raise ImageReadError(path, f"{type(e).__name__}: {e}") from e


def try_read_image(path: str | os.PathLike[str]) -> np.ndarray | None:
  """`read_image`, or None with a warning naming the file when it fails."""
  try:
    return read_image(path)
  except ImageReadError as e:
    logger.warning("Skipping unreadable image %s (%s)", e.path, e.reason)
    return None


@dataclasses.dataclass(frozen=True)
class ReadImagesResult:
  """What `read_images` returns.

  Attributes:
    images: the decoded images, uint8 `[H, W, 3]` each, in input order.
    paths: the path of each entry of `images`.
    skipped: the paths that could not be read, in input order.
  """

  images: list[np.ndarray]
  paths: list[str]
  skipped: list[str]

  @property
  def num_skipped(self) -> int:
    return len(self.skipped)


def _log_skip_summary(skipped: Sequence[str], total: int) -> None:
  if skipped:
    logger.warning("Skipped %d unreadable image file(s) of %d.", len(skipped), total)


def read_images(
  paths: Iterable[str | os.PathLike[str]], *, num_threads: int = 1
) -> ReadImagesResult:
  """Reads many image files, skipping the unreadable ones with a warning each.

  Holds every image in memory: for whole datasets use `check_images` and read
  while writing.

  Args:
    paths: image files, in the order wanted.
    num_threads: decoding threads (PIL releases the GIL while decoding).

  Returns:
    A `ReadImagesResult`; `num_skipped` is the count of skipped files.
  """
  paths = [os.fspath(p) for p in paths]
  images, kept, skipped = [], [], []
  for path, image in zip(paths, map_ordered(try_read_image, paths, num_threads=num_threads)):
    if image is None:
      skipped.append(path)
    else:
      images.append(image)
      kept.append(path)
  _log_skip_summary(skipped, len(paths))
  return ReadImagesResult(images=images, paths=kept, skipped=skipped)


def _decodes(path: str) -> bool:
  if (reason := _dangling_link(path)) is not None:
    logger.warning("Skipping unreadable image %s (%s)", path, reason)
    return False
  try:
    with Image.open(path) as image:
      image.load()
      to_rgb_uint8(image)
    return True
  except Exception as e:  # pylint: disable=broad-except
    logger.warning("Skipping unreadable image %s (%s: %s)", path, type(e).__name__, e)
    return False


def check_images(
  paths: Iterable[str | os.PathLike[str]],
  *,
  num_threads: int = 1,
  progress: Callable[[Iterable[bool]], Iterable[bool]] | None = None,
) -> tuple[list[str], list[str]]:
  """Decodes each file once (and drops the pixels) to find the unreadable ones.

  Args:
    paths: image files.
    num_threads: decoding threads.
    progress: optional wrapper of the result stream, e.g. a tqdm bar.

  Returns:
    `(readable, skipped)`: two lists of paths in input order. Every skipped file
    has had a warning naming it.
  """
  paths = [os.fspath(p) for p in paths]
  results: Iterable[bool] = map_ordered(_decodes, paths, num_threads=num_threads)
  if progress is not None:
    results = progress(results)
  readable, skipped = [], []
  for path, ok in zip(paths, results):
    (readable if ok else skipped).append(path)
  _log_skip_summary(skipped, len(paths))
  return readable, skipped


# ---------------------------------------------------------------------------
# Resizing (build time, numpy/PIL; the training pipeline resizes with tf.image).
# ---------------------------------------------------------------------------


def _bilinear_half_pixel(image: np.ndarray, height: int, width: int) -> np.ndarray:
  """Plain bilinear with half-pixel centres (cv2 INTER_LINEAR, tf.image.resize
  with antialias=False): each output pixel mixes the 2x2 nearest inputs."""

  def axis_weights(n_in: int, n_out: int):
    centres = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    centres = np.clip(centres, 0, n_in - 1)
    lo = np.floor(centres).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, centres - lo

  y0, y1, wy = axis_weights(image.shape[0], height)
  x0, x1, wx = axis_weights(image.shape[1], width)
  img = image.astype(np.float64)
  top = img[y0] * (1 - wy)[:, None, None] + img[y1] * wy[:, None, None]
  out = top[:, x0] * (1 - wx)[None, :, None] + top[:, x1] * wx[None, :, None]
  return out


def resize_bilinear_half_pixel(
  image: np.ndarray, *, height: int, width: int, antialias: bool = True
) -> np.ndarray:
  """Bilinear resize of uint8 `[H, W, C]` (C = 1 or 3) to `[height, width, C]`.

  Args:
    image: uint8 `[H, W, C]`.
    height, width: output size.
    antialias: True uses PIL's BILINEAR, whose kernel widens when shrinking (what
      `scipy.misc.imresize` did); False is plain 2x2 bilinear with half-pixel
      centres (what `cv2.resize(..., INTER_LINEAR)` does).

  Returns:
    uint8 `[height, width, C]`; the input itself when the size already matches.
  """
  if image.ndim != 3 or image.shape[-1] not in (1, 3) or image.dtype != np.uint8:
    raise ValueError(f"expected uint8 [H, W, 1|3], got {image.dtype} {image.shape}")
  if image.shape[:2] == (height, width):
    return image
  if not antialias:
    out = _bilinear_half_pixel(image, height, width)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
  channels = image.shape[-1]
  pil = Image.fromarray(image[..., 0] if channels == 1 else image)
  resized = np.asarray(
    pil.resize((width, height), resample=Image.Resampling.BILINEAR),
    dtype=np.uint8,
  )
  return resized.reshape(height, width, channels)


def _align_corners_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Aligned-corner sample positions: (lower index, upper index, weight of upper)."""
  if n_out == 1:
    # tf.image.crop_and_resize samples a 1-pixel crop at the box centre.
    pos = np.full([1], 0.5 * (n_in - 1), np.float64)
  else:
    pos = np.arange(n_out, dtype=np.float64) * ((n_in - 1) / (n_out - 1))
  lo = np.clip(np.floor(pos).astype(np.int64), 0, n_in - 1)
  hi = np.minimum(lo + 1, n_in - 1)
  return lo, hi, pos - lo


def resize_bilinear_align_corners(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """Bilinear resize with aligned corners, the training pipeline's resampling.

  Corner pixels map onto corner pixels (output pixel i samples input position
  i (h - 1) / (H - 1)), which is what `input_pipeline.resample` does with
  `tf.image.crop_and_resize` on the whole image. No antialiasing.

  Args:
    image: float or uint8 [h, w, C].
    size: (H, W).
  Returns:
    float32 [H, W, C]; the input values unchanged when the size already matches.
  """
  image = np.asarray(image)
  h, w = image.shape[:2]
  if (h, w) == tuple(size):
    return image.astype(np.float32)
  y0, y1, wy = _align_corners_axis(h, size[0])
  x0, x1, wx = _align_corners_axis(w, size[1])
  img = image.astype(np.float64)
  rows = img[y0] * (1 - wy)[:, None, None] + img[y1] * wy[:, None, None]
  out = rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]
  return out.astype(np.float32)


def resize_nearest(labels: np.ndarray, *, height: int, width: int) -> np.ndarray:
  """Nearest-neighbour resize of a label map `[H, W]` or `[H, W, C]`.

  Output pixel (i, j) takes input (floor((i + 0.5) * H / height),
  floor((j + 0.5) * W / width)), the input pixel whose area holds the output
  pixel's centre; no value is ever mixed.
  """
  in_h, in_w = labels.shape[:2]
  if (in_h, in_w) == (height, width):
    return labels
  rows = np.minimum(((np.arange(height) + 0.5) * in_h / height).astype(np.int64), in_h - 1)
  cols = np.minimum(((np.arange(width) + 0.5) * in_w / width).astype(np.int64), in_w - 1)
  return labels[rows][:, cols]


# ---------------------------------------------------------------------------
# Parallel decoding.
# ---------------------------------------------------------------------------


def map_ordered(
  fn: Callable[[_T], _R],
  items: Iterable[_T],
  *,
  num_threads: int = 1,
  window: int | None = None,
) -> Iterator[_R]:
  """Lazily yields `fn(item)` in input order, computing up to `window` ahead.

  Unlike `Executor.map`, it does not submit every item at once, so a slow consumer
  (the TFDS writer) keeps memory bounded. `num_threads <= 1` runs inline.
  """
  if num_threads <= 1:
    for item in items:
      yield fn(item)
    return
  window = window or 4 * num_threads
  with concurrent.futures.ThreadPoolExecutor(max_workers=num_threads) as pool:
    pending: collections.deque[concurrent.futures.Future] = collections.deque()
    for item in items:
      pending.append(pool.submit(fn, item))
      if len(pending) >= window:
        yield pending.popleft().result()
    while pending:
      yield pending.popleft().result()


def default_num_threads() -> int:
  """Decoding threads for builders: the CPUs this process may use, at most 8."""
  try:
    cpus = len(os.sched_getaffinity(0))
  except AttributeError:  # Not on Linux.
    cpus = os.cpu_count() or 1
  return max(1, min(8, cpus))


class SkippedFiles:
  """The unique unreadable files met while building, in the order met.

  Warns once per file (a file of the shorter, repeated domain can come up in many
  pairs) and counts each file once.
  """

  def __init__(self) -> None:
    self._paths: list[str] = []
    self._seen: set[str] = set()

  def add(self, path: str | os.PathLike[str], reason: str) -> None:
    path = os.fspath(path)
    if path not in self._seen:
      self._seen.add(path)
      self._paths.append(path)
      logger.warning("Skipping unreadable image %s (%s)", path, reason)

  @property
  def paths(self) -> list[str]:
    return list(self._paths)

  def __len__(self) -> int:
    return len(self._paths)
