"""How much does a trained run's feature mask change its translations?

  python benchmarks/feature_mask_effect.py --workdir=DIR [--num_examples=1000]

The mask m = 0.5 + 0.5*sigmoid(F(x)) multiplies the content c right before
AdaIN. Standard AdaIN normalises each channel by its spatial mean and std, so a
mask that is constant over space within a channel cancels exactly there and
only its spatial variation can act. The authors' 'official' formula divides by
the variance instead, so there a constant gain k scales the content term by
1/k and does not cancel. This script reports, on the first `num_examples`
test pairs of the run's dataset:

  - the mask's range and its spatial coefficient of variation per channel
    (std over h, w / mean over h, w), averaged over channels and examples;
  - test SSIM against ground truth with the mask (the normal translation) and
    with the mask replaced by ones (same weights, mask switched off at test
    time), for A->B and B->A.

If switching the mask off barely moves SSIM, the mask is not doing anything in
that model, and a "w/o feature mask" ablation cannot be expected to score lower.
Needs the input pipeline (TensorFlow) to read the test pairs.
"""

import functools
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from egsc_jax import grids, steps, trained_run
from egsc_jax.eval import ssim

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A trained run's workdir.", required=True)
flags.DEFINE_integer("num_examples", 1000, "Test pairs to use.")
flags.DEFINE_integer("batch_size", 100, "Pairs per batch.")


def _translate(params, frozen, source, exemplar, key, *, models, direction, use_mask):
  """source, exemplar [B, H, W, 3] in [-1, 1] -> (translation, mask [B, h, w, C])."""
  src, tgt = ("a", "b") if direction == "a2b" else ("b", "a")
  mask, _ = steps.conditioning(models, frozen, source, src)
  _, style = steps.conditioning(models, frozen, exemplar, tgt)
  used = mask if use_mask else jnp.ones_like(mask)
  y = models.generator.apply(
    {"params": params},
    source,
    source=src,
    mask=used,
    style=style,
    noise=models.test_noise,
    rngs={"noise": key},
    method="translate",
  )
  return y, mask


def main(argv):
  del argv
  from egsc_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top

  trained = trained_run.load_trained(FLAGS.workdir, test_noise=False)
  if not trained.models.use_mask:
    sys.exit(f"{FLAGS.workdir}: this run has no feature mask")
  fn = jax.jit(
    functools.partial(_translate, models=trained.models), static_argnames=("direction", "use_mask")
  )
  key = jax.random.key(0)
  report = {"workdir": FLAGS.workdir, "num_examples": FLAGS.num_examples}
  for direction in ("a2b", "b2a"):
    src, ex = ("a", "b") if direction == "a2b" else ("b", "a")
    scores = {True: [], False: []}
    lo, hi, cvs, diffs = np.inf, -np.inf, [], []
    for batch in input_pipeline.eval_batches(
      trained.config, batch_size=FLAGS.batch_size, num_examples=FLAGS.num_examples
    ):
      keep = np.asarray(batch["mask"], bool)
      source, exemplar = jnp.asarray(batch[src][keep]), jnp.asarray(batch[ex][keep])
      gt = grids.to_uint8(batch[f"gt_{direction}"][keep])
      outs = {}
      for use_mask in (True, False):
        y, mask = fn(
          trained.params,
          trained.frozen,
          source,
          exemplar,
          key,
          direction=direction,
          use_mask=use_mask,
        )
        outs[use_mask] = grids.to_uint8(y)
        scores[use_mask].append(np.atleast_1d(ssim.ssim(outs[use_mask], gt)))
      m = np.asarray(mask)
      lo, hi = min(lo, m.min()), max(hi, m.max())
      cvs.append((m.std(axis=(1, 2)) / m.mean(axis=(1, 2))).mean(axis=-1))
      diffs.append(np.abs(outs[True].astype(int) - outs[False].astype(int)).mean(axis=(1, 2, 3)))
    with_mask = float(np.concatenate(scores[True]).mean())
    without = float(np.concatenate(scores[False]).mean())
    report[direction] = dict(
      ssim_with_mask=with_mask,
      ssim_mask_off=without,
      mask_min=float(lo),
      mask_max=float(hi),
      mask_spatial_cv=float(np.concatenate(cvs).mean()),
      mean_abs_pixel_change_uint8=float(np.concatenate(diffs).mean()),
    )
    print(direction, json.dumps(report[direction]), flush=True)
  print(json.dumps(report, indent=1))


if __name__ == "__main__":
  app.run(main)
