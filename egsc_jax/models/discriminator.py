"""Single-scale LSGAN patch discriminator, in the authors' layer order (docs/method.md §1.7).

Deliberate quirks kept from the authors' code, because the released models
were trained with them:
  * layer 0 applies LeakyReLU twice (negative slope 0.04);
  * instance norm sits between two LeakyReLUs on layers 1-3;
  * the 1x1 output logit also goes through LeakyReLU.
Zero 'SAME' padding, Glorot-uniform kernels, zero biases.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from egsc_jax.models import layers

Dtype = Any


class Discriminator(nn.Module):
  """x [B, H, W, 3] -> patch map [B, H / 2**n_layers, W / 2**n_layers, 1] (f32)."""

  ndf: int = 64
  n_layers: int = 4
  dtype: Dtype = jnp.float32
  # layers.CONV_IMPLS: how the stride-2 convs run (the same parameters either way).
  conv_impl: str = "xla"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.conv_impl not in layers.CONV_IMPLS:
      raise ValueError(
        f"config.model.conv_impl must be one of {layers.CONV_IMPLS}, got {self.conv_impl!r}"
      )

    def conv(features, kernel, stride, name):
      if self.conv_impl == "space_to_depth" and stride > 1:
        return layers.SpaceToDepthConv(
          features,
          kernel,
          stride,
          kernel_init=nn.initializers.glorot_uniform(),
          dtype=self.dtype,
          name=name,
        )
      return nn.Conv(
        features,
        (kernel, kernel),
        strides=(stride, stride),
        padding="SAME",
        kernel_init=nn.initializers.glorot_uniform(),
        dtype=self.dtype,
        param_dtype=jnp.float32,
        name=name,
      )

    x = x.astype(self.dtype)
    x = layers.leaky_relu(layers.leaky_relu(conv(self.ndf, 4, 2, "conv_0")(x)))
    for i in range(1, self.n_layers):
      x = layers.leaky_relu(conv(self.ndf * 2**i, 4, 2, f"conv_{i}")(x))
      x = layers.leaky_relu(layers.InstanceNorm(name=f"norm_{i}")(x))
    x = layers.leaky_relu(conv(1, 1, 1, "conv_out")(x))
    return x.astype(jnp.float32)
