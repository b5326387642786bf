"""One writer per workdir (egsc_jax/lease.py) and starts that are refused without
touching the workdir (issue 29). The lease's rules are tested on local files
here and on gs:// in test_cloud.py; the refusals on a copy of the tiny run."""
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
  holder = dict(id="other", host=socket.gethostname(), pid=os.getpid(),
                pid_start=None, started=time.time(), heartbeat=time.time(), **{})
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
    assert _holder(workdir) == first   # the refused one changed nothing
  assert os.listdir(workdir) == []     # released


def test_lease_of_a_dead_process_is_taken_over(tmp_path, caplog):
  gone = subprocess.Popen(["true"])
  gone.wait()
  _write_lease(tmp_path, pid=gone.pid)
  with caplog.at_level(logging.WARNING):
    holder = lease.acquire(str(tmp_path))
  assert _holder(tmp_path) == holder and holder["pid"] == os.getpid()
  assert any(f"its process {gone.pid} on this host is gone" in r.getMessage()
             for r in caplog.records)
  assert sorted(os.listdir(tmp_path)) == ["lease.json"]   # no leftovers of the takeover


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
  with pytest.raises(checkpointing.CheckpointMismatchError,
                     match="holds other arrays than the networks"):
    train.train_and_evaluate(other, copy)
  assert checksums(copy) == before

  # Another training holds the workdir: refused, nothing written either.
  with lease.hold(copy):
    with pytest.raises(lease.WorkdirBusyError, match="in use by another training"):
      train.train_and_evaluate(config, copy)
    assert checksums(copy) == {**before, "lease.json": checksums(copy)["lease.json"]}
  assert checksums(copy) == before
