"""A trained run, loaded from its workdir: `load_trained(workdir)`.

The config from `workdir/config.json`, the modules, and the latest readable
stage-2 checkpoint (EMA parameters when the run kept them), restored into the
shapes `abstract_stage2_state` computes from the config; a damaged newer
checkpoint is passed over with a warning. The Translator API (`egsc_jax.api`),
the evaluation and the export all start here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Sequence

import jax
import ml_collections
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from egsc_jax import checkpointing, config_lib, errors, paths, sharding
from egsc_jax import state as state_lib
from egsc_jax.models import Models, build_models

PyTree = Any


class WorkdirError(errors.UserError, FileNotFoundError):
  """The workdir lacks what inference needs (config.json, a readable stage-2
  checkpoint that fits config.json)."""


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The run's config, as training wrote it to `workdir/config.json`."""
  path = paths.Path(workdir) / "config.json"
  if not path.is_file():
    raise WorkdirError(
      f"{workdir}: no config.json, so not a training workdir (train first: "
      f"python -m egsc_jax.main --config=... --workdir={workdir})."
    )
  try:
    return config_from_json(path.read_text())
  except (OSError, json.JSONDecodeError) as e:
    raise WorkdirError(f"{path}: cannot read the run's config: {e}") from e


def config_from_json(text: str) -> ml_collections.ConfigDict:
  """A run's config from the JSON training wrote (config.json, or an export)."""
  config = ml_collections.ConfigDict(json.loads(text))
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
    return state_lib.init_stage2(
      models, rng, image_shape=shape, tx=tx, frozen=frozen, ema=config.optim.ema_decay > 0
    )

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
    frozen: {'a': F_A, 'b': F_B} parameters, or {} for UNIT / CycleGAN / MUNIT.
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


def _restore_latest(
  ckpt_dir: str, abstract: state_lib.GANState, *, workdir: str, fallback: bool = True
) -> tuple[int, state_lib.GANState]:
  """(step, state) of the newest readable checkpoint in `ckpt_dir`, opened
  read-only; an unreadable newer one is passed over with a warning
  (`checkpointing.Checkpointer.restore_latest`) unless `fallback` is off."""
  ckpt = checkpointing.Checkpointer(ckpt_dir, keep=None, read_only=True)
  try:
    restored = ckpt.restore_latest(abstract, fallback=fallback)
  except checkpointing.CheckpointMismatchError as e:
    raise WorkdirError(
      f"{workdir}: the stage-2 checkpoints do not match the networks of config.json: {e}"
    ) from e
  except checkpointing.CheckpointError as e:
    raise WorkdirError(f"{workdir}: {e}") from e
  finally:
    ckpt.close()
  if restored is None:
    raise WorkdirError(
      f"{workdir}: no stage-2 checkpoint in {ckpt_dir}; the run has "
      "not saved a stage-2 iteration yet."
    )
  step, state, _ = restored
  return int(step), state


def local_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D 'data' mesh over this process's devices (inference is process-local)."""
  return sharding.make_mesh(jax.local_devices() if devices is None else devices)


def load_trained(
  workdir: str,
  *,
  use_ema: bool = True,
  devices: Sequence[jax.Device] | None = None,
  test_noise: bool | None = None,
  checkpoint_fallback: bool = True,
) -> Trained:
  """Loads the latest stage-2 checkpoint of `workdir`.

  Args:
    workdir: a training workdir (config.json, stage2/checkpoints/<step>/).
    use_ema: take the EMA parameters when the run kept them.
    devices: the devices to place the parameters on (default: all local ones).
    test_noise: override config.model.test_noise (the latent noise at test time,
      on in the authors' code; docs/method.md §9 A6); None keeps the run's setting.
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
      "not reached stage 2 yet."
    )
  models = build_models(config.model)
  abstract = abstract_stage2_state(config, models)
  rep = NamedSharding(local_mesh(devices), P())
  step, state = _restore_latest(
    ckpt_dir,
    checkpointing.abstract_with_sharding(abstract, rep),
    workdir=workdir,
    fallback=checkpoint_fallback,
  )
  used_ema = use_ema and state.ema_params is not None
  params = state.ema_params if used_ema else state.g_params
  logging.info(
    "loaded %s stage-2 iteration %d (%s parameters)", workdir, step, "EMA" if used_ema else "live"
  )
  return Trained(
    workdir=workdir,
    config=config,
    models=models,
    params=params,
    frozen=state.frozen,
    step=int(step),
    used_ema=used_ema,
  )
