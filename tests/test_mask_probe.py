"""The feature-mask measures (eval/mask_probe.py) on masks with known answers."""

import numpy as np
import pytest

from egsc_jax.eval import mask_probe


def _class_maps(n=6, size=8, seed=0):
  """Canvases like MNIST-Multiple's: a 4x4 grid of cells, classes 0-9 in ten
  random cells as a square each, background (-1) elsewhere."""
  rng = np.random.default_rng(seed)
  cell = size // 4
  maps = np.full((n, size, size), -1, np.int64)
  for i in range(n):
    for k, where in enumerate(rng.permutation(16)[:10]):
      r, c = divmod(int(where), 4)
      maps[i, r * cell : (r + 1) * cell - 1, c * cell : (c + 1) * cell - 1] = k
  return maps


def test_upsample_repeats_each_value_over_its_pixels():
  mask = np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1)
  up = mask_probe.upsample_to(mask, (4, 6))
  np.testing.assert_array_equal(up[0, :, :, 0], [[0, 0, 0, 1, 1, 1]] * 2 + [[2, 2, 2, 3, 3, 3]] * 2)
  with pytest.raises(ValueError, match="does not tile"):
    mask_probe.upsample_to(mask, (5, 6))


def test_best_channel_iou_by_hand():
  # One 2x2 canvas; the channel is above its mean (0.25) only at (0, 0).
  mask = np.array([[[1.0], [0.0]], [[0.0], [0.0]]])[None]
  class_map = np.array([[[0, 0], [-1, -1]]])
  out = mask_probe.best_channel_iou(mask, class_map)
  # above: inter 1, union 2 -> 0.5; below: inter 1, union 4 -> 0.25.
  assert out["digits"] == 0.5 and out["classes"] == {0: 0.5}
  assert out["digits_share"] == 0.5 and out["class_mean"] == 0.5


def test_a_channel_that_marks_a_class_scores_one_either_polarity():
  maps = _class_maps()
  rng = np.random.default_rng(1)
  mask = rng.uniform(0.5, 1.0, maps.shape + (4,))
  mask[..., 1] = np.where(maps == 3, 1.0, 0.5)  # high on class 3
  mask[..., 2] = np.where(maps >= 0, 0.5, 1.0)  # low on every digit
  out = mask_probe.best_channel_iou(mask, maps)
  assert out["classes"][3] == 1.0 and out["digits"] == 1.0
  assert out["digits_channel"] == 2
  # Noise channels alone: near the share of the class, far below 1.
  noise = mask_probe.best_channel_iou(rng.uniform(0.5, 1.0, maps.shape + (4,)), maps)
  assert noise["digits"] < 0.5 and noise["class_mean"] < 0.2


def test_linear_probe_reads_one_hot_channels_and_not_a_constant():
  maps = _class_maps(n=8)
  classes = np.where(maps < 0, 10, maps)
  one_hot = 0.5 + 0.5 * np.eye(11)[classes]  # [N, H, W, 11]
  probe = mask_probe.linear_probe(one_hot, maps)
  assert probe["accuracy"] == 1.0 and probe["balanced_accuracy"] == 1.0
  flat = mask_probe.linear_probe(np.full(maps.shape + (3,), 0.75), maps)
  held_out = classes[4:].ravel()
  assert flat["accuracy"] == flat["majority_accuracy"] == np.mean(held_out == 10)
  assert flat["balanced_accuracy"] == pytest.approx(1 / len(np.unique(held_out)))
  with pytest.raises(ValueError, match="two canvases"):
    mask_probe.linear_probe(one_hot[:1], maps[:1])


def test_mask_scores_at_feature_resolution():
  maps = _class_maps(n=4, size=8)
  # A 4x4 mask of a 8x8 canvas: channel 0 is the digit share of each 2x2 block.
  digit = (maps >= 0).reshape(4, 4, 2, 4, 2).mean(axis=(2, 4))[..., None]
  scores = mask_probe.mask_scores(0.5 + 0.5 * digit, maps)
  assert 0 < scores["digit_iou"] <= 1 and scores["digit_share"] == np.mean(maps >= 0)
  assert set(scores) == {
    "digit_iou",
    "digit_share",
    "class_iou_mean",
    "probe_accuracy",
    "probe_balanced_accuracy",
    "majority_accuracy",
    "majority_balanced_accuracy",
  }


def test_pattern_share_known_values():
  # c = [1, 3] (mean 2, rest [-1, 1]) and m = [1, 0.5] over two pixels:
  # Var(2 m) = Var([2, 1]) = 0.25, Var(m (c - 2)) = Var([-1, 0.5]) = 0.5625.
  c = np.array([1.0, 3.0]).reshape(1, 1, 2, 1)
  m = np.array([1.0, 0.5]).reshape(1, 1, 2, 1)
  np.testing.assert_allclose(mask_probe.pattern_share(c, m), [[0.25 / 0.8125]])
  rng = np.random.default_rng(0)
  content = rng.normal(size=(3, 4, 4, 2)) + 2.0
  mask = 0.5 + 0.5 * rng.random((3, 4, 4, 2))
  # A flat mask adds no pattern; flat content leaves nothing but the pattern.
  np.testing.assert_allclose(
    mask_probe.pattern_share(content, np.full_like(mask, 0.7)), 0.0, atol=1e-12
  )
  flat = np.broadcast_to(content.mean(axis=(1, 2), keepdims=True), content.shape)
  np.testing.assert_allclose(mask_probe.pattern_share(flat, mask), 1.0)
  assert mask_probe.pattern_share(np.zeros_like(content), mask).tolist() == [[0.0, 0.0]] * 3


def test_channel_correlation_matches_numpy():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(5, 3, 3, 4))
  y = 0.5 * x + rng.normal(size=x.shape)
  y[..., 2] = -x[..., 2]
  got = mask_probe.channel_correlation(x, y)
  want = [np.corrcoef(x[..., k].ravel(), y[..., k].ravel())[0, 1] for k in range(4)]
  np.testing.assert_allclose(got, want)
  assert got[2] == pytest.approx(-1.0)
  y[..., 3] = 1.0  # constant: no correlation defined, 0
  assert mask_probe.channel_correlation(x, y)[3] == 0.0
