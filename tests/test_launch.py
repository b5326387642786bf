"""The launch scripts: shellcheck, argument quoting, the exact gcloud commands of
--dry-run, and the worker's detached, restarting training loop run for real on
this machine (with a stand-in for the Python process, which records its argv)."""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(REPO, "launch")
SCRIPTS = ["lib.sh", "tpu.sh", "tpu_worker.sh", "gpu.sh", "slurm_gpu.sbatch"]
OVERRIDES = [
  "--config.data.image_size=(256, 512)",
  "--config.model.ngf=32",
  "--config.variant=it's \"quoted\" $HOME `x` ;&|*",
]
ENV = dict(
  TPU_NAME="egsc-v4",
  ZONE="us-central2-b",
  ACCELERATOR_TYPE="v4-16",
  CONFIG="configs/gta5_bdd.py",
  WORKDIR="gs://bkt/runs/gta5",
  DATA_DIR="gs://bkt/tfds",
  COMMIT="HEAD",
)


def shellcheck() -> str:
  exe = shutil.which("shellcheck") or os.path.join(os.path.dirname(sys.executable), "shellcheck")
  assert os.path.exists(exe), "shellcheck missing: pip install -r requirements-test.txt"
  return exe


def test_every_launch_script_passes_shellcheck():
  assert sorted(SCRIPTS) == sorted(os.listdir(LAUNCH))
  out = subprocess.run([shellcheck(), "-x", *SCRIPTS], cwd=LAUNCH, capture_output=True, text=True)
  assert out.returncode == 0, out.stdout + out.stderr


def test_benchmark_scripts_pass_shellcheck():
  bench = os.path.join(REPO, "benchmarks")
  scripts = sorted(f for f in os.listdir(bench) if f.endswith(".sh"))
  assert "compare_mnist_single.sh" in scripts
  out = subprocess.run([shellcheck(), "-x", *scripts], cwd=bench, capture_output=True, text=True)
  assert out.returncode == 0, out.stdout + out.stderr


def test_quote_args_survives_a_remote_shell():
  # What the TPU worker's shell does with the quoted line: split it back.
  script = 'source launch/lib.sh; line="$(quote_args "$@")"; bash -c "printf \'%s\\\\0\' $line"'
  out = subprocess.run(
    ["bash", "-c", script, "_", *OVERRIDES], cwd=REPO, capture_output=True, text=True, check=True
  )
  assert out.stdout.split("\0")[:-1] == OVERRIDES


def dry_run(*args, **env) -> list[list[str]]:
  """The commands `launch/tpu.sh --dry-run ARGS` prints, each split into argv."""
  out = subprocess.run(
    ["bash", "launch/tpu.sh", "--dry-run", *args],
    cwd=REPO,
    env={**os.environ, **ENV, **env},
    capture_output=True,
    text=True,
    check=True,
  )
  return [shlex.split(line) for line in out.stdout.splitlines()]


def test_dry_run_create_on_demand_spot_and_queued():
  base = ["gcloud", "compute", "tpus"]
  assert dry_run("create") == [
    base
    + [
      "tpu-vm",
      "create",
      "egsc-v4",
      "--zone=us-central2-b",
      "--accelerator-type=v4-16",
      "--version=tpu-ubuntu2204-base",
    ]
  ]
  assert dry_run("create", SPOT="1", PROJECT="proj") == [
    base
    + [
      "tpu-vm",
      "create",
      "egsc-v4",
      "--zone=us-central2-b",
      "--project=proj",
      "--accelerator-type=v4-16",
      "--version=tpu-ubuntu2204-base",
      "--spot",
    ]
  ]
  assert dry_run("create", QUEUED="1", SPOT="1") == [
    base
    + [
      "queued-resources",
      "create",
      "egsc-v4",
      "--zone=us-central2-b",
      "--node-id=egsc-v4",
      "--accelerator-type=v4-16",
      "--runtime-version=tpu-ubuntu2204-base",
      "--spot",
    ]
  ]
  assert dry_run("delete") == [
    base + ["tpu-vm", "delete", "egsc-v4", "--zone=us-central2-b", "--quiet"]
  ]
  assert dry_run("delete", QUEUED="1") == [
    base + ["queued-resources", "delete", "egsc-v4", "--zone=us-central2-b", "--force", "--quiet"]
  ]


def test_dry_run_setup_logs_and_train():
  commit = subprocess.run(
    ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
  ).stdout.strip()
  archive, scp, ssh = dry_run("setup", TMPDIR="/tmp")
  tgz = f"/tmp/egsc-jax-{commit}.tar.gz"
  assert archive == [
    "git",
    "-C",
    f"{LAUNCH}/..",
    "archive",
    "--format=tar.gz",
    f"--output={tgz}",
    commit,
  ]
  assert scp == [
    "gcloud",
    "compute",
    "tpus",
    "tpu-vm",
    "scp",
    tgz,
    f"egsc-v4:egsc-jax-{commit}.tar.gz",
    "--zone=us-central2-b",
    "--worker=all",
  ]
  assert ssh[:7] == [
    "gcloud",
    "compute",
    "tpus",
    "tpu-vm",
    "ssh",
    "egsc-v4",
    "--zone=us-central2-b",
  ]
  assert ssh[7] == "--worker=all"
  assert ssh[8] == (
    f"--command=set -e; mkdir -p egsc-jax/src-{commit}; tar -xzf "
    f"egsc-jax-{commit}.tar.gz -C egsc-jax/src-{commit}; ln -sfn "
    f"src-{commit} egsc-jax/current; bash "
    "egsc-jax/current/launch/tpu_worker.sh setup"
  )
  [logs] = dry_run("logs", "3")
  assert logs[7:] == ["--worker=3", "--command=tail -n 200 -F egsc-jax/logs/train.log"]
  [train] = dry_run("train", *OVERRIDES)
  assert train[:8] == ssh[:8]
  remote = train[8].removeprefix("--command=")
  assert remote.startswith(
    "cd egsc-jax && mkdir -p logs && { setsid nohup bash current/launch/tpu_worker.sh train "
  )
  assert remote.endswith(" >>logs/train.log 2>&1 </dev/null & } && echo started on $(hostname)")


def fake_worker(tmp_path, exit_statuses):
  """A worker home whose `current` is this repo and whose venv's python is a
  stand-in that appends its argv to calls.jsonl and exits with the next status;
  a status None means: run until SIGTERM, then exit 75 as a preempted training does."""
  home = tmp_path / "home"
  egsc = home / "egsc-jax"
  egsc.mkdir(parents=True)
  os.symlink(REPO, egsc / "current")
  lock = tmp_path / "lock.txt"
  lock.write_text("jax==0.0.0\n")
  out = subprocess.run(["sha256sum", str(lock)], capture_output=True, text=True, check=True).stdout[
    :12
  ]
  venv = egsc / f"venv-{out}"
  (venv / "bin").mkdir(parents=True)
  (venv / ".complete").touch()
  python = venv / "bin" / "python"
  python.write_text(
    "#!/usr/bin/env python3\n"
    "import json, os, signal, sys, time\n"
    f"calls = {str(tmp_path / 'calls.jsonl')!r}\n"
    "n = sum(1 for _ in open(calls)) if os.path.exists(calls) else 0\n"
    "open(calls, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    "print('training attempt', n, flush=True)\n"
    f"status = {list(exit_statuses)!r}[n]\n"
    "if status is None:\n"
    "  signal.signal(signal.SIGTERM, lambda *_: sys.exit(75))\n"
    "  open(calls + '.running', 'w').close()\n"
    "  while True: time.sleep(0.1)\n"
    "sys.exit(status)\n"
  )
  python.chmod(0o755)
  return home, lock


def processes_with(marker: str) -> dict[int, str]:
  """pid -> command line of every process whose environment holds marker."""
  found = {}
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      with open(f"/proc/{pid}/environ", "rb") as f:
        if marker.encode() not in f.read().split(b"\0"):
          continue
      with open(f"/proc/{pid}/cmdline", "rb") as f:
        found[int(pid)] = f.read().replace(b"\0", b" ").decode()
    except OSError:  # ended meanwhile
      pass
  return found


def wait_until(predicate, timeout=30.0):
  deadline = time.time() + timeout
  while not predicate() and time.time() < deadline:
    time.sleep(0.2)
  return predicate()


def start_detached(tmp_path, exit_statuses, **env):
  """Runs the dry-run's remote train command as a worker's shell would, with an
  environment marker; returns (workdir, marker)."""
  home, lock = fake_worker(tmp_path, exit_statuses)
  workdir = tmp_path / "workdir"
  [train] = dry_run("train", *OVERRIDES, WORKDIR=str(workdir))
  remote = train[8].removeprefix("--command=")
  marker = f"EGSC_TEST_MARKER={tmp_path}"
  env = {
    **os.environ,
    "HOME": str(home),
    "LOCK_FILE": str(lock),
    "TPU_WORKER_ID": "w-0",
    "EGSC_TEST_MARKER": str(tmp_path),
    **env,
  }
  # Returns at once (the ssh session of `launch/tpu.sh train` must not wait for the run).
  out = subprocess.run(
    ["bash", "-c", remote],
    cwd=home,
    env=env,
    check=True,
    capture_output=True,
    text=True,
    timeout=10,
  )
  assert out.stdout.startswith("started on ")
  return workdir, marker


@pytest.mark.slow
def test_train_command_runs_detached_and_restarts_after_preemption(tmp_path):
  """The dry-run's remote command, run by bash as a worker would: the overrides
  arrive intact, a preemption exit (75) restarts, any other status ends the loop,
  the log lands in the workdir, and no process of it is left once it ends."""
  workdir, marker = start_detached(tmp_path, [75, 0], RESTART_DELAY="1")
  status_file = workdir / "logs" / "exit_status-w-0"
  assert wait_until(status_file.exists, 60)
  assert status_file.read_text().strip() == "0"
  calls = [json.loads(l) for l in (tmp_path / "calls.jsonl").read_text().splitlines()]
  expected = [
    "-m",
    "egsc_jax.main",
    "--distributed",
    "--config=configs/gta5_bdd.py",
    f"--workdir={workdir}",
    "--config.model.compute_dtype=bfloat16",
    "--config.data.data_dir=gs://bkt/tfds",
    *OVERRIDES,
  ]
  assert calls == [expected, expected]
  log = (workdir / "logs" / "worker-w-0.log").read_text()
  assert "training attempt 0" in log and "training attempt 1" in log
  assert "exit status 75" in log and "exit status 0" in log
  assert wait_until(lambda: not processes_with(marker), 10), processes_with(marker)


@pytest.mark.parametrize("signal_name", ["TERM", "KILL"])
def test_stopping_the_detached_train_command_leaves_no_process(tmp_path, signal_name):
  """SIGTERM of the worker script stops the training (which exits 75, as after a
  preemption) without a restart; SIGKILL of it still reaches the training (parent
  death signal) and the log copier (which watches its parent). Either way nothing
  of the launch remains."""
  workdir, marker = start_detached(tmp_path, [None, 0], RESTART_DELAY="0")
  assert wait_until((tmp_path / "calls.jsonl.running").exists)
  # The worker script is the session leader (setsid); its log copier is a subshell.
  scripts = [
    pid
    for pid, cmd in processes_with(marker).items()
    if "tpu_worker.sh train" in cmd and os.getsid(pid) == pid
  ]
  assert len(scripts) == 1, processes_with(marker)
  assert len(processes_with(marker)) >= 3  # the script, its log copier, the training
  os.kill(scripts[0], getattr(signal, f"SIG{signal_name}"))
  assert wait_until(lambda: not processes_with(marker), 10), processes_with(marker)
  # One attempt only: a stopped worker does not start the training again.
  assert len((tmp_path / "calls.jsonl").read_text().splitlines()) == 1
  if signal_name == "TERM":  # the script ended normally, reporting the status
    assert (workdir / "logs" / "exit_status-w-0").read_text().strip() == "75"


def dist_info(site, name: str, version: str) -> None:
  """Installed-package metadata for `name`, as importlib.metadata finds it."""
  folder = site / f"{name.replace('-', '_')}-{version}.dist-info"
  folder.mkdir(parents=True)
  (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


@pytest.mark.parametrize(
  "venv, sets_up",
  [
    ({}, True),  # no .venv yet
    ({"jax": "0.10.2"}, True),  # tools/setup.sh without --cuda: no plugin
    ({"jax": "0.10.2", "jax-cuda12-plugin": "0.10.1"}, True),  # another JAX's plugin
    ({"jax": "0.10.2", "jax-cuda12-plugin": "0.10.2"}, False),
  ],
  ids=["no-venv", "cpu-venv", "other-plugin", "cuda-venv"],
)
def test_gpu_sh_sets_up_cuda_unless_the_venv_has_the_plugin(tmp_path, venv, sets_up):
  """launch/gpu.sh in a copy of the repository whose tools/setup.sh and
  .venv/bin/egsc-train are stand-ins that record their arguments, and whose
  .venv/bin/python is this Python seeing the packages `venv` lists: setup.sh
  --cuda runs unless .venv has JAX's CUDA plugin of its JAX version."""
  repo = tmp_path / "repo"
  (repo / "launch").mkdir(parents=True)
  shutil.copy(os.path.join(LAUNCH, "gpu.sh"), repo / "launch")
  calls = tmp_path / "calls"
  site = repo / ".venv" / "site"
  bin_ = repo / ".venv" / "bin"
  scripts = {
    bin_ / "python": f'#!/bin/sh\nPYTHONPATH={site} exec {sys.executable} "$@"\n',
    bin_ / "egsc-train": f'#!/bin/sh\necho "egsc-train $*" >>{calls}\n',
  }
  # The stand-in setup makes the CUDA venv that the real one would.
  setup = (
    f'#!/bin/sh\necho "setup $*" >>{calls}\nmkdir -p {bin_}\n'
    + "".join(
      f"cat >{path} <<'END'\n{text}END\nchmod +x {path}\n" for path, text in scripts.items()
    )
    + "".join(
      f"mkdir -p {site}/{n.replace('-', '_')}-0.10.2.dist-info\n"
      f"printf 'Metadata-Version: 2.1\\nName: {n}\\nVersion: 0.10.2\\n' "
      f">{site}/{n.replace('-', '_')}-0.10.2.dist-info/METADATA\n"
      for n in ("jax", "jax-cuda12-plugin")
      if n not in venv
    )
  )
  (repo / "tools").mkdir()
  (repo / "tools" / "setup.sh").write_text(setup)
  if venv:
    bin_.mkdir(parents=True)
    for path, text in scripts.items():
      path.write_text(text)
      path.chmod(0o755)
    for name, version in venv.items():
      dist_info(site, name, version)
  subprocess.run(
    ["bash", str(repo / "launch" / "gpu.sh"), "--config.seed=3"],
    env={**os.environ, "CONFIG": "mnist_single", "WORKDIR": "/runs/w"},
    check=True,
    timeout=60,
  )
  train = (
    "egsc-train --config=mnist_single --workdir=/runs/w "
    "--config.model.compute_dtype=bfloat16 --config.seed=3"
  )
  assert calls.read_text().splitlines() == (["setup --cuda"] if sets_up else []) + [train]
