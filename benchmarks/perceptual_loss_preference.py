"""Which translation does the perceptual loss L_P prefer, layer by layer?

  python benchmarks/perceptual_loss_preference.py [--config=configs/mnist_single.py:cpu]
      [--num_examples=400]

A loss can only teach what it ranks right. On the first `num_examples` MNIST
test pairs (no training involved) this scores four candidate translations of
each source with the exemplar of its pair, A->B and B->A:

  gt    the ground truth (the source's digit in the exemplar's colours);
  swap  the ground truth with its two colours exchanged (the failure we saw);
  copy  the exemplar itself;
  src   the source itself.

For each VGG layer relu1_1 ... relu5_1 it prints the style term (the L1 of the
Grams of the spatially L2-normalised maps, as `losses.perceptual`) against the
exemplar and the content term against the source, unweighted, averaged over
pairs; then the weighted L_P of the config (lambda_s, lambda_c and the layer
weights). A useful style term has gt < swap and gt close to copy. Needs the
input pipeline (TensorFlow) for the test pairs; the VGG is the config's.
"""

import collections

import jax
import numpy as np
from absl import app, flags

from egsc_jax import config_lib, losses
from egsc_jax.data import input_pipeline
from egsc_jax.models import vgg_weights

FLAGS = flags.FLAGS
flags.DEFINE_string("config", "configs/mnist_single.py:cpu", "CONFIG_FILE[:VARIANT].")
flags.DEFINE_integer("num_examples", 400, "Test pairs to score.")
flags.DEFINE_integer("batch_size", 100, "Pairs per batch.")

CANDIDATES = ("gt", "swap", "copy", "src")
LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def swap_two_colours(images: np.ndarray) -> np.ndarray:
  """Exchanges the two most frequent colours of each image. [N, H, W, 3] -> same."""
  out = images.copy()
  for img, dst in zip(images, out):
    flat = img.reshape(-1, 3)
    colours, inverse, counts = np.unique(flat, axis=0, return_inverse=True, return_counts=True)
    if len(colours) < 2:
      continue
    first, second = np.argsort(-counts)[:2]
    inverse = inverse.reshape(img.shape[:2])
    dst[inverse == first] = colours[second]
    dst[inverse == second] = colours[first]
  return out


def layer_terms(cand, source, exemplar):
  """Unweighted content and style terms per layer: two float [L] arrays."""
  content, style = [], []
  for t, s, e in zip(cand, source, exemplar):
    t, s, e = (losses.spatial_l2_normalize(u) for u in (t, s, e))
    content.append(float(losses.l1(pred=t, target=s)))
    style.append(float(losses.l1(pred=losses.gram(t), target=losses.gram(e))))
  return np.asarray(content), np.asarray(style)


def main(argv):
  del argv
  config = config_lib.load_file(FLAGS.config)
  config_lib.validate(config)
  vgg, params = vgg_weights.init_vgg(config.vgg.arch, config.vgg.weights, num_layers=5)
  features = jax.jit(lambda x: vgg.apply({"params": params}, x))
  sums = collections.defaultdict(lambda: np.zeros((2, len(LAYERS))))
  batches = 0
  for batch in input_pipeline.eval_batches(
    config,
    split="test",
    batch_size=FLAGS.batch_size,
    num_examples=FLAGS.num_examples,
    process_index=0,
    process_count=1,
  ):
    batches += 1
    for direction, src, ex in (("a2b", "a", "b"), ("b2a", "b", "a")):
      source, exemplar = np.asarray(batch[src]), np.asarray(batch[ex])
      gt = np.asarray(batch[f"gt_{direction}"])
      cands = dict(gt=gt, swap=swap_two_colours(gt), copy=exemplar, src=source)
      f_src, f_ex = features(source), features(exemplar)
      for name, images in cands.items():
        content, style = layer_terms(features(images), f_src, f_ex)
        sums[(direction, name)] += np.stack([content, style])
  wc = np.asarray(config.loss.content_layer_weights) * config.loss.content
  ws = np.asarray(config.loss.style_layer_weights) * config.loss.style
  print(
    f"{FLAGS.config}: {FLAGS.num_examples} test pairs; VGG {config.vgg.arch}; "
    f"lambda_c {config.loss.content:g} x {tuple(config.loss.content_layer_weights)}, "
    f"lambda_s {config.loss.style:g} x {tuple(config.loss.style_layer_weights)}"
  )
  for direction in ("a2b", "b2a"):
    print(f"\n{direction}: term  layer    " + "  ".join(f"{c:>10s}" for c in CANDIDATES))
    means = {c: sums[(direction, c)] / batches for c in CANDIDATES}
    for row, term in enumerate(("content", "style")):
      for i, layer in enumerate(LAYERS):
        print(
          f"     {term:7s} {layer}  " + "  ".join(f"{means[c][row, i]:10.3e}" for c in CANDIDATES)
        )
    total = {c: float(wc @ means[c][0] + ws @ means[c][1]) for c in CANDIDATES}
    print("     weighted L_P      " + "  ".join(f"{total[c]:10.3f}" for c in CANDIDATES))


if __name__ == "__main__":
  app.run(main)
