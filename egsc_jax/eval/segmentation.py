"""Segmentation scores of translations (the GTA5 -> BDD protocol hook): per-class
IoU and mIoU over the 8 street-scene categories."""

from __future__ import annotations

import numpy as np


def confusion_matrix(
  pred_labels: np.ndarray, gt_labels: np.ndarray, *, num_classes: int = 8, ignore: int = 255
) -> np.ndarray:
  """Pixel confusion matrix, int64 [num_classes, num_classes + 1].

  Row = ground-truth class, column = predicted class; the last column counts
  predictions outside 0..num_classes-1 (e.g. a net's own "ignore"), which are
  wrong for every class. Pixels whose ground truth is `ignore` are skipped.
  Matrices of several batches add up.

  Args:
    pred_labels: integer [N, H, W] (or [N, H, W, 1], or [H, W]).
    gt_labels: integer, same shape.
  """
  pred = np.asarray(pred_labels)
  gt = np.asarray(gt_labels)
  if pred.shape != gt.shape:
    raise ValueError(f"pred_labels has shape {pred.shape}, gt_labels {gt.shape}.")
  for arr, name in ((pred, "pred_labels"), (gt, "gt_labels")):
    if not np.issubdtype(arr.dtype, np.integer):
      raise ValueError(f"{name}: expected integer labels, got dtype {arr.dtype}.")
  pred, gt = pred.astype(np.int64).ravel(), gt.astype(np.int64).ravel()
  valid = gt != ignore
  pred, gt = pred[valid], gt[valid]
  bad = (gt < 0) | (gt >= num_classes)
  if bad.any():
    raise ValueError(
      f"gt_labels holds {np.unique(gt[bad]).tolist()}, outside 0..{num_classes - 1} "
      f"and not the ignore value {ignore}."
    )
  pred = np.where((pred >= 0) & (pred < num_classes), pred, num_classes)
  flat = np.bincount(gt * (num_classes + 1) + pred, minlength=num_classes * (num_classes + 1))
  return flat.reshape(num_classes, num_classes + 1)


def scores_from_confusion(confusion: np.ndarray) -> dict:
  """IoU per class, mIoU and pixel accuracy from `confusion_matrix`'s output.

  IoU_c = TP / (TP + FP + FN); NaN for a class absent from both ground truth and
  prediction, and left out of the mean (as the Cityscapes scripts do).

  Returns:
    {'iou': float64 [C], 'miou': float, 'pixel_accuracy': float}.
  """
  confusion = np.asarray(confusion, np.int64)
  c = confusion.shape[0]
  tp = np.diag(confusion[:, :c]).astype(np.float64)
  gt_count = confusion.sum(1)
  pred_count = confusion[:, :c].sum(0)
  union = gt_count + pred_count - tp
  with np.errstate(invalid="ignore", divide="ignore"):
    iou = np.where(union > 0, tp / union, np.nan)
  total = confusion.sum()
  return {
    "iou": iou,
    "miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
    "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
  }


def segmentation_scores(
  pred_labels: np.ndarray, gt_labels: np.ndarray, *, num_classes: int = 8, ignore: int = 255
) -> dict:
  """Per-class IoU and mIoU of predicted label maps against the source labels.

  Returns `scores_from_confusion`'s dict plus 'confusion' (int64 [C, C + 1]).
  """
  confusion = confusion_matrix(pred_labels, gt_labels, num_classes=num_classes, ignore=ignore)
  return {**scores_from_confusion(confusion), "confusion": confusion}
