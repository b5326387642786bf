"""The evaluate command on a tiny trained MNIST-Single run, and the segmentation
protocol on a fake gta5_bdd (real TFDS builder, untrained checkpoint).

The trained run is shared with test_translate.py when both run in one process.
"""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import benchmark_module  # pylint: disable=g-bad-import-order
from PIL import Image
from skimage.metrics import structural_similarity
from test_translate import REPO  # pylint: disable=g-bad-import-order

from egsc_jax import api, checkpointing, config_lib, evaluate, trained_run
from egsc_jax import state as state_lib
from egsc_jax.data import build, images, input_pipeline
from egsc_jax.eval import digit_classifier as dc
from egsc_jax.eval import fid_kid, translations
from egsc_jax.eval import ssim as ssim_lib
from egsc_jax.models import build_models

NUM = 16  # test pairs evaluated
CLASSIFIER_STEPS = 40  # enough to beat chance by far; the command default is larger


@pytest.fixture(scope="module")
def workdir(tiny_run):
  return tiny_run[0]


@pytest.fixture(scope="module")
def results(workdir):
  return evaluate.evaluate_workdir(
    workdir,
    num_examples=NUM,
    official_stretch=True,
    classifier_steps=CLASSIFIER_STEPS,
    batch_size=8,
  )


def test_every_mnist_single_field(workdir, results):
  m = results["metrics"]
  for d in ("a2b", "b2a"):
    for key in ("ssim", "ssim_official_stretch"):
      # Present; their values are checked against skimage in the next test.
      assert isinstance(m[f"{key}_{d}"], float)
    for key in ("pixel_accuracy", "pixel_accuracy_official_stretch"):
      curve = np.asarray(results["curves"][f"{key}_{d}"])
      assert curve.shape == (100,) and np.all(np.diff(curve) >= 0)
      assert 0 <= curve[0] and curve[-1] <= 1
      assert m[f"{key}_mean_{d}"] == pytest.approx(curve.mean())
    assert m[f"lpips_diversity_{d}"] > 0  # noise and exemplars vary the output
    assert np.isfinite(m[f"kid_vgg16_{d}"]) and m[f"kid_vgg16_{d}_std"] >= 0
    # The share of NUM translations classified right: a multiple of 1 / NUM.
    correct = m[f"digit_accuracy_{d}"] * NUM
    assert correct == pytest.approx(round(correct), abs=1e-9) and 0 <= correct <= NUM
  assert 0 <= m["colour_match_a2b"] <= 1 and 0 <= m["colour_match_b2a"] <= 1
  # The per-scheme breakdown covers every pair, scheme by scheme.
  for d in ("a2b", "b2a"):
    rows = results["details"]["per_scheme"][d]
    assert sum(r["count"] for r in rows.values()) == NUM
    assert {"ssim", "colour_match", "digit_accuracy"} <= set(next(iter(rows.values())))
    cross = results["details"]["per_source_and_exemplar_scheme"][d]
    assert sum(r["count"] for row in cross.values() for r in row.values()) == NUM
  report = open(os.path.join(workdir, "eval", "results.md")).read()
  assert "By the exemplar's colour scheme, A→B" in report
  assert "By source scheme (rows) and exemplar scheme (columns), A→B" in report
  assert m["digit_classifier_test_accuracy"] > 0.5  # 40 steps; far above chance 0.1
  assert not any(k.startswith(("fid", "kid_inception", "segmentation")) for k in m)
  assert results["curves"]["taus"] == list(range(100))
  assert results["details"]["kid_subset_size"] == NUM
  assert results["checkpoint_step"] == 3 and results["used_ema"] is True
  assert results["config_variant"] == "tiny,no_perceptual"
  assert results["num_examples"] == NUM and results["dataset"] == "mnist_single"
  assert results["wall_seconds"] > 0
  eval_dir = os.path.join(workdir, "eval")
  with open(os.path.join(eval_dir, "results.json")) as f:
    assert json.load(f) == json.loads(json.dumps(results))
  with Image.open(os.path.join(eval_dir, "pixel_accuracy.png")) as im:
    assert im.format == "PNG" and im.size[0] > 100
  md = open(os.path.join(eval_dir, "results.md")).read()
  assert "| metric | A→B | B→A |" in md
  for title in (
    "SSIM vs ground truth (paper's metric)",
    fid_kid.KID_VGG16_NAME,
    "LPIPS diversity",
    "Digit accuracy",
    "classifier's own test accuracy",
    "Colour-match share",
  ):
    assert title in md
  ssim_row = [line for line in md.splitlines() if line.startswith("| SSIM vs ground truth (")]
  assert f"{m['ssim_a2b']:.4f}" in ssim_row[0] and f"{m['ssim_b2a']:.4f}" in ssim_row[0]


def test_paper_metrics_match_independent_references(workdir, results):
  """SSIM (skimage) and pooled pixel accuracy recomputed on the same translations,
  with the ground truth read straight from the input pipeline."""
  trained = trained_run.load_trained(workdir)
  translator = api.Translator.from_trained(trained, batch_size=8, seed=0)
  gt_batch = next(
    input_pipeline.eval_batches(trained.config, split="test", batch_size=NUM, num_examples=NUM)
  )
  for d in ("a2b", "b2a"):
    pred = np.concatenate(
      [
        b["pred"]
        for b in translations.translate_split(
          translator, trained.config, direction=d, num_examples=NUM
        )
      ]
    )
    gt = np.clip(np.round((gt_batch[f"gt_{d}"] + 1) * 127.5), 0, 255).astype(np.uint8)
    ssim = np.mean(
      [structural_similarity(p, g, channel_axis=-1, data_range=255) for p, g in zip(pred, gt)]
    )
    assert results["metrics"][f"ssim_{d}"] == pytest.approx(ssim, abs=1e-4)
    err = np.abs(pred.astype(int) - gt.astype(int)).sum(-1)
    curve = [(err <= t).mean() for t in range(100)]
    np.testing.assert_allclose(results["curves"][f"pixel_accuracy_{d}"], curve, atol=1e-12)
    s_pred, s_gt = ssim_lib.minmax_stretch(pred), ssim_lib.minmax_stretch(gt)
    assert results["metrics"][f"ssim_official_stretch_{d}"] == pytest.approx(
      np.mean(
        [structural_similarity(p, g, channel_axis=-1, data_range=255) for p, g in zip(s_pred, s_gt)]
      ),
      abs=1e-4,
    )


def test_digit_classifier_is_cached_beside_the_dataset(workdir, results):
  """evaluate trained it once into DATA_DIR/egsc_jax_cache/..., not into the
  workdir; the same settings load it from there."""
  config = trained_run.load_trained(workdir).config
  cache = dc.dataset_cache_dir("mnist_single", data_dir=config.data.data_dir)
  files = [f for f in os.listdir(cache) if f.endswith(".msgpack")]
  stamps = {f: os.stat(os.path.join(cache, f)).st_mtime_ns for f in files}
  params, acc = dc.load_or_train(cache, manual_dir=None, steps=CLASSIFIER_STEPS)
  assert {f: os.stat(os.path.join(cache, f)).st_mtime_ns for f in files} == stamps
  assert acc == results["metrics"]["digit_classifier_test_accuracy"]
  assert set(params) == {"conv1", "conv2", "conv3", "fc1", "logits"}
  assert not [f for f in os.listdir(os.path.join(workdir, "eval")) if "classifier" in f]


def test_test_noise_off_is_deterministic_and_written_apart(workdir, results):
  """docs/method.md §9 A6: the authors keep the latent noise on at test time; with it off
  the scores no longer depend on the noise seed."""
  kw = dict(
    num_examples=NUM,
    classifier_steps=CLASSIFIER_STEPS,
    batch_size=8,
    test_noise=False,
    eval_name="eval_noise_off",
  )
  off0 = evaluate.evaluate_workdir(workdir, seed=0, **kw)
  off1 = evaluate.evaluate_workdir(workdir, seed=1, **kw)
  assert results["test_noise"] is True and off0["test_noise"] is False
  for key in ("ssim_a2b", "ssim_b2a"):
    assert off0["metrics"][key] == off1["metrics"][key]
  on1 = evaluate.evaluate_workdir(
    workdir,
    seed=1,
    num_examples=NUM,
    classifier_steps=CLASSIFIER_STEPS,
    batch_size=8,
    eval_name="eval_seed1",
  )
  assert on1["metrics"]["ssim_a2b"] != results["metrics"]["ssim_a2b"]
  assert os.path.isfile(os.path.join(workdir, "eval_noise_off", "results.json"))
  with open(os.path.join(workdir, "eval", "results.json")) as f:
    assert json.load(f)["test_noise"] is True  # the default results stay


def test_clear_errors(workdir, tmp_path):
  with pytest.raises(trained_run.WorkdirError, match="no config.json") as e:
    evaluate.evaluate_workdir(str(tmp_path))
  assert str(tmp_path) in str(e.value)
  shutil.copy(os.path.join(workdir, "config.json"), tmp_path / "config.json")
  with pytest.raises(trained_run.WorkdirError, match="no stage-2 checkpoint") as e:
    evaluate.evaluate_workdir(str(tmp_path))
  assert str(tmp_path) in str(e.value)
  (tmp_path / "stage2" / "checkpoints").mkdir(parents=True)
  with pytest.raises(trained_run.WorkdirError, match="no stage-2 checkpoint"):
    trained_run.load_trained(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="nope.h5"):
    evaluate.evaluate_workdir(workdir, inception_weights=str(tmp_path / "nope.h5"))
  with pytest.raises(evaluate.EvaluationError, match="MODULE:FUNCTION"):
    evaluate.evaluate_workdir(workdir, segmenter="no_colon")
  with pytest.raises(evaluate.EvaluationError, match="cannot import"):
    evaluate.load_segmenter("no_such_module_xyz:f")
  with pytest.raises(evaluate.EvaluationError, match="has no function"):
    evaluate.load_segmenter("json:no_such_function")
  assert evaluate.load_segmenter("json:dumps") is json.dumps
  with pytest.raises(evaluate.EvaluationError, match="label_a"):
    evaluate.evaluate_workdir(workdir, segmenter="json:dumps")


@pytest.mark.slow
def test_cli_smoke(workdir, tmp_path):
  copy = tmp_path / "run"
  shutil.copytree(workdir, copy)  # the command writes copy/eval, not the shared run's
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "egsc_jax.evaluate",
      f"--workdir={copy}",
      "--num_examples=8",
      f"--classifier_steps={CLASSIFIER_STEPS}",
      "--batch_size=8",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "| SSIM vs ground truth (paper's metric) |" in proc.stdout
  with open(copy / "eval" / "results.json") as f:
    assert json.load(f)["num_examples"] == 8
  proc = subprocess.run(
    [sys.executable, "-m", "egsc_jax.evaluate", f"--workdir={tmp_path / 'none'}"],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 1 and "no config.json" in proc.stderr


# ----------------------------------------------------------------------------
# gta5_bdd: the segmentation hook
# ----------------------------------------------------------------------------

SEG_SIZE = (32, 64)


def all_flat(images_uint8):
  """A segmenter that calls every pixel 'flat' (category 1)."""
  return np.ones(images_uint8.shape[:3], np.int32)


def write_untrained_workdir(config, path, *, stage1_checkpoint=False):
  """config.json and a stage-2 checkpoint of freshly initialised networks (and,
  with `stage1_checkpoint`, the stage-1 state whose encoders are its F)."""
  models = build_models(config.model)
  tx = state_lib.adam(b1=config.optim.b1, b2=config.optim.b2, eps=config.optim.eps)
  shape = tuple(config.data.image_size)
  rng = jax.random.key(0)
  frozen = {}
  if config_lib.needs_stage1(config):
    stage1 = state_lib.init_stage1(models, rng, image_shape=shape, tx=tx, ema=False)
    frozen = state_lib.exemplar_params_from_stage1(stage1.g_params)
  state = state_lib.init_stage2(models, rng, image_shape=shape, tx=tx, frozen=frozen, ema=True)
  config.optim.ema_decay = 0.99  # so the checkpoint's EMA slot is expected
  os.makedirs(path)
  with open(os.path.join(path, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  ckpt = checkpointing.Checkpointer(os.path.join(path, "stage2", "checkpoints"), keep=1)
  ckpt.save(5, state, {"stage": 2, "iteration": 5})
  ckpt.close()
  if stage1_checkpoint:
    ckpt = checkpointing.Checkpointer(os.path.join(path, "stage1", "checkpoints"), keep=1)
    ckpt.save(3, stage1, {"stage": 1, "iteration": 3})
    ckpt.close()


@pytest.mark.slow
def test_gta5_bdd_segmentation_protocol(tmp_path):
  from test_real_builders import make_gta5_bdd, quadrant_labels  # pylint: disable=g-import-not-at-top

  from configs import gta5_bdd as gta5_bdd_config  # pylint: disable=g-import-not-at-top

  manual = tmp_path / "manual"
  make_gta5_bdd(manual)
  # Label every GTA5 frame, whichever becomes the test frame: ids road, car, person.
  label = Image.fromarray(quadrant_labels(7, 26, 24), mode="P")
  label.putpalette([0] * 768)
  label.save(manual / "gta5" / "labels" / "00004.png")
  data_dir = str(tmp_path / "tfds")
  builder = build.build("gta5_bdd", data_dir=data_dir, manual_dir=str(manual))
  config = gta5_bdd_config.get_config("tiny")
  config.data.data_dir = data_dir
  config.data.image_size = SEG_SIZE
  workdir = str(tmp_path / "run")
  write_untrained_workdir(config, workdir)

  # eval_batches passes the labels through, resized nearest-neighbour.
  batch = next(input_pipeline.eval_batches(config, split="test", batch_size=2))
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  stored = list(tfds.as_numpy(builder.as_dataset(split="test")))
  want = np.stack(
    [images.resize_nearest(ex["label_a"], height=SEG_SIZE[0], width=SEG_SIZE[1]) for ex in stored]
  )
  np.testing.assert_array_equal(batch["label_a"], want)
  assert batch["label_a"].dtype == np.uint8

  results = evaluate.evaluate_workdir(
    workdir, segmenter="test_evaluate:all_flat", batch_size=8, num_examples=1000
  )
  m = results["metrics"]
  assert results["num_examples"] == 2 and results["num_examples_requested"] == 1000
  assert results["used_ema"] is True and results["checkpoint_step"] == 5
  assert not any(k.startswith(("ssim", "pixel_accuracy", "digit", "colour")) for k in m)
  assert {"lpips_diversity_a2b", "kid_vgg16_a2b", "kid_vgg16_b2a"} <= set(m)
  # Everything called 'flat': IoU(flat) = flat pixels / labelled pixels, the other
  # labelled classes 0, the classes absent from both NaN (left out of the mean).
  gt = want[..., 0]
  valid = gt != 255
  assert valid.sum() > 0
  iou = results["details"]["segmentation_a2b"]["iou"]
  assert iou[1] == pytest.approx((gt == 1).sum() / valid.sum())
  present = set(np.unique(gt[valid]).tolist()) | {1}
  for c in range(8):
    if c not in present:
      assert iou[c] is None
    elif c != 1:
      assert iou[c] == 0.0
  assert m["segmentation_miou_a2b"] == pytest.approx(np.mean([iou[c] for c in present]))
  assert m["segmentation_pixel_accuracy_a2b"] == pytest.approx(iou[1])
  md = open(os.path.join(workdir, "eval", "results.md")).read()
  assert "Segmentation mIoU" in md and "Per-class IoU" in md and "vehicle" in md


@pytest.mark.slow
def test_feature_mask_effect_benchmark(workdir):
  """benchmarks/feature_mask_effect.py on the tiny run: the mask lies in (0.5, 1),
  and switching it off at test time changes the translations."""
  script = os.path.join(REPO, "benchmarks", "feature_mask_effect.py")
  env = dict(os.environ, PYTHONPATH=str(REPO))
  result = subprocess.run(
    [sys.executable, script, f"--workdir={workdir}", "--num_examples=8", "--batch_size=4"],
    capture_output=True,
    text=True,
    env=env,
    cwd=REPO,
    timeout=300,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  out = result.stdout
  report = json.loads(out[out.index("\n{") + 1 :])
  for direction in ("a2b", "b2a"):
    r = report[direction]
    assert 0.5 <= r["mask_min"] <= r["mask_max"] <= 1.0, r
    assert r["mask_spatial_cv"] > 0, r
    assert r["mean_abs_pixel_change_uint8"] > 0, r
    for key in ("ssim_with_mask", "ssim_mask_off"):
      assert -1.0 <= r[key] <= 1.0, r


@pytest.mark.slow
def test_mnist_multiple_mask_knowledge(tmp_path):
  """evaluate scores what the feature mask knows of MNIST-Multiple's classes,
  for the A sources (classes from gt_a2b) and the B sources (from themselves)."""
  from configs import mnist_multiple as mm_config  # pylint: disable=g-import-not-at-top
  from egsc_jax import grids  # pylint: disable=g-import-not-at-top
  from egsc_jax.data import mnist_source  # pylint: disable=g-import-not-at-top
  from egsc_jax.eval import colour  # pylint: disable=g-import-not-at-top

  manual = tmp_path / "manual"
  mnist_source.write_fake_mnist(manual, num_train=20, num_test=10)
  data_dir = str(tmp_path / "tfds")
  build.build("mnist_multiple", data_dir=data_dir, manual_dir=str(manual))
  config = mm_config.get_config("tiny")
  config.data.data_dir = data_dir
  config.data.image_size = (28, 28)  # F's mask is 7x7 (two down-samplings)
  workdir = str(tmp_path / "run")
  write_untrained_workdir(config, workdir, stage1_checkpoint=True)
  results = evaluate.evaluate_workdir(workdir, batch_size=8, num_examples=10)
  mask = results["details"]["mask"]
  # benchmarks/mask_knowledge.py reads the same F from the stage-1 checkpoint.
  script = os.path.join(REPO, "benchmarks", "mask_knowledge.py")
  out = subprocess.run(
    [sys.executable, script, f"--workdir={workdir}", "--split=test", "--num_examples=10"],
    capture_output=True,
    text=True,
    cwd=REPO,
    env=dict(os.environ, PYTHONPATH=str(REPO)),
    timeout=600,
    check=False,
  )
  assert out.returncode == 0, out.stderr[-3000:]
  by_step = json.loads(out.stdout[out.stdout.index("\n{") + 1 :])
  assert list(by_step) == ["3"]
  for domain in ("a", "b"):
    for key, value in mask[domain].items():
      assert by_step["3"][domain][key] == pytest.approx(value, abs=1e-6), (domain, key)
  batch = next(input_pipeline.eval_batches(config, split="test", batch_size=10))
  for domain, coloured in (("a", "gt_a2b"), ("b", "b")):
    r = mask[domain]
    classes = colour.digit_class_map(grids.to_uint8(batch[coloured]))
    share = np.mean(classes >= 0)
    assert r["digit_share"] == pytest.approx(share) and 0 < share < 1
    for key in ("digit_iou", "class_iou_mean", "probe_accuracy"):
      assert 0 <= r[key] <= 1, (domain, key, r)
    # The probe is fitted on the first 5 canvases and scored on the last 5.
    fit, held_out = classes[:5].ravel(), classes[5:].ravel()
    values, counts = np.unique(fit, return_counts=True)
    majority = values[np.argmax(counts)]
    assert r["majority_accuracy"] == pytest.approx(np.mean(held_out == majority))
  md = open(os.path.join(workdir, "eval", "results.md")).read()
  assert "What the feature mask knows" in md
  # Without a mask there is nothing to score.
  config.model.use_feature_mask = False
  other = str(tmp_path / "no_mask")
  write_untrained_workdir(config, other)
  assert "mask" not in evaluate.evaluate_workdir(other, batch_size=8, num_examples=10)["details"]


@pytest.mark.slow
def test_learning_curve_script_compares_runs(workdir, tmp_path):
  """benchmarks/learning_curve.py reads a run's periodic scores (on validation
  since the MNIST builders' 1.1.0) and plots several runs under their labels."""
  script = os.path.join(REPO, "benchmarks", "learning_curve.py")
  out_png = tmp_path / "curve.png"
  result = subprocess.run(
    [
      sys.executable,
      script,
      f"--workdir=first={workdir}",
      f"--workdir=again={workdir}",
      f"--out={out_png}",
    ],
    capture_output=True,
    text=True,
    cwd=REPO,
    env=dict(os.environ, PYTHONPATH=str(REPO)),
    timeout=300,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"first ({workdir}, validation)" in result.stdout
  assert f"again ({workdir}, validation)" in result.stdout
  rows = [l for l in result.stdout.splitlines() if l.startswith("| 3 |")]
  assert len(rows) == 2 and rows[0] == rows[1]  # the tiny run evaluates at 3
  with Image.open(out_png) as im:
    assert im.size == (600, 400)


@pytest.mark.slow
def test_mask_study_script_runs_without_tensorflow(tmp_path):
  """benchmarks/mask_study.py (the accelerator run of the mask study) on tiny
  sizes and the small canvases, with TensorFlow and tfds blocked as on a lent
  GPU machine: one shared stage 1, the three stage-2 runs (MUNIT without F), their
  validation curves, the mask's scores, and each run's saved parameters and grids."""
  out = tmp_path / "study"
  # The path finder sees no TensorFlow, as if it were not installed (a finder
  # that raised would also break etils' find_spec('tensorflow') probe).
  code = (
    "import importlib.machinery, runpy, sys\n"
    "class NoTensorFlow(importlib.machinery.PathFinder):\n"
    "  @classmethod\n"
    "  def find_spec(cls, name, path=None, target=None):\n"
    "    if name.split('.')[0] in ('tensorflow', 'tensorflow_datasets'):\n"
    "      return None\n"
    "    return importlib.machinery.PathFinder.find_spec(name, path, target)\n"
    "sys.meta_path = [NoTensorFlow if f is importlib.machinery.PathFinder else f\n"
    "                 for f in sys.meta_path]\n"
    f"sys.argv = ['mask_study.py', '--tiny', '--out={out}', '--eval_pairs=8',\n"
    "            '--train_pairs=32', '--variant=small', '--set', 'optim.lr=1e-3',\n"
    "            '--test_pairs=6', '--stage2_iterations=3', '--runs=full,no_mask,munit']\n"
    "runpy.run_path('benchmarks/mask_study.py', run_name='__main__')\n"
  )
  proc = subprocess.run(
    [sys.executable, "-c", code],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=900,
    env=dict(os.environ, PYTHONPATH=str(REPO)),
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "tensorflow" not in proc.stderr.lower(), proc.stderr[-3000:]
  report = json.loads((out / "curves.json").read_text())
  summary, curves = report["summary"], report["curves"]
  assert summary["stage1"]["iterations"] == 2
  assert list(curves) == ["EGSC-IT", "w/o feature mask", "MUNIT"]
  for name in curves:
    assert [r["iteration"] for r in curves[name]] == [1, 2, 3]
    assert summary[name]["iterations"] == 3
    for row in curves[name]:
      assert -1 <= row["ssim_a2b"] <= 1 and 0 <= row["colour_match_b2a"] <= 1
  for domain in ("a", "b"):
    mask = summary["stage1"]["mask"][domain]
    assert 0 < mask["digit_share"] < 0.5 and 0 <= mask["digit_iou"] <= 1
  with Image.open(out / "curves.png") as im:
    # Twelve curves (three runs x SSIM and colour match, both ways): the legend
    # goes below the axes, and the 4-inch figure grows by 0.17 inch a line
    # + 0.3 (plots._finish_and_save): 6.34 inches at 100 dpi.
    assert im.size == (600, 634)
  assert "| EGSC-IT | validation | 3 |" in (out / "summary.md").read_text()
  assert "| w/o feature mask | test | 3 |" in (out / "summary.md").read_text()
  _check_mask_study_saved_runs(out)
  mask_study = benchmark_module("mask_study")
  # --test_only scores the saved runs again: the same numbers, on 6 test pairs.
  again = mask_study.main([f"--out={out}", "--test_only", "--test_pairs=6"])
  assert again == summary["test"] and list(again) == list(curves)
  assert again["MUNIT"]["pairs"] == 6
  # Each run's grids of the same test pairs: the source column is the first six
  # test canvases of the small layout.
  from egsc_jax import grids  # pylint: disable=g-import-not-at-top

  test = mask_study.canvases(_study_config(), {"test": 6})["test"]
  k = grids.scale_for((28, 28))
  for slug in ("full", "no_mask", "munit"):
    with Image.open(out / f"{slug}_test_a2b.png") as im:
      grid = np.asarray(im.convert("RGB"))
    for row in range(6):
      y, x = grids.TITLE_HEIGHT + k * (2 + row * 30), k * 2
      np.testing.assert_array_equal(
        grid[y : y + 28 * k : k, x : x + 28 * k : k], grids.to_uint8(test["a"][row])
      )
  assert -1 <= again["EGSC-IT"]["ssim_a2b"] <= 1


def _study_config():
  """The config the test's mask study trains with (`--tiny --variant=small`)."""
  config = config_lib.load_file(os.path.join(REPO, "configs", "mnist_multiple.py:small,tiny"))
  config.data.image_size = (28, 28)
  return config


def _check_mask_study_saved_runs(out):
  """Each run's OUT/{full,no_mask}.msgpack holds the parameters whose A->B
  translations of the first validation pairs are the grid's third column."""
  from flax import serialization  # pylint: disable=g-import-not-at-top

  from egsc_jax import grids, steps  # pylint: disable=g-import-not-at-top

  mask_anatomy, mask_study = benchmark_module("mask_anatomy"), benchmark_module("mask_study")
  config = _study_config()
  val = mask_study.canvases(config, {"validation": 6})["validation"]
  for slug, use_mask in (("full", True), ("no_mask", False)):
    config.model.use_feature_mask = use_mask
    models = build_models(config.model)
    params = serialization.msgpack_restore((out / f"{slug}.msgpack").read_bytes())
    # Jitted, as the script does, for the same rounding.
    translate = jax.jit(
      lambda g, f, s, e, r: steps.translate(g, f, s, e, r, models=models, direction="a2b")
    )
    pred = translate(params["g_params"], params["frozen"], val["a"], val["b"], jax.random.key(0))
    with Image.open(out / f"{slug}_a2b.png") as im:
      grid = np.asarray(im.convert("RGB"))
    k = grids.scale_for((28, 28))
    for row in range(6):  # cell (row, 2): below the title strip, k-fold enlarged
      y, x = grids.TITLE_HEIGHT + k * (2 + row * 30), k * (2 + 2 * 30)
      np.testing.assert_array_equal(
        grid[y : y + 28 * k : k, x : x + 28 * k : k], grids.to_uint8(pred[row])
      )
  # benchmarks/mask_anatomy.py reads the study's config.json and full.msgpack.
  anatomy = mask_anatomy.main([f"--study={out}", "--pairs=6", f"--heatmaps={out}/heat"])
  for domain in ("a", "b"):  # 4 rows of source | mean | 6 channels, 28x28 cells
    with Image.open(out / f"heat_{domain}.png") as im:
      assert im.size == (k * (8 * 30 + 2), grids.TITLE_HEIGHT + k * (4 * 30 + 2))
  assert 0 <= anatomy["pattern_share_a"]["median"] <= 1
  assert 0 <= anatomy["pattern_share_b"]["above_half"] <= 1
  assert -1 <= anatomy["polarity_correlation"] <= 1
  for domain in ("a", "b"):
    r = anatomy["reconstruction"][domain]
    assert r["l1"] > 0 and r["l1_flat_content"] > 0 and r["l1_bare_background"] > 0


def test_comparison_grid_puts_each_runs_translations_under_its_label(workdir, tmp_path):
  """benchmarks/comparison_grid.py: rows are the first test pairs, columns
  source | exemplar | ground truth | each run's translation, as egsc-evaluate
  translates them (pair i's exemplar is the other image of pair i)."""
  from egsc_jax import grids  # pylint: disable=g-import-not-at-top

  script = benchmark_module("comparison_grid")
  trained = trained_run.load_trained(workdir)
  translator = api.Translator.from_trained(trained, batch_size=8)
  (ref,) = translations.translate_split(
    translator, trained.config, direction="b2a", num_examples=3, split="test"
  )
  assert not np.array_equal(ref["pred"], ref["gt"])
  expected = grids.titled_grid(
    np.stack([ref["source"], ref["exemplar"], ref["gt"], ref["pred"], ref["pred"]], axis=1),
    ["source B", "exemplar A", "ground truth", "first", "again"],
  )
  got = script.grid(
    [("first", trained), ("again", trained)], direction="b2a", pairs=3, split="test"
  )
  np.testing.assert_array_equal(got, expected)
  script.main([f"--workdir=first={workdir}", f"--out={tmp_path}/cmp", "--pairs=2"])
  for direction in ("a2b", "b2a"):
    with Image.open(tmp_path / f"cmp_{direction}.png") as im:
      written = np.asarray(im.convert("RGB"))
    one_run = script.grid([("first", trained)], direction=direction, pairs=2, split="test")
    np.testing.assert_array_equal(written, one_run)


def test_comparison_table_reads_test_scores_and_refuses_others(tmp_path):
  """benchmarks/comparison_table.py: a run's eval/results.json (the evaluate
  command on test) or else its training's final evaluation, mean ± std over
  seeds; a score of another split (either file) is an error naming the file."""
  comparison_table = benchmark_module("comparison_table")
  root = tmp_path / "root"
  (root / "munit_s19" / "eval").mkdir(parents=True)
  (root / "munit_s20" / "stage2").mkdir(parents=True)
  results = root / "munit_s19" / "eval" / "results.json"
  results.write_text(json.dumps({"split": "test", "metrics": {"ssim_a2b": 0.4}}))
  final = root / "munit_s20" / "stage2" / "final_metrics.json"
  final.write_text(json.dumps({"ssim_a2b": 0.6}))
  config = root / "munit_s20" / "config.json"
  config.write_text(json.dumps({"dataset": "mnist_single", "train": {"eval_split": "test"}}))
  lines = comparison_table.table(comparison_table.collect(str(root), {})).splitlines()
  munit = [line for line in lines if line.startswith("| MUNIT |")]
  assert munit and munit[0].startswith("| MUNIT | 2 | 0.500 ± 0.141 |")
  # Training's own evaluation counts only where its config put it on test.
  config.write_text(json.dumps({"dataset": "mnist_single", "train": {"eval_split": "validation"}}))
  with pytest.raises(SystemExit, match=f"{final}: training evaluated on the 'validation' split"):
    comparison_table.collect(str(root), {})
  config.write_text(json.dumps({"dataset": "mnist_single", "train": {"eval_split": "test"}}))
  results.write_text(json.dumps({"split": "validation", "metrics": {"ssim_a2b": 0.4}}))
  with pytest.raises(SystemExit, match=f"{results}: scored on the 'validation' split"):
    comparison_table.collect(str(root), {})


def test_photo_grades_table_means_evaluated_runs_by_grade(tmp_path):
  """benchmarks/photo_grades_table.py: the evaluate command's test scores,
  overall and by grade, mean ± std over seeds; a run not yet evaluated is left
  out, a score of another split is an error naming the file."""
  table = benchmark_module("photo_grades_table")
  root = tmp_path / "root"
  for seed, ssim in ((19, 0.5), (20, 0.7)):
    run = root / f"faithful_s{seed}"
    (run / "eval").mkdir(parents=True)
    (run / "wall_seconds").write_text(str(60 * (100 + seed)))
    grades = {
      g: {"count": 2, "ssim": ssim + i / 100, "lpips": 0.2} for i, g in enumerate(table.GRADES)
    }
    metrics = {"ssim_a2b": ssim, "lpips_gt_a2b": 0.3, "ssim_b2a": 0.6, "lpips_gt_b2a": 0.1}
    (run / "eval" / "results.json").write_text(
      json.dumps({"split": "test", "metrics": metrics, "details": {"per_grade": {"a2b": grades}}})
    )
  # Trained, scored by training on validation only: not in the tables yet.
  (root / "unit_s19" / "stage2").mkdir(parents=True)
  (root / "unit_s19" / "stage2" / "final_metrics.json").write_text(json.dumps({"ssim_a2b": 0.1}))
  runs = table.collect(str(root), {})
  overall = table.overall_table(runs).splitlines()
  assert overall[2] == (
    "| EGSC-IT as published (`:faithful`) | 2 | 0.600 ± 0.141 | 0.300 ± 0.000 | 0.600 ± 0.000 "
    "| 0.100 ± 0.000 | 120 min |"
  )
  assert "| UNIT (`:faithful,unit`) | 0 |" + " not run |" * 5 in overall
  by_grade = table.grade_table(runs, "a2b").splitlines()
  # night is the second grade: 0.51 and 0.71.
  assert by_grade[2].split(" | ")[2] == "0.610 ± 0.141 / 0.200 ± 0.000"
  results = root / "faithful_s20" / "eval" / "results.json"
  results.write_text(json.dumps({"split": "validation", "metrics": {}}))
  with pytest.raises(SystemExit, match=f"{results}: scored on the 'validation' split"):
    table.collect(str(root), {})
