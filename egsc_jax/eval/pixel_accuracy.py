"""Pixel accuracy against the ground truth (docs/method.md §5.1): the share of
pixels with sum_RGB |pred - gt| <= tau, for tau = 0..99."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from egsc_jax.eval import inputs


def pixel_accuracy_curve(
  pred: np.ndarray, gt: np.ndarray, *, taus: Sequence[int] = range(100)
) -> np.ndarray:
  """Share of pixels with sum_RGB |pred - gt| <= tau, for each tau.

  The difference is taken in int32. The authors subtracted uint8 arrays, so their
  errors wrapped modulo 256 (a pixel 1 too dark counted as error 255); the
  official curves carry that bug, this one does not.

  Args:
    pred: uint8 [N, H, W, C] or [H, W, C].
    gt: uint8, same shape.
    taus: thresholds (non-negative integers; the paper uses 0..99).

  Returns:
    float64 [len(taus)], non-decreasing in tau; all pixels of all images pooled.
  """
  pred, gt, _ = inputs.check_uint8_pair(pred, gt, pred_name="pred", ref_name="gt")
  taus = np.asarray(list(taus))
  if taus.ndim != 1 or (taus.size and taus.min() < 0):
    raise ValueError(f"taus must be a 1-D sequence of non-negative numbers, got {taus}.")
  # Errors are integers, so err <= tau is err <= floor(tau): one histogram serves all.
  taus = np.floor(taus).astype(np.int64)
  max_err = 255 * pred.shape[-1]
  hist = np.zeros(max_err + 1, np.int64)
  for i in range(0, len(pred), 256):
    err = np.abs(pred[i : i + 256].astype(np.int32) - gt[i : i + 256].astype(np.int32)).sum(-1)
    hist += np.bincount(err.ravel(), minlength=max_err + 1)
  cdf = np.cumsum(hist) / max(hist.sum(), 1)
  return cdf[np.minimum(taus, max_err)]
