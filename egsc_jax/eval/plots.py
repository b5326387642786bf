"""Plots of evaluation results (pixel accuracy, learning curves), written as PNG files (local or gs://)."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np


def plot_pixel_accuracy_curves(
  curves: Mapping[str, np.ndarray],
  *,
  path: str | os.PathLike,
  taus: Sequence[int] = range(100),
  title: str = "Pixel accuracy vs threshold",
) -> None:
  """Writes a PNG of pixel-accuracy curves, e.g. {'A->B': c1, 'B->A': c2}.

  Args:
    curves: label -> float [len(taus)] from `pixel_accuracy_curve`.
    path: the PNG to write, local or gs:// (its folder must exist).
    taus: the thresholds of the curves (x axis).
    title: the plot title.
  """
  # The object API with the Agg canvas: no pyplot global state, no display needed.
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  taus = np.asarray(list(taus))
  fig = Figure(figsize=(5, 4), dpi=100)
  FigureCanvasAgg(fig)
  ax = fig.add_subplot(1, 1, 1)
  for label, curve in curves.items():
    curve = np.asarray(curve)
    if curve.shape != taus.shape:
      raise ValueError(f"curve {label!r} has shape {curve.shape}, taus {taus.shape}.")
    ax.plot(taus, curve, label=label)
  _finish_and_save(
    fig,
    ax,
    path=path,
    xlabel="threshold tau (sum over RGB of |pred - gt|)",
    ylabel="pixel accuracy",
    ylim=(0.0, 1.0),
    title=title,
  )


def plot_learning_curves(
  curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
  *,
  path: str | os.PathLike,
  ylabel: str = "test SSIM",
  title: str = "Learning curve",
  ylim: tuple[float, float] = (0.0, 1.0),
  targets: Mapping[str, float] | None = None,
  styles: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
  """Writes a PNG of scores against the training iteration.

  Args:
    curves: label -> (iterations [n], values [n]), e.g. {'SSIM A->B': (its, ssim)}.
    path: the PNG to write, local or gs:// (its folder must exist).
    ylabel, title, ylim: the axes' label, the title, the y range.
    targets: label -> value, drawn as dashed horizontal lines (e.g. a target score).
    styles: label -> matplotlib line keywords for that curve (e.g. one colour
      per run and a dashed line per direction); absent labels take the
      default colour cycle.
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  fig = Figure(figsize=(6, 4), dpi=100)
  FigureCanvasAgg(fig)
  ax = fig.add_subplot(1, 1, 1)
  for label, (x, y) in curves.items():
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1 or not len(x):
      raise ValueError(
        f"curve {label!r}: iterations {x.shape} and values {y.shape} "
        "must be the same non-empty 1-D shape."
      )
    ax.plot(x, y, marker="o", markersize=3, label=label, **(styles or {}).get(label, {}))
  for label, value in (targets or {}).items():
    ax.axhline(value, linestyle="--", linewidth=1, color="grey")
    ax.annotate(
      label,
      (0.0, value),
      xycoords=("axes fraction", "data"),
      textcoords="offset points",
      xytext=(4, 2),
      fontsize=8,
      color="grey",
    )
  _finish_and_save(
    fig, ax, path=path, xlabel="stage-2 iteration", ylabel=ylabel, ylim=ylim, title=title
  )


def _finish_and_save(
  fig, ax, *, path, xlabel: str, ylabel: str, ylim: tuple[float, float], title: str
) -> None:
  """Labels, grid and legend of a one-axes figure, then the PNG (local or gs://)."""
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_ylim(*ylim)
  ax.set_title(title)
  ax.grid(True, alpha=0.3)
  n_entries = len(ax.get_legend_handles_labels()[1])
  if n_entries > 4:
    # Many curves: the legend goes below the axes, where it covers none of
    # them, and the figure grows by its height (about 0.17 inch a line).
    width, height = fig.get_size_inches()
    fig.set_size_inches(width, height + 0.17 * n_entries + 0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), fontsize=8)
  else:
    ax.legend(loc="best")
  fig.tight_layout()
  from egsc_jax import paths  # pylint: disable=g-import-not-at-top

  with paths.Path(path).open("wb") as f:
    fig.savefig(f, format="png")
