"""A small CNN digit classifier, trained on the MNIST source digits, for our metrics.

Its job in evaluation: read the digit of an MNIST-Single translation (any colour
scheme) and compare it with the source's digit, which a content-preserving
translation keeps. So it is colour-invariant twice over: its first step
(`digit_map`) turns any two-colour digit into the same grey map, and every training
digit is rendered on the fly with a random foreground / background colour pair,
one of

- the 8 MNIST-Single schemes of docs/method.md §4.1 (`SCHEMES`: black on white, white on
  black, and the 6 pure-primary pairs R/G, G/R, R/B, B/R, G/B, B/G), or,
- with probability `RANDOM_COLOUR_PROB`, two uniformly random RGB colours, so that
  off-palette translations are still read,

with the digit's alpha either binarised at 127.5 (as the datasets store it) or the
soft MNIST grey level, half and half (translations have soft edges). The test
accuracy is measured on the test digits rendered binarised with the 8 schemes in
turn (digit i with scheme i mod 8): the MNIST-Single look.

Inputs are RGB [N, 28, 28, 3] floats in [-1, 1] (uint8 is converted).
`load_or_train` trains it once per dataset and caches it beside the dataset
(`dataset_cache_dir`), where every run and evaluation finds it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import uuid

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from egsc_jax import paths

IMAGE_SIZE = 28
NUM_CLASSES = 10
CLASSIFIER_STEPS = 1500
CLASSIFIER_BATCH = 64
CLASSIFIER_SEED = 0

# (foreground, background) RGB, docs/method.md §4.1: domain A's two, then domain B's six.
SCHEMES = np.array(
  [
    [[0, 0, 0], [255, 255, 255]],
    [[255, 255, 255], [0, 0, 0]],
    [[255, 0, 0], [0, 255, 0]],
    [[0, 255, 0], [255, 0, 0]],
    [[255, 0, 0], [0, 0, 255]],
    [[0, 0, 255], [255, 0, 0]],
    [[0, 255, 0], [0, 0, 255]],
    [[0, 0, 255], [0, 255, 0]],
  ],
  np.float32,
)
RANDOM_COLOUR_PROB = 0.2
BINARY_ALPHA_PROB = 0.5


def digit_map(images: jax.Array) -> jax.Array:
  """Colour-free view of a digit image: distance from the background colour.

  The background colour is the per-channel median over the image (a digit covers
  well under half of its canvas). For a digit painted with alpha a between any two
  colours, x - bg = a (fg - bg), so the distance normalised by its per-image maximum
  is a itself whatever the scheme: the classifier is colour-invariant by
  construction, and the random colouring in training covers what is left
  (off-palette or noisy translations). The floor of 0.1 on the maximum (13 grey
  levels) keeps a near-blank image from being blown up into noise.

  [B, H, W, 3] in [-1, 1] -> [B, H, W, 1] in [0, 1].
  """
  bg = jnp.median(images, axis=(1, 2), keepdims=True)
  dist = jnp.sqrt(jnp.sum(jnp.square(images - bg), axis=-1, keepdims=True))
  peak = jnp.max(dist, axis=(1, 2, 3), keepdims=True)
  return dist / jnp.maximum(peak, 0.1)


class DigitCNN(nn.Module):
  """digit_map, then Conv(16)-pool-Conv(32)-pool-Conv(64)-pool-Dense(128)-Dense(10).

  [B, 28, 28, 3] in [-1, 1] -> logits [B, 10]. Small on purpose: it trains to
  over 95% on 4,000 digits in a few CPU seconds.
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = digit_map(x)
    for i, features in enumerate((16, 32, 64)):
      x = nn.relu(nn.Conv(features, (3, 3), name=f"conv{i + 1}")(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))  # 28 -> 14 -> 7 -> 3
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(nn.Dense(128, name="fc1")(x))
    return nn.Dense(NUM_CLASSES, name="logits")(x)


def _check_digits(images: np.ndarray, labels: np.ndarray, *, name: str) -> None:
  images, labels = np.asarray(images), np.asarray(labels)
  if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
    raise ValueError(f"{name}: expected grey digits [N, 28, 28], got {images.shape}.")
  if images.dtype != np.uint8:
    raise ValueError(f"{name}: expected uint8 digits (0..255), got {images.dtype}.")
  if labels.shape != images.shape[:1]:
    raise ValueError(f"{name}: {images.shape[0]} digits but labels of shape {labels.shape}.")
  if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
    raise ValueError(f"{name}: labels must be 0..9, got {np.unique(labels).tolist()}.")


def _paint(alpha: jax.Array, fg: jax.Array, bg: jax.Array) -> jax.Array:
  """alpha [N, H, W] in [0, 1], colours [N, 3] in 0..255 -> [N, H, W, 3] in [-1, 1]."""
  a = alpha[..., None]
  rgb = a * fg[:, None, None, :] + (1.0 - a) * bg[:, None, None, :]
  return rgb / 127.5 - 1.0


def render_random(digits: jax.Array, *, key: jax.Array) -> jax.Array:
  """Training-time colouring (module docstring). uint8 [N, 28, 28] -> f32 [N, 28, 28, 3]."""
  k_scheme, k_random, k_use_random, k_binary = jax.random.split(key, 4)
  n = digits.shape[0]
  scheme = jnp.asarray(SCHEMES)[jax.random.randint(k_scheme, (n,), 0, len(SCHEMES))]
  random = jax.random.uniform(k_random, (n, 2, 3), maxval=255.0)
  use_random = jax.random.bernoulli(k_use_random, RANDOM_COLOUR_PROB, (n,))
  colours = jnp.where(use_random[:, None, None], random, scheme)
  alpha = digits.astype(jnp.float32) / 255.0
  binary = jax.random.bernoulli(k_binary, BINARY_ALPHA_PROB, (n,))
  alpha = jnp.where(binary[:, None, None], (alpha > 0.5).astype(jnp.float32), alpha)
  return _paint(alpha, colours[:, 0], colours[:, 1])


def render_schemes(digits: np.ndarray) -> np.ndarray:
  """Test-time colouring: digit i binarised, in `SCHEMES[i % 8]`.

  uint8 [N, 28, 28] -> float32 [N, 28, 28, 3] in [-1, 1].
  """
  digits = np.asarray(digits)
  colours = SCHEMES[np.arange(len(digits)) % len(SCHEMES)]
  alpha = (digits > 127.5).astype(np.float32)
  return np.asarray(
    _paint(jnp.asarray(alpha), jnp.asarray(colours[:, 0]), jnp.asarray(colours[:, 1]))
  )


def _loss(params, images, labels):
  logits = DigitCNN().apply({"params": params}, images)
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _optimizer(learning_rate: float) -> optax.GradientTransformation:
  return optax.adam(learning_rate)


@functools.partial(jax.jit, static_argnames=("batch_size", "learning_rate"), donate_argnums=(0, 1))
def _train_step(params, opt_state, digits, labels, key, *, batch_size, learning_rate):
  tx = _optimizer(learning_rate)
  k_batch, k_render = jax.random.split(key)
  idx = jax.random.randint(k_batch, (batch_size,), 0, digits.shape[0])
  images = render_random(digits[idx], key=k_render)
  loss, grads = jax.value_and_grad(_loss)(params, images, labels[idx])
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, loss


def train_digit_classifier(
  images: np.ndarray,
  labels: np.ndarray,
  *,
  test_images: np.ndarray,
  test_labels: np.ndarray,
  steps: int,
  batch_size: int,
  seed: int,
  learning_rate: float = 2e-3,
) -> tuple[dict, float]:
  """Trains `DigitCNN` with Adam on colour-randomised digits; a pure function of its args.

  Step t uses `jax.random.fold_in(PRNGKey(seed), t)` for its batch (drawn with
  replacement) and its colours, so equal arguments give equal parameters.

  Args:
    images: uint8 [N, 28, 28] grey MNIST digits (0 = background), e.g.
      `mnist_source.load_mnist().split('train')[0]`.
    labels: int [N], 0..9.
    test_images: uint8 [M, 28, 28] held-out digits.
    test_labels: int [M].
    steps: optimiser steps.
    batch_size: digits per step.
    seed: the root seed (initialisation, batches, colours).
    learning_rate: Adam's step size.

  Returns:
    (params, test_accuracy): the flax params tree for `classify`, and the accuracy
    on the test digits rendered with `render_schemes`.
  """
  _check_digits(images, labels, name="images")
  _check_digits(test_images, test_labels, name="test_images")
  if steps < 0 or batch_size < 1:
    raise ValueError(f"need steps >= 0 and batch_size >= 1, got {steps}, {batch_size}.")
  root = jax.random.PRNGKey(seed)
  init_key, train_key = jax.random.split(root)
  dummy = jnp.zeros([1, IMAGE_SIZE, IMAGE_SIZE, 3])
  params = jax.jit(DigitCNN().init)(init_key, dummy)["params"]
  opt_state = _optimizer(learning_rate).init(params)
  digits = jnp.asarray(images)
  targets = jnp.asarray(labels, jnp.int32)
  for step in range(steps):
    params, opt_state, _ = _train_step(
      params,
      opt_state,
      digits,
      targets,
      jax.random.fold_in(train_key, step),
      batch_size=batch_size,
      learning_rate=learning_rate,
    )
  predicted = classify(params, render_schemes(test_images))
  return params, float(np.mean(predicted == np.asarray(test_labels)))


@jax.jit
def _logits(params, images):
  return DigitCNN().apply({"params": params}, images)


def classify(params: dict, images: np.ndarray, *, batch_size: int = 500) -> np.ndarray:
  """Predicted digits of RGB images.

  Args:
    params: from `train_digit_classifier`.
    images: [N, 28, 28, 3], float in [-1, 1] or uint8 0..255 (converted).
    batch_size: images per forward pass.

  Returns:
    int64 [N].
  """
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
    raise ValueError(
      f"images: expected RGB [N, 28, 28, 3], got {images.shape}; resize larger "
      "images (e.g. one 28x28 cell of MNIST-Multiple) first."
    )
  if images.dtype == np.uint8:
    images = images.astype(np.float32) / 127.5 - 1.0
  out = [
    np.asarray(
      jnp.argmax(_logits(params, jnp.asarray(images[i : i + batch_size], jnp.float32)), -1)
    )
    for i in range(0, len(images), batch_size)
  ]
  return np.concatenate(out).astype(np.int64) if out else np.zeros([0], np.int64)


# ----------------------------------------------------------------------------
# Trained once per dataset, cached beside it
# ----------------------------------------------------------------------------

CACHE_DIRNAME = "egsc_jax_cache"
# Bumped when the cached file's layout or the training function changes, so
# that an old file is not read as a new one.
CACHE_FORMAT = 2  # 2: keyed by the digits' content, not their path


def dataset_cache_dir(dataset: str, *, data_dir: str | None) -> str:
  """Where our per-dataset artefacts live: beside TFDS's copy of the dataset,
  `<data_dir>/egsc_jax_cache/<name>/<version>` (local or gs://).

  Every run and every evaluation of `dataset` in `data_dir` shares it; the
  version keys it as TFDS keys the data.
  """
  from egsc_jax.data import build  # pylint: disable=g-import-not-at-top

  builder = build.get_builder(dataset, data_dir=data_dir)
  return os.path.join(
    os.fspath(builder.data_dir_root), CACHE_DIRNAME, builder.name, str(builder.version)
  )


def _digits_fingerprint(*arrays: np.ndarray) -> str:
  """sha256 of the arrays' dtypes, shapes and bytes, in order."""
  h = hashlib.sha256()
  for a in arrays:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
  return h.hexdigest()


def cache_key(meta: dict) -> str:
  """A short hash of the classifier's settings and digits: its cache file name."""
  text = json.dumps(meta, sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_atomically(path: str, data: bytes) -> None:
  """Writes to a unique temporary name, then renames: a reader sees the old
  file, no file or the whole new one, never a partial write, and concurrent
  writers of the same (deterministic) bytes simply replace each other. On
  Cloud Storage an object appears whole on upload anyway."""
  tmp = paths.Path(f"{path}.tmp-{uuid.uuid4().hex}")
  tmp.write_bytes(data)
  try:
    tmp.replace(path)
  except OSError:
    tmp.unlink(missing_ok=True)
    raise


def _read_cache(path: str, meta: dict) -> tuple[dict, float] | None:
  """(params, test accuracy) of a cache file made with `meta`, or None."""
  p = paths.Path(path)
  if not p.is_file():
    return None
  try:
    raw = serialization.msgpack_restore(p.read_bytes())
    cached_meta = json.loads(raw["meta"])
    if {k: cached_meta.get(k) for k in meta} != meta:
      raise ValueError(f"made with other settings: {cached_meta}")
    target = jax.eval_shape(
      DigitCNN().init, jax.random.key(0), np.zeros([1, IMAGE_SIZE, IMAGE_SIZE, 3], np.float32)
    )["params"]
    params = serialization.from_state_dict(target, raw["params"])
    return params, float(cached_meta["test_accuracy"])
  except (OSError, ValueError, KeyError, TypeError) as e:
    logging.warning("digit classifier: ignoring the unreadable cache %s (%s)", path, e)
    return None


def load_or_train(
  cache_dir: str,
  *,
  manual_dir: str | None,
  steps: int,
  batch_size: int = CLASSIFIER_BATCH,
  seed: int = CLASSIFIER_SEED,
) -> tuple[dict, float]:
  """The digit classifier's params and test accuracy, trained on first use.

  Args:
    cache_dir: where the classifier is cached, normally
      `dataset_cache_dir(config.dataset, data_dir=config.data.data_dir)`, so
      that every run and evaluation on the dataset shares one.
    manual_dir: the MNIST source digits' directory (None: the offline digits).
    steps, batch_size, seed: `train_digit_classifier`'s.

  The file is cache_dir/digit_classifier-<key>.msgpack, the key a hash of the
  settings and of the digits themselves (their pixels and labels, not where
  they were read from: every checkout and venv shares one), so classifiers of
  other settings live side by side; it holds the flax params and the settings with the test
  accuracy measured after training (the MNIST test digits in the 8
  MNIST-Single schemes), which is returned from then on. Training is
  deterministic, so concurrent first users write identical files; each
  writes under a temporary name and renames. A readable copy of the settings
  goes to digit_classifier-<key>.json.
  """
  from egsc_jax.data import mnist_source  # pylint: disable=g-import-not-at-top

  digits = mnist_source.load_mnist(manual_dir)
  train_images, train_labels = digits.split("train")
  test_images, test_labels = digits.split("test")
  meta = dict(
    format=CACHE_FORMAT,
    steps=int(steps),
    batch_size=int(batch_size),
    seed=int(seed),
    digits_sha256=_digits_fingerprint(train_images, train_labels, test_images, test_labels),
  )
  stem = os.path.join(cache_dir, f"digit_classifier-{cache_key(meta)}")
  cached = _read_cache(stem + ".msgpack", meta)
  if cached is not None:
    logging.info("digit classifier: cached in %s.msgpack", stem)
    return cached
  logging.info("digit classifier: training %d steps on %s", steps, digits.description)
  params, accuracy = train_digit_classifier(
    train_images,
    train_labels,
    test_images=test_images,
    test_labels=test_labels,
    steps=steps,
    batch_size=batch_size,
    seed=seed,
  )
  full_meta = json.dumps(dict(meta, digits=digits.description, test_accuracy=accuracy), indent=2)
  paths.Path(cache_dir).mkdir(parents=True, exist_ok=True)
  _write_atomically(stem + ".json", full_meta.encode())
  _write_atomically(
    stem + ".msgpack",
    serialization.msgpack_serialize(
      {"meta": full_meta, "params": serialization.to_state_dict(params)}
    ),
  )
  return params, accuracy
