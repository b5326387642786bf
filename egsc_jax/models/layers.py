"""Building blocks of EGSC-IT (docs/method.md §1.2, 1.5, 1.6, 1.7).

All modules are NHWC. Parameters are float32; `dtype` is the compute dtype.
Statistics (moments, instance norm, AdaIN) are always computed in float32,
because bfloat16 variances of 28x28 maps lose most of their digits.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import linen as nn

Dtype = Any

LEAKY_SLOPE = 0.2
# TF1's truncated_normal(stddev=0.02) cuts at 2 sigma without rescaling, so its
# real std is 0.02 * 0.8796; jax's truncated_normal rescales to the stddev given,
# hence the factor (docs/method.md §1.2, 7).
TF1_TRUNC_NORMAL_STD = 0.02 * 0.87962566
# The eps of the parameter-free instance norms (sign norm; D's InstanceNorm
# has its own).
NORM_EPS = 1e-5


def generator_init() -> Callable:
  return nn.initializers.truncated_normal(stddev=TF1_TRUNC_NORMAL_STD)


def leaky_relu(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, negative_slope=LEAKY_SLOPE)


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
  """Reflect-pads H and W of `x` [B, H, W, C] by `pad`."""
  if pad == 0:
    return x
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


class ReflectConv(nn.Module):
  """Reflect pad, then a VALID k x k conv with bias (docs/method.md §1.2 `conv`).

  [B, H, W, Cin] -> [B, ceil(H / stride), ceil(W / stride), features]
  """

  features: int
  kernel: int
  stride: int = 1
  activation: Callable[[jax.Array], jax.Array] | None = leaky_relu
  dtype: Dtype = jnp.float32
  kernel_init: Callable | None = None  # None: generator_init() (EGSC-IT's)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = reflect_pad(x, (self.kernel - 1) // 2)
    x = nn.Conv(
      self.features,
      (self.kernel, self.kernel),
      strides=(self.stride, self.stride),
      padding="VALID",
      kernel_init=self.kernel_init or generator_init(),
      dtype=self.dtype,
      param_dtype=jnp.float32,
      name="conv",
    )(x)
    return self.activation(x) if self.activation is not None else x


class ResBlock(nn.Module):
  """pad-conv-ReLU-pad-conv + skip, no norm, no activation after the sum.

  [B, H, W, C] -> [B, H, W, C]
  """

  features: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = ReflectConv(self.features, 3, activation=nn.relu, dtype=self.dtype, name="conv1")(x)
    y = ReflectConv(self.features, 3, activation=None, dtype=self.dtype, name="conv2")(y)
    return x + y


class Deconv(nn.Module):
  """Transposed conv, 'SAME' padding, bias; stride 2 doubles H and W exactly.

  [B, H, W, Cin] -> [B, H * stride, W * stride, features]
  """

  features: int
  kernel: int
  stride: int = 2
  activation: Callable[[jax.Array], jax.Array] = leaky_relu
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.ConvTranspose(
      self.features,
      (self.kernel, self.kernel),
      strides=(self.stride, self.stride),
      padding="SAME",
      kernel_init=generator_init(),
      dtype=self.dtype,
      param_dtype=jnp.float32,
      name="deconv",
    )(x)
    return self.activation(x)


# How the discriminator's stride-2 convolutions run (config.model.conv_impl).
# The same parameters and the same products either way; see
# `space_to_depth_conv`.
CONV_IMPLS = ("space_to_depth", "xla")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """(before, after) zero padding of a 'SAME' conv along one axis (XLA's:
  the odd pixel after)."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def space_to_depth_conv(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  """A 'SAME' k x k conv of stride s (k a multiple of s), as a VALID stride-1
  (k/s) x (k/s) conv of the zero-padded input rearranged space-to-depth.

  x [B, H, W, C], kernel [k, k, C, O] -> [B, ceil(H / s), ceil(W / s), O].
  out[i, j] = sum_{ky, kx} xp[s*i + ky, s*j + kx] . kernel[ky, kx]; writing
  ky = s*a + p, kx = s*b + q this is sum_{a, b} d[i + a, j + b] . k2[a, b]
  with d[i, j, (p, q, c)] = xp[s*i + p, s*j + q, c] and k2 the kernel
  regrouped the same way: the same products, summed in another order.
  Why: XLA:CPU runs the gradients of a strided conv as dilated convolutions;
  for the discriminator these stride-1 ones are about 4x faster
  (docs/benchmarks.md, issue 28).
  """
  k, s = kernel.shape[0], stride
  if k % s or kernel.shape[1] != k:
    raise ValueError(
      f"space_to_depth_conv needs a square kernel whose size is a multiple of the "
      f"stride, got kernel {kernel.shape[:2]} and stride {s}"
    )
  b, h, w, c = x.shape
  o = kernel.shape[-1]
  (top, bottom), (left, right) = same_padding(h, k, s), same_padding(w, k, s)
  # Round the padded size up to a multiple of s: the extra row/column is
  # never read by an output window.
  bottom += (-(h + top + bottom)) % s
  right += (-(w + left + right)) % s
  x = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
  hs, ws = (h + top + bottom) // s, (w + left + right) // s
  x = x.reshape(b, hs, s, ws, s, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, hs, ws, s * s * c)
  k2 = kernel.reshape(k // s, s, k // s, s, c, o).transpose(0, 2, 1, 3, 4, 5)
  k2 = k2.reshape(k // s, k // s, s * s * c, o)
  return jax.lax.conv_general_dilated(
    x, k2, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


class SpaceToDepthConv(nn.Module):
  """`nn.Conv` with 'SAME' padding and a stride that divides the kernel size,
  computed by `space_to_depth_conv`. Its parameters are nn.Conv's ('kernel'
  [k, k, C, O] and 'bias' [O], float32, the same initialisers and names), so
  a checkpoint loads whichever computes it. [B, H, W, C] -> [B, H/s, W/s, O]."""

  features: int
  kernel: int
  stride: int
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel
    kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features), jnp.float32)
    bias = self.param("bias", self.bias_init, (self.features,), jnp.float32)
    y = space_to_depth_conv(x.astype(self.dtype), kernel.astype(self.dtype), self.stride)
    return y + bias.astype(self.dtype)


def moments(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Per-sample, per-channel spatial mean and population variance, float32.

  [B, H, W, C] -> ([B, 1, 1, C], [B, 1, 1, C])
  """
  x = x.astype(jnp.float32)
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
  return mean, var


def instance_normalize(x: jax.Array, eps: float = 1e-5) -> jax.Array:
  """(x - mean) / sqrt(var + eps) per sample and channel, no scale or offset.

  [B, H, W, C] -> [B, H, W, C] float32 (callers cast back after their affine).
  """
  mean, var = moments(x)
  return (x.astype(jnp.float32) - mean) * jax.lax.rsqrt(var + eps)


class InstanceNorm(nn.Module):
  """Instance norm with learnable scale and offset (D layers 1-3, eps 1e-5)."""

  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
    y = instance_normalize(x, self.epsilon)
    return (y * scale + bias).astype(x.dtype)


def sign_norm_stats(x: jax.Array, eps: float = NORM_EPS) -> tuple[jax.Array, jax.Array, jax.Array]:
  """What `sign_normalized_instance_norm` takes from x [B, H, W, C]: the
  per-channel mean and variance, and the skewness mean(y**3) of the
  instance-normalised y. Each [B, 1, 1, C], float32."""
  mean, var = moments(x)
  y = (x.astype(jnp.float32) - mean) * jax.lax.rsqrt(var + eps)
  return mean, var, jnp.mean(y**3, axis=(1, 2), keepdims=True)


def sign_normalized_instance_norm(
  x: jax.Array,
  eps: float = NORM_EPS,
  stats: tuple[jax.Array, jax.Array, jax.Array] | None = None,
) -> jax.Array:
  """Instance norm without scale or offset, each channel's sign chosen so that
  its skewness is >= 0. [B, H, W, C] -> same.

  `stats`: `sign_norm_stats` of the whole image when x is a tile of it
  (tiling.py); default x's own.

  The content encoders' first layer with `model.content_sign_norm`. For a
  two-colour image x = c_bg + (c_fg - c_bg) * m (m the figure's shape), a
  filter whose spatial pattern is shared by the colour channels responds
  const + s * (w * m), s its colour weights dotted with c_fg - c_bg. The
  instance norm removes the constant and |s|; the skewness flips sign with
  s, so multiplying by its sign removes the sign of s too:
  y * sign(skew(y)) = g * sign(skew(g)) for g = norm(w * m), whatever the
  colours. A black digit on white and a white one on black (or red on green
  and green on red) then give the same content features, and the decoder
  has to take the colours from the exemplar's statistics (with `official_std`
  AdaIN, whose signed scale can flip the figure; docs/method.md §1.6a).
  Unlike |y|, the spatial pattern keeps its sign within the channel, so
  inside and outside of a stroke stay apart. A channel whose skewness is
  exactly 0 keeps its sign. The sign is piecewise constant: no gradient
  flows through it, only through y.
  """
  mean, var, skew = sign_norm_stats(x, eps) if stats is None else stats
  y = (x.astype(jnp.float32) - mean) * jax.lax.rsqrt(var + eps)
  return jnp.where(skew >= 0, y, -y).astype(x.dtype)


ADAIN_MODES = ("official", "official_std", "standard")


def adain(
  x: jax.Array,
  style_mean: jax.Array,
  style_var: jax.Array,
  *,
  mode: str,
  eps: float,
  content_stats: tuple[jax.Array, jax.Array] | None = None,
) -> jax.Array:
  """Exemplar AdaIN of content `x` with the exemplar feature statistics.

  official (docs/method.md §1.6, the authors' released models):
      mean_f * (x - mean_x) / (var_x + eps) + var_f
  official_std (ours): the official formula over the content's std
      mean_f * (x - mean_x) / sqrt(var_x + eps) + var_f
      keeps the exemplar mean as a signed scale, and like `standard` is
      invariant to a per-channel gain on the content: the official
      formula scales a content of variance v by 1 / sqrt(v), so a content
      whose variance grows fades out of the decoder's input.
  standard (Huang & Belongie):
      sqrt(var_f) * (x - mean_x) / sqrt(var_x + eps) + mean_f
  The authors' code has no eps; we add a small one (default 1e-5) so that an
  all-constant channel cannot divide by zero.

  Args:
    x: [B, H, W, C] masked content.
    style_mean, style_var: [B, 1, 1, C] statistics of the exemplar feature.
    content_stats: (mean_x, var_x) [B, 1, 1, C] of the whole image when x is
      a tile of it (tiling.py); default x's own `moments`.
  Returns:
    [B, H, W, C] in x's dtype; the arithmetic is float32.
  """
  mean_x, var_x = moments(x) if content_stats is None else content_stats
  xf = x.astype(jnp.float32)
  if mode == "official":
    out = style_mean * (xf - mean_x) / (var_x + eps) + style_var
  elif mode == "official_std":
    out = style_mean * (xf - mean_x) * jax.lax.rsqrt(var_x + eps) + style_var
  elif mode == "standard":
    out = jnp.sqrt(style_var) * (xf - mean_x) * jax.lax.rsqrt(var_x + eps) + style_mean
  else:
    raise ValueError(
      f"adain_mode must be one of {ADAIN_MODES}, got {mode!r} (config key config.model.adain_mode)"
    )
  return out.astype(x.dtype)


def output_activation(x: jax.Array, *, scale: float) -> jax.Array:
  """The decoder's last activation: tanh, or clip(scale * tanh(x), -1, 1).

  The MNIST sets are pure colours, and the uint8 images only reach 0 and 255
  when the output is within 1/255 of -1 or 1: plain tanh needs |x| > 3.1 for
  that, where its gradient has almost vanished, so the always-zero channels of a
  red-on-green digit stay a few grey levels off (which costs SSIM far more than
  it looks: a window whose reference is all 0 scores its luminance term
  C1 / (mu^2 + C1)). With scale > 1 the exact ends are reached at
  |x| = atanh(1 / scale). The clip passes its gradient straight through, so an
  output clipped at the wrong end is still pulled back by the losses.
  scale = 1 is the paper's plain tanh.
  """
  y = jnp.tanh(x)
  if scale == 1.0:
    return y
  y = scale * y
  return y + jax.lax.stop_gradient(jnp.clip(y, -1.0, 1.0) - y)


def feature_mask(f: jax.Array) -> jax.Array:
  """m = 0.5 + 0.5 * sigmoid(f), element-wise, in (0.5, 1) (docs/method.md §1.5). float32."""
  return 0.5 + 0.5 * jax.nn.sigmoid(f.astype(jnp.float32))
