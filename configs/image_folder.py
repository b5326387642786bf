"""Your own two domains: photographs in trainA/ trainB/ testA/ testB/ folders.

  python -m egsc_jax.main --config=image_folder --workdir=DIR \
      --config.data.manual_dir=/data/my_domains --config.data.data_dir=/data/tfds_my_domains

Training builds the `image_folder` dataset on first use (or build it ahead with
`egsc-build image_folder`; docs/data.md, "Train on your own images", has the
whole path: build, train, watch, evaluate, translate). One data_dir per pair of
domains; a build made from other files is refused, not reused.

The paper's photographic setting (configs/gta5_bdd.py: lambda_s 1e4, lambda_c
1e2, lr 1e-4, two down-samplings, standard AdaIN) at 256x256, batch 8.
Hardware / wall time / metric: not measured at this size; the worked example of
docs/data.md runs a 64x64 version of it on a CPU.

The knobs (override any with --config.KEY=VALUE):
  data.image_size     (H, W) the network sees, each a multiple of
                      2**model.n_downsample (4). Every image is resized to it
                      whole, its aspect not kept: give it your photos' aspect,
                      e.g. (192, 256) for 4:3 landscape photos. The build stores
                      each image with its longer side at max(image_size), aspect
                      kept and never enlarged (egsc_jax/data/image_folder.py).
  data.augment        the crop policy of training: True (default) flips half
                      the images and zoom-crops half of them to 80-100% of each
                      side before the resize; False shows every image whole.
                      Evaluation and translation always use the whole image.
  model.ngf, model.ndf  the widths of the generators and discriminators (64:
                      the paper's; 32 quarters the convolutions' work).
  model.n_enc_res, model.n_dec_res  residual blocks of encoder and decoder (3, 3).
  stage1.num_iterations, stage2.num_iterations  the budget: -1 is the paper's T,
                      one iteration per training pair (the larger domain's
                      image count); stage 2 runs 1 D and stage2.g_steps (5) G
                      steps per iteration.
  batch_size          global, divisible by the number of devices.
  model.adain_mode    "standard" as in the paper's text and its photographic
                      configs. model.content_sign_norm stays False: on
                      photographs which of two shades is darker is content (a
                      dark car on a bright road), which that encoder would drop.
"""

import ml_collections

from egsc_jax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  # The paper's photographic setting (configs/gta5_bdd.py: its networks, losses,
  # optimiser and standard AdaIN, no sign-normalised encoder), at a square size.
  c = config_lib.load_module("gta5_bdd").get_config()
  c.dataset = "image_folder"
  # Its longer side is the build's default max side (image_folder.DEFAULT_MAX_SIDE).
  c.data.image_size = (256, 256)
  c.batch_size = 8
  # Two buffers (A and B) of encoded images of at most 256x256: ~100 MB each.
  c.data.shuffle_buffer = 1024
  return config_lib.apply_variant(c, arg)
