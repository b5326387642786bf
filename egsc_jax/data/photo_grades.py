"""Photo-Grades: 64x64 crops of real photographs, A as photographed, B colour-graded.

A photographic benchmark with ground truth that trains on a CPU. The
photographs ship inside installed packages (nothing is downloaded):
scikit-image's colour photographs (astronaut, rocket, the motorcycle stereo
pair, the immunohistochemistry slide, chelsea, coffee) and matplotlib's
Grace Hopper (`photo_grading.PHOTOS` lists the files).

Domain A is a random square crop of a photograph as it is ("neutral"). Domain
B is another crop in one of five colour grades, `photo_grading.GRADES`:

- day: warm, golden light and richer colours;
- night: dark, blue, washed of colour;
- sepia: grey toned brown, from warm shadows to cream highlights;
- faded: lifted blacks, dimmed whites (low contrast), muted colours;
- cool: a blue-cyan cast, muted colours.

A grade is a pure per-pixel function (`photo_grading.apply_grade`): a
saturation change around the Rec. 601 luma, then per channel
out = lift + (gain - lift) * in ** gamma, on values in [0, 1], rounded to
uint8. So an exemplar's grade defines the translation: pair i's ground truth
A->B (`gt_a2b`) is A's crop in the grade of B's image (`grade_b`), and B->A
(`gt_b2a`) is B's crop as photographed.

Crops: a square of side U(0.25, 0.75) times the photograph's shorter side,
placed uniformly, the split's photographs in turn; resized to 64x64 with
Pillow's BOX filter (the area mean of the pixels under each output pixel).
A and B crops are independent draws; the grades are balanced (each grade a
fifth of the pairs) in random order. Everything is seeded
(`photo_grading.SEED`, one stream per split): a build is deterministic.

Splits, by photograph (`photo_grading.SPLIT_PHOTOS`), so no validation or test
photograph is seen in training:
  train       4,000 pairs from astronaut, rocket, motorcycle_left/right and
              immunohistochemistry (the ground-truth fields are zeros);
  validation    500 pairs from grace_hopper (settings are chosen here);
  test        1,000 pairs from chelsea and coffee (the numbers we report).
The stereo pair's two views are one scene and stay together in train.
Evaluation breaks SSIM and LPIPS against the ground truth down by `grade_b`,
the grade of the pair's B image (the exemplar's A->B, the source's B->A).

The photographs' sha256 are stored in `info.metadata['photos']`.

Build: `python -m egsc_jax.data.build photo_grades` (needs scikit-image).
"""

from __future__ import annotations

import logging

import tensorflow_datasets as tfds

from egsc_jax.data import photo_grading


class PhotoGrades(tfds.core.GeneratorBasedBuilder):
  """Photo-Grades: neutral photo crops A <-> colour-graded photo crops B."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}

  def _info(self) -> tfds.core.DatasetInfo:
    size = photo_grading.SIZE
    image = lambda: tfds.features.Image(shape=(size, size, 3))
    return tfds.core.DatasetInfo(
      builder=self,
      description=__doc__,
      features=tfds.features.FeaturesDict(
        {
          "image_a": image(),
          "image_b": image(),
          "gt_a2b": image(),
          "gt_b2a": image(),
          "grade_b": tfds.features.ClassLabel(names=photo_grading.GRADE_NAMES),
          "photo_a": tfds.features.Text(),
          "photo_b": tfds.features.Text(),
          "id": tfds.features.Text(),
        }
      ),
      # Test pair i is the i-th example, as on the MNIST sets.
      disable_shuffling=True,
      metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # everything is inside installed packages
    photos = {}
    for split, names in photo_grading.SPLIT_PHOTOS.items():
      for name in names:
        photo = photo_grading.PHOTOS[name]
        photos[name] = dict(
          split=split,
          package=photo.package,
          path=photo.path,
          sha256=photo_grading.photo_digest(photo),
        )
    self.info.metadata["photos"] = photos
    self.info.metadata["grades"] = [
      dict(
        name=g.name,
        saturation=g.saturation,
        gamma=list(g.gamma),
        lift=list(g.lift),
        gain=list(g.gain),
      )
      for g in photo_grading.GRADES
    ]
    logging.info("%s: photographs %s", self.name, photo_grading.SPLIT_PHOTOS)
    return {split: self._generate_examples(split) for split in photo_grading.SPLIT_PHOTOS}

  def _generate_examples(self, split: str):
    for i, example in enumerate(photo_grading.split_examples(split)):
      yield i, example
