"""Pure training and inference steps of both stages. Nothing here is jitted: the
callers jit them (train.py the iterations, with the state donated; api.py
the translations; eval/training.py the stage-1 reconstruction).

Stage 1 iteration = 1 D step then 1 G step; stage 2 iteration = 1 D step then
`g_steps` (5) G steps, each step on its own batch (docs/method.md §3.1). An iteration is
ONE jitted call over a stack of batches `[n_steps, B, H, W, 3]`: one dispatch
per iteration, with the G steps unrolled.

The learning rate is lr0 * (1 - t/T)^0.9 indexed by the outer iteration t,
the same for the D and the G steps of that iteration. RNG: one root key per
run; iteration t uses fold_in(root, t), so no RNG is checkpointed.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import optax
from flax import struct
from flax.core import FrozenDict

from egsc_jax import losses
from egsc_jax.models import Models
from egsc_jax.models.generator import exemplar_conditioning
from egsc_jax.state import GANState, learning_rate

PyTree = Any
Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]


@struct.dataclass
class StepConfig:
  """A stage's step hyper-parameters (read once from the config).

  A pytree: the schedule's numbers (lr0, T, the EMA decay) are its leaves, so a
  jitted iteration that takes the StepConfig as an argument traces them, and
  runs that differ only in their length or learning rate share one compiled
  program (and the persistent compilation cache). Everything that shapes the
  computation is static (pytree_node=False).
  """

  lr0: float
  num_iterations: int  # T: the LR reaches 0 here
  ema_decay: float  # 0: no EMA
  weights: Mapping[str, float] = struct.field(pytree_node=False)  # gan, recon, cycle, kl, ...
  decay_power: float = struct.field(pytree_node=False)
  g_steps: int = struct.field(pytree_node=False)  # G steps per D step
  use_perceptual: bool = struct.field(pytree_node=False)
  content_layer_weights: tuple[float, ...] = struct.field(
    pytree_node=False, default=losses.CONTENT_LAYER_WEIGHTS
  )
  style_layer_weights: tuple[float, ...] = struct.field(
    pytree_node=False, default=losses.STYLE_LAYER_WEIGHTS
  )


def step_config(config, *, stage: int) -> StepConfig:
  """Reads the steps' hyper-parameters for `stage` (1 or 2) from the config."""
  layer_keys = ("content_layer_weights", "style_layer_weights")
  # A FrozenDict: static fields must hash (they key jit's cache).
  w = FrozenDict({k: float(v) for k, v in config.loss.items() if k not in layer_keys})
  if stage == 1:
    return StepConfig(
      weights=w,
      lr0=float(config.stage1.lr),
      num_iterations=int(config.stage1.num_iterations),
      decay_power=float(config.optim.decay_power),
      g_steps=1,
      ema_decay=0.0,
      use_perceptual=False,
    )
  return StepConfig(
    weights=w,
    lr0=float(config.optim.lr),
    num_iterations=int(config.stage2.num_iterations),
    decay_power=float(config.optim.decay_power),
    g_steps=int(config.stage2.g_steps),
    ema_decay=float(config.optim.ema_decay),
    use_perceptual=bool(w["style"] or w["content"]),
    content_layer_weights=tuple(float(v) for v in config.loss.content_layer_weights),
    style_layer_weights=tuple(float(v) for v in config.loss.style_layer_weights),
  )


def _update(params, opt_state, grads, *, tx, lr):
  updates, opt_state = tx.update(grads, opt_state, params)
  params = jax.tree.map(lambda p, u: p - lr * u, params, updates)
  return params, opt_state


def _lr(state: GANState, sc: StepConfig) -> jax.Array:
  return learning_rate(
    state.step, lr0=sc.lr0, num_iterations=sc.num_iterations, power=sc.decay_power
  )


def _d_pair(models: Models, d_params, real: Mapping[str, jax.Array], fake: Mapping[str, jax.Array]):
  """D_X on [real_X; fake_X] in one call per domain (instance norm is per
  sample, so concatenating changes nothing). Returns {X: (d_real, d_fake)}."""
  out = {}
  for k in ("a", "b"):
    n = real[k].shape[0]
    o = models.discriminator.apply(
      {"params": d_params[k]}, jnp.concatenate([real[k], fake[k]], axis=0)
    )
    out[k] = (o[:n], o[n:])
  return out


# ----------------------------------------------------------------------------
# Stage 1: per-domain VAE-GAN autoencoders (docs/method.md §1.4)
# ----------------------------------------------------------------------------


def stage1_d_step(
  state: GANState,
  batch: Batch,
  rng: jax.Array,
  *,
  models: Models,
  tx: optax.GradientTransformation,
  sc: StepConfig,
) -> tuple[GANState, Metrics]:
  """D loss gan * LS_D(D(x), D(x_hat)), the fakes being the reconstructions."""
  fake = {}
  for i, k in enumerate(("a", "b")):
    x_hat, _ = models.autoencoder.apply(
      {"params": state.g_params[k]},
      batch[k],
      noise=True,
      rngs={"noise": jax.random.fold_in(rng, i)},
    )
    fake[k] = jax.lax.stop_gradient(x_hat)

  def loss_fn(d_params):
    d = _d_pair(models, d_params, batch, fake)
    terms = {f"d_{k}": losses.lsgan_discriminator(real=d[k][0], fake=d[k][1]) for k in ("a", "b")}
    total = sc.weights["gan"] * (terms["d_a"] + terms["d_b"])
    terms.update(
      d_total=total,
      d_real_mean=0.5 * (jnp.mean(d["a"][0]) + jnp.mean(d["b"][0])),
      d_fake_mean=0.5 * (jnp.mean(d["a"][1]) + jnp.mean(d["b"][1])),
    )
    return total, terms

  grads, metrics = jax.grad(loss_fn, has_aux=True)(state.d_params)
  d_params, d_opt = _update(state.d_params, state.d_opt_state, grads, tx=tx, lr=_lr(state, sc))
  return state.replace(d_params=d_params, d_opt_state=d_opt), metrics


def stage1_g_step(
  state: GANState,
  batch: Batch,
  rng: jax.Array,
  *,
  models: Models,
  tx: optax.GradientTransformation,
  sc: StepConfig,
) -> tuple[GANState, Metrics]:
  """Both autoencoders' loss: gan*LS_G + recon*L1 + kl*mean(z^2), summed over A, B."""

  def loss_fn(g_params):
    total, metrics = jnp.float32(0.0), {}
    for i, k in enumerate(("a", "b")):
      x_hat, z = models.autoencoder.apply(
        {"params": g_params[k]}, batch[k], noise=True, rngs={"noise": jax.random.fold_in(rng, i)}
      )
      d_fake = models.discriminator.apply({"params": state.d_params[k]}, x_hat)
      t, terms = losses.stage1_generator(
        x=batch[k], x_hat=x_hat, z=z, d_fake=d_fake, weights=sc.weights
      )
      total += t
      metrics.update({f"{name}_{k}": v for name, v in terms.items()})
    metrics["total"] = total
    return total, metrics

  grads, metrics = jax.grad(loss_fn, has_aux=True)(state.g_params)
  g_params, g_opt = _update(state.g_params, state.g_opt_state, grads, tx=tx, lr=_lr(state, sc))
  return state.replace(g_params=g_params, g_opt_state=g_opt), metrics


# ----------------------------------------------------------------------------
# Stage 2: EGSC-IT (docs/method.md §2)
# ----------------------------------------------------------------------------


def conditioning(models: Models, frozen: PyTree, x: jax.Array, domain: str):
  """Mask and AdaIN statistics of x [B, H, W, 3] from the frozen F_domain,
  or (None, None) when the variant uses neither."""
  if not (models.use_mask or models.use_adain):
    return None, None
  f = models.exemplar.apply({"params": frozen[domain]}, x)
  return exemplar_conditioning(f, use_mask=models.use_mask, use_adain=models.use_adain)


def _generate(models: Models, g_params, frozen, batch: Batch, rng, *, cycle: bool):
  mask_a, style_a = conditioning(models, frozen, batch["a"], "a")
  mask_b, style_b = conditioning(models, frozen, batch["b"], "b")
  return models.generator.apply(
    {"params": g_params},
    batch["a"],
    batch["b"],
    mask_a=mask_a,
    mask_b=mask_b,
    style_a=style_a,
    style_b=style_b,
    noise=models.train_noise,
    cycle=cycle,
    rngs={"noise": rng},
  )


def stage2_d_loss(
  d_params: PyTree, state: GANState, batch: Batch, rng: jax.Array, *, models: Models, sc: StepConfig
) -> tuple[jax.Array, Metrics]:
  """L_D of one batch: D sees the reals and the cross-domain translations."""
  out = _generate(models, state.g_params, state.frozen, batch, rng, cycle=False)
  return _translations_d_loss(models, d_params, batch, x_ab=out["x_ab"], x_ba=out["x_ba"], sc=sc)


def _translations_d_loss(
  models: Models,
  d_params: PyTree,
  batch: Batch,
  *,
  x_ab: jax.Array,
  x_ba: jax.Array,
  sc: StepConfig,
) -> tuple[jax.Array, Metrics]:
  """`losses.stage2_discriminator` of D_A on [x_a; x_ba] and D_B on [x_b; x_ab]
  (translations [B, H, W, 3], gradients stopped)."""
  fake = {"a": jax.lax.stop_gradient(x_ba), "b": jax.lax.stop_gradient(x_ab)}
  d = _d_pair(models, d_params, batch, fake)
  return losses.stage2_discriminator(
    d_real_a=d["a"][0],
    d_fake_a=d["a"][1],
    d_real_b=d["b"][0],
    d_fake_b=d["b"][1],
    gan_weight=sc.weights["gan"],
  )


def real_vgg_maps(vgg: Any, vgg_params: PyTree, batch: Batch) -> tuple[jax.Array, ...]:
  """VGG relu*_1 maps of a batch's real images [x_a; x_b]: the targets of L_P
  (content of the sources, Gram of the exemplars). They need no gradient:
  each map [2B, H_i, W_i, C_i], x_a's first."""
  x = jnp.concatenate([batch["a"], batch["b"]], axis=0)
  return jax.lax.stop_gradient(vgg.apply({"params": vgg_params}, x))


def stage2_g_loss(
  g_params: PyTree,
  state: GANState,
  batch: Batch,
  rng: jax.Array,
  vgg_params: PyTree,
  *,
  models: Models,
  vgg: Any,
  sc: StepConfig,
  real_maps: tuple[jax.Array, ...] | None = None,
) -> tuple[jax.Array, Metrics]:
  """L_G of one batch; D, F and VGG are fixed, the GAN gradient flows through D.

  `real_maps`: `real_vgg_maps` of the batch when the caller has them (the G
  step computes them outside the differentiated function); None computes them
  here. Only the translations' VGG pass is differentiated: on one pass over
  [x_a; x_b; x_ab; x_ba] the backward would run over all four quarters.
  """
  x_a, x_b = batch["a"], batch["b"]
  out = _generate(models, g_params, state.frozen, batch, rng, cycle=True)
  d_fake_a = models.discriminator.apply({"params": state.d_params["a"]}, out["x_ba"])
  d_fake_b = models.discriminator.apply({"params": state.d_params["b"]}, out["x_ab"])
  feats = None
  if sc.use_perceptual:
    # docs/method.md §1.8: VGG of [x_a; x_b] (no gradient) and of [x_ab; x_ba].
    if real_maps is None:
      real_maps = real_vgg_maps(vgg, vgg_params, batch)
    fake_maps = vgg.apply(
      {"params": vgg_params}, jnp.concatenate([out["x_ab"], out["x_ba"]], axis=0)
    )
    real = [jnp.split(m, 2, axis=0) for m in real_maps]
    fake = [jnp.split(m, 2, axis=0) for m in fake_maps]
    feats = {
      "a": [r[0] for r in real],
      "b": [r[1] for r in real],
      "ab": [f[0] for f in fake],
      "ba": [f[1] for f in fake],
    }
  return losses.stage2_generator(
    outputs=out,
    x_a=x_a,
    x_b=x_b,
    d_fake_a=d_fake_a,
    d_fake_b=d_fake_b,
    weights=sc.weights,
    vgg_feats=feats,
    content_layer_weights=sc.content_layer_weights,
    style_layer_weights=sc.style_layer_weights,
  )


# ----------------------------------------------------------------------------
# Stage 2 of the MUNIT baseline (docs/method.md §5.2, models/munit.py)
# ----------------------------------------------------------------------------


def munit_d_loss(
  d_params: PyTree, state: GANState, batch: Batch, rng: jax.Array, *, models: Models, sc: StepConfig
) -> tuple[jax.Array, Metrics]:
  """L_D of one batch: D sees the reals and translations with N(0, I) style codes."""
  x_ab, x_ba = models.generator.apply(
    {"params": state.g_params},
    batch["a"],
    batch["b"],
    noise=True,
    rngs={"noise": rng},
    method="cross",
  )
  return _translations_d_loss(models, d_params, batch, x_ab=x_ab, x_ba=x_ba, sc=sc)


def munit_g_loss(
  g_params: PyTree,
  state: GANState,
  batch: Batch,
  rng: jax.Array,
  vgg_params: PyTree,
  *,
  models: Models,
  vgg: Any,
  sc: StepConfig,
) -> tuple[jax.Array, Metrics]:
  """MUNIT's L_G of one batch (`losses.munit_generator`); D is fixed, the GAN
  gradient flows through it. No perceptual term (vgg_params, vgg unused)."""
  del vgg_params, vgg
  out = models.generator.apply(
    {"params": g_params},
    batch["a"],
    batch["b"],
    noise=True,
    cycle=bool(sc.weights["cycle"]),
    rngs={"noise": rng},
  )
  d_fake_a = models.discriminator.apply({"params": state.d_params["a"]}, out["x_ba"])
  d_fake_b = models.discriminator.apply({"params": state.d_params["b"]}, out["x_ab"])
  return losses.munit_generator(
    outputs=out,
    x_a=batch["a"],
    x_b=batch["b"],
    d_fake_a=d_fake_a,
    d_fake_b=d_fake_b,
    weights=sc.weights,
  )


def _stage2_losses(models: Models) -> tuple[Callable, Callable]:
  """(D loss, G loss) of the stage-2 generator: where MUNIT parts from EGSC-IT."""
  if models.architecture == "munit":
    return munit_d_loss, munit_g_loss
  return stage2_d_loss, stage2_g_loss


# ----------------------------------------------------------------------------
# Stage-2 steps (both architectures)
# ----------------------------------------------------------------------------


def stage2_d_step(
  state: GANState,
  batch: Batch,
  rng: jax.Array,
  *,
  models: Models,
  tx: optax.GradientTransformation,
  sc: StepConfig,
) -> tuple[GANState, Metrics]:
  """Updates D_A, D_B only (`stage2_d_loss`, or `munit_d_loss`)."""
  d_loss, _ = _stage2_losses(models)
  grads, metrics = jax.grad(d_loss, has_aux=True)(
    state.d_params, state, batch, rng, models=models, sc=sc
  )
  d_params, d_opt = _update(state.d_params, state.d_opt_state, grads, tx=tx, lr=_lr(state, sc))
  return state.replace(d_params=d_params, d_opt_state=d_opt), metrics


def stage2_g_step(
  state: GANState,
  batch: Batch,
  rng: jax.Array,
  vgg_params: PyTree,
  *,
  models: Models,
  vgg: Any,
  tx: optax.GradientTransformation,
  sc: StepConfig,
) -> tuple[GANState, Metrics]:
  """Updates E_A, E_B, the shared blocks, G_A, G_B (`stage2_g_loss`), or
  MUNIT's encoders and decoders (`munit_g_loss`)."""
  _, g_loss = _stage2_losses(models)
  kw = {}
  if g_loss is stage2_g_loss and sc.use_perceptual:
    # The L_P targets, outside the differentiated function: a forward pass only.
    kw["real_maps"] = real_vgg_maps(vgg, vgg_params, batch)
  grads, metrics = jax.grad(g_loss, has_aux=True)(
    state.g_params, state, batch, rng, vgg_params, models=models, vgg=vgg, sc=sc, **kw
  )
  g_params, g_opt = _update(state.g_params, state.g_opt_state, grads, tx=tx, lr=_lr(state, sc))
  return state.replace(g_params=g_params, g_opt_state=g_opt), metrics


# ----------------------------------------------------------------------------
# Outer iterations
# ----------------------------------------------------------------------------


def _ema(state: GANState, decay: float) -> GANState:
  if state.ema_params is None:
    return state
  ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema_params, state.g_params)
  return state.replace(ema_params=ema)


def _iteration(
  state: GANState,
  batches: Batch,
  root_rng: jax.Array,
  *,
  d_step: Callable,
  g_step: Callable,
  sc: StepConfig,
) -> tuple[GANState, Metrics]:
  """1 D step on batches[0], then sc.g_steps G steps on batches[1:]."""
  rng = jax.random.fold_in(root_rng, state.step)
  lr = _lr(state, sc)
  first = jax.tree.map(lambda x: x[0], batches)
  state, d_metrics = d_step(state, first, jax.random.fold_in(rng, 0))

  # The G steps are unrolled: XLA:CPU runs convolutions inside a while loop
  # (lax.scan) about 10x slower than the same ops at top level.
  g_metrics = []
  for i in range(sc.g_steps):
    batch = jax.tree.map(lambda x, i=i: x[i + 1], batches)
    state, m = g_step(state, batch, jax.random.fold_in(rng, i + 1))
    g_metrics.append(m)
  state = _ema(state, sc.ema_decay).replace(step=state.step + 1)
  g_mean = jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *g_metrics)
  metrics = {**g_mean, **d_metrics, "lr": lr}
  return state, metrics


def stage1_iteration(
  state: GANState,
  batches: Batch,
  root_rng: jax.Array,
  *,
  models: Models,
  tx: optax.GradientTransformation,
  sc: StepConfig,
) -> tuple[GANState, Metrics]:
  """batches: {'a', 'b'} each [2, B, H, W, 3]."""
  kw = dict(models=models, tx=tx, sc=sc)
  return _iteration(
    state,
    batches,
    root_rng,
    d_step=functools.partial(stage1_d_step, **kw),
    g_step=functools.partial(stage1_g_step, **kw),
    sc=sc,
  )


def stage2_iteration(
  state: GANState,
  batches: Batch,
  root_rng: jax.Array,
  vgg_params: PyTree,
  *,
  models: Models,
  vgg: Any,
  tx: optax.GradientTransformation,
  sc: StepConfig,
) -> tuple[GANState, Metrics]:
  """batches: {'a', 'b'} each [1 + g_steps, B, H, W, 3]."""
  kw = dict(models=models, tx=tx, sc=sc)
  g_step = functools.partial(stage2_g_step, vgg_params=vgg_params, vgg=vgg, **kw)
  return _iteration(
    state, batches, root_rng, d_step=functools.partial(stage2_d_step, **kw), g_step=g_step, sc=sc
  )


# ----------------------------------------------------------------------------
# Inference
# ----------------------------------------------------------------------------


def translate(
  g_params: PyTree,
  frozen: PyTree,
  source: jax.Array,
  exemplar: jax.Array,
  rng: jax.Array,
  *,
  models: Models,
  direction: str,
) -> jax.Array:
  """source [B, H, W, 3] -> the exemplar's domain in the exemplar's style.

  direction 'a2b': source from A, exemplar from B; 'b2a' the reverse. The mask
  comes from the source, the statistics from the exemplar (docs/method.md §1.5, 1.6).
  """
  tgt = "b" if direction == "a2b" else "a"
  style = exemplar_style(g_params, frozen, exemplar, models=models, domain=tgt)
  return translate_with_style(
    g_params, frozen, source, style, rng, models=models, direction=direction
  )


def exemplar_style(
  g_params: PyTree, frozen: PyTree, exemplar: jax.Array, *, models: Models, domain: str
):
  """What the decoder of `domain` takes from exemplar [B, H, W, 3] of that domain.

  EGSC-IT: the AdaIN statistics (mean, var) of F_domain, each [B, 1, 1, C], or
  None without AdaIN (`conditioning`). MUNIT: the style code [B, 1, 1, S] of
  its own style encoder Es_domain (part of g_params).
  """
  if models.architecture == "munit":
    return models.generator.apply({"params": g_params}, exemplar, domain, method="style")
  return conditioning(models, frozen, exemplar, domain)[1]


def translate_with_style(
  g_params: PyTree,
  frozen: PyTree,
  source: jax.Array,
  style,
  rng: jax.Array,
  *,
  models: Models,
  direction: str,
) -> jax.Array:
  """`translate` with given AdaIN statistics instead of an exemplar.

  Args:
    source: [B, H, W, 3] of the source domain.
    style: `exemplar_style`'s: (mean, var) each [B, 1, 1, C] of F_target
      features, or None for variants without AdaIN; a MUNIT style code
      [B, 1, 1, S].
  Returns:
    [B, H, W, 3] in the target domain.
  """
  src = "a" if direction == "a2b" else "b"
  mask, _ = conditioning(models, frozen, source, src)
  return models.generator.apply(
    {"params": g_params},
    source,
    source=src,
    mask=mask,
    style=style,
    noise=models.test_noise,
    rngs={"noise": rng},
    method="translate",
  )


def mix_styles(style_1, style_2, alpha):
  """(1 - alpha) style_1 + alpha style_2, leaf by leaf, for style interpolation.

  style_1, style_2: (mean, var), or MUNIT style codes, of the same shapes (numpy
  or jax); alpha a scalar or an array broadcasting against them. Exact at
  alpha 0 and 1.
  """
  return jax.tree.map(lambda u, v: (1 - alpha) * u + alpha * v, style_1, style_2)


def stage1_reconstruct(
  g_params: PyTree, x: jax.Array, rng: jax.Array, *, models: Models, domain: str
) -> jax.Array:
  """Stage-1 autoencoder reconstruction of x [B, H, W, 3] (for image grids)."""
  x_hat, _ = models.autoencoder.apply(
    {"params": g_params[domain]}, x, noise=models.test_noise, rngs={"noise": rng}
  )
  return x_hat
