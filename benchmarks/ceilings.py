"""What this device can do at best: a 3x3 convolution forward + backward and a
matmul, in TFLOP/s, the yardsticks the iteration benchmarks are read against.

  python benchmarks/ceilings.py                       # this machine, float32
  python benchmarks/ceilings.py --dtype bfloat16 --size 64 --channels 256 --batch 64

The convolution is NHWC 'SAME' with C -> C channels; forward + backward is the
loss sum(conv(x, w)) differentiated with respect to both x and w, the three
convolutions a training step runs per layer (the forward, the input
gradient and the kernel gradient). FLOPs come from XLA's cost
analysis of the compiled function (2 per multiply-add), the time is the median
of `reps` calls after a warm-up call. JAX and numpy only (no TensorFlow).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp


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


def median_seconds(fn: Callable, *args, warmup: int = 1, reps: int = 5) -> float:
  """Median wall time of `fn(*args)` (outputs waited for) over `reps` calls,
  after `warmup` untimed ones. `fn` must not donate its arguments."""
  for _ in range(warmup):
    jax.block_until_ready(fn(*args))
  times = []
  for _ in range(max(reps, 1)):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def measure(fn: Callable, *args, warmup: int = 1, reps: int = 5) -> dict[str, float]:
  """Compiles jitted `fn` for `args`: {'flops', 'seconds', 'gflops'} of one call
  (flops None -> gflops None)."""
  compiled = fn.lower(*args).compile()
  flops = flops_of(compiled)
  seconds = median_seconds(compiled, *args, warmup=warmup, reps=reps)
  return dict(flops=flops, seconds=seconds, gflops=None if flops is None else flops / seconds / 1e9)


def conv_fwd_bwd(
  *,
  batch: int,
  size: int,
  channels: int,
  dtype=jnp.float32,
  warmup: int = 1,
  reps: int = 5,
  seed: int = 0,
) -> dict[str, float]:
  """A 3x3 'SAME' conv [batch, size, size, C] -> C channels, forward + both
  gradients, as `measure` reports it."""
  kx, kw = jax.random.split(jax.random.key(seed))
  x = jax.random.normal(kx, (batch, size, size, channels), dtype)
  w = jax.random.normal(kw, (3, 3, channels, channels), dtype) / jnp.sqrt(9.0 * channels).astype(
    dtype
  )

  def loss(x, w):
    y = jax.lax.conv_general_dilated(
      x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    # Half the squared sum: its cotangent is y itself, so the forward
    # convolution cannot be pruned away (with sum(y) it would be).
    return 0.5 * jnp.sum(jnp.square(y.astype(jnp.float32)))

  return measure(jax.jit(jax.value_and_grad(loss, argnums=(0, 1))), x, w, warmup=warmup, reps=reps)


def conv_fwd(
  *,
  batch: int,
  size: int,
  channels: int,
  dtype=jnp.float32,
  warmup: int = 1,
  reps: int = 5,
  seed: int = 0,
) -> dict[str, float]:
  """The same convolution, forward only."""
  kx, kw = jax.random.split(jax.random.key(seed))
  x = jax.random.normal(kx, (batch, size, size, channels), dtype)
  w = jax.random.normal(kw, (3, 3, channels, channels), dtype)
  conv = jax.jit(
    lambda x, w: jax.lax.conv_general_dilated(
      x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
  )
  return measure(conv, x, w, warmup=warmup, reps=reps)


def matmul(
  *, n: int, dtype=jnp.bfloat16, warmup: int = 1, reps: int = 5, seed: int = 0
) -> dict[str, float]:
  """[n, n] @ [n, n], as `measure` reports it."""
  ka, kb = jax.random.split(jax.random.key(seed))
  a = jax.random.normal(ka, (n, n), dtype)
  b = jax.random.normal(kb, (n, n), dtype)
  return measure(jax.jit(jnp.matmul), a, b, warmup=warmup, reps=reps)


def _row(name: str, r: dict[str, float]) -> str:
  flops = "n/a" if r["flops"] is None else f"{r['flops'] / 1e9:.3f}"
  rate = "n/a" if r["gflops"] is None else f"{r['gflops']:.1f}"
  return f"| {name} | {flops} | {r['seconds'] * 1e3:.2f} | {rate} |"


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--size", type=int, default=28)
  p.add_argument("--channels", type=int, default=64)
  p.add_argument("--matmul_n", type=int, default=1024)
  p.add_argument("--reps", type=int, default=5)
  args = p.parse_args(argv)
  dtype = jnp.dtype(args.dtype)
  shape = dict(
    batch=args.batch, size=args.size, channels=args.channels, dtype=dtype, reps=args.reps
  )
  d = jax.devices()[0]
  print(f"device: {d.device_kind} ({d.platform}), jax {jax.__version__}, {args.dtype}")
  print("| kernel | GFLOP per call | ms per call | GFLOP/s |")
  print("|---|---|---|---|")
  name = f"conv 3x3 [{args.batch},{args.size},{args.size},{args.channels}]"
  print(_row(name + " fwd", conv_fwd(**shape)))
  print(_row(name + " fwd+bwd", conv_fwd_bwd(**shape)))
  print(_row(f"matmul {args.matmul_n}^2", matmul(n=args.matmul_n, dtype=dtype, reps=args.reps)))


if __name__ == "__main__":
  main()
