"""tf.data input pipeline: read encoded pairs, pair with exemplars, augment, batch.

`train_batches` yields an infinite, host-local stream of
`{'a': f32[b, H, W, 3], 'b': f32[b, H, W, 3]}` in [-1, 1], `b = batch_size //
process_count`; slot i of 'b' is the exemplar of slot i of 'a' and vice versa.
`eval_batches` yields a split in its stored order, without augmentation, with the
ground truth and ids.

Determinism and resuming. The stream is a pure function of (config.seed,
process_index, process_count, start_step):

- Every epoch e of the process's part is built from stateless random numbers keyed by
  (seed, process, e): each stream is rotated by a random offset and passed through a
  seeded shuffle buffer (`config.data.shuffle_buffer`). With 'random' pairing A and
  B are rotated by different offsets, which re-pairs them globally every epoch even
  with a small buffer; with a buffer >= the examples per process each stream is a
  uniform permutation per epoch.
- The augmentation of the example at stream position g is keyed by
  (seed, process, g, domain), so it does not depend on what was read before.
- `start_step=k` starts the epoch stream at epoch `k * b // n` and skips
  `k * b % n` records while they are still encoded bytes: nothing skipped is decoded.

Exemplar pairing (`config.data.exemplar_pairing`): 'random' (default) shuffles the A
and B streams independently, so the pairing is re-drawn every epoch; 'fixed' keeps the
pairs as stored (the authors' TFRecord pairing), shuffling whole pairs; 'balanced'
(MNIST-Single only) draws each B image by first drawing its colour scheme uniformly,
then an image of that scheme, so every scheme is an exemplar equally often (the
stored B split is 58% red-on-green: digits 5-9 are never any other colour). The A
stream is as in 'random'; B images are drawn with replacement.

Augmentation (docs/method.md §3.2; train only, `config.data.augment`), independently per image
and domain: horizontal flip with p = 0.5 (out[x] = in[W-1-x], the correct flip, not
the authors' 1-pixel-shifted one); with p = 0.5 a zoom crop of fraction
s ~ U(0.8, 1) placed uniformly; the crop and the resize to `config.data.image_size`
are one bilinear resampling with align-corners coordinates
(`tf.image.crop_and_resize`); pixels map to (x - 127.5) / 127.5.

Multi-process: process p reads the p-th of `process_count` equal parts of the
training split (`tfds.even_splits`, remainder dropped), so processes see disjoint data.

TensorFlow is imported lazily, sees no GPU or TPU, and runs tf.data on a private
pool of `config.data.num_threads` threads (default min(4, CPU count)) so that JAX
keeps the rest of the CPU.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from typing import Any, Iterator

import numpy as np

from egsc_jax import errors
from egsc_jax.data import build, tf_devices

IMAGE_KEYS = ("image_a", "image_b")
GT_KEYS = ("gt_a2b", "gt_b2a")
# Per-pair labels eval_batches passes through: digits (MNIST-Single), the
# grade of the B image (photo_grades).
LABEL_KEYS = ("digit_a", "digit_b", "grade_b")
SEGMENTATION_KEYS = ("label_a", "label_b")
PAIRINGS = ("random", "fixed", "balanced")
# Datasets whose B images are two flat colours, which `colour_schemes` groups.
BALANCED_DATASETS = ("mnist_single",)
ZOOM_MIN_SCALE = 0.8
FLIP_PROB = 0.5
ZOOM_PROB = 0.5

# Tags that keep the stateless random streams of different purposes apart.
_TAG_EPOCH = 1
_TAG_AUGMENT = 2
_MAX_OP_SEED = 2**31 - 1

_tf_configured = False


# ---------------------------------------------------------------------------
# TensorFlow and TFDS set-up
# ---------------------------------------------------------------------------


def _num_threads(config) -> int:
  num = config.data.get("num_threads")
  return int(num) if num else min(4, os.cpu_count() or 1)


def _tensorflow(num_threads: int):
  """Imports TensorFlow; once per process hides accelerators and caps its threads."""
  global _tf_configured
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  if _tf_configured:
    return tf
  _tf_configured = True
  tf_devices.hide_accelerators_from_tensorflow()
  try:
    tf.config.threading.set_inter_op_parallelism_threads(num_threads)
    tf.config.threading.set_intra_op_parallelism_threads(num_threads)
  except RuntimeError as e:
    # tf.data still runs on its private pool (see _dataset_options).
    logging.info("Could not cap TensorFlow's threads: %s", e)
  return tf


def _dataset_options(tf, num_threads: int):
  options = tf.data.Options()
  options.deterministic = True
  options.threading.private_threadpool_size = num_threads
  options.threading.max_intra_op_parallelism = 1
  return options


def _read_config(tfds):
  # One file at a time keeps the stored order, which resuming and eval rely on;
  # caching is left to the shuffle buffer.
  return tfds.ReadConfig(interleave_cycle_length=1, try_autocache=False, add_tfds_id=False)


def _image_size(config, builder) -> tuple[int, int]:
  size = config.data.get("image_size")
  if size is None:
    height, width, _ = builder.info.features["image_a"].shape
    if height is None or width is None:
      raise errors.ConfigError(
        f"Dataset {config.dataset!r} stores images of varying size; set "
        "config.data.image_size = (H, W)."
      )
    return int(height), int(width)
  if len(size) != 2 or min(size) < 1:
    raise errors.ConfigError(f"config.data.image_size must be (H, W), got {size!r}.")
  return int(size[0]), int(size[1])


def _local_batch_size(batch_size: int, process_count: int) -> int:
  if batch_size < process_count or batch_size % process_count:
    raise ValueError(
      f"The global batch size {batch_size} must be a positive multiple of the "
      f"process count {process_count}."
    )
  return batch_size // process_count


def _check_process(process_index: int, process_count: int) -> None:
  if process_count < 1 or not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} is not in [0, process_count={process_count}).")


# ---------------------------------------------------------------------------
# Image ops (inside tf.data functions)
# ---------------------------------------------------------------------------


def _fold(tf, key, *data):
  for d in data:
    key = tf.random.experimental.stateless_fold_in(key, tf.cast(d, tf.int64))
  return key


def sample_box(tf, key, *, augment: bool):
  """Crop box and flip decision of one image.

  Args:
    key: int64 [2] stateless seed.
    augment: draw a random flip and zoom crop, else the whole image unflipped.

  Returns:
    (box f32 [4] = (y1, x1, y2, x2) normalised, flip bool []).
  """
  if not augment:
    return tf.constant([0.0, 0.0, 1.0, 1.0]), tf.constant(False)
  u = tf.random.stateless_uniform([5], seed=key)
  flip = u[0] < FLIP_PROB
  scale = tf.where(u[1] < ZOOM_PROB, ZOOM_MIN_SCALE + (1.0 - ZOOM_MIN_SCALE) * u[2], 1.0)
  top, left = u[3] * (1.0 - scale), u[4] * (1.0 - scale)
  return tf.stack([top, left, top + scale, left + scale]), flip


def resample(tf, image, *, box, flip, size: tuple[int, int]):
  """Crops `box`, resizes to `size` bilinearly (align corners), flips, scales.

  The whole image at its own size is passed through exactly.

  Args:
    image: uint8 [h, w, 3].
    box: f32 [4] normalised (y1, x1, y2, x2); (0, 0, 1, 1) is the whole image.
    flip: bool [] mirror horizontally, out[x] = in[W-1-x].
    size: (H, W) output size.

  Returns:
    f32 [H, W, 3] in [-1, 1].
  """
  pixels = tf.cast(image, tf.float32)
  unchanged = tf.logical_and(
    tf.reduce_all(tf.equal(tf.shape(pixels)[:2], tf.constant(size))),
    tf.reduce_all(tf.equal(box, tf.constant([0.0, 0.0, 1.0, 1.0]))),
  )
  out = tf.cond(unchanged, lambda: pixels, lambda: _crop_and_resize(tf, pixels, box=box, size=size))
  out = tf.ensure_shape(out, [size[0], size[1], None])
  out = tf.cond(flip, lambda: tf.reverse(out, axis=[1]), lambda: out)
  return (out - 127.5) / 127.5


def _crop_and_resize(tf, pixels, *, box, size):
  """Bilinear align-corners sampling of `box` of f32 [h, w, C] to [H, W, C].

  `tf.image.crop_and_resize` fills samples outside [0, h-1] with a constant, and a
  box edge at 1.0 can land a rounding error beyond the last pixel. An edge-replicating
  1-pixel border absorbs that; the box is mapped onto the padded grid.
  """
  shape = tf.cast(tf.shape(pixels)[:2], tf.float32)
  padded = tf.pad(pixels, [[1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
  scale = tf.tile(shape - 1.0, [2])
  extent = tf.tile(shape + 1.0, [2])
  padded_box = (box * scale + 1.0) / extent
  return tf.image.crop_and_resize(
    padded[None], padded_box[None], tf.zeros([1], tf.int32), size, method="bilinear"
  )[0]


def _seed_key(tf, seed: int):
  return tf.constant([int(seed), 0], tf.int64)


# ---------------------------------------------------------------------------
# Training stream
# ---------------------------------------------------------------------------


def _random_int(tf, key, *, maxval: int):
  """A stateless random int64 in [0, maxval)."""
  return tf.random.stateless_uniform([], seed=key, minval=0, maxval=maxval, dtype=tf.int64)


def _rotate_and_shuffle(tf, ds, *, num: int, offset, key, buffer: int):
  """One epoch of `ds` (num elements): rotated left by `offset`, then shuffled."""
  ds = ds.skip(offset).concatenate(ds.take(offset))
  if buffer > 1:
    op_seed = _random_int(tf, key, maxval=_MAX_OP_SEED)
    ds = ds.shuffle(min(buffer, num), seed=op_seed, reshuffle_each_iteration=False)
  return ds


def colour_schemes(images: np.ndarray) -> np.ndarray:
  """Group ids of two-colour images by (background, digit) colour pair.

  The background is the top-left pixel (MNIST digits never reach the corners),
  the digit colour the pixel farthest from it. uint8 [N, H, W, 3] -> int64 [N]
  in [0, number of distinct pairs), in the sorted order of the pairs.
  """
  images = np.asarray(images, np.int64)
  bg = images[:, 0, 0]  # [N, 3]
  dist = np.abs(images - bg[:, None, None]).sum(-1).reshape(len(images), -1)
  fg = images.reshape(len(images), -1, 3)[np.arange(len(images)), dist.argmax(1)]
  codes = (bg * 256 + fg) @ np.array([256**4, 256**2, 1])  # one integer per pair
  return np.unique(codes, return_inverse=True)[1].reshape(-1).astype(np.int64)


def pairing_problem(pairing: str, dataset: str) -> str | None:
  """Why `pairing` cannot be used with `dataset`, or None when it can.

  The one check of config.data.exemplar_pairing: config_lib.validate reports
  it, and `train_batches` raises it for callers that build a config by hand.
  """
  if pairing not in PAIRINGS:
    return f"config.data.exemplar_pairing must be one of {PAIRINGS}, got {pairing!r}"
  if pairing == "balanced" and dataset not in BALANCED_DATASETS:
    return (
      f"config.data.exemplar_pairing = 'balanced' needs B images of two flat "
      f"colours: dataset one of {BALANCED_DATASETS}, got {dataset!r}"
    )
  return None


def _balanced_indices(tf, groups, *, num: int, key):
  """`num` indices into the B split: a uniform group, then a uniform member of it.

  groups: int64 [N] group id of each B image (`colour_schemes`). Returns int64 [num].
  """
  order = np.argsort(groups, kind="stable")
  sizes = np.bincount(groups)
  starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
  group = tf.random.stateless_uniform(
    [num], seed=_fold(tf, key, 0), minval=0, maxval=len(sizes), dtype=tf.int64
  )
  u = tf.random.stateless_uniform([num], seed=_fold(tf, key, 1), dtype=tf.float64)
  size = tf.gather(tf.constant(sizes, tf.int64), group)
  member = tf.minimum(tf.cast(u * tf.cast(size, tf.float64), tf.int64), size - 1)
  return tf.gather(
    tf.constant(order, tf.int64), tf.gather(tf.constant(starts, tf.int64), group) + member
  )


def _epoch_stream(
  tf, encoded, *, num: int, pairing: str, buffer: int, key, b_bytes=None, b_groups=None
):
  """Returns epoch -> dataset of (stream index, encoded A, encoded B).

  b_bytes, b_groups: the encoded B images [N] and their `colour_schemes`, for
  the 'balanced' pairing.
  """

  def epoch(e):
    epoch_key = _fold(tf, key, _TAG_EPOCH, e)
    offset_a = _random_int(tf, _fold(tf, epoch_key, 0), maxval=num)
    if pairing == "balanced":
      stream_a = _rotate_and_shuffle(
        tf,
        encoded.map(lambda ex: ex["image_a"]),
        num=num,
        offset=offset_a,
        key=_fold(tf, epoch_key, 2),
        buffer=buffer,
      )
      picks = _balanced_indices(tf, b_groups, num=num, key=_fold(tf, epoch_key, 4))
      stream_b = tf.data.Dataset.from_tensor_slices(tf.gather(b_bytes, picks))
      pairs = tf.data.Dataset.zip(stream_a, stream_b)
    elif pairing == "random":
      # B is rotated by a different offset than A, so that even without a shuffle
      # buffer no stored pair survives; the buffers then shuffle each stream alone.
      shift = 1 + _random_int(tf, _fold(tf, epoch_key, 1), maxval=max(num - 1, 1))
      offset_b = (offset_a + shift) % num
      stream_a = _rotate_and_shuffle(
        tf,
        encoded.map(lambda ex: ex["image_a"]),
        num=num,
        offset=offset_a,
        key=_fold(tf, epoch_key, 2),
        buffer=buffer,
      )
      stream_b = _rotate_and_shuffle(
        tf,
        encoded.map(lambda ex: ex["image_b"]),
        num=num,
        offset=offset_b,
        key=_fold(tf, epoch_key, 3),
        buffer=buffer,
      )
      pairs = tf.data.Dataset.zip(stream_a, stream_b)
    else:
      pairs = _rotate_and_shuffle(
        tf,
        encoded.map(lambda ex: (ex["image_a"], ex["image_b"])),
        num=num,
        offset=offset_a,
        key=_fold(tf, epoch_key, 2),
        buffer=buffer,
      )
    return pairs.enumerate().map(lambda p, ab: (e * num + p, ab[0], ab[1]))

  return epoch


def _b_images_and_schemes(tf, tfds, encoded, features):
  """(encoded B images as a tf.string [N] constant, their colour_schemes [N])."""
  raw = list(tfds.as_numpy(encoded.map(lambda ex: ex["image_b"])))
  decoded = tfds.as_numpy(
    tf.data.Dataset.from_tensor_slices(raw).map(features["image_b"].decode_example).batch(1024)
  )
  groups = colour_schemes(np.concatenate(list(decoded)))
  logging.info(
    "balanced exemplar pairing: %d B images in %d colour schemes (sizes %s)",
    len(raw),
    groups.max() + 1,
    np.bincount(groups).tolist(),
  )
  return tf.constant(raw, tf.string), groups


@contextlib.contextmanager
def _without_global_seed(tf):
  """Builds datasets as if no TF global seed were set.

  tf.data's shuffle combines its seed with TF's global seed when one is set
  (`tf.random.set_seed`, or Keras' `set_random_seed` in the same process): the
  stream would then depend on something other than config.seed, and our tensor
  seeds even fail there. The functions are traced while this holds.
  """
  from tensorflow.python.eager import context  # pylint: disable=g-import-not-at-top

  saved = context.global_seed()
  tf.random.set_seed(None)
  try:
    yield
  finally:
    tf.random.set_seed(saved)


def train_batches(
  config, *, process_index: int = 0, process_count: int = 1, start_step: int = 0
) -> Iterator[dict[str, Any]]:
  """Infinite stream of host-local training batches.

  Args:
    config: reads dataset, batch_size (global), seed and data.* (see
      `config_lib.data_config`).
    process_index: this process, in [0, process_count).
    process_count: number of processes reading in parallel.
    start_step: number of batches already drawn; the stream continues from there.

  Yields:
    {'a': f32[b, H, W, 3], 'b': f32[b, H, W, 3]} in [-1, 1],
    b = config.batch_size // process_count.
  """
  _check_process(process_index, process_count)
  if start_step < 0:
    raise ValueError(f"start_step must be >= 0, got {start_step}.")
  pairing = config.data.exemplar_pairing
  problem = pairing_problem(pairing, config.dataset)
  if problem:
    raise ValueError(problem)
  batch = _local_batch_size(config.batch_size, process_count)
  num_threads = _num_threads(config)
  tf = _tensorflow(num_threads)
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  builder = build.config_builder(config)
  split = tfds.even_splits("train", n=process_count, drop_remainder=True)[process_index]
  num = builder.info.splits[split].num_examples
  if num < 1:
    raise ValueError(
      f"Dataset {config.dataset!r} has too few training examples "
      f"({builder.info.splits['train'].num_examples}) for {process_count} processes."
    )
  size = _image_size(config, builder)
  features = builder.info.features
  encoded = builder.as_dataset(
    split=split,
    shuffle_files=False,
    read_config=_read_config(tfds),
    decoders={k: tfds.decode.SkipDecoding() for k in IMAGE_KEYS},
  )

  key = _fold(tf, _seed_key(tf, config.seed), process_index)
  first_epoch, offset = divmod(start_step * batch, num)
  b_bytes = b_groups = None
  if pairing == "balanced":
    b_bytes, b_groups = _b_images_and_schemes(tf, tfds, encoded, features)
  epoch = _epoch_stream(
    tf,
    encoded,
    num=num,
    pairing=pairing,
    buffer=int(config.data.shuffle_buffer),
    key=key,
    b_bytes=b_bytes,
    b_groups=b_groups,
  )
  with _without_global_seed(tf):
    stream = tf.data.Dataset.counter(first_epoch).flat_map(epoch).skip(offset)
  augment = bool(config.data.augment)

  def decode(index, encoded_a, encoded_b):
    aug_key = _fold(tf, key, _TAG_AUGMENT, index)
    out = {}
    for name, domain, data in (("a", 0, encoded_a), ("b", 1, encoded_b)):
      image = features[f"image_{name}"].decode_example(data)
      box, flip = sample_box(tf, _fold(tf, aug_key, domain), augment=augment)
      out[name] = resample(tf, image, box=box, flip=flip, size=size)
    return out

  stream = (
    stream.map(decode, num_parallel_calls=num_threads)
    .batch(batch, drop_remainder=True)
    .prefetch(2)
    .with_options(_dataset_options(tf, num_threads))
  )
  yield from tfds.as_numpy(stream)


# ---------------------------------------------------------------------------
# Evaluation stream
# ---------------------------------------------------------------------------


def eval_batches(
  config,
  *,
  split: str = "test",
  batch_size: int,
  num_examples: int | None = None,
  process_index: int = 0,
  process_count: int = 1,
) -> Iterator[dict[str, Any]]:
  """The first `num_examples` pairs of `split` in stored order, without augmentation.

  Process p reads the p-th contiguous part; every process yields the same number of
  batches, the last ones padded with zeros where `mask` is False.

  Args:
    config: reads dataset, data.data_dir, data.image_size, data.num_threads.
    split: TFDS split name.
    batch_size: global batch size, divisible by process_count.
    num_examples: how many pairs from the start of the split (None: all).
    process_index: this process, in [0, process_count).
    process_count: number of processes.

  Yields:
    {'a', 'b': f32[b, H, W, 3] in [-1, 1]; 'gt_a2b', 'gt_b2a' (if the dataset has
    them): f32[b, H, W, 3]; 'digit_a', 'digit_b', 'grade_b' (if present): int64[b];
    'label_a', 'label_b' (segmentation maps, if present): uint8[b, H, W, 1],
    resized nearest-neighbour; 'id': bytes[b] ('' for padding); 'mask': bool[b]}.
  """
  _check_process(process_index, process_count)
  batch = _local_batch_size(batch_size, process_count)
  num_threads = _num_threads(config)
  tf = _tensorflow(num_threads)
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  builder = build.config_builder(config)
  total = builder.info.splits[split].num_examples
  if num_examples is not None:
    if not 0 < num_examples <= total:
      raise ValueError(
        f"num_examples={num_examples} is not in [1, {total}] "
        f"(the size of {config.dataset!r} split {split!r})."
      )
    split, total = f"{split}[:{num_examples}]", num_examples
  local = tfds.even_splits(split, n=process_count, drop_remainder=False)[process_index]
  num_local = builder.info.splits[local].num_examples
  # Equal batch counts on every process, so that collective steps stay in step.
  num_batches = math.ceil(math.ceil(total / process_count) / batch)
  size = _image_size(config, builder)
  features = builder.info.features
  image_keys = IMAGE_KEYS + tuple(k for k in GT_KEYS if k in features)
  label_keys = tuple(k for k in LABEL_KEYS if k in features)
  segmentation_keys = tuple(k for k in SEGMENTATION_KEYS if k in features)

  def prepare(ex):
    whole, no_flip = tf.constant([0.0, 0.0, 1.0, 1.0]), tf.constant(False)
    out = {
      k.replace("image_", ""): resample(tf, ex[k], box=whole, flip=no_flip, size=size)
      for k in image_keys
    }
    out.update({k: ex[k] for k in label_keys})
    # Class ids must not be mixed: nearest neighbour (a no-op at the stored size).
    out.update({k: tf.image.resize(ex[k], size, method="nearest") for k in segmentation_keys})
    out["id"] = ex["id"]
    out["mask"] = tf.constant(True)
    return out

  ds = builder.as_dataset(split=local, shuffle_files=False, read_config=_read_config(tfds))
  ds = ds.map(prepare, num_parallel_calls=num_threads)
  padding = tf.data.Dataset.from_tensors(_zeros_like_spec(tf, ds.element_spec))
  ds = ds.concatenate(padding.repeat(num_batches * batch - num_local))
  ds = (
    ds.batch(batch, drop_remainder=True).prefetch(2).with_options(_dataset_options(tf, num_threads))
  )
  yield from tfds.as_numpy(ds)


def _zeros_like_spec(tf, spec):
  """A zero element (empty id, mask False) of a dataset's element spec."""
  return tf.nest.map_structure(lambda s: tf.zeros(s.shape, s.dtype), spec)
