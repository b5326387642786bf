"""Scores of translations that ignore the source, for reading the MNIST scores.

A model that has learnt nothing of the source can still score: SSIM rewards
a flat image of the right background on the mostly empty MNIST canvases. This
prints, with the scorer training uses (`eval.training.training_scores`, the
first N pairs of --split), what two such translations score:

  background  every pixel the exemplar's most frequent colour (its background)
  exemplar    the exemplar itself, unchanged

  python benchmarks/trivial_translations.py --config=configs/mnist_multiple.py:cpu \\
      [--split=validation]

Needs the built TFDS dataset (python -m egsc_jax.data.build ...); no model.
"""

from __future__ import annotations

import json

import numpy as np
from absl import app, flags
from ml_collections import config_flags

from egsc_jax.eval import training


def background_of(images: np.ndarray) -> np.ndarray:
  """[n, H, W, 3] in [-1, 1] -> each image filled with its most frequent colour."""
  out = np.empty_like(images)
  for i, im in enumerate(images):
    colours, counts = np.unique(np.round(im.reshape(-1, 3), 2), axis=0, return_counts=True)
    out[i] = colours[np.argmax(counts)]
  return out


class Trivial:
  """A translator (`api.Translator`'s call signature) that ignores the source."""

  batch_size = 50

  def __init__(self, kind: str):
    self.kind = kind

  def __call__(self, source, exemplar, index, *, direction):
    del source, index, direction
    exemplar = np.asarray(exemplar, np.float32)
    return background_of(exemplar) if self.kind == "background" else exemplar


def main(argv):
  del argv
  for kind in ("background", "exemplar"):
    out = training.training_scores(
      Trivial(kind),
      flags.FLAGS.config,
      num_examples=flags.FLAGS.examples,
      classifier=None,
      split=flags.FLAGS.split,
    )
    keep = {k: round(v, 4) for k, v in out.items() if "/" not in k or "background" in k}
    print(kind, json.dumps(keep))


if __name__ == "__main__":
  # Defined here, not at import: the tests import this file beside other
  # modules that define a --config flag.
  config_flags.DEFINE_config_file("config", None, "experiment config", lock_config=True)
  flags.DEFINE_integer("examples", 1000, "pairs to score")
  flags.DEFINE_string("split", "test", "the TFDS split scored")
  app.run(main)
