"""Orbax checkpoints: asynchronous saves, keep-last-N, exact restore, preemption.

A checkpoint holds the `GANState` (parameters, both optimizer states, EMA,
F, step) and a small JSON `meta` (stage, iteration, data position). Orbax
writes each step to a temporary directory and renames it only when complete,
so a save cut short by SIGKILL is never listed, let alone loaded.

A checkpoint damaged afterwards (a disk fault, a half-finished copy between
buckets) is another matter: `Checkpointer.restore_latest` reads the newest one
and, when it cannot be read, warns with the step and the reason and falls back
to the next older one, saying which it used (`fallback=False`: stop with an
error instead). A checkpoint whose stored arrays do not fit the networks
(another config) is not damage: that stops with `CheckpointMismatchError`
whatever `fallback` says, since older checkpoints of the same run would not fit
either.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import jax
import orbax.checkpoint as ocp
from etils import epath

from egsc_jax import errors, paths, sharding

DAMAGED_DIR = "damaged_checkpoints"  # next to checkpoints/, see restore_latest


def _write_replicated_arrays_once_on_cpu() -> None:
  """On CPU devices, a replicated array is written by its first replica only.

  Orbax's default on TPU and CPU (not GPU) splits a replicated array's write
  among its replicas, which pays off when the replicas are accelerators on many
  hosts. On CPU devices, which all live in the host's memory, it only adds a
  slice per array and replica: on the tests' 8 CPU devices a save of the
  tiny stage-1 state took 1.7 s (6.8 s the first time, compiling the slices)
  and takes 0.7 s without (docs/benchmarks.md). Only who writes changes, not
  what is stored: checkpoints restore across platforms as before.
  Registered in orbax's global type-handler registry (the handler that
  StandardSave uses for jax.Array), once per process, only on CPU.
  """
  if jax.default_backend() != "cpu":
    return
  ocp.type_handlers.register_type_handler(
    jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=False), override=True
  )


class CheckpointError(errors.UserError):
  """No usable checkpoint; the message names the directory, steps and reasons."""


class CheckpointMismatchError(CheckpointError, ValueError):
  """A readable checkpoint whose arrays do not fit the networks being restored."""


class UnreadableCheckpointError(CheckpointError):
  """One checkpoint's files cannot be read (`step`, `reason`)."""

  def __init__(self, directory: Any, step: int, reason: str):
    self.step, self.reason = step, reason
    super().__init__(f"checkpoint {step} in {directory} cannot be read: {reason}")


def _innermost(e: BaseException) -> str:
  """The root cause of an Orbax/TensorStore error, on one line: the outer ones
  are generic ('Encountered error while reading array index ...')."""
  while (e.__cause__ or e.__context__) is not None:
    e = e.__cause__ or e.__context__
  text = " ".join(str(e).split()) or "no message"
  return f"{type(e).__name__}: {text[:400]}"


def _leaf_shapes(tree: Any) -> dict[str, tuple]:
  """{'g_params/decoder_a/...': shape} of a state, an abstract state or Orbax
  metadata alike (dataclass fields, dict keys and sequence indices as names)."""
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    parts = [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]
    out["/".join(parts)] = tuple(leaf.shape)
  return out


class Checkpointer:
  """One stage's checkpoints in `directory`."""

  def __init__(self, directory: str, *, keep: int | None, read_only: bool = False):
    """`read_only` opens another run's checkpoints without touching them: a
    writing manager deletes unfinished temporary directories when it opens,
    which would break the save in flight of a run still training there."""
    # Orbax needs absolute paths; cloud paths (gs://...) already are.
    self.directory = epath.Path(paths.absolute(directory))
    _write_replicated_arrays_once_on_cpu()
    options = ocp.CheckpointManagerOptions(
      max_to_keep=keep,
      create=not read_only,
      read_only=read_only,
      enable_async_checkpointing=not read_only,
      cleanup_tmp_directories=not read_only,
    )
    self._manager = ocp.CheckpointManager(
      self.directory, options=options, item_names=("state", "meta")
    )

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    """The steps of every checkpoint kept, ascending."""
    return sorted(int(s) for s in self._manager.all_steps())

  def save(self, step: int, state: Any, meta: dict) -> None:
    """Starts an asynchronous save; every process must call it."""
    self._manager.save(
      step,
      args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
      force=True,
    )

  def restore(self, step: int, abstract_state: Any = None) -> tuple[Any, dict]:
    """Restores `step` into the shapes, dtypes and shardings of `abstract_state`
    (a GANState of ShapeDtypeStructs); without it, as a plain tree of arrays."""
    out = self._manager.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()
      ),
    )
    return out["state"], dict(out["meta"])

  def check_fits(self, step: int, abstract_state: Any) -> None:
    """Compares the stored tree of `step` (its metadata) with `abstract_state`.

    Raises:
      CheckpointMismatchError: other keys or other shapes (the message says which).
      Whatever reading the metadata raises, when it is damaged.
    """
    stored = _leaf_shapes(
      ocp.StandardCheckpointHandler().metadata(self.directory / str(step) / "state")
    )
    wanted = _leaf_shapes(abstract_state)
    missing = sorted(set(wanted) - set(stored))
    extra = sorted(set(stored) - set(wanted))
    shapes = [
      f"{k} {stored[k]} (expected {wanted[k]})"
      for k in sorted(wanted)
      if k in stored and stored[k] != wanted[k]
    ]
    if missing or extra or shapes:
      parts = (
        [f"missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else "")]
        if missing
        else []
      )
      parts += (
        [f"unexpected {', '.join(extra[:3])}" + (" ..." if len(extra) > 3 else "")] if extra else []
      )
      parts += (
        [f"shapes {'; '.join(shapes[:3])}" + (" ..." if len(shapes) > 3 else "")] if shapes else []
      )
      raise CheckpointMismatchError(
        f"checkpoint {step} in {self.directory} holds other arrays than the networks "
        f"being restored: {'; '.join(parts)}"
      )

  def read(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
    """`restore` that tells damage from a config mismatch.

    Raises:
      CheckpointMismatchError: readable, but for other networks.
      UnreadableCheckpointError: a file of the checkpoint cannot be read; the
        reason names the part (metadata, meta JSON, arrays) and the root cause.
    """
    part = "its state metadata"
    try:
      self.check_fits(step, abstract_state)
      part = "its meta JSON"
      meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))[
        "meta"
      ]
      part = "its arrays"
      state = self._manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state))
      )["state"]
    except CheckpointMismatchError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      # Orbax and TensorStore raise anything from JSONDecodeError to a bare
      # Exception for damaged files; the metadata check above has already
      # ruled out a config mismatch.
      raise UnreadableCheckpointError(self.directory, step, f"{part}: {_innermost(e)}") from e
    return state, dict(meta)

  def restore_latest(
    self, abstract_state: Any, *, fallback: bool = True, set_aside: bool = False
  ) -> tuple[int, Any, dict] | None:
    """(step, state, meta) of the newest readable checkpoint; None when there is none.

    Args:
      abstract_state: shapes, dtypes and shardings to restore into.
      fallback: when the newest cannot be read, warn (step and reason) and try
        the next older one; False raises UnreadableCheckpointError at once.
      set_aside: move the unreadable newer checkpoints to ../damaged_checkpoints/
        (training does, so that it can save those steps again; process 0 moves,
        the others wait). Nothing is moved unless a readable one was found.
    Raises:
      CheckpointMismatchError: the checkpoints are for other networks.
      UnreadableCheckpointError: `fallback` is off and the newest is unreadable.
      CheckpointError: none of the checkpoints can be read.
    """
    steps = sorted(self.all_steps(), reverse=True)
    failed: list[UnreadableCheckpointError] = []
    for step in steps:
      try:
        state, meta = self.read(step, abstract_state)
      except UnreadableCheckpointError as e:
        if not fallback:
          raise UnreadableCheckpointError(
            self.directory, step, e.reason + " (falling back to an older checkpoint is turned off)"
          ) from e
        logging.warning("%s; trying the next older checkpoint", e)
        failed.append(e)
        continue
      if failed:
        logging.warning(
          "using checkpoint %d in %s instead of the unreadable newer %s",
          step,
          self.directory,
          ", ".join(str(f.step) for f in failed),
        )
        if set_aside:
          self._set_aside([f.step for f in failed])
      return step, state, meta
    if failed:
      raise CheckpointError(
        f"none of the {len(failed)} checkpoints in {self.directory} can be read: "
        + "; ".join(f"{f.step}: {f.reason}" for f in failed)
        + ". Move the directory away to start this stage afresh."
      )
    return None

  def _set_aside(self, steps: list[int]) -> None:
    if jax.process_index() == 0:
      target = self.directory.parent / DAMAGED_DIR
      target.mkdir(parents=True, exist_ok=True)
      for step in steps:
        dest, n = target / str(step), 1
        while dest.exists():
          dest, n = target / f"{step}.{n}", n + 1
        (self.directory / str(step)).rename(dest)
        logging.warning("moved the unreadable checkpoint %d to %s", step, dest)
    sharding.sync_processes("egsc_jax.checkpointing.set_aside")
    self._manager.reload()

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
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), abstract)


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
  errors only, so progress lines stay readable.

  A full or read-only disk fails each of a save's writer tasks, and each logs
  its traceback (Orbax's threads, asyncio's unretrieved tasks): about a hundred
  for one checkpoint. The first such record is kept, as one line naming the
  path and the cause; the rest are dropped. The command's own error line says
  the same at the end.
  """

  def __init__(self):
    super().__init__()
    self._storage_fault_logged = False

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno < logging.WARNING:
      return "/orbax/" not in record.pathname
    if record.levelno < logging.ERROR:
      return True
    exc = record.exc_info[1] if record.exc_info else None
    fault = errors.storage_fault(exc if exc is not None else Exception(record.getMessage()))
    if fault is None:
      return True
    if self._storage_fault_logged:
      return False
    self._storage_fault_logged = True
    record.msg, record.args = "a checkpoint writer failed: %s", (errors.one_line(str(fault)),)
    record.exc_info = record.exc_text = None
    return True


def quiet_orbax_logs() -> None:
  """Installs the filter on the root logger's handlers (each command calls it once)."""
  for handler in logging.getLogger().handlers:
    handler.addFilter(_QuietOrbax())
