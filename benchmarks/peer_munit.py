"""The peer's training iteration, timed: the official MUNIT (PyTorch) on the
card that `train_step.py --sweep` ran on, and the ratios issue 28 asks for.

  # a snapshot of https://github.com/NVlabs/MUNIT, taken at run time: its
  # licence (CC BY-NC-SA) keeps it out of this repository
  python benchmarks/peer_munit.py --munit_dir=MUNIT --json_out=peer.json
  # our sweep's JSON beside it: the two ratios of docs/benchmarks.md
  python benchmarks/peer_munit.py --compare sweep.json peer.json
  # both, and our sweep first, in one command on one card (about 8 minutes)
  bash benchmarks/gpu_comparison.sh MUNIT OUT

The iteration is MUNIT's own `MUNIT_Trainer`, as its train.py loop runs it
(cudnn.benchmark on, `update_learning_rate()`, `dis_update(x_a, x_b, hp)`,
`gen_update(x_a, x_b, hp)`) on one batch of each domain, with the
hyper-parameters of its `configs/edges2handbags_folder.yaml` (vgg_w 0 there,
so no VGG file is needed) at the crop size of each row. The inputs are random
[-1, 1] tensors already on the device (no data loading, as in our sweep).
After --warmup untimed iterations, --iters are timed between two
`torch.cuda.synchronize()`; images/s = 2 x batch / seconds per iteration
(both domains), the count of the 2026-11-26 H200 figures in issue 28. Each
size and batch runs in float32 and under `torch.autocast(dtype=bfloat16)`.

Two things a current PyTorch needs, neither in the iteration: MUNIT's
`utils.py` imports `torch.utils.serialization.load_lua` (removed from
PyTorch; MUNIT used it only to convert the Lua VGG file), so a stand-in
module that raises if called is registered first (as for torchvision and
PIL where they are not installed: MUNIT imports them for data loading); and `--device=cpu` (this
script's own check on a machine without a GPU) makes `Tensor.cuda()`, which
the trainer calls on its noise, return the tensor itself. On a GPU nothing is
patched. `--compare` needs neither PyTorch nor JAX.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pathlib
import subprocess
import sys
import time
import types

CONFIG = "configs/edges2handbags_folder.yaml"
# The rows the targets compare (issue 28): our 256x512 bf16 iteration against
# the card's conv ceiling, our best images/s at 256x256 against MUNIT's.
TARGET_SHARE_OF_CEILING = 0.5
TARGET_SPEEDUP = 3.0


class _Unused(types.ModuleType):
  """A module MUNIT imports but the timed iteration never uses."""

  def __getattr__(self, attr):
    if attr.startswith("__"):
      raise AttributeError(attr)
    return _Unused(f"{self.__name__}.{attr}")

  def __call__(self, *args, **kwargs):
    raise RuntimeError(f"{self.__name__} is not installed here; the benchmark does not need it")


def _import_munit(munit_dir: pathlib.Path, *, cpu: bool):
  """MUNIT's trainer module, imported from its snapshot."""
  import torch  # pylint: disable=g-import-not-at-top

  if not (munit_dir / "trainer.py").is_file():
    raise SystemExit(f"--munit_dir={munit_dir}: no trainer.py (a NVlabs/MUNIT checkout?)")
  stand_in = types.ModuleType("torch.utils.serialization")

  def load_lua(*_args, **_kwargs):
    raise RuntimeError("load_lua is gone from PyTorch; this benchmark runs MUNIT with vgg_w 0")

  stand_in.load_lua = load_lua
  sys.modules.setdefault("torch.utils.serialization", stand_in)
  # MUNIT's utils.py and data.py import torchvision and PIL for data loading
  # and image files, which the iteration does not use; a machine with PyTorch
  # alone (a lent GPU) gets stand-ins that fail if anything does use them.
  for name in ("torchvision", "torchvision.transforms", "torchvision.utils", "PIL", "PIL.Image"):
    try:
      importlib.import_module(name)
    except ImportError:
      sys.modules[name] = _Unused(name)
  if cpu:
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
  sys.path.insert(0, str(munit_dir))
  import trainer  # pylint: disable=g-import-not-at-top,import-outside-toplevel

  return trainer


def hyperparameters(munit_dir: pathlib.Path, *, size: tuple[int, int], batch: int, tiny: bool):
  """MUNIT's edges2handbags hyper-parameters at this row's crop and batch."""
  import yaml  # pylint: disable=g-import-not-at-top

  hp = yaml.safe_load((munit_dir / CONFIG).read_text())
  hp.update(batch_size=batch, crop_image_height=size[0], crop_image_width=size[1])
  hp["new_size"] = min(size)
  if tiny:  # this script's own check on a CPU: small networks, same code
    hp["gen"].update(dim=8, mlp_dim=16, n_res=1)
    hp["dis"].update(dim=8, num_scales=1)
    hp["display_size"] = 1
  return hp


def time_munit(trainer_module, hp: dict, *, device: str, dtype: str, warmup: int, iters: int):
  """Seconds per MUNIT training iteration (D update then G update)."""
  import torch  # pylint: disable=g-import-not-at-top

  model = trainer_module.MUNIT_Trainer(hp).to(device)
  shape = (hp["batch_size"], 3, hp["crop_image_height"], hp["crop_image_width"])
  x_a = torch.rand(shape, device=device) * 2 - 1
  x_b = torch.rand(shape, device=device) * 2 - 1
  sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

  def iteration():  # the body of MUNIT's train.py loop, without data loading or logging
    model.update_learning_rate()
    with torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
      model.dis_update(x_a, x_b, hp)
      model.gen_update(x_a, x_b, hp)

  for _ in range(warmup):
    iteration()
  sync()
  t0 = time.perf_counter()
  for _ in range(iters):
    iteration()
  sync()
  seconds = (time.perf_counter() - t0) / max(iters, 1)
  loss = float(model.loss_gen_total.detach())
  if loss != loss:  # NaN: a broken setting, not a time to quote
    raise RuntimeError(f"MUNIT's generator loss is NaN ({dtype}, {shape})")
  return seconds


def run(args) -> dict:
  import torch  # pylint: disable=g-import-not-at-top

  munit_dir = pathlib.Path(args.munit_dir)
  trainer_module = _import_munit(munit_dir, cpu=args.device == "cpu")
  torch.backends.cudnn.benchmark = True  # as MUNIT's train.py sets it
  name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
  commit = _git_head(munit_dir)
  rows = []
  t_start = time.perf_counter()
  for size in [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]:
    for batch in [int(b) for b in args.batches.split(",")]:
      for dtype in args.dtypes.split(","):
        row = dict(size=f"{size[0]}x{size[1]}", batch=batch, dtype=dtype)
        if time.perf_counter() - t_start > args.time_budget:
          rows.append(dict(row, note="skipped: time budget"))
          continue
        hp = hyperparameters(munit_dir, size=size, batch=batch, tiny=args.tiny)
        try:
          s = time_munit(
            trainer_module,
            hp,
            device=args.device,
            dtype=dtype,
            warmup=args.warmup,
            iters=args.iters,
          )
        except torch.cuda.OutOfMemoryError:
          torch.cuda.empty_cache()
          rows.append(dict(row, note="out of memory"))
          continue
        except RuntimeError as e:  # a row that cannot run here, e.g. bf16 AdaIN on a CPU
          rows.append(dict(row, note=f"failed: {str(e).splitlines()[0][:120]}"))
          continue
        peak = torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else None
        if args.device == "cuda":
          torch.cuda.reset_peak_memory_stats()
        rows.append(dict(row, seconds=s, images_per_s=2 * batch / s, peak_gib=peak))
  result = dict(
    peer="NVlabs/MUNIT MUNIT_Trainer",
    commit=commit,
    config=CONFIG,
    device=name,
    torch=torch.__version__,
    date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    rows=rows,
  )
  print(f"MUNIT ({result['commit'] or 'no git'}) on {name}, torch {torch.__version__}")
  print("| size | dtype | batch | s / iteration | images/s | peak GiB | note |")
  print("|---|---|---|---|---|---|---|")
  for r in rows:
    cells = [
      f"{r[k]:.4g}" if isinstance(r.get(k), float) else "n/a"
      for k in ("seconds", "images_per_s", "peak_gib")
    ]
    print(
      f"| {r['size']} | {r['dtype']} | {r['batch']} | "
      + " | ".join(cells)
      + f" | {r.get('note', '')} |"
    )
  return result


def _git_head(munit_dir: pathlib.Path) -> str | None:
  """The snapshot's commit, where it is a git checkout."""
  proc = subprocess.run(
    ["git", "-C", str(munit_dir), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
  )
  return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def compare(
  ours: dict, peer: dict, *, fast_size: str = "256x512", peer_size: str = "256x256"
) -> dict:
  """The two ratios of issue 28 from our sweep's JSON (`train_step.py --sweep
  --json_out`) and this script's.

  Returns:
    share_of_conv_ceiling: our best TFLOP/s at `fast_size` in bfloat16 over
      the card's bf16 3x3 conv fwd+bwd ceiling (target >= 0.5);
    speedup_over_peer: our best images/s at `peer_size` (any dtype and batch)
      over MUNIT's best at that size (target >= 3);
    each None where a side has no such row; and the rows they came from.
  """

  def best(rows, key, **match):
    found = [
      r
      for r in rows
      if r.get(key) is not None and all(str(r.get(k)) == str(v) for k, v in match.items())
    ]
    return max(found, key=lambda r: r[key]) if found else None

  ceiling = ours.get("conv_ceiling_tflops")
  fast = best(ours["rows"], "tflops", size=fast_size, dtype="bfloat16")
  ours_same = best(ours["rows"], "images_per_s", size=peer_size)
  peer_same = best(peer["rows"], "images_per_s", size=peer_size)
  return dict(
    device=ours.get("device"),
    peer_device=peer.get("device"),
    fast_size=fast_size,
    peer_size=peer_size,
    share_of_conv_ceiling=(fast["tflops"] / ceiling if fast and ceiling else None),
    speedup_over_peer=(
      ours_same["images_per_s"] / peer_same["images_per_s"] if ours_same and peer_same else None
    ),
    rows=dict(ours_fast_bf16=fast, ours_at_peer_size=ours_same, peer=peer_same),
  )


def compare_lines(c: dict) -> list[str]:
  def ratio(v, target):
    return (
      "n/a"
      if v is None
      else f"{v:.3g} (target >= {target:g}: {'met' if v >= target else 'not met'})"
    )

  return [
    f"ours on {c['device']}, MUNIT on {c['peer_device']}",
    f"our {c['fast_size']} bf16 TFLOP/s over the conv ceiling: "
    f"{ratio(c['share_of_conv_ceiling'], TARGET_SHARE_OF_CEILING)}",
    f"our best images/s at {c['peer_size']} over MUNIT's: "
    f"{ratio(c['speedup_over_peer'], TARGET_SPEEDUP)}",
  ]


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--munit_dir", help="a checkout of NVlabs/MUNIT (never committed here)")
  p.add_argument("--compare", nargs=2, metavar=("SWEEP_JSON", "PEER_JSON"))
  p.add_argument("--fast_size", default="256x512", help="--compare: our row against the ceiling")
  p.add_argument("--peer_size", default="256x256", help="--compare: the size both sides ran")
  p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
  p.add_argument("--sizes", default="256x256", help="HxW,...")
  p.add_argument("--batches", default="1,8,32")
  p.add_argument("--dtypes", default="float32,bfloat16")
  p.add_argument("--warmup", type=int, default=5)
  p.add_argument("--iters", type=int, default=20)
  p.add_argument("--time_budget", type=float, default=120.0, help="no row starts after this")
  p.add_argument("--tiny", action="store_true", help="small networks (a CPU check)")
  p.add_argument("--json_out")
  args = p.parse_args(argv)
  if args.compare:
    ours, peer = (json.loads(pathlib.Path(f).read_text()) for f in args.compare)
    result = compare(ours, peer, fast_size=args.fast_size, peer_size=args.peer_size)
    print("\n".join(compare_lines(result)))
  elif args.munit_dir:
    result = run(args)
  else:
    p.error("give --munit_dir or --compare")
  if args.json_out:
    pathlib.Path(args.json_out).write_text(json.dumps(result, indent=1))
  return result


if __name__ == "__main__":
  main()
