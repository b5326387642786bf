"""MUNIT (Huang et al., ECCV 2018), the baseline with a learned style code
(docs/method.md §5.2, §8; config variant `munit`).

Each domain X has three networks: a content encoder Ec_X, a style encoder
Es_X and a decoder G_X. Content codes live in one space shared by both
domains; a style code is a small vector per image:

    c_A = Ec_A(x_A)  [B, h, w, C]      s_A = Es_A(x_A)  [B, 1, 1, S]
    x_AA = G_A(c_A, s_A)               (reconstruction)
    x_AB = G_B(c_A, s_B)               s_B ~ N(0, I) while training,
                                       Es_B(exemplar) at test time

G_X turns the style code into the scales and offsets of the adaptive instance
norms in its residual blocks with an MLP. Nothing here uses EGSC-IT's frozen
exemplar networks F, its feature mask or its shared latent: MUNIT has no
stage 1.

Our reading of the paper, with what we change (docs/method.md §5.2 says why):
  Ec: 7x7 conv -> n_downsample x [3x3 stride-2 conv, channels doubling]
      -> n_res residual blocks; instance norm (no affine) after every conv, ReLU.
  Es: 7x7 conv -> (n_downsample + 2) x [3x3 stride-2 conv; channels double the
      first two times] -> global average pool -> 1x1 conv to S; no norm, ReLU.
  G:  n_res residual blocks with AdaIN (scale, offset from MLP(s)) ->
      n_downsample x [nearest 2x up-sampling, 5x5 conv, layer norm, ReLU,
      channels halving] -> 7x7 conv to 3, layers.output_activation.
  MLP: S -> mlp_dim -> mlp_dim -> 4 C per residual block (two AdaINs, each a
      scale and an offset per channel), ReLU between.
  All convolutions reflect-pad; weights He-normal (the MUNIT code's 'kaiming'
  initialisation), biases zero.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from egsc_jax.models import layers

Dtype = Any
# (scale, offset) of one AdaIN: each [B, 1, 1, C].
Affine = tuple[jax.Array, jax.Array]
# MUNIT's style encoder down-samples twice more than its content encoder
# (4 vs 2 at 256x256); the pooling at the end makes the size of its last map
# matter only through the receptive field.
EXTRA_STYLE_DOWNSAMPLE = 2


def he_init():
  return nn.initializers.he_normal()


def _conv(
  features: int, kernel: int, stride: int = 1, *, dtype: Dtype, name: str, activation=None
) -> layers.ReflectConv:
  return layers.ReflectConv(
    features,
    kernel,
    stride=stride,
    activation=activation,
    dtype=dtype,
    kernel_init=he_init(),
    name=name,
  )


def _instance_norm(x: jax.Array, affine: Affine | None = None) -> jax.Array:
  """Instance norm [B, H, W, C] -> same dtype; with `affine`, AdaIN's
  per-sample scale and offset [B, 1, 1, C] (float32 arithmetic)."""
  y = layers.instance_normalize(x)
  if affine is not None:
    y = y * affine[0].astype(jnp.float32) + affine[1].astype(jnp.float32)
  return y.astype(x.dtype)


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
  """[B, H, W, C] -> [B, factor H, factor W, C], each pixel repeated."""
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class NormResBlock(nn.Module):
  """conv3-IN-ReLU-conv3-IN + skip; with `adain`, each instance norm takes a
  per-sample (scale, offset). [B, H, W, C] -> [B, H, W, C]."""

  features: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, adain: tuple[Affine, Affine] | None = None) -> jax.Array:
    first, second = adain if adain is not None else (None, None)
    y = _conv(self.features, 3, dtype=self.dtype, name="conv1")(x)
    y = nn.relu(_instance_norm(y, first))
    y = _conv(self.features, 3, dtype=self.dtype, name="conv2")(y)
    return x + _instance_norm(y, second)


class ContentEncoder(nn.Module):
  """x [B, H, W, 3] -> content [B, H / 2**n_down, W / 2**n_down, ngf 2**n_down]."""

  ngf: int = 64
  n_downsample: int = 2
  n_res: int = 4
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.astype(self.dtype)
    x = nn.relu(_instance_norm(_conv(self.ngf, 7, dtype=self.dtype, name="conv_in")(x)))
    ch = self.ngf
    for i in range(self.n_downsample):
      ch *= 2
      x = _conv(ch, 3, 2, dtype=self.dtype, name=f"down_{i}")(x)
      x = nn.relu(_instance_norm(x))
    for i in range(self.n_res):
      x = NormResBlock(ch, dtype=self.dtype, name=f"res_{i}")(x)
    return x


class StyleEncoder(nn.Module):
  """x [B, H, W, 3] -> style code [B, 1, 1, style_dim], float32.

  No normalisation: instance norm would remove exactly the statistics that
  make up a style.
  """

  ngf: int = 64
  n_downsample: int = 4
  style_dim: int = 8
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = _conv(self.ngf, 7, dtype=self.dtype, name="conv_in", activation=nn.relu)(
      x.astype(self.dtype)
    )
    ch = self.ngf
    for i in range(self.n_downsample):
      ch = ch * 2 if i < 2 else ch
      x = _conv(ch, 3, 2, dtype=self.dtype, name=f"down_{i}", activation=nn.relu)(x)
    x = jnp.mean(x.astype(jnp.float32), axis=(1, 2), keepdims=True).astype(self.dtype)
    return _conv(self.style_dim, 1, dtype=self.dtype, name="conv_out")(x).astype(jnp.float32)


class MLP(nn.Module):
  """[B, D_in] -> [B, features[-1]]: Dense layers with ReLU between."""

  features: tuple[int, ...]
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.astype(self.dtype)
    for i, f in enumerate(self.features):
      x = nn.Dense(
        f, kernel_init=he_init(), dtype=self.dtype, param_dtype=jnp.float32, name=f"dense_{i}"
      )(x)
      if i < len(self.features) - 1:
        x = nn.relu(x)
    return x


class MunitDecoder(nn.Module):
  """(content [B, h, w, C], style [B, 1, 1, S]) -> image
  [B, h 2**n_upsample, w 2**n_upsample, 3] in (-1, 1), float32."""

  n_upsample: int = 2
  n_res: int = 4
  mlp_dim: int = 256
  output_scale: float = 1.0  # see layers.output_activation
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, c: jax.Array, style: jax.Array) -> jax.Array:
    b, ch = c.shape[0], c.shape[-1]
    # Per residual block: scale and offset of its two instance norms.
    p = MLP((self.mlp_dim, self.mlp_dim, self.n_res * 4 * ch), dtype=self.dtype, name="mlp")(
      style.reshape(b, -1)
    )
    p = p.astype(jnp.float32).reshape(b, self.n_res, 4, 1, 1, ch)
    x = c.astype(self.dtype)
    for i in range(self.n_res):
      adain = ((p[:, i, 0], p[:, i, 1]), (p[:, i, 2], p[:, i, 3]))
      x = NormResBlock(ch, dtype=self.dtype, name=f"res_{i}")(x, adain)
    for i in range(self.n_upsample):
      ch //= 2
      x = _conv(ch, 5, dtype=self.dtype, name=f"up_{i}")(upsample_nearest(x))
      # Layer norm over H, W and C of each sample, a scale and offset per channel.
      x = nn.LayerNorm(
        reduction_axes=(1, 2, 3),
        feature_axes=-1,
        epsilon=1e-5,
        dtype=self.dtype,
        param_dtype=jnp.float32,
        name=f"norm_{i}",
      )(x)
      x = nn.relu(x)
    x = _conv(
      3,
      7,
      dtype=self.dtype,
      name="conv_out",
      activation=functools.partial(layers.output_activation, scale=self.output_scale),
    )(x)
    return x.astype(jnp.float32)


def _other(domain: str) -> str:
  return "b" if domain == "a" else "a"


class MunitGenerator(nn.Module):
  """Ec_A, Es_A, G_A and Ec_B, Es_B, G_B of MUNIT.

  The methods mirror `generator.Generator` where the steps and the Translator
  call both (`translate`, and `__call__` for initialisation); `noise` means
  "draw the cross-domain style codes from N(0, I)" (the 'noise' RNG stream),
  otherwise they are the prior's mean, 0.
  """

  ngf: int = 64
  n_downsample: int = 2
  n_enc_res: int = 4
  n_dec_res: int = 4
  style_dim: int = 8
  mlp_dim: int = 256
  output_scale: float = 1.0
  dtype: Dtype = jnp.float32

  def setup(self):
    enc = dict(ngf=self.ngf, n_downsample=self.n_downsample, n_res=self.n_enc_res, dtype=self.dtype)
    sty = dict(
      ngf=self.ngf,
      n_downsample=self.n_downsample + EXTRA_STYLE_DOWNSAMPLE,
      style_dim=self.style_dim,
      dtype=self.dtype,
    )
    dec = dict(
      n_upsample=self.n_downsample,
      n_res=self.n_dec_res,
      mlp_dim=self.mlp_dim,
      output_scale=self.output_scale,
      dtype=self.dtype,
    )
    self.content_encoder_a = ContentEncoder(**enc)
    self.content_encoder_b = ContentEncoder(**enc)
    self.style_encoder_a = StyleEncoder(**sty)
    self.style_encoder_b = StyleEncoder(**sty)
    self.decoder_a = MunitDecoder(**dec)
    self.decoder_b = MunitDecoder(**dec)

  # -- pieces -----------------------------------------------------------------

  def content(self, x: jax.Array, domain: str) -> jax.Array:
    """x [B, H, W, 3] of `domain` -> content code [B, h, w, C]."""
    return {"a": self.content_encoder_a, "b": self.content_encoder_b}[domain](x)

  def style(self, x: jax.Array, domain: str) -> jax.Array:
    """x [B, H, W, 3] of `domain` -> style code [B, 1, 1, S], float32."""
    return {"a": self.style_encoder_a, "b": self.style_encoder_b}[domain](x)

  def decode(self, c: jax.Array, style: jax.Array, domain: str) -> jax.Array:
    """content [B, h, w, C], style [B, 1, 1, S] -> image of `domain` [B, H, W, 3]."""
    return {"a": self.decoder_a, "b": self.decoder_b}[domain](c, style)

  def prior(self, n: int, *, noise: bool) -> jax.Array:
    """n style codes [n, 1, 1, S]: N(0, I) draws with `noise`, else zeros."""
    shape = (n, 1, 1, self.style_dim)
    if not noise:
      return jnp.zeros(shape, jnp.float32)
    return jax.random.normal(self.make_rng("noise"), shape, jnp.float32)

  # -- whole passes -----------------------------------------------------------

  def translate(
    self,
    x: jax.Array,
    *,
    source: str,
    mask=None,
    style: jax.Array | None = None,
    noise: bool = False,
  ) -> jax.Array:
    """x [B, H, W, 3] of `source` -> the other domain with style codes
    [B, 1, 1, S] (an exemplar's, `style`), or prior codes when style is None."""
    if mask is not None:
      raise ValueError("MUNIT has no feature mask (config.model.architecture='munit')")
    if style is None:
      style = self.prior(x.shape[0], noise=noise)
    return self.decode(self.content(x, source), style, _other(source))

  def cross(
    self, x_a: jax.Array, x_b: jax.Array, *, noise: bool = True
  ) -> tuple[jax.Array, jax.Array]:
    """(x_ab, x_ba), each [B, H, W, 3], with prior style codes: what D sees."""
    n = x_a.shape[0]
    # Drawn in __call__'s order: the same key gives the same codes.
    prior_a, prior_b = self.prior(n, noise=noise), self.prior(n, noise=noise)
    x_ab = self.decode(self.content(x_a, "a"), prior_b, "b")
    x_ba = self.decode(self.content(x_b, "b"), prior_a, "a")
    return x_ab, x_ba

  def __call__(
    self, x_a: jax.Array, x_b: jax.Array, *, noise: bool = True, cycle: bool = True
  ) -> dict[str, jax.Array]:
    """The training pass of one batch (docs/method.md §5.2, `munit`).

    Args:
      x_a, x_b: [B, H, W, 3] in [-1, 1] (unpaired).
      noise: draw the cross-domain style codes from N(0, I) (training); else 0.
      cycle: also decode x_aba, x_bab (only the explicit cycle loss needs them).
    Returns:
      dict of images x_aa, x_bb (own style), x_ab, x_ba (prior style)
      [B, H, W, 3]; content codes c_a, c_b and of the translations c_ab
      (Ec_B(x_ab), which should equal c_a), c_ba [B, h, w, C]; style codes
      s_a, s_b (own), prior_a, prior_b (drawn), s_ab (Es_B(x_ab), which should
      equal prior_b), s_ba [B, 1, 1, S]; with `cycle`, x_aba, x_bab.
    """
    n = x_a.shape[0]
    c_a, c_b = self.content(x_a, "a"), self.content(x_b, "b")
    s_a, s_b = self.style(x_a, "a"), self.style(x_b, "b")
    prior_a, prior_b = self.prior(n, noise=noise), self.prior(n, noise=noise)
    # Each decoder sees its reconstruction and its translation as one batch
    # (AdaIN is per sample, so this changes nothing but the kernel sizes).
    y_a = self.decode(jnp.concatenate([c_a, c_b]), jnp.concatenate([s_a, prior_a]), "a")
    y_b = self.decode(jnp.concatenate([c_b, c_a]), jnp.concatenate([s_b, prior_b]), "b")
    out = dict(
      x_aa=y_a[:n],
      x_ba=y_a[n:],
      x_bb=y_b[:n],
      x_ab=y_b[n:],
      c_a=c_a,
      c_b=c_b,
      s_a=s_a,
      s_b=s_b,
      prior_a=prior_a,
      prior_b=prior_b,
    )
    out["c_ab"], out["s_ab"] = self.content(out["x_ab"], "b"), self.style(out["x_ab"], "b")
    out["c_ba"], out["s_ba"] = self.content(out["x_ba"], "a"), self.style(out["x_ba"], "a")
    if cycle:
      out["x_aba"] = self.decode(out["c_ab"], s_a, "a")
      out["x_bab"] = self.decode(out["c_ba"], s_b, "b")
    return out
