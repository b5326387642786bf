"""What a `pip install` user gets: commands on the PATH, the configs by name, one
repository address, and the wheel really installing and training (slow)."""

import ast
import glob
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
from absl import flags
from conftest import fresh_venv

import egsc_jax
from egsc_jax import config_files, config_lib, errors

REPO = pathlib.Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
CONFIG_NAMES = [
  "celeba_gender",
  "gta5_bdd",
  "image_folder",
  "mnist_multiple",
  "mnist_single",
  "photo_grades",
]


def _parse(argv):
  """Parses like main.py (config_flags reads overrides from sys.argv itself)."""
  fv = flags.FlagValues()
  config_files.define_config_flag("config", flag_values=fv)
  saved = sys.argv
  sys.argv = ["prog", *argv]
  try:
    errors.parse_flags(sys.argv, fv)
  finally:
    sys.argv = saved
  return fv.config


def test_configs_by_name_equal_configs_by_path():
  assert config_files.names() == CONFIG_NAMES
  for name in CONFIG_NAMES:
    by_name = _parse([f"--config={name}:tiny", "--config.optim.lr=0.25"])
    by_path = _parse([f"--config={REPO / 'configs' / name}.py:tiny", "--config.optim.lr=0.25"])
    assert by_name.to_dict() == by_path.to_dict() and by_name.optim.lr == 0.25
  assert (
    config_lib.load_file("mnist_single:cpu").to_dict()
    == config_lib.load_file(f"{REPO}/configs/mnist_single.py:cpu").to_dict()
  )
  # A relative path from the checkout, as the README wrote it before names.
  os.chdir(REPO)
  assert (
    _parse(["--config=configs/mnist_single.py:cpu"]).to_dict()
    == config_lib.load_file("mnist_single:cpu").to_dict()
  )


def test_unknown_config_name_is_one_line_naming_the_known_ones():
  with pytest.raises(errors.UserError) as e:
    _parse(["--config=mnist_singel:cpu"])
  message = errors.describe(e.value)
  assert "'mnist_singel:cpu' is neither a config file nor the name of one" in message
  assert (
    "names: celeba_gender, gta5_bdd, image_folder, mnist_multiple, mnist_single, photo_grades"
  ) in message
  assert "\n" not in message
  with pytest.raises(errors.UserError, match="cannot load the config file"):
    _parse(["--config=configs/not_there.py"])


def test_wheel_lists_every_package_and_each_command_has_a_run():
  setuptools = PYPROJECT["tool"]["setuptools"]
  on_disk = {
    ".".join(p.relative_to(REPO).parent.parts) for p in (REPO / "egsc_jax").rglob("__init__.py")
  }
  assert set(setuptools["packages"]) == on_disk | {"egsc_jax.configs"}
  assert setuptools["package-dir"] == {"egsc_jax.configs": "configs"}
  scripts = PYPROJECT["project"]["scripts"]
  assert set(scripts) == {
    "egsc-train",
    "egsc-evaluate",
    "egsc-translate",
    "egsc-export",
    "egsc-demo",
    "egsc-build",
  }
  for target in scripts.values():
    module, function = target.split(":")
    tree = ast.parse((REPO / (module.replace(".", "/") + ".py")).read_text())
    assert function in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, target


def test_command_docstrings_render_as_written():
  """--help prints each command's module docstring: a line ending in one
  backslash would be joined to the next (write two for a shell continuation)."""
  for target in PYPROJECT["project"]["scripts"].values():
    path = REPO / (target.split(":")[0].replace(".", "/") + ".py")
    text = path.read_text()
    raw = ast.get_source_segment(text, ast.parse(text).body[0].value)
    for line in raw.splitlines():
      trailing = len(line) - len(line.rstrip("\\"))
      assert trailing % 2 == 0, f"{path.name}: {line!r}"


def test_extras_and_python_versions_match_the_locks():
  extras = PYPROJECT["tool"]["setuptools"]["dynamic"]["optional-dependencies"]
  assert set(extras) == {"test", "demo", "gcs", "cuda", "tpu", "tf"}
  for extra in extras.values():
    for path in extra["file"]:
      assert (REPO / path).is_file(), path
  # Every Python the package claims has its pair of locks, and no other.
  claimed = sorted(
    c.rsplit(" ", 1)[1]
    for c in PYPROJECT["project"]["classifiers"]
    if c.startswith("Programming Language :: Python :: 3.")
  )
  locks = sorted(
    p.name[len("lock-py3") : -len(".txt")] for p in (REPO / "requirements").glob("lock-py3*.txt")
  )
  assert [v.split(".")[1] for v in claimed] == locks
  low, high = claimed[0], claimed[-1]
  assert PYPROJECT["project"]["requires-python"] == f">={low},<3.{int(high.split('.')[1]) + 1}"


def python_3_10(tmp_path) -> str:
  """A Python 3.10 (no lock of ours): a real one where this machine has one,
  else a stand-in that answers setup.sh's version question as 3.10 would."""
  for candidate in [
    shutil.which("python3.10"),
    *glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python")),
  ]:
    if candidate:
      probe = subprocess.run(
        [candidate, "-c", "import sys; print(*sys.version_info[:2], sep='.')"],
        capture_output=True,
        text=True,
      )
      if probe.returncode == 0 and probe.stdout.strip() == "3.10":
        return candidate
  stand_in = tmp_path / "python3.10"
  stand_in.write_text("#!/bin/sh\necho 3.10\n")
  stand_in.chmod(0o755)
  return str(stand_in)


def test_setup_on_a_python_without_a_lock_is_one_line(tmp_path):
  """tools/setup.sh on Python 3.10 exits 1 with one line naming the supported
  versions (from requirements/lock-py3*.txt), before making a venv."""
  python = python_3_10(tmp_path)
  venv = tmp_path / "venv"
  proc = subprocess.run(
    ["bash", str(REPO / "tools" / "setup.sh")],
    env={**os.environ, "PYTHON": python, "VENV": str(venv)},
    capture_output=True,
    text=True,
    timeout=60,
  )
  assert proc.returncode == 1 and proc.stdout == ""
  supported = ", ".join(
    f"3.{p.name[len('lock-py3') : -len('.txt')]}"
    for p in sorted((REPO / "requirements").glob("lock-py3*.txt"))
  )
  assert supported.startswith("3.11, 3.12")
  assert proc.stderr == (
    f"setup: egsc-jax supports Python {supported}, not 3.10 ({python}); run with "
    "PYTHON=python3.11 (for example), or get one with: uv python install 3.11\n"
  )
  assert not venv.exists()


def test_tensorflow_is_the_tf_extra_and_its_absence_is_one_line(tmp_path):
  """TensorFlow is not a core dependency (the `tf` extra; Colab keeps its own):
  a command that needs it, where it cannot be imported, exits 1 with one line
  saying how to install it, before any work."""
  core = (REPO / "requirements.txt").read_text()
  assert not re.search(r"^tensorflow(-cpu)?\s*([<>=~!;\[]|$)", core, re.M)
  assert re.search(r"^tensorflow-cpu>=", (REPO / "requirements-tf.txt").read_text(), re.M)
  extras = PYPROJECT["tool"]["setuptools"]["dynamic"]["optional-dependencies"]
  assert "requirements-tf.txt" in extras["tf"]["file"] + extras["test"]["file"]
  proc = subprocess.run(
    [
      sys.executable,
      "-c",
      "import sys; sys.modules['tensorflow'] = None\nfrom egsc_jax import main; main.run()",
      "--config=mnist_single:tiny",
      f"--workdir={tmp_path / 'run'}",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == errors.EXIT_USER_ERROR, proc.stderr[-2000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert (
    last.startswith("error: TensorFlow is not installed") and "pip install 'egsc-jax[tf]'" in last
  )
  assert "Traceback" not in proc.stderr and not (tmp_path / "run" / "stage1").exists()


def test_repository_address_is_written_once():
  """egsc_jax.REPOSITORY is the address; every other place spells the same."""
  url = egsc_jax.REPOSITORY
  owner_name = url.removeprefix("https://github.com/")
  assert set(PYPROJECT["project"]["urls"].values()) == {url, f"{url}#readme", f"{url}/issues"}
  badge = (
    f"https://colab.research.google.com/github/{owner_name}/blob/main/notebooks/egsc_jax_demo.ipynb"
  )
  readme = (REPO / "README.md").read_text()
  assert badge in readme
  # The install without a checkout: this version's tag and its lock, which the
  # wheel does not hold.
  tag = f"v{egsc_jax.__version__}"
  lock = "requirements/lock-py311.txt"
  assert (REPO / lock).is_file()
  assert (
    f"pip install -c https://raw.githubusercontent.com/{owner_name}/{tag}/{lock} \\\n"
    f'    "egsc-jax[tf] @ git+{url}@{tag}"\n'
  ) in readme
  notebook = json.loads((REPO / "notebooks" / "egsc_jax_demo.ipynb").read_text())
  text = "".join("".join(c["source"]) for c in notebook["cells"])
  assert badge in text and f'REPO_URL = "{url}"' in text


@pytest.mark.slow
def test_wheel_installs_in_a_fresh_venv_and_trains_from_an_empty_folder(mnist_data_dir, tmp_path):
  """The built wheel with the locked set (uv, offline from its cache) in a fresh
  venv; from an empty folder, `egsc-train --config=mnist_single:...` trains the
  tiny two-stage run, `egsc-evaluate --help` prints its docstring as written,
  and `egsc-export` writes a model that translates as the workdir does in a
  process that cannot import TensorFlow."""
  uv = [sys.executable, "-m", "uv"]
  wheels = tmp_path / "wheels"
  subprocess.run(
    [*uv, "build", "-q", "--offline", "--wheel", "--out-dir", str(wheels), str(REPO)],
    check=True,
    timeout=300,
  )
  (wheel,) = wheels.glob("egsc_jax-*.whl")
  venv = tmp_path / "venv"
  fresh_venv(venv)
  lock = REPO / "requirements" / f"lock-py3{sys.version_info.minor}.txt"
  subprocess.run(
    [
      *uv,
      "pip",
      "install",
      "-q",
      "--offline",
      "--python",
      str(venv / "bin" / "python"),
      "-r",
      str(lock),
      str(wheel),
    ],
    check=True,
    timeout=600,
  )
  empty = tmp_path / "empty"
  empty.mkdir()
  env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
  env.pop("PYTHONPATH", None)

  def command(*args):
    return subprocess.run(
      list(args), cwd=empty, env=env, capture_output=True, text=True, timeout=900
    )

  # The installed package, not the checkout, and its configs by name.
  proc = command(
    "python",
    "-c",
    "import egsc_jax, egsc_jax.config_files as c; "
    "print(egsc_jax.__file__, egsc_jax.__version__, c.names())",
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert str(venv) in proc.stdout and egsc_jax.__version__ in proc.stdout
  assert str(CONFIG_NAMES) in proc.stdout
  proc = command(
    "egsc-train",
    "--config=mnist_single:tiny,no_perceptual",
    "--workdir=run",
    f"--config.data.data_dir={mnist_data_dir}",
    "--config.stage1.num_iterations=2",
    "--config.stage2.num_iterations=3",
    "--config.train.eval_every=3",
    "--config.train.image_every=3",
    "--config.train.eval_examples=8",
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  run = empty / "run"
  assert json.loads((run / "config.json").read_text())["dataset"] == "mnist_single"
  assert json.loads((run / "stage2" / "final_metrics.json").read_text())["iteration"] == 3
  proc = command("egsc-evaluate", "--help")
  # (absl exits 1 after --help.)
  assert "  egsc-evaluate --workdir=DIR [--split=test] [--num_examples=1000] \\\n" in proc.stdout, (
    proc.stdout
  )
  proc = command("egsc-export", "--workdir=run", "--output=model.egsc")
  assert proc.returncode == 0, proc.stderr[-3000:]
  # Where TensorFlow cannot be imported, the export loads and translates
  # bitwise as the workdir does.
  proc = command(
    "python",
    "-c",
    (
      "import sys\n"
      "sys.modules['tensorflow'] = None   # as if not installed: importing it fails\n"
      "import numpy as np\n"
      "from egsc_jax import Translator\n"
      "rng = np.random.default_rng(0)\n"
      "sources = [rng.integers(0, 256, (30, 40), np.uint8)]\n"
      "exemplars = [rng.integers(0, 256, (28, 28, 3), np.uint8)]\n"
      "exported = Translator.from_export('model.egsc', batch_size=8)\n"
      "workdir = Translator.from_workdir('run', batch_size=8)\n"
      "for d in ('a2b', 'b2a'):\n"
      "  assert np.array_equal(exported.translate(sources, exemplars, d)[0],\n"
      "                        workdir.translate(sources, exemplars, d)[0]), d\n"
      "assert not any(m.split('.')[0] == 'tensorflow' and sys.modules[m] is not None\n"
      "               for m in list(sys.modules))\n"
      "print('same translations without TensorFlow')\n"
    ),
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "same translations without TensorFlow" in proc.stdout
  proc = command("egsc-train", "--config=mnist_singel", "--workdir=run")
  assert proc.returncode == errors.EXIT_USER_ERROR
  assert (
    proc.stderr.strip()
    .splitlines()[-1]
    .startswith("error: flag --config=mnist_singel: 'mnist_singel' is neither a config file")
  )


def test_readme_commands_are_what_ci_runs():
  """The README's test command is .ci/run's, character for character; its
  training command sets up with the same script and uses a config by name."""
  ci = (REPO / ".ci" / "run").read_text()
  (test_command,) = re.findall(r"^README_TEST_COMMAND='(.*)'$", ci, re.M)
  lines = (REPO / "README.md").read_text().splitlines()
  assert test_command in lines
  assert (
    "bash tools/setup.sh && .venv/bin/egsc-train --config=mnist_single:sn "
    "--workdir=workdirs/mnist_single_sn"
  ) in lines


def test_set_repository_rewrites_every_place(tmp_path):
  """tools/set_repository.py on a copy of the files that spell the address:
  afterwards each spells the fork's, and nothing the old one."""
  for name in (
    "tools/set_repository.py",
    "egsc_jax/__init__.py",
    "pyproject.toml",
    "README.md",
    "notebooks/egsc_jax_demo.ipynb",
  ):
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / name, tmp_path / name)
  fork = "https://github.com/someone/egsc-fork"
  subprocess.run(
    [sys.executable, str(tmp_path / "tools" / "set_repository.py"), fork],
    check=True,
    capture_output=True,
  )
  old_name = egsc_jax.REPOSITORY.removeprefix("https://github.com/")
  texts = {
    n: (tmp_path / n).read_text()
    for n in (
      "egsc_jax/__init__.py",
      "pyproject.toml",
      "README.md",
      "notebooks/egsc_jax_demo.ipynb",
    )
  }
  assert f'REPOSITORY = "{fork}"' in texts["egsc_jax/__init__.py"]
  assert f'Source = "{fork}"' in texts["pyproject.toml"]
  badge = "colab.research.google.com/github/someone/egsc-fork/blob/main/notebooks/"
  assert badge in texts["README.md"] and badge in texts["notebooks/egsc_jax_demo.ipynb"]
  assert "raw.githubusercontent.com/someone/egsc-fork/v" in texts["README.md"]
  assert f"git+{fork}@v" in texts["README.md"]
  assert f'REPO_URL = \\"{fork}\\"' in texts["notebooks/egsc_jax_demo.ipynb"]
  for name, text in texts.items():
    assert old_name not in text, name
