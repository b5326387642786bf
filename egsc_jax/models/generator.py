"""The EGSC-IT generator (stage 2) and the stage-1 autoencoder that becomes F.

Information flow (docs/method.md §1.1, 1.3, 1.5):

    x_A -E_A-> shared enc -> mu_A, z_A = mu_A + N(0, 1) -> shared gen -> c_A
    x_AB = G_B(AdaIN_{F_B(x_B)}(m_A * c_A)),  m_A = 0.5 + 0.5 sigmoid(F_A(x_A))
    x_AA = G_A(AdaIN_{F_A(x_A)}(m_A * c_A))
    x_ABA = G_A(AdaIN_{F_A(x_A)}(m_A * c(E_B(x_AB))))   (cycle: original mask and stats)

and symmetrically for B. Like the authors' code, the A and B halves travel
through the shared blocks and each decoder as one concatenated batch, which
gives XLA one large convolution instead of two small ones.

Variants (docs/method.md §5.2) are constructor switches: `n_shared=0` gives CycleGAN's
generator (no shared blocks, no latent noise); the mask and AdaIN are switched
by passing `mask=None` / `style=None` (see `exemplar_conditioning`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from egsc_jax.models import layers
from egsc_jax.models.encoders import DomainDecoder, DomainEncoder, SharedBlocks, bottleneck_channels

Dtype = Any
Style = tuple[jax.Array, jax.Array]


def exemplar_conditioning(
  f: jax.Array, *, use_mask: bool, use_adain: bool
) -> tuple[jax.Array | None, Style | None]:
  """Feature mask and AdaIN statistics from a frozen F feature f [B, h, w, C].

  Returns (mask [B, h, w, C] or None, (mean, var) each [B, 1, 1, C] or None).
  Gradients are stopped: F is frozen in stage 2 (docs/method.md §1.4).
  """
  f = jax.lax.stop_gradient(f)
  mask = layers.feature_mask(f) if use_mask else None
  style = layers.moments(f) if use_adain else None
  return mask, style


def _concat(a, b):
  if a is None:
    return None
  return jax.tree.map(lambda u, v: jnp.concatenate([u, v], axis=0), a, b)


def _repeat2(x):
  if x is None:
    return None
  return jax.tree.map(lambda u: jnp.concatenate([u, u], axis=0), x)


class Generator(nn.Module):
  """E_A, E_B, the shared blocks, G_A and G_B of EGSC-IT (or UNIT/CycleGAN)."""

  ngf: int = 64
  n_downsample: int = 2
  n_enc_res: int = 3
  n_dec_res: int = 3
  n_shared: int = 1
  adain_mode: str = "standard"
  adain_eps: float = 1e-5
  output_scale: float = 1.0
  content_sign_norm: bool = False  # E_A, E_B: layers.sign_normalized_instance_norm
  dtype: Dtype = jnp.float32

  def setup(self):
    ch = bottleneck_channels(self.ngf, self.n_downsample)
    enc = dict(
      ngf=self.ngf,
      n_downsample=self.n_downsample,
      n_res=self.n_enc_res,
      sign_norm=self.content_sign_norm,
      dtype=self.dtype,
    )
    dec = dict(
      ngf=self.ngf,
      n_upsample=self.n_downsample,
      n_res=self.n_dec_res,
      adain_mode=self.adain_mode,
      adain_eps=self.adain_eps,
      output_scale=self.output_scale,
      dtype=self.dtype,
    )
    self.encoder_a = DomainEncoder(**enc)
    self.encoder_b = DomainEncoder(**enc)
    if self.n_shared:
      self.shared_encoder = SharedBlocks(ch, self.n_shared, dtype=self.dtype)
      self.shared_generator = SharedBlocks(ch, self.n_shared, dtype=self.dtype)
    self.decoder_a = DomainDecoder(**dec)
    self.decoder_b = DomainDecoder(**dec)

  # -- pieces -----------------------------------------------------------------

  def _encoder(self, domain: str) -> DomainEncoder:
    return {"a": self.encoder_a, "b": self.encoder_b}[domain]

  def _decoder(self, domain: str) -> DomainDecoder:
    return {"a": self.decoder_a, "b": self.decoder_b}[domain]

  def latent_noise(self, shape: tuple[int, ...]) -> jax.Array:
    """The N(0, 1) noise `latent` adds, float32 of `shape` (the first draw
    from the 'noise' RNG stream; tiling.py draws it once for a whole image)."""
    return jax.random.normal(self.make_rng("noise"), shape, jnp.float32)

  def latent(
    self, h: jax.Array, *, noise: bool, eps: jax.Array | None = None
  ) -> tuple[jax.Array, jax.Array]:
    """Encoder features [B, h, w, C] -> (mu, z); z = mu + N(0, 1) when `noise`.

    The noise needs the 'noise' RNG stream, unless `eps` [B, h, w, C] gives it.
    Without shared blocks (CycleGAN) mu = z = h.
    """
    if not self.n_shared:
      return h, h
    mu = self.shared_encoder(h)
    if not noise:
      return mu, mu
    eps = self.latent_noise(mu.shape) if eps is None else eps
    return mu, (mu.astype(jnp.float32) + eps).astype(mu.dtype)

  def content(self, z: jax.Array) -> jax.Array:
    return self.shared_generator(z) if self.n_shared else z

  def encode(
    self, x: jax.Array, domain: str, *, noise: bool, sign_norm_stats=None, eps=None
  ) -> tuple[jax.Array, jax.Array]:
    """x [B, H, W, 3] of `domain` -> (z [B, h, w, C], content c [B, h, w, C]).

    sign_norm_stats, eps: a tile's image-wide statistics and noise (tiling.py).
    """
    h = self._encoder(domain)(x, sign_norm_stats=sign_norm_stats)
    _, z = self.latent(h, noise=noise, eps=eps)
    return z, self.content(z)

  def decode(
    self, c: jax.Array, domain: str, *, mask=None, style=None, adain_stats=None
  ) -> jax.Array:
    """Content [B, h, w, C] -> image of `domain` [B, H, W, 3] in (-1, 1)."""
    return self._decoder(domain)(c, mask=mask, style=style, adain_stats=adain_stats)

  # -- whole passes -----------------------------------------------------------

  def translate(
    self,
    x: jax.Array,
    *,
    source: str,
    mask=None,
    style=None,
    noise: bool,
    sign_norm_stats=None,
    adain_stats=None,
    eps=None,
  ) -> jax.Array:
    """x [B, H, W, 3] of `source` -> the other domain, conditioned on the
    source's mask and the exemplar's statistics.

    When x is a tile of a larger image (tiling.py): sign_norm_stats and
    adain_stats are the whole image's statistics at the two non-local layers,
    eps [B, h, w, C] the tile's slice of the whole image's latent noise.
    """
    target = "b" if source == "a" else "a"
    _, c = self.encode(x, source, noise=noise, sign_norm_stats=sign_norm_stats, eps=eps)
    return self.decode(c, target, mask=mask, style=style, adain_stats=adain_stats)

  def __call__(
    self,
    x_a: jax.Array,
    x_b: jax.Array,
    *,
    mask_a=None,
    mask_b=None,
    style_a: Style | None = None,
    style_b: Style | None = None,
    noise: bool = True,
    cycle: bool = True,
  ) -> dict[str, jax.Array]:
    """The full stage-2 forward pass of one batch (docs/method.md §1.3, 1.5, 2).

    Args:
      x_a, x_b: [B, H, W, 3] in [-1, 1]; slot i of x_b is the exemplar for
        slot i of x_a and vice versa.
      mask_a, mask_b: feature masks from F_A(x_a), F_B(x_b), or None.
      style_a, style_b: AdaIN statistics of F_A(x_a), F_B(x_b), or None.
    Returns:
      dict of images x_aa, x_bb, x_ab, x_ba (and x_aba, x_bab), each
      [B, H, W, 3], and latents z [2B, h, w, C] (A then B), z_aba, z_bab.
    """
    n = x_a.shape[0]
    h = jnp.concatenate([self.encoder_a(x_a), self.encoder_b(x_b)], axis=0)
    _, z = self.latent(h, noise=noise)
    c = self.content(z)
    masks = _concat(mask_a, mask_b)
    # Decoder X sees [c_A; c_B] with each half's own mask and, for both halves,
    # the statistics of domain X's image in the same slot (docs/method.md §1.3).
    out_a = self.decode(c, "a", mask=masks, style=_repeat2(style_a))
    out_b = self.decode(c, "b", mask=masks, style=_repeat2(style_b))
    out = dict(x_aa=out_a[:n], x_ba=out_a[n:], x_bb=out_b[n:], x_ab=out_b[:n], z=z)
    if cycle:
      # Cycle: re-encode the translations; decode with the ORIGINAL image's
      # mask and statistics, no new exemplar (docs/method.md §1.5).
      h_cyc = jnp.concatenate([self.encoder_b(out["x_ab"]), self.encoder_a(out["x_ba"])], axis=0)
      _, z_cyc = self.latent(h_cyc, noise=noise)
      c_cyc = self.content(z_cyc)
      out["x_aba"] = self.decode(c_cyc[:n], "a", mask=mask_a, style=style_a)
      out["x_bab"] = self.decode(c_cyc[n:], "b", mask=mask_b, style=style_b)
      out["z_aba"], out["z_bab"] = z_cyc[:n], z_cyc[n:]
    return out


class AutoEncoder(nn.Module):
  """Stage 1: one domain's VAE-GAN autoencoder (docs/method.md §1.4).

  part1 = `encoder` (becomes F of that domain), part2 = shared-style residual
  block + N(0, 1) noise, part3 = residual block, part4 = decoder.
  """

  ngf: int = 64
  n_downsample: int = 2
  n_enc_res: int = 3
  n_dec_res: int = 3
  output_scale: float = 1.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, noise: bool = True) -> tuple[jax.Array, jax.Array]:
    """x [B, H, W, 3] -> (reconstruction [B, H, W, 3], noisy latent z)."""
    ch = bottleneck_channels(self.ngf, self.n_downsample)
    f = DomainEncoder(
      self.ngf, self.n_downsample, self.n_enc_res, dtype=self.dtype, name="encoder"
    )(x)
    mu = SharedBlocks(ch, 1, dtype=self.dtype, name="latent")(f)
    z = mu
    if noise:
      eps = jax.random.normal(self.make_rng("noise"), mu.shape, jnp.float32)
      z = (mu.astype(jnp.float32) + eps).astype(mu.dtype)
    c = SharedBlocks(ch, 1, dtype=self.dtype, name="content")(z)
    x_hat = DomainDecoder(
      self.ngf,
      self.n_downsample,
      self.n_dec_res,
      output_scale=self.output_scale,
      dtype=self.dtype,
      name="decoder",
    )(c)
    return x_hat, z
