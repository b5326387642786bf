"""The manual_dir builders (image_folder, celeba_gender, gta5_bdd) and the build
command, on tiny fakes written here in the real download layouts."""

import logging
import os
import struct
import zlib

import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import logged_warnings, tiny_config
from PIL import Image

from egsc_jax import cli, config_lib, errors, grids, train
from egsc_jax.cli import build as cli_build
from egsc_jax.data import build as build_lib
from egsc_jax.data import celeba_gender, gta5_bdd, image_folder, images, pairing
from egsc_jax.eval import training as eval_training

# ---------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------


def write_png16_grey(path, values):
  """A 16-bit greyscale PNG, written by hand (Pillow's writer is not under test)."""
  values = np.asarray(values, np.uint16)
  height, width = values.shape
  raw = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(height))

  def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

  header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
  with open(path, "wb") as f:
    f.write(
      b"\x89PNG\r\n\x1a\n"
      + chunk(b"IHDR", header)
      + chunk(b"IDAT", zlib.compress(raw))
      + chunk(b"IEND", b"")
    )


def solid(height, width, colour, path, **save_kwargs):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.new("RGB", (width, height), tuple(colour)).save(path, **save_kwargs)


def build(name, tmp_path, manual_dir, sub="data"):
  return build_lib.build(name, data_dir=str(tmp_path / sub), manual_dir=str(manual_dir))


def read_split(builder, split):
  return list(tfds.as_numpy(builder.as_dataset(split=split)))


def mean_colour(image):
  return image.reshape(-1, 3).mean(0)


def closest(colour, palette):
  """Key of `palette` (name -> colour) nearest to `colour`."""
  return min(palette, key=lambda k: np.abs(np.subtract(palette[k], colour)).sum())


# ---------------------------------------------------------------------------
# Pairing.
# ---------------------------------------------------------------------------


def test_pair_indices_repeat_shorter_domain_and_shuffle():
  idx_a, idx_b = pairing.pair_indices(7, 3, seed=0, shuffle=True)
  assert len(idx_a) == len(idx_b) == 7
  assert sorted(idx_a.tolist()) == list(range(7))
  # 7 = 2 * 3 + 1: every B image twice, one of them three times.
  assert sorted(np.bincount(idx_b, minlength=3).tolist()) == [2, 2, 3]
  again = pairing.pair_indices(7, 3, seed=0, shuffle=True)
  np.testing.assert_array_equal(again[0], idx_a)
  np.testing.assert_array_equal(again[1], idx_b)
  other = pairing.pair_indices(7, 3, seed=1, shuffle=True)
  assert not (np.array_equal(other[0], idx_a) and np.array_equal(other[1], idx_b))


def test_pair_indices_test_order_and_cut():
  idx_a, idx_b = pairing.pair_indices(2, 5, seed=0, shuffle=False)
  assert idx_a.tolist() == [0, 1, 0, 1, 0] and idx_b.tolist() == [0, 1, 2, 3, 4]
  # Cut to a length shorter than B: only B's first 3 entries are used (A9).
  idx_a, idx_b = pairing.pair_indices(3, 10, seed=0, shuffle=True, length=3)
  assert sorted(idx_b.tolist()) == [0, 1, 2] and sorted(idx_a.tolist()) == [0, 1, 2]
  assert pairing.pair_id(42, 500) == "00042"
  assert pairing.pair_id(7, 123456) == "000007"


# ---------------------------------------------------------------------------
# image_folder.
# ---------------------------------------------------------------------------


def make_image_folder(root):
  """trainA holds every awkward mode plus one corrupt file; returns the
  hand-computed RGB each readable trainA file must become, keyed by height."""
  for folder in image_folder.DOMAIN_FOLDERS:
    (root / folder).mkdir(parents=True)
  expected = {}
  rgb = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3) * 5
  Image.fromarray(rgb).save(root / "trainA" / "a_rgb.png")
  expected[3] = rgb

  grey16 = np.full((4, 5), 40000, np.uint16)
  grey16[0, 0] = 65535
  write_png16_grey(root / "trainA" / "b_grey16.png", grey16)
  want = np.full((4, 5), 156, np.uint8)  # round(40000 / 257) = round(155.64).
  want[0, 0] = 255
  expected[4] = np.stack([want] * 3, -1)

  indices = np.zeros((5, 5), np.uint8)
  indices[:, 2:] = 1
  palette = Image.fromarray(indices, mode="P")
  palette.putpalette([0, 0, 200, 30, 60, 90] + [0] * 762)
  palette.save(root / "trainA" / "c_palette.PNG", transparency=0)
  want = np.zeros((5, 5, 3), np.uint8)
  want[:, :2] = 255  # Index 0 is transparent: white.
  want[:, 2:] = [30, 60, 90]
  expected[5] = want

  rgba = np.zeros((6, 5, 4), np.uint8)
  rgba[..., :3] = [100, 0, 50]
  rgba[..., 3] = 102  # alpha 0.4
  Image.fromarray(rgba, mode="RGBA").save(root / "trainA" / "d_rgba.webp", lossless=True)
  # 100*0.4 + 255*0.6 = 193, 0 + 153 = 153, 50*0.4 + 153 = 173.
  expected[6] = np.broadcast_to(np.array([193, 153, 173], np.uint8), (6, 5, 3))

  grey = np.full((7, 5), 33, np.uint8)
  Image.fromarray(grey, mode="L").save(root / "trainA" / "e_grey.bmp")
  expected[7] = np.full((7, 5, 3), 33, np.uint8)

  (root / "trainA" / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
  (root / "trainA" / "readme.txt").write_text("ignored")

  solid(2, 3, (255, 0, 0), str(root / "trainB" / "b1.png"))
  solid(2, 3, (0, 255, 0), str(root / "trainB" / "b2.png"))
  solid(4, 4, (1, 2, 3), str(root / "testA" / "t1.png"))
  solid(3, 3, (10, 0, 0), str(root / "testB" / "u1.png"))
  solid(3, 3, (20, 0, 0), str(root / "testB" / "u2.jpg"), quality=100)
  return expected


def test_image_folder_conversions_skips_and_pairs(tmp_path, caplog):
  manual = tmp_path / "manual"
  expected = make_image_folder(manual)
  with caplog.at_level(logging.WARNING):
    builder = build("image_folder", tmp_path, manual)
  broken = str(manual / "trainA" / "zz_broken.jpg")
  assert broken in caplog.text
  assert builder.info.metadata["num_skipped_files"] == 1
  assert builder.info.metadata["skipped_files"] == [os.path.join("trainA", "zz_broken.jpg")]
  assert builder.info.splits["train"].num_examples == 5
  assert builder.info.splits["test"].num_examples == 2

  train = read_split(builder, "train")
  heights = sorted(ex["image_a"].shape[0] for ex in train)
  assert heights == [3, 4, 5, 6, 7]  # Every readable A image exactly once.
  for ex in train:
    np.testing.assert_array_equal(ex["image_a"], expected[ex["image_a"].shape[0]])
  reds = sum(int(ex["image_b"][0, 0, 0] == 255) for ex in train)
  assert reds in (2, 3)  # B (2 images) repeated to 5: each 2 or 3 times.
  assert sorted(ex["id"].decode() for ex in train) == [f"0000{i}" for i in range(5)]

  test = read_split(builder, "test")
  assert [ex["id"].decode() for ex in test] == ["00000", "00001"]
  for ex in test:
    np.testing.assert_array_equal(ex["image_a"], np.full((4, 4, 3), [1, 2, 3], np.uint8))
  assert [int(ex["image_b"][1, 1, 0]) for ex in test] == [10, 20]  # Sorted order.


def test_image_folder_build_is_deterministic(tmp_path):
  manual = tmp_path / "manual"
  make_image_folder(manual)
  first = build("image_folder", tmp_path, manual, sub="one")
  second = build("image_folder", tmp_path, manual, sub="two")
  for split in ("train", "test"):
    for x, y in zip(read_split(first, split), read_split(second, split), strict=True):
      assert x["id"] == y["id"]
      np.testing.assert_array_equal(x["image_a"], y["image_a"])
      np.testing.assert_array_equal(x["image_b"], y["image_b"])


def test_image_folder_missing_and_empty_domains_fail_before_work(tmp_path):
  manual = tmp_path / "manual"
  for folder in ("trainA", "trainB", "testA"):
    (manual / folder).mkdir(parents=True)
  solid(2, 2, (1, 1, 1), str(manual / "trainA" / "x.png"))
  solid(2, 2, (1, 1, 1), str(manual / "testA" / "x.png"))
  (manual / "trainB" / "notes.txt").write_text("no images here")
  with pytest.raises(FileNotFoundError) as info:
    build("image_folder", tmp_path, manual)
  message = str(info.value)
  assert f"{manual / 'testB'}: missing" in message
  assert f"{manual / 'trainB'}: no image files" in message
  assert "trainA/" in message and "testA/" in message  # The layout is listed.
  assert not image_folder.ImageFolder(data_dir=str(tmp_path / "data")).is_prepared()

  # A domain whose only file is corrupt is empty too, still before any writing.
  (manual / "testB").mkdir()
  (manual / "testB" / "bad.png").write_bytes(b"broken")
  solid(2, 2, (1, 1, 1), str(manual / "trainB" / "x.png"))
  with pytest.raises(FileNotFoundError, match="no readable image left in .*testB"):
    build("image_folder", tmp_path, manual)
  assert not image_folder.ImageFolder(data_dir=str(tmp_path / "data")).is_prepared()


def test_image_folder_missing_manual_dir(tmp_path):
  with pytest.raises(FileNotFoundError, match="trainA"):
    build("image_folder", tmp_path, tmp_path / "nowhere")


def test_image_folder_refuses_a_stale_build_and_reuses_an_unchanged_one(tmp_path, capsys):
  """The build records its source: the same files are reused (even moved), and
  a file added or changed in size is refused with one line naming the rebuild."""
  manual = tmp_path / "manual"
  make_image_folder(manual)
  data_dir = tmp_path / "data"
  first = build("image_folder", tmp_path, manual)
  source = first.info.metadata["source"]
  assert source["trainA"]["files"] == 6 and source["testB"]["files"] == 2
  assert source == image_folder.source_record(
    str(manual), image_folder.list_domain_files(str(manual))
  )

  # Unchanged, and the same files under another name (mv keeps the times): reused.
  assert build("image_folder", tmp_path, manual).info.metadata["source"] == source
  moved = tmp_path / "moved"
  os.rename(manual, moved)
  assert build("image_folder", tmp_path, moved).is_prepared()
  os.rename(moved, manual)

  def refused(change):
    with pytest.raises(build_lib.StaleBuildError) as info:
      build("image_folder", tmp_path, manual)
    message = str(info.value)
    assert "\n" not in message and str(data_dir) in message
    assert f"egsc-build image_folder --data_dir {data_dir} --manual_dir {manual}" in message
    assert "--overwrite" in message and change in message, message
    # The build command says the same, on one line, with the user-error status.
    argv = ["image_folder", "--data_dir", str(data_dir), "--manual_dir", str(manual)]
    capsys.readouterr()
    assert cli.call(cli_build, argv) == errors.EXIT_USER_ERROR
    out, err = capsys.readouterr()
    assert err.startswith("error: refusing to reuse image_folder") and err.count("\n") == 1
    assert not out
    # Training prepares the dataset through the same check.
    from egsc_jax import train  # pylint: disable=g-import-not-at-top

    config = _image_folder_config(data_dir, manual)
    with pytest.raises(build_lib.StaleBuildError):
      train.prepare_dataset(config)

  solid(2, 2, (9, 9, 9), str(manual / "testB" / "u3.png"))  # A file added.
  refused("testB 2 -> 3 files")
  (manual / "testB" / "u3.png").unlink()
  assert build("image_folder", tmp_path, manual).is_prepared()  # Back as built.
  changed = manual / "trainB" / "b1.png"
  before = os.stat(changed)
  noise = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
  Image.fromarray(noise).save(changed)  # Another file size,
  os.utime(changed, (before.st_mtime, before.st_mtime))  # the same time.
  assert os.stat(changed).st_size != before.st_size
  refused("trainB 2 -> 2 files")
  # --overwrite rebuilds from the folder as it is now; then it is reused again.
  rebuilt = build_lib.build(
    "image_folder", data_dir=str(data_dir), manual_dir=str(manual), overwrite=True
  )
  assert rebuilt.info.metadata["source"]["trainB"] != source["trainB"]
  assert build("image_folder", tmp_path, manual).is_prepared()
  # Without a manual dir the build is reused as it is (nothing to compare with).
  assert build_lib.build("image_folder", data_dir=str(data_dir)).is_prepared()


def _image_folder_config(data_dir, manual_dir, variant="tiny"):
  from configs import image_folder as image_folder_config  # pylint: disable=g-import-not-at-top

  config = image_folder_config.get_config(variant)
  config.data.data_dir = str(data_dir)
  config.data.manual_dir = str(manual_dir)
  return config


def test_shrink_to_max_side_keeps_aspect_and_never_enlarges():
  rng = np.random.default_rng(0)
  photo = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)  # 640x480 (W x H)
  assert image_folder.shrink_to_max_side(photo, 256).shape == (192, 256, 3)
  assert image_folder.shrink_to_max_side(photo.transpose(1, 0, 2), 256).shape == (256, 192, 3)
  # 1000x333 -> 256x85.248, rounded to 85; never below one pixel.
  strip = rng.integers(0, 256, (333, 1000, 3), dtype=np.uint8)
  assert image_folder.shrink_to_max_side(strip, 256).shape == (85, 256, 3)
  assert image_folder.shrink_to_max_side(photo[:1, :640], 64).shape == (1, 64, 3)
  # Small enough already, or no max side: the very same pixels.
  small = photo[:100, :200]
  assert image_folder.shrink_to_max_side(small, 256) is small
  assert image_folder.shrink_to_max_side(small, 200) is small
  assert image_folder.shrink_to_max_side(photo, None) is photo
  # The resampling is PIL's antialiased bilinear (an independent reference).
  want = np.asarray(Image.fromarray(photo).resize((256, 192), Image.Resampling.BILINEAR))
  np.testing.assert_array_equal(image_folder.shrink_to_max_side(photo, 256), want)


def test_image_folder_stores_images_shrunk_to_the_max_side(tmp_path, capsys):
  manual = tmp_path / "manual"
  solid(480, 640, (200, 30, 30), str(manual / "trainA" / "wide.jpg"), quality=95)
  solid(300, 120, (30, 200, 30), str(manual / "trainA" / "tall.png"))
  solid(50, 80, (30, 30, 200), str(manual / "trainB" / "small.png"))
  solid(64, 64, (5, 5, 5), str(manual / "testA" / "t.png"))
  solid(64, 64, (6, 6, 6), str(manual / "testB" / "u.png"))
  # Training's image size sets the max side: (96, 128) -> 128.
  builder = build_lib.build(
    "image_folder", data_dir=str(tmp_path / "data"), manual_dir=str(manual), image_size=(96, 128)
  )
  assert builder.info.metadata["max_side"] == 128
  shapes = {ex["image_a"].shape[:2] for ex in read_split(builder, "train")}
  assert shapes == {(96, 128), (128, 51)}  # 640x480 -> 128x96; 120x300 -> 51x128
  assert {ex["image_b"].shape[:2] for ex in read_split(builder, "train")} == {(50, 80)}
  # A smaller training size reuses it; a larger one would enlarge: refused.
  build_lib.build(
    "image_folder", data_dir=str(tmp_path / "data"), manual_dir=str(manual), image_size=(64, 64)
  )
  with pytest.raises(build_lib.StaleBuildError, match="max side 128, smaller than .* 256"):
    build_lib.build("image_folder", data_dir=str(tmp_path / "data"), image_size=(256, 256))
  # The command: --max_side 0 keeps full size; another size than built is refused.
  argv = ["image_folder", "--data_dir", str(tmp_path / "cmd"), "--manual_dir", str(manual)]
  assert cli.call(cli_build, argv + ["--max_side", "0"]) == 0
  assert '"max_side": null' in capsys.readouterr().out
  full = build_lib.get_builder("image_folder", data_dir=str(tmp_path / "cmd"))
  assert {ex["image_a"].shape[:2] for ex in read_split(full, "train")} == {(480, 640), (300, 120)}
  assert cli.call(cli_build, argv + ["--max_side", "200"]) == errors.EXIT_USER_ERROR
  err = capsys.readouterr().err
  assert "full size, and max side 200 was asked for" in err and "--max_side 200" in err
  assert cli.call(cli_build, argv + ["--max_side", "-1"]) == errors.EXIT_USER_ERROR
  assert cli.call(cli_build, ["mnist_single", "--max_side", "64"]) == errors.EXIT_USER_ERROR
  assert "--max_side is for image_folder only" in capsys.readouterr().err


def test_image_folder_default_max_side_is_the_config_image_size():
  from configs import image_folder as image_folder_config  # pylint: disable=g-import-not-at-top

  size = image_folder_config.get_config().data.image_size
  assert image_folder.DEFAULT_MAX_SIDE == max(size)


# ---------------------------------------------------------------------------
# celeba_gender.
# ---------------------------------------------------------------------------

CELEBA_ATTRIBUTES = (
  "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips "
  "Big_Nose Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby "
  "Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male "
  "Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin "
  "Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
  "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
  "Wearing_Necktie Young"
).split()

# name: (Male, partition, face colour); 000010 is listed but has no image file.
CELEBA_FAKE = {
  "000001.jpg": (1, 0, (200, 40, 40)),
  "000002.jpg": (-1, 0, (40, 200, 40)),
  "000003.jpg": (1, 0, (40, 40, 200)),
  "000004.jpg": (-1, 0, (200, 200, 40)),
  "000005.jpg": (1, 0, (40, 200, 200)),
  "000006.jpg": (1, 1, (90, 90, 90)),
  "000007.jpg": (1, 2, (160, 100, 60)),
  "000008.jpg": (-1, 2, (60, 100, 160)),
  "000009.jpg": (-1, 2, (100, 160, 60)),
  "000010.jpg": (-1, 0, None),
}


def make_celeba(root, *, official_layout=False):
  image_dir = root / ("Img/img_align_celeba" if official_layout else "img_align_celeba")
  image_dir.mkdir(parents=True)
  attr_dir = root / "Anno" if official_layout else root
  eval_dir = root / "Eval" if official_layout else root
  attr_dir.mkdir(exist_ok=True)
  eval_dir.mkdir(exist_ok=True)
  male_col = CELEBA_ATTRIBUTES.index("Male")
  attr_lines = [str(len(CELEBA_FAKE)), " ".join(CELEBA_ATTRIBUTES) + " "]
  partition_lines = []
  for i, (name, (male, part, colour)) in enumerate(CELEBA_FAKE.items()):
    values = [1 if (i + j) % 3 == 0 else -1 for j in range(40)]
    values[male_col] = male
    # Official format: each value right-aligned in 2 characters.
    attr_lines.append(name + " " + " ".join(f"{v:2d}" for v in values))
    partition_lines.append(f"{name} {part}")
    if colour is not None:
      face = np.zeros((218, 178, 3), np.uint8)
      face[:20] = (255, 0, 0)  # Cropped away (rows 0:20).
      face[20:198] = colour
      face[198:] = (0, 0, 255)  # Cropped away (rows 198:218).
      Image.fromarray(face).save(image_dir / name, quality=100, subsampling=0)
  (attr_dir / "list_attr_celeba.txt").write_text("\n".join(attr_lines) + "\n")
  (eval_dir / "list_eval_partition.txt").write_text("\n".join(partition_lines) + "\n")
  return image_dir


def test_celeba_preprocess_crops_rows_20_to_198_and_resizes():
  # Rows hold their own index: the crop offset and the two resizes show up as a
  # linear ramp 20 + (j + 0.5) * 178 / 128 - 0.5 down the 128 output rows.
  ramp = np.tile(np.arange(218, dtype=np.uint8)[:, None, None], (1, 178, 3))
  out = celeba_gender.preprocess(ramp)
  assert out.shape == (128, 128, 3) and out.dtype == np.uint8
  rows = np.arange(128)
  expected = 20 + (rows + 0.5) * 178 / 128 - 0.5
  np.testing.assert_allclose(out[2:-2, 64, 0], expected[2:-2], atol=1.01)
  with pytest.raises(ValueError, match="178x218"):
    celeba_gender.preprocess(np.zeros((250, 250, 3), np.uint8))


def test_celeba_gender_builder(tmp_path, caplog):
  manual = tmp_path / "manual"
  image_dir = make_celeba(manual)
  with caplog.at_level(logging.WARNING):
    builder = build("celeba_gender", tmp_path, manual)
  assert "000010.jpg" in caplog.text
  meta = builder.info.metadata
  assert meta["num_missing_images"] == 1 and meta["num_skipped_files"] == 0
  assert meta["num_images"] == {
    "train_male": 3,
    "train_female": 2,
    "test_male": 1,
    "test_female": 2,
  }
  assert builder.info.splits["train"].num_examples == 3  # 2 females repeated to 3.
  assert builder.info.splits["test"].num_examples == 2

  colours = {n: c for n, (_, _, c) in CELEBA_FAKE.items() if c is not None}
  train = read_split(builder, "train")
  a_names = sorted(closest(mean_colour(ex["image_a"]), colours) for ex in train)
  assert a_names == ["000001.jpg", "000003.jpg", "000005.jpg"]  # Males, once each.
  b_names = {closest(mean_colour(ex["image_b"]), colours) for ex in train}
  assert b_names == {"000002.jpg", "000004.jpg"}  # Train females only.
  for ex in train:
    assert ex["image_a"].shape == (128, 128, 3)
    # The red and blue bands are cropped away: the face colour fills the image.
    name = closest(mean_colour(ex["image_a"]), colours)
    assert np.abs(ex["image_a"].astype(int) - colours[name]).max() <= 12

  test = read_split(builder, "test")
  assert [ex["id"].decode() for ex in test] == ["00000", "00001"]
  assert [closest(mean_colour(ex["image_b"]), colours) for ex in test] == [
    "000008.jpg",
    "000009.jpg",
  ]
  expected_a = celeba_gender.preprocess(images.read_image(image_dir / "000007.jpg"))
  for ex in test:
    np.testing.assert_array_equal(ex["image_a"], expected_a)


def test_celeba_official_layout_and_missing_files(tmp_path):
  make_celeba(tmp_path / "official", official_layout=True)
  found = celeba_gender.find_celeba_files(str(tmp_path / "official"))
  assert found.attr_file.endswith(os.path.join("Anno", "list_attr_celeba.txt"))
  assert found.partition_file.endswith(os.path.join("Eval", "list_eval_partition.txt"))
  assert found.image_dir.endswith(os.path.join("Img", "img_align_celeba"))

  male = celeba_gender.parse_attributes(found.attr_file)
  partition = celeba_gender.parse_partition(found.partition_file)
  assert celeba_gender.split_by_gender(male, partition, split=2) == (
    ["000007.jpg"],
    ["000008.jpg", "000009.jpg"],
  )

  partial = tmp_path / "partial"
  (partial / "img_align_celeba").mkdir(parents=True)
  (partial / "list_attr_celeba.txt").write_text("0\nMale\n")
  with pytest.raises(FileNotFoundError) as info:
    celeba_gender.find_celeba_files(str(partial))
  message = str(info.value)
  assert "list_eval_partition.txt" in message and "Eval" in message
  assert "list_attr_celeba.txt: looked" not in message  # It was found.
  assert "mmlab.ie.cuhk.edu.hk" in message


def test_celeba_bad_attribute_file_names_the_line(tmp_path):
  path = tmp_path / "list_attr_celeba.txt"
  path.write_text("2\nMale Young\n000001.jpg 1 -1\n000002.jpg 0 1\n")
  with pytest.raises(celeba_gender.CelebAFormatError, match=r"list_attr_celeba.txt:4: Male"):
    celeba_gender.parse_attributes(str(path))


# ---------------------------------------------------------------------------
# gta5_bdd.
# ---------------------------------------------------------------------------

GTA5_COLOURS = {
  f"{i:05d}.png": c
  for i, c in enumerate([(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0)], start=1)
}
BDD_COLOURS = {
  "t1": (200, 60, 60),
  "t2": (60, 200, 60),
  "f1": (60, 60, 200),
  "v1": (200, 200, 60),
  "v2": (60, 200, 200),
}


def quadrant_labels(left, top_right, bottom_right):
  labels = np.empty((8, 16), np.uint8)
  labels[:, :8] = left
  labels[:4, 8:] = top_right
  labels[4:, 8:] = bottom_right
  return labels


# Label files: GTA5 label ids (7 road, 26 car, 40 not a Cityscapes id, 24 person,
# 23 sky, 0 unlabeled); BDD train ids (0 road, 13 car, 255 ignore, 10 sky, 11
# person, 18 bicycle). Values: (raw labels, expected categories).
GTA5_LABELS = {
  "00001.png": ((7, 26, 40), (1, 7, 255)),
  "00002.png": ((24, 23, 0), (6, 5, 0)),
  "00003.png": ((11, 21, 33), (2, 4, 7)),
  # 00004.png has no label file.
}
BDD_LABELS = {
  "t1": ((0, 13, 255), (1, 7, 255)),
  "t2": ((10, 11, 18), (5, 6, 7)),
  "v1": ((2, 8, 5), (2, 4, 3)),
  "v2": ((12, 1, 19), (6, 1, 255)),
}


def make_gta5_bdd(root):
  for name, colour in GTA5_COLOURS.items():
    solid(8, 16, colour, str(root / "gta5" / "images" / name))
  (root / "gta5" / "labels").mkdir(parents=True)
  palette = list(np.random.default_rng(0).integers(0, 256, 768))
  for name, (raw, _) in GTA5_LABELS.items():
    label = Image.fromarray(quadrant_labels(*raw), mode="P")
    label.putpalette(palette)  # The GTA5 labels are palette PNGs.
    label.save(root / "gta5" / "labels" / name)
  seg = root / "bdd100k" / "seg"
  for stem, split in (("t1", "train"), ("t2", "train"), ("v1", "val"), ("v2", "val")):
    solid(8, 16, BDD_COLOURS[stem], str(seg / "images" / split / f"{stem}.jpg"), quality=95)
    (seg / "labels" / split).mkdir(parents=True, exist_ok=True)
    Image.fromarray(quadrant_labels(*BDD_LABELS[stem][0]), mode="L").save(
      seg / "labels" / split / f"{stem}_train_id.png"
    )
  solid(
    9,
    16,
    BDD_COLOURS["f1"],
    str(root / "bdd100k" / "videos" / "out_img" / "video1" / "f1.jpg"),
    quality=95,
  )


def expected_labels(categories):
  """Nearest upsampling by 32: each 4x8 quadrant becomes 128x256."""
  return np.kron(quadrant_labels(*categories), np.ones((32, 32), np.uint8))[..., None]


def test_label_tables_match_cityscapes_categories():
  by_category = {  # Cityscapes label ids of each category (cityscapesScripts).
    0: range(0, 7),
    1: range(7, 11),
    2: range(11, 17),
    3: range(17, 21),
    4: (21, 22),
    5: (23,),
    6: (24, 25),
    7: range(26, 34),
  }
  for category, ids in by_category.items():
    assert gta5_bdd.label_ids_to_categories(np.array(list(ids))).tolist() == [category] * len(ids)
  assert gta5_bdd.label_ids_to_categories(np.array([34, 255, -1])).tolist() == [255] * 3
  train_ids = gta5_bdd.train_ids_to_categories(np.array(list(range(19)) + [19, 255]))
  assert train_ids.tolist() == [1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 5, 6, 6, 7, 7, 7, 7, 7, 7, 255, 255]
  colours = np.array([[[128, 64, 128], [70, 130, 180], [0, 0, 142], [1, 2, 3]]], np.uint8)
  assert gta5_bdd.colours_to_categories(colours).tolist() == [[1, 5, 7, 255]]


def test_colour_coded_gta5_labels_and_rgb_bdd_masks(tmp_path):
  colours = np.array([[[128, 64, 128], [220, 20, 60]], [[0, 0, 0], [5, 5, 5]]], np.uint8)
  Image.fromarray(colours).save(tmp_path / "gta_rgb.png")
  categories = gta5_bdd.read_categories(str(tmp_path / "gta_rgb.png"), kind="label_id")
  assert categories.tolist() == [[1, 6], [0, 255]]  # road, person, unlabeled, unknown.
  with pytest.raises(images.ImageReadError, match="single-channel"):
    gta5_bdd.read_categories(str(tmp_path / "gta_rgb.png"), kind="train_id")


def test_gta5_split_sizes():
  assert gta5_bdd.gta5_split_sizes(24_966) == (24_466, 500)
  assert gta5_bdd.gta5_split_sizes(30_000) == (24_466, 500)
  assert gta5_bdd.gta5_split_sizes(100) == (98, 2)
  assert gta5_bdd.gta5_split_sizes(4) == (3, 1)
  names = [f"{i:05d}.png" for i in range(1000)]
  train, test = gta5_bdd.split_gta5(names)
  assert len(train) == 980 and len(test) == 20 and not set(train) & set(test)
  assert gta5_bdd.split_gta5(list(reversed(sorted(names)))) != (train, test)  # Needs sorting first.
  assert gta5_bdd.split_gta5(names) == (train, test)


def test_gta5_bdd_builder(tmp_path, caplog):
  manual = tmp_path / "manual"
  make_gta5_bdd(manual)
  with caplog.at_level(logging.WARNING):
    builder = build("gta5_bdd", tmp_path, manual)
  meta = builder.info.metadata
  assert meta["labels_a"] and meta["labels_b"]
  assert meta["bdd_layout"].startswith("seg")
  assert meta["missing_label_files"] == 1 and "00004.png" in caplog.text
  assert meta["num_images"]["bdd_extra_frames"] == 1
  # 4 GTA5 frames: 3 train, 1 test; B train = t1, t2 + extra f1, test = v1, v2.
  assert builder.info.splits["train"].num_examples == 3
  assert builder.info.splits["test"].num_examples == 2

  gta5_paths = images.list_image_files(manual / "gta5" / "images")
  _, (test_a,) = gta5_bdd.split_gta5(gta5_paths)
  train = read_split(builder, "train")
  test = read_split(builder, "test")
  seen_a, seen_b = [], []
  for ex in train + test:
    assert ex["image_a"].shape == (256, 512, 3) and ex["label_a"].shape == (256, 512, 1)
    assert ex["image_b"].shape == (256, 512, 3) and ex["label_b"].shape == (256, 512, 1)
    a = closest(mean_colour(ex["image_a"]), GTA5_COLOURS)
    b = closest(mean_colour(ex["image_b"]), BDD_COLOURS)
    np.testing.assert_array_equal(ex["image_a"], np.broadcast_to(GTA5_COLOURS[a], (256, 512, 3)))
    want_a = (
      expected_labels(GTA5_LABELS[a][1])
      if a in GTA5_LABELS
      else np.full((256, 512, 1), 255, np.uint8)
    )
    want_b = (
      expected_labels(BDD_LABELS[b][1])
      if b in BDD_LABELS
      else np.full((256, 512, 1), 255, np.uint8)
    )  # The extra frame.
    np.testing.assert_array_equal(ex["label_a"], want_a)
    np.testing.assert_array_equal(ex["label_b"], want_b)
    seen_a.append(a)
    seen_b.append(b)
  assert sorted(seen_a[:3]) == sorted(n for n in GTA5_COLOURS if n != os.path.basename(test_a))
  assert seen_a[3:] == [os.path.basename(test_a)] * 2
  assert sorted(seen_b[:3]) == ["f1", "t1", "t2"]
  assert seen_b[3:] == ["v1", "v2"]  # Sorted val images.

  again = build("gta5_bdd", tmp_path, manual, sub="again")
  for split, first in (("train", train), ("test", test)):
    for x, y in zip(first, read_split(again, split), strict=True):
      for key in ("image_a", "image_b", "label_a", "label_b", "id"):
        np.testing.assert_array_equal(x[key], y[key])


def test_gta5_bdd_current_bdd_layout_and_missing_labels(tmp_path):
  root = tmp_path / "manual"
  for name in ("00001.png", "00002.png"):
    solid(4, 8, (9, 9, 9), str(root / "gta5" / "images" / name))
  for split in ("train", "val"):
    solid(4, 8, (9, 9, 9), str(root / "bdd100k" / "images" / "10k" / split / "x.jpg"))
  masks = root / "bdd100k" / "labels" / "sem_seg" / "masks" / "train"
  masks.mkdir(parents=True)
  Image.fromarray(np.zeros((4, 8), np.uint8)).save(masks / "x.png")
  files = gta5_bdd.find_gta5_bdd_files(str(root))
  assert "10k" in files.bdd_layout
  assert files.gta5_labels is None  # No gta5/labels: label_a will be all 255.
  train_image = str(root / "bdd100k" / "images" / "10k" / "train" / "x.jpg")
  assert files.bdd_labels[train_image] == str(masks / "x.png")

  frame = gta5_bdd.load_frame(train_image, str(masks / "x.png"), kind="train_id")
  assert frame.error is None and np.all(frame.label == 1)  # Train id 0 (road): flat.
  assert frame.image.shape == (256, 512, 3)


def test_gta5_bdd_missing_inputs_error(tmp_path):
  (tmp_path / "manual" / "gta5" / "images").mkdir(parents=True)
  with pytest.raises(FileNotFoundError) as info:
    build("gta5_bdd", tmp_path, tmp_path / "manual")
  message = str(info.value)
  assert os.path.join("gta5", "images") in message
  assert os.path.join("bdd100k", "seg", "images", "train") in message
  assert os.path.join("bdd100k", "images", "10k", "val") in message
  assert "download.visinf.tu-darmstadt.de" in message


# ---------------------------------------------------------------------------
# The build command.
# ---------------------------------------------------------------------------


def test_build_command_on_image_folder(tmp_path, capsys):
  manual = tmp_path / "manual"
  make_image_folder(manual)
  data_dir = tmp_path / "cmd"
  argv = ["image_folder", "--data_dir", str(data_dir), "--manual_dir", str(manual)]
  assert cli.call(cli_build, argv) == 0
  out, err = capsys.readouterr()
  assert str(data_dir / "image_folder" / "1.1.0") in out
  assert "train: 5 examples" in out and "test: 2 examples" in out
  assert '"num_skipped_files": 1' in out
  assert "Generating train examples" in err  # TFDS's progress bar is on.

  assert cli.call(cli_build, argv) == 0  # Second time: reused, said so.
  assert "already built" in capsys.readouterr().out
  assert cli.call(cli_build, argv + ["--overwrite"]) == 0
  out, err = capsys.readouterr()
  assert "already built" not in out and "Generating train examples" in err
  assert "train: 5 examples" in out


def test_build_command_errors(tmp_path, capsys):
  assert cli.call(cli_build, ["no_such_set"]) == errors.EXIT_USER_ERROR
  err = capsys.readouterr().err
  assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
  for name in ("mnist_single", "mnist_multiple", "celeba_gender", "gta5_bdd", "image_folder"):
    assert name in err
  with pytest.raises(build_lib.UnknownDatasetError, match="valid names: mnist_single"):
    build_lib.build("no_such_set")

  empty = tmp_path / "manual"
  (empty / "trainA").mkdir(parents=True)
  status = cli.call(
    cli_build, ["image_folder", "--data_dir", str(tmp_path / "d"), "--manual_dir", str(empty)]
  )
  assert status == 1
  assert "trainB" in capsys.readouterr().err


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
  domains = {
    "trainA": ("astronaut", "coffee", "chelsea", "rocket"),
    "trainB": ("camera", "coins", "moon", "page"),
    "testA": ("hubble_deep_field", "immunohistochemistry", "colorwheel"),
    "testB": ("grass", "gravel", "brick"),
  }
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
  assert any(link in w and "dangling symbolic link" in w for w in logged_warnings(caplog))
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
  assert any(
    "test split has 3 pairs, fewer than config.train.num_image_examples = 4" in w
    for w in logged_warnings(caplog)
  )


@pytest.mark.slow
def test_tiny_photo_dataset_trains_to_the_end(photo_folder, tmp_path):
  data_dir, _ = photo_folder
  config = tiny_config(
    data_dir, **{"stage1.num_iterations": 1, "stage2.num_iterations": 1, "train.image_every": 1}
  )
  config.dataset = "image_folder"
  config.data.image_size = (32, 32)
  result = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert result["status"] == "done"
  grid = np.asarray(
    Image.open(tmp_path / "run" / "stage2" / "images" / "translate_a2b_0000001.png")
  )
  # One row per test pair, enlarged 4x (32 -> 128 px) under the titles.
  assert grid.shape[0] == grids.TITLE_HEIGHT + 4 * (3 * (32 + 2) + 2)
