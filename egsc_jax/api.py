"""The Python API of a trained run: `Translator` and `Style` (also
`egsc_jax.Translator`), used by the translate command, the notebook, the web
demo and the evaluation.

- `Translator.from_workdir(dir)` (or `.from_export(file)`), then `translate`,
  `grid`, `mask`, `style`, `translate_with_style` and `interpolate` on uint8
  images of any size and mode. Underneath, jitted functions over every local
  device (`jit_cache`); batches are split along a 'data' mesh axis and padded
  to fixed-size chunks, so one image shape compiles once. Each example's latent
  noise is keyed by its own id (`fold_in(key(seed), id)`), so a result does not
  depend on how the examples were batched.
- The image-size rule of the commands: the network runs at the trained
  resolution `config.data.image_size`, or (native size) at the input's own size
  rounded down to a multiple of 2**n_downsample; inputs are resized bilinearly
  with aligned corners, as the training pipeline resizes
  (`images.resize_bilinear_align_corners`), and the output is resized back to
  the source's size the same way.

Loading the run is `trained_run.load_trained`; a dataset split translated for
the evaluation is `eval.translations`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from egsc_jax import grids, jit_cache, steps, tiling, trained_run
from egsc_jax.data import images as images_lib
from egsc_jax.models import Models, layers

PyTree = Any
DIRECTIONS = ("a2b", "b2a")
DEFAULT_BATCH_SIZE = 32


# ----------------------------------------------------------------------------
# Image sizes
# ----------------------------------------------------------------------------


def network_size(
  source_size: tuple[int, int], *, trained_size: tuple[int, int], n_downsample: int, native: bool
) -> tuple[int, int]:
  """The (H, W) the network runs at for a source of `source_size`.

  The trained resolution, or with `native` the source's own size rounded down
  to a multiple of 2**n_downsample (the encoder halves the size that often and
  the decoder doubles it back), and at least that multiple.
  """
  if not native:
    return tuple(int(s) for s in trained_size)
  m = 2 ** int(n_downsample)
  return tuple(max(m, (int(s) // m) * m) for s in source_size)


def to_network_input(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """uint8 RGB [h, w, 3] -> float32 [H, W, 3] in [-1, 1], as training saw images."""
  return (images_lib.resize_bilinear_align_corners(image, size) - 127.5) / 127.5


def from_network_output(y: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """A translation float [h, w, 3] in [-1, 1] -> uint8 [H, W, 3] at `size`."""
  return grids.to_uint8(images_lib.resize_bilinear_align_corners(y, size))


# ----------------------------------------------------------------------------
# The jitted translation
# ----------------------------------------------------------------------------


def _translate_examples(
  params: PyTree,
  frozen: PyTree,
  source: jax.Array,
  exemplar: jax.Array,
  noise_ids: jax.Array,
  key: jax.Array,
  *,
  models: Models,
  direction: str,
) -> jax.Array:
  """source [B, H, W, 3], exemplar [B, h, w, 3], noise_ids int32 [B] -> [B, H, W, 3].

  vmap over single examples: example i draws its latent noise from
  fold_in(key, noise_ids[i]), whatever else is in the batch. Instance norm and
  AdaIN are per example, so nothing else couples the slots.
  """

  def one(s, e, i):
    return steps.translate(
      params,
      frozen,
      s[None],
      e[None],
      jax.random.fold_in(key, i),
      models=models,
      direction=direction,
    )[0]

  return jax.vmap(one)(source, exemplar, noise_ids)


def _translate_with_style_examples(
  params: PyTree,
  frozen: PyTree,
  source: jax.Array,
  mean: jax.Array,
  var: jax.Array,
  noise_ids: jax.Array,
  key: jax.Array,
  *,
  models: Models,
  direction: str,
) -> jax.Array:
  """`_translate_examples` with a `Style`'s mean, var [B, 1, 1, C] for exemplars.

  C is 0 for variants without AdaIN (the statistics are then unused); for MUNIT
  `mean` holds the style codes (`_style_examples`).
  """

  def one(s, m, v, i):
    if models.architecture == "munit":
      style = m[None]
    else:
      style = (m[None], v[None]) if models.use_adain else None
    return steps.translate_with_style(
      params, frozen, s[None], style, jax.random.fold_in(key, i), models=models, direction=direction
    )[0]

  return jax.vmap(one)(source, mean, var, noise_ids)


def _style_examples(
  params: PyTree, frozen: PyTree, exemplar: jax.Array, *, models: Models, domain: str
) -> tuple[jax.Array, jax.Array]:
  """exemplar [B, H, W, 3] -> F_domain statistics (mean, var) [B, 1, 1, C];
  for MUNIT (style code [B, 1, 1, S], empty [B, 1, 1, 0])."""
  style = steps.exemplar_style(params, frozen, exemplar, models=models, domain=domain)
  # One type for every variant: C = 0 where there is nothing (no AdaIN), and a
  # MUNIT code travels as the mean.
  empty = jnp.zeros(exemplar.shape[:1] + (1, 1, 0), jnp.float32)
  if style is None:
    return empty, empty
  if models.architecture == "munit":
    return style, empty
  return style


def _mask_examples(
  params: PyTree, frozen: PyTree, source: jax.Array, *, models: Models, domain: str
) -> jax.Array:
  """source [B, H, W, 3] -> the feature mask averaged over channels [B, h, w]."""
  del params
  mask, _ = steps.conditioning(models, frozen, source, domain)
  return jnp.mean(mask, axis=-1)


def _jitted(models: Models, direction: str, kind: str = "translate"):
  # One jitted function per (models, direction, kind), shared by every
  # Translator, so that training's periodic evaluation does not recompile.
  # For 'style' and 'mask' `direction` holds the domain.
  if kind == "translate":
    return jit_cache.jitted(_translate_examples, models=models, direction=direction)
  if kind == "with_style":
    return jit_cache.jitted(_translate_with_style_examples, models=models, direction=direction)
  fn = {"style": _style_examples, "mask": _mask_examples}[kind]
  return jit_cache.jitted(fn, models=models, domain=direction)


def _padded_size(n: int, batch_size: int, num_devices: int) -> int:
  """The batch a chunk of n <= batch_size examples is padded to: the smallest
  num_devices * 2**j that holds it, at most batch_size.

  Not batch_size itself: one native-size photo padded to a batch of 32 took 32
  times the memory and time of the photo (14.8 GB for 1411x1411 at ngf 8,
  docs/benchmarks.md). Powers of two keep the compiles per image shape few
  (log2(batch_size / num_devices) + 1 at most).
  """
  size = num_devices
  while size < n:
    size *= 2
  return min(size, batch_size)


def _other(domain: str) -> str:
  return "b" if domain == "a" else "a"


def _domains(direction: str) -> tuple[str, str]:
  """'a2b' -> ('a', 'b'): the sources' and the exemplars' domain."""
  if direction not in DIRECTIONS:
    raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
  return direction[0], direction[-1]


def _check_domain(domain: str) -> None:
  if domain not in ("a", "b"):
    raise ValueError(f"domain must be 'a' or 'b', got {domain!r}")


@dataclasses.dataclass(frozen=True)
class Style:
  """AdaIN statistics of K exemplars of one domain (`Translator.style`).

  Attributes:
    domain: 'a' or 'b', the exemplars' domain (the translations' target).
    mean, var: float32 [K, 1, 1, C], the per-channel spatial mean and variance of
      F_domain's features; C = 0 when the run has no AdaIN (UNIT, CycleGAN,
      :no_adain), where the exemplar does not condition the translation.
      A MUNIT run has no F: `mean` holds the exemplars' style codes
      [K, 1, 1, S] (its style encoder's), `var` is empty [K, 1, 1, 0];
      `mix` then blends the codes linearly, as MUNIT's paper interpolates styles.
  """

  domain: str
  mean: np.ndarray
  var: np.ndarray

  def __len__(self) -> int:
    return len(self.mean)

  def __getitem__(self, index) -> "Style":
    """Style(exemplars)[i] or [i:j]: a Style of those exemplars (K kept as an axis)."""
    index = np.arange(len(self))[index]
    index = np.atleast_1d(index)
    return Style(self.domain, self.mean[index], self.var[index])

  def mix(self, other: "Style", alphas: Sequence[float]) -> "Style":
    """Style [K=1] and Style [K=1] -> Style [K=len(alphas)], (1 - a) self + a other."""
    if other.domain != self.domain or len(self) != 1 or len(other) != 1:
      raise ValueError(
        "mix needs two single-exemplar styles of one domain, got "
        f"{len(self)} of {self.domain!r} and {len(other)} of {other.domain!r}"
      )
    a = np.asarray(alphas, np.float32).reshape(-1, 1, 1, 1)
    mean, var = steps.mix_styles((self.mean, self.var), (other.mean, other.var), a)
    return Style(self.domain, np.asarray(mean, np.float32), np.asarray(var, np.float32))


class Translator:
  """A trained generator on every local device: the Python API of a workdir.

      t = Translator.from_workdir("workdirs/mnist_single_sn")
      grid = t.translate(sources, exemplars, "a2b")   # S uint8 [E, h_s, w_s, 3]

  Images are numpy uint8 arrays of any size and mode (`[H, W]` grey, `[H, W, 3]`,
  `[H, W, 4]` RGBA on white, ...; see `images.as_rgb`) or PIL images. They are
  resized bilinearly to the network size (the trained resolution, or with
  `native_size` the source's size rounded down to a multiple of
  2**n_downsample; exemplars go in at the source's network size) and scaled to
  [-1, 1], as training saw them; translations come back at each source's size.
  The pair (source s, exemplar e) of a call with E exemplars draws its latent
  noise (config.model.test_noise) from id s * E + e, whatever the batching.

  Large images (`native_size`): a source, exemplar or mask input whose network
  size is larger than one tile (`tile_size` plus the network's halo on both
  sides) is processed in overlapping tiles on one device, with every
  statistic taken over the whole image (`egsc_jax.tiling`): the result equals
  the untiled one up to float rounding, in memory bounded by the tile.
  `tile_size=None` never tiles. MUNIT runs are never tiled.

  The low-level `__call__` works on network-ready float batches paired one to
  one (evaluation and training use it). Examples are processed in chunks of
  `batch_size` (rounded up to a multiple of the device count), the last one
  padded to the device count times a power of two (`_padded_size`), so each
  image shape compiles a few times at most.
  """

  def __init__(
    self,
    models: Models,
    params: PyTree,
    frozen: PyTree,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    devices: Sequence[jax.Device] | None = None,
    image_size: tuple[int, int] | None = None,
    native_size: bool = False,
    tile_size: int | None = tiling.DEFAULT_TILE_SIZE,
    trained: trained_run.Trained | None = None,
  ):
    """`image_size`: the trained (H, W), needed by the uint8 methods; `tile_size`:
    the tile core's side in pixels for large images, None never tiles;
    `trained`: the loaded run, kept as `self.trained` (step, config) when known."""
    self.models = models
    self.mesh = trained_run.local_mesh(devices)
    n = self.mesh.devices.size
    self.batch_size = max(n, -(-int(batch_size) // n) * n)
    rep = NamedSharding(self.mesh, P())
    self._batch = NamedSharding(self.mesh, P("data"))
    self.params = jax.device_put(params, rep)
    self.frozen = jax.device_put(frozen, rep)
    self.key = jax.device_put(jax.random.key(seed), rep)
    self.image_size = None if image_size is None else tuple(int(s) for s in image_size)
    self.native_size = bool(native_size)
    self.tile_size = int(tile_size) if tile_size else None
    self.trained = trained
    self._one_device = None  # (params, frozen, key) on one device, for tiles

  @classmethod
  def from_trained(cls, trained: trained_run.Trained, **kwargs) -> "Translator":
    kwargs.setdefault("image_size", trained_run.image_shape(trained.config))
    return cls(trained.models, trained.params, trained.frozen, trained=trained, **kwargs)

  @classmethod
  def from_workdir(
    cls,
    workdir: str,
    *,
    use_ema: bool = True,
    test_noise: bool | None = None,
    devices: Sequence[jax.Device] | None = None,
    checkpoint_fallback: bool = True,
    **kwargs,
  ) -> "Translator":
    """Loads the latest readable stage-2 checkpoint of a workdir (`load_trained`).

    Args:
      workdir: a training workdir (config.json, stage2/checkpoints/).
      use_ema, test_noise, devices, checkpoint_fallback: as in `load_trained`.
      **kwargs: batch_size, seed, native_size, tile_size (see the class docstring).
    Raises:
      WorkdirError: the workdir holds no usable checkpoint.
    """
    trained = trained_run.load_trained(
      workdir,
      use_ema=use_ema,
      test_noise=test_noise,
      devices=devices,
      checkpoint_fallback=checkpoint_fallback,
    )
    return cls.from_trained(trained, devices=devices, **kwargs)

  @classmethod
  def from_export(
    cls,
    path: str,
    *,
    test_noise: bool | None = None,
    devices: Sequence[jax.Device] | None = None,
    **kwargs,
  ) -> "Translator":
    """Loads a model written by `egsc-export` (`egsc_jax.export`): one file with
    the inference parameters and the config; no TensorFlow, no training state.

    Args:
      path: the export file (local or gs://).
      test_noise, devices: as in `load_trained`.
      **kwargs: batch_size, seed, native_size, tile_size (see the class docstring).
    Raises:
      export.ExportError: not a readable export file (the message names it).
    """
    from egsc_jax import export  # pylint: disable=g-import-not-at-top

    trained = export.load(path, test_noise=test_noise, devices=devices)
    return cls.from_trained(trained, devices=devices, **kwargs)

  # -- chunked execution --------------------------------------------------------

  def _run(self, fn, *batched: np.ndarray, key: bool = False):
    """fn(params, frozen, *chunks[, key]) over chunks of batch_size along axis 0.

    Returns the outputs (a pytree of arrays) concatenated, as numpy, padding cut.
    """
    n = len(batched[0])
    k = self.batch_size
    out = []
    for i in range(0, n, k):
      chunk = [b[i : i + k] for b in batched]
      real = len(chunk[0])
      # Pad by repeating the last example; the copies are dropped below.
      pad = _padded_size(real, self.batch_size, self.mesh.devices.size) - real
      chunk = [np.concatenate([c, np.repeat(c[-1:], pad, axis=0)]) for c in chunk]
      extra = (self.key,) if key else ()
      y = fn(self.params, self.frozen, *jax.device_put(chunk, self._batch), *extra)
      out.append(jax.tree.map(lambda v, real=real: np.asarray(v)[:real], y))
    return jax.tree.map(lambda *v: np.concatenate(v), *out)

  def __call__(
    self, source: np.ndarray, exemplar: np.ndarray, noise_ids: Sequence[int], *, direction: str
  ) -> np.ndarray:
    """Translates source[i] in the style of exemplar[i].

    Args:
      source: float [N, H, W, 3] in [-1, 1], of the source domain.
      exemplar: float [N, h, w, 3] in [-1, 1], of the other domain.
      noise_ids: int [N], the id that keys each example's latent noise.
      direction: 'a2b' (sources from A, exemplars from B) or 'b2a'.
    Returns:
      float32 [N, H, W, 3] in [-1, 1].
    """
    _domains(direction)
    source = np.asarray(source, np.float32)
    exemplar = np.asarray(exemplar, np.float32)
    noise_ids = np.asarray(noise_ids, np.int32)
    n = len(source)
    if not len(exemplar) == len(noise_ids) == n:
      raise ValueError(
        f"{n} sources, {len(exemplar)} exemplars and {len(noise_ids)} "
        "noise ids: they must pair up one to one."
      )
    if not n:
      return np.zeros((0,) + source.shape[1:], np.float32)
    return self._run(_jitted(self.models, direction), source, exemplar, noise_ids, key=True)

  # -- large images in tiles --------------------------------------------------------

  def _tiled(self, shape: tuple[int, int]) -> bool:
    return tiling.needs_tiles(shape, self.models, self.tile_size)

  def needs_tiles(self, image: np.ndarray) -> bool:
    """Whether a source of this size (uint8 [h, w, ...]) is translated in tiles."""
    return self._tiled(self._network_shape(np.asarray(image)))

  def _on_one_device(self):
    """(params, frozen, key) on the first device of the mesh (tiles run there)."""
    if self._one_device is None:
      device = self.mesh.devices.flat[0]
      self._one_device = jax.device_put((self.params, self.frozen, self.key), device)
    return self._one_device

  def _translate_tiled(self, x: np.ndarray, style: Style, ids: np.ndarray, direction: str):
    """One source float [H, W, 3] with each of K statistics -> [K, H, W, 3]."""
    params, frozen, key = self._on_one_device()
    out = []
    for k in range(len(style)):
      stats = (style.mean[k : k + 1], style.var[k : k + 1]) if self.models.use_adain else None
      pair_key = jax.random.fold_in(key, np.int32(ids[k])) if self.models.test_noise else None
      out.append(
        tiling.translate(
          params,
          frozen,
          x,
          stats,
          pair_key,
          models=self.models,
          direction=direction,
          tile_size=self.tile_size,
        )
      )
    return np.stack(out)

  # -- uint8 images of any size ---------------------------------------------------

  def _trained_size(self) -> tuple[int, int]:
    if self.image_size is None:
      raise ValueError(
        "this Translator does not know the trained resolution: build it "
        "with Translator.from_workdir or pass image_size=(H, W)."
      )
    return self.image_size

  def _network_shape(self, image: np.ndarray) -> tuple[int, int]:
    return network_size(
      image.shape[:2],
      trained_size=self._trained_size(),
      n_downsample=self.models.generator.n_downsample,
      native=self.native_size,
    )

  def _by_shape(self, images: list[np.ndarray]) -> dict[tuple[int, int], list[int]]:
    """Indices of `images` grouped by network shape (one batched call per shape)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, img in enumerate(images):
      groups.setdefault(self._network_shape(img), []).append(i)
    return groups

  def style(
    self, exemplars: Sequence[np.ndarray], domain: str, *, size: tuple[int, int] | None = None
  ) -> Style:
    """The AdaIN statistics of exemplars of `domain` ('a' or 'b'), or for a
    MUNIT run their style codes (see `Style`).

    Args:
      exemplars: E images of any size and mode.
      domain: the exemplars' domain: 'b' for a2b translations, 'a' for b2a.
      size: the (H, W) the exemplars are resized to before F sees them; default
        the trained resolution (`translate` uses each source's network size).
    Returns:
      A `Style` of E exemplars: mean, var float32 [E, 1, 1, C].
    """
    _check_domain(domain)
    exs = [images_lib.as_rgb(e) for e in exemplars]
    if not exs:
      raise ValueError("style needs at least one exemplar.")
    size = self._trained_size() if size is None else tuple(size)
    if self._tiled(size) and self.models.use_adain:
      # One exemplar at a time: at this size each is large.
      _, frozen, _ = self._on_one_device()
      stats = [
        tiling.style(
          frozen,
          to_network_input(e, size),
          models=self.models,
          domain=domain,
          tile_size=self.tile_size,
        )
        for e in exs
      ]
      mean, var = (np.concatenate(v) for v in zip(*stats))
    else:
      x = np.stack([to_network_input(e, size) for e in exs])
      mean, var = self._run(_jitted(self.models, domain, "style"), x)
    return Style(domain, mean, var)

  def _translate_network(
    self, sources: list[np.ndarray], style_at, target: str, noise_ids: np.ndarray | None, k: int
  ) -> list[np.ndarray]:
    """S uint8 RGB sources, style_at(shape) -> Style [k] -> S float32 [k, H, W, 3]."""
    s = len(sources)
    ids = np.arange(s * k).reshape(s, k) if noise_ids is None else np.asarray(noise_ids, np.int64)
    if ids.shape != (s, k):
      raise ValueError(
        f"noise_ids must be [{s}, {k}] (sources x exemplars), got shape {ids.shape}."
      )
    direction = f"{_other(target)}2{target}"
    fn = _jitted(self.models, direction, "with_style")
    out: list[np.ndarray | None] = [None] * s
    for shape, idx in self._by_shape(sources).items():
      style = style_at(shape)
      if len(style) != k or style.domain != target:
        raise ValueError(
          f"a style of {k} exemplars of domain {target!r} was needed, "
          f"got {len(style)} of {style.domain!r}."
        )
      if self._tiled(shape):
        for i in idx:  # one source at a time: at this size each is large
          x = to_network_input(sources[i], shape)
          out[i] = self._translate_tiled(x, style, ids[i], direction)
        continue
      x = np.stack([to_network_input(sources[i], shape) for i in idx])
      # Pairs source-major: (source i, exemplar j) at row i * k + j.
      y = self._run(
        fn,
        np.repeat(x, k, axis=0),
        np.tile(style.mean, (len(idx), 1, 1, 1)),
        np.tile(style.var, (len(idx), 1, 1, 1)),
        ids[idx].reshape(-1).astype(np.int32),
        key=True,
      )
      for n, i in enumerate(idx):
        out[i] = y[n * k : (n + 1) * k]
    return out

  def translate_network(
    self,
    sources: Sequence[np.ndarray],
    exemplars: Sequence[np.ndarray],
    direction: str = "a2b",
    *,
    noise_ids: np.ndarray | None = None,
  ) -> list[np.ndarray]:
    """`translate` before the resize back: S float32 [E, H, W, 3] in [-1, 1] at the
    network size of each source (the translate command builds its grid from these)."""
    src_domain, ex_domain = _domains(direction)
    del src_domain
    srcs = [images_lib.as_rgb(x) for x in sources]
    exs = [images_lib.as_rgb(e) for e in exemplars]
    if not exs:
      raise ValueError("translate needs at least one exemplar.")
    return self._translate_network(
      srcs, lambda shape: self.style(exs, ex_domain, size=shape), ex_domain, noise_ids, len(exs)
    )

  def translate(
    self,
    sources: Sequence[np.ndarray],
    exemplars: Sequence[np.ndarray],
    direction: str = "a2b",
    *,
    noise_ids: np.ndarray | None = None,
  ) -> list[np.ndarray]:
    """Every source in the style of every exemplar.

    Args:
      sources: S images of any size and mode, of the source domain.
      exemplars: E images of any size and mode, of the other domain.
      direction: 'a2b' (sources from A, exemplars from B) or 'b2a'.
      noise_ids: int [S, E], the ids keying each pair's latent noise;
        default s * E + e.
    Returns:
      S uint8 arrays [E, h_s, w_s, 3]: source s (of size h_s x w_s) with each
      exemplar.
    """
    srcs = [images_lib.as_rgb(x) for x in sources]
    ys = self.translate_network(srcs, exemplars, direction, noise_ids=noise_ids)
    return [np.stack([from_network_output(yk, x.shape[:2]) for yk in y]) for x, y in zip(srcs, ys)]

  def grid(
    self, sources: Sequence[np.ndarray], exemplars: Sequence[np.ndarray], direction: str = "a2b"
  ) -> np.ndarray:
    """The translate command's grid.png: sources as rows, exemplars as columns.

    Every cell at the trained size (H, W), the inputs on the margins (top-left
    white), `grids.exemplar_grid` with its 2-pixel padding.

    Returns:
      uint8 [(S + 1) (H + 2) + 2, (E + 1) (W + 2) + 2, 3].
    """
    size = self._trained_size()
    srcs = [images_lib.as_rgb(x) for x in sources]
    exs = [images_lib.as_rgb(e) for e in exemplars]
    ys = self.translate_network(srcs, exs, direction)
    return grids.exemplar_grid(
      sources=[grids.to_uint8(to_network_input(x, size)) for x in srcs],
      exemplars=[grids.to_uint8(to_network_input(e, size)) for e in exs],
      translations=[[from_network_output(yk, size) for yk in y] for y in ys],
    )

  def translate_with_style(
    self, sources: Sequence[np.ndarray], style: Style, *, noise_ids: np.ndarray | None = None
  ) -> list[np.ndarray]:
    """Every source with each of K given statistics (`style`, `Style.mix`).

    The direction follows from the style: sources of the other domain than
    `style.domain`. The statistics are used as they are, whatever size they
    were computed at.

    Args:
      sources: S images of any size and mode.
      style: a `Style` of K exemplars.
      noise_ids: int [S, K]; default s * K + k.
    Returns:
      S uint8 arrays [K, h_s, w_s, 3].
    """
    srcs = [images_lib.as_rgb(x) for x in sources]
    ys = self._translate_network(srcs, lambda shape: style, style.domain, noise_ids, len(style))
    return [np.stack([from_network_output(yk, x.shape[:2]) for yk in y]) for x, y in zip(srcs, ys)]

  def interpolate(
    self,
    source: np.ndarray,
    exemplar_1: np.ndarray,
    exemplar_2: np.ndarray,
    alphas: Sequence[float],
    *,
    direction: str = "a2b",
    noise_id: int = 0,
  ) -> np.ndarray:
    """One source with the statistics (1 - alpha) style_1 + alpha style_2.

    Every frame uses the same latent noise (`noise_id`), so the strip changes by
    style only; alpha 0 and 1 equal `translate([source], [exemplar_k])`.

    Args:
      source: one image of any size and mode, of the source domain.
      exemplar_1, exemplar_2: two images of the other domain.
      alphas: A mixing weights (0: exemplar_1, 1: exemplar_2; others extrapolate).
    Returns:
      uint8 [A, h, w, 3] at the source's size.
    """
    _, ex_domain = _domains(direction)
    src = images_lib.as_rgb(source)
    alphas = np.asarray(alphas, np.float32).reshape(-1)
    shape = self._network_shape(src)
    s1, s2 = (self.style([e], ex_domain, size=shape) for e in (exemplar_1, exemplar_2))
    ids = np.full((1, len(alphas)), noise_id)
    return self.translate_with_style([src], s1.mix(s2, alphas), noise_ids=ids)[0]

  def mask(self, sources: Sequence[np.ndarray], domain: str) -> list[np.ndarray]:
    """The feature mask of each source, averaged over channels, for display.

    m = 0.5 + 0.5 sigmoid(F_domain(x)) (docs/method.md §1.5), at F's feature resolution,
    averaged over its C channels and resized bilinearly to the source's size.

    Args:
      sources: S images of any size and mode, of `domain`.
      domain: 'a' or 'b'.
    Returns:
      S float32 arrays [h_s, w_s] with values in (0.5, 1).
    Raises:
      ValueError: the run has no feature mask (UNIT, CycleGAN, MUNIT, :no_mask).
    """
    _check_domain(domain)
    if not self.models.use_mask:
      raise ValueError(
        "this run has no feature mask (config.model.use_feature_mask "
        "is off or the variant is UNIT/CycleGAN/MUNIT)."
      )
    srcs = [images_lib.as_rgb(x) for x in sources]
    fn = _jitted(self.models, domain, "mask")
    out: list[np.ndarray | None] = [None] * len(srcs)
    for shape, idx in self._by_shape(srcs).items():
      x = np.stack([to_network_input(srcs[i], shape) for i in idx])
      if self._tiled(shape):
        _, frozen, _ = self._on_one_device()
        m = np.stack(
          [
            np.asarray(jnp.mean(layers.feature_mask(f), axis=-1))
            for f in (
              tiling.features(
                frozen, xi, models=self.models, domain=domain, tile_size=self.tile_size
              )
              for xi in x
            )
          ]
        )
      else:
        m = self._run(fn, x)
      for n, i in enumerate(idx):
        out[i] = images_lib.resize_bilinear_align_corners(m[n][..., None], srcs[i].shape[:2])[
          ..., 0
        ]
    return out
