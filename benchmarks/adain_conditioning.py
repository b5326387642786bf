"""How sensitive one stage-2 gradient is to the order of the batch reductions,
for each AdaIN mode: the same batch split over 8 (fake CPU) devices vs on one.

  python benchmarks/adain_conditioning.py [--config configs/mnist_single.py:tiny]

Data parallelism only reorders float32 sums (a relative change of about
2**-24 per term). A well-conditioned forward pass keeps that at the same order
in the gradients; an ill-conditioned one amplifies it. The authors' 'official'
AdaIN, mean_f * (x - mean_x) / (var_x + eps) + var_f, divides by the content's
variance, which at initialisation is ~1e-3 and smaller: the script prints
var_x, the largest decoder input, and the worst per-leaf gradient discrepancy
(max |g8 - g1| / max |g1|) for both modes, on stage-1-initialised F networks and
a real test batch of MNIST-Single (the dataset must be built).
Needs JAX only besides the dataset reader (TensorFlow reads the batch).
"""

from __future__ import annotations

import argparse
import functools
import os
import pathlib
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from egsc_jax import config_lib, sharding, steps  # noqa: E402
from egsc_jax import state as state_lib  # noqa: E402
from egsc_jax.models import build_models, layers  # noqa: E402


def _config(path_and_variant: str, mode: str):
  config = config_lib.load_file(path_and_variant)
  config.model.adain_mode = mode
  config.loss.style = config.loss.content = 0.0  # the generator's own numerics only
  return config


def _grads(mesh, state, batch, rng, *, models, sc):
  rep = sharding.replicated(mesh)
  state = jax.device_put(state, rep)
  batch = jax.device_put(batch, sharding.batch_sharding(mesh))
  fn = jax.jit(
    jax.grad(functools.partial(steps.stage2_g_loss, models=models, sc=sc, vgg=None), has_aux=True)
  )
  return jax.device_get(fn(state.g_params, state, batch, rng, None))


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--config", default="configs/mnist_single.py:tiny")
  args = p.parse_args()
  from egsc_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top

  for mode in ("standard", "official"):
    config = _config(args.config, mode)
    config.stage2.num_iterations = 10
    models = build_models(config.model)
    tx = state_lib.adam(b1=0.5, b2=0.999, eps=1e-8)
    shape = tuple(config.data.image_size)
    s1 = state_lib.init_stage1(models, jax.random.key(1), image_shape=shape, tx=tx, ema=False)
    frozen = state_lib.exemplar_params_from_stage1(s1.g_params)
    state = state_lib.init_stage2(
      models, jax.random.key(2), image_shape=shape, tx=tx, frozen=frozen, ema=False
    )
    batch = next(
      iter(input_pipeline.eval_batches(config, split="test", batch_size=8, num_examples=8))
    )
    batch = {k: jnp.asarray(batch[k], jnp.float32) for k in ("a", "b")}
    # The transfer block's input statistics on this batch.
    mask_a, style_a = steps.conditioning(models, frozen, batch["a"], "a")
    z, c = models.generator.apply(
      {"params": state.g_params}, batch["a"], "a", noise=False, method="encode"
    )
    x = c * mask_a
    _, var_x = layers.moments(x)
    out = layers.adain(x, *style_a, mode=mode, eps=config.model.adain_eps)
    sc = steps.step_config(config, stage=2)
    rng = jax.random.key(3)
    one = sharding.make_mesh(jax.devices()[:1])
    g8, m8 = _grads(sharding.make_mesh(), state, batch, rng, models=models, sc=sc)
    g1, m1 = _grads(one, state, batch, rng, models=models, sc=sc)
    # Machine-independent: the same gradient after a relative 1e-6 perturbation
    # of the input pixels (the size of many accumulated float32 roundings).
    noise = jax.random.normal(jax.random.key(4), batch["a"].shape)
    shaken = {"a": batch["a"] * (1 + 1e-6 * noise), "b": batch["b"]}
    gp, _ = _grads(one, state, shaken, rng, models=models, sc=sc)
    loss_rel = abs(float(m8["total"]) - float(m1["total"])) / abs(float(m1["total"]))
    print(
      f"{mode:9s} var_x median {float(jnp.median(var_x)):.2e} min "
      f"{float(var_x.min()):.2e} | max |decoder input| {float(jnp.abs(out).max()):.3g}"
      f" | loss rel. diff 8 vs 1 devices {loss_rel:.1e}"
    )
    for name, other in (("8 vs 1 devices", g8), ("1e-6 input perturbation", gp)):
      ratios = [
        (
          float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)),
          float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)),
          jax.tree_util.keystr(path),
        )
        for (path, b), a in zip(jax.tree_util.tree_leaves_with_path(g1), jax.tree.leaves(other))
      ]
      flat1 = np.concatenate([np.ravel(b) for b in jax.tree.leaves(g1)])
      flat2 = np.concatenate([np.ravel(a) for a in jax.tree.leaves(other)])
      worst_max = max(ratios)
      worst_l2 = max(ratios, key=lambda r: r[1])
      print(
        f"   {name:24s} global L2 {np.linalg.norm(flat2 - flat1) / np.linalg.norm(flat1):.1e}"
        f" | worst leaf max-abs {worst_max[0]:.1e} ({worst_max[2]})"
        f" | worst leaf L2 {worst_l2[1]:.1e} ({worst_l2[2]})"
      )


if __name__ == "__main__":
  main()
