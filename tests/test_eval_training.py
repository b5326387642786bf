"""Progress a user can watch on any dataset: a tiny training on a user's own
image folder logs the label-free scores (KID on VGG-16 features, LPIPS
diversity across exemplars) to TensorBoard and writes titled, enlarged grids.

The image folder is built here with the real TFDS builder from known images;
the run is the tests' tiny variant at 28x28, whose programs tiny_run has
compiled already when both run in one session.
"""

import math
import os

import numpy as np
import pytest
from conftest import benchmark_module, tiny_config
from PIL import Image

from egsc_jax import api, config_lib, grids, train
from egsc_jax.data import build as build_lib
from egsc_jax.eval import features, fid_kid, translations
from egsc_jax.eval import training as eval_training


def _blocks(rng, colour):
  """A 28x28 image of 7x7 blocks of `colour` and white, drawn at random."""
  on = rng.random((4, 4)) < 0.5
  img = np.where(np.kron(on, np.ones((7, 7), bool))[..., None], colour, 255)
  return img.astype(np.uint8)


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
  """image_folder of random block images (red A, blue B; 6 test pairs), built,
  then trained 1 + 1 iterations with an evaluation and grids at the end.
  Returns (workdir, config, result)."""
  root = tmp_path_factory.mktemp("progress")
  rng = np.random.default_rng(0)
  for folder, n, colour in (
    ("trainA", 8, (200, 0, 0)),
    ("trainB", 8, (0, 0, 200)),
    ("testA", 6, (200, 0, 0)),
    ("testB", 6, (0, 0, 200)),
  ):
    (root / "manual" / folder).mkdir(parents=True)
    for i in range(n):
      Image.fromarray(_blocks(rng, colour)).save(root / "manual" / folder / f"{i}.png")
  data_dir = str(root / "tfds")
  build_lib.build("image_folder", data_dir=data_dir, manual_dir=str(root / "manual"))
  config = tiny_config(
    data_dir,
    **{
      "stage1.num_iterations": 1,
      "stage2.num_iterations": 1,
      "train.image_every": 1,
      "train.eval_every": 1,
    },
  )
  config.dataset = "image_folder"
  config.data.image_size = (28, 28)
  config_lib.validate(config)
  workdir = str(root / "run")
  result = train.train_and_evaluate(config, workdir)
  assert result["status"] == "done"
  return workdir, config, result


def test_label_free_scores_are_in_tensorboard_for_an_image_folder(folder_run):
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top

  workdir, config, result = folder_run
  events = event_accumulator.EventAccumulator(
    os.path.join(workdir, "stage2"), size_guidance={event_accumulator.TENSORS: 0}
  )
  events.Reload()
  wanted = {f"{score}_{d}" for score in ("kid_vgg16", "lpips_diversity") for d in ("a2b", "b2a")}
  assert wanted <= set(events.Tags()["tensors"])
  assert not {"ssim_a2b", "ssim_b2a"} & set(events.Tags()["tensors"])  # no ground truth
  for tag in wanted:
    (event,) = events.Tensors(tag)
    value = float(
      np.asarray(
        event.tensor_proto.float_val or np.frombuffer(event.tensor_proto.tensor_content, np.float32)
      )[0]
    )
    assert event.step == 1 and math.isfinite(value), (tag, value)
    assert value == pytest.approx(result["metrics"][tag], rel=1e-6)
  # The 6 test pairs (fewer than 8 asked for) are what the scores used.
  assert config.train.label_free_examples == 8
  assert result["metrics"]["lpips_diversity_a2b"] > 0


def test_config_json_names_the_split_training_scored(folder_run):
  """The config asked for validation; an image folder has train and test only,
  so training scored test, and the run's config.json says so: the learning
  curve and comparison table read it there."""
  workdir, config, _ = folder_run
  learning_curve = benchmark_module("learning_curve")
  assert config.train.eval_split == "validation"
  assert learning_curve.evaluated_split(workdir) == ("test", "image_folder")


def test_kid_is_the_mmd_of_the_translations_and_their_exemplars(folder_run):
  """The logged KID, recomputed from the evaluate command's path: the split's
  pairs through translations.translate_split, VGG-16 features, the unbiased MMD
  over all of them."""
  workdir, config, result = folder_run
  translator = api.Translator.from_workdir(workdir)
  for d in ("a2b", "b2a"):
    batches = list(
      translations.translate_split(translator, config, direction=d, num_examples=6, split="test")
    )
    pred = np.concatenate([b["pred"] for b in batches])
    real = np.concatenate([b["exemplar"] for b in batches])
    assert len(pred) == 6
    want = fid_kid.mmd2_unbiased(features.vgg16_features(real), features.vgg16_features(pred))
    assert result["metrics"][f"kid_vgg16_{d}"] == pytest.approx(want, rel=1e-4, abs=1e-6)


def test_label_free_scores_need_two_pairs(folder_run):
  workdir, config, _ = folder_run
  translator = api.Translator.from_workdir(workdir)
  reference = eval_training.label_free_reference(config)
  assert len(reference["a"]) == 6 and reference["features"]["b"].shape == (6, 512)

  def first(n):
    return {
      "a": reference["a"][:n],
      "b": reference["b"][:n],
      "features": {d: f[:n] for d, f in reference["features"].items()},
    }

  assert eval_training.label_free_scores(translator, first(1)) == {}
  two = eval_training.label_free_scores(translator, first(2))
  assert set(two) == {
    "kid_vgg16_a2b",
    "kid_vgg16_b2a",
    "lpips_diversity_a2b",
    "lpips_diversity_b2a",
  }
  assert all(math.isfinite(v) for v in two.values())


def test_has_scores():
  from configs import celeba_gender, mnist_single  # pylint: disable=g-import-not-at-top

  folder = celeba_gender.get_config(None)
  folder.dataset = "image_folder"
  assert eval_training.has_scores(folder)
  folder.train.label_free_examples = 0
  assert not eval_training.has_scores(folder)  # nothing to score: no evaluation
  mnist = mnist_single.get_config("cpu")
  mnist.train.label_free_examples = 0
  assert eval_training.has_scores(mnist)  # the ground-truth scores stay


def test_grids_are_titled_and_enlarged_for_an_image_folder(folder_run):
  workdir, config, _ = folder_run
  k = grids.scale_for(config.data.image_size)
  assert k == 5
  with Image.open(os.path.join(workdir, "stage2", "images", "translate_a2b_0000001.png")) as im:
    grid = np.asarray(im)
  # 4 grid rows (train.num_image_examples), source | exemplar | translation:
  # no ground truth in an image folder.
  assert grid.shape == (grids.TITLE_HEIGHT + k * (4 * 30 + 2), k * (3 * 30 + 2), 3)
  body = grid[grids.TITLE_HEIGHT :]
  fixed = eval_training.fixed_examples(config)
  # The source column, cell by cell, is the enlarged test image.
  for r in range(4):
    y = k * (2 + r * 30)
    np.testing.assert_array_equal(
      body[y : y + 140, k * 2 : k * 2 + 140], grids.upscale(grids.to_uint8(fixed["a"][r]), k)
    )
  assert (grid[: grids.TITLE_HEIGHT] != 255).any()
  with Image.open(os.path.join(workdir, "stage1", "images", "reconstruct_b_0000001.png")) as im:
    assert im.size == (k * (2 * 30 + 2), grids.TITLE_HEIGHT + k * (4 * 30 + 2))


def test_lpips_diversity_is_zero_for_identical_exemplars(folder_run):
  workdir, config, _ = folder_run
  translator = api.Translator.from_workdir(workdir)
  fixed = eval_training.fixed_examples(config)
  same = np.repeat(fixed["b"][:1], 3, axis=0)
  assert eval_training.exemplar_diversity(
    translator, fixed["a"][:2], same, direction="a2b"
  ) == pytest.approx(0.0, abs=1e-6)
  assert (
    eval_training.exemplar_diversity(translator, fixed["a"][:2], fixed["b"][:3], direction="a2b")
    > 1e-4
  )
