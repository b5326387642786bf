"""A dataset split, translated: the evaluation's view of a `Translator`.

`translate_split` yields the first pairs of a TFDS split translated in the
stored order (pair i's exemplar is the other image of pair i, its noise id i);
`translate_pairs_grid` translates every source with every exemplar.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from egsc_jax import api, grids


def translate_split(
  translator: api.Translator,
  config,
  *,
  direction: str,
  num_examples: int | None,
  split: str = "test",
) -> Iterator[dict]:
  """The first `num_examples` pairs of `split`, translated, in the stored order.

  Source i is translated with the other domain's image of the same stored pair
  as its exemplar; its noise id is i.

  Yields per batch (uint8 images [n, H, W, 3], n <= translator.batch_size):
    'pred', 'source', 'exemplar', 'gt' (None when the dataset has no ground
    truth), 'id' (bytes [n]), 'index' (int [n], position in the split), and when
    the dataset has them 'digit' (the source's digit, int [n]), 'label' (the
    source's segmentation map, uint8 [n, H, W]) and 'grade' (photo_grades: the
    grade of the pair's B image, the exemplar's A->B and the source's B->A, int [n]).
  """
  from egsc_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top

  if direction not in api.DIRECTIONS:
    raise ValueError(f"direction must be one of {api.DIRECTIONS}, got {direction!r}")
  src, ex = ("a", "b") if direction == "a2b" else ("b", "a")
  start = 0
  for batch in input_pipeline.eval_batches(
    config,
    split=split,
    batch_size=translator.batch_size,
    num_examples=num_examples,
    process_index=0,
    process_count=1,
  ):
    keep = np.asarray(batch["mask"], bool)  # the last batch is zero-padded
    index = start + np.arange(int(keep.sum()))
    start += len(index)
    source, exemplar = batch[src][keep], batch[ex][keep]
    y = translator(source, exemplar, index, direction=direction)
    gt = batch.get(f"gt_{direction}")
    out = dict(
      pred=grids.to_uint8(y),
      gt=None if gt is None else grids.to_uint8(gt[keep]),
      source=grids.to_uint8(source),
      exemplar=grids.to_uint8(exemplar),
      id=batch["id"][keep],
      index=index,
    )
    if f"digit_{src}" in batch:
      out["digit"] = np.asarray(batch[f"digit_{src}"])[keep]
    if f"label_{src}" in batch:
      out["label"] = np.asarray(batch[f"label_{src}"])[keep][..., 0]
    if "grade_b" in batch:
      out["grade"] = np.asarray(batch["grade_b"])[keep]
    yield out


def translate_pairs_grid(
  translator: api.Translator, sources: np.ndarray, exemplars: np.ndarray, *, direction: str
) -> np.ndarray:
  """Every source with every exemplar: [S, H, W, 3], [E, h, w, 3] -> [S, E, H, W, 3].

  Floats in [-1, 1]; the pair (s, e) has noise id s * E + e.
  """
  s, e = len(sources), len(exemplars)
  src = np.repeat(np.asarray(sources, np.float32), e, axis=0)
  exs = np.tile(np.asarray(exemplars, np.float32), (s, 1, 1, 1))
  y = translator(src, exs, np.arange(s * e), direction=direction)
  return y.reshape((s, e) + y.shape[1:])
