"""Data parallelism: one `data` mesh axis over every device of every process.

Parameters and optimizer states are replicated; batches are sharded along
their batch axis. The same code runs on 1 CPU, 8 fake CPU devices in tests,
one GPU, or a multi-host TPU pod.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from egsc_jax import errors

DATA_AXIS = "data"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh named 'data' over `devices` (default: all devices of all processes)."""
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def stacked_batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding of a stack of batches [n_steps, B, H, W, C]: B split over 'data'."""
  return NamedSharding(mesh, P(None, DATA_AXIS))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding of one batch [B, H, W, C]."""
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(global_batch: int, mesh: Mesh) -> None:
  n = mesh.devices.size
  if global_batch % n or global_batch % jax.process_count():
    raise errors.ConfigError(
      f"config.batch_size={global_batch} must be divisible by the number of "
      f"devices ({n}) and of processes ({jax.process_count()})"
    )


def to_global(local: Any, sharding: NamedSharding, *, batch_axis: int) -> Any:
  """Host-local numpy arrays -> global jax.Arrays.

  Each process passes its own part (global batch / process count along
  `batch_axis`); the result has the global batch.
  """

  def one(x):
    x = np.asarray(x)
    shape = list(x.shape)
    shape[batch_axis] *= jax.process_count()
    return jax.make_array_from_process_local_data(sharding, x, tuple(shape))

  return jax.tree.map(one, local)


_SYNC_CALLS: dict[str, int] = {}


def sync_processes(name: str, *, timeout_s: int = 3600) -> None:
  """Waits until every process reached the call of the same `name` (a no-op
  with one process). For work one process does while the others wait: building
  the dataset, moving damaged checkpoints, the end of a run.

  Two steps. First the coordination service's barrier (jax.distributed's
  client, through orbax), which waits up to `timeout_s`: processes may arrive
  minutes apart. Then, with every process there, one all-device collective.
  On CPU (gloo) the first collective also connects the processes, and gloo
  gives up on a connection after a fixed short timeout: a collective that
  processes reach far apart fails with "Gloo context initialization failed:
  Connect timeout" (seen on a loaded 2-core machine).
  """
  if jax.process_count() == 1:
    return
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  # Barrier ids must be unique; every process makes the same calls in the same order.
  n = _SYNC_CALLS[name] = _SYNC_CALLS.get(name, 0) + 1
  key = f"{name}.{n}"
  ocp.multihost.get_barrier_sync_fn()(key=key, timeout_ms=timeout_s * 1000)
  multihost_utils.sync_global_devices(key)
