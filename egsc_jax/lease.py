"""One training per workdir: an exclusive lease, `WORKDIR/lease.json`.

Training takes the lease before it writes anything (`hold(workdir)`), renews a
heartbeat in it every `HEARTBEAT_S` seconds from a daemon thread, and deletes it
when it ends. The file says who holds it:

  {"id": <random>, "host": ..., "pid": ..., "pid_start": <ticks since boot, or
   null>, "started": <unix time>, "heartbeat": <unix time>}

Taking it is a create-if-absent write, which both kinds of path do atomically:
`O_CREAT | O_EXCL` locally, and on gs:// an upload with the generation
precondition `ifGenerationMatch=0` (google-cloud-storage; GCS answers 412 when
the object exists). A second training finds the file and refuses with
`WorkdirBusyError`, naming the holder, unless the lease is stale:

- the holder ran on this host and its process is gone (pid absent, or reused
  by a process that started at another time): taken over at once;
- otherwise (another host) the heartbeat is watched: a live holder renews it
  within `HEARTBEAT_S` (then: refused); one that stays unchanged for `EXPIRY_S`
  after its last beat is expired, and taken over.

So a run killed by SIGKILL or a preempted VM never blocks the resume (at most
`EXPIRY_S` of waiting when the resume runs on another host), and a double launch
is refused. Taking over a stale lease is itself race-free: the stale file is
removed only if it is still the one judged stale (a rename locally, a
generation-conditional delete on gs://), then the create-if-absent write decides.
Before each checkpoint training calls `check_held`: a workdir deleted during the
run (its writers would recreate it, empty) or a lease taken over stops it.
Readers (translate, evaluate, the demo) ignore the lease.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Iterator

from egsc_jax import errors, paths

LEASE_FILE = "lease.json"
HEARTBEAT_S = 30.0
EXPIRY_S = 300.0


class WorkdirBusyError(errors.UserError):
  """Another training holds the workdir's lease."""


# ----------------------------------------------------------------------------
# The file operations, local and gs://
# ----------------------------------------------------------------------------


class _Local:
  """Create-if-absent, read, replace and conditional removal of a local file."""

  def __init__(self, path: str):
    self.path = path

  def create(self, text: str) -> bool:
    """Writes `text` only if the file is absent; False when it exists."""
    try:
      fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
      return False
    with os.fdopen(fd, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    return True

  def read(self) -> tuple[str, Any] | None:
    """(text, version) or None when absent; version is what `remove_if` checks."""
    try:
      with open(self.path) as f:
        text = f.read()
    except FileNotFoundError:
      return None
    return text, text

  def replace(self, text: str, version: Any) -> Any:
    """Replaces the file (atomically) if it holds `version`; returns the new
    version, or None when the file changed. Check and replace are two steps
    here: locally only a process on this host, judged by its pid, takes over."""
    current = self.read()
    if current is None or current[1] != version:
      return None
    tmp = f"{self.path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w") as f:
      f.write(text)
    os.replace(tmp, self.path)
    return text

  def remove_if(self, version: Any) -> bool:
    """Removes the file if it still holds `version`; False if it changed.

    The file is first renamed to a name of our own (atomic: of two takers, one
    gets it), then checked; a file that changed meanwhile is put back.
    """
    mine = f"{self.path}.{uuid.uuid4().hex}.taken"
    try:
      os.rename(self.path, mine)
    except FileNotFoundError:
      return False
    with open(mine) as f:
      taken = f.read()
    if taken != version:
      with contextlib.suppress(FileExistsError):
        os.link(mine, self.path)
      os.unlink(mine)
      return False
    os.unlink(mine)
    return True


class _Gcs:
  """The same on gs:// through google-cloud-storage's generation preconditions."""

  def __init__(self, path: str):
    from google.cloud import storage  # pylint: disable=g-import-not-at-top

    bucket, _, name = path.removeprefix("gs://").partition("/")
    self.path = path
    self._blob = storage.Client().bucket(bucket).blob(name)

  def create(self, text: str) -> bool:
    from google.api_core import exceptions  # pylint: disable=g-import-not-at-top

    try:
      self._blob.upload_from_string(text, content_type="application/json", if_generation_match=0)
    except exceptions.PreconditionFailed:
      return False
    return True

  def read(self) -> tuple[str, Any] | None:
    from google.api_core import exceptions  # pylint: disable=g-import-not-at-top

    try:
      text = self._blob.download_as_text()
    except exceptions.NotFound:
      return None
    return text, self._blob.generation

  def replace(self, text: str, version: Any) -> Any:
    from google.api_core import exceptions  # pylint: disable=g-import-not-at-top

    try:
      self._blob.upload_from_string(
        text, content_type="application/json", if_generation_match=version
      )
    except exceptions.PreconditionFailed:
      return None
    return self._blob.generation

  def remove_if(self, version: Any) -> bool:
    from google.api_core import exceptions  # pylint: disable=g-import-not-at-top

    try:
      self._blob.delete(if_generation_match=version)
    except (exceptions.PreconditionFailed, exceptions.NotFound):
      return False
    return True


def _file(workdir: str) -> _Local | _Gcs:
  path = os.path.join(workdir, LEASE_FILE)
  return _Gcs(path) if path.startswith("gs://") else _Local(path)


# ----------------------------------------------------------------------------
# Who holds it, and is that holder alive
# ----------------------------------------------------------------------------


def _process_start(pid: int) -> int | None:
  """The start time of process `pid` in clock ticks since boot (Linux), None
  where /proc is not there; tells a reused pid from the holder."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      # Field 22; the command name (field 2) may hold spaces, so count from ')'.
      return int(f.read().rsplit(")", 1)[1].split()[19])
  except (OSError, IndexError, ValueError):
    return None


def _pid_alive(pid: int, start: int | None) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass  # another user's process: it exists
  return start is None or _process_start(pid) in (None, start)


def describe(holder: dict) -> str:
  started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder.get("started", 0)))
  return f"host {holder.get('host')} pid {holder.get('pid')}, started {started}"


def _new_holder() -> dict:
  now = time.time()
  return dict(
    id=uuid.uuid4().hex,
    host=socket.gethostname(),
    pid=os.getpid(),
    pid_start=_process_start(os.getpid()),
    started=now,
    heartbeat=now,
  )


def _stale_reason(f, holder: dict, version: Any) -> str | None:
  """Why the lease `holder` is stale, or None when its holder is alive.

  On this host the process tells at once; for another host, waits until its
  heartbeat changes (alive) or `EXPIRY_S` have passed since it (stale).
  """
  if holder.get("host") == socket.gethostname():
    if _pid_alive(int(holder.get("pid", -1)), holder.get("pid_start")):
      return None
    return f"its process {holder.get('pid')} on this host is gone"
  while True:
    age = time.time() - float(holder.get("heartbeat", 0))
    if age > EXPIRY_S:
      return f"its heartbeat stopped {age:.0f} s ago"
    logging.info(
      "the workdir lease of %s (another host) was renewed %.0f s ago; "
      "waiting up to %.0f s to see whether it is still renewed",
      describe(holder),
      age,
      EXPIRY_S - age,
    )
    time.sleep(min(HEARTBEAT_S, EXPIRY_S - age) + 1)
    now = f.read()
    if now is None or now[1] != version:
      return None  # renewed, released or taken: someone is alive


def acquire(workdir: str) -> dict:
  """Takes the lease of `workdir` (created if missing); returns the holder
  record written. Raises WorkdirBusyError when a live training holds it."""
  paths.Path(workdir).mkdir(parents=True, exist_ok=True)
  f = _file(workdir)
  unreadable = None
  while True:
    holder = _new_holder()
    if f.create(json.dumps(holder)):
      return holder
    current = f.read()
    if current is None:
      continue  # released meanwhile
    text, version = current
    try:
      other = json.loads(text)
    except ValueError:
      if unreadable != text:
        # Locally the file exists a moment before its text: look again.
        unreadable = text
        time.sleep(1)
        continue
      other = {}  # still cut short: a writer killed mid-write, nobody renews it
    if other.get("id") == holder["id"]:
      # Our own create, retried by the client after its answer was lost (GCS
      # then answers 412 to the retry).
      return holder
    reason = _stale_reason(f, other, version) if other else "it is unreadable"
    if reason is None:
      raise WorkdirBusyError(
        f"{workdir} is in use by another training ({describe(other)}; lease "
        f"{f.path}). Wait for it to end or stop it; if that process is gone "
        f"for good, delete {f.path} (or start again after {EXPIRY_S:.0f} s "
        "without its heartbeat)."
      )
    if f.remove_if(version):
      logging.warning("took over the stale lease of %s in %s: %s", describe(other), workdir, reason)


def check_held(workdir: str, holder: dict) -> None:
  """Raises unless `holder`'s lease is still in `workdir`: a workdir deleted or
  unmounted during the run (its writers would recreate it, empty: a StorageError)
  or a lease taken over by another training (WorkdirBusyError)."""
  f = _file(workdir)
  current = f.read()
  if current is None:
    raise errors.StorageError(
      f"the workdir {workdir} vanished during training (its {LEASE_FILE} is gone); "
      "restore it (or point --workdir at a copy) and run the same command again "
      "to resume"
    )
  try:
    other = json.loads(current[0])
  except ValueError:
    other = {}
  if other.get("id") != holder["id"]:
    raise WorkdirBusyError(
      f"{workdir}: another training ({describe(other)}) took over the lease of this "
      "run; this run stops so that only one writes there"
    )


def release(workdir: str, holder: dict) -> None:
  """Deletes the lease if it is still `holder`'s."""
  f = _file(workdir)
  try:
    current = f.read()
    if current is not None and json.loads(current[0]).get("id") == holder["id"]:
      f.remove_if(current[1])
  except (OSError, ValueError) as e:
    # A read-only or vanished workdir: the error that ended the run says so; a
    # lease left behind is taken over by the next start (its process is gone).
    logging.warning("could not delete the workdir lease %s: %s", f.path, e)


def _heartbeat(workdir: str, holder: dict, stop: threading.Event) -> None:
  f = _file(workdir)
  version = None
  while not stop.wait(HEARTBEAT_S):
    try:
      if version is None:
        current = f.read()
        if current is None or json.loads(current[0]).get("id") != holder["id"]:
          logging.error(
            "the workdir lease %s is no longer this run's (deleted or "
            "taken over); another training may write to %s",
            f.path,
            workdir,
          )
          return
        version = current[1]
      holder["heartbeat"] = time.time()
      version = f.replace(json.dumps(holder), version)
    except Exception as e:  # pylint: disable=broad-except
      # A full disk or a network fault: the training goes on (its own writes
      # report such faults); a lease that stays unrenewed only expires.
      logging.warning("could not renew the workdir lease %s: %s", f.path, e)
      version = None


@contextlib.contextmanager
def hold(workdir: str) -> Iterator[dict]:
  """Holds the lease of `workdir` (renewing its heartbeat) for the block."""
  holder = acquire(workdir)
  stop = threading.Event()
  beat = threading.Thread(
    target=_heartbeat, args=(workdir, holder, stop), daemon=True, name="egsc-lease-heartbeat"
  )
  beat.start()
  try:
    yield holder
  finally:
    stop.set()
    beat.join()
    release(workdir, holder)
