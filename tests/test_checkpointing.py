"""Damaged checkpoints: the newest unreadable one is passed over with a warning
(inference and training) or refused when told, and a real mismatch is named."""

import json
import logging
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import logged_warnings
from PIL import Image

from egsc_jax import checkpointing, cli, errors, train, trained_run, translate
from egsc_jax.cli import evaluate as cli_evaluate
from egsc_jax.cli import translate as cli_translate

# ----------------------------------------------------------------------------
# Damaged checkpoints
# ----------------------------------------------------------------------------


def damage(step_dir, kind):
  """Damages one checkpoint's files the way a disk fault or a cut copy does."""
  state = os.path.join(step_dir, "state")
  # The array chunks (state/d/ holds the OCDBT tree, read with the metadata).
  arrays = [
    os.path.join(r, f)
    for r, _, fs in os.walk(state)
    for f in fs
    if os.path.basename(r) == "d" and "ocdbt.process_" in r
  ]
  if kind == "meta_json":
    with open(os.path.join(step_dir, "meta", "metadata"), "w") as f:
      f.write('{"stage": 2, "itera')
  elif kind == "state_metadata":
    path = os.path.join(state, "_METADATA")
    with open(path) as f:
      text = f.read()
    with open(path, "w") as f:
      f.write(text[: len(text) // 2])
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


REASONS = {
  "meta_json": "its meta JSON: JSONDecodeError",
  "state_metadata": "its state metadata: JSONDecodeError",
  "arrays_garbled": "its arrays: ValueError",
  "arrays_missing": "its arrays: ValueError",
}


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
  ckpt = checkpointing.Checkpointer(
    os.path.join(workdir, "stage2", "checkpoints"), keep=None, read_only=True
  )
  state, _ = ckpt.restore(2)
  ckpt.close()
  return state["ema_params"]


@pytest.mark.parametrize("kind", sorted(REASONS))
def test_inference_falls_back_past_a_damaged_newest_checkpoint(
  kind, damaged_copy, tiny_run, caplog
):
  copy = damaged_copy(kind)
  with caplog.at_level(logging.WARNING):
    trained = trained_run.load_trained(copy)
  assert trained.step == 2 and trained.used_ema
  warned = "\n".join(logged_warnings(caplog))
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
  with pytest.raises(trained_run.WorkdirError) as e:
    trained_run.load_trained(copy, checkpoint_fallback=False)
  message = str(e.value)
  assert "checkpoint 3" in message and "cannot be read: its arrays" in message
  assert "falling back to an older checkpoint is turned off" in message
  assert "does not match" not in message

  # The commands: --nocheckpoint_fallback stops with status 1 and one line.
  img = tmp_path / "x.png"
  Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(img)
  capsys.readouterr()
  assert (
    cli.call(
      cli_translate,
      [
        f"--workdir={copy}",
        f"--source={img}",
        f"--exemplar={img}",
        f"--output={tmp_path / 'out'}",
        "--nocheckpoint_fallback",
      ],
    )
    == errors.EXIT_USER_ERROR
  )
  err = capsys.readouterr().err
  assert err.startswith("error: ") and err.count("\n") == 1 and "turned off" in err
  assert (
    cli.call(cli_evaluate, [f"--workdir={copy}", "--nocheckpoint_fallback"])
    == errors.EXIT_USER_ERROR
  )
  assert "cannot be read" in capsys.readouterr().err

  everything = damaged_copy("meta_json", steps=(1, 2, 3))
  with pytest.raises(
    trained_run.WorkdirError, match=r"none of the 3 checkpoints in .* can be read: 3: its meta JSON"
  ):
    trained_run.load_trained(everything)


def test_a_real_mismatch_is_still_named_as_one(tiny_run, tmp_path):
  copy = str(tmp_path / "other_net")
  shutil.copytree(tiny_run[0], copy)
  with open(os.path.join(copy, "config.json")) as f:
    raw = json.load(f)
  raw["model"]["ngf"] = 16
  with open(os.path.join(copy, "config.json"), "w") as f:
    json.dump(raw, f)
  with pytest.raises(
    trained_run.WorkdirError, match="do not match the networks of config.json: .*shapes"
  ):
    trained_run.load_trained(copy)


def test_translate_uses_the_older_checkpoint(damaged_copy, tmp_path, caplog):
  copy = damaged_copy("meta_json")
  img = tmp_path / "x.png"
  Image.fromarray(np.full((28, 28, 3), 90, np.uint8)).save(img)
  with caplog.at_level(logging.WARNING):
    result = translate.translate_paths(
      workdir=copy, source=str(img), exemplar=str(img), output=str(tmp_path / "out"), batch_size=8
    )
  assert result.step == 2 and len(result.written) == 1
  assert any("using checkpoint 2" in w for w in logged_warnings(caplog))


def test_training_refuses_a_damaged_checkpoint_when_told(damaged_copy, tiny_run):
  config = tiny_run[1].copy_and_resolve_references()
  config.train.checkpoint_fallback = False
  copy = damaged_copy("arrays_missing")
  with pytest.raises(
    checkpointing.UnreadableCheckpointError,
    match="checkpoint 3 .*cannot be read: its arrays.*turned off",
  ) as e:
    train.train_and_evaluate(config, copy)
  assert errors.exit_status(e.value) == errors.EXIT_USER_ERROR
  ckpt_dir = os.path.join(copy, "stage2", "checkpoints")
  assert sorted(os.listdir(ckpt_dir)) == ["1", "2", "3"]  # nothing moved


def _restored(workdir, step):
  ckpt = checkpointing.Checkpointer(
    os.path.join(workdir, "stage2", "checkpoints"), keep=None, read_only=True
  )
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
  warned = "\n".join(logged_warnings(caplog))
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
# Local runs without google-cloud-storage
# ----------------------------------------------------------------------------

WITHOUT_GCS = """
import sys
sys.modules["google.cloud.storage"] = None  # as if not installed: importing it fails
import jax, jax.numpy as jnp, numpy as np
from egsc_jax import checkpointing, main, train  # the training command's modules
ckpt = checkpointing.Checkpointer(sys.argv[1], keep=2)
state = {"w": jnp.arange(12.0).reshape(3, 4), "step": jnp.int32(7)}
ckpt.save(7, state, {"stage": 2, "iteration": 7})
ckpt.wait()
step, restored, meta = ckpt.restore_latest(jax.eval_shape(lambda: state))
ckpt.close()
assert step == 7 and meta == {"stage": 2, "iteration": 7}, (step, meta)
np.testing.assert_array_equal(restored["w"], np.arange(12.0).reshape(3, 4))
assert int(restored["step"]) == 7
assert sys.modules["google.cloud.storage"] is None
print("saved and restored without google-cloud-storage")
"""


def test_local_checkpoints_need_no_google_cloud_storage(tmp_path):
  """google-cloud-storage is the `gcs` extra: where it cannot be imported, the
  training command's modules import and an Orbax save and restore of a local
  workdir through our Checkpointer round-trips."""
  proc = subprocess.run(
    [sys.executable, "-c", WITHOUT_GCS, str(tmp_path / "checkpoints")],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "saved and restored without google-cloud-storage" in proc.stdout
  assert (tmp_path / "checkpoints" / "7").is_dir()
