"""Ways to run the same convolutions, timed against each other (issue 28):

- a reflect-padded 3x3 conv (the generator's `ReflectConv`) forward and
  forward + backward (both gradients), as lax's convolution and as im2col
  (the nine shifted slices concatenated, one matmul with the kernel reshaped
  to [9 C, O]);
- the discriminator of a config, forward + the gradient of its input (what
  a G step needs) and forward + the gradient of its parameters (a D step),
  with `model.conv_impl` "xla" and "space_to_depth".

  taskset -c 0 python benchmarks/conv_impls.py --config configs/mnist_single.py:cpu

Medians of --reps calls after warm-up, jitted, nothing donated; alternating
rounds (--rounds), because a shared machine's speed drifts. The largest
difference of each variant's outputs from lax's is printed beside (relative
to the largest value).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks.ceilings import median_seconds  # noqa: E402
from egsc_jax import config_lib  # noqa: E402
from egsc_jax.models import build_models, layers  # noqa: E402


def reflect_conv_xla(x, w):
  xp = layers.reflect_pad(x, w.shape[0] // 2)
  return jax.lax.conv_general_dilated(
    xp, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


def reflect_conv_im2col(x, w):
  """The same conv as one matmul of the [B*H*W, k*k*C] patches."""
  k = w.shape[0]
  xp = layers.reflect_pad(x, k // 2)
  b, h, wd, c = x.shape
  cols = jnp.concatenate(
    [xp[:, i : i + h, j : j + wd, :] for i in range(k) for j in range(k)], axis=-1
  )
  y = jnp.dot(cols.reshape(-1, k * k * c), w.reshape(k * k * c, -1))
  return y.reshape(b, h, wd, -1)


def _rel(a, b) -> float:
  return max(
    float(jnp.max(jnp.abs(u - v)) / jnp.max(jnp.abs(v)))
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )


def conv_rows(shapes, *, reps: int, rounds: int) -> None:
  print(
    "| conv [B, H, W, C] -> O | impl | fwd ms | fwd + bwd ms | max rel. diff of the gradients |"
  )
  print("|---|---|---|---|---|")
  for b, s, c, o in shapes:
    kx, kw, kg = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (b, s, s, c))
    w = jax.random.normal(kw, (3, 3, c, o)) * 0.05
    g = jax.random.normal(kg, (b, s, s, o))
    fns = {}
    for name, f in (("xla", reflect_conv_xla), ("im2col", reflect_conv_im2col)):
      fb = jax.jit(jax.grad(lambda x, w, f=f: jnp.sum(f(x, w) * g), argnums=(0, 1)))
      fns[name] = (jax.jit(f), fb)
    ref = fns["xla"][1](x, w)
    times = {n: ([], []) for n in fns}
    for _ in range(rounds):
      for n, (f, fb) in fns.items():
        times[n][0].append(median_seconds(f, x, w, reps=reps))
        times[n][1].append(median_seconds(fb, x, w, reps=reps))
    for n, (f, fb) in fns.items():
      t_f, t_fb = (min(t) * 1e3 for t in times[n])
      diff = _rel(fb(x, w), ref)
      print(f"| [{b}, {s}, {s}, {c}] -> {o} | {n} | {t_f:.2f} | {t_fb:.2f} | {diff:.1e} |")


def discriminator_rows(c, batches, *, reps: int, rounds: int) -> None:
  d = build_models(c.model).discriminator
  shape = tuple(c.data.image_size)
  print("| D on [B, H, W, 3] | conv_impl | fwd + input grad ms | fwd + param grad ms |")
  print("|---|---|---|---|")
  for b in batches:
    x = jax.random.uniform(jax.random.key(0), (b, *shape, 3), minval=-1.0, maxval=1.0)
    params = d.init(jax.random.key(1), x)["params"]
    fns = {}
    for impl in ("xla", "space_to_depth"):
      m = d.clone(conv_impl=impl)

      def loss(p, x, m=m):
        return jnp.sum(jnp.square(m.apply({"params": p}, x)))

      fns[impl] = (jax.jit(jax.grad(loss, argnums=1)), jax.jit(jax.grad(loss)))
    times = {n: ([], []) for n in fns}
    for _ in range(rounds):
      for n, (gx, gp) in fns.items():
        times[n][0].append(median_seconds(gx, params, x, reps=reps))
        times[n][1].append(median_seconds(gp, params, x, reps=reps))
    for n in fns:
      t_x, t_p = (min(t) * 1e3 for t in times[n])
      print(f"| [{b}, {shape[0]}, {shape[1]}, 3] | {n} | {t_x:.2f} | {t_p:.2f} |")
    diff_x = _rel(fns["space_to_depth"][0](params, x), fns["xla"][0](params, x))
    diff_p = _rel(fns["space_to_depth"][1](params, x), fns["xla"][1](params, x))
    print(f"(max rel. diff space_to_depth vs xla: input grad {diff_x:.1e}, params {diff_p:.1e})")


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--config", default="configs/mnist_single.py:cpu")
  p.add_argument("--reps", type=int, default=20)
  p.add_argument("--rounds", type=int, default=3, help="alternating rounds; the fastest is kept")
  args = p.parse_args(argv)
  c = config_lib.load_file(args.config)
  size = c.data.image_size[0]
  ngf = c.model.ngf
  conv_rows(
    [
      (8, size, ngf, ngf),
      (16, size, ngf, ngf),
      (8, size, ngf, 2 * ngf),
      (8, size, 2 * ngf, 2 * ngf),
    ],
    reps=args.reps,
    rounds=args.rounds,
  )
  print()
  discriminator_rows(c, (c.batch_size, 2 * c.batch_size), reps=args.reps, rounds=args.rounds)


if __name__ == "__main__":
  main()
