"""Two JAX processes on localhost (jax.distributed, gloo CPU collectives, 2
devices each) train the tiny config like one process on 4 devices fed the same
global batch; each reads only its share; only process 0 writes config, images
and metrics; and a resume after SIGKILLing both continues exactly."""
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
TIMEOUT = 600          # seconds per group of processes (a hang guard): killed after it
UMASK = {0: 0o022, 1: 0o077}   # process 1's files are 0600: who wrote what shows


def _port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def run_group(tmp_path, name, *, workdir, data_dir, num_processes, devices,
              stop_at=None, kill_after_stop=False, same_batch_as_processes=None):
  """Starts the processes of one run, waits for all; returns their records."""
  port = _port()
  # The runs of one layout compile the same programs: share a compilation cache.
  env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu",
         "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax_cache"),
         "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
  procs, outs = [], []
  for pid in range(num_processes):
    out = str(tmp_path / f"{name}_{pid}")
    spec = dict(process_id=pid, num_processes=num_processes, port=port, devices=devices,
                workdir=str(workdir), data_dir=data_dir, out=out, stop_at=stop_at,
                kill_after_stop=kill_after_stop,
                same_batch_as_processes=same_batch_as_processes, umask=UMASK[pid])
    log = open(out + ".log", "w")
    procs.append(subprocess.Popen(
        [sys.executable, os.path.join(HERE, "multiprocess_worker.py"), json.dumps(spec)],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=os.path.dirname(HERE)))
    outs.append(out)
  try:
    codes = [p.wait(timeout=TIMEOUT) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  expected = -9 if kill_after_stop else 0
  for out, code in zip(outs, codes):
    assert code == expected, f"{out}: exit {code}\n" + open(out + ".log").read()[-3000:]
  records = []
  for out in outs:
    with np.load(out + ".npz") as z:
      seen = z["seen"]
      leaves = [z[f"arr_{i}"] for i in range(len(z.files) - 1)]
    records.append(dict(json.load(open(out + ".json")), seen=seen, leaves=leaves))
  return records


@pytest.mark.slow
def test_two_processes_train_like_one(mnist_data_dir, tmp_path):
  two = run_group(tmp_path, "two", workdir=tmp_path / "two", data_dir=mnist_data_dir,
                  num_processes=2, devices=2)
  one = run_group(tmp_path, "one", workdir=tmp_path / "one", data_dir=mnist_data_dir,
                  num_processes=1, devices=4, same_batch_as_processes=2)
  p0, p1 = two
  assert p0["process_count"] == 2 and p0["devices"] == 4 and one[0]["devices"] == 4
  assert p0["status"] == p1["status"] == one[0]["status"] == "done"

  # Each process read its own share: its stream was opened for its index, and
  # the two shares hold different images; together they are the global batch.
  for i, p in enumerate(two):
    assert {(s["process_index"], s["process_count"]) for s in p["streams"]} == {(i, 2)}
  assert p0["seen"].shape[1] == p1["seen"].shape[1] == 4    # global batch 8 / 2
  assert not np.any(np.all(p0["seen"] == p1["seen"], axis=(2, 3, 4)))
  np.testing.assert_array_equal(np.concatenate([p0["seen"], p1["seen"]], axis=1),
                                one[0]["seen"])

  # The same result: both processes hold the same replicated state, and it is
  # the one-process run's up to the order of the cross-device sums. That order
  # changes gradients by rounding only (test_train's one-iteration check pins
  # them to 1e-5), but Adam turns a rounding-size change of a near-zero gradient
  # into a change of its step, about lr per step: after the tiny run's 15
  # stage-2 G steps an element may differ by up to ~2 lr 15 = 3e-4 (seen: 1.7e-4
  # on one element of a conv kernel, all others within 1e-5).
  config = tiny_config(mnist_data_dir)
  num_g_steps = config.stage2.num_iterations * config.stage2.g_steps   # 15
  for a, b in zip(p0["leaves"], p1["leaves"]):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(p0["leaves"], one[0]["leaves"]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=2 * config.optim.lr * num_g_steps)

  # Only process 0 (umask 022) wrote the workdir's files outside the checkpoints.
  workdir = tmp_path / "two"
  written = [p for p in workdir.rglob("*") if p.is_file() and "checkpoints" not in p.parts]
  names = {str(p.relative_to(workdir)) for p in written}
  assert "config.json" in names and "stage2/final_metrics.json" in names
  assert any(n.startswith("stage2/images/") for n in names)
  assert any(n.startswith("stage1/events.out.tfevents") for n in names)
  for p in written:
    assert stat.S_IMODE(p.stat().st_mode) == 0o644, p

  # SIGKILL both processes right after the stage-2 iteration-1 checkpoint, then
  # start both again: the run ends exactly where the uninterrupted one did.
  resumed = tmp_path / "resumed"
  run_group(tmp_path, "killed", workdir=resumed, data_dir=mnist_data_dir,
            num_processes=2, devices=2, stop_at=[2, 1], kill_after_stop=True)
  again = run_group(tmp_path, "again", workdir=resumed, data_dir=mnist_data_dir,
                    num_processes=2, devices=2)
  # Only stage 2's stream reopens, after 1 iteration of 1 D + g_steps G batches.
  g_steps = steps.step_config(tiny_config(mnist_data_dir), stage=2).g_steps
  assert [s["start_step"] for s in again[0]["streams"]] == [1 + g_steps]
  for a, b in zip(p0["leaves"], again[0]["leaves"]):
    np.testing.assert_array_equal(a, b)
