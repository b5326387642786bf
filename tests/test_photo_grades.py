"""Photo-Grades: the grades, the crops, the builder (split by photograph, ground
truth, determinism), its scores per grade, and its config and a tiny training."""

import math
import os
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds
from skimage.metrics import structural_similarity

from egsc_jax import config_lib, evaluate, grids, train
from egsc_jax.data import build, input_pipeline, photo_grades, photo_grading
from egsc_jax.eval import report, scores

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "photo_grades.py")
# Small builds: the full one (4,000 / 500 / 1,000 pairs) takes about 30 s.
SIZES = {"train": 40, "validation": 10, "test": 20}
LUMA = (0.299, 0.587, 0.114)


def _grade_pixel(rgb, grade):
  """The grade of one pixel, restated with scalars: uint8 (r, g, b) -> 3 ints."""
  x = [v / 255 for v in rgb]
  y = sum(w * v for w, v in zip(LUMA, x))
  out = []
  for c in range(3):
    s = min(max(y + grade.saturation * (x[c] - y), 0.0), 1.0)
    v = grade.lift[c] + (grade.gain[c] - grade.lift[c]) * s ** grade.gamma[c]
    out.append(int(math.floor(min(max(v, 0.0), 1.0) * 255 + 0.5)))
  return out


def _build(data_dir):
  with pytest.MonkeyPatch.context() as mp:
    for split, num in SIZES.items():
      mp.setitem(photo_grading.SPLIT_SIZES, split, num)
    builder = photo_grades.PhotoGrades(data_dir=str(data_dir))
    build.prepare(builder)
  return builder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("photo_grades")
  _build(path)
  return path


def _examples(data_dir, split):
  builder = tfds.builder("photo_grades", data_dir=str(data_dir))
  return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


# ----------------------------------------------------------------------------
# Grades and crops
# ----------------------------------------------------------------------------


def test_black_and_white_go_to_each_grades_lift_and_gain():
  """Known values: black becomes round(255 * lift), white round(255 * gain)."""
  sepia = photo_grading.GRADES[photo_grading.GRADE_NAMES.index("sepia")]
  pixels = np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8)
  np.testing.assert_array_equal(
    photo_grading.apply_grade(pixels, sepia), [[[31, 20, 10], [250, 217, 163]]]
  )
  for grade in photo_grading.GRADES:
    out = photo_grading.apply_grade(pixels, grade)
    np.testing.assert_allclose(out[0, 0], 255 * np.asarray(grade.lift), atol=0.5)
    np.testing.assert_allclose(out[0, 1], 255 * np.asarray(grade.gain), atol=0.5)
  # The identity grade changes nothing.
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
  np.testing.assert_array_equal(photo_grading.apply_grade(image, photo_grading.NEUTRAL), image)


def test_grades_match_a_scalar_restatement_and_differ_from_each_other():
  rng = np.random.default_rng(1)
  pixels = rng.integers(0, 256, (50, 3), dtype=np.uint8)
  graded = []
  for grade in photo_grading.GRADES:
    out = photo_grading.apply_grade(pixels, grade)
    ref = np.array([_grade_pixel(p, grade) for p in pixels.tolist()])
    # Equal up to a rounding tie (x.5 in one and x.4999... in the other).
    assert np.abs(out.astype(int) - ref).max() <= 1, grade.name
    assert (out == ref).mean() > 0.95, grade.name
    graded.append(out.astype(float))
  # Clearly distinct: every two grades differ by > 15 grey levels on average,
  # and every grade differs from the photograph as it is.
  for i, a in enumerate(graded):
    assert np.abs(a - pixels).mean() > 15, photo_grading.GRADES[i].name
    for j in range(i):
      assert np.abs(a - graded[j]).mean() > 15, (i, j)


def test_crop_is_the_area_mean_of_the_pixels_under_each_output_pixel():
  """A 128-px crop on the pixel grid: each output pixel is its 2x2 block's mean."""
  photo = photo_grading.load_photo(photo_grading.PHOTOS["astronaut"])
  crop = photo_grading.Crop(photo="astronaut", left=10.0, top=20.0, side=128.0)
  out = photo_grading.render_crop(photo, crop)
  region = photo[20:148, 10:138].astype(float)
  ref = region.reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))
  assert out.shape == (64, 64, 3) and out.dtype == np.uint8
  assert np.abs(out - ref).max() <= 1


def test_crops_fit_their_photograph_and_take_the_photographs_in_turn():
  shapes = {"a": (300, 451), "b": (512, 512)}
  crops = photo_grading.draw_crops(np.random.default_rng(0), ("a", "b"), shapes, 101)
  assert sorted(c.photo for c in crops).count("a") in (50, 51)
  for c in crops:
    h, w = shapes[c.photo]
    assert 0.25 * min(h, w) <= c.side <= 0.75 * min(h, w)
    assert 0 <= c.left and c.left + c.side <= w and 0 <= c.top and c.top + c.side <= h


def test_missing_photograph_or_package_is_named():
  photo = photo_grading.Photo("nothing", "skimage", "data/no_such_file.png")
  with pytest.raises(FileNotFoundError, match="'nothing'.*no_such_file.png.*scikit-image"):
    photo_grading.photo_path(photo)
  photo = photo_grading.Photo("nowhere", "no_such_package_h25", "a.png")
  with pytest.raises(FileNotFoundError, match="'nowhere': no_such_package_h25 is not installed"):
    photo_grading.photo_path(photo)


# ----------------------------------------------------------------------------
# The builder
# ----------------------------------------------------------------------------


def test_sizes_features_and_metadata(data_dir):
  builder = tfds.builder("photo_grades", data_dir=str(data_dir))
  assert {s: builder.info.splits[s].num_examples for s in SIZES} == SIZES
  assert builder.info.features["image_a"].shape == (64, 64, 3)
  assert builder.info.features["grade_b"].names == list(photo_grading.GRADE_NAMES)
  photos = builder.info.metadata["photos"]
  assert {n: p["split"] for n, p in photos.items()} == {
    n: s for s, names in photo_grading.SPLIT_PHOTOS.items() for n in names
  }
  assert [g["name"] for g in builder.info.metadata["grades"]] == list(photo_grading.GRADE_NAMES)


def test_split_by_photograph(data_dir):
  """No validation or test photograph is in training (nor its file)."""
  seen = {}
  for split in SIZES:
    examples = _examples(data_dir, split)
    seen[split] = {ex[k].decode() for ex in examples for k in ("photo_a", "photo_b")}
    assert seen[split] == set(photo_grading.SPLIT_PHOTOS[split]), split
  assert not seen["train"] & (seen["test"] | seen["validation"])
  assert not seen["test"] & seen["validation"]
  digests = {
    s: {photo_grading.photo_digest(photo_grading.PHOTOS[n]) for n in seen[s]} for s in seen
  }
  assert not digests["train"] & (digests["test"] | digests["validation"])


@pytest.mark.parametrize("split", ["validation", "test"])
def test_ground_truth_is_the_grade_applied_to_the_source(data_dir, split):
  examples = _examples(data_dir, split)
  assert [ex["id"] for ex in examples] == [b"%05d" % i for i in range(SIZES[split])]
  # Balanced grades: each grade a fifth of the pairs (up to one).
  counts = np.bincount([ex["grade_b"] for ex in examples], minlength=len(photo_grading.GRADES))
  assert counts.max() - counts.min() <= 1
  for ex in examples:
    grade = photo_grading.GRADES[ex["grade_b"]]
    # Known pixels, restated: the corners and the centre of A in B's grade.
    for y, x in ((0, 0), (0, 63), (63, 0), (63, 63), (32, 32)):
      expected = _grade_pixel(ex["image_a"][y, x].tolist(), grade)
      assert np.abs(ex["gt_a2b"][y, x].astype(int) - expected).max() <= 1
    np.testing.assert_array_equal(ex["gt_a2b"], photo_grading.apply_grade(ex["image_a"], grade))
    # B->A: B is its ground truth (the crop as photographed) in B's grade.
    np.testing.assert_array_equal(ex["image_b"], photo_grading.apply_grade(ex["gt_b2a"], grade))


def test_train_split_has_no_ground_truth_and_graded_b(data_dir):
  for ex in _examples(data_dir, "train"):
    assert not ex["gt_a2b"].any() and not ex["gt_b2a"].any()
  assert len({ex["grade_b"] for ex in _examples(data_dir, "train")}) == len(photo_grading.GRADES)


def test_build_is_deterministic(data_dir, tmp_path):
  _build(tmp_path)
  pattern = "photo_grades/1.0.0/*.tfrecord*"
  first, second = sorted(data_dir.glob(pattern)), sorted(pathlib.Path(tmp_path).glob(pattern))
  assert len(first) == len(second) == 3
  for a, b in zip(first, second):
    assert a.read_bytes() == b.read_bytes()


# ----------------------------------------------------------------------------
# Scores per grade, config, a tiny training
# ----------------------------------------------------------------------------


def _config(data_dir, variant="tiny"):
  c = config_lib.load_file(f"{CONFIG}:{variant}")
  c.data.data_dir = str(data_dir)
  return c


def test_scores_by_grade_of_a_perfect_and_a_wrong_translation(data_dir):
  """The ground truth as the translation scores SSIM 1 and LPIPS 0 in every
  grade; the source itself (A->B: no grade applied) scores lower, and its SSIM
  equals skimage's."""
  c = _config(data_dir)
  batch = next(input_pipeline.eval_batches(c, split="test", batch_size=SIZES["test"]))
  assert batch["grade_b"].shape == (SIZES["test"],)
  to_uint8 = grids.to_uint8
  source, gt = to_uint8(batch["a"]), to_uint8(batch["gt_a2b"])
  per_grade = {}
  for name, pred in (("perfect", gt), ("source", source)):
    s = scores.Stats()
    scores.accumulate(
      s,
      dict(pred=pred, gt=gt, source=source, exemplar=to_uint8(batch["b"]), grade=batch["grade_b"]),
      direction="a2b",
      official_stretch=False,
      inception_weights=None,
      classifier=None,
      colour_match=False,
      segment=None,
      lpips_gt=True,
    )
    per_grade[name] = scores.per_scheme(s)
  assert sorted(per_grade["perfect"]) == sorted(photo_grading.GRADE_NAMES)
  names = photo_grading.grade_names(batch["grade_b"])
  for grade, row in per_grade["perfect"].items():
    assert row["count"] == names.count(grade)
    assert row["ssim"] == pytest.approx(1.0) and row["lpips"] == pytest.approx(0, abs=1e-6)
    wrong = per_grade["source"][grade]
    assert wrong["lpips"] > 0.01 and wrong["ssim"] < 1
    keep = [i for i, n in enumerate(names) if n == grade]
    ref = np.mean(
      [structural_similarity(source[i], gt[i], channel_axis=-1, data_range=255) for i in keep]
    )
    assert wrong["ssim"] == pytest.approx(ref, abs=1e-4)


def test_config_variants():
  """Sign-normalised encoder only in the tailored :cpu; faithful is the paper
  setting but for capacity, optimisation and budget."""
  paper = config_lib._flatten(config_lib.load_file(CONFIG))
  for variant in (
    "",
    "tiny",
    "faithful",
    "faithful,no_mask",
    "faithful,unit",
    "faithful,cyclegan",
    "cpu",
    "cpu,no_mask",
    "no_adain",
    "munit",
  ):
    c = config_lib.load_file(f"{CONFIG}:{variant}")
    config_lib.validate(c)
    assert c.dataset == "photo_grades" and tuple(c.data.image_size) == (64, 64)
    assert c.model.content_sign_norm == variant.startswith("cpu"), variant
  faithful = config_lib._flatten(config_lib.load_file(f"{CONFIG}:faithful"))
  may_change = (
    "model.ngf",
    "model.n_enc_res",
    "model.n_dec_res",
    "model.ndf",
    "optim.lr",
    "stage1.",
    "stage2.num_iterations",
    "train.",
    "variant",
  )
  differ = [k for k in paper if paper[k] != faithful[k]]
  assert differ and all(k.startswith(may_change) for k in differ), differ
  cpu = config_lib.load_file(f"{CONFIG}:cpu")
  assert cpu.stage2.num_iterations == faithful["stage2.num_iterations"]


@pytest.mark.slow
def test_tiny_training_scores_each_grade_and_evaluates(data_dir, tmp_path):
  c = _config(data_dir, "tiny,no_perceptual")
  c.train.eval_examples = SIZES["validation"]
  result = train.train_and_evaluate(c, str(tmp_path))
  assert result["status"] == "done"
  metrics = result["metrics"]
  for d in ("a2b", "b2a"):
    assert -1 <= metrics[f"ssim_{d}"] <= 1
  assert {f"a2b/{g}/ssim" for g in photo_grading.GRADE_NAMES} <= set(metrics)
  results = evaluate.evaluate_workdir(str(tmp_path), num_examples=SIZES["test"], batch_size=8)
  for d in ("a2b", "b2a"):
    assert results["metrics"][f"lpips_gt_{d}"] > 0
    rows = results["details"]["per_grade"][d]
    assert sorted(rows) == sorted(photo_grading.GRADE_NAMES)
    assert sum(r["count"] for r in rows.values()) == SIZES["test"]
  assert "By the grade of the pair's B image" in report.markdown(results)
