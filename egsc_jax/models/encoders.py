"""Domain encoders (E_A, E_B and the frozen exemplar nets F_A, F_B) and decoders.

docs/method.md §1.3: encoder = 7x7 conv (ngf) -> n_downsample x [3x3 stride-2 conv,
channels doubling] -> n_res residual blocks; no normalisation, LeakyReLU 0.2,
reflect padding. MNIST-Single uses n_downsample=0 (28x28x64 throughout).
With `sign_norm` (config `model.content_sign_norm`, E_A/E_B only) the first
layer is conv -> layers.sign_normalized_instance_norm (docs/method.md §1.6a).
The decoder mirrors it: n_res residual blocks -> n_downsample x [3x3 stride-2
transposed conv, channels halving] -> 1x1 transposed conv to 3 channels, tanh.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from egsc_jax.models import layers

Dtype = Any


def bottleneck_channels(ngf: int, n_downsample: int) -> int:
  """Channels of the content code c: ngf * 2**n_downsample (256 for RGB)."""
  return ngf * 2**n_downsample


class DomainEncoder(nn.Module):
  """x [B, H, W, 3] -> feature [B, H / 2**n_down, W / 2**n_down, ngf * 2**n_down].

  The same architecture serves E_A/E_B (trained in stage 2) and F_A/F_B
  (trained in stage 1, frozen in stage 2; their last residual block output f
  gives the feature mask and the AdaIN statistics).
  """

  ngf: int = 64
  n_downsample: int = 2
  n_res: int = 3
  sign_norm: bool = False  # see layers.sign_normalized_instance_norm
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, sign_norm_stats=None) -> jax.Array:
    """x [B, H, W, 3]; sign_norm_stats: `layers.sign_norm_stats` of the whole
    image when x is a tile of it (tiling.py), else None."""
    x = x.astype(self.dtype)
    x = layers.ReflectConv(
      self.ngf,
      7,
      dtype=self.dtype,
      name="conv_in",
      activation=None if self.sign_norm else layers.leaky_relu,
    )(x)
    if self.sign_norm:
      # Sown (a no-op unless 'intermediates' is mutable) for tiling's statistics.
      self.sow("intermediates", "sign_norm_input", x)
      x = layers.sign_normalized_instance_norm(x, stats=sign_norm_stats)
    ch = self.ngf
    for i in range(self.n_downsample):
      ch *= 2
      x = layers.ReflectConv(ch, 3, stride=2, dtype=self.dtype, name=f"down_{i}")(x)
    for i in range(self.n_res):
      x = layers.ResBlock(ch, dtype=self.dtype, name=f"res_{i}")(x)
    return x


class SharedBlocks(nn.Module):
  """A stack of weight-shared residual blocks (UNIT's shared encoder end or
  shared generator start). [B, h, w, C] -> [B, h, w, C]."""

  features: int
  n_blocks: int = 1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i in range(self.n_blocks):
      x = layers.ResBlock(self.features, dtype=self.dtype, name=f"res_{i}")(x)
    return x


class DomainDecoder(nn.Module):
  """Content [B, h, w, C] -> image [B, h * 2**n_up, w * 2**n_up, 3] in (-1, 1).

  When `mask` or `style` is given, the transfer block (docs/method.md §1.5-1.6) runs
  before residual block 0: x = AdaIN(mask * c) with the exemplar statistics.
  """

  ngf: int = 64
  n_upsample: int = 2
  n_res: int = 3
  adain_mode: str = "standard"
  adain_eps: float = 1e-5
  output_scale: float = 1.0  # see layers.output_activation
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(
    self,
    c: jax.Array,
    *,
    mask: jax.Array | None = None,
    style: tuple[jax.Array, jax.Array] | None = None,
    adain_stats: tuple[jax.Array, jax.Array] | None = None,
  ) -> jax.Array:
    """c: [B, h, w, C]; mask: [B, h, w, C] in (0.5, 1) or None;
    style: (mean [B, 1, 1, C], var [B, 1, 1, C]) of the exemplar feature, or None;
    adain_stats: the moments of mask * c over the whole image when c is a tile
    of it (tiling.py), else None."""
    x = c.astype(self.dtype)
    if mask is not None:
      x = (x * mask.astype(self.dtype)).astype(self.dtype)
    if style is not None:
      self.sow("intermediates", "adain_input", x)  # for tiling's statistics
      x = layers.adain(
        x,
        style[0],
        style[1],
        mode=self.adain_mode,
        eps=self.adain_eps,
        content_stats=adain_stats,
      )
    ch = c.shape[-1]
    for i in range(self.n_res):
      x = layers.ResBlock(ch, dtype=self.dtype, name=f"res_{i}")(x)
    for i in range(self.n_upsample):
      ch //= 2
      x = layers.Deconv(ch, 3, stride=2, dtype=self.dtype, name=f"up_{i}")(x)
    x = layers.Deconv(
      3,
      1,
      stride=1,
      dtype=self.dtype,
      name="deconv_out",
      activation=functools.partial(layers.output_activation, scale=self.output_scale),
    )(x)
    return x.astype(jnp.float32)
