"""MNIST-Multiple (docs/method.md §4.2): 112x112 canvases of up to ten digits in a 4x4 grid.

Every canvas draws random MNIST indices (100 candidates for A, 200 for B, with
replacement) and keeps the first instance of each class 0-9 among them (all ten
unless the candidates miss a class). The kept digits, in class order, go into the first
cells of a random permutation of the 16 28x28 cells; the other cells stay empty.

- Domain A: binarised digits; r < 0.5: black digits on a white canvas, else white on
  black.
- Domain B: the digit of class c is painted HSV(c/10, 0.5 U(0.6, 1.4),
  0.5 U(0.6, 1.4)) (saturation and value jittered by 0.4, drawn per digit), on a
  white (r < 0.5) or black background.
- Every canvas is min-max stretched to [0, 255] as the authors' `scipy.misc.toimage`
  did (`bytescale`, rounding half up); this brightens B on black and darkens it on
  white, and leaves the black/white A canvases unchanged.
- A[i] is paired with B[i] (independent draws, no re-pairing). Test pairs carry
  `gt_a2b` = A[i]'s layout and digits in B[i]'s per-class colours and background,
  `gt_b2a` = B[i]'s layout in A[i]'s black/white scheme.

Splits: `train`, `validation` (from digits held out of the training digits,
`mnist_source.hold_out_validation`, with ground truth as test) and `test`.
Sizes: as many canvases per split as the MNIST source has digits in that split:
about 52,500 / 7,500 / 10,000 with the idx files and 3,500 / 500 / 1,000 with the
default offline source (`mnist_source`). The source is stored in
`info.metadata['mnist_source']`.

The canvases are drawn by `mnist_canvases` (numpy only); this module is the
TFDS builder around it.

Configs (`mnist_canvases.LAYOUTS`): `mnist_multiple/paper`, the default and the
rules above, and `mnist_multiple/small`: 56x56 canvases holding exactly one digit
each of 0, 2, 4 and 7 in the four cells of a 2x2 grid, painted by the same rules
(training picks it with `config.data.layout = 'small'`, the `small` variant).

Build: `python -m egsc_jax.data.build mnist_multiple[/small] [--manual_dir DIR]`.
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from egsc_jax.data import mnist_canvases, mnist_single, mnist_source


class MnistMultipleConfig(tfds.core.BuilderConfig):
  """One canvas layout (`mnist_canvases.Layout`), named as the layout."""

  def __init__(self, layout: mnist_canvases.Layout):
    super().__init__(name=layout.name, description=f"canvases of layout {layout}")
    self.layout = layout


class MnistMultiple(tfds.core.GeneratorBasedBuilder):
  """MNIST-Multiple of EGSC-IT (docs/method.md §4.2)."""

  VERSION = tfds.core.Version("1.2.0")
  RELEASE_NOTES = {
    "1.0.0": "First release.",
    "1.1.0": "A validation split held out of the training digits (1/8 of each "
    "class); the test split is unchanged.",
    "1.2.0": "Two configs: 'paper' (the default: 1.1.0's canvases, unchanged) "
    "and 'small' (56x56, one digit each of 0, 2, 4, 7 in a 2x2 grid).",
  }
  # The first is the default: `mnist_multiple` is `mnist_multiple/paper`.
  BUILDER_CONFIGS = [MnistMultipleConfig(layout) for layout in mnist_canvases.LAYOUTS.values()]
  MANUAL_DOWNLOAD_INSTRUCTIONS = mnist_single.MANUAL_DOWNLOAD_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.layout.size
    image = lambda: tfds.features.Image(shape=(size, size, 3))
    return tfds.core.DatasetInfo(
      builder=self,
      description=__doc__,
      features=tfds.features.FeaturesDict(
        {
          "image_a": image(),
          "image_b": image(),
          "gt_a2b": image(),
          "gt_b2a": image(),
          "id": tfds.features.Text(),
        }
      ),
      disable_shuffling=True,  # keep test pair i at position i
      metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    digits = mnist_source.load_mnist(mnist_single.manual_dir_or_none(dl_manager))
    mnist_single.record_source(self, digits)
    return {split: self._generate_examples(digits, split) for split in mnist_source.SPLITS}

  def _generate_examples(self, digits: mnist_source.MnistDigits, split: str):
    layout = self.builder_config.layout
    for i, example in enumerate(mnist_canvases.split_examples(digits, split, layout)):
      yield i, example
