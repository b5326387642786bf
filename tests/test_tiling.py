"""Tiled translation (egsc_jax/tiling.py) against the whole-image pass.

Random networks with kernels ten times training's initial scale (at that
scale the outputs are nearly constant and any tiler would pass): their
translations span most of [-1, 1]. The tolerance, 1e-4 on outputs in
[-1, 1] (a fortieth of an 8-bit level): the tiled statistics are the same sums
taken in another order, float32 rounding (about 1e-7 relative) amplified by
the network; measured 2-3e-6 here.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from egsc_jax import api, config_lib, steps, tiling
from egsc_jax.models import build_models, layers

SIZE = (160, 192)  # 5 x 6 cores of 32 in windows of 128 (halo 48)
CORE = 32


def _model(**overrides):
  m = config_lib.base_config().model
  m.update(dict(ngf=4, n_downsample=2, n_enc_res=1, n_dec_res=1, n_shared=1, **overrides))
  models = build_models(m)
  x = jnp.zeros((1, 32, 32, 3))
  shapes = jax.eval_shape(
    lambda: (
      models.generator.init({"params": jax.random.key(0), "noise": jax.random.key(0)}, x, x),
      models.exemplar.init(jax.random.key(0), x),
    )
  )
  rng = np.random.default_rng(0)

  def random(leaf):
    # Kernels N(0, 0.18) (10 times training's initial scale), biases 0.
    if leaf.ndim < 4:
      return jnp.zeros(leaf.shape, leaf.dtype)
    return jnp.asarray(rng.normal(0.0, 0.18, leaf.shape), leaf.dtype)

  g, f = jax.tree.map(random, shapes)
  return models, g["params"], {"a": f["params"], "b": jax.tree.map(random, f["params"])}


def _u8(x):
  return np.round((x + 1) * 127.5).astype(np.uint8)


def _ramp():
  """A smooth colour gradient [160, 192, 3] uint8."""
  yy, xx = np.mgrid[0 : SIZE[0], 0 : SIZE[1]] / np.array(SIZE).reshape(2, 1, 1)
  return _u8(np.stack([yy, xx, (xx + yy) / 2], -1) * 1.6 - 0.8)


def _translators(models, params, frozen):
  kw = dict(image_size=(32, 32), native_size=True, batch_size=1)
  whole = api.Translator(models, params, frozen, tile_size=None, **kw)
  tiled = api.Translator(models, params, frozen, tile_size=CORE, **kw)
  return whole, tiled


def test_tiles_partition_the_image_on_the_down_sampling_grid():
  grid = tiling.tiles((160, 200), core=30, margin=48, align=4)  # core rounds up to 32
  cover = np.zeros((160, 200), int)
  for t in grid:
    y0, y1, x0, x1 = t.core
    v0, v1, u0, u1 = t.window
    cover[y0:y1, x0:x1] += 1
    assert (v1 - v0, u1 - u0) == (128, 128)  # one shape: one compile per pass
    assert all(v % 4 == 0 for v in t.window)
    # At least the halo between core and window edge, unless the window's edge
    # is the image's (there the untiled pass pads the same border).
    assert v0 == 0 or y0 - v0 >= 48
    assert u0 == 0 or x0 - u0 >= 48
    assert v1 == 160 or v1 - y1 >= 48
    assert u1 == 200 or u1 - x1 >= 48
  np.testing.assert_array_equal(cover, 1)
  assert len(grid) == 5 * 7
  with pytest.raises(ValueError, match="multiples of 4"):
    tiling.tiles((162, 200), core=32, margin=48, align=4)


def test_given_the_statistics_an_output_pixel_depends_on_pixels_within_the_radius():
  models, params, frozen = _model(content_sign_norm=True, test_noise=False)
  radius = tiling.receptive_radius(models)
  n, y, x = 112, 56, 56
  image = jax.random.uniform(jax.random.key(1), (1, n, n, 3), minval=-1, maxval=1)
  style = steps.conditioning(models, frozen, image, "b")[1]

  def translate(image, **stats):
    mask, _ = steps.conditioning(models, frozen, image, "a")
    return models.generator.apply(
      {"params": params}, image, source="a", mask=mask, style=style, noise=False,
      method="translate", mutable=["intermediates"], **stats,
    )  # fmt: skip

  # The image's own statistics at the two non-local layers, held constant.
  out, sown = translate(image)
  stats = dict(
    sign_norm_stats=layers.sign_norm_stats(
      sown["intermediates"]["encoder_a"]["sign_norm_input"][0]
    ),
    adain_stats=layers.moments(sown["intermediates"]["decoder_b"]["adain_input"][0]),
  )
  np.testing.assert_allclose(translate(image, **stats)[0], out, atol=1e-6)

  def pixel(image):
    return jnp.sum(translate(image, **stats)[0][0, y, x])

  grad = np.abs(np.asarray(jax.jit(jax.grad(pixel))(image)))[0].sum(-1)
  rows, cols = np.nonzero(grad)
  reach = max(np.abs(rows - y).max(), np.abs(cols - x).max())
  assert reach <= radius
  assert reach >= radius - 8  # a tight bound, not a generous one


@pytest.mark.parametrize(
  "variant",
  [
    dict(content_sign_norm=True, adain_mode="official_std", test_noise=True),
    dict(adain_mode="standard", test_noise=False),
    dict(use_feature_mask=False, use_adain=False, test_noise=True),  # UNIT
  ],
  ids=["sign_norm_noise", "standard", "unit"],
)
def test_tiled_translation_style_and_mask_equal_the_whole_image(variant):
  models, params, frozen = _model(**variant)
  whole, tiled = _translators(models, params, frozen)
  rng = np.random.default_rng(0)
  source = rng.integers(0, 256, SIZE + (3,), np.uint8)
  exemplars = [rng.integers(0, 256, SIZE + (3,), np.uint8), _ramp()]
  assert tiling.needs_tiles(SIZE, models, CORE) and not tiling.needs_tiles(SIZE, models, None)
  want = whole.translate_network([source], exemplars)[0]
  got = tiled.translate_network([source], exemplars)[0]
  assert want.shape == got.shape == (2,) + SIZE + (3,)
  assert want.std() > 0.1  # the outputs vary: a blank image would match anyway
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
  if models.use_adain:
    a, b = (t.style(exemplars, "b", size=SIZE) for t in (whole, tiled))
    np.testing.assert_allclose(b.mean, a.mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.var, a.var, rtol=1e-5, atol=1e-6)
  if models.use_mask:
    np.testing.assert_allclose(
      tiled.mask([source], "a")[0], whole.mask([source], "a")[0], atol=1e-6
    )


def test_no_seams_on_a_smooth_gradient_where_per_tile_statistics_leave_them():
  models, params, frozen = _model(content_sign_norm=True, test_noise=False)
  whole, tiled = _translators(models, params, frozen)
  exemplar = np.random.default_rng(2).integers(0, 256, SIZE + (3,), np.uint8)
  want = whole.translate_network([_ramp()], [exemplar])[0][0]
  got = tiled.translate_network([_ramp()], [exemplar])[0][0]
  seams = np.arange(CORE, SIZE[1], CORE)
  at_seams = np.concatenate([want[:, seams - 1], want[:, seams]], axis=1)
  got_seams = np.concatenate([got[:, seams - 1], got[:, seams]], axis=1)
  np.testing.assert_allclose(got_seams, at_seams, rtol=0, atol=1e-4)

  # What the test guards against: each tile normalised by its own statistics.
  x = api.to_network_input(_ramp(), SIZE)
  style = whole.style([exemplar], "b", size=SIZE)
  naive = np.empty_like(want)
  one_tile = jax.jit(functools.partial(steps.translate_with_style, models=models, direction="a2b"))
  for t in tiling.tiles(SIZE, core=CORE, margin=tiling.halo(models), align=4):
    (v0, v1, u0, u1), (y0, y1, x0, x1) = t.window, t.core
    y = one_tile(params, frozen, x[None, v0:v1, u0:u1], (style.mean, style.var), jax.random.key(0))
    r0, r1, c0, c1 = t.core_in_window()
    naive[y0:y1, x0:x1] = np.asarray(y)[0, r0:r1, c0:c1]
  naive_seams = np.concatenate([naive[:, seams - 1], naive[:, seams]], axis=1)
  assert np.abs(naive_seams - at_seams).max() > 0.1
