"""Losses of EGSC-IT (docs/method.md §1.4, 1.8, 2) on known inputs.

Small cases are worked out by hand in the comments; larger random cases are
checked against a float64 numpy re-implementation written from docs/method.md §2.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from egsc_jax import losses

WEIGHTS = dict(gan=10.0, kl=0.1, recon=100.0, kl_cycle=0.3, cycle=70.0, style=1e3, content=1e1)


def _rand(seed, shape, low=-1.0, high=1.0):
  return np.random.RandomState(seed).uniform(low, high, shape).astype(np.float32)


# ---------------------------------------------------------------------------
# Elementary terms, by hand
# ---------------------------------------------------------------------------


def test_lsgan_generator_by_hand():
  # mean((o - 1)^2) of [0, 1, 3, -1] = (1 + 0 + 4 + 4) / 4 = 2.25
  o = jnp.asarray([0.0, 1.0, 3.0, -1.0]).reshape(1, 2, 2, 1)
  assert float(losses.lsgan_generator(fake=o)) == pytest.approx(2.25)


def test_lsgan_discriminator_by_hand():
  # real [1, 0]: mean((r-1)^2) = (0 + 1) / 2 = 0.5; fake [2, 0]: mean(f^2) = 2
  # LS_D = 0.5 * (0.5 + 2) = 1.25
  real = jnp.asarray([1.0, 0.0]).reshape(1, 1, 2, 1)
  fake = jnp.asarray([2.0, 0.0]).reshape(1, 1, 2, 1)
  assert float(losses.lsgan_discriminator(real=real, fake=fake)) == pytest.approx(1.25)
  # A perfect D (real 1, fake 0) has zero loss; swapping them costs 1.
  one, zero = jnp.ones((2, 2, 2, 1)), jnp.zeros((2, 2, 2, 1))
  assert float(losses.lsgan_discriminator(real=one, fake=zero)) == 0.0
  assert float(losses.lsgan_discriminator(real=zero, fake=one)) == pytest.approx(1.0)


def test_l1_is_the_mean_absolute_error():
  # |[1, -2, 0.5] - [0, 0, 0.5]| = [1, 2, 0] -> mean 1
  pred = jnp.asarray([1.0, -2.0, 0.5])
  target = jnp.asarray([0.0, 0.0, 0.5])
  assert float(losses.l1(pred=pred, target=target)) == pytest.approx(1.0)
  a, b = _rand(0, (2, 5, 5, 3)), _rand(1, (2, 5, 5, 3))
  assert float(losses.l1(pred=a, target=b)) == pytest.approx(np.abs(a - b).mean(), rel=1e-6)


def test_kl_like_is_mean_square_of_z():
  # mean([1, -2, 3, 0]^2) = (1 + 4 + 9) / 4 = 3.5
  z = jnp.asarray([1.0, -2.0, 3.0, 0.0]).reshape(1, 2, 2, 1)
  assert float(losses.kl_like(z=z)) == pytest.approx(3.5)
  assert losses.kl_like(z=z.astype(jnp.bfloat16)).dtype == jnp.float32


def test_spatial_l2_normalize_by_hand():
  # One channel holding [3, 4] over space -> [0.6, 0.8]; the second channel
  # [0, 2] -> [0, 1]: per sample and channel, over H and W jointly.
  phi = jnp.asarray([[[[3.0, 0.0]], [[4.0, 2.0]]]])  # [1, 2, 1, 2]
  out = np.asarray(losses.spatial_l2_normalize(phi))
  np.testing.assert_allclose(out[0, :, 0, 0], [0.6, 0.8], rtol=1e-6)
  np.testing.assert_allclose(out[0, :, 0, 1], [0.0, 1.0], rtol=1e-6)
  # An all-zero map stays zero (eps 1e-12 on the squared sum, no NaN).
  np.testing.assert_array_equal(
    np.asarray(losses.spatial_l2_normalize(jnp.zeros((1, 2, 2, 1)))), 0.0
  )
  x = _rand(2, (3, 4, 5, 6))
  ref = x / np.sqrt((x.astype(np.float64) ** 2).sum(axis=(1, 2), keepdims=True))
  np.testing.assert_allclose(np.asarray(losses.spatial_l2_normalize(x)), ref, rtol=1e-5)


def test_gram_by_hand():
  # phi over 2 pixels with channels (1, 2) and (3, 4):
  # phi^T phi = [[1*1 + 3*3, 1*2 + 3*4], [., 2*2 + 4*4]] = [[10, 14], [14, 20]]
  # divided by H * W = 2 -> [[5, 7], [7, 10]]
  phi = jnp.asarray([[[[1.0, 2.0], [3.0, 4.0]]]])  # [1, 1, 2, 2]
  np.testing.assert_allclose(np.asarray(losses.gram(phi))[0], [[5.0, 7.0], [7.0, 10.0]])
  x = _rand(3, (2, 3, 4, 5))
  flat = x.reshape(2, 12, 5).astype(np.float64)
  ref = np.einsum("bnc,bnd->bcd", flat, flat) / 12
  np.testing.assert_allclose(np.asarray(losses.gram(x)), ref, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------
# The perceptual loss
# ---------------------------------------------------------------------------


def _np_normalize(phi):
  phi = phi.astype(np.float64)
  return phi / np.sqrt(np.maximum((phi**2).sum(axis=(1, 2), keepdims=True), 1e-12))


def _np_gram(phi):
  b, h, w, c = phi.shape
  flat = phi.reshape(b, h * w, c)
  return np.einsum("bnc,bnd->bcd", flat, flat) / (h * w)


def _np_perceptual(source, translation, exemplar):
  """docs/method.md §2: sum_i (i/5) |phi_i(t) - phi_i(s)|_1 and
  sum_i |G(phi_i(t)) - G(phi_i(e))|_1."""
  content = style = 0.0
  for i, (s, t, e) in enumerate(zip(source, translation, exemplar), start=1):
    s, t, e = _np_normalize(s), _np_normalize(t), _np_normalize(e)
    content += (i / 5) * np.abs(t - s).mean()
    style += np.abs(_np_gram(t) - _np_gram(e)).mean()
  return content, style


def _vgg_like_maps(seed, batch=2):
  """Five non-negative maps shaped like relu1_1..relu5_1 of a 16x16 image."""
  shapes = [
    (batch, 16, 16, 4),
    (batch, 8, 8, 6),
    (batch, 4, 4, 8),
    (batch, 2, 2, 8),
    (batch, 1, 1, 8),
  ]
  return [_rand(seed * 10 + i, s, 0.0, 2.0) for i, s in enumerate(shapes)]


def test_content_layer_weights_are_0p2_to_1():
  assert losses.CONTENT_LAYER_WEIGHTS == pytest.approx((0.2, 0.4, 0.6, 0.8, 1.0))
  assert losses.STYLE_LAYER_WEIGHTS == (1.0,) * 5


def test_perceptual_one_layer_by_hand():
  # One channel of 2 pixels. source [3, 4] -> [0.6, 0.8]; translation [4, 3]
  # -> [0.8, 0.6]; content = mean(|[0.2, -0.2]|) = 0.2 at weight 0.2 -> 0.04.
  # Gram of a unit-norm single channel over 2 pixels = 1 / 2 for both the
  # translation and the exemplar [0, 5] -> [0, 1], so style = 0.
  s = jnp.asarray([3.0, 4.0]).reshape(1, 1, 2, 1)
  t = jnp.asarray([4.0, 3.0]).reshape(1, 1, 2, 1)
  e = jnp.asarray([0.0, 5.0]).reshape(1, 1, 2, 1)
  content, style = losses.perceptual(source=[s], translation=[t], exemplar=[e])
  assert float(content) == pytest.approx(0.04, rel=1e-6)
  assert float(style) == pytest.approx(0.0, abs=1e-7)


def test_perceptual_matches_numpy():
  src, trn, exm = _vgg_like_maps(1), _vgg_like_maps(2), _vgg_like_maps(3)
  content, style = losses.perceptual(source=src, translation=trn, exemplar=exm)
  ref_c, ref_s = _np_perceptual(src, trn, exm)
  assert float(content) == pytest.approx(ref_c, rel=1e-5)
  assert float(style) == pytest.approx(ref_s, rel=1e-5)
  assert content.dtype == style.dtype == jnp.float32
  # Content compares with the SOURCE, style with the EXEMPLAR.
  c2, s2 = losses.perceptual(source=src, translation=trn, exemplar=src)
  assert float(c2) == pytest.approx(ref_c, rel=1e-5)
  assert abs(float(s2) - ref_s) > 1e-3 * ref_s
  c3, _ = losses.perceptual(source=trn, translation=trn, exemplar=exm)
  assert float(c3) == 0.0


def test_perceptual_gradient_reaches_only_the_translation():
  """docs/method.md §1.8: gradients flow into x_AB / x_BA, not into the references."""
  src, trn, exm = _vgg_like_maps(1), _vgg_like_maps(2), _vgg_like_maps(3)

  def total(s, t, e):
    c, st = losses.perceptual(source=s, translation=t, exemplar=e)
    return c + st

  g_s, g_t, g_e = jax.grad(total, argnums=(0, 1, 2))(src, trn, exm)
  assert all(float(jnp.abs(g).max()) == 0.0 for g in g_s + g_e)
  assert all(float(jnp.abs(g).max()) > 0.0 for g in g_t)


# ---------------------------------------------------------------------------
# Whole objectives
# ---------------------------------------------------------------------------


def _fake_outputs(batch=2, size=6, channels=4):
  names = ["x_aa", "x_bb", "x_ab", "x_ba", "x_aba", "x_bab"]
  out = {k: _rand(10 + i, (batch, size, size, 3)) for i, k in enumerate(names)}
  out["z"] = _rand(20, (2 * batch, size, size, channels), -2.0, 2.0)
  out["z_aba"] = _rand(21, (batch, size, size, channels), -2.0, 2.0)
  out["z_bab"] = _rand(22, (batch, size, size, channels), -2.0, 2.0)
  return out


def test_stage2_generator_total_is_the_weighted_sum():
  """docs/method.md §2: 10 LS_G x2 + 100 recon + 100 cycle + 2 * 0.1 mean(z^2)
  + 0.1 (z_aba, z_bab) + l_s style + l_c content (weights here all distinct)."""
  out = _fake_outputs()
  x_a, x_b = _rand(30, (2, 6, 6, 3)), _rand(31, (2, 6, 6, 3))
  d_fake_a, d_fake_b = _rand(32, (2, 1, 1, 1)), _rand(33, (2, 1, 1, 1))
  feats = {k: _vgg_like_maps(40 + i) for i, k in enumerate(("a", "b", "ab", "ba"))}
  total, terms = losses.stage2_generator(
    outputs=out,
    x_a=x_a,
    x_b=x_b,
    d_fake_a=d_fake_a,
    d_fake_b=d_fake_b,
    weights=WEIGHTS,
    vgg_feats=feats,
  )

  mae = lambda u, v: np.abs(u.astype(np.float64) - v).mean()
  msq = lambda u: (u.astype(np.float64) ** 2).mean()
  ref = dict(
    gan=msq(d_fake_a - 1) + msq(d_fake_b - 1),
    recon=mae(out["x_aa"], x_a) + mae(out["x_bb"], x_b),
    cycle=mae(out["x_aba"], x_a) + mae(out["x_bab"], x_b),
    kl=2.0 * msq(out["z"]),  # the shared-z term counted twice
    kl_cycle=msq(out["z_aba"]) + msq(out["z_bab"]),
  )
  c_ab, s_ab = _np_perceptual(feats["a"], feats["ab"], feats["b"])
  c_ba, s_ba = _np_perceptual(feats["b"], feats["ba"], feats["a"])
  ref["content"], ref["style"] = c_ab + c_ba, s_ab + s_ba
  ref_total = sum(WEIGHTS[k] * v for k, v in ref.items())
  for k, v in ref.items():
    assert float(terms[k]) == pytest.approx(v, rel=1e-5), k
  assert float(total) == pytest.approx(ref_total, rel=1e-5)
  assert float(terms["total"]) == float(total)
  assert ref["kl"] == pytest.approx(2.0 * float(losses.kl_like(z=out["z"])), rel=1e-6)


def test_stage2_generator_without_cycle_or_vgg_has_no_such_terms():
  out = {k: v for k, v in _fake_outputs().items() if k not in ("x_aba", "x_bab", "z_aba", "z_bab")}
  x_a, x_b = _rand(30, (2, 6, 6, 3)), _rand(31, (2, 6, 6, 3))
  d = _rand(32, (2, 1, 1, 1))
  total, terms = losses.stage2_generator(
    outputs=out, x_a=x_a, x_b=x_b, d_fake_a=d, d_fake_b=d, weights=WEIGHTS, vgg_feats=None
  )
  assert set(terms) == {"gan", "recon", "kl", "total"}
  expected = (
    WEIGHTS["gan"] * terms["gan"] + WEIGHTS["recon"] * terms["recon"] + WEIGHTS["kl"] * terms["kl"]
  )
  assert float(total) == pytest.approx(float(expected), rel=1e-6)


def test_stage2_discriminator_by_hand():
  # D_A: real [1, 0] -> 0.5, fake [0, 2] -> 2, LS_D = 1.25
  # D_B: real all 1 -> 0, fake all 0 -> 0, LS_D = 0
  # total = gan (3) * 1.25 = 3.75
  real_a = jnp.asarray([1.0, 0.0]).reshape(2, 1, 1, 1)
  fake_a = jnp.asarray([0.0, 2.0]).reshape(2, 1, 1, 1)
  real_b, fake_b = jnp.ones((2, 1, 1, 1)), jnp.zeros((2, 1, 1, 1))
  total, terms = losses.stage2_discriminator(
    d_real_a=real_a, d_fake_a=fake_a, d_real_b=real_b, d_fake_b=fake_b, gan_weight=3.0
  )
  assert float(total) == pytest.approx(3.75)
  assert float(terms["d_a"]) == pytest.approx(1.25)
  assert float(terms["d_b"]) == 0.0
  assert float(terms["d_total"]) == float(total)
  # Logit means: real (0.5 + 1) / 2, fake (1 + 0) / 2.
  assert float(terms["d_real_mean"]) == pytest.approx(0.75)
  assert float(terms["d_fake_mean"]) == pytest.approx(0.5)


def test_stage1_generator_by_hand():
  # x_hat - x = [1, -1, 0, 2] -> L1 1.0; z [1, 1, 1, 1] -> 1.0;
  # D(x_hat) [0, 1] -> LS_G (1 + 0) / 2 = 0.5.
  # total = 10 * 0.5 + 100 * 1.0 + 0.1 * 1.0 = 105.1
  x = jnp.zeros((1, 2, 2, 1))
  x_hat = jnp.asarray([1.0, -1.0, 0.0, 2.0]).reshape(1, 2, 2, 1)
  z = jnp.ones((1, 2, 2, 1))
  d_fake = jnp.asarray([0.0, 1.0]).reshape(1, 1, 2, 1)
  total, terms = losses.stage1_generator(
    x=x, x_hat=x_hat, z=z, d_fake=d_fake, weights=dict(gan=10.0, recon=100.0, kl=0.1)
  )
  assert float(terms["gan"]) == pytest.approx(0.5)
  assert float(terms["recon"]) == pytest.approx(1.0)
  assert float(terms["kl"]) == pytest.approx(1.0)
  assert float(total) == pytest.approx(105.1, rel=1e-6)


def test_losses_are_float32_for_bfloat16_inputs():
  a = jnp.asarray(_rand(0, (2, 4, 4, 3)), jnp.bfloat16)
  b = jnp.asarray(_rand(1, (2, 4, 4, 3)), jnp.bfloat16)
  for v in (
    losses.l1(pred=a, target=b),
    losses.lsgan_generator(fake=a),
    losses.lsgan_discriminator(real=a, fake=b),
    losses.gram(a),
    losses.spatial_l2_normalize(a),
  ):
    assert v.dtype == jnp.float32


def test_munit_generator_by_hand():
  """Each MUNIT term on two- or four-element maps (losses.munit_generator)."""

  def a(*v):
    return jnp.asarray(v, jnp.float32).reshape(1, 1, len(v), 1)

  outputs = dict(
    x_aa=a(1.0, -1.0),
    x_bb=a(0.5, 0.5),  # recon: 1 + 0
    c_a=a(1.0, 2.0, 3.0, 4.0),
    c_ab=a(1.0, 2.0, 3.0, 0.0),  # |4| / 4 = 1
    c_b=a(0.0, 0.0, 0.0, 0.0),
    c_ba=a(0.5, 0.5, 0.5, 0.5),  # 0.5
    prior_b=a(1.0, -1.0),
    s_ab=a(0.0, 0.0),  # the drawn code against Es_B(x_ab): 1
    prior_a=a(0.0, 0.0),
    s_ba=a(0.0, 2.0),  # 1
    x_aba=a(2.0, 0.0),
    x_bab=a(0.5, 0.5),
  )  # cycle: 1 + 0
  kw = dict(
    x_a=a(0.0, 0.0),
    x_b=a(0.5, 0.5),
    d_fake_a=a(0.0, 2.0),
    d_fake_b=a(1.0, 1.0),  # LS_G: 1 + 0
    weights=dict(gan=1.0, recon=10.0, content_code=1.0, style_code=1.0, cycle=10.0),
  )
  total, t = losses.munit_generator(outputs=outputs, **kw)
  expected = dict(gan=1.0, recon=1.0, content_code=1.5, style_code=2.0, cycle=1.0)
  assert {k: float(v) for k, v in t.items() if k != "total"} == pytest.approx(expected)
  # 1 * 1 + 10 * 1 + 1 * 1.5 + 1 * 2 + 10 * 1
  assert float(total) == float(t["total"]) == pytest.approx(24.5)
  # Without the cycle outputs (weight 0 in MUNIT's paper) there is no cycle term.
  no_cycle = {k: v for k, v in outputs.items() if k not in ("x_aba", "x_bab")}
  total, t = losses.munit_generator(outputs=no_cycle, **kw)
  assert "cycle" not in t and float(total) == pytest.approx(14.5)
