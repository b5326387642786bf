"""EGSC-IT networks: exact parameter counts, shapes, layer order, AdaIN, mask.

Parameter counts are derived here from layer shapes (docs/method.md §1.2, 1.3, 1.7), not
read back from the modules, and checked against docs/method.md §1.3's rounded figures.
Shapes come from `jax.eval_shape`, so the 256x512 checks cost no compute.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from egsc_jax import config_lib, steps
from egsc_jax import state as state_lib
from egsc_jax.models import build_models, layers
from egsc_jax.models.encoders import DomainDecoder, DomainEncoder
from egsc_jax.models.generator import Generator
from egsc_jax.models.munit import MunitGenerator

RNGS = {"params": jax.random.key(0), "noise": jax.random.key(1)}


# ---------------------------------------------------------------------------
# Parameter counts, by hand from layer shapes
# ---------------------------------------------------------------------------


def conv_params(k, cin, cout):
  """A k x k (transposed) conv with bias."""
  return k * k * cin * cout + cout


def res_params(c):
  return 2 * conv_params(3, c, c)


def encoder_params(ngf, n_down, n_res):
  """7x7 conv -> n_down stride-2 3x3 convs (channels x2) -> n_res blocks."""
  n = conv_params(7, 3, ngf)
  for i in range(n_down):
    n += conv_params(3, ngf * 2**i, ngf * 2 ** (i + 1))
  return n + n_res * res_params(ngf * 2**n_down)


def decoder_params(ngf, n_up, n_res):
  """n_res blocks -> n_up stride-2 3x3 deconvs (channels / 2) -> 1x1 deconv to 3."""
  c = ngf * 2**n_up
  n = n_res * res_params(c)
  for i in range(n_up):
    n += conv_params(3, c // 2**i, c // 2 ** (i + 1))
  return n + conv_params(1, ngf, 3)


def discriminator_params(ndf, n_layers):
  """4x4 convs 3 -> ndf -> 2ndf ..., instance norm (scale, bias) on layers >= 1,
  then a 1x1 conv to one channel."""
  n = conv_params(4, 3, ndf)
  for i in range(1, n_layers):
    n += conv_params(4, ndf * 2 ** (i - 1), ndf * 2**i) + 2 * ndf * 2**i
  return n + conv_params(1, ndf * 2 ** (n_layers - 1), 1)


def _config(n_downsample):
  c = config_lib.base_config()
  c.model.n_downsample = n_downsample
  return c


def _param_shapes(config, image_shape):
  """{network name: abstract params}, without allocating anything."""
  models = build_models(config.model)
  x = jax.ShapeDtypeStruct((1, *image_shape, 3), jnp.float32)
  gen = jax.eval_shape(functools.partial(models.generator.init, noise=False), RNGS, x, x)["params"]
  return {
    "generator": gen,
    "encoder_a": gen["encoder_a"],
    "encoder_b": gen["encoder_b"],
    "shared": {k: gen[k] for k in ("shared_encoder", "shared_generator")},
    "decoder_a": gen["decoder_a"],
    "decoder_b": gen["decoder_b"],
    "exemplar": jax.eval_shape(models.exemplar.init, RNGS, x)["params"],
    "discriminator": jax.eval_shape(models.discriminator.init, RNGS, x)["params"],
    "autoencoder": jax.eval_shape(functools.partial(models.autoencoder.init, noise=False), RNGS, x)[
      "params"
    ],
  }


# (n_downsample, image shape, expected counts by formula, docs/method.md §1.3 in millions)
MNIST_SINGLE = (0, (28, 28))
RGB = (2, (64, 128))


@pytest.mark.parametrize("n_down,image_shape", [MNIST_SINGLE, RGB], ids=["mnist_single", "rgb"])
def test_parameter_counts_match_layer_shapes(n_down, image_shape):
  ngf = ndf = 64
  shapes = _param_shapes(_config(n_down), image_shape)
  c = ngf * 2**n_down
  expected = {
    "encoder_a": encoder_params(ngf, n_down, 3),
    "encoder_b": encoder_params(ngf, n_down, 3),
    "shared": 2 * res_params(c),
    "decoder_a": decoder_params(ngf, n_down, 3),
    "decoder_b": decoder_params(ngf, n_down, 3),
    "exemplar": encoder_params(ngf, n_down, 3),
    "discriminator": discriminator_params(ndf, 4),
    # Stage 1: encoder + 2 single blocks (latent, content) + decoder.
    "autoencoder": (
      encoder_params(ngf, n_down, 3) + 2 * res_params(c) + decoder_params(ngf, n_down, 3)
    ),
  }
  expected["generator"] = sum(
    expected[k] for k in ("encoder_a", "encoder_b", "shared", "decoder_a", "decoder_b")
  )
  got = {k: state_lib.param_count(v) for k, v in shapes.items()}
  assert got == expected


def test_parameter_counts_literal_values():
  """The formulas above, evaluated: guards the formulas themselves."""
  # MNIST-Single: 7x7 conv 3->64 and 3 blocks of 64 at 28x28.
  assert encoder_params(64, 0, 3) == 9472 + 3 * 73856 == 231_040
  assert decoder_params(64, 0, 3) == 3 * 73856 + 195 == 221_763
  # RGB: docs/method.md §1.3's table.
  assert encoder_params(64, 2, 3) == 3_918_976
  assert 2 * res_params(256) == 2_360_320
  assert decoder_params(64, 2, 3) == 3_909_507
  assert discriminator_params(64, 4) == 2_758_849


def test_rgb_counts_agree_with_spec_table():
  """docs/method.md §1.3: E_X 3.92M, shared 2.36M, G_Y 3.91M, F_X 3.92M, D_X 2.76M."""
  got = {k: state_lib.param_count(v) for k, v in _param_shapes(_config(2), (256, 512)).items()}
  spec_millions = {
    "encoder_a": 3.92,
    "encoder_b": 3.92,
    "shared": 2.36,
    "decoder_a": 3.91,
    "decoder_b": 3.91,
    "exemplar": 3.92,
    "discriminator": 2.76,
  }
  for name, millions in spec_millions.items():
    assert round(got[name] / 1e6, 2) == millions, (name, got[name])


def test_parameter_counts_do_not_depend_on_image_size():
  a = _param_shapes(_config(2), (64, 128))
  b = _param_shapes(_config(2), (256, 512))
  assert jax.tree.map(lambda u: u.shape, a) == jax.tree.map(lambda u: u.shape, b)


def test_generator_layer_shapes_rgb():
  gen = _param_shapes(_config(2), (64, 64))["generator"]
  enc = gen["encoder_a"]
  assert enc["conv_in"]["conv"]["kernel"].shape == (7, 7, 3, 64)
  assert enc["down_0"]["conv"]["kernel"].shape == (3, 3, 64, 128)
  assert enc["down_1"]["conv"]["kernel"].shape == (3, 3, 128, 256)
  assert sorted(gen["shared_encoder"]) == ["res_0"]
  assert sorted(gen["shared_generator"]) == ["res_0"]
  dec = gen["decoder_b"]
  # flax ConvTranspose kernels are [kh, kw, in, out].
  assert dec["up_0"]["deconv"]["kernel"].shape == (3, 3, 256, 128)
  assert dec["up_1"]["deconv"]["kernel"].shape == (3, 3, 128, 64)
  assert dec["deconv_out"]["deconv"]["kernel"].shape == (1, 1, 64, 3)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(gen))


def test_bfloat16_compute_keeps_float32_params_and_outputs():
  c = _config(0)
  c.model.compute_dtype = "bfloat16"
  models = build_models(c.model)
  x = jax.ShapeDtypeStruct((2, 28, 28, 3), jnp.float32)
  variables = jax.eval_shape(functools.partial(models.generator.init, noise=False), RNGS, x, x)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  out = jax.eval_shape(functools.partial(models.generator.apply, noise=False), variables, x, x)
  assert out["x_ab"].dtype == jnp.float32
  d = jax.eval_shape(models.discriminator.init, RNGS, x)
  assert jax.eval_shape(models.discriminator.apply, d, x).dtype == jnp.float32


def test_unknown_compute_dtype_is_a_clear_error():
  c = _config(0)
  c.model.compute_dtype = "float16"
  with pytest.raises(ValueError, match="compute_dtype"):
    build_models(c.model)


# ---------------------------------------------------------------------------
# Output shapes
# ---------------------------------------------------------------------------


def _conditioning_shapes(batch, h, w, c):
  mask = jax.ShapeDtypeStruct((batch, h, w, c), jnp.float32)
  stat = jax.ShapeDtypeStruct((batch, 1, 1, c), jnp.float32)
  return mask, (stat, stat)


@pytest.mark.parametrize(
  "n_down,image_shape,latent_shape",
  [
    (0, (28, 28), (28, 28, 64)),
    (2, (64, 128), (16, 32, 256)),
    (2, (256, 512), (64, 128, 256)),
  ],
  ids=["mnist_single", "rgb64x128", "gta256x512"],
)
def test_generator_output_shapes(n_down, image_shape, latent_shape):
  models = build_models(_config(n_down).model)
  batch = 3
  x = jax.ShapeDtypeStruct((batch, *image_shape, 3), jnp.float32)
  mask, style = _conditioning_shapes(batch, *latent_shape)
  variables = jax.eval_shape(functools.partial(models.generator.init, noise=False), RNGS, x, x)

  def apply(v, x_a, x_b, mask, style):
    return models.generator.apply(
      v, x_a, x_b, mask_a=mask, mask_b=mask, style_a=style, style_b=style, noise=True, rngs=RNGS
    )

  out = jax.eval_shape(apply, variables, x, x, mask, style)
  for k in ("x_aa", "x_bb", "x_ab", "x_ba", "x_aba", "x_bab"):
    assert out[k].shape == (batch, *image_shape, 3), k
  assert out["z"].shape == (2 * batch, *latent_shape)
  assert out["z_aba"].shape == out["z_bab"].shape == (batch, *latent_shape)
  # F's feature f has exactly the content's shape (docs/method.md §1.4, A2).
  f_vars = jax.eval_shape(models.exemplar.init, RNGS, x)
  assert jax.eval_shape(models.exemplar.apply, f_vars, x).shape == (batch, *latent_shape)
  ae_vars = jax.eval_shape(functools.partial(models.autoencoder.init, noise=False), RNGS, x)
  x_hat, z = jax.eval_shape(
    functools.partial(models.autoencoder.apply, noise=True, rngs=RNGS), ae_vars, x
  )
  assert x_hat.shape == (batch, *image_shape, 3)
  assert z.shape == (batch, *latent_shape)


@pytest.mark.parametrize(
  "image_shape,patch_shape",
  [
    ((28, 28), (2, 2)),
    ((112, 112), (7, 7)),
    ((128, 128), (8, 8)),
    ((256, 512), (16, 32)),
  ],
)
def test_discriminator_patch_map_sizes(image_shape, patch_shape):
  """docs/method.md §1.7: 28 -> 2x2, 112 -> 7x7, 128 -> 8x8, 256x512 -> 16x32."""
  models = build_models(config_lib.base_config().model)
  x = jax.ShapeDtypeStruct((2, *image_shape, 3), jnp.float32)
  variables = jax.eval_shape(models.discriminator.init, RNGS, x)
  out = jax.eval_shape(models.discriminator.apply, variables, x)
  assert out.shape == (2, *patch_shape, 1)


# ---------------------------------------------------------------------------
# Layers against independent references
# ---------------------------------------------------------------------------


def _np_conv(x, kernel, bias, *, stride, padding):
  """Plain numpy convolution, NHWC x HWIO; padding 'VALID' or TF's 'SAME'
  (output ceil(H / stride), the extra pixel of padding at the end)."""
  x, kernel, bias = (np.asarray(u, np.float64) for u in (x, kernel, bias))
  k = kernel.shape[0]
  if padding == "SAME":
    pads = []
    for size in x.shape[1:3]:
      total = max((-(-size // stride) - 1) * stride + k - size, 0)
      pads.append((total // 2, total - total // 2))
    x = np.pad(x, ((0, 0), *pads, (0, 0)))
  ho = (x.shape[1] - k) // stride + 1
  wo = (x.shape[2] - k) // stride + 1
  out = np.zeros((x.shape[0], ho, wo, kernel.shape[3]))
  for i in range(k):
    for j in range(k):
      patch = x[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride]
      out += patch @ kernel[i, j]
  return out + bias


def _lrelu(x):
  return np.where(x > 0, x, 0.2 * x)


def _randomize(params, seed):
  """Every leaf random and non-zero, so biases and norm parameters matter."""
  rs = np.random.RandomState(seed)
  return jax.tree.map(lambda l: jnp.asarray(0.1 * rs.normal(size=l.shape), jnp.float32), params)


def test_encoder_matches_reflect_pad_reference():
  """7x7 conv, stride-2 3x3 conv, residual block: reflect pad + VALID conv,
  LeakyReLU 0.2, ReLU only inside the block, nothing after the sum."""
  enc = DomainEncoder(ngf=4, n_downsample=1, n_res=1)
  x = jax.random.normal(jax.random.key(3), (2, 10, 12, 3))
  p = _randomize(enc.init(jax.random.key(0), x)["params"], seed=1)

  def rconv(h, q, stride):
    k = q["conv"]["kernel"].shape[0]
    pad = (k - 1) // 2
    hp = np.pad(np.asarray(h), ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    return _np_conv(hp, q["conv"]["kernel"], q["conv"]["bias"], stride=stride, padding="VALID")

  h = _lrelu(rconv(x, p["conv_in"], 1))
  h = _lrelu(rconv(h, p["down_0"], 2))
  y = np.maximum(rconv(h, p["res_0"]["conv1"], 1), 0.0)
  h = h + rconv(y, p["res_0"]["conv2"], 1)
  out = enc.apply({"params": p}, x)
  assert out.shape == (2, 5, 6, 8)
  np.testing.assert_allclose(np.asarray(out), h, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("conv_impl", layers.CONV_IMPLS)
def test_discriminator_matches_spec_layer_order(conv_impl):
  """docs/method.md §1.7: conv-LReLU-LReLU; (conv-LReLU-IN-LReLU) x3; 1x1 conv-LReLU;
  zero 'SAME' padding; whichever way the stride-2 convs run."""
  d = build_models(config_lib.base_config().model).discriminator.clone(ndf=4, conv_impl=conv_impl)
  # 28 -> 14 -> 7 -> 4 -> 2: the 7 -> 4 conv pads unevenly (1 before, 2 after).
  x = jax.random.normal(jax.random.key(3), (2, 28, 28, 3))
  p = _randomize(d.init(jax.random.key(0), x)["params"], seed=2)
  # Instance norm scale near 1 so the normalised maps are not squashed.
  for i in (1, 2, 3):
    p[f"norm_{i}"]["scale"] = p[f"norm_{i}"]["scale"] + 1.0

  def inorm(h, q):
    mean = h.mean(axis=(1, 2), keepdims=True)
    var = h.var(axis=(1, 2), keepdims=True)  # population variance
    return (h - mean) / np.sqrt(var + 1e-5) * np.asarray(q["scale"]) + np.asarray(q["bias"])

  def conv(h, q, stride):
    return _np_conv(h, q["kernel"], q["bias"], stride=stride, padding="SAME")

  h = _lrelu(_lrelu(conv(np.asarray(x), p["conv_0"], 2)))
  for i in (1, 2, 3):
    h = _lrelu(inorm(_lrelu(conv(h, p[f"conv_{i}"], 2)), p[f"norm_{i}"]))
  h = _lrelu(conv(h, p["conv_out"], 1))
  out = d.apply({"params": p}, x)
  assert out.shape == (2, 2, 2, 1)
  np.testing.assert_allclose(np.asarray(out), h, atol=1e-5, rtol=1e-4)


# D's stride-2 4x4 convs (layers.space_to_depth_conv) at the sizes of its
# layers on 28x28 and 56x56 images (28 -> 14 -> 7 -> 4 -> 2, 56 -> ... -> 4)
# and odd ones. The products are lax's, summed in another order: over k*k*C
# <= 4*4*32 = 512 terms, float32 rounding of the two orders differs by about
# sqrt(512) * 6e-8 = 1.4e-6 of the largest term; 2e-5 of the output's largest
# value leaves a 10x margin, and a wrong regrouping of the kernel or a
# misplaced pixel of padding is off by O(1).
@pytest.mark.parametrize(
  "shape,features",
  [((2, 28, 28, 3), 8), ((2, 7, 7, 16), 32), ((2, 4, 4, 32), 16), ((3, 9, 6, 5), 4)],
)
def test_space_to_depth_conv_equals_strided_conv_and_gradients(shape, features):
  rs = np.random.RandomState(0)
  x = jnp.asarray(rs.normal(size=shape), jnp.float32)
  w = jnp.asarray(rs.normal(size=(4, 4, shape[-1], features)) / 8, jnp.float32)
  g = jnp.asarray(rs.normal(size=(shape[0], -(-shape[1] // 2), -(-shape[2] // 2), features)))

  def lax_conv(x, w):
    return jax.lax.conv_general_dilated(
      x, w, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )

  def s2d_conv(x, w):
    return layers.space_to_depth_conv(x, w, 2)

  ref, ref_vjp = jax.vjp(lax_conv, x, w)
  out, out_vjp = jax.vjp(s2d_conv, x, w)
  for a, b in zip((out, *out_vjp(g)), (ref, *ref_vjp(g))):
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * float(jnp.max(jnp.abs(b))))
  # And against the independent numpy reference.
  np.testing.assert_allclose(
    out,
    _np_conv(x, w, np.zeros(features), stride=2, padding="SAME"),
    rtol=0,
    atol=2e-5 * float(jnp.max(jnp.abs(ref))),
  )


def test_discriminator_parameters_do_not_depend_on_conv_impl():
  """The same initial parameters (names, shapes, values) either way, and one
  set of parameters gives the same patch map through both: checkpoints load
  whichever `model.conv_impl` a run uses."""
  x = jax.random.normal(jax.random.key(3), (2, 28, 28, 3))
  d = build_models(config_lib.base_config().model).discriminator.clone(ndf=8)
  assert d.conv_impl == "xla"  # the default
  d = d.clone(conv_impl="space_to_depth")
  p_s2d = d.init(jax.random.key(0), x)["params"]
  p_xla = d.clone(conv_impl="xla").init(jax.random.key(0), x)["params"]
  assert jax.tree.structure(p_s2d) == jax.tree.structure(p_xla)
  for a, b in zip(jax.tree.leaves(p_s2d), jax.tree.leaves(p_xla)):
    np.testing.assert_array_equal(a, b)
  p = _randomize(p_xla, seed=4)
  y_xla = d.clone(conv_impl="xla").apply({"params": p}, x)
  y_s2d = d.apply({"params": p}, x)
  np.testing.assert_allclose(y_s2d, y_xla, rtol=0, atol=2e-5 * float(jnp.max(jnp.abs(y_xla))))


def test_unknown_conv_impl_is_a_clear_error():
  c = config_lib.base_config()
  c.model.conv_impl = "im2col"
  with pytest.raises(ValueError, match="model.conv_impl"):
    config_lib.validate(c)
  d = build_models(config_lib.base_config().model).discriminator.clone(conv_impl="im2col")
  with pytest.raises(ValueError, match="config.model.conv_impl"):
    d.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))


def _np_moments(x):
  return x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)


def _content_and_style(seed=0, shape=(2, 5, 6, 3)):
  rs = np.random.RandomState(seed)
  # Per-channel scale and offset, so a mean/var mix-up shows.
  x = (rs.normal(size=shape) * np.array([0.5, 2.0, 3.0]) + np.array([1.0, -2.0, 0.5])).astype(
    np.float32
  )
  mean_f = rs.normal(size=(shape[0], 1, 1, shape[3])).astype(np.float32)
  var_f = rs.uniform(0.2, 3.0, size=(shape[0], 1, 1, shape[3])).astype(np.float32)
  return x, mean_f, var_f


def test_moments_are_population_variance():
  x, _, _ = _content_and_style()
  mean, var = layers.moments(jnp.asarray(x))
  assert mean.shape == var.shape == (2, 1, 1, 3)
  assert mean.dtype == var.dtype == jnp.float32
  np.testing.assert_allclose(
    np.asarray(mean), x.mean(axis=(1, 2), keepdims=True), rtol=1e-5, atol=1e-6
  )
  np.testing.assert_allclose(np.asarray(var), x.var(axis=(1, 2), ddof=0, keepdims=True), rtol=1e-5)
  # ... and not the sample variance (30 pixels: a 3% difference).
  assert not np.allclose(np.asarray(var), x.var(axis=(1, 2), ddof=1, keepdims=True), rtol=1e-3)


def test_adain_official_matches_numpy():
  """docs/method.md §1.6: mean_f * (x - mean_x) / (var_x + eps) + var_f."""
  x, mean_f, var_f = _content_and_style()
  eps = 1e-5
  mx, vx = _np_moments(x)
  expected = mean_f * (x - mx) / (vx + eps) + var_f
  got = layers.adain(
    jnp.asarray(x), jnp.asarray(mean_f), jnp.asarray(var_f), mode="official", eps=eps
  )
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-5)
  # The output's statistics: mean var_f, variance mean_f^2 / var_x (not var_f).
  gm, gv = _np_moments(np.asarray(got))
  np.testing.assert_allclose(gm, var_f, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(gv, mean_f**2 * vx / (vx + eps) ** 2, rtol=1e-3)


def test_adain_standard_matches_numpy():
  """sqrt(var_f) * (x - mean_x) / sqrt(var_x + eps) + mean_f."""
  x, mean_f, var_f = _content_and_style(seed=1)
  eps = 1e-5
  mx, vx = _np_moments(x)
  expected = np.sqrt(var_f) * (x - mx) / np.sqrt(vx + eps) + mean_f
  got = layers.adain(
    jnp.asarray(x), jnp.asarray(mean_f), jnp.asarray(var_f), mode="standard", eps=eps
  )
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-5)
  gm, gv = _np_moments(np.asarray(got))
  np.testing.assert_allclose(gm, mean_f, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(gv, var_f, rtol=1e-3)


def test_adain_eps_guards_a_constant_channel_and_keeps_dtype():
  x = jnp.ones((1, 4, 4, 2), jnp.bfloat16)
  out = layers.adain(
    x, jnp.full((1, 1, 1, 2), 2.0), jnp.full((1, 1, 1, 2), 3.0), mode="official", eps=1e-5
  )
  assert out.dtype == jnp.bfloat16
  # (x - mean_x) = 0 exactly, so the output is the shift var_f, not NaN.
  np.testing.assert_array_equal(np.asarray(out, np.float32), 3.0)


def test_adain_unknown_mode_names_the_config_key():
  x = jnp.ones((1, 2, 2, 1))
  with pytest.raises(ValueError, match="adain_mode"):
    layers.adain(x, x[:, :1, :1], x[:, :1, :1], mode="huang", eps=1e-5)


def test_feature_mask_formula_and_range():
  """m = 0.5 + 0.5 sigmoid(f), in (0.5, 1), element-wise (docs/method.md §1.5)."""
  f = np.random.RandomState(0).normal(scale=4.0, size=(2, 7, 7, 5)).astype(np.float32)
  m = np.asarray(layers.feature_mask(jnp.asarray(f, jnp.bfloat16)))
  assert m.dtype == np.float32 and m.shape == f.shape
  m = np.asarray(layers.feature_mask(jnp.asarray(f)))
  np.testing.assert_allclose(m, 0.5 + 0.5 / (1.0 + np.exp(-f)), rtol=1e-6)
  assert m.min() > 0.5 and m.max() < 1.0
  assert m.max() - m.min() > 0.4  # it really spans the range
  np.testing.assert_allclose(np.asarray(layers.feature_mask(jnp.zeros(3))), 0.75)


# ---------------------------------------------------------------------------
# The transfer block and the information flow of the generator
# ---------------------------------------------------------------------------


def _small_decoder_and_inputs(seed=0):
  dec = DomainDecoder(ngf=4, n_upsample=1, n_res=2)
  rs = np.random.RandomState(seed)
  c = jnp.asarray(rs.normal(size=(2, 6, 6, 8)), jnp.float32)
  mask = jnp.asarray(rs.uniform(0.5, 1.0, size=(2, 6, 6, 8)), jnp.float32)
  style = (
    jnp.asarray(rs.normal(size=(2, 1, 1, 8)), jnp.float32),
    jnp.asarray(rs.uniform(0.5, 2.0, size=(2, 1, 1, 8)), jnp.float32),
  )
  params = dec.init(jax.random.key(seed), c)["params"]
  return dec, params, c, mask, style


@pytest.mark.parametrize("mode", ["standard", "official", "official_std"])
def test_decoder_applies_mask_then_adain_before_block_0(mode):
  dec, params, c, mask, style = _small_decoder_and_inputs()
  dec = dec.clone(adain_mode=mode)
  out = dec.apply({"params": params}, c, mask=mask, style=style)
  assert out.shape == (2, 12, 12, 3)
  transferred = layers.adain(c * mask, *style, mode=mode, eps=1e-5)
  ref = dec.apply({"params": params}, transferred)
  np.testing.assert_allclose(np.asarray(out), np.asarray(ref), atol=1e-6)
  # The order matters: AdaIN then mask would differ.
  wrong = dec.apply({"params": params}, layers.adain(c, *style, mode=mode, eps=1e-5) * mask)
  assert np.abs(np.asarray(out) - np.asarray(wrong)).max() > 1e-3
  assert np.all(np.abs(np.asarray(out)) < 1.0)  # tanh


def test_adain_standard_is_scale_invariant_official_is_not():
  """Standard AdaIN ignores a per-channel gain on the content (such as the
  mask's constant part); the authors' formula divides by the variance, so a
  gain k scales its content term by 1/k."""
  rs = np.random.RandomState(3)
  x = jnp.asarray(rs.normal(size=(2, 5, 5, 4)), jnp.float32)
  mean = jnp.asarray(rs.normal(size=(2, 1, 1, 4)), jnp.float32)
  var = jnp.asarray(rs.uniform(0.5, 2.0, size=(2, 1, 1, 4)), jnp.float32)
  a = layers.adain(x, mean, var, mode="standard", eps=0.0)
  b = layers.adain(3.0 * x, mean, var, mode="standard", eps=0.0)
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
  a = layers.adain(x, mean, var, mode="official", eps=0.0)
  b = layers.adain(3.0 * x, mean, var, mode="official", eps=0.0)
  np.testing.assert_allclose(np.asarray(b - var), np.asarray(a - var) / 3.0, rtol=1e-4, atol=1e-5)
  # official_std keeps the official scale and shift but is gain-invariant.
  a = layers.adain(x, mean, var, mode="official_std", eps=0.0)
  b = layers.adain(3.0 * x, mean, var, mode="official_std", eps=0.0)
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_adain_official_std_matches_numpy():
  """mean_f * (x - mean_x) / sqrt(var_x + eps) + var_f: the exemplar mean is a
  signed scale (a negative mean flips the content), the variance the shift."""
  x, mean_f, var_f = _content_and_style(seed=2)
  mean_f = mean_f * np.where(np.arange(mean_f.shape[-1]) % 2, -1.0, 1.0).astype(np.float32)
  eps = 1e-5
  mx, vx = _np_moments(x)
  expected = mean_f * (x - mx) / np.sqrt(vx + eps) + var_f
  got = layers.adain(
    jnp.asarray(x), jnp.asarray(mean_f), jnp.asarray(var_f), mode="official_std", eps=eps
  )
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-5)
  gm, gv = _np_moments(np.asarray(got))
  np.testing.assert_allclose(gm, var_f, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(gv, mean_f**2, rtol=1e-3)


def test_output_activation_reaches_the_exact_ends_and_passes_gradients():
  x = jnp.linspace(-4.0, 4.0, 81)
  np.testing.assert_array_equal(
    np.asarray(layers.output_activation(x, scale=1.0)), np.asarray(jnp.tanh(x))
  )
  y = np.asarray(layers.output_activation(x, scale=1.1))
  edge = np.arctanh(1 / 1.1)  # 1.5223
  far = np.abs(np.asarray(x)) >= edge + 1e-3
  np.testing.assert_array_equal(y[far], np.sign(np.asarray(x))[far])
  np.testing.assert_allclose(y[~far], 1.1 * np.tanh(np.asarray(x))[~far], rtol=1e-5)
  # Straight through the clip: the gradient of 1.1 tanh everywhere, never 0.
  g = np.asarray(jax.grad(lambda v: layers.output_activation(v, scale=1.1).sum())(x))
  np.testing.assert_allclose(g, 1.1 * (1 - np.tanh(np.asarray(x)) ** 2), rtol=1e-3)
  # In a decoder: config.model.output_scale reaches the exact ends, tanh does not.
  dec, params, c, _, _ = _small_decoder_and_inputs(seed=4)
  # Output biases 3, -3, 0.1: the first two channels near the ends, the third not.
  big = jax.tree.map(lambda p: p, params)
  big["deconv_out"]["deconv"]["bias"] = jnp.asarray([3.0, -3.0, 0.1])
  tanh_out = np.asarray(dec.apply({"params": big}, c))
  scaled = np.asarray(dec.clone(output_scale=1.1).apply({"params": big}, c))
  assert np.all(np.abs(tanh_out) < 1.0) and tanh_out[..., 0].min() > 0.99
  np.testing.assert_array_equal(scaled[..., 0], 1.0)
  np.testing.assert_array_equal(scaled[..., 1], -1.0)
  np.testing.assert_allclose(scaled[..., 2], 1.1 * tanh_out[..., 2], rtol=1e-5)


def test_no_mask_equals_an_all_ones_mask():
  """use_feature_mask=False passes mask=None: the same as a mask of exactly 1."""
  dec, params, c, _, style = _small_decoder_and_inputs(seed=1)
  without = dec.apply({"params": params}, c, mask=None, style=style)
  ones = dec.apply({"params": params}, c, mask=jnp.ones_like(c), style=style)
  np.testing.assert_array_equal(np.asarray(without), np.asarray(ones))


def test_no_adain_equals_the_decoder_without_style():
  """use_adain=False passes style=None: the masked content goes straight in."""
  dec, params, c, mask, style = _small_decoder_and_inputs(seed=2)
  without = dec.apply({"params": params}, c, mask=mask, style=None)
  ref = dec.apply({"params": params}, c * mask)
  np.testing.assert_allclose(np.asarray(without), np.asarray(ref), atol=1e-7)
  with_style = dec.apply({"params": params}, c, mask=mask, style=style)
  assert np.abs(np.asarray(with_style) - np.asarray(without)).max() > 1e-3


def test_generator_information_flow():
  """x_ab = G_B(m_A, c_A, stats_B); x_aa = G_A(m_A, c_A, stats_A); the cycle
  x_aba re-encodes x_ab with E_B and decodes with x_a's OWN mask and stats
  (docs/method.md §1.1, 1.5)."""
  gen = Generator(ngf=4, n_downsample=1, n_enc_res=1, n_dec_res=1)
  rs = np.random.RandomState(0)
  x_a, x_b = (jnp.asarray(rs.uniform(-1, 1, (2, 8, 8, 3)), jnp.float32) for _ in range(2))
  shape = (2, 4, 4, 8)
  mask_a, mask_b = (jnp.asarray(rs.uniform(0.5, 1, shape), jnp.float32) for _ in range(2))
  style_a, style_b = (
    (
      jnp.asarray(rs.normal(size=(2, 1, 1, 8)), jnp.float32),
      jnp.asarray(rs.uniform(0.5, 2, (2, 1, 1, 8)), jnp.float32),
    )
    for _ in range(2)
  )
  # Jitted: op by op, with the tests' 8 devices, this test took 40 s.
  params = jax.jit(functools.partial(gen.init, noise=False))(RNGS, x_a, x_b)["params"]
  v = {"params": params}
  forward = jax.jit(functools.partial(gen.apply, noise=False))
  out = forward(v, x_a, x_b, mask_a=mask_a, mask_b=mask_b, style_a=style_a, style_b=style_b)

  def manual(g):
    _, c_a = g.encode(x_a, "a", noise=False)
    _, c_b = g.encode(x_b, "b", noise=False)
    x_ab = g.decode(c_a, "b", mask=mask_a, style=style_b)
    x_ba = g.decode(c_b, "a", mask=mask_b, style=style_a)
    x_aa = g.decode(c_a, "a", mask=mask_a, style=style_a)
    x_bb = g.decode(c_b, "b", mask=mask_b, style=style_b)
    _, c_ab = g.encode(x_ab, "b", noise=False)
    _, c_ba = g.encode(x_ba, "a", noise=False)
    x_aba = g.decode(c_ab, "a", mask=mask_a, style=style_a)
    x_bab = g.decode(c_ba, "b", mask=mask_b, style=style_b)
    return dict(x_ab=x_ab, x_ba=x_ba, x_aa=x_aa, x_bb=x_bb, x_aba=x_aba, x_bab=x_bab)

  ref = jax.jit(functools.partial(gen.apply, method=manual))(v)
  for k, r in ref.items():
    np.testing.assert_allclose(np.asarray(out[k]), np.asarray(r), atol=2e-6, err_msg=k)
  # The exemplar's stats matter: swapping style_b changes x_ab.
  other = forward(v, x_a, x_b, mask_a=mask_a, mask_b=mask_b, style_a=style_a, style_b=style_a)
  assert np.abs(np.asarray(other["x_ab"]) - np.asarray(out["x_ab"])).max() > 1e-4


def test_latent_noise_is_standard_normal_on_mu():
  """z = mu + N(0, 1): z - mu has mean ~0 and std ~1; noise=False gives z = mu."""
  gen = Generator(ngf=4, n_downsample=0, n_enc_res=1, n_dec_res=1)
  x = jnp.asarray(np.random.RandomState(0).uniform(-1, 1, (4, 16, 16, 3)), jnp.float32)
  params = gen.init(RNGS, x, x, noise=False)["params"]

  def latents(g, noise):
    return g.latent(g.encoder_a(x), noise=noise)

  mu, z = gen.apply({"params": params}, True, method=latents, rngs={"noise": jax.random.key(5)})
  eps = np.asarray(z - mu)
  assert abs(eps.mean()) < 0.05 and abs(eps.std() - 1.0) < 0.05
  mu0, z0 = gen.apply({"params": params}, False, method=latents)
  np.testing.assert_array_equal(np.asarray(mu0), np.asarray(z0))
  np.testing.assert_array_equal(np.asarray(mu0), np.asarray(mu))


def test_cyclegan_generator_has_no_shared_blocks_and_no_noise():
  c = config_lib.apply_variant(config_lib.base_config(), "tiny,cyclegan")
  models = build_models(c.model)
  assert not models.train_noise and not models.test_noise
  x = jnp.asarray(np.random.RandomState(0).uniform(-1, 1, (2, 28, 28, 3)), jnp.float32)
  params = models.generator.init(RNGS, x, x, noise=False)["params"]
  assert sorted(params) == ["decoder_a", "decoder_b", "encoder_a", "encoder_b"]
  outs = [
    models.generator.apply(
      {"params": params}, x, x[::-1], noise=True, rngs={"noise": jax.random.key(s)}
    )
    for s in (0, 1)
  ]
  for k in ("x_ab", "x_ba", "x_aba", "x_bab"):
    np.testing.assert_array_equal(np.asarray(outs[0][k]), np.asarray(outs[1][k]))


# ---------------------------------------------------------------------------
# Sign-normalised content encoder (model.content_sign_norm)
# ---------------------------------------------------------------------------


def _two_colour_images(fg, bg, seed=0):
  """Digit-like binary shapes m [2, 12, 12, 1] drawn as fg on bg, in [-1, 1]."""
  m = (np.random.RandomState(seed).uniform(size=(2, 12, 12, 1)) > 0.7).astype(np.float32)
  return np.asarray(bg, np.float32) + (np.asarray(fg, np.float32) - np.asarray(bg, np.float32)) * m


def test_sign_normalized_instance_norm_matches_numpy():
  rs = np.random.RandomState(4)
  # Channels 0, 1 skewed right, channels 2, 3 skewed left (negated exponentials).
  e = rs.exponential(size=(2, 5, 6, 4)).astype(np.float32)
  x = e * np.array([1.0, 3.0, -1.0, -2.0], np.float32) + 0.5
  mx, vx = _np_moments(x)
  y = (x - mx) / np.sqrt(vx + 1e-5)
  expected = y * np.sign((y**3).mean(axis=(1, 2), keepdims=True))
  got = np.asarray(layers.sign_normalized_instance_norm(jnp.asarray(x)))
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got[..., 2:], -y[..., 2:], rtol=1e-5, atol=1e-5)
  assert ((got**3).mean(axis=(1, 2)) > 0).all()
  # The same input negated gives the same output.
  np.testing.assert_allclose(
    np.asarray(layers.sign_normalized_instance_norm(jnp.asarray(-x))), got, rtol=1e-5, atol=1e-5
  )


def test_sign_normalized_encoder_does_not_see_polarity_or_colour_order():
  """Black on white and white on black give the same content features with
  `sign_norm`, and so do red on green and green on red; without it they differ."""
  black_on_white = _two_colour_images(fg=(-1, -1, -1), bg=(1, 1, 1))
  white_on_black = _two_colour_images(fg=(1, 1, 1), bg=(-1, -1, -1))
  red_on_green = _two_colour_images(fg=(1, -1, -1), bg=(-1, 1, -1))
  green_on_red = _two_colour_images(fg=(-1, 1, -1), bg=(1, -1, -1))
  outs = {}
  for sign_norm in (False, True):
    enc = DomainEncoder(ngf=4, n_downsample=0, n_res=1, sign_norm=sign_norm)
    p = _randomize(enc.init(jax.random.key(0), black_on_white)["params"], seed=2)
    outs[sign_norm] = [
      np.asarray(enc.apply({"params": p}, jnp.asarray(x)))
      for x in (black_on_white, white_on_black, red_on_green, green_on_red)
    ]
  bw, wb, rg, gr = outs[True]
  np.testing.assert_allclose(bw, wb, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(rg, gr, rtol=1e-4, atol=1e-4)
  bw, wb, rg, gr = outs[False]
  assert np.abs(bw - wb).max() > 0.1 and np.abs(rg - gr).max() > 0.1


def test_content_sign_norm_reaches_the_generator_encoders_only():
  """The config knob changes E_A / E_B (the content path), not F (the
  exemplar nets, which must see the colours)."""
  c = config_lib.base_config()
  c.model.ngf, c.model.n_enc_res, c.model.n_dec_res = 4, 1, 1
  c.model.content_sign_norm = True
  m = build_models(c.model)
  assert m.generator.content_sign_norm and not m.exemplar.sign_norm
  x = jnp.asarray(_two_colour_images(fg=(-1, -1, -1), bg=(1, 1, 1)))
  params = m.generator.init(RNGS, x, x)["params"]
  _, c_bw = m.generator.apply({"params": params}, x, "a", noise=False, method=Generator.encode)
  _, c_wb = m.generator.apply({"params": params}, -x, "a", noise=False, method=Generator.encode)
  np.testing.assert_allclose(np.asarray(c_bw), np.asarray(c_wb), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------
# MUNIT (models/munit.py, the `munit` variant)
# ---------------------------------------------------------------------------


def _munit_small():
  return MunitGenerator(ngf=4, n_downsample=1, n_enc_res=1, n_dec_res=1, style_dim=2, mlp_dim=3)


def test_munit_parameter_count_by_hand():
  """ngf 4, one down-sampling, one residual block each side, style 2, MLP 3.

  Per domain (conv = k*k*in*out + out; instance norms have no parameters):
    content encoder  7x7 3->4: 592, 3x3 4->8: 296, res block 2 x (3x3 8->8: 584)
                     = 2,056
    style encoder    7x7 3->4: 592, 3x3 4->8: 296, 8->16: 1,168, 16->16: 2,320,
                     1x1 16->2: 34 = 4,410   (three down-samplings: one + two)
    decoder          MLP 2->3: 9, 3->3: 12, 3->32 (1 block x 2 AdaINs x (scale,
                     offset) x 8 channels): 128; res block 1,168; up 5x5 8->4:
                     804 + layer norm 8; 7x7 4->3: 591 = 2,720
  = 9,186 per domain, 18,372 in all.
  """
  x = jnp.zeros((1, 8, 8, 3))
  params = jax.eval_shape(lambda: _munit_small().init(RNGS, x, x, noise=False))["params"]
  counts = {k: state_lib.param_count(v) for k, v in params.items()}
  assert counts == {
    "content_encoder_a": 2056,
    "content_encoder_b": 2056,
    "style_encoder_a": 4410,
    "style_encoder_b": 4410,
    "decoder_a": 2720,
    "decoder_b": 2720,
  }
  assert state_lib.param_count(params) == 18372


def test_munit_output_shapes():
  gen = _munit_small()
  rs = np.random.RandomState(0)
  x_a, x_b = (jnp.asarray(rs.uniform(-1, 1, (2, 8, 12, 3)), jnp.float32) for _ in "ab")
  params = gen.init(RNGS, x_a, x_b, noise=False)["params"]
  out = gen.apply({"params": params}, x_a, x_b, noise=True, rngs={"noise": jax.random.key(3)})
  shapes = {k: v.shape for k, v in out.items()}
  img, content, code = (2, 8, 12, 3), (2, 4, 6, 8), (2, 1, 1, 2)
  assert shapes == {
    **{k: img for k in ("x_aa", "x_bb", "x_ab", "x_ba", "x_aba", "x_bab")},
    **{k: content for k in ("c_a", "c_b", "c_ab", "c_ba")},
    **{k: code for k in ("s_a", "s_b", "prior_a", "prior_b", "s_ab", "s_ba")},
  }
  assert all(float(jnp.max(jnp.abs(out[k]))) <= 1.0 for k in ("x_ab", "x_ba"))
  # The two prior draws differ; without noise they are the prior's mean, 0.
  assert not np.allclose(out["prior_a"], out["prior_b"])
  quiet = gen.apply({"params": params}, x_a, x_b, noise=False, cycle=False)
  assert "x_aba" not in quiet and not np.any(np.asarray(quiet["prior_a"]))
  # The D step's `cross` draws the same codes from the same key: same fakes.
  x_ab, x_ba = gen.apply(
    {"params": params}, x_a, x_b, noise=True, rngs={"noise": jax.random.key(3)}, method="cross"
  )
  np.testing.assert_allclose(x_ab, out["x_ab"], atol=1e-6)
  np.testing.assert_allclose(x_ba, out["x_ba"], atol=1e-6)


def test_munit_exemplar_style_code_drives_the_translation():
  """Example-guided at test time: the style code of the exemplar (its own style
  encoder's) conditions the decoder; the same exemplar twice, the same result."""
  c = config_lib.apply_variant(config_lib.base_config(), "tiny,munit")
  models = build_models(c.model)
  assert models.architecture == "munit" and not models.use_mask and not models.use_adain
  rs = np.random.RandomState(1)
  src, ex = (jnp.asarray(rs.uniform(-1, 1, (2, 28, 28, 3)), jnp.float32) for _ in "ab")
  params = models.generator.init(RNGS, src, ex, noise=False)["params"]
  translate = functools.partial(
    steps.translate, params, {}, rng=jax.random.key(0), models=models, direction="a2b"
  )
  same = jnp.concatenate([ex[:1], ex[:1]])
  y_same = np.asarray(translate(jnp.concatenate([src[:1], src[:1]]), same))
  np.testing.assert_array_equal(y_same[0], y_same[1])
  y_other = np.asarray(translate(jnp.concatenate([src[:1], src[:1]]), ex))
  assert np.abs(y_other[0] - y_other[1]).max() > 1e-3
  # The style is Es_B(exemplar), and translate_with_style with it is translate.
  code = steps.exemplar_style(params, {}, ex, models=models, domain="b")
  assert code.shape == (2, 1, 1, c.model.munit_style_dim)
  direct = models.generator.apply({"params": params}, ex, "b", method="style")
  np.testing.assert_array_equal(code, direct)
  with_code = steps.translate_with_style(
    params, {}, src, code, jax.random.key(0), models=models, direction="a2b"
  )
  np.testing.assert_array_equal(with_code, translate(src, ex))
