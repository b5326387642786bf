"""MNIST-Multiple (docs/method.md §3.3, 4.2): 112x112 canvases of 10 digits,
A b/w <-> B per-class colours.

  python -m egsc_jax.main --config=configs/mnist_multiple.py --workdir=DIR
  T = number of training pairs (stage 1 and stage 2), batch 8, lr 1e-5.
  Hardware / wall time / SSIM: not measured yet.
"""
import ml_collections

from egsc_jax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = config_lib.base_config()
  c.dataset = "mnist_multiple"
  c.data.image_size = (112, 112)
  c.model.n_downsample = 2            # n_encoder = n_gen_decoder = 3
  c.batch_size = 8
  c.optim.lr = 1e-5
  c.stage1.lr = 1e-5
  c.loss.style = 1e4
  c.loss.content = 1e2
  c.stage1.num_iterations = -1        # -1: the number of training pairs (docs/method.md §3.1)
  c.stage2.num_iterations = -1
  return config_lib.apply_variant(c, arg)
