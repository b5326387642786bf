"""config_lib: the schema, the shipped configs and their variants, validation
(one message naming the key, the value and what is allowed)."""

import json
import os
import shlex
import subprocess

import ml_collections
import pytest
from absl import flags
from conftest import parse_config, tiny_config

from egsc_jax import config_files, config_lib, errors, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")


# ----------------------------------------------------------------------------
# Config validation
# ----------------------------------------------------------------------------


def _config(name="mnist_single", variant="tiny"):
  import importlib  # pylint: disable=g-import-not-at-top

  return importlib.import_module(f"configs.{name}").get_config(variant)


def test_every_shipped_config_and_variant_validates():
  for name in (
    "mnist_single",
    "mnist_multiple",
    "gta5_bdd",
    "celeba_gender",
    "photo_grades",
    "image_folder",
  ):
    for variant in [
      "",
      "tiny",
      "no_mask",
      "no_adain",
      "no_perceptual",
      "unit",
      "cyclegan",
      "munit",
    ] + (["cpu"] if name == "mnist_single" else []):
      config_lib.validate(_config(name, variant))


def test_load_file_reads_a_config_file_with_its_variant(tmp_path):
  """The benchmarks' `--config=FILE:VARIANT` (config_lib.load_file)."""
  path = os.path.join(REPO, "configs", "mnist_single.py")
  cpu = config_lib.load_file(f"{path}:cpu")
  assert cpu.to_dict() == _config("mnist_single", "cpu").to_dict()
  assert cpu.loss.style == 1e5 and tuple(cpu.loss.style_layer_weights) == (1, 0, 0, 0, 0)
  assert config_lib.load_file(path).loss.style == 1e3  # no variant: the paper setting
  with pytest.raises(FileNotFoundError, match="not_there.txt"):
    config_lib.load_file(str(tmp_path / "not_there.txt"))


@pytest.mark.parametrize(
  "key,value,allowed",
  [
    ("stage2.num_iterations", -5, "an integer >= 1, or -1 (-1: one epoch"),
    ("stage1.num_iterations", 0, "an integer >= 1, or -1"),
    ("batch_size", 0, "an integer >= 1"),
    ("model.adain_mode", "fancy", "one of 'official', 'official_std', 'standard'"),
    ("model.compute_dtype", "float16", "one of 'float32', 'bfloat16'"),
    ("vgg.arch", "vgg11", "one of 'vgg16', 'vgg19'"),
    ("data.exemplar_pairing", "sorted", "one of 'random', 'fixed', 'balanced'"),
    ("optim.b1", 1.0, "a finite number >= 0 and < 1"),
    ("optim.lr", float("nan"), "a finite number > 0"),
    ("loss.style", -1.0, "a finite number >= 0"),
    ("train.keep_checkpoints", 0, "an integer >= 1, or None"),
    ("dataset", "mnist_singel", "one of 'mnist_single', 'mnist_multiple'"),
  ],
)
def test_validate_names_key_value_and_what_is_allowed(key, value, allowed):
  c = _config()
  section, _, leaf = key.rpartition(".")
  (c[section] if section else c)[leaf] = value
  with pytest.raises(config_lib.ConfigError) as e:
    config_lib.validate(c)
  assert str(e.value).startswith(f"config.{key} = {value!r}: expected {allowed}")
  assert errors.exit_status(e.value) == errors.EXIT_USER_ERROR


def test_validate_types_of_a_json_config_and_several_problems_at_once():
  raw = json.loads(_config().to_json())
  raw["train"]["checkpoint_fallback"] = "yes"
  raw["model"]["ngf"] = 8.5
  raw["data"]["image_size"] = [28]
  with pytest.raises(config_lib.ConfigError) as e:
    config_lib.validate(ml_collections.ConfigDict(raw))
  message = str(e.value)
  assert "config.train.checkpoint_fallback = 'yes': expected True or False" in message
  assert "config.model.ngf = 8.5: expected an integer >= 1" in message
  assert "config.data.image_size = [28]: expected (H, W)" in message
  assert "\n" not in message


def test_validate_image_size_must_fit_the_encoder():
  c = _config("gta5_bdd")  # n_downsample = 2
  c.data.image_size = (254, 512)
  with pytest.raises(
    config_lib.ConfigError,
    match=r"config.data.image_size = \(254, 512\): "
    r"each side must be a multiple of 2\*\*config.model.n_downsample = 4",
  ):
    config_lib.validate(c)
  c.data.image_size = (256, 512)
  config_lib.validate(c)


def test_validate_balanced_pairing_only_where_exemplars_have_two_colours():
  c = _config("gta5_bdd")
  c.data.exemplar_pairing = "balanced"
  with pytest.raises(
    config_lib.ConfigError,
    match=r"config.data.exemplar_pairing = "
    r"'balanced' needs B images of two flat colours.*got 'gta5_bdd'",
  ):
    config_lib.validate(c)
  c = _config("mnist_single")
  c.data.exemplar_pairing = "balanced"
  config_lib.validate(c)


def test_validate_accepts_minus_one_and_ignores_keys_without_a_rule():
  c = _config()
  c.stage2.num_iterations = -1
  c.unlock()
  c.model.future_knob = -3.0  # a key without a rule: no error
  c.brand_new = ml_collections.ConfigDict({"count": -5})
  config_lib.validate(c)
  c.model.output_scale = -3.0  # a key with a rule is checked
  with pytest.raises(config_lib.ConfigError, match=r"config.model.output_scale = -3.0"):
    config_lib.validate(c)
  c.model.output_scale = 1.1
  del c.train["checkpoint_fallback"]  # an old config.json without the key
  config_lib.validate(c)


def test_resolve_num_iterations_rejects_other_negatives(mnist_data_dir):
  c = tiny_config(mnist_data_dir)
  c.stage1.num_iterations = -5
  with pytest.raises(config_lib.ConfigError, match=r"stage1.num_iterations = -5"):
    train.resolve_num_iterations(c)
  c.stage1.num_iterations = -1
  from egsc_jax.data import build  # pylint: disable=g-import-not-at-top

  pairs = (
    build.get_builder(c.dataset, data_dir=c.data.data_dir, require_built=True)
    .info.splits["train"]
    .num_examples
  )
  assert train.resolve_num_iterations(c).stage1.num_iterations == pairs > 0


# ----------------------------------------------------------------------------
# The shipped configs and their variants
# ----------------------------------------------------------------------------

CONFIG = os.path.join(REPO, "configs", "mnist_single.py")


def test_config_override_and_misspelled_key():
  c = parse_config(
    [f"--config={CONFIG}:tiny", "--config.optim.lr=0.5", "--config.data.image_size=(28,28)"]
  )
  assert c.optim.lr == 0.5 and c.model.ngf == 8
  with pytest.raises((AttributeError, KeyError, flags.Error), match="Did you mean \"lr\""):
    parse_config([f"--config={CONFIG}", "--config.optim.lrr=0.5"])


@pytest.mark.parametrize(
  "name",
  ["mnist_single", "mnist_multiple", "gta5_bdd", "celeba_gender", "image_folder", "photo_grades"],
)
def test_every_config_file_loads_with_its_variants(name):
  path = os.path.join(REPO, "configs", f"{name}.py")
  variants = ["", "tiny", "no_mask", "no_adain", "no_perceptual", "unit", "cyclegan", "munit"]
  if name.startswith("mnist") or name == "photo_grades":
    variants += ["cpu", "faithful", "faithful,no_mask", "cpu,no_adain", "cpu,munit"]
  if name == "mnist_single":
    variants += ["sn", "sn,no_mask", "no_adain,sn", "sn,no_perceptual"]
  for variant in variants:
    c = parse_config([f"--config={path}:{variant}" if variant else f"--config={path}"])
    assert c.dataset == name
    config_lib.validate(c)
  with pytest.raises(Exception, match="unknown config variant"):
    parse_config([f"--config={path}:tinny"])


def test_cpu_variant_only_for_the_mnist_configs():
  assert parse_config([f"--config={CONFIG}:cpu"]).stage2.num_iterations > 0
  multiple = os.path.join(REPO, "configs", "mnist_multiple.py")
  c = parse_config([f"--config={multiple}:cpu"])
  assert (tuple(c.data.image_size), c.model.n_downsample, c.model.use_feature_mask) == (
    (56, 56),
    1,
    True,
  )
  assert not parse_config([f"--config={multiple}:no_mask,cpu"]).model.use_feature_mask
  # The ablations keep :cpu's sign-normalised encoder, except w/o AdaIN: the
  # encoder hides the polarity that only AdaIN's signed scale restores, so the
  # two go together. The UNIT and CycleGAN baselines get their own papers'
  # plain encoder, whatever order the variants have.
  assert parse_config([f"--config={CONFIG}:cpu,no_mask"]).model.content_sign_norm
  assert parse_config([f"--config={CONFIG}:cpu,no_perceptual"]).model.content_sign_norm
  for spec in ("cpu,no_adain", "no_adain,cpu", "cpu,unit", "cpu,cyclegan", "unit,cpu"):
    assert not parse_config([f"--config={CONFIG}:{spec}"]).model.content_sign_norm, spec
  for setting in ("cpu", "faithful"):
    with pytest.raises(Exception, match="only for mnist_single, mnist_multiple and photo_grades"):
      parse_config([f"--config={os.path.join(REPO, 'configs', 'gta5_bdd.py')}:{setting}"])
  for spec in ("cpu,faithful", "sn,cpu", "faithful,tiny,sn"):
    with pytest.raises(Exception, match="are whole settings: choose one"):
      parse_config([f"--config={CONFIG}:{spec}"])


def test_sn_is_faithful_plus_the_encoder_at_the_cpu_learning_rate_and_length():
  """`sn`, MNIST-Single's CPU default, departs from `faithful` in the encoder,
  the authors' AdaIN formula, and what `faithful` may change; its learning
  rate and length are `cpu`'s. Only MNIST-Single has it (measured there only)."""
  flat = lambda spec: config_lib._flatten(parse_config([f"--config={CONFIG}:{spec}"]))  # noqa: E731
  sn, faithful, cpu = flat("sn"), flat("faithful"), flat("cpu")
  differ = sorted(k for k in sn if sn[k] != faithful[k])
  assert differ == [
    "model.adain_mode",
    "model.content_sign_norm",
    "optim.lr",
    "stage1.num_iterations",
    "stage2.num_iterations",
    "train.checkpoint_every",
    "train.eval_every",
    "train.image_every",
    "variant",
  ], differ
  assert (sn["model.content_sign_norm"], sn["model.adain_mode"]) == (True, "official")
  for k in ("optim.lr", "stage1.lr", "stage1.num_iterations", "stage2.num_iterations", "train."):
    assert all(sn[key] == cpu[key] for key in sn if key.startswith(k)), k
  # Its ablations remove one thing each; without AdaIN the encoder goes too.
  no_mask = flat("sn,no_mask")
  assert no_mask["model.content_sign_norm"] and not no_mask["model.use_feature_mask"]
  assert flat("sn,no_perceptual")["loss.style"] == 0.0
  no_adain = flat("no_adain,sn")
  assert not no_adain["model.use_adain"] and not no_adain["model.content_sign_norm"]
  for other in ("mnist_multiple", "photo_grades"):
    with pytest.raises(Exception, match="'sn' variant exists only for mnist_single, not"):
      parse_config([f"--config={os.path.join(REPO, 'configs', f'{other}.py')}:sn"])


def dry_run_configs(script: str, *args: str, **env: str) -> dict[str, dict]:
  """The training commands a benchmarks/ comparison script prints with
  DRY_RUN=1 (given `args` and `env`), each parsed: {workdir's last folder:
  flat config}."""
  out = subprocess.run(
    ["bash", f"benchmarks/{script}", *args],
    cwd=REPO,
    env={**os.environ, "DRY_RUN": "1", "ROOT": "R", "SEEDS": "19 20", **env},
    capture_output=True,
    text=True,
    check=True,
  )
  runs = {}
  for line in out.stdout.splitlines():
    argv = shlex.split(line)
    assert argv[:3] == ["python", "-m", "egsc_jax.main"], line
    args = [a.replace("configs/", CONFIGS + "/", 1) for a in argv[3:]]
    workdir = next(a for a in args if a.startswith("--workdir="))
    c = parse_config([a for a in args if a != workdir])
    runs[workdir.rpartition("/")[2]] = config_lib._flatten(c)
  return runs


@pytest.mark.parametrize("budget", ["cpu", "paper"])
def test_compare_script_rows_are_the_settings_they_name(budget):
  """benchmarks/compare_mnist_single.sh (DRY_RUN=1 prints its commands): every
  row's command parses, and each names the setting of its row."""
  runs = dry_run_configs("compare_mnist_single.sh", BUDGET=budget)
  rows = "faithful sn egsc sn_no_mask sn_no_adain sn_no_perceptual unit cyclegan munit".split()
  assert sorted(runs) == sorted(f"{v}_s{s}" for v in rows for s in (19, 20)), sorted(runs)
  assert runs["sn_s20"]["seed"] == 20
  for v in rows:
    r = runs[f"{v}_s19"]
    want_sn = v in ("sn", "sn_no_mask", "sn_no_perceptual")
    # At the paper budget `egsc` is the paper setting itself.
    assert r["model.content_sign_norm"] == (want_sn or (v == "egsc" and budget == "cpu")), v
    if v.startswith("sn"):
      assert r["model.adain_mode"] == "official", v
    assert r["model.use_feature_mask"] == (v not in ("sn_no_mask", "unit", "cyclegan", "munit")), v
  assert not runs["sn_no_adain_s19"]["model.use_adain"]
  assert runs["sn_no_perceptual_s19"]["loss.content"] == 0.0
  if budget == "cpu":
    # One budget for every row, and its one evaluation on test.
    assert {(r["stage1.num_iterations"], r["stage2.num_iterations"]) for r in runs.values()} == {
      (300, 120)
    }
    assert {r["train.eval_split"] for r in runs.values()} == {"test"}
    assert runs["sn_s19"]["variant"] == "sn" and runs["egsc_s19"]["variant"] == "cpu"
  else:
    assert {r["stage2.num_iterations"] for r in runs.values()} == {-1}
    assert runs["faithful_s19"]["variant"] == ""


def test_photo_grades_script_rows_are_the_settings_they_name():
  """benchmarks/compare_photo_grades.sh: its five rows are configs/photo_grades.py's
  benchmark variants at one budget, and flags after `--` reach every run."""
  runs = dry_run_configs("compare_photo_grades.sh", "--", "--config.data.data_dir=D")
  rows = "faithful cpu no_mask unit cyclegan".split()
  assert sorted(runs) == sorted(f"{v}_s{s}" for v in rows for s in (19, 20)), sorted(runs)
  assert {r["dataset"] for r in runs.values()} == {"photo_grades"}
  assert {r["data.data_dir"] for r in runs.values()} == {"D"}
  assert runs["cyclegan_s20"]["seed"] == 20
  assert {(r["stage1.num_iterations"], r["stage2.num_iterations"]) for r in runs.values()} == {
    (300, 150)
  }
  for v in rows:
    r = runs[f"{v}_s19"]
    assert r["variant"] == (v if v in ("faithful", "cpu") else f"faithful,{v}"), v
    assert r["model.content_sign_norm"] == (v == "cpu"), v
    assert r["model.use_feature_mask"] == (v in ("faithful", "cpu")), v


# What `faithful` may change of the paper setting: capacity, optimisation and
# budget (the fidelity issue's rule), and the length of the run's intervals.
FAITHFUL_MAY_CHANGE = (
  "model.ngf",
  "model.n_enc_res",
  "model.n_dec_res",
  "model.ndf",
  "optim.lr",
  "stage1.num_iterations",
  "stage1.lr",
  "stage2.num_iterations",
  "train.",
  "variant",
)


@pytest.mark.parametrize(
  "name, also",
  [
    ("mnist_single", ()),
    # Half-size canvases with one down-sampling stage fewer (configs/mnist_multiple.py).
    ("mnist_multiple", ("data.image_size", "model.n_downsample")),
  ],
)
def test_faithful_changes_only_capacity_optimisation_and_budget(name, also):
  """`faithful` is the paper's method: every network, loss and AdaIN key equals
  the paper setting's, and the sign-normalised encoder is off."""
  path = os.path.join(REPO, "configs", f"{name}.py")
  paper = config_lib._flatten(parse_config([f"--config={path}"]))
  faithful = config_lib._flatten(parse_config([f"--config={path}:faithful"]))
  differ = sorted(k for k in paper if paper[k] != faithful[k])
  assert differ and all(k.startswith(FAITHFUL_MAY_CHANGE + also) for k in differ), differ
  assert not faithful["model.content_sign_norm"] and faithful["model.output_scale"] == 1.0
  assert faithful["model.adain_mode"] == paper["model.adain_mode"] == "standard"
  # The tailored setting departs where the docs say it does.
  cpu = config_lib._flatten(parse_config([f"--config={path}:cpu"]))
  assert cpu["model.content_sign_norm"] and cpu["model.adain_mode"] == "official_std"


@pytest.mark.parametrize("name", ["gta5_bdd", "celeba_gender", "image_folder"])
def test_sign_normalised_encoder_stays_off_where_polarity_is_content(name):
  """A dark car on a bright road, dark eyes in a bright face: on photographs the
  contrast polarity is content, which the sign-normalised encoder would discard
  (layers.sign_normalized_instance_norm). Every variant, by name and by path."""
  path = os.path.join(REPO, "configs", f"{name}.py")
  for variant in (
    "",
    "tiny",
    "no_mask",
    "no_adain",
    "no_perceptual",
    "unit",
    "cyclegan",
    "munit",
    "tiny,no_mask",
    "unit,tiny",
  ):
    for spec in (path, name):
      c = parse_config(
        [f"--config={config_files.resolve(spec)}" + (f":{variant}" if variant else "")]
      )
      assert not c.model.content_sign_norm, (spec, variant)
      assert c.train.eval_split == "test", variant  # no validation split there
      # The paper's photographic configs' AdaIN (the paper's text).
      assert c.model.adain_mode == "standard", (spec, variant)


def test_image_folder_config_is_the_paper_photographic_setting():
  """configs/image_folder.py: by name, gta5_bdd's losses and optimiser at
  256x256 and batch 8, T from the data."""
  mine = config_lib._flatten(parse_config(["--config=" + config_files.resolve("image_folder")]))
  paper = config_lib._flatten(
    parse_config(["--config=" + os.path.join(REPO, "configs", "gta5_bdd.py")])
  )
  differ = sorted(k for k in paper if paper[k] != mine[k])
  assert differ == ["batch_size", "data.image_size", "data.shuffle_buffer", "dataset"], differ
  assert mine["data.image_size"] == (256, 256) and mine["batch_size"] == 8
  assert (mine["stage1.num_iterations"], mine["stage2.num_iterations"]) == (-1, -1)
  with pytest.raises(Exception, match="only for mnist_single, mnist_multiple and photo_grades"):
    parse_config(["--config=" + config_files.resolve("image_folder:cpu")])


def test_small_variant_picks_the_small_canvases_only_for_mnist_multiple():
  from egsc_jax.data import build

  multiple = os.path.join(REPO, "configs", "mnist_multiple.py")
  paper = parse_config([f"--config={multiple}:cpu"])
  small = parse_config([f"--config={multiple}:cpu,small"])
  assert build.dataset_name(paper) == "mnist_multiple/paper"
  assert build.dataset_name(small) == "mnist_multiple/small"
  assert build.dataset_name(parse_config([f"--config={CONFIG}:cpu"])) == "mnist_single"
  flat_paper, flat_small = config_lib._flatten(paper), config_lib._flatten(small)
  assert {k: flat_small[k] for k in flat_small if flat_small[k] != flat_paper[k]} == {
    "data.layout": "small",
    "variant": "cpu,small",
  }  # :cpu is at 56x56 with one down-sampling already
  assert tuple(parse_config([f"--config={multiple}:small"]).data.image_size) == (56, 56)
  with pytest.raises(Exception, match="'small' variant is MNIST-Multiple's"):
    parse_config([f"--config={CONFIG}:small"])
  with pytest.raises(config_lib.ConfigError, match="config.data.layout = 'tiny'"):
    config_lib.with_overrides(small, ["data.layout=tiny"])


def test_with_overrides_parses_literals_and_strings_and_validates():
  c = parse_config([f"--config={CONFIG}:cpu"])
  out = config_lib.with_overrides(
    c, ["model.ngf=16", "data.image_size=(64,64)", "dataset=image_folder", "optim.lr=1e-3"]
  )
  assert (out.model.ngf, tuple(out.data.image_size), out.dataset, out.optim.lr) == (
    16,
    (64, 64),
    "image_folder",
    1e-3,
  )
  assert c.model.ngf == 32  # a copy
  with pytest.raises(config_lib.ConfigError, match="config.model.ngf = -1"):
    config_lib.with_overrides(c, ["model.ngf=-1"])


def test_mnist_multiple_cpu_is_mnist_single_cpu_with_the_stated_changes():
  """Both :cpu settings come from cpu_setting in configs/_mnist_common.py; MNIST-Multiple
  changes only what configs/mnist_multiple.py says it does."""
  single = config_lib._flatten(parse_config([f"--config={CONFIG}:cpu"]))
  multiple = config_lib._flatten(
    parse_config([f"--config={os.path.join(REPO, 'configs', 'mnist_multiple.py')}:cpu"])
  )
  differ = sorted(k for k in single if single[k] != multiple[k])
  # loss.content is set too, but back to MNIST-Single's 1e1 (its paper value is 1e2).
  assert differ == [
    "data.image_size",
    "dataset",
    "model.n_downsample",
    "optim.lr",
    "train.checkpoint_every",
    "train.eval_every",
  ], differ
