"""Two JAX processes on localhost (jax.distributed, gloo CPU collectives, 2
devices each) train the tiny config like one process on 4 devices fed the same
global batch; each reads only its share; only process 0 writes config, images
and metrics; and a two-process run SIGKILLed after a checkpoint and started
again ends where the uninterrupted one-process run does."""

import json
import os
import socket
import stat
import subprocess
import sys

import numpy as np
import pytest
from conftest import tiny_config  # pylint: disable=g-bad-import-order

from egsc_jax import steps

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 600  # seconds per group of processes (a hang guard): killed after it
UMASK = {0: 0o022, 1: 0o077}  # process 1's files are 0600: who wrote what shows


def _port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def run_group(
  tmp_path,
  name,
  *,
  workdir,
  data_dir,
  num_processes,
  devices,
  stop_at=None,
  kill_after_stop=False,
  same_batch_as_processes=None,
):
  """Starts the processes of one run, waits for all; returns their records."""
  port = _port()
  # The runs of one layout compile the same programs: share a compilation cache.
  env = {
    **os.environ,
    "XLA_FLAGS": "",
    "JAX_PLATFORMS": "cpu",
    "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax_cache"),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
  }
  procs, outs = [], []
  for pid in range(num_processes):
    out = str(tmp_path / f"{name}_{pid}")
    spec = dict(
      process_id=pid,
      num_processes=num_processes,
      port=port,
      devices=devices,
      workdir=str(workdir),
      data_dir=data_dir,
      out=out,
      stop_at=stop_at,
      kill_after_stop=kill_after_stop,
      same_batch_as_processes=same_batch_as_processes,
      umask=UMASK[pid],
    )
    log = open(out + ".log", "w")
    procs.append(
      subprocess.Popen(
        [sys.executable, os.path.join(HERE, "multiprocess_worker.py"), json.dumps(spec)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=os.path.dirname(HERE),
      )
    )
    outs.append(out)
  try:
    codes = [p.wait(timeout=TIMEOUT) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  expected = -9 if kill_after_stop else 0
  if any(code != expected for code in codes):
    # Every process's log: one process's failure is often another's hang.
    raise AssertionError(
      "\n".join(
        f"{out}: exit {code} (expected {expected})\n" + open(out + ".log").read()[-3000:]
        for out, code in zip(outs, codes)
      )
    )
  records = []
  for out in outs:
    with np.load(out + ".npz") as z:
      seen = z["seen"]
      leaves = [z[f"arr_{i}"] for i in range(len(z.files) - 1)]
    records.append(dict(json.load(open(out + ".json")), seen=seen, leaves=leaves))
  return records


@pytest.mark.slow
def test_two_processes_train_like_one(mnist_data_dir, tmp_path):
  # Two processes train, are SIGKILLed right after the stage-2 iteration-1
  # checkpoint, and are started again; one process on 4 devices, fed the same
  # global batches, trains uninterrupted. (Three runs, not four: a separate
  # uninterrupted two-process run would only repeat what the interrupted one
  # shows, and each run costs minutes on two cores.)
  workdir = tmp_path / "two"
  killed = run_group(
    tmp_path,
    "killed",
    workdir=workdir,
    data_dir=mnist_data_dir,
    num_processes=2,
    devices=2,
    stop_at=[2, 1],
    kill_after_stop=True,
  )
  again = run_group(
    tmp_path, "again", workdir=workdir, data_dir=mnist_data_dir, num_processes=2, devices=2
  )
  one = run_group(
    tmp_path,
    "one",
    workdir=tmp_path / "one",
    data_dir=mnist_data_dir,
    num_processes=1,
    devices=4,
    same_batch_as_processes=2,
  )
  p0, p1 = again
  assert p0["process_count"] == 2 and p0["devices"] == 4 and one[0]["devices"] == 4
  assert killed[0]["status"] == killed[1]["status"] == "stopped"
  assert p0["status"] == p1["status"] == one[0]["status"] == "done"

  # Each process read its own share: its streams were opened for its index; the
  # restarted run reopened only stage 2's, after 1 iteration of 1 D + g_steps G
  # batches. The two shares hold different images and, across the restart,
  # together they are the one-process run's global batches.
  for i in range(2):
    streams = killed[i]["streams"] + again[i]["streams"]
    assert {(s["process_index"], s["process_count"]) for s in streams} == {(i, 2)}
  g_steps = steps.step_config(tiny_config(mnist_data_dir), stage=2).g_steps
  assert [s["start_step"] for s in p0["streams"]] == [1 + g_steps]
  seen = [np.concatenate([killed[i]["seen"], again[i]["seen"]]) for i in range(2)]
  assert seen[0].shape[1] == seen[1].shape[1] == 4  # global batch 8 / 2
  assert not np.any(np.all(seen[0] == seen[1], axis=(2, 3, 4)))
  np.testing.assert_array_equal(np.concatenate(seen, axis=1), one[0]["seen"])

  # The same result: both processes hold the same replicated state, and it is
  # the one-process run's up to the order of the cross-device sums. That order
  # changes gradients by rounding only (test_train's one-iteration check pins
  # them to 1e-5), but Adam turns a rounding-size change of a near-zero gradient
  # into a change of its step, about lr per step: after the run's G steps an
  # element may differ by up to ~2 lr per step (seen: 1.7e-4 on one element of
  # a conv kernel after 15 steps, all others within 1e-5; on an Intel Xeon host,
  # 4.7e-4 on one element of magnitude 1.1, 4e-4 relative, the next ones
  # within 1e-5: the changed step feeds the following gradients). The
  # comparison covers the optimizer moments too, so a wrong batch or key after
  # the restart (moments off by the size of a gradient, order 1 relative)
  # still fails it.
  config = tiny_config(mnist_data_dir)
  num_g_steps = 2 * config.stage2.g_steps  # the worker's 2 stage-2 iterations
  for a, b in zip(p0["leaves"], p1["leaves"]):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(p0["leaves"], one[0]["leaves"]):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=2 * config.optim.lr * num_g_steps)

  # Only process 0 (umask 022) wrote the workdir's files outside the checkpoints.
  written = [p for p in workdir.rglob("*") if p.is_file() and "checkpoints" not in p.parts]
  names = {str(p.relative_to(workdir)) for p in written}
  assert "config.json" in names and "stage2/final_metrics.json" in names
  assert any(n.startswith("stage2/images/") for n in names)
  assert any(n.startswith("stage1/events.out.tfevents") for n in names)
  for p in written:
    assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
