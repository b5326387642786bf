"""One writer per workdir (egsc_jax/lease.py) and starts that are refused without
touching the workdir (issue 29). The lease's rules are tested on local files
here and on gs:// in test_cloud.py; the refusals on a copy of the tiny run."""

import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from egsc_jax import checkpointing, errors, lease, train


def _holder(path):
  with open(os.path.join(path, lease.LEASE_FILE)) as f:
    return json.load(f)


def _write_lease(path, **fields):
  holder = dict(
    id="other",
    host=socket.gethostname(),
    pid=os.getpid(),
    pid_start=None,
    started=time.time(),
    heartbeat=time.time(),
    **{},
  )
  holder.update(fields)
  with open(os.path.join(path, lease.LEASE_FILE), "w") as f:
    json.dump(holder, f)
  return holder


def test_second_holder_is_refused_naming_the_first(tmp_path, capsys):
  workdir = str(tmp_path / "w")
  with lease.hold(workdir) as first:
    on_disk = _holder(workdir)
    assert on_disk == first
    assert on_disk["host"] == socket.gethostname() and on_disk["pid"] == os.getpid()
    with pytest.raises(lease.WorkdirBusyError) as e:
      lease.acquire(workdir)
    # What the command prints: one line naming the holder, the file, what to do.
    assert errors.report(e.value) == errors.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert f"host {socket.gethostname()} pid {os.getpid()}" in err
    assert f"delete {workdir}/lease.json" in err
    assert _holder(workdir) == first  # the refused one changed nothing
  assert os.listdir(workdir) == []  # released


def test_lease_of_a_dead_process_is_taken_over(tmp_path, caplog):
  gone = subprocess.Popen(["true"])
  gone.wait()
  _write_lease(tmp_path, pid=gone.pid)
  with caplog.at_level(logging.WARNING):
    holder = lease.acquire(str(tmp_path))
  assert _holder(tmp_path) == holder and holder["pid"] == os.getpid()
  assert any(
    f"its process {gone.pid} on this host is gone" in r.getMessage() for r in caplog.records
  )
  assert sorted(os.listdir(tmp_path)) == ["lease.json"]  # no leftovers of the takeover


def test_a_reused_pid_does_not_keep_a_lease(tmp_path):
  # Our own pid, but the holder's process started at another time (a reboot,
  # a new container): not the holder.
  _write_lease(tmp_path, pid=os.getpid(), pid_start=1)
  assert lease.acquire(str(tmp_path))["pid_start"] != 1


def test_another_hosts_lease_expires_unless_renewed(tmp_path, monkeypatch, caplog):
  monkeypatch.setattr(lease, "HEARTBEAT_S", 0.2)
  monkeypatch.setattr(lease, "EXPIRY_S", 1.5)
  # Expired long ago: taken over at once.
  _write_lease(tmp_path, host="elsewhere", heartbeat=time.time() - 60)
  with caplog.at_level(logging.WARNING):
    lease.acquire(str(tmp_path))
  assert "heartbeat stopped 60 s ago" in caplog.text
  # Fresh, but never renewed: taken over once it expires.
  _write_lease(tmp_path, host="elsewhere")
  t0 = time.time()
  assert lease.acquire(str(tmp_path))["host"] == socket.gethostname()
  assert time.time() - t0 >= 1.5
  # Fresh and renewed by a live holder: refused.
  _write_lease(tmp_path, host="elsewhere")
  stop = threading.Event()

  def renew():
    while not stop.wait(0.1):
      _write_lease(tmp_path, host="elsewhere")

  beat = threading.Thread(target=renew)
  beat.start()
  try:
    with pytest.raises(lease.WorkdirBusyError, match="host elsewhere pid"):
      lease.acquire(str(tmp_path))
  finally:
    stop.set()
    beat.join()


def test_heartbeat_is_renewed_while_held(tmp_path, monkeypatch):
  monkeypatch.setattr(lease, "HEARTBEAT_S", 0.1)
  with lease.hold(str(tmp_path)) as holder:
    first = _holder(tmp_path)["heartbeat"]
    time.sleep(0.5)
    renewed = _holder(tmp_path)
    assert renewed["heartbeat"] > first and renewed["id"] == holder["id"]
  assert not os.path.exists(tmp_path / lease.LEASE_FILE)


# ----------------------------------------------------------------------------
# Refused starts of a training leave the workdir as it was
# ----------------------------------------------------------------------------


def checksums(directory) -> dict[str, str]:
  """{relative path: sha256} of every file under `directory`."""
  out = {}
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
  return out


def test_refused_resume_and_busy_workdir_change_no_file(tiny_run, tmp_path):
  workdir, config, _ = tiny_run
  copy = str(tmp_path / "run")
  shutil.copytree(workdir, copy)
  before = checksums(copy)
  assert "config.json" in before and len(before) > 20

  # Other networks than the checkpoints': refused before config.json is touched.
  other = config.copy_and_resolve_references()
  other.model.ngf = 16
  with pytest.raises(
    checkpointing.CheckpointMismatchError, match="holds other arrays than the networks"
  ):
    train.train_and_evaluate(other, copy)
  assert checksums(copy) == before

  # Another training holds the workdir: refused, nothing written either.
  with lease.hold(copy):
    with pytest.raises(lease.WorkdirBusyError, match="in use by another training"):
      train.train_and_evaluate(config, copy)
    assert checksums(copy) == {**before, "lease.json": checksums(copy)["lease.json"]}
  assert checksums(copy) == before


# ----------------------------------------------------------------------------
# Storage faults: a full disk, a read-only and a vanished workdir
# ----------------------------------------------------------------------------


def _mount_tmpfs(path, size: int) -> bool:
  """A tmpfs of `size` bytes at `path`; False where this machine forbids mounts."""
  os.makedirs(path, exist_ok=True)
  return (
    subprocess.run(
      ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], capture_output=True
    ).returncode
    == 0
  )


def _remount(path, options: str) -> None:
  subprocess.run(["mount", "-o", f"remount,{options}", path], check=True)


def _used(path) -> int:
  stat = os.statvfs(path)
  return (stat.f_blocks - stat.f_bfree) * stat.f_frsize


def _storage_error(call) -> errors.StorageError:
  with pytest.raises(Exception) as e:  # what the command's error path gets
    call()
  assert errors.exit_status(e.value) == errors.EXIT_STORAGE, repr(e.value)
  assert errors.is_user_error(e.value)
  return e.value


@pytest.mark.slow
def test_full_and_read_only_disk_are_reported_and_the_run_resumes(tiny_run, tmp_path):
  workdir, config, _ = tiny_run
  mnt = str(tmp_path / "mnt")
  if not _mount_tmpfs(mnt, 64 << 20):
    pytest.skip(
      "mounting a tmpfs is not allowed here (an unwritable workdir is "
      "covered by test_unwritable_workdir_by_permissions)"
    )
  try:
    run = os.path.join(mnt, "run")
    shutil.copytree(workdir, run)
    longer = config.copy_and_resolve_references()
    longer.stage2.num_iterations = config.stage2.num_iterations + 2
    kept = checksums(os.path.join(run, "stage2", "checkpoints", "3"))
    # Room for config.json and the events file, not for one more checkpoint.
    checkpoint = sum(
      os.path.getsize(os.path.join(r, f))
      for r, _, fs in os.walk(os.path.join(run, "stage2", "checkpoints", "3"))
      for f in fs
    )
    _remount(mnt, f"size={_used(mnt) + checkpoint // 4}")

    e = _storage_error(lambda: train.train_and_evaluate(longer, run))
    message = errors.describe(e)
    assert "\n" not in message and "no space left on device" in message
    assert f"cannot write {mnt}" in message, message
    # The last complete checkpoint is intact and still the newest listed.
    assert checksums(os.path.join(run, "stage2", "checkpoints", "3")) == kept
    listed = checkpointing.Checkpointer(
      os.path.join(run, "stage2", "checkpoints"), keep=None, read_only=True
    )
    assert listed.latest_step() == 3
    listed.close()

    # Read-only: refused at the start, nothing changed.
    _remount(mnt, "ro")
    before = checksums(run)
    e = _storage_error(lambda: train.train_and_evaluate(longer, run))
    assert "read-only file system" in errors.describe(e) and run in errors.describe(e)
    assert checksums(run) == before

    # Room again: the same call resumes from checkpoint 3 and finishes.
    _remount(mnt, "rw,size=64m")
    done = train.train_and_evaluate(longer, run)
    assert done["status"] == "done"
    assert int(done["state"].step) == longer.stage2.num_iterations
  finally:
    subprocess.run(["umount", "-l", mnt], check=False)


def test_unwritable_workdir_by_permissions(tmp_path, capsys):
  """Without root (where no tmpfs can be mounted): a workdir without write
  permission is a user error naming it. Root ignores permissions: skipped."""
  if os.geteuid() == 0:
    pytest.skip("root writes regardless of permissions (the tmpfs test covers it)")
  os.chmod(tmp_path, 0o555)
  try:
    with pytest.raises(PermissionError) as e:
      lease.acquire(str(tmp_path))
  finally:
    os.chmod(tmp_path, 0o755)
  assert errors.report(e.value) == errors.EXIT_USER_ERROR
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and str(tmp_path) in err and "Permission denied" in err


def test_storage_faults_are_one_line_with_their_status(capsys):
  """The kinds of storage fault, as the libraries raise them: an OSError with
  the file, tensorstore's message (Orbax's array writer), one wrapped in
  another exception, a GCS quota answer. Other OS errors stay what they were."""
  tensorstore = ValueError(
    'RESOURCE_EXHAUSTED: Error writing "g_params.conv/0.0.0" in OCDBT database at local '
    'file "/w/stage2/checkpoints/4.orbax-checkpoint-tmp/": Failed writing: '
    '"/w/stage2/checkpoints/4.orbax-checkpoint-tmp/d/2dff": Failed to write 120450 '
    "bytes to file 16: No space left on device [os_error_code='28']"
  )
  try:
    try:
      raise OSError(errno.EDQUOT, "Disk quota exceeded", "/w/config.json.tmp")
    except OSError as inner:
      raise RuntimeError("save failed") from inner
  except RuntimeError as e:
    wrapped = e
  quota = RuntimeError(
    '403 POST https://storage.googleapis.com/upload/storage/v1/b/bkt'
    '/o: {"reason": "quotaExceeded"} for "gs://bkt/run/config.json"'
  )
  cases = [
    (
      OSError(errno.ENOSPC, "No space left on device", "/w/x"),
      "cannot write /w/x: no space left on device",
    ),
    (
      tensorstore,
      "cannot write /w/stage2/checkpoints/4.orbax-checkpoint-tmp/d/2dff: no space left on device",
    ),
    (wrapped, "cannot write /w/config.json.tmp: disk quota exceeded"),
    (
      OSError(errno.EROFS, "Read-only file system", "/w/lease.json"),
      "cannot write /w/lease.json: read-only file system",
    ),
    (quota, "cannot write gs://bkt/run/config.json: Cloud Storage quota exceeded"),
  ]
  for e, message in cases:
    assert errors.report(e) == errors.EXIT_STORAGE == 74
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {message}. "), err
    assert "run the same command again to resume" in err
  # No path anywhere in the chain (a bare write() failing): the caller's
  # directory is named, as training names its workdir.
  bare = errors.storage_fault(OSError(errno.ENOSPC, "No space left on device"), where="/w")
  assert str(bare).startswith("cannot write /w: no space left on device. ")
  assert str(errors.storage_fault(OSError(errno.ENOSPC, "No space left on device"))).startswith(
    "cannot write the workdir: "
  )
  assert errors.exit_status(ConnectionResetError(errno.ECONNRESET, "reset")) == errors.EXIT_INTERNAL
  assert errors.exit_status(FileNotFoundError(errno.ENOENT, "gone", "/x")) == errors.EXIT_USER_ERROR


@pytest.mark.slow
def test_vanished_workdir_is_reported_as_such(tiny_run, tmp_path):
  """The workdir is deleted while training writes checkpoints: one line saying
  so (status 74), whatever the writer that noticed first."""
  workdir, config, _ = tiny_run
  run = str(tmp_path / "run")
  shutil.copytree(workdir, run)
  longer = config.copy_and_resolve_references()
  longer.stage2.num_iterations = config.stage2.num_iterations + 40
  fourth = os.path.join(run, "stage2", "checkpoints", "4")

  def delete_after_a_checkpoint():
    while not os.path.exists(fourth):
      time.sleep(0.02)
    shutil.rmtree(run, ignore_errors=True)

  deleter = threading.Thread(target=delete_after_a_checkpoint, daemon=True)
  deleter.start()
  e = _storage_error(lambda: train.train_and_evaluate(longer, run))
  deleter.join()
  assert errors.describe(e).startswith(f"the workdir {run} vanished during training")


def test_storage_fault_tracebacks_of_writer_threads_become_one_line():
  """What a full disk makes Orbax's writer tasks log (one traceback each), through
  the filter each command installs: one line, then nothing."""
  quiet = checkpointing._QuietOrbax()  # pylint: disable=protected-access
  try:
    raise ValueError(
      'RESOURCE_EXHAUSTED: Error writing "k/0" in OCDBT database at local '
      'file "/w/ckpt/": Failed writing: "/w/ckpt/d/1": No space left on '
      "device [os_error_code='28']"
    )
  except ValueError:
    import sys  # pylint: disable=g-import-not-at-top

    exc_info = sys.exc_info()
  records = [
    logging.LogRecord(
      "asyncio",
      logging.ERROR,
      "/x/asyncio/base_events.py",
      1,
      "Task exception was never retrieved",
      (),
      exc_info,
    )
    for _ in range(3)
  ]
  kept = [r for r in records if quiet.filter(r)]
  assert len(kept) == 1 and kept[0].exc_info is None
  message = kept[0].getMessage()
  assert (
    message.startswith(
      "a checkpoint writer failed: cannot write /w/ckpt/d/1: no space left on device. "
    )
    and "\n" not in message
  )
  other = logging.LogRecord("x", logging.ERROR, "/x/y.py", 1, "unrelated %s", ("bug",), None)
  assert quiet.filter(other) and other.getMessage() == "unrelated bug"


def test_an_unreadable_lease_is_taken_over_after_a_second_look(tmp_path):
  (tmp_path / lease.LEASE_FILE).write_text('{"id": "cut sho')
  t0 = time.time()
  holder = lease.acquire(str(tmp_path))
  assert _holder(tmp_path) == holder and time.time() - t0 >= 1
