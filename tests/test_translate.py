"""The translate command and the inference code under it (egsc_jax.api, trained_run).

One tiny two-stage run (real TFDS mnist_single, real Orbax checkpoints, 8 fake
CPU devices) is trained once for the module; the command then runs on a folder
of images in odd modes and sizes with a corrupt file among them.
"""

import logging
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from egsc_jax import api, cli, export, grids, trained_run, translate
from egsc_jax.cli import translate as cli_translate
from egsc_jax.data import images, input_pipeline

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CELL = 28  # mnist_single's trained resolution
PAD = 2  # grids.image_grid's default


@pytest.fixture(scope="module")
def workdir(tiny_run):
  return tiny_run[0]


@pytest.fixture(scope="module")
def trained(workdir):
  return trained_run.load_trained(workdir)


def write_inputs(root):
  """Sources in odd modes (and a corrupt file), two exemplars. Returns (src, ex) dirs."""
  rng = np.random.default_rng(0)
  src, ex = root / "src", root / "ex"
  src.mkdir()
  ex.mkdir()
  Image.fromarray(rng.integers(0, 256, (30, 40), np.uint8), "L").save(src / "grey.png")
  rgba = rng.integers(0, 256, (28, 28, 4), np.uint8)
  Image.fromarray(rgba, "RGBA").save(src / "rgba.png")
  deep = rng.integers(0, 65536, (20, 33), np.uint16)
  Image.fromarray(deep).save(src / "deep.png")  # mode I;16
  assert Image.open(src / "deep.png").mode.startswith("I")
  Image.fromarray(rng.integers(0, 256, (28, 28, 3), np.uint8)).convert(
    "P", palette=Image.Palette.ADAPTIVE, colors=16
  ).save(src / "pal.png")
  (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG")
  (src / "notes.txt").write_text("not an image, not listed")
  colour = np.zeros((56, 44, 3), np.uint8)
  colour[..., 0] = 255
  colour[10:40, 15:30] = (0, 0, 255)
  Image.fromarray(colour).save(ex / "red_blue.jpg", quality=95)
  Image.fromarray(rng.integers(0, 256, (28, 28, 3), np.uint8)).save(ex / "noise.png")
  return str(src), str(ex)


SOURCES = ("deep", "grey", "pal", "rgba")  # the readable ones, sorted
EXEMPLARS = ("noise", "red_blue")


def tf_network_input(path, size):
  """Independent reference: the training pipeline's own resampling (TensorFlow)."""
  tf = input_pipeline._tensorflow(1)
  x = input_pipeline.resample(
    tf,
    tf.constant(images.read_image(path)),
    box=tf.constant([0.0, 0.0, 1.0, 1.0]),
    flip=tf.constant(False),
    size=size,
  )
  return x.numpy()


# ----------------------------------------------------------------------------
# Sizes and resampling
# ----------------------------------------------------------------------------


def test_network_size_rule():
  kw = dict(trained_size=(256, 512), n_downsample=2)
  assert api.network_size((31, 45), native=False, **kw) == (256, 512)
  assert api.network_size((31, 45), native=True, **kw) == (28, 44)
  assert api.network_size((3, 600), native=True, **kw) == (4, 600)
  assert api.network_size((29, 30), native=True, trained_size=(28, 28), n_downsample=0) == (29, 30)


@pytest.mark.parametrize(
  "shape,size",
  [((30, 40, 3), (28, 28)), ((7, 5, 3), (28, 16)), ((28, 28, 3), (28, 28)), ((9, 9, 3), (1, 4))],
)
def test_resize_matches_training_pipeline(tmp_path, shape, size):
  image = np.random.default_rng(1).integers(0, 256, shape, np.uint8)
  path = str(tmp_path / "x.png")
  Image.fromarray(image).save(path)
  ours = api.to_network_input(image, size)
  assert ours.shape == (*size, 3) and ours.dtype == np.float32
  np.testing.assert_allclose(ours, tf_network_input(path, size), atol=1e-5)


def test_resize_keeps_corners_and_constants():
  image = np.zeros((5, 7, 1), np.float32)
  image[0, 0], image[-1, -1] = 1.0, 2.0
  out = images.resize_bilinear_align_corners(image, (9, 13))
  assert out[0, 0, 0] == 1.0 and out[-1, -1, 0] == 2.0
  flat = np.full((4, 6, 3), 77, np.uint8)
  np.testing.assert_array_equal(images.resize_bilinear_align_corners(flat, (11, 3)), 77.0)


# ----------------------------------------------------------------------------
# Loading and the jitted translation
# ----------------------------------------------------------------------------


def test_load_trained_restores_the_latest_stage2_checkpoint(trained):
  assert trained.step == 3
  assert trained.used_ema  # the tiny run keeps an EMA
  assert set(trained.frozen) == {"a", "b"}  # F_A, F_B: mask and AdaIN are on
  assert trained.config.variant == "tiny,no_perceptual"
  assert trained_run.image_shape(trained.config) == (28, 28)
  leaves = [np.asarray(x) for x in jax.tree.leaves(trained.params)]
  assert leaves and all(np.all(np.isfinite(x)) for x in leaves)


def test_translator_noise_is_keyed_per_example_not_per_batch(trained):
  assert trained.models.test_noise  # config.model.test_noise default
  t = api.Translator.from_trained(trained, batch_size=8, seed=3)
  assert t.batch_size == 8  # a multiple of the 8 devices
  rng = np.random.default_rng(2)
  x = rng.uniform(-1, 1, (11, 28, 28, 3)).astype(np.float32)
  e = rng.uniform(-1, 1, (11, 28, 28, 3)).astype(np.float32)
  ids = np.arange(100, 111)
  y = t(x, e, ids, direction="a2b")
  assert y.shape == (11, 28, 28, 3) and np.all(np.abs(y) <= 1)
  # Example 9 alone (another chunk, another padding) gives the same result ...
  np.testing.assert_allclose(t(x[9:10], e[9:10], ids[9:10], direction="a2b")[0], y[9], atol=1e-5)
  # ... and another noise id or seed gives another one.
  assert np.abs(t(x[9:10], e[9:10], [7], direction="a2b")[0] - y[9]).max() > 1e-4
  other = api.Translator.from_trained(trained, batch_size=8, seed=4)
  assert np.abs(other(x[9:10], e[9:10], ids[9:10], direction="a2b")[0] - y[9]).max() > 1e-4
  with pytest.raises(ValueError, match="pair up"):
    t(x, e[:3], ids, direction="a2b")
  with pytest.raises(ValueError, match="direction"):
    t(x, e, ids, direction="a2c")


# ----------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------


def test_translate_folder_with_odd_modes_and_a_corrupt_file(workdir, tmp_path, caplog):
  src, ex = write_inputs(tmp_path)
  out = str(tmp_path / "out")
  with caplog.at_level(logging.ERROR):
    result = translate.translate_paths(
      workdir=workdir, source=src, exemplar=ex, output=out, grid=True, batch_size=8
    )
  broken = os.path.join(src, "broken.png")
  assert result.skipped == [broken]
  errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
  assert len(errors) == 1 and broken in errors[0]
  expected = sorted(f"{s}__{e}.png" for s in SOURCES for e in EXEMPLARS)
  assert sorted(os.path.basename(p) for p in result.written) == expected
  assert sorted(os.listdir(out)) == sorted(expected + ["grid.png"])
  for s in SOURCES:
    source_size = Image.open(os.path.join(src, f"{s}.png")).size
    for e in EXEMPLARS:
      with Image.open(os.path.join(out, f"{s}__{e}.png")) as im:
        assert im.size == source_size and im.mode == "RGB"
  assert result.step == 3 and result.used_ema


def test_grid_layout_holds_inputs_on_the_margins(workdir, tmp_path):
  src, ex = write_inputs(tmp_path)
  out = str(tmp_path / "out")
  translate.translate_paths(
    workdir=workdir, source=src, exemplar=ex, output=out, grid=True, batch_size=8
  )
  grid = np.asarray(Image.open(os.path.join(out, "grid.png")))
  rows, cols = len(SOURCES) + 1, len(EXEMPLARS) + 1
  assert grid.shape == (rows * (CELL + PAD) + PAD, cols * (CELL + PAD) + PAD, 3)

  def cell(r, c):
    y, x = PAD + r * (CELL + PAD), PAD + c * (CELL + PAD)
    return grid[y : y + CELL, x : x + CELL].astype(int)

  assert np.all(cell(0, 0) == 255)
  for c, e in enumerate(EXEMPLARS, start=1):
    path = [os.path.join(ex, f) for f in os.listdir(ex) if f.startswith(e)][0]
    expected = grids.to_uint8(tf_network_input(path, (CELL, CELL))).astype(int)
    assert np.abs(cell(0, c) - expected).max() <= 1
  for r, s in enumerate(SOURCES, start=1):
    expected = grids.to_uint8(tf_network_input(os.path.join(src, f"{s}.png"), (CELL, CELL))).astype(
      int
    )
    assert np.abs(cell(r, 0) - expected).max() <= 1
    for c, e in enumerate(EXEMPLARS, start=1):
      written = np.asarray(Image.open(os.path.join(out, f"{s}__{e}.png"))).astype(int)
      if written.shape[:2] == (CELL, CELL):  # pal and rgba: no resize either way
        np.testing.assert_array_equal(cell(r, c), written)


def test_results_do_not_depend_on_batching_and_native_size_keeps_sizes(workdir, tmp_path):
  src, ex = write_inputs(tmp_path)
  a, b = str(tmp_path / "a"), str(tmp_path / "b")
  translate.translate_paths(workdir=workdir, source=src, exemplar=ex, output=a, batch_size=8)
  translate.translate_paths(workdir=workdir, source=src, exemplar=ex, output=b, batch_size=24)
  for name in os.listdir(a):
    np.testing.assert_array_equal(
      np.asarray(Image.open(os.path.join(a, name))), np.asarray(Image.open(os.path.join(b, name)))
    )
  native = str(tmp_path / "native")
  result = translate.translate_paths(
    workdir=workdir,
    source=src,
    exemplar=ex,
    output=native,
    native_size=True,
    direction="b2a",
    batch_size=8,
  )
  assert len(result.written) == len(SOURCES) * len(EXEMPLARS)
  for s in SOURCES:
    source_size = Image.open(os.path.join(src, f"{s}.png")).size
    assert Image.open(os.path.join(native, f"{s}__noise.png")).size == source_size
  # n_downsample = 0: the network ran at grey's own 30x40, so no resampling blur.
  assert not np.array_equal(
    np.asarray(Image.open(os.path.join(native, "grey__noise.png"))),
    np.asarray(Image.open(os.path.join(a, "grey__noise.png"))),
  )
  # Sources larger than one tile (a core of 8 plus the halo) run in tiles, one
  # at a time, and write what the whole-image pass writes (tests/test_tiling.py
  # has the tolerance: outputs within 1e-4, so PNGs within one level).
  tiled = str(tmp_path / "tiled")
  translate.translate_paths(
    workdir=workdir,
    source=src,
    exemplar=ex,
    output=tiled,
    native_size=True,
    tile_size=8,
    direction="b2a",
    batch_size=8,
  )
  translator = api.Translator.from_workdir(workdir, native_size=True, tile_size=8)
  big = [s for s in SOURCES if translator.needs_tiles(np.asarray(Image.open(f"{src}/{s}.png")))]
  assert big  # the test needs at least one tiled source
  for name in os.listdir(native):
    want = np.asarray(Image.open(os.path.join(native, name))).astype(int)
    got = np.asarray(Image.open(os.path.join(tiled, name))).astype(int)
    assert np.abs(got - want).max() <= 1, name


def test_bad_paths_and_nothing_written(workdir, tmp_path):
  src, ex = write_inputs(tmp_path)
  with pytest.raises(translate.InputError, match="no such file"):
    translate.translate_paths(
      workdir=workdir, source=str(tmp_path / "nope"), exemplar=ex, output=str(tmp_path / "o")
    )
  (tmp_path / "empty").mkdir()
  with pytest.raises(translate.InputError, match="no image files"):
    translate.translate_paths(
      workdir=workdir, source=src, exemplar=str(tmp_path / "empty"), output=str(tmp_path / "o")
    )
  (tmp_path / "dup").mkdir()
  for name in ("x.png", "x.jpg"):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "dup" / name)
  with pytest.raises(translate.InputError, match="same name stem"):
    translate.translate_paths(
      workdir=workdir, source=str(tmp_path / "dup"), exemplar=ex, output=str(tmp_path / "o")
    )
  # Only a corrupt source: the command's exit status is 1 (in process, cli.call).
  assert (
    cli.call(
      cli_translate,
      [
        f"--workdir={workdir}",
        f"--source={src}/broken.png",
        f"--exemplar={ex}",
        f"--output={tmp_path / 'o'}",
      ],
    )
    == 1
  )
  assert not os.listdir(tmp_path / "o")
  assert (
    cli.call(
      cli_translate,
      [
        f"--workdir={tmp_path}",
        f"--source={src}",
        f"--exemplar={ex}",
        f"--output={tmp_path / 'o'}",
      ],
    )
    == 1
  )  # not a workdir


def test_translate_from_an_export_file_writes_what_the_workdir_writes(workdir, tmp_path):
  """--model=FILE (egsc-export's file) in place of --workdir: the same PNGs,
  byte for byte; neither or both is one error naming the two flags."""
  src, ex = write_inputs(tmp_path)
  model = tmp_path / "model.egsc"
  export.export(workdir, str(model))
  outputs = {}
  for name, flag in (("workdir", f"--workdir={workdir}"), ("model", f"--model={model}")):
    outputs[name] = tmp_path / name
    assert (
      cli.call(
        cli_translate,
        [flag, f"--source={src}", f"--exemplar={ex}", f"--output={outputs[name]}", "--grid"],
      )
      == 0
    )
  names = sorted(os.listdir(outputs["workdir"]))
  assert names == sorted(os.listdir(outputs["model"])) and "grid.png" in names
  for name in names:
    assert (outputs["workdir"] / name).read_bytes() == (outputs["model"] / name).read_bytes()
  for both_or_neither in (dict(workdir=workdir, model=str(model)), {}):
    with pytest.raises(translate.InputError, match="exactly one of --workdir"):
      translate.translate_paths(
        source=src, exemplar=ex, output=str(tmp_path / "o"), **both_or_neither
      )


@pytest.mark.slow
def test_cli_smoke(workdir, tmp_path):
  src, ex = write_inputs(tmp_path)
  out = tmp_path / "cli"
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "egsc_jax.translate",
      f"--workdir={workdir}",
      f"--source={src}",
      f"--exemplar={ex}/noise.png",
      f"--output={out}",
      "--grid",
      "--direction=b2a",
      "--seed=1",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert os.path.join(src, "broken.png") in proc.stderr
  assert sorted(os.listdir(out)) == sorted([f"{s}__noise.png" for s in SOURCES] + ["grid.png"])
  assert "4 translations written" in proc.stdout
