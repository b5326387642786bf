"""Peak memory and time of one native-size translation through the Python API.

  # the tiny model (ngf 8, 1+1 residual blocks) on a 1-megapixel photo
  python benchmarks/translate_memory.py --config configs/celeba_gender.py:tiny --megapixels 1

  # the paper-size generator (ngf 64) on 12 megapixels, in tiles (the default)
  python benchmarks/translate_memory.py --config configs/celeba_gender.py --megapixels 12

  # the same untiled (--tile_size 0), as before tiling existed
  python benchmarks/translate_memory.py --config configs/celeba_gender.py \
      --megapixels 4 --tile_size 0

One process per measurement (peak RSS is per process): builds the config's
networks with freshly initialised parameters (memory and time do not depend on
their values), then `Translator(..., native_size=True).translate` of one random
square source of that many megapixels with one exemplar, as `translate
--native_size [--tile_size]` does. Prints one JSON line: pixels, seconds for the first call
(compile included) and for a second call, and the process's peak resident
memory (ru_maxrss) before and after. Runs without TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from egsc_jax import api, config_lib, tiling  # noqa: E402
from egsc_jax import state as state_lib  # noqa: E402
from egsc_jax.models import build_models  # noqa: E402


def peak_rss_gb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/celeba_gender.py:tiny")
  parser.add_argument("--megapixels", type=float, default=1.0)
  parser.add_argument("--batch_size", type=int, default=api.DEFAULT_BATCH_SIZE)
  parser.add_argument("--repeat", type=int, default=1, help="timed calls after the first")
  parser.add_argument(
    "--tile_size", type=int, default=tiling.DEFAULT_TILE_SIZE, help="tile core side; 0: untiled"
  )
  args = parser.parse_args()

  config = config_lib.load_file(args.config)
  models = build_models(config.model)
  size = tuple(config.data.image_size)
  tx = state_lib.adam(b1=0.5, b2=0.999, eps=1e-8)
  key = jax.random.key(0)
  s1 = jax.jit(lambda k: state_lib.init_stage1(models, k, image_shape=size, tx=tx, ema=False))(key)
  frozen = state_lib.exemplar_params_from_stage1(s1.g_params)
  s2 = jax.jit(
    lambda k: state_lib.init_stage2(models, k, image_shape=size, tx=tx, frozen=frozen, ema=False)
  )(key)
  translator = api.Translator(
    models,
    s2.g_params,
    frozen,
    image_size=size,
    native_size=True,
    batch_size=args.batch_size,
    tile_size=args.tile_size or None,
  )
  align = 2**models.generator.n_downsample
  # A multiple of the down-sampling, so that the network runs at this size.
  side = int(round((args.megapixels * 1e6) ** 0.5)) // align * align
  tiled = tiling.needs_tiles((side, side), models, args.tile_size or None)
  margin = tiling.halo(models)
  rng = np.random.default_rng(0)
  source = rng.integers(0, 256, (side, side, 3), np.uint8)
  exemplar = rng.integers(0, 256, size + (3,), np.uint8)
  before = peak_rss_gb()
  t0 = time.perf_counter()
  out = translator.translate([source], [exemplar], "a2b")
  first = time.perf_counter() - t0
  again = []
  for _ in range(args.repeat):
    t0 = time.perf_counter()
    translator.translate([source], [exemplar], "a2b")
    again.append(time.perf_counter() - t0)
  assert out[0].shape == (1, side, side, 3)
  print(
    json.dumps(
      dict(
        config=args.config,
        ngf=config.model.ngf,
        side=side,
        megapixels=round(side * side / 1e6, 2),
        batch_size=args.batch_size,
        tile_size=args.tile_size,
        tiles=len(tiling.tiles((side, side), core=args.tile_size, margin=margin, align=align))
        if tiled
        else 1,
        halo=margin,
        devices=jax.device_count(),
        first_call_s=round(first, 1),
        again_s=[round(t, 1) for t in again],
        peak_rss_before_gb=round(before, 2),
        peak_rss_gb=round(peak_rss_gb(), 2),
      )
    )
  )


if __name__ == "__main__":
  main()
