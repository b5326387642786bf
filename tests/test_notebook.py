"""notebooks/egsc_jax_demo.ipynb: stored without outputs, and runs top to bottom.

The run is headless (nbclient, the current Python's ipykernel) with TINY = True,
inserted after the parameters cell as papermill does: the :tiny config (without
L_P, which test_losses.py and test_steps.py cover) trains for a few iterations
on the session's mnist_single build, then the bundled sample digits are
translated. Any cell error fails the test.

With EGSC_UPDATE_SCREENSHOTS=1 the figures of the grid, mask and interpolation
cells are stacked into docs/images/notebook.png (the README's picture);
EGSC_SCREENSHOT_WORKDIR=DIR makes the notebook use that trained run (its
WORKDIR parameter) instead of training a tiny one (tests/test_demo.py has the
command).
"""

import base64
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import fresh_venv, uv_install
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "notebooks", "egsc_jax_demo.ipynb")
SCREENSHOT = os.path.join(REPO, "docs", "images", "notebook.png")


def test_notebook_is_stored_without_outputs():
  with open(NOTEBOOK) as f:
    nb = json.load(f)
  code = [c for c in nb["cells"] if c["cell_type"] == "code"]
  assert code
  for i, cell in enumerate(code):
    assert cell.get("outputs") == [], f"code cell {i} has stored outputs"
    assert cell.get("execution_count") is None, f"code cell {i} has an execution count"
  assert "widgets" not in nb["metadata"]
  tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
  assert len(tagged) == 1 and "TINY = False" in "".join(tagged[0]["source"])
  # Its badge and REPO_URL: tests/test_packaging.py (the repository's address).


def test_colab_installs_this_releases_tag():
  """REPO_REF, what Colab checks out, is the tag of this version, not a branch
  that moves on after the notebook was written."""
  import egsc_jax  # pylint: disable=g-import-not-at-top

  with open(NOTEBOOK) as f:
    nb = json.load(f)
  (cell,) = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
  parameters = {}
  exec("".join(cell["source"]), parameters)  # pylint: disable=exec-used
  assert parameters["REPO_REF"] == f"v{egsc_jax.__version__}"


def _figures(cell) -> list[np.ndarray]:
  return [
    np.asarray(Image.open(io.BytesIO(base64.b64decode(o["data"]["image/png"]))).convert("RGB"))
    for o in cell.get("outputs", [])
    if "image/png" in o.get("data", {})
  ]


def _stack(figures: list[np.ndarray]) -> np.ndarray:
  width = max(f.shape[1] for f in figures)
  padded = [
    np.pad(f, ((0, 8), (0, width - f.shape[1]), (0, 0)), constant_values=255) for f in figures
  ]
  return np.concatenate(padded)


@pytest.mark.slow
def test_notebook_runs_headless_with_the_tiny_parameter(mnist_data_dir, tmp_path):
  import nbclient  # pylint: disable=g-import-not-at-top
  import nbformat  # pylint: disable=g-import-not-at-top

  nb = nbformat.read(NOTEBOOK, as_version=4)
  index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
  trained = os.environ.get("EGSC_SCREENSHOT_WORKDIR", "")
  # :tiny without L_P, on the tests' 8 devices (the kernel inherits XLA_FLAGS):
  # the networks and layout of the other tests' tiny runs, whose compiled
  # programs the training subprocess reads from the session's cache.
  params = (
    f"TINY = True\nTINY_CONFIG = 'configs/mnist_single.py:tiny,no_perceptual'\n"
    f"DATA_DIR = {mnist_data_dir!r}\nWORKDIR = {trained!r}\n"
    f"NEW_WORKDIR = {str(tmp_path / 'run')!r}\nTENSORBOARD = False\n"
  )
  nb.cells.insert(index + 1, nbformat.v4.new_code_cell(params, metadata={"tags": ["injected"]}))
  env_backup = dict(os.environ)
  # No MPLBACKEND: under agg plt.show() displays nothing; the kernel's inline
  # backend turns each figure into an image/png output.
  os.environ.pop("MPLBACKEND", None)
  try:
    client = nbclient.NotebookClient(
      nb,
      timeout=900,
      kernel_name="python3",
      resources={"metadata": {"path": os.path.join(REPO, "notebooks")}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
  finally:
    os.environ.clear()
    os.environ.update(env_backup)
  text = "\n".join(
    o.get("text", "")
    for c in nb.cells
    if c.cell_type == "code"
    for o in c.outputs
    if o.get("output_type") == "stream"
  )
  assert "4 sources, 4 exemplars, direction a2b" in text
  if not trained:
    assert "stage-2 iteration 2" in text
  by_heading = {}
  heading = None
  for c in nb.cells:
    if c.cell_type == "markdown" and c.source.startswith("## "):
      heading = c.source.splitlines()[0][3:]
    elif c.cell_type == "code":
      by_heading.setdefault(heading, []).extend(_figures(c))
  shown = [
    by_heading[h] for h in ("7. Sources x exemplars", "8. Feature masks", "9. Style interpolation")
  ]
  assert all(len(f) == 1 for f in shown), [len(f) for f in shown]
  if os.environ.get("EGSC_UPDATE_SCREENSHOTS"):
    Image.fromarray(_stack([f[0] for f in shown])).quantize(64).save(SCREENSHOT, optimize=True)


def _install_commands(runtime, python, **kwargs):
  """The Colab install cell's `install_commands(runtime, ...)`, defined by
  executing the cell up to its `if IN_COLAB:` (which runs them in Colab)."""
  with open(NOTEBOOK) as f:
    cells = json.load(f)["cells"]
  (source,) = [
    "".join(c["source"])
    for c in cells
    if c["cell_type"] == "code" and "def install_commands" in "".join(c["source"])
  ]
  namespace = {}
  exec(source[: source.index("\nif IN_COLAB:")], namespace)  # pylint: disable=exec-used
  return namespace["install_commands"](runtime, python, **kwargs)


def _lock_pins():
  lock = os.path.join(REPO, "requirements", f"lock-py3{sys.version_info.minor}.txt")
  with open(lock) as f:
    return dict(line.split("#")[0].strip().split("==") for line in f if "==" in line)


@pytest.mark.slow
def test_colab_install_cell_installs_the_locked_set(tmp_path):
  """The install cell's commands in a fresh venv: the CPU flavour installed (uv
  in place of pip, offline from its cache, the same arguments), `pip check`
  clean, jax and jaxlib at the lock's version; the CUDA flavour as pip's
  resolver sees it (`pip install --dry-run --report`: this reads the package
  index): jax, jaxlib and the CUDA plugin at the lock's version, every other
  pin kept."""
  pins = _lock_pins()
  venv = tmp_path / "venv"
  python = fresh_venv(venv, seed=True)
  (cpu,) = _install_commands("cpu", python)
  assert cpu[:4] == [python, "-m", "pip", "install"]
  uv_install(python, "--offline", *cpu[4:], cwd=REPO, timeout=600)
  check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
  assert check.returncode == 0, check.stdout
  versions = subprocess.run(
    [
      python,
      "-c",
      "import jax, jaxlib, egsc_jax; print(jax.__version__, jaxlib.__version__, egsc_jax.__file__)",
    ],
    cwd=tmp_path,
    capture_output=True,
    text=True,
    check=True,
  ).stdout.split()
  assert versions[:2] == [pins["jax"], pins["jax"]] and str(venv) in versions[2]

  (cuda,) = _install_commands("gpu", python)
  assert cuda[-1] == ".[tf,cuda]"
  report = tmp_path / "report.json"
  subprocess.run(
    [*cuda, "--dry-run", "--ignore-installed", "--report", str(report)],
    cwd=REPO,
    check=True,
    timeout=600,
  )
  with open(report) as f:
    resolved = {
      item["metadata"]["name"].lower(): item["metadata"]["version"]
      for item in json.load(f)["install"]
    }
  for name in ("jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda12-pjrt"):
    assert resolved[name] == pins["jax"], (name, resolved.get(name))
  moved = {n: (v, resolved[n]) for n, v in pins.items() if n in resolved and resolved[n] != v}
  assert not moved, moved


def test_colab_install_never_puts_tensorflow_cpu_beside_colabs_tensorflow():
  """Without a TensorFlow, the `tf` extra (tensorflow-cpu) comes with the
  runtime's; with Colab's `tensorflow` installed, `tensorflow` at our bound is
  asked for instead, and nothing asks for `tensorflow-cpu`."""
  with open(os.path.join(REPO, "requirements-tf.txt")) as f:
    (tf_cpu,) = [l.strip() for l in f if l.startswith("tensorflow-cpu")]
  cwd = os.getcwd()
  os.chdir(REPO)  # the cell runs in the repository's folder
  try:
    (fresh,) = _install_commands("gpu", "py")
    (colab,) = _install_commands("gpu", "py", tensorflow="2.19.0")
    (colab_cpu,) = _install_commands("cpu", "py", tensorflow="2.21.0")
  finally:
    os.chdir(cwd)
  lock = f"requirements/lock-py3{sys.version_info.minor}.txt"
  pip = ["py", "-m", "pip", "install", "-q", "-c", lock]
  assert fresh == pip + [".[tf,cuda]"]
  assert colab == pip + [".[cuda]", "tensorflow" + tf_cpu[len("tensorflow-cpu") :]]
  assert colab_cpu == pip + [".", "tensorflow>=2.21,<2.22"]


@pytest.mark.slow
def test_colab_install_keeps_colabs_tensorflow(tmp_path):
  """A venv that has `tensorflow` at the lock's version, as Colab ships it: the
  install cell's CPU commands leave it in place (no tensorflow-cpu over it),
  `pip check` is clean and the input pipeline imports."""
  pins = _lock_pins()
  venv = tmp_path / "venv"
  python = fresh_venv(venv, seed=True)
  colab_tf = pins["tensorflow-cpu"]
  uv_install(python, f"tensorflow=={colab_tf}", timeout=900)
  (command,) = _install_commands("cpu", python, tensorflow=colab_tf)
  assert command[:4] == [python, "-m", "pip", "install"]
  uv_install(python, *command[4:], cwd=REPO, timeout=900)
  check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
  assert check.returncode == 0, check.stdout
  listed = subprocess.run(
    [python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
  ).stdout
  versions = dict(l.split("==") for l in listed.splitlines() if "==" in l)
  assert "tensorflow-cpu" not in versions and versions["tensorflow"] == colab_tf
  assert versions["jax"] == pins["jax"] and versions["egsc-jax"]
  subprocess.run(
    [python, "-c", "import tensorflow, egsc_jax.data.input_pipeline"],
    cwd=tmp_path,
    check=True,
    timeout=300,
  )
