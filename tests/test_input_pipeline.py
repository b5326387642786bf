"""tf.data input pipeline on a tiny MNIST-Single built from fake idx files."""

import pathlib
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from egsc_jax import config_lib
from egsc_jax.data import input_pipeline, mnist_single, mnist_source

# 42 fake source digits (labels cycle 0-9: 5, 5, 4, ...) lose one per class to
# the validation split (mnist_source.hold_out_validation): 32 training pairs.
NUM_SOURCE_TRAIN, NUM_TEST = 42, 12
NUM_TRAIN = 32


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  manual = tmp_path_factory.mktemp("manual")
  mnist_source.write_fake_mnist(manual, num_train=NUM_SOURCE_TRAIN, num_test=NUM_TEST, seed=1)
  data_dir = tmp_path_factory.mktemp("tfds")
  mnist_single.MnistSingle(data_dir=str(data_dir)).download_and_prepare(
    download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
  )
  return data_dir


def _config(data_dir, *, batch_size=4, seed=0, **data):
  config = ml_collections.ConfigDict(
    {
      "dataset": "mnist_single",
      "batch_size": batch_size,
      "seed": seed,
      "data": config_lib.data_config(),
    }
  )
  config.data.data_dir = str(data_dir)
  config.data.num_threads = 1
  config.data.update(data)
  return config


def _take(iterator, num):
  return [next(iterator) for _ in range(num)]


def _key(image):
  return np.asarray(image, np.float32).tobytes()


@pytest.fixture(scope="module")
def stored_train(data_dir):
  """The stored training pairs: {A bytes: B bytes} in [-1, 1] floats."""
  config = _config(data_dir)
  pairs = {}
  for batch in input_pipeline.eval_batches(config, split="train", batch_size=8):
    for a, b, valid in zip(batch["a"], batch["b"], batch["mask"]):
      if valid:
        pairs[_key(a)] = _key(b)
  assert len(pairs) == NUM_TRAIN
  return pairs


def _epochs(batches, *, per_epoch):
  """Splits a list of batches into epochs of (A keys, B keys) per example."""
  a = [_key(x) for batch in batches for x in batch["a"]]
  b = [_key(x) for batch in batches for x in batch["b"]]
  return [(a[i : i + per_epoch], b[i : i + per_epoch]) for i in range(0, len(a), per_epoch)]


# ---------------------------------------------------------------------------
# Training stream
# ---------------------------------------------------------------------------


def test_shapes_range_and_resize(data_dir):
  config = _config(data_dir, image_size=(16, 20))
  batch = next(input_pipeline.train_batches(config, process_index=0, process_count=1))
  assert set(batch) == {"a", "b"}
  for key in ("a", "b"):
    assert batch[key].shape == (4, 16, 20, 3) and batch[key].dtype == np.float32
    assert batch[key].min() >= -1.0 and batch[key].max() <= 1.0
    assert batch[key].min() < -0.9 and batch[key].max() > 0.9
  assert tf.config.get_visible_devices("GPU") == []


def test_same_seed_same_batches(data_dir):
  first = _take(input_pipeline.train_batches(_config(data_dir), start_step=0), 10)
  second = _take(input_pipeline.train_batches(_config(data_dir), start_step=0), 10)
  other = _take(input_pipeline.train_batches(_config(data_dir, seed=1), start_step=0), 10)
  for x, y in zip(first, second):
    np.testing.assert_array_equal(x["a"], y["a"])
    np.testing.assert_array_equal(x["b"], y["b"])
  assert any(not np.array_equal(x["a"], z["a"]) for x, z in zip(first, other))


def test_a_global_tf_seed_changes_nothing(data_dir):
  """Keras' set_random_seed (or tf.random.set_seed) in the same process must not
  change, or break, the stream: it depends on config.seed alone."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  first = _take(input_pipeline.train_batches(_config(data_dir)), 3)
  tf.random.set_seed(1234)
  try:
    seeded = _take(input_pipeline.train_batches(_config(data_dir)), 3)
  finally:
    tf.random.set_seed(None)
  for x, y in zip(first, seeded):
    np.testing.assert_array_equal(x["a"], y["a"])
    np.testing.assert_array_equal(x["b"], y["b"])


@pytest.mark.parametrize("pairing", ["random", "fixed", "balanced"])
def test_resume_equals_tail_of_uninterrupted_stream(data_dir, pairing):
  # 8 batches per epoch: step 11 resumes inside the second epoch, and the tail
  # crosses into the third.
  config = _config(data_dir, exemplar_pairing=pairing)
  full = _take(input_pipeline.train_batches(config), 20)
  resumed = _take(input_pipeline.train_batches(config, start_step=11), 9)
  for x, y in zip(full[11:], resumed):
    np.testing.assert_array_equal(x["a"], y["a"])
    np.testing.assert_array_equal(x["b"], y["b"])


def test_resume_far_ahead_is_immediate(data_dir):
  # Step 10^9 is epoch 1.25e8: it is computed, not replayed.
  config = _config(data_dir)
  far = _take(input_pipeline.train_batches(config, start_step=10**9), 3)
  after = _take(input_pipeline.train_batches(config, start_step=10**9 + 1), 2)
  for x, y in zip(far[1:], after):
    np.testing.assert_array_equal(x["a"], y["a"])
    np.testing.assert_array_equal(x["b"], y["b"])


def test_augmentation_flips_and_zooms(data_dir, stored_train):
  config = _config(data_dir, augment=True)
  batches = _take(input_pipeline.train_batches(config), 8)  # one epoch
  images = [x for batch in batches for x in batch["a"]]
  stored = [np.frombuffer(k, np.float32).reshape(28, 28, 3) for k in stored_train]
  untouched = sum(_key(x) in stored_train for x in images)
  flipped = sum(_key(x[:, ::-1]) in stored_train for x in images)
  # p(no flip, no zoom) = 1/4, p(flip only) = 1/4 of 32 images.
  assert 2 <= untouched <= 16 and 2 <= flipped <= 16
  assert untouched + flipped < len(images)  # the rest are zoomed
  assert len(stored) == NUM_TRAIN


def test_processes_read_disjoint_equal_parts(data_dir, stored_train):
  config = _config(data_dir, augment=False, exemplar_pairing="fixed")
  seen = []
  for index in range(2):
    batches = _take(input_pipeline.train_batches(config, process_index=index, process_count=2), 8)
    assert batches[0]["a"].shape == (2, 28, 28, 3)  # global 4 / 2 processes
    seen.append({_key(x) for batch in batches for x in batch["a"]})
  assert len(seen[0]) == len(seen[1]) == NUM_TRAIN // 2
  assert not seen[0] & seen[1]
  assert seen[0] | seen[1] == set(stored_train)


def test_process_count_must_divide_batch(data_dir):
  with pytest.raises(ValueError, match="multiple of the process count 3"):
    next(input_pipeline.train_batches(_config(data_dir), process_index=0, process_count=3))


def test_fixed_pairing_keeps_stored_pairs(data_dir, stored_train):
  config = _config(data_dir, augment=False, exemplar_pairing="fixed")
  batches = _take(input_pipeline.train_batches(config), 24)
  orders = []
  for a, b in _epochs(batches, per_epoch=NUM_TRAIN):
    assert sorted(a) == sorted(stored_train)  # every pair once per epoch
    assert all(stored_train[x] == y for x, y in zip(a, b))
    orders.append(a)
  assert orders[0] != orders[1]  # record order is reshuffled each epoch


@pytest.mark.parametrize("shuffle_buffer", [2048, 1])
def test_random_pairing_redraws_exemplars_every_epoch(data_dir, stored_train, shuffle_buffer):
  # With a buffer of 1 only the per-epoch rotation re-pairs the streams.
  config = _config(data_dir, augment=False, shuffle_buffer=shuffle_buffer)
  batches = _take(input_pipeline.train_batches(config), 24)
  stored_b = sorted(stored_train.values())
  pairings = []
  for a, b in _epochs(batches, per_epoch=NUM_TRAIN):
    assert sorted(a) == sorted(stored_train) and sorted(b) == stored_b
    pairing = dict(zip(a, b))
    assert sum(stored_train[x] == pairing[x] for x in a) < NUM_TRAIN // 2
    pairings.append(pairing)
  assert pairings[0] != pairings[1] != pairings[2]


def test_colour_schemes_groups_by_background_then_digit_colour():
  red, green, blue = (255, 0, 0), (0, 255, 0), (0, 0, 255)

  def image(fg, bg):
    x = np.zeros((6, 6, 3), np.uint8) + np.uint8(bg)
    x[2:4, 1:5] = fg
    return x

  images = np.stack(
    [image(red, green), image(green, red), image(red, green), image(blue, green), image(green, red)]
  )
  # Pairs (bg, fg) in sorted order: (0,0,255 | ...) none; (0,255,0)+(0,0,255) = 0,
  # (0,255,0)+(255,0,0) = 1, (255,0,0)+(0,255,0) = 2.
  np.testing.assert_array_equal(input_pipeline.colour_schemes(images), [1, 2, 1, 0, 2])


def _schemes_of(batches):
  """Colour-scheme group ids of the B images of float batches (augment off)."""
  b = np.concatenate([x["b"] for x in batches])
  return input_pipeline.colour_schemes(np.round(b * 127.5 + 127.5).astype(np.uint8))


def test_balanced_pairing_draws_every_scheme_equally(data_dir):
  random = _schemes_of(
    _take(input_pipeline.train_batches(_config(data_dir, augment=False, seed=3)), 8)
  )  # one epoch: as stored
  balanced = _schemes_of(
    _take(
      input_pipeline.train_batches(
        _config(data_dir, augment=False, seed=3, exemplar_pairing="balanced")
      ),
      200,
    )
  )
  num = random.max() + 1
  assert balanced.max() + 1 == num and num >= 4
  stored = np.bincount(random, minlength=num) / len(random)
  drawn = np.bincount(balanced, minlength=num) / len(balanced)
  # The stored split is far from uniform (red-on-green for digits 5-9: here
  # 3% to 31% a scheme); 800 balanced draws put each scheme within 0.06 of
  # 1/num (about 4 standard deviations).
  assert stored.max() - stored.min() > 0.2
  np.testing.assert_allclose(drawn, 1 / num, atol=0.06)


def test_balanced_pairing_needs_two_colour_exemplars(data_dir):
  config = _config(data_dir, exemplar_pairing="balanced")
  config.dataset = "gta5_bdd"
  with pytest.raises(ValueError, match="two flat colours.*\\('mnist_single',\\).*got 'gta5_bdd'"):
    next(input_pipeline.train_batches(config))


def test_bad_pairing_and_missing_dataset(data_dir, tmp_path):
  with pytest.raises(ValueError, match="exemplar_pairing"):
    next(input_pipeline.train_batches(_config(data_dir, exemplar_pairing="sorted")))
  with pytest.raises(FileNotFoundError, match="egsc_jax.data.build mnist_single"):
    next(input_pipeline.train_batches(_config(tmp_path)))


# ---------------------------------------------------------------------------
# Evaluation stream
# ---------------------------------------------------------------------------


def test_eval_fixed_order_with_ground_truth(data_dir):
  config = _config(data_dir)
  batches = list(input_pipeline.eval_batches(config, split="test", batch_size=5))
  assert len(batches) == 3  # 12 pairs, the last batch padded
  ids = np.concatenate([b["id"] for b in batches])
  mask = np.concatenate([b["mask"] for b in batches])
  assert list(ids[mask]) == [b"%05d" % i for i in range(NUM_TEST)]
  assert list(ids[~mask]) == [b""] * 3
  builder = tfds.builder("mnist_single", data_dir=str(data_dir))
  stored = list(tfds.as_numpy(builder.as_dataset(split="test", shuffle_files=False)))
  for i, ex in enumerate(stored):
    batch, row = divmod(i, 5)
    for key in ("a", "b", "gt_a2b", "gt_b2a"):
      source = ex["image_" + key if key in "ab" else key].astype(np.float32)
      np.testing.assert_allclose(batches[batch][key][row], (source - 127.5) / 127.5, atol=1e-6)
    assert batches[batch]["digit_a"][row] == ex["digit_a"]
  assert not batches[-1]["a"][2:].any()
  again = list(input_pipeline.eval_batches(config, split="test", batch_size=5))
  np.testing.assert_array_equal(again[1]["gt_a2b"], batches[1]["gt_a2b"])


def test_eval_processes_split_in_order(data_dir):
  config = _config(data_dir)
  parts = [
    list(
      input_pipeline.eval_batches(
        config, split="test", batch_size=4, num_examples=11, process_index=i, process_count=2
      )
    )
    for i in range(2)
  ]
  assert len(parts[0]) == len(parts[1]) == 3  # ceil(ceil(11 / 2) / 2)
  ids = [np.concatenate([b["id"][b["mask"]] for b in part]) for part in parts]
  assert len(ids[0]) == 6 and len(ids[1]) == 5
  assert list(np.concatenate(ids)) == [b"%05d" % i for i in range(11)]
  with pytest.raises(ValueError, match="num_examples=13"):
    next(input_pipeline.eval_batches(config, batch_size=4, num_examples=13))


# ---------------------------------------------------------------------------
# Image ops
# ---------------------------------------------------------------------------


def _bilinear_align_corners(image, box, size):
  """Numpy reference: bilinear sampling of `box` on the align-corners grid."""
  h, w, _ = image.shape
  (y1, x1, y2, x2), (out_h, out_w) = box, size

  def grid(lo, hi, n_in, n_out):  # a 1-sample output takes the box centre
    if n_out == 1:
      return np.array([0.5 * (lo + hi) * (n_in - 1)])
    return lo * (n_in - 1) + np.arange(n_out) * (hi - lo) * (n_in - 1) / (n_out - 1)

  ys, xs = grid(y1, y2, h, out_h), grid(x1, x2, w, out_w)
  y0 = np.clip(np.floor(ys).astype(int), 0, h - 1)
  x0 = np.clip(np.floor(xs).astype(int), 0, w - 1)
  y1i, x1i = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
  dy, dx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
  image = image.astype(np.float64)
  top = image[y0][:, x0] * (1 - dx) + image[y0][:, x1i] * dx
  bottom = image[y1i][:, x0] * (1 - dx) + image[y1i][:, x1i] * dx
  return top * (1 - dy) + bottom * dy


@pytest.mark.parametrize(
  "box, size",
  [
    ((0.0, 0.0, 1.0, 1.0), (6, 7)),
    ((0.0, 0.0, 1.0, 1.0), (11, 4)),
    ((0.1, 0.15, 0.95, 1.0), (6, 7)),
    ((0.2, 0.1, 1.0, 0.9), (9, 5)),
    ((0.0, 0.0, 1.0, 1.0), (1, 1)),
  ],
)
def test_resample_matches_numpy_bilinear(box, size):
  image = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
  expected = (_bilinear_align_corners(image, box, size) - 127.5) / 127.5
  for flip in (False, True):
    out = input_pipeline.resample(
      tf, tf.constant(image), box=tf.constant(box), flip=tf.constant(flip), size=size
    ).numpy()
    np.testing.assert_allclose(out, expected[:, ::-1] if flip else expected, atol=1e-5)
  identity = input_pipeline.resample(
    tf, tf.constant(image), box=tf.constant(box), flip=tf.constant(True), size=(6, 7)
  ).numpy()
  if box == (0.0, 0.0, 1.0, 1.0):  # a true flip: out[x] = in[W-1-x]
    flipped = image[:, ::-1].astype(np.float32)
    half = np.float32(127.5)
    np.testing.assert_array_equal(identity, (flipped - half) / half)


def test_sample_box_distribution():
  keys = tf.data.Dataset.range(2000).map(lambda i: tf.stack([tf.constant(3, tf.int64), i]))
  draws = keys.map(lambda k: input_pipeline.sample_box(tf, k, augment=True)).batch(2000)
  boxes, flips = next(iter(draws))
  boxes, flips = boxes.numpy(), flips.numpy()
  scale_y, scale_x = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
  np.testing.assert_allclose(scale_y, scale_x, atol=1e-6)
  zoomed = scale_y < 1 - 1e-6
  assert abs(np.mean(flips) - 0.5) < 0.05 and abs(np.mean(zoomed) - 0.5) < 0.05
  assert scale_y.min() >= 0.8 - 1e-6 and boxes.min() >= 0 and boxes.max() <= 1 + 1e-6
  # Crop sizes fill U(0.8, 1) and offsets the whole remaining space.
  assert np.quantile(scale_y[zoomed], 0.1) < 0.83
  assert np.quantile(scale_y[zoomed], 0.9) > 0.97
  rel = boxes[zoomed, 0] / (1 - scale_y[zoomed])
  assert rel.min() < 0.05 and rel.max() > 0.95
  box, flip = input_pipeline.sample_box(tf, tf.constant([3, 0], tf.int64), augment=False)
  np.testing.assert_array_equal(box.numpy(), [0, 0, 1, 1])
  assert not bool(flip)


@pytest.mark.slow
def test_import_does_not_load_tensorflow():
  code = (
    "import sys; import egsc_jax.data.input_pipeline, egsc_jax.config_lib as c; "
    "assert c.data_config().exemplar_pairing == 'random'; "
    "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
  )
  subprocess.run([sys.executable, "-c", code], check=True, cwd=pathlib.Path(__file__).parents[1])
