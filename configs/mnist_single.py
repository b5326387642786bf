"""MNIST-Single (docs/method.md §3.3, §4.1): 28x28 binarised digits A <-> coloured digits B.

Paper setting:
  python -m egsc_jax.main --config=configs/mnist_single.py --workdir=DIR
  T stage-1 + T stage-2 iterations (1 D + 5 G steps each), T = #training pairs
  (60k with full MNIST, 4k with the offline digits), batch 8, lr 1e-5, L_P on
  all five VGG layers, plain tanh output, standard AdaIN (the paper's text;
  the authors' code formula is `--config.model.adain_mode=official`).
  Hardware / wall time / SSIM: not measured yet (no GPU run so far).

EGSC-IT as published at CPU capacity (`faithful`, docs/method.md §3.3):
  python -m egsc_jax.main --config=configs/mnist_single.py:faithful --workdir=DIR \
      [--config.model.adain_mode=official]
  ngf 32, 2+2 residual blocks, ndf 32, lr 5e-4, 1,000 stage-1 and 800
  stage-2 iterations; everything else as the paper setting above. Scores on
  the validation split every 50 iterations. About 2.5 h on one core (stage 2
  about 11 s an iteration; docs/benchmarks.md, "EGSC-IT as published").

CPU default (the README's first command), "EGSC-IT + sign-normalised
encoder" (`sn`, docs/method.md §1.6, §3.3):
  python -m egsc_jax.main --config=configs/mnist_single.py:sn --workdir=DIR
  `faithful`'s networks and losses (all five VGG layers, plain tanh) with the
  authors' `official` AdaIN and one addition, the sign-normalised content
  encoder; `cpu`'s learning rate and length (lr 2e-3, stage 1 5e-4; 300
  stage-1 and 120 stage-2 iterations). Chosen on the validation split; test
  SSIM 0.944 +- 0.012 / 0.950 +- 0.008 over seeds 19-21, every exemplar
  scheme at colour match >= 0.971 (docs/results.md, "The smallest change").
  About 13 min on a 2-core CPU, install included.

The tailored setting "EGSC-IT + sign-normalised encoder + official_std AdaIN +
colour loss" (`cpu`, the default until 2026-12-06):
  python -m egsc_jax.main --config=configs/mnist_single.py:cpu --workdir=DIR
  The same capacity and budget; L_P content on relu1_1-relu3_1, style (Gram)
  on relu1_1 only at lambda_s 1e5; output clip(1.1 tanh); the sign-normalised
  content encoder and `official_std` AdaIN. docs/benchmarks.md, "Translation
  quality on MNIST-Single", has what each of these did; they were chosen on
  the test split, before the builders had a validation split. About 6-7 min
  on a 2-core CPU; test SSIM over seeds 19-21 0.849 +- 0.038 / 0.859 +- 0.134
  (docs/results.md). Longer runs: lower the learning rate. At lr 2e-3 a
  1,000-iteration schedule diverged after ~240 iterations; --config.optim.lr=5e-4 with
  --config.stage2.num_iterations=2800 reached SSIM 0.988 / 0.944 in 2 h 08 min
  on one core (docs/benchmarks.md, "Learning curve of the fixed :cpu setting").
"""

import ml_collections

from egsc_jax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = config_lib.base_config()
  c.dataset = "mnist_single"
  c.data.image_size = (28, 28)
  c.model.n_downsample = 0  # n_encoder = n_gen_decoder = 1
  c.batch_size = 8
  c.optim.lr = 1e-5
  c.stage1.lr = 1e-5
  c.loss.style = 1e3
  c.loss.content = 1e1
  c.stage1.num_iterations = -1  # -1: the number of training pairs (docs/method.md §3.1):
  c.stage2.num_iterations = -1  # 60k with full MNIST, 4k with the offline digits
  mnist = config_lib.load_module("_mnist_common")
  return config_lib.apply_variant(
    c,
    arg,
    cpu=mnist.cpu_setting(),
    faithful=mnist.faithful_setting(),
    sn=mnist.sign_norm_setting(),
  )
