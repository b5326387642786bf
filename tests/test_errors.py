"""errors: the one error path of every command: one line per user error, the
traceback for a bug, the exit statuses, flag errors."""

import os
import subprocess
import sys

import pytest
from absl import flags
from ml_collections import config_flags

from egsc_jax import config_lib, errors, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")


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


@pytest.mark.parametrize(
  "argv,message",
  [
    (
      [f"--config={CONFIGS}/mnist_single.py:tiny", "--config.optim.lrr=0.5"],
      "--config.optim.lrr=0.5: no such config key 'lrr' (Did you mean \"lr\" instead of \"lrr\"?)",
    ),
    (
      [f"--config={CONFIGS}/nope.py"],
      "--config: cannot load the config file: [Errno 2] No such file or directory: "
      f"'{CONFIGS}/nope.py'",
    ),
    (
      [f"--config={CONFIGS}/mnist_single.py:tinny"],
      f"flag --config={CONFIGS}/mnist_single.py:tinny: Error whilst parsing config file: "
      "ValueError: unknown config variant 'tinny'",
    ),
    (
      [f"--config={CONFIGS}/mnist_single.py", "--config.stage2.num_iterations=abc"],
      "flag --config.stage2.num_iterations=abc: invalid literal for int()",
    ),
  ],
)
def test_flag_errors_become_one_line(argv, message, monkeypatch):
  with pytest.raises(errors.UserError) as e:
    _parse_main_flags(argv, monkeypatch)
  assert errors.describe(e.value).startswith(message)
  assert "\n" not in errors.describe(e.value)


def _main(*args, env=None, timeout=120):
  full = {k: v for k, v in os.environ.items() if k != errors.TRACEBACK_ENV}
  full.update(XLA_FLAGS="--xla_force_host_platform_device_count=8", **(env or {}))
  return subprocess.run(
    [sys.executable, "-m", "egsc_jax.main", *args],
    cwd=REPO,
    env=full,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


@pytest.mark.slow
def test_train_command_user_errors_print_one_line_and_exit_1(tmp_path):
  tiny = f"--config={CONFIGS}/mnist_single.py:tiny"
  cases = [
    ([tiny, "--config.optim.lrr=0.5"], "no such config key 'lrr'"),
    ([f"--config={CONFIGS}/nope.py"], "No such file or directory"),
    (
      [tiny, "--config.stage2.num_iterations=-5"],
      "config.stage2.num_iterations = -5: expected an integer >= 1, or -1",
    ),
    (
      [tiny, "--config.batch_size=12"],
      "config.batch_size=12 must be divisible by the number of devices (8)",
    ),
    (
      [tiny, f"--config.vgg.weights={tmp_path}/vgg19.npy", "--config.vgg.arch=vgg19"],
      f"VGG weights '{tmp_path}/vgg19.npy': no such file",
    ),
  ]
  for args, message in cases:
    proc = _main(*args, f"--workdir={tmp_path / 'w'}")
    assert proc.returncode == errors.EXIT_USER_ERROR, (args, proc.stderr[-2000:])
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, (args, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, (args, proc.stderr[-2000:])
  assert not os.path.exists(tmp_path / "w" / "stage1")  # nothing started
  proc = _main(
    tiny,
    "--config.stage2.num_iterations=-5",
    f"--workdir={tmp_path / 'w'}",
    env={errors.TRACEBACK_ENV: "1"},
  )
  assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr
