"""Large images in bounded memory: translation in overlapping tiles, equal to
the whole-image translation up to float rounding (`api.Translator`'s
`tile_size`, `translate --tile_size`).

Why tiles can be exact. Every layer of EGSC-IT's translation path is local (a
convolution sees a few pixels around each output pixel) except two, which
take per-channel statistics over the whole image:
  - with `model.content_sign_norm`, the sign-normalised instance norm after
    the content encoder's first convolution (mean, variance, skewness);
  - AdaIN, which normalises the masked content m * c by its own mean and
    variance before applying the exemplar's.
So the image is cut into cores that partition it, each grown by a halo at
least as wide as the network's receptive radius (`receptive_radius`) into
the tile the network sees; then, per (source, exemplar) pair:
  1. (sign norm only) one pass over the tiles through the first convolution
     for the image-wide mean and variance, one more for the skewness;
  2. one pass through E, the shared blocks and F for the image-wide mean and
     variance of m * c;
  3. one pass through the whole network with those statistics; each tile's
     core is written out.
With the statistics of the whole image, a core's pixels get the same values
as in the untiled pass: the halo absorbs the wrong borders of the tile (its
reflect padding), so no blending is needed and there are no seams. Partial
statistics are summed over cores only and merged in float64 (Chan, Golub and
LeVeque's pairwise update), so no pass holds more than one tile.

The latent noise of `model.test_noise` is drawn once for the whole latent map,
with the same key and shape as the untiled pass draws it (so with the same
values), and each tile takes its slice. The exemplar's AdaIN statistics are
the moments of F's features over the whole exemplar; F has no normalisation,
so for a large exemplar they are merged from tiles the same way (`style`).

Memory: one tile's activations, plus the image, the output and the latent
noise at full size (float32 [H, W, 3] each, and [H / s, W / s, C] for the
noise, s = 2**n_downsample, C = ngf * s): docs/benchmarks.md has the figures.
Tiles run on one device. MUNIT has instance norms in every block and is not
tiled (the Translator runs it whole).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from egsc_jax import jit_cache, steps
from egsc_jax.models import Models, layers

PyTree = Any
# The tile core's side in pixels when the caller gives none: a 512 x 512 core
# with the paper-size generator's halo (80) is a 672 x 672 tile, about 1 GB
# of activations at ngf 64 on CPU (docs/benchmarks.md).
DEFAULT_TILE_SIZE = 512


# ----------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------


def receptive_radius(models: Models) -> int:
  """Input pixels on each side of an output pixel that it depends on, for
  the translation x -> G(AdaIN(F-mask(x) * c(x))) (an upper bound).

  A k x k convolution whose input has stride S (image pixels per feature
  pixel) reaches (k - 1) / 2 * S pixels further; a 3x3 stride-2 transposed
  convolution reaches one input pixel, S of its input's stride. Residual
  blocks are two 3x3 convolutions at the bottleneck stride s = 2**n_down.
  """
  g, f = models.generator, models.exemplar
  s = 2**g.n_downsample
  down = 3 + sum(2**i for i in range(g.n_downsample))  # 7x7 conv_in, 3x3 stride-2 convs
  content = down + 2 * s * (g.n_enc_res + 2 * g.n_shared)  # E, shared encoder and generator
  mask = 3 + sum(2**i for i in range(f.n_downsample)) + 2 * s * f.n_res  # F
  up = 2 * s * g.n_dec_res + sum(s // 2**i for i in range(g.n_downsample))
  return max(content, mask) + up


def halo(models: Models) -> int:
  """The tile margin: the receptive radius rounded up to a multiple of the
  bottleneck stride (tiles must sit on the stride-2 grid), plus one stride."""
  s = 2**models.generator.n_downsample
  return -(-receptive_radius(models) // s) * s + s


@dataclasses.dataclass(frozen=True)
class Tile:
  """A core (the pixels the tile writes) inside a window (what the network sees).

  Both are (y0, y1, x0, x1) in image pixels; every window of one image has
  the same shape, so one image compiles each pass once.
  """

  core: tuple[int, int, int, int]
  window: tuple[int, int, int, int]

  def core_in_window(self, stride: int = 1) -> np.ndarray:
    """The core in the window's coordinates, divided by `stride`: int32 [4]."""
    (c0, c1, c2, c3), (w0, _, w2, _) = self.core, self.window
    return np.asarray([c0 - w0, c1 - w0, c2 - w2, c3 - w2], np.int32) // stride


def _spans(n: int, core: int, margin: int) -> list[tuple[int, int, int, int]]:
  """One axis of n pixels -> (core0, core1, window0, window1) for each core."""
  size = min(n, core + 2 * margin)
  out = []
  for c0 in range(0, n, core):
    c1 = min(n, c0 + core)
    # Clamped into the image, the window keeps its size: a core at the image's
    # border needs no margin there (the untiled pass pads the same border).
    w0 = max(0, min(c0 - margin, n - size))
    out.append((c0, c1, w0, w0 + size))
  return out


def tiles(size: tuple[int, int], *, core: int, margin: int, align: int) -> list[Tile]:
  """The tiles of an image of `size` (H, W), both multiples of `align`.

  core: the core side (rounded up to a multiple of align); margin: the halo,
  a multiple of align. Windows start on multiples of align, so each tile's
  down-sampling grid is the image's.
  """
  h, w = size
  if h % align or w % align or margin % align:
    raise ValueError(f"image {size} and halo {margin} must be multiples of {align}")
  core = -(-int(core) // align) * align
  return [
    Tile(core=(y0, y1, x0, x1), window=(v0, v1, u0, u1))
    for y0, y1, v0, v1 in _spans(h, core, margin)
    for x0, x1, u0, u1 in _spans(w, core, margin)
  ]


def needs_tiles(size: tuple[int, int], models: Models, tile_size: int | None) -> bool:
  """Whether an image of network size (H, W) is translated in tiles: it is
  larger than one tile (core plus halo on both sides), and the architecture
  allows it (EGSC-IT's, with UNIT and CycleGAN; not MUNIT)."""
  if not tile_size or models.architecture != "egsc_it":
    return False
  side = int(tile_size) + 2 * halo(models)
  return size[0] > side or size[1] > side


# ----------------------------------------------------------------------------
# Statistics merged over tiles
# ----------------------------------------------------------------------------


@dataclasses.dataclass
class Moments:
  """Running count, mean and sum of squared deviations per channel (float64)."""

  n: float = 0.0
  mean: np.ndarray | float = 0.0
  m2: np.ndarray | float = 0.0

  def add(self, n: float, mean: np.ndarray, m2: np.ndarray) -> None:
    """Merges a part's (n, mean, m2) (Chan, Golub and LeVeque 1979)."""
    n, mean, m2 = float(n), np.asarray(mean, np.float64), np.asarray(m2, np.float64)
    total = self.n + n
    delta = mean - self.mean
    self.mean = self.mean + delta * (n / total)
    self.m2 = self.m2 + m2 + delta**2 * (self.n * n / total)
    self.n = total

  def mean_var(self) -> tuple[np.ndarray, np.ndarray]:
    """(mean, population variance), float32 [1, 1, 1, C], as `layers.moments`."""
    shape = (1, 1, 1, -1)
    return (
      np.asarray(self.mean, np.float32).reshape(shape),
      np.asarray(self.m2 / self.n, np.float32).reshape(shape),
    )


def _window_weights(x: jax.Array, win: jax.Array) -> jax.Array:
  """1.0 inside win = (y0, y1, x0, x1) of x [1, h, w, C], else 0: [1, h, w, 1]."""
  ys = jnp.arange(x.shape[1])
  xs = jnp.arange(x.shape[2])
  inside = ((ys >= win[0]) & (ys < win[1]))[:, None] & ((xs >= win[2]) & (xs < win[3]))[None]
  return inside[None, :, :, None].astype(jnp.float32)


def _window_moments(x: jax.Array, win: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """x [1, h, w, C] over win -> (n, mean [C], m2 [C]), float32."""
  w = _window_weights(x, win)
  x = x.astype(jnp.float32)
  n = jnp.sum(w)
  mean = jnp.sum(w * x, axis=(0, 1, 2)) / n
  return n, mean, jnp.sum(w * jnp.square(x - mean), axis=(0, 1, 2))


# ----------------------------------------------------------------------------
# The passes (jitted once per models, domain and tile shape)
# ----------------------------------------------------------------------------


def _sown(variables: PyTree, module: str, name: str) -> jax.Array:
  return variables["intermediates"][module][name][0]


def _first_conv(params, tile, *, models: Models, domain: str) -> jax.Array:
  """E_domain's first convolution of tile [1, T, T, 3], before the sign norm
  (the rest of the encoder is traced but dropped from the compiled program)."""
  _, sown = models.generator.apply(
    {"params": params}, tile, domain, noise=False, method="encode", mutable=["intermediates"]
  )
  return _sown(sown, f"encoder_{domain}", "sign_norm_input")


def _sign_norm_moments(params, tile, win, *, models: Models, domain: str):
  """Moments of E_domain's first convolution over the core win of tile [1, T, T, 3]."""
  return _window_moments(_first_conv(params, tile, models=models, domain=domain), win)


def _sign_norm_skew_sum(params, tile, win, mean, var, *, models: Models, domain: str):
  """Sum over the core of ((x - mean) / sqrt(var + eps))**3, x the first
  convolution of E_domain; mean, var [1, 1, 1, C] of the whole image."""
  x = _first_conv(params, tile, models=models, domain=domain).astype(jnp.float32)
  y = (x - mean) * jax.lax.rsqrt(var + layers.NORM_EPS)
  return jnp.sum(_window_weights(x, win) * y**3, axis=(0, 1, 2))


def _translate_tile(
  params, frozen, tile, style, sign_norm_stats, adain_stats, eps, *, models: Models, source: str
):
  """The translation of tile [1, T, T, 3] with image-wide statistics, and
  the sown AdaIN input (for pass 2). Returns (image [1, T, T, 3], {sown})."""
  mask, _ = steps.conditioning(models, frozen, tile, source)
  return models.generator.apply(
    {"params": params},
    tile,
    source=source,
    mask=mask,
    style=style,
    noise=eps is not None,
    sign_norm_stats=sign_norm_stats,
    adain_stats=adain_stats,
    eps=eps,
    method="translate",
    mutable=["intermediates"],
  )


def _adain_moments(
  params, frozen, tile, win, style, sign_norm_stats, eps, *, models: Models, source: str
):
  """Moments of AdaIN's input m * c over the core win (at the bottleneck)."""
  _, sown = _translate_tile(
    params, frozen, tile, style, sign_norm_stats, None, eps, models=models, source=source
  )
  target = "b" if source == "a" else "a"
  return _window_moments(_sown(sown, f"decoder_{target}", "adain_input"), win)


def _translation(
  params, frozen, tile, style, sign_norm_stats, adain_stats, eps, *, models: Models, source: str
):
  y, _ = _translate_tile(
    params, frozen, tile, style, sign_norm_stats, adain_stats, eps, models=models, source=source
  )
  return y


def _exemplar_moments(frozen, tile, win, *, models: Models, domain: str):
  """Moments of F_domain's features over the core win (at the bottleneck)."""
  f = models.exemplar.apply({"params": frozen[domain]}, tile)
  return _window_moments(f, win)


def _exemplar_features(frozen, tile, *, models: Models, domain: str):
  return models.exemplar.apply({"params": frozen[domain]}, tile)


def _latent_noise(params, key, *, models: Models, shape: tuple[int, ...]):
  return models.generator.apply(
    {"params": params}, shape, method="latent_noise", rngs={"noise": key}
  )


# ----------------------------------------------------------------------------
# Whole images
# ----------------------------------------------------------------------------


def _cut(x: np.ndarray, window: tuple[int, int, int, int], stride: int = 1) -> np.ndarray:
  """x [H, W, ...] -> its window (divided by stride) with a batch axis."""
  y0, y1, x0, x1 = (v // stride for v in window)
  return x[None, y0:y1, x0:x1]


def _stride(models: Models) -> int:
  return 2**models.generator.n_downsample


def translate(
  params: PyTree,
  frozen: PyTree,
  source: np.ndarray,
  style: tuple[np.ndarray, np.ndarray] | None,
  key: jax.Array | None,
  *,
  models: Models,
  direction: str,
  tile_size: int = DEFAULT_TILE_SIZE,
) -> np.ndarray:
  """One source translated in tiles, as `steps.translate_with_style` would whole.

  Args:
    params, frozen: the generator's and F's parameters (on one device).
    source: float32 [H, W, 3] in [-1, 1], H and W multiples of 2**n_downsample.
    style: the exemplar's AdaIN statistics (mean, var), each [1, 1, 1, C], or
      None for variants without AdaIN.
    key: the pair's latent-noise key (`fold_in(key(seed), noise_id)`, as the
      Translator keys it), or None when the run adds no test noise.
    tile_size: the core side in pixels.
  Returns:
    float32 [H, W, 3] in [-1, 1].
  """
  src = "a" if direction == "a2b" else "b"
  s = _stride(models)
  grid = tiles(source.shape[:2], core=tile_size, margin=halo(models), align=s)
  jit = dict(models=models)

  sign_norm_stats = None
  if models.generator.content_sign_norm:
    moments_fn = jit_cache.jitted(_sign_norm_moments, domain=src, **jit)
    acc = Moments()
    for t in grid:
      acc.add(*moments_fn(params, _cut(source, t.window), t.core_in_window()))
    mean, var = acc.mean_var()
    skew_fn = jit_cache.jitted(_sign_norm_skew_sum, domain=src, **jit)
    cubes = sum(
      np.asarray(skew_fn(params, _cut(source, t.window), t.core_in_window(), mean, var), np.float64)
      for t in grid
    )
    skew = np.asarray(cubes / acc.n, np.float32).reshape(1, 1, 1, -1)
    sign_norm_stats = (mean, var, skew)

  noise = None
  if key is not None and models.test_noise:
    g = models.generator
    latent_shape = (1, source.shape[0] // s, source.shape[1] // s, g.ngf * s)
    noise_fn = jit_cache.jitted(_latent_noise, shape=latent_shape, **jit)
    noise = np.asarray(noise_fn(params, key))[0]

  def eps_of(t):
    return None if noise is None else _cut(noise, t.window, s)

  adain_stats = None
  if style is not None:
    adain_fn = jit_cache.jitted(_adain_moments, source=src, **jit)
    acc = Moments()
    for t in grid:
      tile = _cut(source, t.window)
      acc.add(
        *adain_fn(params, frozen, tile, t.core_in_window(s), style, sign_norm_stats, eps_of(t))
      )
    adain_stats = acc.mean_var()

  out = np.empty(source.shape, np.float32)
  translate_fn = jit_cache.jitted(_translation, source=src, **jit)
  for t in grid:
    y = translate_fn(
      params, frozen, _cut(source, t.window), style, sign_norm_stats, adain_stats, eps_of(t)
    )
    r0, r1, c0, c1 = t.core_in_window()
    y0, y1, x0, x1 = t.core
    out[y0:y1, x0:x1] = np.asarray(y)[0, r0:r1, c0:c1]
  return out


def style(
  frozen: PyTree,
  exemplar: np.ndarray,
  *,
  models: Models,
  domain: str,
  tile_size: int = DEFAULT_TILE_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
  """The AdaIN statistics of F_domain over a whole exemplar, from tiles.

  exemplar: float32 [H, W, 3] in [-1, 1]. Returns (mean, var), float32
  [1, 1, 1, C], as `steps.exemplar_style` computes them untiled.
  """
  s = _stride(models)
  fn = jit_cache.jitted(_exemplar_moments, models=models, domain=domain)
  acc = Moments()
  for t in tiles(exemplar.shape[:2], core=tile_size, margin=halo(models), align=s):
    acc.add(*fn(frozen, _cut(exemplar, t.window), t.core_in_window(s)))
  return acc.mean_var()


def features(
  frozen: PyTree,
  image: np.ndarray,
  *,
  models: Models,
  domain: str,
  tile_size: int = DEFAULT_TILE_SIZE,
) -> np.ndarray:
  """F_domain's features of a whole image [H, W, 3], from tiles: float32
  [H / s, W / s, C] (F is local, so each core's features are exact)."""
  s = _stride(models)
  fn = jit_cache.jitted(_exemplar_features, models=models, domain=domain)
  out = None
  for t in tiles(image.shape[:2], core=tile_size, margin=halo(models), align=s):
    f = np.asarray(fn(frozen, _cut(image, t.window)))[0]
    if out is None:
      out = np.empty((image.shape[0] // s, image.shape[1] // s, f.shape[-1]), np.float32)
    r0, r1, c0, c1 = t.core_in_window(s)
    y0, y1, x0, x1 = (v // s for v in t.core)
    out[y0:y1, x0:x1] = f[r0:r1, c0:c1]
  return out
