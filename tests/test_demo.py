"""The web demo (`python -m egsc_jax.demo`) in a real headless browser.

Starts the demo on 127.0.0.1 over the tiny run, opens it in Debian's chromium
through Playwright (the system browser: no browser download), uploads a source
and two exemplars from notebooks/samples, presses Translate and checks that the
page shows the translation grid the API computes, pixel for pixel.

With EGSC_UPDATE_SCREENSHOTS=1 the page's screenshot is written to
docs/images/demo.png (the README's picture); otherwise to a temporary folder.
EGSC_SCREENSHOT_WORKDIR=DIR drives the page on that trained run instead of the
tiny one, so the README's picture shows real translations:

  EGSC_UPDATE_SCREENSHOTS=1 EGSC_SCREENSHOT_WORKDIR=workdirs/mnist_single_sn \
    python -m pytest tests/test_demo.py tests/test_notebook.py -k "browser or headless"
"""

import inspect
import io
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from conftest import fresh_venv, uv_install
from PIL import Image

from egsc_jax import Translator, demo, export, grids
from egsc_jax.cli import demo as cli_demo
from egsc_jax.data import images

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(REPO, "notebooks", "samples")
SCREENSHOT = os.path.join(REPO, "docs", "images", "demo.png")


def _stop(proc: subprocess.Popen) -> None:
  """Stops a served demo: SIGTERM, then SIGKILL after 30 s."""
  proc.terminate()
  try:
    proc.wait(timeout=30)
  except subprocess.TimeoutExpired:
    proc.kill()


def chromium() -> str:
  """The system chromium; CI installs it (apt-get install chromium)."""
  for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
    path = name and shutil.which(name)
    if path:
      return path
  pytest.fail(
    "the demo test needs Debian's chromium: apt-get install -y chromium "
    "(or CHROMIUM=/path/to/chrome)"
  )


# Headless, and quiet: no background, sync or update traffic, which a machine
# without network refuses (slowly), and no proxy for the local page.
CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-proxy-server",
]


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, log_path: str, timeout: float = 180.0) -> None:
  """Polls `url` until it answers 200; the demo's log tail on any failure.

  The demo writes to a file, not a pipe: a pipe nobody reads fills up and
  blocks the server. Requests go direct (no proxy from the environment).
  """
  opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if proc.poll() is not None:
      raise AssertionError(f"the demo exited with {proc.returncode}:\n" + log_tail(log_path))
    try:
      with opener.open(url, timeout=2) as r:
        if r.status == 200:
          return
    except OSError:
      time.sleep(0.5)
  raise AssertionError(
    f"the demo did not answer at {url} within {timeout} s; its log ends:\n{log_tail(log_path)}"
  )


def log_tail(path: str, n: int = 3000) -> str:
  with open(path, errors="replace") as f:
    return f.read()[-n:]


def test_bypass_proxy_keeps_what_is_there(monkeypatch):
  monkeypatch.setenv("NO_PROXY", "internal.example,localhost")
  monkeypatch.delenv("no_proxy", raising=False)
  cli_demo.bypass_proxy_for("10.0.0.5")
  assert os.environ["NO_PROXY"] == "internal.example,localhost,10.0.0.5,127.0.0.1"
  assert os.environ["no_proxy"] == "10.0.0.5,127.0.0.1,localhost"


def test_share_and_host_reach_gradios_launch():
  """--share and --host become launch()'s share and server_name, and every
  argument the command passes is one this Gradio's Blocks.launch takes."""
  import gradio  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top

  fv = flags.FlagValues()
  cli_demo.define_flags(fv)
  fv(["egsc-demo", "--workdir=model.egsc", "--share", "--host=0.0.0.0", "--port=8123"])
  options = cli_demo.launch_options(fv)
  assert options == dict(
    server_name="0.0.0.0", server_port=8123, show_error=True, share=True, footer_links=[]
  )
  fv(["egsc-demo", "--workdir=model.egsc", "--noshare"])
  assert cli_demo.launch_options(fv)["share"] is False
  assert set(options) <= set(inspect.signature(gradio.Blocks.launch).parameters)


def test_enlarge_and_panels(tiny_run):
  img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
  big = demo.enlarge(img, size=10)
  assert big.shape == (6, 9, 3)  # k = 10 // 3 = 3
  np.testing.assert_array_equal(big[::3, ::3], img)
  t = Translator.from_workdir(tiny_run[0], batch_size=8)
  a = images.read_image(os.path.join(SAMPLES, "a", "a1.png"))
  b1, b2 = (images.read_image(os.path.join(SAMPLES, "b", f"b{i}.png")) for i in (1, 2))
  panel = demo.interpolation_panel(t, a, b1, b2, 0.0, "a2b")
  assert panel.shape == (28 + 4, 4 * 30 + 2, 3)
  # Cell 2 at alpha 0 is the plain translation with exemplar 1.
  np.testing.assert_array_equal(panel[2:30, 62:90], t.translate([a], [b1])[0][0])
  masks = demo.mask_panel(t, [a], "a")
  assert masks.shape == (32, 62, 3)
  np.testing.assert_array_equal(masks[2:30, 32:60], grids.heatmap(t.mask([a], "a")[0]))


@pytest.mark.slow
def test_demo_in_a_headless_browser(tiny_run, tmp_path):
  from playwright.sync_api import expect, sync_playwright  # pylint: disable=g-import-not-at-top

  workdir = os.environ.get("EGSC_SCREENSHOT_WORKDIR") or tiny_run[0]
  port = free_port()
  url = f"http://127.0.0.1:{port}/"
  env = dict(
    os.environ,
    GRADIO_ANALYTICS_ENABLED="False",
    NO_PROXY="127.0.0.1,localhost",
    no_proxy="127.0.0.1,localhost",
  )
  log_path = str(tmp_path / "demo.log")
  with open(log_path, "w") as log:
    proc = subprocess.Popen(
      [sys.executable, "-m", "egsc_jax.demo", f"--workdir={workdir}", f"--port={port}"],
      cwd=REPO,
      env=env,
      stdout=log,
      stderr=subprocess.STDOUT,
    )
  source = os.path.join(SAMPLES, "a", "a1.png")
  exemplars = [os.path.join(SAMPLES, "b", f"b{i}.png") for i in (1, 2)]
  try:
    wait_for(url, proc, log_path)
    with sync_playwright() as p:
      browser = p.chromium.launch(executable_path=chromium(), headless=True, args=CHROMIUM_ARGS)
      page = browser.new_page(viewport={"width": 1100, "height": 900})
      page.goto(url)
      page.locator("#sources input[type=file]").set_input_files(source)
      page.locator("#exemplars input[type=file]").set_input_files(exemplars)
      # Wait for both uploads to be listed before pressing the button.
      expect(page.locator("#sources")).to_contain_text("a1", timeout=60_000)
      expect(page.locator("#exemplars")).to_contain_text("b2", timeout=60_000)
      page.locator("#translate").click()
      grid_img = page.locator("#grid img")
      grid_img.wait_for(timeout=120_000)
      page.locator("#interpolation img").wait_for(timeout=60_000)
      page.locator("#masks img").wait_for(timeout=60_000)
      src = grid_img.get_attribute("src")
      shown = page.request.get(src if src.startswith("http") else url + src.lstrip("/"))
      assert shown.ok
      grid = np.asarray(Image.open(io.BytesIO(shown.body())).convert("RGB"))
      status = page.locator("#status").inner_text()
      shot = SCREENSHOT if os.environ.get("EGSC_UPDATE_SCREENSHOTS") else str(tmp_path / "demo.png")
      page.screenshot(path=shot, full_page=True)
      browser.close()
  finally:
    _stop(proc)
  assert "1 sources x 2 exemplars, a2b" in status
  t = Translator.from_workdir(workdir, batch_size=8)
  expected = demo.enlarge(
    t.grid([images.read_image(source)], [images.read_image(e) for e in exemplars], "a2b")
  )
  np.testing.assert_array_equal(grid, expected)
  if os.environ.get("EGSC_UPDATE_SCREENSHOTS"):
    shrink_png(shot)


def shrink_png(path: str, width: int = 800) -> None:
  """Keeps the committed screenshot small: at most `width` wide, 64 colours."""
  with Image.open(path) as im:
    im = im.convert("RGB")
    if im.width > width:
      im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    im.quantize(64).save(path, optimize=True)


# What the demo's package needs to install, copied so that building it writes
# nothing into the checkout (other tests may build from it at the same time).
PACKAGE_FILES = ("pyproject.toml", "README.md", "LICENSE", "egsc_jax", "configs")


@pytest.mark.slow
def test_demo_starts_on_the_lowest_gradio_we_allow(tiny_run, tmp_path):
  """requirements-demo.txt's lowest Gradio (6.0.0) in a fresh venv with the
  package (uv; like the Colab install tests, this reads the package index:
  6.0.0 and the older pillow and pandas it needs are not in the locks). The
  egsc-demo command serves an export of the tiny run there: GET / is 200.

  The lock's own Gradio (the newest we allow) is the one the browser test
  above drives. Gradio 6.0.0 needs pillow < 12, so our direct dependencies are
  held at the lock's versions except pillow."""
  (lowest,) = [
    l.split(">=")[1].split(",")[0]
    for l in (pathlib.Path(REPO) / "requirements-demo.txt").read_text().splitlines()
    if l.startswith("gradio>=")
  ]
  assert lowest == "6.0"
  src = tmp_path / "src"
  src.mkdir()
  for name in PACKAGE_FILES:
    if os.path.isdir(os.path.join(REPO, name)):
      shutil.copytree(
        os.path.join(REPO, name), src / name, ignore=shutil.ignore_patterns("__pycache__")
      )
    else:
      shutil.copy(os.path.join(REPO, name), src)
  for path in pathlib.Path(REPO).glob("requirements*.txt"):
    shutil.copy(path, src)
  lock = pathlib.Path(REPO) / "requirements" / f"lock-py3{sys.version_info.minor}.txt"
  direct = {
    l.split("<")[0].split(">")[0].split("=")[0].strip().lower()
    for l in (src / "requirements.txt").read_text().splitlines()
    if l.strip() and not l.startswith("#")
  } - {"pillow"}
  constraints = tmp_path / "constraints.txt"
  constraints.write_text(
    "".join(
      l.split()[0] + "\n"
      for l in lock.read_text().splitlines()
      if "==" in l and l.split("==")[0].lower() in direct
    )
  )
  python = fresh_venv(tmp_path / "venv")
  uv_install(python, "-c", str(constraints), str(src), "gradio==6.0.0", timeout=600)
  model = tmp_path / "model.egsc"
  export.export(tiny_run[0], str(model))
  env = dict(os.environ, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
  env.pop("PYTHONPATH", None)
  version = subprocess.run(
    [python, "-c", "import gradio, egsc_jax; print(gradio.__version__, egsc_jax.__file__)"],
    cwd=tmp_path,
    env=env,
    capture_output=True,
    text=True,
    check=True,
  ).stdout.split()
  assert version[0] == "6.0.0" and str(tmp_path / "venv") in version[1]
  port = free_port()
  log_path = str(tmp_path / "demo.log")
  with open(log_path, "w") as log:
    proc = subprocess.Popen(
      [python, "-m", "egsc_jax.demo", f"--workdir={model}", f"--port={port}"],
      cwd=tmp_path,
      env=env,
      stdout=log,
      stderr=subprocess.STDOUT,
    )
  try:
    wait_for(f"http://127.0.0.1:{port}/", proc, log_path)
  finally:
    _stop(proc)
  assert f"Serving {model} on http://127.0.0.1:{port}" in log_tail(log_path)
