"""GTA5 <-> BDD100K street scenes at 256x512 (docs/method.md §3.3, 4.3).

  python -m egsc_jax.data.build gta5_bdd --manual_dir=/data/gta5_bdd
  python -m egsc_jax.main --config=configs/gta5_bdd.py --workdir=DIR \
      --config.model.compute_dtype=bfloat16
  T = 24,466 training pairs, batch 3, lr 1e-4, lambda_s 1e4, lambda_c 1e2.
  Hardware / wall time / metric: not measured yet.
"""

import ml_collections

from egsc_jax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = config_lib.base_config()
  c.dataset = "gta5_bdd"
  c.data.image_size = (256, 512)
  c.model.n_downsample = 2
  c.batch_size = 3
  c.optim.lr = 1e-4
  c.stage1.lr = 1e-4
  c.loss.style = 1e4
  c.loss.content = 1e2
  c.stage1.num_iterations = -1
  c.stage2.num_iterations = -1
  c.train.image_every = 500
  c.train.num_image_examples = 4
  # Two buffers (A and B) of encoded images: keep them to a few hundred MB.
  c.data.shuffle_buffer = 256
  c.train.eval_split = "test"  # the builder has train and test splits only
  return config_lib.apply_variant(c, arg)
