"""Test-wide setup: fake 8 CPU devices, keep TensorFlow off accelerators, and
share XLA's compilations between tests.

XLA_FLAGS must be set before jax is first imported, which is why it lives here.

Compiling is most of a tiny training's time on CPU (a tiny two-stage run: 170 s
cold, 50 s with its programs in the cache), and many tests compile the same
programs: each builds its own jitted steps, and the training subprocesses of the
resume tests start from nothing. JAX's persistent compilation cache, in a fresh
folder per test session (or JAX_COMPILATION_CACHE_DIR if set) and inherited by
every subprocess through the environment, compiles each program once. A cache
hit runs the very executable a fresh compile would produce, so results do not
change; tracing still happens, so the retrace checks still see every trace.
"""

import os
import shutil
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _OWN_CACHE = tempfile.mkdtemp(prefix="egsc-jax-test-compilations-")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE
else:
  _OWN_CACHE = None
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import pytest  # noqa: E402


def pytest_sessionfinish(session, exitstatus):
  """Removes the session's own compilation cache (not a user's)."""
  del session, exitstatus
  if _OWN_CACHE and not os.environ.get("PYTEST_XDIST_WORKER"):
    shutil.rmtree(_OWN_CACHE, ignore_errors=True)


# The files whose tests take longest, longest first (measured: docs/benchmarks.md,
# "Test suite time"). They run first, so that pytest-xdist's workers (`--dist
# loadfile --no-loadscope-reorder`: whole files, in this order) share them out,
# instead of the one-test files among them running last and alone, as xdist's
# default order (most tests first) would have it.
SLOWEST_FILES = (
  "test_multiprocess.py",
  "test_train.py",
  "test_checkpointing.py",
  "test_steps.py",
  "test_evaluate.py",
  "test_notebook.py",
  "test_bf16.py",
  "test_cloud.py",
  "test_translate.py",
)


def pytest_collection_modifyitems(session, config, items):
  """Puts SLOWEST_FILES first, in that order; the rest keep their order."""
  del session, config
  rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
  items.sort(key=lambda item: rank.get(item.path.name, len(SLOWEST_FILES)))


def fresh_venv(path, seed: bool = False) -> str:
  """A new, empty venv at `path` made by uv (pip in it only with `seed`), on
  the interpreter running the tests; returns its python."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top

  args = [sys.executable, "-m", "uv", "venv", "-q", *(["--seed"] if seed else [])]
  subprocess.run([*args, "--python", sys.executable, str(path)], check=True, timeout=120)
  return os.path.join(str(path), "bin", "python")


def uv_install(python: str, *args: str, timeout: int, cwd=None) -> None:
  """`uv pip install -q --python PYTHON ARGS...` (uv from the test's own
  environment), for the venvs `fresh_venv` makes."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top

  cmd = [sys.executable, "-m", "uv", "pip", "install", "-q", "--python", python, *args]
  subprocess.run(cmd, cwd=cwd, check=True, timeout=timeout)


def logged_warnings(caplog) -> list[str]:
  """The messages of the WARNING records pytest's caplog holds."""
  import logging  # pylint: disable=g-import-not-at-top

  return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def benchmark_module(name: str):
  """benchmarks/NAME.py imported as the module NAME, with benchmarks/ on
  sys.path while it loads (mask_anatomy imports mask_study by name)."""
  import importlib  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top

  folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
  sys.path.insert(0, folder)
  try:
    return importlib.import_module(name)
  finally:
    sys.path.remove(folder)


def parse_config(argv):
  """--config and its overrides parsed as the train command does (config_flags
  reads the overrides from sys.argv itself) -> the config."""
  import sys  # pylint: disable=g-import-not-at-top

  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=fv, lock_config=True)
  saved = sys.argv
  sys.argv = ["prog", *argv]
  try:
    fv(sys.argv)
  finally:
    sys.argv = saved
  return fv.config


def tiny_config(data_dir, variant="tiny,no_perceptual", **overrides):
  """configs/mnist_single.py:<variant> (`tiny`: EMA on) shrunk to a few
  iterations of each stage.

  The iteration counts and the learning rate are traced arguments of the
  compiled iterations (steps.StepConfig): every tiny run of the same variant,
  devices and EMA setting runs the same programs, compiled once per session
  (the persistent cache above), whatever its length or learning rate.

  `overrides` use dotted keys: tiny_config(d, **{"optim.lr": 0.1}).
  """
  from configs import mnist_single  # pylint: disable=g-import-not-at-top

  c = mnist_single.get_config(variant)
  c.data.data_dir = data_dir
  c.stage1.num_iterations = 2
  c.stage2.num_iterations = 3
  c.train.checkpoint_every = 1
  c.train.image_every = 3
  c.train.eval_every = 3
  c.train.eval_examples = 8
  for key, value in overrides.items():
    node = c
    *path, leaf = key.split(".")
    for p in path:
      node = node[p]
    node[leaf] = value
  return c


@pytest.fixture(scope="session")
def mnist_data_dir(tmp_path_factory):
  """mnist_single built once per session from the offline MNIST digits."""
  from egsc_jax.data import build  # pylint: disable=g-import-not-at-top

  path = str(tmp_path_factory.mktemp("tfds"))
  build.build("mnist_single", data_dir=path)
  return path


@pytest.fixture(scope="session")
def tiny_run(mnist_data_dir, tmp_path_factory):
  """One uninterrupted tiny two-stage run on all 8 devices (tiny_config).

  Returns (workdir, config, result of train_and_evaluate). Shared by the
  training, translate and evaluate tests: training dominates their time.
  """
  from egsc_jax import train  # pylint: disable=g-import-not-at-top

  workdir = str(tmp_path_factory.mktemp("tiny_run"))
  config = tiny_config(mnist_data_dir)
  result = train.train_and_evaluate(config, workdir)
  assert result["status"] == "done"
  return workdir, config, result
