"""Build time and disk size of each dataset, measured on stand-ins at the real file sizes.

  python benchmarks/build_time.py                       # every dataset
  python benchmarks/build_time.py --only celeba_gender gta5_bdd --num 40

mnist_single and mnist_multiple are built for real from the offline digits
(nothing to fake). celeba_gender, gta5_bdd and image_folder are built from
generated stand-ins in the real download layouts and at the real file sizes
(CelebA 178x218 JPEGs; GTA5 1914x1052 PNGs with palette labels; BDD100K
1280x720 JPEGs with label PNGs; 12-megapixel 3000x4000 JPEGs for image_folder),
`--num` of each (CelebA 10x); the stand-ins are smooth noise, which compresses about as a
photograph does, not exactly. Prints, per dataset, the build's wall time, its
size on disk and both per stored pair, and the full dataset's time and size
extrapolated linearly from those (FULL_PAIRS says which counts).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from egsc_jax.data import build as build_lib  # noqa: E402
from egsc_jax.data import images  # noqa: E402

# Stored pairs (train + test [+ validation]) of each full dataset, to extrapolate to.
FULL_PAIRS = {
  # Full MNIST from the idx files: about 52,500 + 7,500 + 10,000 pairs.
  "mnist_single": 70_000,
  "mnist_multiple": 70_000,
  # CelebA: train partition 162,770 images, about 94,500 female (the longer
  # gender list sets the train pairs); test 19,962, about 12,250 female.
  "celeba_gender": 94_500 + 12_250,
  # GTA5 24,466 train + 500 test pairs.
  "gta5_bdd": 24_966,
}


def smooth_noise(rng, height: int, width: int, *, grey: bool = False) -> Image.Image:
  """Noise upsampled 16x: compresses roughly like a photograph."""
  small = rng.integers(0, 256, (max(1, height // 16), max(1, width // 16), 3), np.uint8)
  image = Image.fromarray(small).resize((width, height), Image.BILINEAR)
  return image.convert("L") if grey else image


def write_celeba(root: pathlib.Path, num: int, rng) -> None:
  """`10 * num` 178x218 faces (small files), alternating male/female; 3 in 4
  train, the rest test."""
  num *= 10
  (root / "img_align_celeba").mkdir(parents=True)
  attributes = [f"Attr{i}" for i in range(39)] + ["Male"]
  attr = [str(num), " ".join(attributes)]
  partition = []
  for i in range(num):
    name = f"{i + 1:06d}.jpg"
    smooth_noise(rng, 218, 178).save(root / "img_align_celeba" / name, quality=95)
    attr.append(name + " " + " ".join(["-1"] * 39 + ["1" if i % 2 else "-1"]))
    partition.append(f"{name} {2 if i % 8 < 2 else 0}")
  (root / "list_attr_celeba.txt").write_text("\n".join(attr) + "\n")
  (root / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")


def write_gta5_bdd(root: pathlib.Path, num: int, rng) -> None:
  """`num` GTA5 frames with labels, `num` BDD train and `num // 4` val images with labels."""
  for sub in ("gta5/images", "gta5/labels"):
    (root / sub).mkdir(parents=True)
  palette = list(rng.integers(0, 256, 768))
  for i in range(num):
    smooth_noise(rng, 1052, 1914).save(root / "gta5" / "images" / f"{i + 1:05d}.png")
    label = Image.fromarray(
      rng.integers(0, 34, (1052 // 16, 1914 // 16), np.uint8)
      .repeat(16, 0)
      .repeat(16, 1)[:1052, :1914],
      mode="P",
    )
    label.putpalette(palette)
    label.save(root / "gta5" / "labels" / f"{i + 1:05d}.png")
  for split, count in (("train", num), ("val", max(1, num // 4))):
    (root / "bdd100k/seg/images" / split).mkdir(parents=True)
    (root / "bdd100k/seg/labels" / split).mkdir(parents=True)
    for i in range(count):
      stem = f"{split}{i:05d}"
      smooth_noise(rng, 720, 1280).save(
        root / "bdd100k/seg/images" / split / f"{stem}.jpg", quality=90
      )
      Image.fromarray(rng.integers(0, 19, (720, 1280), np.uint8), mode="L").save(
        root / "bdd100k/seg/labels" / split / f"{stem}_train_id.png"
      )


def write_image_folder(root: pathlib.Path, num: int, rng) -> None:
  """`num` 12-megapixel JPEGs per training domain, `num // 4` per test domain."""
  for folder in ("trainA", "trainB", "testA", "testB"):
    (root / folder).mkdir(parents=True)
    for i in range(num if folder.startswith("train") else max(1, num // 4)):
      smooth_noise(rng, 3000, 4000).save(root / folder / f"{i:05d}.jpg", quality=90)


WRITERS = {
  "celeba_gender": write_celeba,
  "gta5_bdd": write_gta5_bdd,
  "image_folder": write_image_folder,
}


def disk_bytes(path: str) -> int:
  return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file())


def measure(name: str, *, num: int, scratch: str) -> None:
  manual_dir = None
  if name in WRITERS:
    manual_dir = os.path.join(scratch, name, "manual")
    start = time.perf_counter()
    WRITERS[name](pathlib.Path(manual_dir), num, np.random.default_rng(0))
    print(
      f"{name}: stand-ins written in {time.perf_counter() - start:.1f} s "
      f"({disk_bytes(manual_dir) / 2**20:.1f} MiB)",
      flush=True,
    )
  data_dir = os.path.join(scratch, name, "tfds")
  start = time.perf_counter()
  builder = build_lib.build(name, data_dir=data_dir, manual_dir=manual_dir)
  seconds = time.perf_counter() - start
  pairs = sum(s.num_examples for s in builder.info.splits.values())
  size = disk_bytes(builder.data_dir)
  line = (
    f"{name} {builder.version}: {pairs} pairs built in {seconds:.1f} s, "
    f"{size / 2**20:.1f} MiB on disk; per pair {1000 * seconds / pairs:.1f} ms, "
    f"{size / pairs / 2**10:.1f} KiB"
  )
  if name in FULL_PAIRS:
    full = FULL_PAIRS[name]
    line += (
      f"; {full:,} pairs extrapolated: {seconds / pairs * full / 60:.0f} min, "
      f"{size / pairs * full / 2**30:.2f} GiB"
    )
  print(line, flush=True)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument(
    "--only",
    nargs="*",
    default=None,
    help="datasets (default: " + ", ".join(build_lib.BUILDER_MODULES) + ")",
  )
  parser.add_argument(
    "--num", type=int, default=40, help="stand-in images per folder (celeba: 10x that in all)"
  )
  args = parser.parse_args(argv)
  print(f"{os.cpu_count()} CPUs, {images.default_num_threads()} decoding threads", flush=True)
  with tempfile.TemporaryDirectory(prefix="egsc_build_time_") as scratch:
    for name in args.only or build_lib.BUILDER_MODULES:
      measure(name, num=args.num, scratch=scratch)


if __name__ == "__main__":
  main()
