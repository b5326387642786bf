"""The web demo's page over a `Translator`: `build_app(translator)` (Gradio
Blocks, not launched) and the panels it shows (translations, feature masks, a
style interpolation).

The egsc-demo command (`egsc_jax.cli.demo`) serves it; its docstring says how.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from egsc_jax import api, grids
from egsc_jax.data import images as images_lib

DISPLAY_SIZE = 320  # the longer side images are blown up to (nearest neighbour)


def enlarge(image: np.ndarray, size: int = DISPLAY_SIZE) -> np.ndarray:
  """uint8 [H, W, 3] -> [kH, kW, 3], k the largest integer with max(kH, kW) <= size
  (at least 1): 28x28 digits stay sharp in the browser."""
  return grids.upscale(image, max(1, size // max(image.shape[:2])))


def mask_panel(translator: api.Translator, sources: list[np.ndarray], domain: str) -> np.ndarray:
  """Sources as rows: source | heat map of its feature mask, at the trained size.

  Returns uint8 [S (H + 2) + 2, 2 (W + 2) + 2, 3].
  """
  size = translator.image_size
  masks = translator.mask(sources, domain)
  rows = [
    [
      _at(s, size),
      grids.heatmap(images_lib.resize_bilinear_align_corners(m[..., None], size)[..., 0]),
    ]
    for s, m in zip(sources, masks)
  ]
  return grids.image_grid(np.asarray(rows))


def interpolation_panel(
  translator: api.Translator,
  source: np.ndarray,
  exemplar_1: np.ndarray,
  exemplar_2: np.ndarray,
  alpha: float,
  direction: str,
) -> np.ndarray:
  """exemplar_1 | source | translation at alpha | exemplar_2, at the trained size.

  Returns uint8 [H + 4, 4 (W + 2) + 2, 3].
  """
  size = translator.image_size
  frame = translator.interpolate(source, exemplar_1, exemplar_2, [alpha], direction=direction)[0]
  cells = [_at(x, size) for x in (exemplar_1, source, frame, exemplar_2)]
  return grids.image_grid(np.asarray([cells]))


def _at(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """uint8 RGB [h, w, 3] -> uint8 [H, W, 3] as the network sees it (bilinear)."""
  return grids.to_uint8(api.to_network_input(image, size))


def _read_all(files: Sequence[Any] | None, what: str) -> tuple[list[np.ndarray], list[str]]:
  """Gradio file values (paths) -> (readable uint8 RGB images, notes on the rest)."""
  out, notes = [], []
  for f in files or []:
    path = f if isinstance(f, str) else getattr(f, "name", str(f))
    try:
      out.append(images_lib.read_image(path))
    except images_lib.ImageReadError as e:
      notes.append(f"skipped unreadable {what} {os.path.basename(e.path)} ({e.reason})")
  return out, notes


def build_app(translator: api.Translator, *, title: str = "EGSC-IT"):
  """The Gradio Blocks page over `translator` (not launched)."""
  import gradio as gr  # pylint: disable=g-import-not-at-top

  trained = translator.trained
  name = os.path.basename(os.path.normpath(trained.workdir)) if trained else ""
  about = f" ({name}, stage-2 iteration {trained.step})" if trained else ""

  def run(source_files, exemplar_files, direction, alpha):
    sources, notes = _read_all(source_files, "source")
    exemplars, more = _read_all(exemplar_files, "exemplar")
    notes += more
    if not sources or not exemplars:
      raise gr.Error(
        "Upload at least one readable source and one readable exemplar. " + "; ".join(notes)
      )
    grid = enlarge(translator.grid(sources, exemplars, direction))
    masks = None
    if translator.models.use_mask:
      masks = enlarge(mask_panel(translator, sources, direction[0]))
    else:
      notes.append("this run has no feature mask")
    interp = None
    if len(exemplars) >= 2:
      interp = enlarge(
        interpolation_panel(translator, sources[0], exemplars[0], exemplars[1], alpha, direction)
      )
    else:
      notes.append("upload two exemplars for the style interpolation")
    status = f"{len(sources)} sources x {len(exemplars)} exemplars, {direction}" + (
      "; " + "; ".join(notes) if notes else ""
    )
    return grid, masks, interp, status

  def interpolate(source_files, exemplar_files, direction, alpha):
    sources, _ = _read_all(source_files, "source")
    exemplars, _ = _read_all(exemplar_files, "exemplar")
    if not sources or len(exemplars) < 2:
      return None
    return enlarge(
      interpolation_panel(translator, sources[0], exemplars[0], exemplars[1], alpha, direction)
    )

  with gr.Blocks(title=title) as app:
    gr.Markdown(
      f"# {title}: exemplar-guided translation{about}\n"
      "Upload source images and exemplars of the other domain, pick the "
      "direction, press Translate."
    )
    with gr.Row():
      sources = gr.File(
        label="Sources", file_count="multiple", file_types=["image"], elem_id="sources"
      )
      exemplars = gr.File(
        label="Exemplars", file_count="multiple", file_types=["image"], elem_id="exemplars"
      )
    with gr.Row():
      direction = gr.Radio(
        list(api.DIRECTIONS),
        value="a2b",
        label="Direction",
        info="a2b: sources from domain A, exemplars from B",
      )
      button = gr.Button("Translate", variant="primary", elem_id="translate")
    status = gr.Markdown(elem_id="status")
    grid = gr.Image(
      label="Translations (rows: sources, columns: exemplars)",
      type="numpy",
      format="png",
      interactive=False,
      elem_id="grid",
    )
    with gr.Row():
      masks = gr.Image(
        label="Feature masks (source | mask)",
        type="numpy",
        format="png",
        interactive=False,
        elem_id="masks",
      )
      with gr.Column():
        alpha = gr.Slider(
          0.0,
          1.0,
          value=0.5,
          step=0.05,
          elem_id="alpha",
          label="Style interpolation: exemplar 1 (0) to exemplar 2 (1)",
        )
        interp = gr.Image(
          label="exemplar 1 | source | translation | exemplar 2",
          type="numpy",
          format="png",
          interactive=False,
          elem_id="interpolation",
        )
    inputs = [sources, exemplars, direction, alpha]
    button.click(run, inputs, [grid, masks, interp, status])
    alpha.release(interpolate, inputs, interp)
  return app


if __name__ == "__main__":
  # `python -m egsc_jax.demo` is the egsc-demo command.
  from egsc_jax.cli import demo as _command  # pylint: disable=g-import-not-at-top

  _command.run()
