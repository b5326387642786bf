"""A trained EGSC-IT generator, loaded from a workdir, and the code that runs it.

Shared by the translate command, the evaluate command and training's own test
evaluation:

- `load_trained(workdir)`: the config from `workdir/config.json`, the modules, and
  the latest readable stage-2 checkpoint (EMA parameters when the run kept
  them); a damaged newer one is passed over with a warning.
- `Translator`: one jitted translation over every local device; the batch is
  split along a 'data' mesh axis and padded to fixed-size chunks, so one image
  shape compiles once. Each example's latent noise is keyed by its own id
  (`fold_in(key(seed), id)`), so a result does not depend on how the examples
  were batched.
- The image-size rule of the commands: the network runs at the trained
  resolution `config.data.image_size`, or (native size) at the input's own size
  rounded down to a multiple of 2**n_downsample; inputs are resized bilinearly
  with aligned corners, as the training pipeline resizes (`resize_bilinear`), and
  the output is resized back to the source's size the same way.
- `translate_split`: the first examples of a TFDS split, translated in the stored
  order, as uint8 batches with their ground truth and labels.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
from typing import Any, Iterator, Sequence

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from egsc_jax import checkpointing, config_lib, errors, grids, paths, sharding, steps
from egsc_jax import state as state_lib
from egsc_jax.models import Models, build_models

PyTree = Any
DIRECTIONS = ("a2b", "b2a")
DEFAULT_BATCH_SIZE = 32


class WorkdirError(errors.UserError, FileNotFoundError):
  """The workdir lacks what inference needs (config.json, a readable stage-2
  checkpoint that fits config.json)."""


# ----------------------------------------------------------------------------
# Loading a workdir
# ----------------------------------------------------------------------------

def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The run's config, as training wrote it to `workdir/config.json`."""
  path = paths.Path(workdir) / "config.json"
  if not path.is_file():
    raise WorkdirError(
        f"{workdir}: no config.json, so not a training workdir (train first: "
        f"python -m egsc_jax.main --config=... --workdir={workdir}).")
  try:
    raw = json.loads(path.read_text())
  except (OSError, json.JSONDecodeError) as e:
    raise WorkdirError(f"{path}: cannot read the run's config: {e}") from e
  config = ml_collections.ConfigDict(raw)
  # JSON turned the (H, W) tuple into a list.
  config.data.image_size = tuple(int(s) for s in config.data.image_size)
  return config


def image_shape(config) -> tuple[int, int]:
  """The trained resolution (H, W)."""
  return tuple(int(s) for s in config.data.image_size)


def abstract_stage2_state(config, models: Models) -> state_lib.GANState:
  """Shapes and dtypes of the run's stage-2 GANState, without computing anything.

  `frozen` holds F_A, F_B only for variants that ran stage 1 (mask or AdaIN), and
  `ema_params` exists only when the run kept an EMA, exactly as in training.
  """
  tx = state_lib.adam(b1=config.optim.b1, b2=config.optim.b2, eps=config.optim.eps)
  shape = image_shape(config)

  def init(rng):
    frozen = {}
    if config_lib.needs_stage1(config):
      stage1 = state_lib.init_stage1(models, rng, image_shape=shape, tx=tx, ema=False)
      frozen = state_lib.exemplar_params_from_stage1(stage1.g_params)
    return state_lib.init_stage2(models, rng, image_shape=shape, tx=tx, frozen=frozen,
                                 ema=config.optim.ema_decay > 0)

  return jax.eval_shape(init, jax.random.key(0))


@dataclasses.dataclass(frozen=True)
class Trained:
  """A stage-2 generator ready to translate.

  Attributes:
    workdir: where it came from.
    config: the run's config (config.json).
    models: the modules (`build_models(config.model)`).
    params: generator parameters (the EMA ones when `used_ema`), replicated over
      the local devices.
    frozen: {'a': F_A, 'b': F_B} parameters, or {} for UNIT / CycleGAN.
    step: the stage-2 iteration of the checkpoint.
    used_ema: whether `params` are the EMA parameters.
  """
  workdir: str
  config: ml_collections.ConfigDict
  models: Models
  params: PyTree
  frozen: PyTree
  step: int
  used_ema: bool


def _restore_latest(ckpt_dir: str, abstract: state_lib.GANState, *, workdir: str,
                    fallback: bool = True) -> tuple[int, state_lib.GANState]:
  """(step, state) of the newest readable checkpoint in `ckpt_dir`, opened
  read-only; an unreadable newer one is passed over with a warning
  (`checkpointing.Checkpointer.restore_latest`) unless `fallback` is off."""
  ckpt = checkpointing.Checkpointer(ckpt_dir, keep=None, read_only=True)
  try:
    restored = ckpt.restore_latest(abstract, fallback=fallback)
  except checkpointing.CheckpointMismatchError as e:
    raise WorkdirError(f"{workdir}: the stage-2 checkpoints do not match the networks "
                       f"of config.json: {e}") from e
  except checkpointing.CheckpointError as e:
    raise WorkdirError(f"{workdir}: {e}") from e
  finally:
    ckpt.close()
  if restored is None:
    raise WorkdirError(f"{workdir}: no stage-2 checkpoint in {ckpt_dir}; the run has "
                       "not saved a stage-2 iteration yet.")
  step, state, _ = restored
  return int(step), state


def local_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D 'data' mesh over this process's devices (inference is process-local)."""
  return sharding.make_mesh(jax.local_devices() if devices is None else devices)


def load_trained(workdir: str, *, use_ema: bool = True,
                 devices: Sequence[jax.Device] | None = None,
                 test_noise: bool | None = None,
                 checkpoint_fallback: bool = True) -> Trained:
  """Loads the latest stage-2 checkpoint of `workdir`.

  Args:
    workdir: a training workdir (config.json, stage2/checkpoints/<step>/).
    use_ema: take the EMA parameters when the run kept them.
    devices: the devices to place the parameters on (default: all local ones).
    test_noise: override config.model.test_noise (the latent noise at test time,
      on in the authors' code; SPEC 9 A6); None keeps the run's setting.
    checkpoint_fallback: when the latest checkpoint cannot be read, warn and
      use the next older one (False: raise WorkdirError instead).

  Raises:
    WorkdirError: no config.json, no readable stage-2 checkpoint, or checkpoints
      that do not fit the config; the message names the workdir.
    config_lib.ConfigError: config.json holds a value that cannot be used.
  """
  config = load_config(workdir)
  if test_noise is not None:
    config.model.test_noise = bool(test_noise)
  config_lib.validate(config)
  ckpt_dir = os.path.join(workdir, "stage2", "checkpoints")
  if not paths.Path(ckpt_dir).is_dir():
    raise WorkdirError(
        f"{workdir}: no stage-2 checkpoint ({ckpt_dir} does not exist); the run has "
        "not reached stage 2 yet.")
  models = build_models(config.model)
  abstract = abstract_stage2_state(config, models)
  rep = NamedSharding(local_mesh(devices), P())
  step, state = _restore_latest(ckpt_dir, checkpointing.abstract_with_sharding(abstract, rep),
                                workdir=workdir, fallback=checkpoint_fallback)
  used_ema = use_ema and state.ema_params is not None
  params = state.ema_params if used_ema else state.g_params
  logging.info("loaded %s stage-2 iteration %d (%s parameters)", workdir, step,
               "EMA" if used_ema else "live")
  return Trained(workdir=workdir, config=config, models=models, params=params,
                 frozen=state.frozen, step=int(step), used_ema=used_ema)


# ----------------------------------------------------------------------------
# Image sizes and resizing
# ----------------------------------------------------------------------------

def network_size(source_size: tuple[int, int], *, trained_size: tuple[int, int],
                 n_downsample: int, native: bool) -> tuple[int, int]:
  """The (H, W) the network runs at for a source of `source_size`.

  The trained resolution, or with `native` the source's own size rounded down
  to a multiple of 2**n_downsample (the encoder halves the size that often and
  the decoder doubles it back), and at least that multiple.
  """
  if not native:
    return tuple(int(s) for s in trained_size)
  m = 2 ** int(n_downsample)
  return tuple(max(m, (int(s) // m) * m) for s in source_size)


def _axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Aligned-corner sample positions: (lower index, upper index, weight of upper)."""
  if n_out == 1:
    # tf.image.crop_and_resize samples a 1-pixel crop at the box centre.
    pos = np.full([1], 0.5 * (n_in - 1), np.float64)
  else:
    pos = np.arange(n_out, dtype=np.float64) * ((n_in - 1) / (n_out - 1))
  lo = np.clip(np.floor(pos).astype(np.int64), 0, n_in - 1)
  hi = np.minimum(lo + 1, n_in - 1)
  return lo, hi, pos - lo


def resize_bilinear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """Bilinear resize with aligned corners, the training pipeline's resampling.

  Corner pixels map onto corner pixels (output pixel i samples input position
  i (h - 1) / (H - 1)), which is what `input_pipeline.resample` does with
  `tf.image.crop_and_resize` on the whole image. No antialiasing.

  Args:
    image: float or uint8 [h, w, C].
    size: (H, W).
  Returns:
    float32 [H, W, C]; the input values unchanged when the size already matches.
  """
  image = np.asarray(image)
  h, w = image.shape[:2]
  if (h, w) == tuple(size):
    return image.astype(np.float32)
  y0, y1, wy = _axis(h, size[0])
  x0, x1, wx = _axis(w, size[1])
  img = image.astype(np.float64)
  rows = img[y0] * (1 - wy)[:, None, None] + img[y1] * wy[:, None, None]
  out = rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]
  return out.astype(np.float32)


def to_network_input(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """uint8 RGB [h, w, 3] -> float32 [H, W, 3] in [-1, 1], as training saw images."""
  return (resize_bilinear(image, size) - 127.5) / 127.5


def from_network_output(y: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """A translation float [h, w, 3] in [-1, 1] -> uint8 [H, W, 3] at `size`."""
  return grids.to_uint8(resize_bilinear(y, size))


# ----------------------------------------------------------------------------
# The jitted translation
# ----------------------------------------------------------------------------

def _translate_examples(params: PyTree, frozen: PyTree, source: jax.Array,
                        exemplar: jax.Array, noise_ids: jax.Array, key: jax.Array, *,
                        models: Models, direction: str) -> jax.Array:
  """source [B, H, W, 3], exemplar [B, h, w, 3], noise_ids int32 [B] -> [B, H, W, 3].

  vmap over single examples: example i draws its latent noise from
  fold_in(key, noise_ids[i]), whatever else is in the batch. Instance norm and
  AdaIN are per example, so nothing else couples the slots.
  """
  def one(s, e, i):
    return steps.translate(params, frozen, s[None], e[None], jax.random.fold_in(key, i),
                           models=models, direction=direction)[0]
  return jax.vmap(one)(source, exemplar, noise_ids)


@functools.lru_cache(maxsize=None)
def _jitted(models: Models, direction: str):
  # One jitted function per (models, direction), shared by every Translator, so
  # that training's periodic evaluation does not recompile.
  return jax.jit(functools.partial(_translate_examples, models=models,
                                   direction=direction))


class Translator:
  """Translates batches of any length on every local device.

  Examples are processed in chunks of `batch_size` (rounded up to a multiple of
  the device count), the last one padded, so each image shape compiles once.
  """

  def __init__(self, models: Models, params: PyTree, frozen: PyTree, *,
               batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0,
               devices: Sequence[jax.Device] | None = None):
    self.models = models
    self.mesh = local_mesh(devices)
    n = self.mesh.devices.size
    self.batch_size = max(n, -(-int(batch_size) // n) * n)
    rep = NamedSharding(self.mesh, P())
    self._batch = NamedSharding(self.mesh, P("data"))
    self.params = jax.device_put(params, rep)
    self.frozen = jax.device_put(frozen, rep)
    self.key = jax.device_put(jax.random.key(seed), rep)

  @classmethod
  def from_trained(cls, trained: Trained, **kwargs) -> "Translator":
    return cls(trained.models, trained.params, trained.frozen, **kwargs)

  def __call__(self, source: np.ndarray, exemplar: np.ndarray, noise_ids: Sequence[int],
               *, direction: str) -> np.ndarray:
    """Translates source[i] in the style of exemplar[i].

    Args:
      source: float [N, H, W, 3] in [-1, 1], of the source domain.
      exemplar: float [N, h, w, 3] in [-1, 1], of the other domain.
      noise_ids: int [N], the id that keys each example's latent noise.
      direction: 'a2b' (sources from A, exemplars from B) or 'b2a'.
    Returns:
      float32 [N, H, W, 3] in [-1, 1].
    """
    if direction not in DIRECTIONS:
      raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    source = np.asarray(source, np.float32)
    exemplar = np.asarray(exemplar, np.float32)
    noise_ids = np.asarray(noise_ids, np.int32)
    n = len(source)
    if not len(exemplar) == len(noise_ids) == n:
      raise ValueError(f"{n} sources, {len(exemplar)} exemplars and {len(noise_ids)} "
                       "noise ids: they must pair up one to one.")
    fn = _jitted(self.models, direction)
    out = []
    k = self.batch_size
    for i in range(0, n, k):
      chunk = [source[i:i + k], exemplar[i:i + k], noise_ids[i:i + k]]
      real = len(chunk[0])
      # Pad by repeating the last example; the copies are dropped below.
      chunk = [np.concatenate([c, np.repeat(c[-1:], k - real, axis=0)]) for c in chunk]
      y = fn(self.params, self.frozen, *jax.device_put(chunk, self._batch), self.key)
      out.append(np.asarray(y)[:real])
    if not out:
      return np.zeros((0,) + source.shape[1:], np.float32)
    return np.concatenate(out)


# ----------------------------------------------------------------------------
# A dataset split, translated
# ----------------------------------------------------------------------------

def translate_split(translator: Translator, config, *, direction: str,
                    num_examples: int | None, split: str = "test") -> Iterator[dict]:
  """The first `num_examples` pairs of `split`, translated, in the stored order.

  Source i is translated with the other domain's image of the same stored pair
  as its exemplar; its noise id is i.

  Yields per batch (uint8 images [n, H, W, 3], n <= translator.batch_size):
    'pred', 'source', 'exemplar', 'gt' (None when the dataset has no ground
    truth), 'id' (bytes [n]), 'index' (int [n], position in the split), and when
    the dataset has them 'digit' (the source's digit, int [n]) and 'label' (the
    source's segmentation map, uint8 [n, H, W]).
  """
  from egsc_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  if direction not in DIRECTIONS:
    raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
  src, ex = ("a", "b") if direction == "a2b" else ("b", "a")
  start = 0
  for batch in input_pipeline.eval_batches(
      config, split=split, batch_size=translator.batch_size, num_examples=num_examples,
      process_index=0, process_count=1):
    keep = np.asarray(batch["mask"], bool)   # the last batch is zero-padded
    index = start + np.arange(int(keep.sum()))
    start += len(index)
    source, exemplar = batch[src][keep], batch[ex][keep]
    y = translator(source, exemplar, index, direction=direction)
    gt = batch.get(f"gt_{direction}")
    out = dict(pred=grids.to_uint8(y),
               gt=None if gt is None else grids.to_uint8(gt[keep]),
               source=grids.to_uint8(source), exemplar=grids.to_uint8(exemplar),
               id=batch["id"][keep], index=index)
    if f"digit_{src}" in batch:
      out["digit"] = np.asarray(batch[f"digit_{src}"])[keep]
    if f"label_{src}" in batch:
      out["label"] = np.asarray(batch[f"label_{src}"])[keep][..., 0]
    yield out


def translate_pairs_grid(translator: Translator, sources: np.ndarray,
                         exemplars: np.ndarray, *, direction: str) -> np.ndarray:
  """Every source with every exemplar: [S, H, W, 3], [E, h, w, 3] -> [S, E, H, W, 3].

  Floats in [-1, 1]; the pair (s, e) has noise id s * E + e.
  """
  s, e = len(sources), len(exemplars)
  src = np.repeat(np.asarray(sources, np.float32), e, axis=0)
  exs = np.tile(np.asarray(exemplars, np.float32), (s, 1, 1, 1))
  y = translator(src, exs, np.arange(s * e), direction=direction)
  return y.reshape((s, e) + y.shape[1:])
