"""Faults and bad input (issue 13): damaged checkpoints, bad config values, one
error line per user error, exit statuses, a tiny real-photo dataset, dangling
symlinks. Each test makes the fault itself and checks the message, the status
and that nothing good was lost."""
import json
import logging
import os
import shutil
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags
from PIL import Image

from egsc_jax import checkpointing, config_lib, errors, evaluate, inference, train, translate
from egsc_jax.data import build as build_lib
from egsc_jax.data import images
from egsc_jax.eval import training as eval_training
from conftest import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")


# ----------------------------------------------------------------------------
# Config validation
# ----------------------------------------------------------------------------

def _config(name="mnist_single", variant="tiny"):
  import importlib  # pylint: disable=g-import-not-at-top
  return importlib.import_module(f"configs.{name}").get_config(variant)


def test_every_shipped_config_and_variant_validates():
  for name in ("mnist_single", "mnist_multiple", "gta5_bdd", "celeba_gender", "image_folder"):
    for variant in ["", "tiny", "no_mask", "no_adain", "no_perceptual", "unit",
                    "cyclegan", "munit"] + (["cpu"] if name == "mnist_single" else []):
      config_lib.validate(_config(name, variant))


def test_load_file_reads_a_config_file_with_its_variant(tmp_path):
  """The benchmarks' `--config=FILE:VARIANT` (config_lib.load_file)."""
  path = os.path.join(REPO, "configs", "mnist_single.py")
  cpu = config_lib.load_file(f"{path}:cpu")
  assert cpu.to_dict() == _config("mnist_single", "cpu").to_dict()
  assert cpu.loss.style == 1e5 and tuple(cpu.loss.style_layer_weights) == (1, 0, 0, 0, 0)
  assert config_lib.load_file(path).loss.style == 1e3     # no variant: the paper setting
  with pytest.raises(FileNotFoundError, match="not_there.txt"):
    config_lib.load_file(str(tmp_path / "not_there.txt"))


@pytest.mark.parametrize("key,value,allowed", [
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
])
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
  c = _config("gta5_bdd")                  # n_downsample = 2
  c.data.image_size = (254, 512)
  with pytest.raises(config_lib.ConfigError, match=r"config.data.image_size = \(254, 512\): "
                     r"each side must be a multiple of 2\*\*config.model.n_downsample = 4"):
    config_lib.validate(c)
  c.data.image_size = (256, 512)
  config_lib.validate(c)


def test_validate_balanced_pairing_only_where_exemplars_have_two_colours():
  c = _config("gta5_bdd")
  c.data.exemplar_pairing = "balanced"
  with pytest.raises(config_lib.ConfigError, match=r"config.data.exemplar_pairing = "
                     r"'balanced' needs B images of two flat colours.*got 'gta5_bdd'"):
    config_lib.validate(c)
  c = _config("mnist_single")
  c.data.exemplar_pairing = "balanced"
  config_lib.validate(c)


def test_validate_accepts_minus_one_and_ignores_keys_without_a_rule():
  c = _config()
  c.stage2.num_iterations = -1
  c.unlock()
  c.model.future_knob = -3.0               # a key without a rule: no error
  c.brand_new = ml_collections.ConfigDict({"count": -5})
  config_lib.validate(c)
  c.model.output_scale = -3.0              # a key with a rule is checked
  with pytest.raises(config_lib.ConfigError, match=r"config.model.output_scale = -3.0"):
    config_lib.validate(c)
  c.model.output_scale = 1.1
  del c.train["checkpoint_fallback"]       # an old config.json without the key
  config_lib.validate(c)


def test_resolve_num_iterations_rejects_other_negatives(mnist_data_dir):
  c = tiny_config(mnist_data_dir)
  c.stage1.num_iterations = -5
  with pytest.raises(config_lib.ConfigError, match=r"stage1.num_iterations = -5"):
    train.resolve_num_iterations(c)
  c.stage1.num_iterations = -1
  from egsc_jax.data import build  # pylint: disable=g-import-not-at-top
  pairs = build.get_builder(c.dataset, data_dir=c.data.data_dir,
                            require_built=True).info.splits["train"].num_examples
  assert train.resolve_num_iterations(c).stage1.num_iterations == pairs > 0


# ----------------------------------------------------------------------------
# One error path
# ----------------------------------------------------------------------------

def _raise(e):
  raise e


def test_user_error_is_one_line_and_bugs_keep_their_traceback(capsys, monkeypatch):
  monkeypatch.delenv(errors.TRACEBACK_ENV, raising=False)
  bad = config_lib.ConfigError("config.batch_size = 0: expected an integer >= 1")
  assert errors.call(_raise, bad) == errors.EXIT_USER_ERROR
  err = capsys.readouterr().err
  assert err == "error: config.batch_size = 0: expected an integer >= 1\n"

  assert errors.call(_raise, FileNotFoundError("/no/such/file.npy")) == 1
  assert capsys.readouterr().err == "error: /no/such/file.npy\n"

  diverged = train.NonFiniteLossError("stage 2, iteration 1: loss term 'gan' is nan")
  assert errors.call(_raise, diverged) == errors.EXIT_DIVERGED == 3
  assert capsys.readouterr().err.count("\n") == 1

  assert errors.call(_raise, KeyError("oops")) == errors.EXIT_INTERNAL == 70
  err = capsys.readouterr().err
  assert "Traceback (most recent call last)" in err and "internal error" in err

  monkeypatch.setenv(errors.TRACEBACK_ENV, "1")
  assert errors.call(_raise, bad) == 1
  err = capsys.readouterr().err
  assert "Traceback (most recent call last)" in err
  assert err.endswith("error: config.batch_size = 0: expected an integer >= 1\n")

  assert errors.call(lambda: None) == errors.EXIT_OK
  assert errors.call(lambda: errors.EXIT_PREEMPTED) == 75
  assert errors.describe(bad) == str(bad) and errors.describe(KeyError("x")) is None


def _parse_main_flags(argv, monkeypatch):
  """Parses like main.py (config_flags reads sys.argv itself)."""
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=fv, lock_config=True)
  monkeypatch.setattr(sys, "argv", ["prog", *argv])
  return errors.parse_flags(sys.argv, fv)


@pytest.mark.parametrize("argv,message", [
    ([f"--config={CONFIGS}/mnist_single.py:tiny", "--config.optim.lrr=0.5"],
     "--config.optim.lrr=0.5: no such config key 'lrr' (Did you mean \"lr\" instead of "
     "\"lrr\"?)"),
    ([f"--config={CONFIGS}/nope.py"],
     "--config: cannot load the config file: [Errno 2] No such file or directory: "
     f"'{CONFIGS}/nope.py'"),
    ([f"--config={CONFIGS}/mnist_single.py:tinny"],
     f"flag --config={CONFIGS}/mnist_single.py:tinny: Error whilst parsing config file: "
     "ValueError: unknown config variant 'tinny'"),
    ([f"--config={CONFIGS}/mnist_single.py", "--config.stage2.num_iterations=abc"],
     "flag --config.stage2.num_iterations=abc: invalid literal for int()"),
])
def test_flag_errors_become_one_line(argv, message, monkeypatch):
  with pytest.raises(errors.UserError) as e:
    _parse_main_flags(argv, monkeypatch)
  assert errors.describe(e.value).startswith(message)
  assert "\n" not in errors.describe(e.value)


def _main(*args, env=None, timeout=120):
  full = {k: v for k, v in os.environ.items() if k != errors.TRACEBACK_ENV}
  full.update(XLA_FLAGS="--xla_force_host_platform_device_count=8", **(env or {}))
  return subprocess.run([sys.executable, "-m", "egsc_jax.main", *args], cwd=REPO,
                        env=full, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_train_command_user_errors_print_one_line_and_exit_1(tmp_path):
  tiny = f"--config={CONFIGS}/mnist_single.py:tiny"
  cases = [
      ([tiny, "--config.optim.lrr=0.5"], "no such config key 'lrr'"),
      ([f"--config={CONFIGS}/nope.py"], "No such file or directory"),
      ([tiny, "--config.stage2.num_iterations=-5"],
       "config.stage2.num_iterations = -5: expected an integer >= 1, or -1"),
      ([tiny, "--config.batch_size=12"],
       "config.batch_size=12 must be divisible by the number of devices (8)"),
      ([tiny, f"--config.vgg.weights={tmp_path}/vgg19.npy", "--config.vgg.arch=vgg19"],
       f"VGG weights '{tmp_path}/vgg19.npy': no such file"),
  ]
  for args, message in cases:
    proc = _main(*args, f"--workdir={tmp_path / 'w'}")
    assert proc.returncode == errors.EXIT_USER_ERROR, (args, proc.stderr[-2000:])
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, (args, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, (args, proc.stderr[-2000:])
  assert not os.path.exists(tmp_path / "w" / "stage1")     # nothing started
  proc = _main(tiny, "--config.stage2.num_iterations=-5", f"--workdir={tmp_path / 'w'}",
               env={errors.TRACEBACK_ENV: "1"})
  assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr


# ----------------------------------------------------------------------------
# Damaged checkpoints
# ----------------------------------------------------------------------------

def damage(step_dir, kind):
  """Damages one checkpoint's files the way a disk fault or a cut copy does."""
  state = os.path.join(step_dir, "state")
  # The array chunks (state/d/ holds the OCDBT tree, read with the metadata).
  arrays = [os.path.join(r, f) for r, _, fs in os.walk(state) for f in fs
            if os.path.basename(r) == "d" and "ocdbt.process_" in r]
  if kind == "meta_json":
    with open(os.path.join(step_dir, "meta", "metadata"), "w") as f:
      f.write('{"stage": 2, "itera')
  elif kind == "state_metadata":
    path = os.path.join(state, "_METADATA")
    with open(path) as f:
      text = f.read()
    with open(path, "w") as f:
      f.write(text[:len(text) // 2])
  elif kind == "arrays_garbled":
    for path in arrays:
      with open(path, "rb") as f:
        data = bytearray(f.read())
      data[::7] = bytes(b ^ 0xFF for b in data[::7])
      with open(path, "wb") as f:
        f.write(bytes(data))
  elif kind == "arrays_missing":
    for path in arrays:
      os.remove(path)
  else:
    raise ValueError(kind)


REASONS = {"meta_json": "its meta JSON: JSONDecodeError",
           "state_metadata": "its state metadata: JSONDecodeError",
           "arrays_garbled": "its arrays: ValueError",
           "arrays_missing": "its arrays: ValueError"}


@pytest.fixture
def damaged_copy(tiny_run, tmp_path):
  """copy(kind, steps=(3,)): a copy of the finished tiny run, stage-2 `steps` damaged."""
  def make(kind, steps=(3,)):
    copy = str(tmp_path / f"run_{kind}")
    shutil.copytree(tiny_run[0], copy)
    for step in steps:
      damage(os.path.join(copy, "stage2", "checkpoints", str(step)), kind)
    return copy
  return make


def _intact_step2_params(workdir):
  """The EMA parameters of the original run's stage-2 checkpoint 2, as a tree."""
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, "stage2", "checkpoints"),
                                    keep=None, read_only=True)
  state, _ = ckpt.restore(2)
  ckpt.close()
  return state["ema_params"]


def _warnings(caplog):
  return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("kind", sorted(REASONS))
def test_inference_falls_back_past_a_damaged_newest_checkpoint(kind, damaged_copy, tiny_run,
                                                               caplog):
  copy = damaged_copy(kind)
  with caplog.at_level(logging.WARNING):
    trained = inference.load_trained(copy)
  assert trained.step == 2 and trained.used_ema
  warned = "\n".join(_warnings(caplog))
  assert f"checkpoint 3 in {copy}/stage2/checkpoints cannot be read: {REASONS[kind]}" in warned
  assert "using checkpoint 2" in warned and "unreadable newer 3" in warned
  want = _intact_step2_params(tiny_run[0])
  got = jax.tree.map(np.asarray, trained.params)
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
    np.testing.assert_array_equal(a, b)
  # Read-only: nothing was moved or changed in the damaged workdir.
  assert sorted(os.listdir(os.path.join(copy, "stage2", "checkpoints"))) == ["1", "2", "3"]


def test_refused_fallback_and_all_damaged_are_one_clear_error(damaged_copy, capsys, tmp_path):
  copy = damaged_copy("arrays_garbled")
  with pytest.raises(inference.WorkdirError) as e:
    inference.load_trained(copy, checkpoint_fallback=False)
  message = str(e.value)
  assert "checkpoint 3" in message and "cannot be read: its arrays" in message
  assert "falling back to an older checkpoint is turned off" in message
  assert "does not match" not in message

  # The commands: --nocheckpoint_fallback stops with status 1 and one line.
  img = tmp_path / "x.png"
  Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(img)
  fv = flags.FlagValues()
  translate.define_flags(fv)
  fv(["translate", f"--workdir={copy}", f"--source={img}", f"--exemplar={img}",
      f"--output={tmp_path / 'out'}", "--nocheckpoint_fallback"])
  capsys.readouterr()
  assert translate.main(["translate"], fv) == errors.EXIT_USER_ERROR
  err = capsys.readouterr().err
  assert err.startswith("error: ") and err.count("\n") == 1 and "turned off" in err
  fv = flags.FlagValues()
  evaluate.define_flags(fv)
  fv(["evaluate", f"--workdir={copy}", "--nocheckpoint_fallback"])
  assert evaluate.main(["evaluate"], fv) == errors.EXIT_USER_ERROR
  assert "cannot be read" in capsys.readouterr().err

  everything = damaged_copy("meta_json", steps=(1, 2, 3))
  with pytest.raises(inference.WorkdirError,
                     match=r"none of the 3 checkpoints in .* can be read: 3: its meta JSON"):
    inference.load_trained(everything)


def test_a_real_mismatch_is_still_named_as_one(tiny_run, tmp_path):
  copy = str(tmp_path / "other_net")
  shutil.copytree(tiny_run[0], copy)
  with open(os.path.join(copy, "config.json")) as f:
    raw = json.load(f)
  raw["model"]["ngf"] = 16
  with open(os.path.join(copy, "config.json"), "w") as f:
    json.dump(raw, f)
  with pytest.raises(inference.WorkdirError,
                     match="do not match the networks of config.json: .*shapes"):
    inference.load_trained(copy)


def test_translate_uses_the_older_checkpoint(damaged_copy, tmp_path, caplog):
  copy = damaged_copy("meta_json")
  img = tmp_path / "x.png"
  Image.fromarray(np.full((28, 28, 3), 90, np.uint8)).save(img)
  with caplog.at_level(logging.WARNING):
    result = translate.translate_paths(workdir=copy, source=str(img), exemplar=str(img),
                                       output=str(tmp_path / "out"), batch_size=8)
  assert result.step == 2 and len(result.written) == 1
  assert any("using checkpoint 2" in w for w in _warnings(caplog))


def test_training_refuses_a_damaged_checkpoint_when_told(damaged_copy, tiny_run):
  config = tiny_run[1].copy_and_resolve_references()
  config.train.checkpoint_fallback = False
  copy = damaged_copy("arrays_missing")
  with pytest.raises(checkpointing.UnreadableCheckpointError,
                     match="checkpoint 3 .*cannot be read: its arrays.*turned off") as e:
    train.train_and_evaluate(config, copy)
  assert errors.exit_status(e.value) == errors.EXIT_USER_ERROR
  ckpt_dir = os.path.join(copy, "stage2", "checkpoints")
  assert sorted(os.listdir(ckpt_dir)) == ["1", "2", "3"]          # nothing moved


def _restored(workdir, step):
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, "stage2", "checkpoints"),
                                    keep=None, read_only=True)
  try:
    return ckpt.latest_step(), ckpt.restore(step)
  finally:
    ckpt.close()


@pytest.mark.slow
def test_training_resumes_past_a_damaged_checkpoint(damaged_copy, tiny_run, caplog):
  workdir, config, _ = tiny_run
  copy = damaged_copy("arrays_missing")
  with caplog.at_level(logging.WARNING):
    again = train.train_and_evaluate(config, copy)
  assert again["status"] == "done"
  warned = "\n".join(_warnings(caplog))
  assert "checkpoint 3" in warned and "using checkpoint 2" in warned
  # The damaged one is kept aside, the redone iteration 3 saved in its place ...
  assert os.listdir(os.path.join(copy, "stage2", checkpointing.DAMAGED_DIR)) == ["3"]
  latest, (redone, meta) = _restored(copy, 3)
  _, (original, original_meta) = _restored(workdir, 3)
  assert latest == 3 and meta["iteration"] == original_meta["iteration"] == 3
  # ... bitwise equal to the undamaged run's.
  for a, b in zip(jax.tree.leaves(original), jax.tree.leaves(redone)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ----------------------------------------------------------------------------
# A small real-photo image_folder, with a dangling symlink among its files
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
  """image_folder from scikit-image's sample photographs: 3 test images per
  domain (fewer than the 4 grid examples of the tiny variant) and a dangling
  symlink in trainA. Returns (data_dir, manual_dir)."""
  import skimage.data  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("photos")
  manual = root / "manual"
  domains = {"trainA": ("astronaut", "coffee", "chelsea", "rocket"),
             "trainB": ("camera", "coins", "moon", "page"),
             "testA": ("hubble_deep_field", "immunohistochemistry", "colorwheel"),
             "testB": ("grass", "gravel", "brick")}
  for folder, names in domains.items():
    (manual / folder).mkdir(parents=True)
    for name in names:
      image = getattr(skimage.data, name)()
      # Small files keep the build fast; the sizes stay unequal.
      Image.fromarray(image).resize((64, 48)).save(manual / folder / f"{name}.png")
  os.symlink(str(root / "gone.jpg"), manual / "trainA" / "zz_link.jpg")
  data_dir = str(root / "tfds")
  build_lib.build("image_folder", data_dir=data_dir, manual_dir=str(manual))
  return data_dir, str(manual)


def test_dangling_symlink_is_named_among_the_skipped(photo_folder, tmp_path, caplog):
  data_dir, manual = photo_folder
  builder = build_lib.get_builder("image_folder", data_dir=data_dir)
  meta = builder.info.metadata
  assert meta["skipped_files"] == ["trainA/zz_link.jpg"] and meta["num_skipped_files"] == 1
  assert meta["num_images"]["trainA"] == 4
  link = os.path.join(manual, "trainA", "zz_link.jpg")
  assert link in images.list_image_files(os.path.join(manual, "trainA"))
  with caplog.at_level(logging.WARNING):
    readable, skipped = images.check_images([link])
  assert skipped == [link] and not readable
  assert any(link in w and "dangling symbolic link" in w for w in _warnings(caplog))
  with pytest.raises(images.ImageReadError, match="dangling symbolic link"):
    images.read_image(link)


def test_fewer_test_pairs_than_grid_examples_are_taken_and_logged(photo_folder, caplog):
  data_dir, _ = photo_folder
  config = tiny_config(data_dir)
  config.dataset = "image_folder"
  config.data.image_size = (32, 32)
  assert config.train.num_image_examples == 4
  config_lib.validate(config)
  with caplog.at_level(logging.WARNING):
    fixed = eval_training.fixed_examples(config)
  assert fixed["a"].shape == (3, 32, 32, 3) and fixed["b"].shape == (3, 32, 32, 3)
  assert any("test split has 3 pairs, fewer than config.train.num_image_examples = 4"
             in w for w in _warnings(caplog))


@pytest.mark.slow
def test_tiny_photo_dataset_trains_to_the_end(photo_folder, tmp_path):
  data_dir, _ = photo_folder
  config = tiny_config(data_dir, **{"stage1.num_iterations": 1, "stage2.num_iterations": 1,
                                    "train.image_every": 1})
  config.dataset = "image_folder"
  config.data.image_size = (32, 32)
  result = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert result["status"] == "done"
  grid = np.asarray(Image.open(tmp_path / "run" / "stage2" / "images" /
                               "translate_a2b_0000001.png"))
  assert grid.shape[0] == 3 * (32 + 2) + 2        # one row per test pair
