"""What the feature mask does inside a trained MNIST-Multiple model (issue 24's
hypotheses 1 and 4), measured on validation canvases without training.

  python benchmarks/mask_anatomy.py --study=OUT [--pairs=200]

OUT is a benchmarks/mask_study.py output: its config.json and full.msgpack (the
run with the mask). Prints one JSON object:

- `pattern_share` (hypothesis 1): the transfer block normalises m * c, the
  masked content, per channel. Split c into its spatial mean and the rest:
  m * c = mean(c) m + m (c - mean(c)). The first term is the mask's own pattern,
  scaled, and carries nothing of the content but its mean. `pattern_share` is
  Var(mean(c) m) / (Var(mean(c) m) + Var(m (c - mean(c)))) over the pixels of
  one canvas and channel (`mask_probe.pattern_share`); the median over canvases and
  channels is reported, with the share of (canvas, channel) pairs above 0.5.
  Near 1: after normalisation the decoder sees the mask, not the content.
- `polarity_correlation`: F is not sign-normalised, so its mask may say which
  way round a black/white canvas is, the information the sign-normalised
  encoder removes. Pearson correlation, per channel over canvases and pixels,
  between the mask of an A canvas and that of its inverse (-x); the mean over
  channels. Near 1: the mask ignores polarity.
- `reconstruction` (hypothesis 4, a shortcut): the L1 of x_AA and x_BB (the
  reconstructions stage 2 trains, with their own mask and statistics) as the
  model makes them, and again with the content replaced by its spatial mean
  (the mask kept), beside the L1 of the image's bare background. If the flat
  content rebuilds the canvas nearly as well, the mask carries the layout.
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import mask_study  # noqa: E402
import numpy as np  # noqa: E402

from egsc_jax import grids, steps, trained_run  # noqa: E402
from egsc_jax.eval import mask_probe  # noqa: E402
from egsc_jax.models import build_models  # noqa: E402


@functools.partial(jax.jit, static_argnames=("models", "domain"))
def _reconstruct(g_params, frozen, x, *, models, domain: str):
  """x_DD of stage 2 (no latent noise) twice, from the content code and from
  its spatial mean (the same mask and AdaIN statistics), with the two inputs.

  Returns:
    (x_DD, x_DD from the flat content, c, m): [N, H, W, 3] twice, then
    [N, h, w, C] twice.
  """
  mask, style = steps.conditioning(models, frozen, x, domain)

  def run(gen):
    _, c = gen.encode(x, domain, noise=False)
    flat = jnp.broadcast_to(c.mean(axis=(1, 2), keepdims=True), c.shape)
    decode = functools.partial(gen.decode, domain=domain, mask=mask, style=style)
    return decode(c), decode(flat), c, mask

  return models.generator.apply({"params": g_params}, method=run)


def background_l1(x: np.ndarray) -> np.ndarray:
  """Per image: the L1 of drawing every pixel in the canvas's most common colour."""
  out = []
  for image in np.asarray(x):
    colours, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
    out.append(np.abs(image - colours[np.argmax(counts)]).mean())
  return np.array(out)


def anatomy(models, params: dict, val: dict) -> dict:
  """The three measures of the module docstring on the canvases of `val`."""
  g, frozen = params["g_params"], params["frozen"]
  out: dict = {"reconstruction": {}}
  for domain in ("a", "b"):
    x = val[domain]
    x_hat, x_flat, c, m = (
      np.asarray(v) for v in _reconstruct(g, frozen, x, models=models, domain=domain)
    )
    share = mask_probe.pattern_share(c, m)
    out[f"pattern_share_{domain}"] = {
      "median": float(np.median(share)),
      "above_half": float(np.mean(share > 0.5)),
    }
    out["reconstruction"][domain] = {
      "l1": float(np.abs(x_hat - x).mean()),
      "l1_flat_content": float(np.abs(x_flat - x).mean()),
      "l1_bare_background": float(background_l1(x).mean()),
    }
    if domain == "a":
      mask_inverse, _ = steps.conditioning(models, frozen, -x, "a")
      out["polarity_correlation"] = float(
        mask_probe.channel_correlation(m, np.asarray(mask_inverse)).mean()
      )
  return out


def heatmap_grid(source: np.ndarray, mask: np.ndarray, *, channels: int = 6) -> np.ndarray:
  """Rows of source | mean mask | the `channels` channels that vary most over
  space (mean over the rows), each a heat map on its own scale (bright = high).

  Args:
    source: [N, H, W, 3] in [-1, 1].
    mask: [N, h, w, C], h and w dividing H and W.
  Returns:
    uint8, `grids.titled_grid` of N rows and channels + 2 columns.
  """
  m = mask_probe.upsample_to(np.asarray(mask, np.float32), source.shape[1:3])
  order = np.argsort(-m.var(axis=(1, 2)).mean(0))[:channels]
  rows = [
    [grids.to_uint8(x), grids.heatmap(mm.mean(-1))] + [grids.heatmap(mm[..., k]) for k in order]
    for x, mm in zip(source, m)
  ]
  titles = ["source", "mean"] + [f"ch {k}" for k in order]
  return grids.titled_grid(np.asarray(rows), titles)


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--study", required=True, help="a benchmarks/mask_study.py --out folder")
  p.add_argument("--pairs", type=int, default=200, help="validation pairs")
  p.add_argument(
    "--heatmaps",
    help="also write PREFIX_{a,b}.png: the first 4 sources of each domain beside "
    "heat maps of their mask (the mean and the 6 channels that vary most)",
  )
  args = p.parse_args(argv)
  from flax import serialization  # pylint: disable=g-import-not-at-top

  study = pathlib.Path(args.study)
  config = trained_run.config_from_json((study / "config.json").read_text())
  config.model.use_feature_mask = True  # the study's full run
  models = build_models(config.model)
  params = serialization.msgpack_restore((study / "full.msgpack").read_bytes())
  val = mask_study.canvases(config, {"validation": args.pairs})["validation"]
  result = anatomy(models, params, val)
  if args.heatmaps:
    for domain in ("a", "b"):
      mask, _ = steps.conditioning(models, params["frozen"], val[domain][:4], domain)
      grids.save_png(
        heatmap_grid(val[domain][:4], np.asarray(mask)), f"{args.heatmaps}_{domain}.png"
      )
  print(json.dumps(result, indent=1))
  return result


if __name__ == "__main__":
  main()
