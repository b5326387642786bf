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

from egsc_jax import api, checkpointing, demo, errors, paths


def define_flags(flag_values) -> None:
  """Defines the command's flags on `flag_values` (absl.flags.FLAGS for the CLI,
  a fresh absl.flags.FlagValues() in tests)."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  fv = dict(flag_values=flag_values)
  flags.DEFINE_string(
    "workdir",
    None,
    "A training workdir (config.json, stage2/), or a model file written by egsc-export.",
    **fv,
  )
  flags.DEFINE_integer("port", 7860, "The port to serve on.", **fv)
  flags.DEFINE_string("host", "127.0.0.1", "The address to listen on.", **fv)
  flags.DEFINE_bool(
    "share",
    False,
    "Also serve the page through a temporary public "
    "gradio.live address (for a machine without open ports).",
    **fv,
  )
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
  """Runs the command on parsed flags (serves until stopped); returns the exit status."""
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
    import gradio  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    raise errors.UserError(
      "the demo needs Gradio: pip install -r requirements-demo.txt (or the package's demo extra)"
    ) from None
  checkpointing.quiet_orbax_logs()
  # A WorkdirError (no config.json, no readable checkpoint) is a user error:
  # errors.run prints its one line and the documented status.
  load = (
    api.Translator.from_export if paths.Path(f.workdir).is_file() else api.Translator.from_workdir
  )
  translator = load(f.workdir, seed=f.seed, native_size=f.native_size)
  page = demo.build_app(translator)
  print(f"Serving {f.workdir} on http://{f.host}:{f.port}", flush=True)
  page.launch(**launch_options(f))
  return 0


def launch_options(f) -> dict:
  """The keyword arguments of Gradio's `Blocks.launch` for parsed flags `f`."""
  # footer_links=[]: no links to the API page and settings (Gradio >= 6).
  return dict(
    server_name=f.host, server_port=f.port, show_error=True, share=f.share, footer_links=[]
  )


def run():
  """The `egsc-demo` command."""
  errors.run_command(define_flags, main)


if __name__ == "__main__":
  run()
