"""One JAX process of tests/test_multiprocess.py (run as a script, not collected).

  python tests/multiprocess_worker.py SPEC_JSON

SPEC: {process_id, num_processes, port, devices, workdir, data_dir, out,
       stop_at: [stage, iteration] | null, kill_after_stop: bool,
       same_batch_as_processes: int | null, umask: int}.
Trains the tiny config with `train.train_and_evaluate`. Records, in OUT.npz, the
host-local batches this process's input stream yielded (the 'a' images) and
the final state's leaves; OUT.json gets the stream's process_index/count and
the run's status. `same_batch_as_processes=k` (one process only) feeds the run
the global batch a k-process run assembles: the k host-local streams
concatenated in process order, as `jax.make_array_from_process_local_data`
lays them out. `kill_after_stop` SIGKILLs the process once the stop
checkpoint is written, with no clean shutdown.
"""

import json
import logging
import os
import signal
import sys

spec = json.loads(sys.argv[1])
os.umask(spec["umask"])
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Timestamped progress in OUT.log: when the processes of a run drift apart, the
# logs of all of them show where.
logging.basicConfig(
  level=logging.INFO, force=True, format=f"%(asctime)s p{spec['process_id']} %(name)s %(message)s"
)
for noisy in ("absl", "jax._src", "orbax", "tensorflow"):
  logging.getLogger(noisy).setLevel(logging.WARNING)

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", spec["devices"])
jax.config.update("jax_cpu_collectives_implementation", "gloo")
if spec["num_processes"] > 1:
  jax.distributed.initialize(
    coordinator_address=f"127.0.0.1:{spec['port']}",
    num_processes=spec["num_processes"],
    process_id=spec["process_id"],
    initialization_timeout=120,
  )

import numpy as np  # noqa: E402
from conftest import tiny_config  # noqa: E402

from egsc_jax import sharding, train  # noqa: E402
from egsc_jax.data import input_pipeline  # noqa: E402

streams, seen = [], []
original = input_pipeline.train_batches


def recording(config, *, process_index=0, process_count=1, start_step=0):
  streams.append(
    dict(process_index=process_index, process_count=process_count, start_step=start_step)
  )
  k = spec["same_batch_as_processes"]
  if k:
    parts = [
      original(config, process_index=i, process_count=k, start_step=start_step) for i in range(k)
    ]
    gen = (
      {key: np.concatenate([d[key] for d in draws]) for key in draws[0]} for draws in zip(*parts)
    )
  else:
    gen = original(
      config, process_index=process_index, process_count=process_count, start_step=start_step
    )
  for batch in gen:
    seen.append(batch["a"].copy())
    yield batch


input_pipeline.train_batches = recording
config = tiny_config(
  spec["data_dir"],
  **{
    "stage1.num_iterations": 1,
    "stage2.num_iterations": 2,
    "train.image_every": 2,
    "train.eval_every": 2,
    "train.eval_examples": 4,
    "train.num_image_examples": 2,
  },
)
stop_at = tuple(spec["stop_at"]) if spec["stop_at"] else None
result = train.train_and_evaluate(config, spec["workdir"], stop_at=stop_at)
leaves = [np.asarray(x.addressable_data(0)) for x in jax.tree.leaves(result["state"])]
np.savez(spec["out"] + ".npz", *leaves, seen=np.stack(seen))
with open(spec["out"] + ".json", "w") as f:
  json.dump(
    dict(
      status=result["status"],
      streams=streams,
      process_count=jax.process_count(),
      devices=jax.device_count(),
    ),
    f,
  )
if spec["kill_after_stop"]:
  # Both processes die together, once both wrote their records (a process left
  # alone would abort on losing the coordinator, and the exit status would race).
  sharding.sync_processes("multiprocess_worker.kill")
  os.kill(os.getpid(), signal.SIGKILL)
