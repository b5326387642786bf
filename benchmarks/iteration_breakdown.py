"""Where the time of a training iteration goes: each part jitted on its own,
its FLOPs from XLA's cost analysis, its time and GFLOP/s beside this device's
3x3 convolution throughput (`benchmarks/ceilings.py`).

  taskset -c 0 python benchmarks/iteration_breakdown.py \
      --config configs/mnist_single.py:cpu --data_dir ~/tensorflow_datasets

Parts, on random parameters and random batches of the config's shape (the
values do not change the cost):

- stage 2: the whole iteration (1 D + g_steps G steps, as train.py jits it),
  one D step, one G step, and the G step's parts: the generator's forward and
  backward without L_P (encoders, generators, F, D's forward and backward for
  the GAN term, every other loss), the VGG of the real images (forward only,
  no gradient), the VGG of the translations (forward and the backward to the
  images), and the Adam update of the generator's parameters;
- stage 1: the iteration, one D step, one G step, the Adam update;
- with --data_dir (the config's dataset built there): one periodic evaluation,
  `eval.training.stage2_scores` as the training loop calls it, twice: on a fresh
  workdir and again (the second is what every later evaluation costs); then
  the label-free scores alone (`eval.training.label_free_scores`: KID and LPIPS
  diversity on train.label_free_examples pairs), again in a warm process.

Sums of parts need not equal the whole: XLA fuses across part boundaries.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks import ceilings  # noqa: E402
from egsc_jax import config_lib, losses, steps  # noqa: E402
from egsc_jax import state as state_lib  # noqa: E402
from egsc_jax.models import build_models  # noqa: E402


def _batches(key, n: int, batch: int, shape: tuple[int, int]) -> dict[str, jax.Array]:
  ka, kb = jax.random.split(key)
  full = (n, batch, *shape, 3)
  return {
    "a": jax.random.uniform(ka, full, jnp.float32, -1.0, 1.0),
    "b": jax.random.uniform(kb, full, jnp.float32, -1.0, 1.0),
  }


def _adam_update(tx):
  """The optimizer's part of a step: Adam on the gradients, then the update."""
  return jax.jit(lambda p, o, g, lr: steps._update(p, o, g, tx=tx, lr=lr))  # pylint: disable=protected-access


def _part(rows: list, name: str, fn, *args, reps: int) -> None:
  """Measures one part, appends it to rows and shows it at once (stderr)."""
  r = ceilings.measure(fn, *args, reps=reps)
  rows.append((name, r))
  print(f"  {name}: {r['seconds'] * 1e3:.1f} ms", file=sys.stderr, flush=True)


def _report(rows: list[tuple[str, dict]], ceiling: float) -> None:
  """The table; shares are of the first row (the whole iteration)."""
  total = rows[0][1]["seconds"]
  print("| part | GFLOP | ms | share of the iteration | GFLOP/s | of conv ceiling |")
  print("|---|---|---|---|---|---|")
  for name, r in rows:
    flops = "n/a" if r["flops"] is None else f"{r['flops'] / 1e9:.3f}"
    rate = "n/a" if r["gflops"] is None else f"{r['gflops']:.1f}"
    frac = "n/a" if r["gflops"] is None else f"{r['gflops'] / ceiling:.0%}"
    print(
      f"| {name} | {flops} | {r['seconds'] * 1e3:.1f} | "
      f"{r['seconds'] / total:.0%} | {rate} | {frac} |"
    )


def stage2_parts(c, *, reps: int) -> list[tuple[str, dict]]:
  """[(part, measure dict)] of a stage-2 iteration (module docstring)."""
  models = build_models(c.model)
  tx = state_lib.adam(b1=c.optim.b1, b2=c.optim.b2, eps=c.optim.eps)
  sc = steps.step_config(c, stage=2)
  shape = tuple(c.data.image_size)
  k_s1, k_s2, k_data, k_run = jax.random.split(jax.random.key(0), 4)
  s1 = state_lib.init_stage1(models, k_s1, image_shape=shape, tx=tx, ema=False)
  frozen = state_lib.exemplar_params_from_stage1(s1.g_params)
  state = state_lib.init_stage2(
    models, k_s2, image_shape=shape, tx=tx, frozen=frozen, ema=c.optim.ema_decay > 0
  )
  from egsc_jax.models import vgg_weights  # pylint: disable=g-import-not-at-top

  vgg, vgg_params = vgg_weights.init_vgg(
    c.vgg.arch, c.vgg.weights, num_layers=config_lib.vgg_num_layers(c), dtype=models.generator.dtype
  )
  batches = _batches(k_data, 1 + sc.g_steps, c.batch_size, shape)
  one = jax.tree.map(lambda x: x[0], batches)
  kw = dict(models=models, tx=tx, sc=sc)
  rows: list = []
  # Nothing is donated, so every call starts from the same state.
  iteration = jax.jit(functools.partial(steps.stage2_iteration, vgg=vgg, **kw))
  _part(
    rows,
    f"iteration (1 D + {sc.g_steps} G)",
    iteration,
    state,
    batches,
    k_run,
    vgg_params,
    reps=reps,
  )
  _part(
    rows,
    "D step",
    jax.jit(functools.partial(steps.stage2_d_step, **kw)),
    state,
    one,
    k_run,
    reps=reps,
  )
  _part(
    rows,
    "G step",
    jax.jit(functools.partial(steps.stage2_g_step, vgg=vgg, **kw)),
    state,
    one,
    k_run,
    vgg_params,
    reps=reps,
  )
  no_lp = sc.replace(use_perceptual=False)
  g_fb = jax.jit(
    jax.grad(functools.partial(steps.stage2_g_loss, models=models, vgg=vgg, sc=no_lp), has_aux=True)
  )
  _part(
    rows, "  G fwd+bwd, L_P off", g_fb, state.g_params, state, one, k_run, vgg_params, reps=reps
  )
  real = jnp.concatenate([one["a"], one["b"]])
  n = len(real)
  vgg_fwd = jax.jit(lambda p, x: vgg.apply({"params": p}, x))
  _part(rows, f"  VGG fwd of the {n} reals", vgg_fwd, vgg_params, real, reps=reps)
  real_maps = vgg_fwd(vgg_params, real)

  def lp(fakes, p, reals, real_maps):
    """L_P of both directions as a function of the translations [x_ab; x_ba];
    real_maps None: one VGG pass over [x_a; x_b; x_ab; x_ba] instead (the
    layout before the real images' maps left the differentiated function)."""
    if real_maps is None:
      maps = vgg.apply({"params": p}, jnp.concatenate([reals, fakes]))
      real_maps = [jnp.split(m, 2)[0] for m in maps]
      maps = [jnp.split(m, 2)[1] for m in maps]
    else:
      maps = vgg.apply({"params": p}, fakes)
    real_parts = [jnp.split(m, 2) for m in real_maps]
    fake_parts = [jnp.split(m, 2) for m in maps]
    feats = {
      "a": [r[0] for r in real_parts],
      "b": [r[1] for r in real_parts],
      "ab": [f[0] for f in fake_parts],
      "ba": [f[1] for f in fake_parts],
    }
    kw = dict(content_weights=sc.content_layer_weights, style_weights=sc.style_layer_weights)
    c_ab, s_ab = losses.perceptual(
      source=feats["a"], translation=feats["ab"], exemplar=feats["b"], **kw
    )
    c_ba, s_ba = losses.perceptual(
      source=feats["b"], translation=feats["ba"], exemplar=feats["a"], **kw
    )
    return sc.weights["content"] * (c_ab + c_ba) + sc.weights["style"] * (s_ab + s_ba)

  _part(
    rows,
    f"  VGG fwd+bwd of the {n} translations",
    jax.jit(jax.value_and_grad(lp)),
    real,
    vgg_params,
    real,
    real_maps,
    reps=reps,
  )
  _part(
    rows,
    f"  (before: VGG fwd+bwd of {n} reals + {n} translations in one pass)",
    jax.jit(jax.value_and_grad(functools.partial(lp, real_maps=None))),
    real,
    vgg_params,
    real,
    reps=reps,
  )
  _part(
    rows,
    "  Adam update of G",
    _adam_update(tx),
    state.g_params,
    state.g_opt_state,
    state.g_params,
    jnp.float32(1e-3),
    reps=reps,
  )
  return rows


def stage1_parts(c, *, reps: int) -> list[tuple[str, dict]]:
  """[(part, measure dict)] of a stage-1 iteration."""
  models = build_models(c.model)
  tx = state_lib.adam(b1=c.optim.b1, b2=c.optim.b2, eps=c.optim.eps)
  sc = steps.step_config(c, stage=1)
  shape = tuple(c.data.image_size)
  k_s, k_data, k_run = jax.random.split(jax.random.key(1), 3)
  state = state_lib.init_stage1(models, k_s, image_shape=shape, tx=tx, ema=False)
  batches = _batches(k_data, 2, c.batch_size, shape)
  one = jax.tree.map(lambda x: x[0], batches)
  kw = dict(models=models, tx=tx, sc=sc)
  rows: list = []
  _part(
    rows,
    "iteration (1 D + 1 G)",
    jax.jit(functools.partial(steps.stage1_iteration, **kw)),
    state,
    batches,
    k_run,
    reps=reps,
  )
  _part(
    rows,
    "D step",
    jax.jit(functools.partial(steps.stage1_d_step, **kw)),
    state,
    one,
    k_run,
    reps=reps,
  )
  _part(
    rows,
    "G step",
    jax.jit(functools.partial(steps.stage1_g_step, **kw)),
    state,
    one,
    k_run,
    reps=reps,
  )
  _part(
    rows,
    "  Adam update of G",
    _adam_update(tx),
    state.g_params,
    state.g_opt_state,
    state.g_params,
    jnp.float32(1e-3),
    reps=reps,
  )
  return rows


def evaluation(c, *, workdir: str) -> list[tuple[str, float]]:
  """Seconds of `stage2_scores` as training calls it: first in a process, after
  an image grid compiled the translation (as `train.image_every` does before
  the first evaluation of the default), on a fresh workdir; then again."""
  from egsc_jax.eval import training as eval_training  # pylint: disable=g-import-not-at-top

  models = build_models(c.model)
  tx = state_lib.adam(b1=c.optim.b1, b2=c.optim.b2, eps=c.optim.eps)
  shape = tuple(c.data.image_size)
  k1, k2 = jax.random.split(jax.random.key(2))
  s1 = state_lib.init_stage1(models, k1, image_shape=shape, tx=tx, ema=False)
  state = state_lib.init_stage2(
    models,
    k2,
    image_shape=shape,
    tx=tx,
    frozen=state_lib.exemplar_params_from_stage1(s1.g_params),
    ema=c.optim.ema_decay > 0,
  )
  from egsc_jax import api  # pylint: disable=g-import-not-at-top

  eval_training.stage2_images(state, eval_training.fixed_examples(c), models=models)
  # As train.py passes it: the label-free scores' real images, read once per run.
  reference = functools.cache(functools.partial(eval_training.label_free_reference, c))
  out = []

  def timed(name, fn):
    t0 = time.perf_counter()
    fn()
    out.append((name, time.perf_counter() - t0))
    print(f"  {name}: {out[-1][1]:.1f} s", file=sys.stderr, flush=True)

  for name in ("first evaluation of a run", "a later evaluation"):
    timed(
      name,
      lambda: eval_training.stage2_scores(
        state, models=models, config=c, workdir=workdir, reference=reference
      ),
    )
  if reference() is not None:
    translator = api.Translator(
      models, state.ema_params if state.ema_params is not None else state.g_params, state.frozen
    )
    timed(
      f"label-free scores alone ({c.train.label_free_examples} pairs asked)",
      lambda: eval_training.label_free_scores(translator, reference()),
    )
  return out


def main(argv=None) -> dict[str, Any]:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--config", default="configs/mnist_single.py:cpu")
  p.add_argument(
    "--data_dir",
    default=None,
    help="TFDS data_dir with the config's dataset built: adds the evaluation (left out without it)",
  )
  p.add_argument(
    "--set",
    action="append",
    default=[],
    metavar="KEY=VALUE",
    help="a config override, dotted key, value as a Python literal "
    "(else a string): --set train.label_free_examples=0 "
    "--set dataset=image_folder --set data.image_size=(64,64)",
  )
  p.add_argument("--reps", type=int, default=3, help="timed calls per part (median)")
  p.add_argument("--parts", default="ceiling,stage2,stage1,eval")
  args = p.parse_args(argv)
  c = config_lib.with_overrides(config_lib.load_file(args.config), args.set)
  parts = args.parts.split(",")
  d = jax.devices()[0]
  print(
    f"device: {d.device_kind} ({d.platform}), {jax.device_count()} device(s), "
    f"jax {jax.__version__}; config {args.config}, batch {c.batch_size}, "
    f"{tuple(c.data.image_size)}"
  )
  out: dict[str, Any] = {}
  ceiling = None
  if "ceiling" in parts or "stage2" in parts or "stage1" in parts:
    # The convolution at the model's own scale: ngf channels, batch, image size.
    conv = ceilings.conv_fwd_bwd(
      batch=c.batch_size, size=c.data.image_size[0], channels=c.model.ngf, reps=max(args.reps, 5)
    )
    big = ceilings.conv_fwd_bwd(batch=32, size=28, channels=64, reps=max(args.reps, 5))
    ceiling = max(conv["gflops"], big["gflops"])
    print(
      f"conv 3x3 fwd+bwd: {conv['gflops']:.1f} GFLOP/s at [{c.batch_size}, "
      f"{c.data.image_size[0]}^2, {c.model.ngf}], {big['gflops']:.1f} at [32, 28^2, "
      f"64]; the ceiling used below: {ceiling:.1f} GFLOP/s"
    )
    out["conv_ceiling_gflops"] = ceiling
  if "stage2" in parts:
    rows = stage2_parts(c, reps=args.reps)
    print("\nstage 2")
    _report(rows, ceiling)
    out["stage2"] = rows
  if "stage1" in parts:
    rows = stage1_parts(c, reps=args.reps)
    print("\nstage 1")
    _report(rows, ceiling)
    out["stage1"] = rows
  if "eval" in parts and args.data_dir:
    c = c.copy_and_resolve_references()
    c.data.data_dir = args.data_dir
    with tempfile.TemporaryDirectory() as workdir:
      rows = evaluation(c, workdir=workdir)
    print(
      "\none evaluation (eval.training.stage2_scores, "
      f"{c.train.eval_examples} ground-truth pairs per direction on the MNIST sets, "
      f"{c.train.label_free_examples} label-free)"
    )
    for name, seconds in rows:
      print(f"  {name}: {seconds:.1f} s")
    out["eval"] = rows
  return out


if __name__ == "__main__":
  main()
