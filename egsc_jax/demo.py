"""A local web page for a trained run: upload sources and exemplars, look at the
translations, the feature masks and a style interpolation.

  egsc-demo --workdir=DIR [--port=7860] [--host=127.0.0.1] [--share]
  egsc-demo --workdir=model.egsc          (a file written by egsc-export)
  python -m egsc_jax.demo ...             (the same from a checkout)

Needs Gradio (`pip install "egsc-jax[demo]"` or `-r requirements-demo.txt`). Everything on the page
goes through `egsc_jax.Translator`, the same API as the notebook and the
translate command, so the page shows exactly what `python -m egsc_jax.translate`
writes:

- Translations: the sources x exemplars grid (the command's grid.png).
- Feature masks: each source beside its mask (averaged over channels, colour
  scaled per image: the mask's range is narrow early in training).
- Style interpolation: the first source between the first two exemplars'
  AdaIN statistics, at the slider's alpha.

The server listens on 127.0.0.1 unless --host says otherwise; it has no
authentication, so think twice before --host=0.0.0.0. On a machine without
open ports (a TPU VM, a cluster node), either forward the port
(`ssh -L 7860:127.0.0.1:7860 HOST`) or pass --share: Gradio then also serves
the page through a public gradio.live address for 72 hours (anyone with the
address can use it; it needs outbound network access to Gradio's servers).
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from egsc_jax import checkpointing, errors, grids, inference, paths
from egsc_jax.data import images as images_lib

DISPLAY_SIZE = 320   # the longer side images are blown up to (nearest neighbour)


def enlarge(image: np.ndarray, size: int = DISPLAY_SIZE) -> np.ndarray:
  """uint8 [H, W, 3] -> [kH, kW, 3], k the largest integer with max(kH, kW) <= size
  (at least 1): 28x28 digits stay sharp in the browser."""
  return grids.upscale(image, max(1, size // max(image.shape[:2])))


def mask_panel(translator: inference.Translator, sources: list[np.ndarray],
               domain: str) -> np.ndarray:
  """Sources as rows: source | heat map of its feature mask, at the trained size.

  Returns uint8 [S (H + 2) + 2, 2 (W + 2) + 2, 3].
  """
  size = translator.image_size
  masks = translator.mask(sources, domain)
  rows = [[_at(s, size),
           grids.heatmap(inference.resize_bilinear_align_corners(m[..., None], size)[..., 0])]
          for s, m in zip(sources, masks)]
  return grids.image_grid(np.asarray(rows))


def interpolation_panel(translator: inference.Translator, source: np.ndarray,
                        exemplar_1: np.ndarray, exemplar_2: np.ndarray, alpha: float,
                        direction: str) -> np.ndarray:
  """exemplar_1 | source | translation at alpha | exemplar_2, at the trained size.

  Returns uint8 [H + 4, 4 (W + 2) + 2, 3].
  """
  size = translator.image_size
  frame = translator.interpolate(source, exemplar_1, exemplar_2, [alpha],
                                 direction=direction)[0]
  cells = [_at(x, size) for x in (exemplar_1, source, frame, exemplar_2)]
  return grids.image_grid(np.asarray([cells]))


def _at(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """uint8 RGB [h, w, 3] -> uint8 [H, W, 3] as the network sees it (bilinear)."""
  return grids.to_uint8(inference.to_network_input(image, size))


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


def build_app(translator: inference.Translator, *, title: str = "EGSC-IT"):
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
      raise gr.Error("Upload at least one readable source and one readable exemplar. "
                     + "; ".join(notes))
    grid = enlarge(translator.grid(sources, exemplars, direction))
    masks = None
    if translator.models.use_mask:
      masks = enlarge(mask_panel(translator, sources, direction[0]))
    else:
      notes.append("this run has no feature mask")
    interp = None
    if len(exemplars) >= 2:
      interp = enlarge(interpolation_panel(translator, sources[0], exemplars[0],
                                           exemplars[1], alpha, direction))
    else:
      notes.append("upload two exemplars for the style interpolation")
    status = (f"{len(sources)} sources x {len(exemplars)} exemplars, {direction}"
              + ("; " + "; ".join(notes) if notes else ""))
    return grid, masks, interp, status

  def interpolate(source_files, exemplar_files, direction, alpha):
    sources, _ = _read_all(source_files, "source")
    exemplars, _ = _read_all(exemplar_files, "exemplar")
    if not sources or len(exemplars) < 2:
      return None
    return enlarge(interpolation_panel(translator, sources[0], exemplars[0], exemplars[1],
                                       alpha, direction))

  with gr.Blocks(title=title) as app:
    gr.Markdown(f"# {title}: exemplar-guided translation{about}\n"
                "Upload source images and exemplars of the other domain, pick the "
                "direction, press Translate.")
    with gr.Row():
      sources = gr.File(label="Sources", file_count="multiple", file_types=["image"],
                        elem_id="sources")
      exemplars = gr.File(label="Exemplars", file_count="multiple", file_types=["image"],
                          elem_id="exemplars")
    with gr.Row():
      direction = gr.Radio(list(inference.DIRECTIONS), value="a2b", label="Direction",
                           info="a2b: sources from domain A, exemplars from B")
      button = gr.Button("Translate", variant="primary", elem_id="translate")
    status = gr.Markdown(elem_id="status")
    grid = gr.Image(label="Translations (rows: sources, columns: exemplars)",
                    type="numpy", format="png", interactive=False, elem_id="grid")
    with gr.Row():
      masks = gr.Image(label="Feature masks (source | mask)", type="numpy",
                       format="png", interactive=False, elem_id="masks")
      with gr.Column():
        alpha = gr.Slider(0.0, 1.0, value=0.5, step=0.05, elem_id="alpha",
                          label="Style interpolation: exemplar 1 (0) to exemplar 2 (1)")
        interp = gr.Image(label="exemplar 1 | source | translation | exemplar 2",
                          type="numpy", format="png", interactive=False,
                          elem_id="interpolation")
    inputs = [sources, exemplars, direction, alpha]
    button.click(run, inputs, [grid, masks, interp, status])
    alpha.release(interpolate, inputs, interp)
  return app


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------

def define_flags(flag_values) -> None:
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = dict(flag_values=flag_values)
  flags.DEFINE_string("workdir", None, "A training workdir (config.json, stage2/), or "
                      "a model file written by egsc-export.", **fv)
  flags.DEFINE_integer("port", 7860, "The port to serve on.", **fv)
  flags.DEFINE_string("host", "127.0.0.1", "The address to listen on.", **fv)
  flags.DEFINE_bool("share", False, "Also serve the page through a temporary public "
                    "gradio.live address (for a machine without open ports).", **fv)
  flags.DEFINE_bool("native_size", False, "Run at the sources' own sizes.", **fv)
  flags.DEFINE_integer("seed", 0, "Seed of the latent noise.", **fv)
  flags.mark_flags_as_required(["workdir"], **fv)


def bypass_proxy_for(host: str) -> None:
  """Adds `host`, 127.0.0.1 and localhost to NO_PROXY / no_proxy (keeping
  what is there), so that requests to the demo's own address go direct."""
  for key in ("NO_PROXY", "no_proxy"):
    entries = [e for e in os.environ.get(key, "").split(",") if e]
    for name in (host, "127.0.0.1", "localhost"):
      if name not in entries:
        entries.append(name)
    os.environ[key] = ",".join(entries)


def main(argv, flag_values=None) -> int:
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS if flag_values is None else flag_values
  # No usage statistics or update checks sent from a local demo.
  os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
  # Gradio checks its own page over HTTP after starting: an HTTP(S)_PROXY in the
  # environment (common on clusters) must not take that request elsewhere.
  bypass_proxy_for(f.host)
  try:
    import gradio  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    raise errors.UserError(
        "the demo needs Gradio: pip install -r requirements-demo.txt (or the "
        "package's demo extra)") from None
  checkpointing.quiet_orbax_logs()
  # A WorkdirError (no config.json, no readable checkpoint) is a user error:
  # errors.run prints its one line and the documented status.
  load = (inference.Translator.from_export if paths.Path(f.workdir).is_file()
          else inference.Translator.from_workdir)
  translator = load(f.workdir, seed=f.seed, native_size=f.native_size)
  page = build_app(translator)
  print(f"Serving {f.workdir} on http://{f.host}:{f.port}", flush=True)
  # footer_links=[]: no links to the API page and settings (Gradio >= 6).
  page.launch(server_name=f.host, server_port=f.port, show_error=True, share=f.share,
              footer_links=[])
  return 0


def run():
  """The `egsc-demo` command."""
  errors.run_command(define_flags, main)


if __name__ == "__main__":
  run()
