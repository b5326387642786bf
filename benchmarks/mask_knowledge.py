"""What the feature mask knows of MNIST-Multiple's classes, through stage 1.

  python benchmarks/mask_knowledge.py --workdir=DIR [--split=validation] [--num_examples=200]

F is trained in stage 1 and frozen in stage 2, so the mask of every stage-2
iteration is that of stage 1's last checkpoint. For every stage-1 checkpoint
kept in DIR/stage1/checkpoints (train with --config.train.keep_checkpoints=None
to keep them all), this prints `eval.mask_probe`'s scores of the A and the B
sources of the first pairs of the split: the best single channel's IoU with the
digits and with each class, and a linear probe's (balanced) pixel accuracy
beside the majority class's. Needs TensorFlow (the input pipeline), like
training.
"""

import argparse
import json
import os
import sys

import jax

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# pylint: disable=wrong-import-position
from egsc_jax import api, checkpointing, grids, trained_run
from egsc_jax import state as state_lib
from egsc_jax.data import input_pipeline
from egsc_jax.eval import colour, mask_probe
from egsc_jax.models import build_models


def stage1_frozen(workdir: str, config, models) -> dict[int, dict]:
  """step -> {'a': F_A, 'b': F_B} of every stage-1 checkpoint of the run."""
  tx = state_lib.adam(b1=config.optim.b1, b2=config.optim.b2, eps=config.optim.eps)
  abstract = jax.eval_shape(
    lambda rng: state_lib.init_stage1(
      models, rng, image_shape=trained_run.image_shape(config), tx=tx, ema=False
    ),
    jax.random.key(0),
  )
  ckpt = checkpointing.Checkpointer(
    os.path.join(workdir, "stage1", "checkpoints"), keep=None, read_only=True
  )
  try:
    out = {}
    for step in ckpt.all_steps():
      state, _ = ckpt.restore(step, abstract)
      out[int(step)] = state_lib.exemplar_params_from_stage1(state.g_params)
    return out
  finally:
    ckpt.close()


def knowledge(models, frozen, batch) -> dict[str, dict[str, float]]:
  translator = api.Translator(models, {}, frozen)
  out = {}
  for domain, coloured in (("a", "gt_a2b"), ("b", "b")):
    classes = colour.digit_class_map(grids.to_uint8(batch[coloured]))
    out[domain] = mask_probe.mask_scores(
      mask_probe.channel_masks(translator, batch[domain], domain), classes
    )
  return out


def markdown(rows: dict[int, dict]) -> str:
  lines = [
    "| stage-1 iteration | sources | digit IoU (share) | class IoU | probe acc. "
    "(majority) | probe balanced acc. (majority) |",
    "|---|---|---|---|---|---|",
  ]
  for step, by_domain in rows.items():
    for d, r in by_domain.items():
      lines.append(
        f"| {step} | {d.upper()} | {r['digit_iou']:.3f} ({r['digit_share']:.3f}) "
        f"| {r['class_iou_mean']:.3f} | {r['probe_accuracy']:.3f} "
        f"({r['majority_accuracy']:.3f}) | {r['probe_balanced_accuracy']:.3f} "
        f"({r['majority_balanced_accuracy']:.3f}) |"
      )
  return "\n".join(lines)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--workdir", required=True)
  p.add_argument("--split", default="validation")
  p.add_argument("--num_examples", type=int, default=200)
  args = p.parse_args(argv)
  config = trained_run.load_config(args.workdir)
  if config.dataset != "mnist_multiple" or not config.model.use_feature_mask:
    raise SystemExit(f"{args.workdir}: an MNIST-Multiple run with a feature mask is needed")
  models = build_models(config.model)
  batch = next(
    iter(
      input_pipeline.eval_batches(
        config, split=args.split, batch_size=args.num_examples, num_examples=args.num_examples
      )
    )
  )
  rows = {
    step: knowledge(models, frozen, batch)
    for step, frozen in stage1_frozen(args.workdir, config, models).items()
  }
  if not rows:
    raise SystemExit(f"{args.workdir}: no stage-1 checkpoint")
  print(markdown(rows))
  print(json.dumps({str(k): v for k, v in rows.items()}, indent=1))


if __name__ == "__main__":
  main()
