"""Robust image reading (egsc_jax.data.images): modes, 16-bit, corrupt files,
listing, resizing. Every expected pixel value below is computed by hand from the
conversion rules in the module docstring."""

import logging
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from skimage.transform import resize as sk_resize

from egsc_jax.data import images


def write_png16(path, array):
  """Writes a 16-bit PNG (grey, grey+alpha, RGB or RGBA) by hand: Pillow cannot
  save 16-bit colour PNGs."""
  array = np.asarray(array, dtype=np.uint16)
  height, width = array.shape[:2]
  channels = 1 if array.ndim == 2 else array.shape[2]
  colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
  raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

  def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

  header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
  with open(path, "wb") as f:
    f.write(
      b"\x89PNG\r\n\x1a\n"
      + chunk(b"IHDR", header)
      + chunk(b"IDAT", zlib.compress(raw))
      + chunk(b"IEND", b"")
    )


def test_rgb_png_is_returned_unchanged(tmp_path):
  pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 7
  Image.fromarray(pixels).save(tmp_path / "x.png")
  out = images.read_image(tmp_path / "x.png")
  assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
  np.testing.assert_array_equal(out, pixels)


def test_grey_png_is_replicated_to_rgb(tmp_path):
  grey = np.array([[0, 17], [200, 255]], np.uint8)
  Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
  out = images.read_image(tmp_path / "g.png")
  np.testing.assert_array_equal(out, np.stack([grey] * 3, axis=-1))


def test_16bit_grey_png_is_scaled_not_clipped(tmp_path):
  values = np.array([[0, 257, 300], [32768, 40000, 65535]], np.uint16)
  write_png16(tmp_path / "g16.png", values)
  assert Image.open(tmp_path / "g16.png").mode.startswith("I")
  out = images.read_image(tmp_path / "g16.png")
  # round(v * 255 / 65535) = round(v / 257): 0, 1, 1.17->1, 127.5->128, 155.6->156, 255.
  expected = np.array([[0, 1, 1], [128, 156, 255]], np.uint8)
  np.testing.assert_array_equal(out, np.stack([expected] * 3, axis=-1))


def test_16bit_rgb_png_keeps_the_high_byte(tmp_path):
  values = np.array([[[0, 257, 65535], [512, 40000, 65280]]], np.uint16)
  write_png16(tmp_path / "rgb16.png", values)
  out = images.read_image(tmp_path / "rgb16.png")
  # Pillow reduces 16-bit colour to its high byte, v >> 8.
  np.testing.assert_array_equal(out, np.array([[[0, 1, 255], [2, 156, 255]]], np.uint8))


def test_rgba_is_composited_on_white(tmp_path):
  rgba = np.array([[[200, 100, 0, 255], [200, 100, 0, 0], [200, 100, 0, 128]]], np.uint8)
  Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
  out = images.read_image(tmp_path / "a.png")
  # alpha 128: (200*128 + 255*127)/255 = 227.4 -> 227; (100*128 + 255*127)/255
  # = 177.2 -> 177; (0 + 255*127)/255 = 127.
  expected = np.array([[[200, 100, 0], [255, 255, 255], [227, 177, 127]]], np.uint8)
  np.testing.assert_array_equal(out, expected)


def test_grey_alpha_is_composited_on_white(tmp_path):
  la = np.array([[[0, 255], [0, 0], [100, 51]]], np.uint8)
  Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
  out = images.read_image(tmp_path / "la.png")
  # alpha 51 (0.2): 100*0.2 + 255*0.8 = 224.
  expected = np.array([[0, 255, 224]], np.uint8)
  np.testing.assert_array_equal(out, np.stack([expected] * 3, axis=-1))


def test_palette_without_and_with_transparency(tmp_path):
  palette = [10, 20, 30, 250, 0, 0] + [0] * (256 * 3 - 6)
  indices = np.array([[0, 1], [1, 0]], np.uint8)
  image = Image.fromarray(indices, mode="P")
  image.putpalette(palette)
  image.save(tmp_path / "p.png")
  out = images.read_image(tmp_path / "p.png")
  expected = np.array([[[10, 20, 30], [250, 0, 0]], [[250, 0, 0], [10, 20, 30]]], np.uint8)
  np.testing.assert_array_equal(out, expected)

  image.save(tmp_path / "pt.png", transparency=1)  # Index 1 fully transparent.
  out = images.read_image(tmp_path / "pt.png")
  white = [255, 255, 255]
  np.testing.assert_array_equal(
    out, np.array([[[10, 20, 30], white], [white, [10, 20, 30]]], np.uint8)
  )


def test_bilevel_bmp(tmp_path):
  bits = np.array([[0, 255], [255, 0]], np.uint8)
  Image.fromarray(bits).convert("1").save(tmp_path / "b.BMP")
  out = images.read_image(tmp_path / "b.BMP")
  np.testing.assert_array_equal(out, np.stack([bits] * 3, axis=-1))


def test_cmyk_jpeg_becomes_rgb(tmp_path):
  Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "c.JPEG", quality=95)
  out = images.read_image(tmp_path / "c.JPEG")
  assert out.shape == (16, 16, 3)
  # Pure cyan-free magenta+yellow ink is red; JPEG leaves a few levels of error.
  np.testing.assert_allclose(out.reshape(-1, 3).mean(0), [255, 0, 0], atol=4)


def test_32bit_int_and_float_modes_in_memory():
  as_int = Image.fromarray(np.array([[0, 65535, 70000, -5]], np.int32), mode="I")
  np.testing.assert_array_equal(images.to_rgb_uint8(as_int)[..., 0], [[0, 255, 255, 0]])
  as_float = Image.fromarray(np.array([[-1.0, 0.4, 127.6, 300.0]], np.float32), mode="F")
  np.testing.assert_array_equal(images.to_rgb_uint8(as_float)[..., 1], [[0, 0, 128, 255]])


def test_lossless_webp_with_alpha(tmp_path):
  rgba = np.zeros((4, 4, 4), np.uint8)
  rgba[..., 0] = 90
  rgba[..., 3] = 255
  rgba[0, 0, 3] = 0
  Image.fromarray(rgba, mode="RGBA").save(tmp_path / "w.WebP", lossless=True)
  out = images.read_image(tmp_path / "w.WebP")
  np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
  np.testing.assert_array_equal(out[1, 1], [90, 0, 0])


def test_exif_orientation_is_applied(tmp_path):
  exif = Image.Exif()
  exif[0x0112] = 6  # "rotate 90 CW to display".
  Image.new("RGB", (8, 4), (0, 128, 0)).save(tmp_path / "o.jpg", exif=exif)
  assert images.read_image(tmp_path / "o.jpg").shape == (8, 4, 3)


def test_corrupt_truncated_and_missing_files_raise_named_errors(tmp_path):
  (tmp_path / "junk.png").write_bytes(b"definitely not a png")
  Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "full.png")
  data = (tmp_path / "full.png").read_bytes()
  (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
  for name in ("junk.png", "cut.png", "absent.png"):
    with pytest.raises(images.ImageReadError) as info:
      images.read_image(tmp_path / name)
    assert info.value.path == str(tmp_path / name)
    assert name in str(info.value)


def test_read_images_skips_and_counts(tmp_path, caplog):
  Image.new("RGB", (3, 2), (9, 9, 9)).save(tmp_path / "a.png")
  (tmp_path / "b.jpg").write_bytes(b"\xff\xd8\xff garbage")
  Image.new("L", (2, 2), 77).save(tmp_path / "c.bmp")
  paths = [tmp_path / "a.png", tmp_path / "b.jpg", tmp_path / "c.bmp"]
  with caplog.at_level(logging.WARNING):
    result = images.read_images(paths, num_threads=2)
  assert result.num_skipped == 1
  assert result.skipped == [str(tmp_path / "b.jpg")]
  assert result.paths == [str(tmp_path / "a.png"), str(tmp_path / "c.bmp")]
  assert result.images[1][0, 0].tolist() == [77, 77, 77]
  assert str(tmp_path / "b.jpg") in caplog.text

  readable, skipped = images.check_images(paths)
  assert readable == result.paths and skipped == result.skipped


def test_list_image_files_is_sorted_case_insensitive_and_filtered(tmp_path):
  for name in ("b.PNG", "a.jpg", "C.jpeg", "d.Bmp", "e.webp", "notes.txt", ".hidden.jpg", "f.gif"):
    (tmp_path / name).write_bytes(b"")
  (tmp_path / "sub").mkdir()
  (tmp_path / "sub" / "z.png").write_bytes(b"")
  names = [p.rsplit("/", 1)[-1] for p in images.list_image_files(tmp_path)]
  assert names == ["C.jpeg", "a.jpg", "b.PNG", "d.Bmp", "e.webp"]
  deep = images.list_image_files(tmp_path, recursive=True)
  assert deep[-1] == str(tmp_path / "sub" / "z.png") and len(deep) == 6
  with pytest.raises(NotADirectoryError):
    images.list_image_files(tmp_path / "nope")


def test_plain_bilinear_matches_skimage():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
  for height, width in ((7, 9), (26, 40), (132, 5)):
    ours = images.resize_bilinear_half_pixel(image, height=height, width=width, antialias=False)
    reference = sk_resize(
      image.astype(np.float64),
      (height, width),
      order=1,
      mode="edge",
      anti_aliasing=False,
      preserve_range=True,
    )
    assert ours.shape == (height, width, 3) and ours.dtype == np.uint8
    assert np.abs(ours.astype(np.float64) - reference).max() <= 0.5 + 1e-9


def test_antialiased_bilinear_keeps_constants_and_ramps():
  constant = np.full((40, 60, 3), 123, np.uint8)
  out = images.resize_bilinear_half_pixel(constant, height=10, width=15)
  assert out.shape == (10, 15, 3) and np.all(out == 123)
  # A linear ramp along W stays linear away from the borders: centre of output
  # column j is (j + 0.5) * 4 - 0.5 in input columns.
  ramp = np.tile(np.arange(0, 240, 4, dtype=np.uint8)[None, :, None], (8, 1, 1))
  out = images.resize_bilinear_half_pixel(ramp, height=2, width=15)
  expected = ((np.arange(15) + 0.5) * 4 - 0.5) * 4
  np.testing.assert_allclose(out[0, 2:-2, 0], expected[2:-2], atol=1)
  assert out.shape == (2, 15, 1)


def test_resize_nearest_takes_the_pixel_under_each_centre():
  labels = np.arange(16, dtype=np.uint8).reshape(4, 4)
  np.testing.assert_array_equal(
    images.resize_nearest(labels, height=2, width=2), [[5, 7], [13, 15]]
  )
  small = np.array([[1, 2], [3, 4]], np.uint8)
  np.testing.assert_array_equal(
    images.resize_nearest(small, height=4, width=4),
    [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]],
  )


def test_map_ordered_keeps_order_with_threads():
  out = list(images.map_ordered(lambda x: x * x, range(50), num_threads=4, window=3))
  assert out == [x * x for x in range(50)]
