"""A change, before and after, in one process: the same stage-2 iteration of a
baseline and of this checkout, on the same state and batches. The baseline
differs by its steps.py (another checkout's), by config overrides
(--baseline_set, e.g. the model's `conv_impl`), or both.

  mkdir /tmp/base && git archive main | tar -x -C /tmp/base   # the baseline
  taskset -c 0 python benchmarks/steps_ab.py --baseline /tmp/base/egsc_jax/steps.py
  taskset -c 0 python benchmarks/steps_ab.py --baseline_set model.conv_impl=xla

Prints (1) the metrics of 3 iterations from the same state under both, with
the largest relative difference, and the largest parameter difference after
them: the "same math" check; (2) --pairs calls of each, timed in turn
(baseline, this, baseline, ...), with the median time of each and the median
of the pair ratios, the measure that survives a machine whose speed drifts.
Both iterations are jitted and compiled first; nothing is donated.

The baseline module is loaded from its file under another name; it imports
the rest of egsc_jax (losses, models, state) from this checkout, so only
changes confined to steps.py compare cleanly that way. Overrides that change
the models must keep their parameters (both runs start from one state).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from egsc_jax import config_lib  # noqa: E402
from egsc_jax import state as state_lib  # noqa: E402
from egsc_jax import steps as this_steps  # noqa: E402
from egsc_jax.models import build_models, vgg_weights  # noqa: E402


def _load_baseline(path: str):
  spec = importlib.util.spec_from_file_location("baseline_steps", path)
  module = importlib.util.module_from_spec(spec)
  sys.modules["baseline_steps"] = module  # flax's struct.dataclass looks it up
  spec.loader.exec_module(module)
  return module


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--baseline", help="the baseline's egsc_jax/steps.py (default: this one's)")
  p.add_argument(
    "--baseline_set",
    action="append",
    default=[],
    metavar="KEY=VALUE",
    help="a config override of the baseline only (repeatable), e.g. model.conv_impl=xla",
  )
  p.add_argument("--config", default="configs/mnist_single.py:cpu")
  p.add_argument("--pairs", type=int, default=12)
  args = p.parse_args(argv)
  if not args.baseline and not args.baseline_set:
    p.error("give --baseline, --baseline_set or both")

  c = config_lib.load_file(args.config)
  if c.stage2.num_iterations <= 0:
    c.stage2.num_iterations = 1000  # the rate's value does not change the cost
  shape = tuple(c.data.image_size)
  models = build_models(c.model)
  tx = state_lib.adam(b1=c.optim.b1, b2=c.optim.b2, eps=c.optim.eps)
  s1 = state_lib.init_stage1(models, jax.random.key(0), image_shape=shape, tx=tx, ema=False)
  state = state_lib.init_stage2(
    models,
    jax.random.key(1),
    image_shape=shape,
    tx=tx,
    frozen=state_lib.exemplar_params_from_stage1(s1.g_params),
    ema=c.optim.ema_decay > 0,
  )
  vgg, vgg_params = vgg_weights.init_vgg(
    c.vgg.arch, c.vgg.weights, num_layers=config_lib.vgg_num_layers(c)
  )
  rs = np.random.RandomState(0)
  n = 1 + int(c.stage2.g_steps)
  batches = {
    k: jnp.asarray(rs.uniform(-1, 1, (n, c.batch_size, *shape, 3)), jnp.float32) for k in ("a", "b")
  }
  key = jax.random.key(5)

  base_c = config_lib.with_overrides(c, args.baseline_set)
  base_steps = _load_baseline(args.baseline) if args.baseline else this_steps
  compiled = {}
  for name, module, cfg in (("baseline", base_steps, base_c), ("this", this_steps, c)):
    sc = module.step_config(cfg, stage=2)
    fn = jax.jit(
      functools.partial(
        module.stage2_iteration, models=build_models(cfg.model), vgg=vgg, tx=tx, sc=sc
      )
    )
    t0 = time.perf_counter()
    compiled[name] = fn.lower(state, batches, key, vgg_params).compile()
    print(f"{name}: compiled in {time.perf_counter() - t0:.0f} s", flush=True)

  # (1) The same math? Beside "this", the baseline again from its state
  # nudged by one float32 ulp: how far rounding alone carries 3 iterations.
  nudged = state.replace(
    g_params=jax.tree.map(lambda x: jnp.nextafter(x, jnp.inf), state.g_params),
    d_params=jax.tree.map(lambda x: jnp.nextafter(x, jnp.inf), state.d_params),
  )
  runs = {}
  for name, fn, s in (
    ("baseline", compiled["baseline"], state),
    ("this", compiled["this"], state),
    ("baseline, 1 ulp", compiled["baseline"], nudged),
  ):
    metrics = []
    for _ in range(3):
      s, m = fn(s, batches, key, vgg_params)
      metrics.append({k: float(v) for k, v in m.items()})
    runs[name] = (metrics, s)
  print(
    "relative difference to the baseline, iterations 1 / 2 / 3: this | the baseline from "
    "its state nudged by 1 ulp"
  )
  worst = 0.0
  base = runs["baseline"][0]
  for k in sorted(base[0]):
    row = {}
    for other in ("this", "baseline, 1 ulp"):
      row[other] = [abs(b[k] - o[k]) / max(abs(b[k]), 1e-12) for b, o in zip(base, runs[other][0])]
    worst = max(worst, *row["this"])
    print(
      f"  {k}: "
      + " / ".join(f"{v:.1e}" for v in row["this"])
      + " | "
      + " / ".join(f"{v:.1e}" for v in row["baseline, 1 ulp"])
    )
  # Parameters after the 3 iterations: the largest difference relative to its
  # tensor's largest value, and the norm of all differences over the norm of
  # all parameters (Adam turns rounding noise in a near-zero gradient into a
  # whole learning-rate step, so single elements of small tensors move most).
  for part in ("g_params", "d_params"):
    leaves = [jax.tree.leaves(getattr(runs[n][1], part)) for n in runs]
    out = []
    for other in (1, 2):
      pairs = list(zip(leaves[0], leaves[other]))
      rel_max = max(
        float(jnp.max(jnp.abs(x - y)) / (jnp.max(jnp.abs(x)) + 1e-12)) for x, y in pairs
      )
      norm = float(
        jnp.sqrt(sum(jnp.sum((x - y) ** 2) for x, y in pairs))
        / jnp.sqrt(sum(jnp.sum(x**2) for x, _ in pairs))
      )
      out.append(f"max {rel_max:.1e}, norm {norm:.1e}")
    print(f"  {part} after 3: " + " | ".join(out))
  last = runs["this"][0][-1]
  print("iteration 3, this: " + ", ".join(f"{k} {v:.8g}" for k, v in sorted(last.items())))
  print(f"largest relative metric difference over 3 iterations: {worst:.2e}", flush=True)

  # (2) Time, in turn.
  times = {"baseline": [], "this": []}
  for i in range(args.pairs):
    for name in ("baseline", "this"):
      t0 = time.perf_counter()
      jax.block_until_ready(compiled[name](state, batches, key, vgg_params))
      times[name].append(time.perf_counter() - t0)
    print(
      f"  pair {i + 1}: baseline {times['baseline'][-1]:.3f} s, this {times['this'][-1]:.3f} s",
      flush=True,
    )
  ratios = [b / t for b, t in zip(times["baseline"], times["this"])]
  print("load average (1, 5, 15 min) at the end: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
  print(
    f"median s/iteration: baseline {statistics.median(times['baseline']):.3f}, this "
    f"{statistics.median(times['this']):.3f}; baseline/this per pair: median "
    f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})"
  )


if __name__ == "__main__":
  main()
