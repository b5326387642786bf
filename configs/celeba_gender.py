"""CelebA male <-> female at 128x128 (docs/method.md §3.3, 4.5).

python -m egsc_jax.data.build celeba_gender --manual_dir=/data/celeba
python -m egsc_jax.main --config=configs/celeba_gender.py --workdir=DIR
T = number of training pairs (the female train list, about 94k), batch 8,
lr 1e-4, lambda_s 5e3, lambda_c 1e1.
Hardware / wall time / metric: not measured yet.
"""

import ml_collections

from egsc_jax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = config_lib.base_config()
  c.dataset = "celeba_gender"
  c.data.image_size = (128, 128)
  c.model.n_downsample = 2
  c.batch_size = 8
  c.optim.lr = 1e-4
  c.stage1.lr = 1e-4
  c.loss.style = 5e3
  c.loss.content = 1e1
  c.stage1.num_iterations = -1
  c.stage2.num_iterations = -1
  # Two buffers (A and B) of encoded images: keep them to a few hundred MB.
  c.data.shuffle_buffer = 2048
  c.train.eval_split = "test"  # the builder has train and test splits only
  return config_lib.apply_variant(c, arg)
