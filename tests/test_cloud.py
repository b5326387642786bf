"""A run whose workdir and data live on Cloud Storage, against a local emulator.

tests/gcs_emulator.py serves the GCS JSON API on 127.0.0.1 and points every
client at it (tensorstore by endpoint, TensorFlow's GCS file system through a
local TLS proxy). The tiny two-stage training builds its TFDS data on gs://,
is interrupted and resumed, then evaluate and translate run on the gs://
workdir; the bucket listing, read through the emulator's own JSON API (not
through any client under test), must hold every artefact, and no local
folder named `gs:` may appear.
"""

import json
import os
import urllib.request

import gcs_emulator  # pylint: disable=g-bad-import-order
import numpy as np
import pytest
from conftest import tiny_config  # pylint: disable=g-bad-import-order

BUCKET = "egsc-test"


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
  """The emulator's environment, set for this module's tests."""
  with gcs_emulator.gcs_emulator(str(tmp_path_factory.mktemp("gcs")), BUCKET) as env:
    patch = pytest.MonkeyPatch()
    for k, v in env.items():
      patch.setenv(k, v)
    yield env
    patch.undo()


def bucket_objects(env) -> list[str]:
  """Every object name in BUCKET, from the emulator's JSON API directly."""
  names, token = [], None
  while True:
    url = f"{env['TENSORSTORE_GCS_HTTP_URL']}/storage/v1/b/{BUCKET}/o?maxResults=1000"
    if token:
      url += f"&pageToken={token}"
    with urllib.request.urlopen(url) as r:  # NO_PROXY covers 127.0.0.1
      page = json.load(r)
    names += [o["name"] for o in page.get("items", [])]
    token = page.get("nextPageToken")
    if not token:
      return names


def test_tensorflow_and_tensorstore_reach_the_emulator(gcs):
  """Both GCS clients write objects the other one (and the JSON API) sees."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorstore as ts  # pylint: disable=g-import-not-at-top

  from egsc_jax import paths  # pylint: disable=g-import-not-at-top

  path = paths.Path(f"gs://{BUCKET}/smoke/hello.txt")
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("hello world")  # a resumable upload through the proxy
  assert tf.io.gfile.GFile(os.fspath(path)).read() == "hello world"
  arr = ts.open(
    {
      "driver": "zarr",
      "kvstore": f"gs://{BUCKET}/smoke/arr",
      "metadata": {"shape": [3], "dtype": "<f4"},
    },
    create=True,
  ).result()
  arr.write(np.arange(3, dtype=np.float32)).result()
  assert "smoke/arr/.zarray" in bucket_objects(gcs)
  assert tf.io.gfile.exists(f"gs://{BUCKET}/smoke/arr/.zarray")
  assert sorted(p.name for p in path.parent.iterdir()) == ["arr", "hello.txt"]


@pytest.mark.slow
def test_gs_workdir_and_data_end_to_end(gcs, tmp_path, monkeypatch):
  from PIL import Image  # pylint: disable=g-import-not-at-top

  from egsc_jax import evaluate, paths, train, translate  # pylint: disable=g-import-not-at-top

  monkeypatch.chdir(tmp_path)  # where a stray relative "gs:/..." folder would go
  data_dir, workdir = f"gs://{BUCKET}/tfds", f"gs://{BUCKET}/run"
  config = tiny_config(
    data_dir,
    **{
      "stage1.num_iterations": 1,
      "stage2.num_iterations": 2,
      "train.image_every": 1,
      "train.eval_every": 2,
      "train.eval_examples": 4,
      "train.num_image_examples": 2,
    },
  )

  # Stops after stage-2 iteration 1, then resumes: builds the data on first use.
  stopped = train.train_and_evaluate(config, workdir, stop_at=(2, 1))
  assert stopped["status"] == "stopped"
  done = train.train_and_evaluate(config, workdir)
  assert done["status"] == "done" and int(done["state"].step) == 2
  metrics = set(done["metrics"])
  assert {"iteration", "ssim_a2b", "ssim_b2a", "colour_match_a2b"} <= metrics
  assert any(k.startswith("a2b/") and k.endswith("/ssim") for k in metrics)

  results = evaluate.evaluate_workdir(
    workdir, num_examples=4, classifier_steps=2, batch_size=8, lpips_exemplars=1
  )
  assert results["workdir"] == workdir and results["checkpoint_step"] == 2

  inputs = paths.Path(f"gs://{BUCKET}/inputs")
  inputs.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(0)
  for name in ("x.png", "y.png"):
    with (inputs / name).open("wb") as f:
      Image.fromarray(rng.integers(0, 256, (28, 28, 3), np.uint8)).save(f, format="PNG")
  out = f"gs://{BUCKET}/translations"
  result = translate.translate_paths(
    workdir=workdir,
    source=os.fspath(inputs),
    exemplar=os.fspath(inputs / "y.png"),
    output=out,
    grid=True,
    batch_size=8,
  )
  assert len(result.written) == 2

  names = set(bucket_objects(gcs))

  def has(prefix, suffix=""):
    return any(n.startswith(prefix) and n.endswith(suffix) for n in names)

  assert "run/config.json" in names
  for stage, last in ((1, 1), (2, 2)):
    assert has(f"run/stage{stage}/events.out.tfevents.")  # TensorBoard
    assert has(f"run/stage{stage}/checkpoints/{last}/state/")  # Orbax + tensorstore
    assert has(f"run/stage{stage}/images/", f"_{last:07d}.png")
  assert has("run/stage2/checkpoints/1/meta/")  # the interrupted save
  assert "run/stage2/final_metrics.json" in names
  assert {"run/eval/results.json", "run/eval/results.md", "run/eval/pixel_accuracy.png"} <= names
  # The digit classifier is cached beside the dataset, with no temporary left.
  assert has("tfds/egsc_jax_cache/mnist_single/", ".msgpack")
  assert not [n for n in names if ".tmp-" in n]
  assert has("tfds/mnist_single/", "dataset_info.json") and has("tfds/mnist_single/", "-of-00001")
  assert {"translations/x__y.png", "translations/y__y.png", "translations/grid.png"} <= names
  config_json = json.loads(paths.Path(workdir, "config.json").read_text())
  assert config_json["data"]["data_dir"] == data_dir
  # Nothing went to a local folder named after the URL.
  assert not os.path.exists("gs:") and not os.path.exists(
    os.path.join(os.path.dirname(os.path.dirname(__file__)), "gs:")
  )


def test_workdir_lease_on_gcs(gcs):
  """The lease (egsc_jax/lease.py) on gs://: create-if-absent by the generation
  precondition ifGenerationMatch=0 (the emulator enforces preconditions as GCS
  does), a refused second holder, a stale lease taken over, release."""
  import subprocess  # pylint: disable=g-import-not-at-top

  from egsc_jax import lease  # pylint: disable=g-import-not-at-top

  workdir = f"gs://{BUCKET}/leased"
  with lease.hold(workdir) as first:
    assert "leased/lease.json" in bucket_objects(gcs)
    with pytest.raises(lease.WorkdirBusyError, match=f"pid {os.getpid()}"):
      lease.acquire(workdir)
    f = lease._file(workdir)  # pylint: disable=protected-access
    text, generation = f.read()
    assert json.loads(text) == first
    assert not f.create("{}")  # 412: it exists
    assert f.replace("{}", generation + 1) is None  # 412: other generation
    assert not f.remove_if(generation + 1)
    assert f.read() == (text, generation)
  assert "leased/lease.json" not in bucket_objects(gcs)  # released

  gone = subprocess.Popen(["true"])
  gone.wait()
  f = lease._file(workdir)  # pylint: disable=protected-access
  assert f.create(json.dumps({**first, "id": "old", "pid": gone.pid}))
  taken = lease.acquire(workdir)
  assert json.loads(f.read()[0]) == taken and taken["id"] != "old"
  lease.release(workdir, taken)
  assert f.read() is None


@pytest.mark.slow
def test_gs_training_survives_transient_faults(gcs):
  """The emulator answers 429 or 503, or drops the connection, on a seeded 5% of
  requests (tests/gcs_emulator.py Faults): every client retries, and the run
  ends bitwise equal to the same run without faults."""
  import jax  # pylint: disable=g-import-not-at-top

  from egsc_jax import checkpointing, train  # pylint: disable=g-import-not-at-top

  config = tiny_config(
    f"gs://{BUCKET}/tfds",
    **{
      "stage1.num_iterations": 1,
      "stage2.num_iterations": 2,
      "train.image_every": 2,
      "train.eval_every": 2,
      "train.eval_examples": 4,
      "train.num_image_examples": 2,
    },
  )
  assert train.train_and_evaluate(config, f"gs://{BUCKET}/clean")["status"] == "done"
  gcs_emulator.set_faults(gcs, rate=0.05, seed=29)
  try:
    faulty = train.train_and_evaluate(config, f"gs://{BUCKET}/faulty")
  finally:
    counts = gcs_emulator.set_faults(gcs, rate=0.0)
  assert faulty["status"] == "done"
  assert counts["requests"] > 100 and min(counts["injected"].values()) >= 1, counts

  def stage2(run):
    ckpt = checkpointing.Checkpointer(
      f"gs://{BUCKET}/{run}/stage2/checkpoints", keep=None, read_only=True
    )
    try:
      return ckpt.latest_step(), ckpt.restore(ckpt.latest_step())
    finally:
      ckpt.close()

  (step_a, (state_a, meta_a)), (step_b, (state_b, meta_b)) = stage2("clean"), stage2("faulty")
  assert step_a == step_b == 2 and meta_a["data_step"] == meta_b["data_step"]
  leaves_a, leaves_b = jax.tree.leaves(state_a), jax.tree.leaves(state_b)
  assert len(leaves_a) == len(leaves_b) > 10
  for a, b in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
