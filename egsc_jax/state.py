"""The GAN train state shared by both stages, its optimizers and initialisation.

One `GANState` holds everything exact continuation needs except the data
position (kept beside it in the checkpoint) and the RNG, which is derived from
the config seed and the step (`jax.random.fold_in`), so it is never stored.

  stage 1: g_params = {'a': AutoEncoder, 'b': AutoEncoder}, frozen = {}
  stage 2: g_params = Generator params, frozen = {'a': F_A, 'b': F_B}
  both:    d_params = {'a': D_A, 'b': D_B}
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from egsc_jax.models import Models

PyTree = Any


@struct.dataclass
class GANState:
  step: jax.Array  # outer iterations completed (int32 scalar)
  g_params: PyTree
  d_params: PyTree
  g_opt_state: PyTree
  d_opt_state: PyTree
  ema_params: PyTree  # EMA of g_params, or None when EMA is off
  frozen: PyTree  # F_A/F_B in stage 2 ({} in stage 1); never optimised


def adam(*, b1: float, b2: float, eps: float) -> optax.GradientTransformation:
  """Adam's moment scaling without the learning rate, which the steps apply
  from `learning_rate` so that it is indexed by the OUTER iteration (docs/method.md §7)."""
  return optax.scale_by_adam(b1=b1, b2=b2, eps=eps)


def learning_rate(
  step: jax.Array, *, lr0: float | jax.Array, num_iterations: int | jax.Array, power: float
) -> jax.Array:
  """lr_t = lr0 * (1 - t / T)^power, reaching 0 at t = T (docs/method.md §3.1).

  lr0 and T may be traced (the iterations take them as arguments: steps.StepConfig).
  """
  # (T - t) / T from the integer remainder: 1 - t/T computed in floats could
  # round below 0 at t = T and the power give NaN.
  num_iterations = jnp.asarray(num_iterations, jnp.int32)
  remaining = jnp.maximum(num_iterations - step.astype(jnp.int32), 0)
  return (
    lr0
    * (remaining.astype(jnp.float32) / jnp.maximum(num_iterations, 1).astype(jnp.float32)) ** power
  )


def _copy(tree: PyTree) -> PyTree:
  # A distinct buffer, so that donating the state never donates one buffer twice.
  return jax.tree.map(jnp.copy, tree)


def _init_pair(module, rng, *args, **kwargs):
  ka, kb = jax.random.split(rng)
  return {
    "a": module.init({"params": ka, "noise": ka}, *args, **kwargs)["params"],
    "b": module.init({"params": kb, "noise": kb}, *args, **kwargs)["params"],
  }


def init_stage1(
  models: Models,
  rng: jax.Array,
  *,
  image_shape: tuple[int, int],
  tx: optax.GradientTransformation,
  ema: bool,
) -> GANState:
  """Fresh stage-1 state: two autoencoders and two discriminators."""
  x = jnp.zeros((1, *image_shape, 3), jnp.float32)
  kg, kd = jax.random.split(rng)
  g = _init_pair(models.autoencoder, kg, x, noise=False)
  d = _init_pair(models.discriminator, kd, x)
  return GANState(
    step=jnp.zeros((), jnp.int32),
    g_params=g,
    d_params=d,
    g_opt_state=tx.init(g),
    d_opt_state=tx.init(d),
    ema_params=_copy(g) if ema else None,
    frozen={},
  )


def init_stage2(
  models: Models,
  rng: jax.Array,
  *,
  image_shape: tuple[int, int],
  tx: optax.GradientTransformation,
  frozen: PyTree,
  ema: bool,
) -> GANState:
  """Fresh stage-2 state. Everything but F starts anew (docs/method.md §3.1 item 2).

  `frozen` is {'a': F_A params, 'b': F_B params} from stage 1's encoders, or {}
  for variants that use neither the mask nor AdaIN.
  """
  x = jnp.zeros((1, *image_shape, 3), jnp.float32)
  kg, kd = jax.random.split(rng)
  g = models.generator.init({"params": kg, "noise": kg}, x, x, noise=False)["params"]
  d = _init_pair(models.discriminator, kd, x)
  return GANState(
    step=jnp.zeros((), jnp.int32),
    g_params=g,
    d_params=d,
    g_opt_state=tx.init(g),
    d_opt_state=tx.init(d),
    ema_params=_copy(g) if ema else None,
    frozen=frozen,
  )


def exemplar_params_from_stage1(stage1_g_params: PyTree) -> PyTree:
  """F_X = part1 (the encoder) of stage 1's autoencoder X (docs/method.md §1.4)."""
  return {k: stage1_g_params[k]["encoder"] for k in ("a", "b")}


def param_count(tree: PyTree) -> int:
  return int(sum(x.size for x in jax.tree.leaves(tree)))
