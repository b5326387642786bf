"""The Python API of a trained run (`egsc_jax.Translator`), on the tiny two-stage run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from egsc_jax import Style, Translator, api, export, lease, trained_run, translate
from egsc_jax.data import images
from egsc_jax.models import layers
from egsc_jax.models.encoders import bottleneck_channels

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def translator(tiny_run):
  return Translator.from_workdir(tiny_run[0], batch_size=8)


def _inputs():
  """Sources of odd sizes and modes (grey, RGBA, RGB), two exemplars (RGB, grey)."""
  rng = np.random.default_rng(0)
  sources = [
    rng.integers(0, 256, (30, 40), np.uint8),
    rng.integers(0, 256, (28, 28, 4), np.uint8),
    rng.integers(0, 256, (17, 23, 3), np.uint8),
  ]
  red = np.zeros((56, 44, 3), np.uint8)
  red[..., 0] = 255
  red[10:40, 15:30] = (0, 0, 255)
  exemplars = [red, rng.integers(0, 256, (28, 28), np.uint8)]
  return sources, exemplars


@pytest.mark.slow
def test_importable_without_tensorflow():
  code = (
    "import sys\n"
    "class Block:\n"
    "  def find_spec(self, name, path=None, target=None):\n"
    "    if name.split('.')[0] == 'tensorflow':\n"
    "      raise ImportError('tensorflow is blocked: ' + name)\n"
    "sys.meta_path.insert(0, Block())\n"
    "from egsc_jax import Translator, Style\n"
    "import egsc_jax.translate\n"
    "assert not any(m.split('.')[0] == 'tensorflow' for m in sys.modules)\n"
    "print('ok', Translator.__name__)\n"
  )
  proc = subprocess.run(
    [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "ok Translator" in proc.stdout


def test_translate_shapes_and_the_command_writes_the_same(translator, tiny_run, tmp_path):
  sources, exemplars = _inputs()
  out = translator.translate(sources, exemplars, "a2b")
  assert len(out) == 3
  for s, y in zip(sources, out):
    assert y.shape == (2,) + s.shape[:2] + (3,) and y.dtype == np.uint8
  # The translate command on the same images as files writes the same pixels.
  src, ex = tmp_path / "src", tmp_path / "ex"
  src.mkdir()
  ex.mkdir()
  for i, s in enumerate(sources):
    Image.fromarray(s).save(src / f"s{i}.png")
  for j, e in enumerate(exemplars):
    Image.fromarray(e).save(ex / f"e{j}.png")
  translate.translate_paths(
    workdir=tiny_run[0],
    source=str(src),
    exemplar=str(ex),
    output=str(tmp_path / "out"),
    batch_size=8,
    grid=True,
  )
  np.testing.assert_array_equal(
    np.asarray(Image.open(tmp_path / "out" / "grid.png")),
    translator.grid(sources, exemplars, "a2b"),
  )
  for i in range(3):
    for j in range(2):
      written = np.asarray(Image.open(tmp_path / "out" / f"s{i}__e{j}.png"))
      np.testing.assert_array_equal(written, out[i][j])


def test_a_workdir_is_read_freely_while_a_training_holds_its_lease(tiny_run, translator):
  """translate (and the API under evaluate and the demo) ignore the lease."""
  workdir = tiny_run[0]
  sources, exemplars = _inputs()
  with lease.hold(workdir) as holder:
    loaded = Translator.from_workdir(workdir, batch_size=8)
    out = loaded.translate(sources, exemplars, "a2b")
    with open(os.path.join(workdir, lease.LEASE_FILE)) as f:
      assert json.load(f)["id"] == holder["id"]  # still the training's
  for got, want in zip(out, translator.translate(sources, exemplars, "a2b")):
    np.testing.assert_array_equal(got, want)


def test_translate_agrees_with_the_paired_low_level_call(translator):
  """The uint8 API against api.Translator.__call__ (steps.translate)."""
  sources, exemplars = _inputs()
  out = translator.translate(sources, exemplars, "b2a")
  size = translator.image_size
  x = np.stack([api.to_network_input(images.as_rgb(s), size) for s in sources])
  e = np.stack([api.to_network_input(images.as_rgb(v), size) for v in exemplars])
  y = translator(np.repeat(x, 2, axis=0), np.tile(e, (3, 1, 1, 1)), np.arange(6), direction="b2a")
  for i, s in enumerate(sources):
    for j in range(2):
      ref = api.from_network_output(y[2 * i + j], s.shape[:2]).astype(int)
      # Two jitted programs of the same ops: at most a rounding level apart.
      assert np.abs(out[i][j].astype(int) - ref).max() <= 1


def test_style_then_translate_with_style_equals_translate(translator):
  sources, exemplars = _inputs()
  style = translator.style(exemplars, "b")
  g = translator.models.generator
  c = bottleneck_channels(g.ngf, g.n_downsample)  # F's channels
  assert isinstance(style, Style) and style.domain == "b" and len(style) == 2
  assert style.mean.shape == style.var.shape == (2, 1, 1, c)
  assert np.all(style.var >= 0)
  # F_B statistics by hand: F on the exemplar at the trained size.
  x = api.to_network_input(images.as_rgb(exemplars[1]), translator.image_size)
  f = translator.models.exemplar.apply({"params": translator.frozen["b"]}, x[None])
  mean, var = layers.moments(f)
  np.testing.assert_allclose(style.mean[1:], mean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(style.var[1:], var, rtol=1e-5, atol=1e-6)
  with_style = translator.translate_with_style(sources, style)
  plain = translator.translate(sources, exemplars, "a2b")
  for a, b in zip(with_style, plain):
    np.testing.assert_array_equal(a, b)
  # Another exemplar gives another translation: the statistics matter.
  assert np.abs(plain[0][0].astype(int) - plain[0][1]).max() > 0


def test_interpolation_ends_are_the_plain_translations(translator):
  sources, exemplars = _inputs()
  strip = translator.interpolate(sources[2], exemplars[0], exemplars[1], [0.0, 0.5, 1.0])
  assert strip.shape == (3, 17, 23, 3) and strip.dtype == np.uint8
  first = translator.translate([sources[2]], [exemplars[0]], "a2b")[0][0]
  last = translator.translate([sources[2]], [exemplars[1]], "a2b")[0][0]
  np.testing.assert_array_equal(strip[0], first)
  np.testing.assert_array_equal(strip[2], last)
  assert np.abs(first.astype(int) - last).max() > 0
  assert not (np.array_equal(strip[1], first) or np.array_equal(strip[1], last))
  # The mixed statistics are the linear blend.
  s1, s2 = translator.style([exemplars[0]], "b"), translator.style([exemplars[1]], "b")
  mid = s1.mix(s2, [0.25])
  np.testing.assert_allclose(mid.mean, 0.75 * s1.mean + 0.25 * s2.mean, rtol=1e-6)
  np.testing.assert_allclose(mid.var, 0.75 * s1.var + 0.25 * s2.var, rtol=1e-6)


def test_mask_is_the_channel_mean_of_the_feature_mask(translator):
  sources, _ = _inputs()
  masks = translator.mask(sources, "a")
  assert [m.shape for m in masks] == [(30, 40), (28, 28), (17, 23)]
  assert all(m.dtype == np.float32 and m.min() > 0.5 and m.max() < 1 for m in masks)
  # The 28x28 RGBA source needs no resize either way (n_downsample = 0).
  x = api.to_network_input(images.as_rgb(sources[1]), (28, 28))
  f = translator.models.exemplar.apply({"params": translator.frozen["a"]}, x[None])
  expected = np.asarray(layers.feature_mask(f)).mean(-1)[0]
  np.testing.assert_allclose(masks[1], expected, rtol=1e-5, atol=1e-6)


def test_channel_masks_are_the_masks_whose_mean_the_api_shows(translator):
  """eval.mask_probe reads every channel of the mask, batched over the devices;
  their mean is Translator.mask (n_downsample 0: no resize)."""
  from egsc_jax.eval import mask_probe  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(3)
  sources = [rng.integers(0, 256, (28, 28, 3), np.uint8) for _ in range(11)]
  x = np.stack([api.to_network_input(s, (28, 28)) for s in sources])
  channels = mask_probe.channel_masks(translator, x, "b")
  assert channels.shape == (11, 28, 28, translator.models.exemplar.ngf)
  np.testing.assert_allclose(
    channels.mean(-1), np.stack(translator.mask(sources, "b")), rtol=1e-5, atol=1e-6
  )


def test_native_size_pil_input_and_bad_inputs(tiny_run, tmp_path):
  native = Translator.from_workdir(tiny_run[0], batch_size=8, native_size=True)
  sources, exemplars = _inputs()
  out = native.translate(sources[:1], exemplars[:1], "a2b")
  assert out[0].shape == (1, 30, 40, 3)
  pil = native.translate([Image.fromarray(sources[0])], exemplars[:1], "a2b")
  np.testing.assert_array_equal(pil[0], out[0])
  with pytest.raises(ValueError, match="direction"):
    native.translate(sources, exemplars, "a2c")
  with pytest.raises(ValueError, match="dtype float64"):
    native.translate([np.zeros((8, 8, 3))], exemplars)
  with pytest.raises(ValueError, match=r"shape \(8, 8, 5\)"):
    native.translate([np.zeros((8, 8, 5), np.uint8)], exemplars)
  with pytest.raises(ValueError, match="at least one exemplar"):
    native.translate(sources, [])
  with pytest.raises(ValueError, match="domain"):
    native.mask(sources, "c")
  with pytest.raises(trained_run.WorkdirError, match="config.json"):
    Translator.from_workdir(str(tmp_path))


def _size(path) -> int:
  """Bytes of a local file, or of every file under a local folder."""
  if os.path.isfile(path):
    return os.path.getsize(path)
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def test_export_translates_bitwise_as_the_workdir(translator, tiny_run, tmp_path):
  """An export holds the inference parameters only, and translates exactly as
  the workdir it came from (EMA parameters, masks, every direction)."""
  from flax import serialization  # pylint: disable=g-import-not-at-top

  workdir = tiny_run[0]
  path = tmp_path / "shared" / "model.egsc"
  written = export.export(workdir, str(path))
  assert written["bytes"] == path.stat().st_size
  assert written["used_ema"] and written["step"] == translator.trained.step
  exported = Translator.from_export(str(path), batch_size=8)
  assert exported.image_size == translator.image_size == (28, 28)
  sources, exemplars = _inputs()
  for direction in api.DIRECTIONS:
    for a, b in zip(
      exported.translate(sources, exemplars, direction),
      translator.translate(sources, exemplars, direction),
    ):
      np.testing.assert_array_equal(a, b)
  for domain in "ab":
    for a, b in zip(exported.mask(sources, domain), translator.mask(sources, domain)):
      np.testing.assert_array_equal(a, b)
  # Generator + frozen F_A, F_B, config and the image size; no optimizer
  # states or discriminators, so far smaller than the checkpoint it came from.
  record = serialization.msgpack_restore(path.read_bytes())
  assert set(record) == {
    "format",
    "format_version",
    "egsc_jax_version",
    "config",
    "image_size",
    "step",
    "used_ema",
    "params",
    "frozen",
  }
  assert set(record["frozen"]) == {"a", "b"} and record["image_size"] == [28, 28]
  checkpoint = os.path.join(workdir, "stage2", "checkpoints", str(written["step"]))
  print(f"export {_size(path)} bytes, checkpoint {_size(checkpoint)} bytes")
  assert _size(path) < _size(checkpoint) / 3, (_size(path), _size(checkpoint))
  # Not an export: one clear error naming the file.
  (tmp_path / "other.egsc").write_bytes(b"not msgpack at all")
  with pytest.raises(export.ExportError, match="other.egsc: not an egsc-jax export"):
    Translator.from_export(str(tmp_path / "other.egsc"))
  with pytest.raises(export.ExportError, match="no such export file"):
    Translator.from_export(str(tmp_path / "missing.egsc"))


def test_a_short_chunk_is_padded_to_a_power_of_two_of_the_devices_only():
  # One native-size photo used to run as a batch of 32 copies (32x the memory).
  padded = api._padded_size  # pylint: disable=protected-access
  assert [padded(n, 32, 1) for n in (1, 2, 3, 5, 17, 32)] == [1, 2, 4, 8, 32, 32]
  assert [padded(n, 24, 8) for n in (1, 8, 9, 17, 24)] == [8, 8, 16, 24, 24]
