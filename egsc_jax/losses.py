"""Keyword-only pure losses of EGSC-IT (docs/method.md §2, 1.4). All results are float32 scalars.

Notation follows docs/method.md §2: ||.||_1 is the MEAN absolute error; LS_G, LS_D are the
least-squares GAN losses on discriminator patch maps.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp

# relu1_1 ... relu5_1 content weights (docs/method.md §2, 10); style weights are 1 each.
CONTENT_LAYER_WEIGHTS = (0.2, 0.4, 0.6, 0.8, 1.0)
STYLE_LAYER_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0)


def _f32(x):
  return jnp.asarray(x, jnp.float32)


def lsgan_generator(*, fake: jax.Array) -> jax.Array:
  """LS_G(o) = mean((o - 1)^2) over D's patch map of a fake."""
  return jnp.mean(jnp.square(_f32(fake) - 1.0))


def lsgan_discriminator(*, real: jax.Array, fake: jax.Array) -> jax.Array:
  """LS_D(r, f) = 1/2 [mean((r - 1)^2) + mean(f^2)]."""
  return 0.5 * (jnp.mean(jnp.square(_f32(real) - 1.0)) + jnp.mean(jnp.square(_f32(fake))))


def l1(*, pred: jax.Array, target: jax.Array) -> jax.Array:
  """Mean absolute error over all elements."""
  return jnp.mean(jnp.abs(_f32(pred) - _f32(target)))


def kl_like(*, z: jax.Array) -> jax.Array:
  """UNIT's KL stand-in: mean(z^2) of the NOISY latent (docs/method.md §2, 6.3 item 6)."""
  return jnp.mean(jnp.square(_f32(z)))


def spatial_l2_normalize(phi: jax.Array, eps: float = 1e-12) -> jax.Array:
  """phi / sqrt(max(sum_{h,w} phi^2, eps)) per sample and channel (docs/method.md §1.8).

  [B, H, W, C] -> [B, H, W, C] float32.
  """
  phi = _f32(phi)
  sq = jnp.sum(jnp.square(phi), axis=(1, 2), keepdims=True)
  return phi * jax.lax.rsqrt(jnp.maximum(sq, eps))


def gram(phi: jax.Array) -> jax.Array:
  """Gram(phi) = phi^T phi / (H * W), per sample. [B, H, W, C] -> [B, C, C]."""
  b, h, w, c = phi.shape
  flat = _f32(phi).reshape(b, h * w, c)
  return jnp.einsum("bnc,bnd->bcd", flat, flat) / (h * w)


def perceptual(
  *,
  source: Sequence[jax.Array],
  translation: Sequence[jax.Array],
  exemplar: Sequence[jax.Array],
  content_weights: Sequence[float] = CONTENT_LAYER_WEIGHTS,
  style_weights: Sequence[float] = STYLE_LAYER_WEIGHTS,
) -> tuple[jax.Array, jax.Array]:
  """Content and style terms of L_P for one direction (docs/method.md §2).

  Each argument is the list of the VGG relu*_1 maps [B, H_i, W_i, C_i]
  (raw; normalised here), relu1_1 first. Content compares the translation with
  its SOURCE, style (Gram) with its EXEMPLAR; layer i has weights
  content_weights[i], style_weights[i].
  Returns (content, style), float32 scalars.
  """
  content = jnp.float32(0.0)
  style = jnp.float32(0.0)
  for ws, wc, s, t, e in zip(style_weights, content_weights, source, translation, exemplar):
    s, t, e = (spatial_l2_normalize(u) for u in (s, t, e))
    if wc:  # static weights: a zero-weight layer adds no work
      content += wc * l1(pred=t, target=jax.lax.stop_gradient(s))
    if ws:
      style += ws * l1(pred=gram(t), target=jax.lax.stop_gradient(gram(e)))
  return content, style


def stage2_generator(
  *,
  outputs: Mapping[str, jax.Array],
  x_a: jax.Array,
  x_b: jax.Array,
  d_fake_a: jax.Array,
  d_fake_b: jax.Array,
  weights: Mapping[str, float],
  vgg_feats: Mapping[str, Sequence[jax.Array]] | None = None,
  content_layer_weights: Sequence[float] = CONTENT_LAYER_WEIGHTS,
  style_layer_weights: Sequence[float] = STYLE_LAYER_WEIGHTS,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """L_G of docs/method.md §2 and its terms.

  Args:
    outputs: the generator's dict (x_aa, x_bb, x_ab, x_ba, x_aba, x_bab, z,
      z_aba, z_bab); missing cycle keys skip the cycle terms.
    x_a, x_b: the real batch [B, H, W, 3].
    d_fake_a, d_fake_b: D_A(x_ba) and D_B(x_ab) patch maps.
    weights: gan, recon, cycle, kl, kl_cycle, style, content.
    vgg_feats: VGG maps of 'a', 'b', 'ab', 'ba' (relu1_1 onwards, as many as
      the layer weights use), or None to skip L_P.
    content_layer_weights, style_layer_weights: per-layer weights of L_P.
  Returns:
    (total, terms) with every unweighted term and 'total'.
  """
  t = {}
  t["gan"] = lsgan_generator(fake=d_fake_a) + lsgan_generator(fake=d_fake_b)
  t["recon"] = l1(pred=outputs["x_aa"], target=x_a) + l1(pred=outputs["x_bb"], target=x_b)
  # The code adds the shared-z term to both domain losses, hence the 2 (docs/method.md §2).
  t["kl"] = 2.0 * kl_like(z=outputs["z"])
  total = weights["gan"] * t["gan"] + weights["recon"] * t["recon"] + weights["kl"] * t["kl"]
  if "x_aba" in outputs:
    t["cycle"] = l1(pred=outputs["x_aba"], target=x_a) + l1(pred=outputs["x_bab"], target=x_b)
    t["kl_cycle"] = kl_like(z=outputs["z_aba"]) + kl_like(z=outputs["z_bab"])
    total += weights["cycle"] * t["cycle"] + weights["kl_cycle"] * t["kl_cycle"]
  if vgg_feats is not None:
    kw = dict(content_weights=content_layer_weights, style_weights=style_layer_weights)
    c_ab, s_ab = perceptual(
      source=vgg_feats["a"], translation=vgg_feats["ab"], exemplar=vgg_feats["b"], **kw
    )
    c_ba, s_ba = perceptual(
      source=vgg_feats["b"], translation=vgg_feats["ba"], exemplar=vgg_feats["a"], **kw
    )
    t["content"], t["style"] = c_ab + c_ba, s_ab + s_ba
    total += weights["content"] * t["content"] + weights["style"] * t["style"]
  t["total"] = total
  return total, t


def munit_generator(
  *,
  outputs: Mapping[str, jax.Array],
  x_a: jax.Array,
  x_b: jax.Array,
  d_fake_a: jax.Array,
  d_fake_b: jax.Array,
  weights: Mapping[str, float],
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """MUNIT's generator loss (docs/method.md §5.2, `munit`) and its terms.

    gan          LS_G(D_A(x_ba)) + LS_G(D_B(x_ab))
    recon        ||x_aa - x_a||_1 + ||x_bb - x_b||_1
    content_code ||Ec_B(x_ab) - c_a||_1 + ||Ec_A(x_ba) - c_b||_1
    style_code   ||Es_B(x_ab) - s_b~||_1 + ||Es_A(x_ba) - s_a~||_1  (s~ the N(0, I) draws)
    cycle        ||x_aba - x_a||_1 + ||x_bab - x_b||_1  (only when outputs has x_aba)

  Args:
    outputs: `MunitGenerator.__call__`'s dict.
    x_a, x_b: the real batch [B, H, W, 3].
    d_fake_a, d_fake_b: D_A(x_ba) and D_B(x_ab) patch maps.
    weights: gan, recon, content_code, style_code, cycle.
  Returns:
    (total, terms) with every unweighted term and 'total'.
  """
  o = outputs
  t = dict(
    gan=lsgan_generator(fake=d_fake_a) + lsgan_generator(fake=d_fake_b),
    recon=l1(pred=o["x_aa"], target=x_a) + l1(pred=o["x_bb"], target=x_b),
    content_code=l1(pred=o["c_ab"], target=o["c_a"]) + l1(pred=o["c_ba"], target=o["c_b"]),
    style_code=(l1(pred=o["s_ab"], target=o["prior_b"]) + l1(pred=o["s_ba"], target=o["prior_a"])),
  )
  if "x_aba" in o:
    t["cycle"] = l1(pred=o["x_aba"], target=x_a) + l1(pred=o["x_bab"], target=x_b)
  total = sum(weights[k] * v for k, v in t.items())
  t["total"] = total
  return total, t


def stage2_discriminator(
  *,
  d_real_a: jax.Array,
  d_fake_a: jax.Array,
  d_real_b: jax.Array,
  d_fake_b: jax.Array,
  gan_weight: float,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """L_D = gan * [LS_D(D_A(x_a), D_A(x_ba)) + LS_D(D_B(x_b), D_B(x_ab))]."""
  loss_a = lsgan_discriminator(real=d_real_a, fake=d_fake_a)
  loss_b = lsgan_discriminator(real=d_real_b, fake=d_fake_b)
  total = gan_weight * (loss_a + loss_b)
  return total, dict(
    d_a=loss_a,
    d_b=loss_b,
    d_total=total,
    d_real_mean=0.5 * (jnp.mean(d_real_a) + jnp.mean(d_real_b)),
    d_fake_mean=0.5 * (jnp.mean(d_fake_a) + jnp.mean(d_fake_b)),
  )


def stage1_generator(
  *, x: jax.Array, x_hat: jax.Array, z: jax.Array, d_fake: jax.Array, weights: Mapping[str, float]
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """One domain's stage-1 VAE-GAN loss: gan*LS_G + recon*L1 + kl*mean(z^2) (docs/method.md §1.4)."""
  t = dict(gan=lsgan_generator(fake=d_fake), recon=l1(pred=x_hat, target=x), kl=kl_like(z=z))
  total = weights["gan"] * t["gan"] + weights["recon"] * t["recon"] + weights["kl"] * t["kl"]
  t["total"] = total
  return total, t
