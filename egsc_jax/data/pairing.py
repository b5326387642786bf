"""How the builders pair two unpaired domains, as the authors stored their TFRecords.

One example is one (A, B) pair and the shorter domain is repeated to the longer
one's length. Train pairs are random (seeded; each image of the shorter domain
appears floor or ceil of the ratio times); test pairs go in sorted order, the
shorter domain cycled. image_folder, celeba_gender and gta5_bdd pair this way.
"""

from __future__ import annotations

import numpy as np

# The authors seeded their dataset scripts with np.random.seed(0).
PAIRING_SEED = 0


def _stretch(num: int, length: int, rng: np.random.Generator | None) -> np.ndarray:
  """Indices into a list of `num` items, repeated or cut to `length` entries.

  With `rng`, the whole list repeats floor(length / num) times and a seeded sample
  without replacement fills the rest; without, the list is cycled in order.
  """
  if num <= 0:
    raise ValueError(f"cannot pair an empty domain (num={num})")
  if num >= length or rng is None:
    return np.arange(length, dtype=np.int64) % num
  repeats, rest = divmod(length, num)
  extra = np.sort(rng.choice(num, size=rest, replace=False))
  return np.concatenate([np.tile(np.arange(num, dtype=np.int64), repeats), extra])


def pair_indices(
  num_a: int,
  num_b: int,
  *,
  seed: int,
  shuffle: bool,
  length: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
  """The (A, B) index pairs of a split, as two int64 arrays `[length]`.

  Args:
    num_a, num_b: the sizes of the two domains' (sorted) file lists.
    seed: seeds the repetition and the shuffles (only used when `shuffle`).
    shuffle: True for training: each domain's index list is repeated to `length`
      (see `_stretch`) and permuted independently, so pairs are random. False for
      test: pair k is (k mod num_a, k mod num_b), i.e. sorted order.
    length: the number of pairs; default max(num_a, num_b), the shorter domain
      repeated. A domain longer than `length` is cut to its first `length` items.

  Returns:
    `(idx_a, idx_b)`, int64 `[length]` each.
  """
  length = max(num_a, num_b) if length is None else length
  if not shuffle:
    return _stretch(num_a, length, None), _stretch(num_b, length, None)
  rng = np.random.default_rng(seed)
  idx_a = rng.permutation(_stretch(num_a, length, rng))
  idx_b = rng.permutation(_stretch(num_b, length, rng))
  return idx_a, idx_b


def pair_id(index: int, total: int) -> str:
  """Zero-padded example id, e.g. `pair_id(42, 500) == "00042"` (at least 5 digits)."""
  return f"{index:0{max(5, len(str(max(total - 1, 0))))}d}"
