"""The training program: two stages, resume, data parallelism, preemption, NaN guard.

Runs the real pipeline (TFDS mnist_single built from the offline MNIST digits
into a temporary data_dir), real Orbax checkpoints and a real 8-device mesh
(8 fake CPU devices, see conftest.py).
"""

import functools
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import parse_config, tiny_config
from PIL import Image
from skimage.metrics import structural_similarity

from egsc_jax import (
  api,
  checkpointing,
  config_files,
  config_lib,
  errors,
  grids,
  sharding,
  steps,
  train,
  trained_run,
)
from egsc_jax.eval import training as eval_training
from egsc_jax.eval import translations

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "mnist_single.py")


@pytest.fixture
def data_dir(mnist_data_dir):
  return mnist_data_dir


def leaves(state):
  return [
    np.asarray(x)
    for x in jax.tree.leaves(
      (
        state.step,
        state.g_params,
        state.d_params,
        state.g_opt_state,
        state.d_opt_state,
        state.ema_params,
        state.frozen,
      )
    )
  ]


@pytest.fixture
def full_run(tiny_run):
  return tiny_run


def test_two_stage_run_writes_checkpoints_logs_and_images(full_run):
  workdir, config, result = full_run
  assert result["status"] == "done"
  assert int(result["state"].step) == 3
  for stage, last in (("stage1", 2), ("stage2", 3)):
    ckpt = checkpointing.Checkpointer(os.path.join(workdir, stage, "checkpoints"), keep=3)
    assert ckpt.latest_step() == last
    ckpt.close()
    assert any(
      f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(workdir, stage))
    )
  images = os.listdir(os.path.join(workdir, "stage2", "images"))
  assert sorted(images) == ["translate_a2b_0000003.png", "translate_b2a_0000003.png"]
  assert sorted(os.listdir(os.path.join(workdir, "stage1", "images"))) == [
    "reconstruct_a_0000002.png",
    "reconstruct_b_0000002.png",
  ]
  # source | exemplar | translation | ground truth, 28x28 cells enlarged 5x
  # under the titles; the ground-truth column is the enlarged ground truth.
  with Image.open(os.path.join(workdir, "stage2", "images", "translate_b2a_0000003.png")) as im:
    grid = np.asarray(im)
  rows = config.train.num_image_examples
  assert grid.shape == (grids.TITLE_HEIGHT + 5 * (rows * 30 + 2), 5 * (4 * 30 + 2), 3)
  gt = eval_training.fixed_examples(config)["gt_b2a"]
  for r in range(rows):
    y, x = grids.TITLE_HEIGHT + 5 * (2 + r * 30), 5 * (2 + 3 * 30)
    np.testing.assert_array_equal(
      grid[y : y + 140, x : x + 140], grids.upscale(grids.to_uint8(gt[r]), 5)
    )
  # The final SSIM equals skimage's on the same translations (the EMA
  # parameters, noise keyed per example, the first eval_examples pairs of the
  # evaluation split).
  metrics = result["metrics"]
  assert metrics["iteration"] == 3 and {"ssim_a2b", "ssim_b2a"} <= set(metrics)
  translator = api.Translator.from_trained(trained_run.load_trained(workdir))
  for d in ("a2b", "b2a"):
    pairs = [
      (p, g)
      for b in translations.translate_split(
        translator,
        config,
        direction=d,
        num_examples=config.train.eval_examples,
        split=config.train.eval_split,
      )
      for p, g in zip(b["pred"], b["gt"])
    ]
    assert len(pairs) == config.train.eval_examples
    ref = np.mean([structural_similarity(p, g, channel_axis=-1, data_range=255) for p, g in pairs])
    assert metrics[f"ssim_{d}"] == pytest.approx(ref, abs=1e-4), d
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, "stage1", "checkpoints"), keep=3)
  _, meta = ckpt.restore(2)
  ckpt.close()
  assert meta["stage"] == 1 and meta["data_step"] == 4
  # EMA moved away from its start but differs from the live parameters.
  ema, live = result["state"].ema_params, result["state"].g_params
  assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(ema), jax.tree.leaves(live)))


def test_tensorboard_has_every_scalar_and_the_hparams(full_run):
  """The scalars (per-scheme scores included) and the run's config are in
  TensorBoard; the log only gets progress_line's summary."""
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top

  workdir, config, _ = full_run
  events = event_accumulator.EventAccumulator(
    os.path.join(workdir, "stage2"), size_guidance={event_accumulator.TENSORS: 0}
  )
  events.Reload()
  tags = set(events.Tags()["tensors"]) | set(events.Tags()["scalars"])
  assert {
    "total",
    "d_total",
    "steps_per_sec",
    "ssim_a2b",
    "ssim_b2a",
    "a2b/blue_on_green/ssim",
    "b2a/white_on_black/colour_match",
  } <= tags
  # The label-free scores every dataset gets come on top of the ground-truth ones.
  assert {"kid_vgg16_a2b", "kid_vgg16_b2a", "lpips_diversity_a2b", "lpips_diversity_b2a"} <= tags
  hparams = events.PluginTagToContent("hparams")
  assert hparams, "no hparams in stage2's events"
  text = b"".join(hparams.values())
  for key in (b"optim.lr", b"model.adain_mode", b"data.image_size", b"dataset"):
    assert key in text, key
  assert train.hparams(config)["data.image_size"] == "(28, 28)"


def test_progress_line_is_one_line_with_rate_and_eta():
  line = train.progress_line(
    2,
    60,
    120,
    {
      "total": 1.23456,
      "d_total": 0.5,
      "lr": 2e-3,
      "kl": 1.9e6,
      "a2b/x/ssim": 0.9,
      "steps_per_sec": 2.0,
    },
    done_since_start=50,
    elapsed=25.0,
  )
  assert line == (
    "stage 2  iter 60/120  50%  2.00 it/s  ETA 30 s  total=1.235  kl=1.9e+06  d_total=0.5  lr=0.002"
  )
  assert "ETA 3 min" in train.progress_line(1, 0, 200, {}, done_since_start=1, elapsed=1.0)
  assert "ETA 27.8 h" in train.progress_line(1, 0, 100_000, {}, done_since_start=1, elapsed=1.0)


def test_second_call_resumes_and_does_nothing_more(full_run):
  workdir, config, result = full_run
  again = train.train_and_evaluate(config, workdir)
  assert again["status"] == "done"
  for a, b in zip(leaves(result["state"]), leaves(again["state"])):
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_stop_and_resume_is_bitwise_identical(full_run, tmp_path):
  """Interrupt mid stage 1 and mid stage 2; the resumed run ends bitwise equal."""
  _, config, result = full_run
  workdir = str(tmp_path / "resumed")
  first = train.train_and_evaluate(config, workdir, stop_at=(1, 1))
  assert first["status"] == "stopped" and int(first["state"].step) == 1
  second = train.train_and_evaluate(config, workdir, stop_at=(2, 1))
  assert second["status"] == "stopped" and int(second["state"].step) == 1
  third = train.train_and_evaluate(config, workdir)
  assert third["status"] == "done"
  for a, b in zip(leaves(result["state"]), leaves(third["state"])):
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_munit_run_trains_resumes_and_translates(data_dir, tmp_path):
  """tiny,munit: stage 2 only; stopped after iteration 1 and resumed, it ends
  bitwise where an uninterrupted run ends, and the Translator translates with
  the exemplars' style codes."""
  config = tiny_config(data_dir, variant="tiny,munit")
  config_lib.validate(config)
  whole = train.train_and_evaluate(config, str(tmp_path / "whole"))
  workdir = str(tmp_path / "resumed")
  first = train.train_and_evaluate(config, workdir, stop_at=(2, 1))
  assert first["status"] == "stopped" and int(first["state"].step) == 1
  again = train.train_and_evaluate(config, workdir)
  assert again["status"] == "done" and int(again["state"].step) == 3
  assert not os.path.exists(os.path.join(workdir, "stage1"))  # no F to pretrain
  for a, b in zip(leaves(whole["state"]), leaves(again["state"])):
    np.testing.assert_array_equal(a, b)
  assert {"ssim_a2b", "ssim_b2a"} <= set(again["metrics"])
  t = api.Translator.from_workdir(workdir, batch_size=8)
  assert t.trained.step == 3 and t.trained.used_ema
  rng = np.random.default_rng(0)
  sources = [rng.integers(0, 256, (28, 28, 3), np.uint8) for _ in range(2)]
  exemplars = [rng.integers(0, 256, (28, 28, 3), np.uint8) for _ in range(3)]
  out = t.translate(sources, exemplars, "a2b")
  assert [o.shape for o in out] == [(3, 28, 28, 3)] * 2
  style = t.style(exemplars, "b")
  assert style.mean.shape == (3, 1, 1, config.model.munit_style_dim)
  assert style.var.shape == (3, 1, 1, 0)
  for x, y in zip(t.translate_with_style(sources, style), out):
    np.testing.assert_array_equal(x, y)
  assert np.abs(out[0][0].astype(int) - out[0][1]).max() > 0  # the exemplar matters
  with pytest.raises(ValueError, match="no feature mask"):
    t.mask(sources, "a")


def _one_iteration_grads(mesh, state, batch, rng, *, models, sc, vgg, vgg_params):
  """Stage-2 D and G losses and gradients of one batch, batch sharded on `mesh`."""
  rep = sharding.replicated(mesh)
  state, vgg_params = jax.device_put((state, vgg_params), rep)
  batch = jax.device_put(batch, sharding.batch_sharding(mesh))
  d = jax.jit(jax.grad(functools.partial(steps.stage2_d_loss, models=models, sc=sc), has_aux=True))(
    state.d_params, state, batch, rng
  )
  g = jax.jit(
    jax.grad(functools.partial(steps.stage2_g_loss, models=models, sc=sc, vgg=vgg), has_aux=True)
  )(state.g_params, state, batch, rng, vgg_params)
  return jax.device_get((d, g))


def test_one_iteration_gradients_match_on_eight_devices_and_one(full_run):
  """Data parallelism changes nothing but the order of the batch reductions.

  One stage-2 D and G step of the trained tiny run, perceptual loss included,
  on a real test batch: the batch split over 8 devices vs on one. Reordering a
  float32 sum of N terms moves it by about sqrt(N) * 2**-24 of the terms'
  absolute sum. The losses are means over ~10^4 values: 1e-5 relative. The
  whole gradient (global L2): 1e-5 relative (measured 7e-7). A single leaf
  such as a conv bias sums N = 8 * 28 * 28 terms of both signs, whose
  cancellation can lift the relative error of the sum 10-20x over sqrt(N) *
  2**-24 = 5e-6: 3e-4 relative L2 per leaf (measured at most 3e-5 here).
  These hold because the forward pass is well-conditioned: standard AdaIN
  normalises the content by its std (docs/benchmarks.md, "Data-parallel
  numerics", for the authors' 'official' AdaIN).
  """
  from egsc_jax.data import input_pipeline
  from egsc_jax.models import build_models, vgg_weights

  assert jax.device_count() == 8
  _, config, result = full_run
  config = config.copy_and_resolve_references()
  config.loss.style, config.loss.content = 1e3, 1e1  # L_P on, as the configs
  assert config.model.adain_mode == "standard"
  models = build_models(config.model)
  sc = steps.step_config(config, stage=2)
  vgg, vgg_params = vgg_weights.init_vgg(
    config.vgg.arch, config.vgg.weights, num_layers=config_lib.vgg_num_layers(config)
  )
  batch = next(
    iter(input_pipeline.eval_batches(config, split="test", batch_size=8, num_examples=8))
  )
  batch = {k: np.asarray(batch[k], np.float32) for k in ("a", "b")}
  kw = dict(models=models, sc=sc, vgg=vgg, vgg_params=vgg_params)
  rng = jax.random.key(3)
  eight = _one_iteration_grads(sharding.make_mesh(), result["state"], batch, rng, **kw)
  one = _one_iteration_grads(
    sharding.make_mesh(jax.devices()[:1]), result["state"], batch, rng, **kw
  )
  for (g8, m8), (g1, m1) in zip(eight, one):
    assert m8.keys() == m1.keys()
    for k in m1:
      np.testing.assert_allclose(m8[k], m1[k], rtol=1e-5, atol=1e-7, err_msg=k)
    flat8 = np.concatenate([np.ravel(x) for x in jax.tree.leaves(g8)])
    flat1 = np.concatenate([np.ravel(x) for x in jax.tree.leaves(g1)])
    assert np.linalg.norm(flat8 - flat1) <= 1e-5 * np.linalg.norm(flat1)
    for (path, b), a in zip(jax.tree_util.tree_leaves_with_path(g1), jax.tree.leaves(g8)):
      norm = np.linalg.norm(b)
      assert norm > 0, jax.tree_util.keystr(path)
      assert np.linalg.norm(a - b) <= 3e-4 * norm, (
        jax.tree_util.keystr(path),
        np.linalg.norm(a - b) / norm,
      )


def test_batch_sharded_over_data_axis():
  mesh = sharding.make_mesh()
  local = {"a": np.zeros((6, 8, 28, 28, 3), np.float32)}
  g = sharding.to_global(local, sharding.stacked_batch_sharding(mesh), batch_axis=1)
  assert g["a"].shape == (6, 8, 28, 28, 3)
  assert len(g["a"].addressable_shards) == 8
  assert {s.data.shape for s in g["a"].addressable_shards} == {(6, 1, 28, 28, 3)}
  with pytest.raises(ValueError, match="config.batch_size=12"):
    sharding.check_batch_size(12, mesh)


def test_nan_guard_names_step_and_term_and_keeps_last_checkpoint(full_run, tmp_path):
  src, _, _ = full_run
  workdir = str(tmp_path / "nan")
  # Reuse the finished stage 1, then diverge in stage 2's first iteration.
  shutil.copytree(os.path.join(src, "stage1"), os.path.join(workdir, "stage1"))
  config = tiny_config(full_run[1].data.data_dir, **{"optim.lr": math.nan})
  with pytest.raises(
    train.NonFiniteLossError, match=r"stage 2, iteration 1: loss term 'cycle' is nan"
  ):
    train.train_and_evaluate(config, workdir)
  stage2 = checkpointing.Checkpointer(os.path.join(workdir, "stage2", "checkpoints"), keep=3)
  assert stage2.latest_step() is None  # nothing diverged was saved
  stage2.close()
  stage1 = checkpointing.Checkpointer(os.path.join(workdir, "stage1", "checkpoints"), keep=3)
  assert stage1.latest_step() == 2  # the last good one still loads
  restored, _ = stage1.restore(2)
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(restored))
  stage1.close()


# ----------------------------------------------------------------------------
# Config files and overrides
# ----------------------------------------------------------------------------


def test_training_evaluates_and_shows_the_validation_split(mnist_data_dir):
  """Settings are chosen on validation: training's scores and grids read the
  first validation pairs; --config.train.eval_split=test reads test."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  c = tiny_config(mnist_data_dir)
  builder = tfds.builder("mnist_single", data_dir=mnist_data_dir)
  for split in ("validation", "test"):
    c.train.eval_split = split
    assert eval_training.eval_split(c) == split
    k = c.train.num_image_examples
    fixed = eval_training.fixed_examples(c)
    stored = next(iter(tfds.as_numpy(builder.as_dataset(split=f"{split}[:{k}]", batch_size=k))))
    for key in ("a", "b", "gt_a2b"):
      np.testing.assert_allclose(
        fixed[key], stored[f"image_{key}" if len(key) == 1 else key] / 127.5 - 1, atol=1e-6
      )


def test_paper_configs_train_for_t_equal_to_the_training_pairs(mnist_data_dir):
  """Every paper config leaves T to the data (-1, docs/method.md §3.1 item 4), and
  resolve_num_iterations sets it to the number of training pairs: 3,500 for the
  offline MNIST-Single (3,500 train digits per domain, 500 held out as
  validation)."""
  for name in ("mnist_single", "mnist_multiple", "gta5_bdd", "celeba_gender"):
    c = parse_config([f"--config={os.path.join(REPO, 'configs', name + '.py')}"])
    assert (c.stage1.num_iterations, c.stage2.num_iterations) == (-1, -1), name
  c = parse_config([f"--config={CONFIG}", f"--config.data.data_dir={mnist_data_dir}"])
  resolved = train.resolve_num_iterations(c)
  assert (resolved.stage1.num_iterations, resolved.stage2.num_iterations) == (3500, 3500)
  assert (c.stage1.num_iterations, c.stage2.num_iterations) == (-1, -1)  # not mutated
  # Only the stages left at -1 are resolved; explicit values are kept.
  c = parse_config(
    [
      f"--config={CONFIG}",
      f"--config.data.data_dir={mnist_data_dir}",
      "--config.stage2.num_iterations=7",
    ]
  )
  resolved = train.resolve_num_iterations(c)
  assert (resolved.stage1.num_iterations, resolved.stage2.num_iterations) == (3500, 7)


# ----------------------------------------------------------------------------
# Preemption: SIGTERM saves and exits cleanly; SIGKILL resumes from the last
# complete checkpoint
# ----------------------------------------------------------------------------


def _launch(workdir, data_dir, log_path, iterations):
  cmd = [
    sys.executable,
    "-m",
    "egsc_jax.main",
    f"--config={CONFIG}:tiny,no_perceptual",
    f"--workdir={workdir}",
    f"--config.data.data_dir={data_dir}",
    "--config.stage1.num_iterations=2",
    f"--config.stage2.num_iterations={iterations}",
    "--config.train.log_every=1",
    "--config.train.checkpoint_every=5",
    "--config.train.image_every=100000",
    "--config.train.eval_every=100000",
  ]
  # The tests' 8 devices: the programs the in-process tiny runs compiled, read
  # from the session's compilation cache (the environment).
  return subprocess.Popen(cmd, cwd=REPO, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)


# A hang guard, not a speed limit: under a loaded CI machine a start (imports,
# tracing, reading the compiled programs) has taken over 4 minutes.
def _wait_for(log_path, text, proc, timeout=900):
  deadline = time.time() + timeout
  while time.time() < deadline:
    with open(log_path) as f:
      if text in f.read():
        return
    if proc.poll() is not None:
      raise AssertionError(f"process exited early:\n{open(log_path).read()[-3000:]}")
    time.sleep(0.2)
  proc.kill()
  raise AssertionError(f"timed out waiting for {text!r}:\n{open(log_path).read()[-3000:]}")


@pytest.mark.slow
def test_sigterm_saves_and_sigkill_resumes(data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  ckpt_dir = os.path.join(workdir, "stage2", "checkpoints")

  # SIGTERM mid stage 2: a checkpoint at the current iteration, and the
  # preemption status (not 0, which means done) for a retry loop.
  log = str(tmp_path / "log1")
  proc = _launch(workdir, data_dir, log, iterations=10_000)
  _wait_for(log, "stage 2  iter 3/", proc)
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=120) == errors.EXIT_PREEMPTED == 75, open(log).read()[-3000:]
  assert "preempted at iteration" in open(log).read()
  ckpt = checkpointing.Checkpointer(ckpt_dir, keep=3)
  stopped_at = ckpt.latest_step()
  assert stopped_at is not None and stopped_at >= 3
  restored, meta = ckpt.restore(stopped_at)
  assert int(restored["step"]) == stopped_at == meta["iteration"]
  ckpt.close()

  # SIGKILL at an arbitrary moment: the next run resumes from a complete one.
  log = str(tmp_path / "log2")
  proc = _launch(workdir, data_dir, log, iterations=10_000)
  _wait_for(log, f"restored iteration {stopped_at}", proc)
  # Past iteration m2 the save at m1 (the next multiples of 5) is complete:
  # Orbax starts a save only after the previous one finished.
  m1 = (stopped_at // 5 + 1) * 5
  _wait_for(log, f"stage 2  iter {m1 + 6}/", proc)
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=60)
  ckpt = checkpointing.Checkpointer(ckpt_dir, keep=3)
  latest = ckpt.latest_step()
  ckpt.close()
  assert latest in (m1, m1 + 5)

  log = str(tmp_path / "log3")
  proc = _launch(workdir, data_dir, log, iterations=latest + 2)
  assert proc.wait(timeout=900) == 0, open(log).read()[-3000:]
  text = open(log).read()
  assert f"restored iteration {latest}" in text
  assert f"stage 2  iter {latest + 2}/{latest + 2}" in text
  # The killed run's workdir lease did not block the resume (egsc_jax/lease.py).
  assert "took over the stale lease" in text and "on this host is gone" in text
  assert not os.path.exists(os.path.join(workdir, "lease.json"))


def test_profile_steps_writes_a_tensorboard_trace(tmp_path):
  """config.train.profile_steps: clu's Profile traces iterations start+2 ..
  start+1+n into stage_dir/plugins/profile/<run>/*.xplane.pb (TensorBoard's
  Profile tab); a stage that ends inside the window still closes its trace."""
  config = config_lib.base_config()
  assert train._profiler(config, str(tmp_path / "off"), start=0) is None
  config.train.profile_steps = 2
  step_fn = jax.jit(lambda x: x @ x)
  x = np.ones((64, 64), np.float32)
  for name, stop in (("full", 6), ("cut", 2)):
    profile = train._profiler(config, str(tmp_path / name), start=3)
    for step in range(4, 4 + stop):
      x = step_fn(x) / 64
      profile(step)
    if name == "cut":
      profile.close()
    # (Had the full window's trace not stopped by itself, the next trace could
    # not start: one trace at a time.)
    traces = list((tmp_path / name / "plugins" / "profile").glob("*/*.xplane.pb"))
    assert len(traces) == 1 and traces[0].stat().st_size > 0, name
  with pytest.raises(RuntimeError):  # none left running
    jax.profiler.stop_trace()


# ----------------------------------------------------------------------------
# Your own images: configs/image_folder.py end to end
# ----------------------------------------------------------------------------


def test_image_folder_config_builds_and_trains_on_a_tiny_folder(tmp_path, caplog):
  """`--config=image_folder:tiny,no_perceptual` on four folders of JPEGs of
  other sizes: training builds the dataset (shrunk to the image size's longer
  side), trains both stages (two stage-1 iterations: two progress lines) and
  writes the translation grids; a second start reuses the build. Without the
  perceptual loss, whose VGG adds about 35 s of compiling (75 s of CPU without
  it on a 2-core CPU, 2026-12-05); the MNIST trainings run it."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  manual = tmp_path / "photos"
  for folder, count, (h, w) in (
    ("trainA", 3, (30, 40)),
    ("trainB", 2, (48, 36)),
    ("testA", 2, (30, 40)),
    ("testB", 2, (48, 36)),
  ):
    (manual / folder).mkdir(parents=True)
    for i in range(count):
      pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
      Image.fromarray(pixels).save(manual / folder / f"{i}.jpg", quality=90)
  c = parse_config(
    [
      "--config=" + config_files.resolve("image_folder:tiny,no_perceptual"),
      f"--config.data.data_dir={tmp_path / 'tfds'}",
      f"--config.data.manual_dir={manual}",
      "--config.data.image_size=(16, 16)",
      "--config.stage1.num_iterations=2",
      "--config.stage2.num_iterations=1",
      "--config.train.eval_every=1",
      "--config.train.image_every=1",
    ]
  )
  config_lib.validate(c)
  assert c.train.log_every == 1
  workdir = str(tmp_path / "run")
  with caplog.at_level(logging.INFO):
    assert train.train_and_evaluate(c, workdir)["status"] == "done"
  # The log has one progress line per log_every interval, with progress_line's
  # few numbers; every scalar (steps_per_sec, per-scheme scores) is for
  # TensorBoard only (test_tensorboard_has_every_scalar_and_the_hparams).
  package = os.path.dirname(train.__file__)
  ours = [r.getMessage() for r in caplog.records if r.pathname.startswith(package)]
  progress = [m for m in ours if re.match(r"stage \d  iter \d+/\d+  ", m)]
  assert [m.split("%")[0] for m in progress] == [
    "stage 1  iter 1/2  50",
    "stage 1  iter 2/2  100",
    "stage 2  iter 1/1  100",
  ], progress
  assert {k for m in progress for k in re.findall(r"  ([^ =]+)=", m)} <= set(train._SHOWN)
  assert not [m for m in (r.getMessage() for r in caplog.records) if "steps_per_sec" in m]
  builder = tfds.builder("image_folder", data_dir=str(tmp_path / "tfds"))
  assert builder.info.metadata["max_side"] == 16
  assert {ex["image_a"].shape for ex in tfds.as_numpy(builder.as_dataset(split="train"))} == {
    (12, 16, 3)
  }  # 40x30 -> 16x12
  pngs = sorted(os.listdir(os.path.join(workdir, "stage2", "images")))
  assert any("translate_a2b" in p for p in pngs), pngs
  # Started again on the same folder: reused (not rebuilt), nothing left to do.
  info = os.path.join(builder.data_dir, "dataset_info.json")
  built_at = os.stat(info).st_mtime_ns
  assert train.train_and_evaluate(c, workdir)["status"] == "done"
  assert os.stat(info).st_mtime_ns == built_at
