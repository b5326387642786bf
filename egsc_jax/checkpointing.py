"""Orbax checkpoints: asynchronous saves, keep-last-N, exact restore, preemption.

A checkpoint holds the `GANState` (parameters, both optimizer states, EMA,
F, step) and a small JSON `meta` (stage, iteration, data position). Orbax
writes each step to a temporary directory and renames it only when complete,
so a save cut short by SIGKILL is never listed, let alone loaded.
"""
from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import jax
import orbax.checkpoint as ocp
from etils import epath

from egsc_jax import paths


class Checkpointer:
  """One stage's checkpoints in `directory`."""

  def __init__(self, directory: str, *, keep: int | None, read_only: bool = False):
    """`read_only` opens another run's checkpoints without touching them: a
    writing manager deletes unfinished temporary directories when it opens,
    which would break the save in flight of a run still training there."""
    # Orbax needs absolute paths; cloud paths (gs://...) already are.
    self.directory = epath.Path(paths.absolute(directory))
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=not read_only, read_only=read_only,
        enable_async_checkpointing=not read_only, cleanup_tmp_directories=not read_only)
    self._manager = ocp.CheckpointManager(self.directory, options=options,
                                          item_names=("state", "meta"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any, meta: dict) -> None:
    """Starts an asynchronous save; every process must call it."""
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)

  def restore(self, step: int, abstract_state: Any = None) -> tuple[Any, dict]:
    """Restores `step` into the shapes, dtypes and shardings of `abstract_state`
    (a GANState of ShapeDtypeStructs); without it, as a plain tree of arrays."""
    out = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
    return out["state"], dict(out["meta"])

  def reached_preemption(self, step: int) -> bool:
    """True on every process once a multi-host preemption notice arrived."""
    return self._manager.reached_preemption(step)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def abstract_with_sharding(abstract: Any, sharding: jax.sharding.Sharding) -> Any:
  """ShapeDtypeStructs (from jax.eval_shape) carrying `sharding`, for restore."""
  return jax.tree.map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), abstract)


class SigtermFlag:
  """Turns SIGTERM (a preempted TPU VM or spot GPU) into a flag the loop polls,
  so the loop can finish a checkpoint and exit cleanly instead of dying mid-step."""

  def __init__(self):
    self._event = threading.Event()
    self._previous = None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)

  def _handle(self, signum, frame):
    logging.warning("SIGTERM received: saving a checkpoint and exiting.")
    self._event.set()

  def is_set(self) -> bool:
    return self._event.is_set()


class _QuietOrbax(logging.Filter):
  """Orbax logs every file it reads and writes at INFO; keep its warnings and
  errors only, so progress lines stay readable."""

  def filter(self, record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or "/orbax/" not in record.pathname


def quiet_orbax_logs() -> None:
  """Installs the filter on the root logger's handlers (each command calls it once)."""
  for handler in logging.getLogger().handlers:
    handler.addFilter(_QuietOrbax())
