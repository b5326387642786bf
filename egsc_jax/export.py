"""A trained model as one file to share: the inference parameters and the config.

`export(workdir, output)` writes it (the egsc-export command, `egsc_jax.cli.export`);
then, anywhere with egsc-jax installed (no TensorFlow, no workdir needed):

  t = Translator.from_export("mnist_single.egsc")

The file holds what translation uses and nothing else: the stage-2 generator's
parameters (the EMA ones when the run kept them), the frozen exemplar feature
networks F_A, F_B (absent for UNIT / CycleGAN), the run's config (with the
dataset's image size, the resolution the network was trained at), the stage-2
iteration and whether the parameters are the EMA ones. No optimizer states, no
discriminators. It is Flax's msgpack serialization of a dict of numpy arrays
(`flax.serialization`), read back bitwise: `Translator.from_export` and
`Translator.from_workdir` of the same run translate identically
(tests/test_api.py).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from egsc_jax import errors, paths

FORMAT = "egsc-jax export"
FORMAT_VERSION = 1


class ExportError(errors.UserError, FileNotFoundError):
  """A file that is not a readable egsc-jax export."""


def to_bytes(trained) -> bytes:
  """The export of a loaded run (`trained_run.Trained`) as bytes."""
  import jax  # pylint: disable=g-import-not-at-top
  from flax import serialization  # pylint: disable=g-import-not-at-top

  import egsc_jax  # pylint: disable=g-import-not-at-top
  from egsc_jax import trained_run  # pylint: disable=g-import-not-at-top

  record = {
    "format": FORMAT,
    "format_version": FORMAT_VERSION,
    "egsc_jax_version": egsc_jax.__version__,
    "config": trained.config.to_json_best_effort(indent=2),
    "image_size": list(trained_run.image_shape(trained.config)),
    "step": int(trained.step),
    "used_ema": bool(trained.used_ema),
    "params": jax.device_get(trained.params),
    "frozen": jax.device_get(trained.frozen),
  }
  return serialization.msgpack_serialize(record)


def export(
  workdir: str, output: str, *, use_ema: bool = True, checkpoint_fallback: bool = True
) -> dict[str, Any]:
  """Writes the latest readable stage-2 checkpoint of `workdir` to `output`.

  Returns what was written: {'output', 'bytes', 'step', 'used_ema'}.
  Raises trained_run.WorkdirError for a workdir without a usable checkpoint.
  """
  from egsc_jax import trained_run  # pylint: disable=g-import-not-at-top

  trained = trained_run.load_trained(
    workdir, use_ema=use_ema, checkpoint_fallback=checkpoint_fallback
  )
  data = to_bytes(trained)
  out = paths.Path(output)
  if str(out.parent) not in ("", "."):
    out.parent.mkdir(parents=True, exist_ok=True)
  out.write_bytes(data)
  return {
    "output": str(output),
    "bytes": len(data),
    "step": trained.step,
    "used_ema": trained.used_ema,
  }


def load(path: str, *, test_noise: bool | None = None, devices: Sequence[Any] | None = None):
  """An export file -> `trained_run.Trained` (parameters on `devices`, default all
  local ones), as `trained_run.load_trained` gives for the workdir it came from.

  Raises ExportError naming the file when it is missing or not an export.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from flax import serialization  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding  # pylint: disable=g-import-not-at-top
  from jax.sharding import PartitionSpec as P

  from egsc_jax import config_lib, trained_run  # pylint: disable=g-import-not-at-top
  from egsc_jax.models import build_models  # pylint: disable=g-import-not-at-top

  p = paths.Path(path)
  if not p.is_file():
    raise ExportError(f"{path}: no such export file")
  try:
    record = serialization.msgpack_restore(p.read_bytes())
  except Exception as e:  # pylint: disable=broad-except
    # msgpack raises several unrelated types for a file of another kind.
    raise ExportError(f"{path}: not an egsc-jax export ({type(e).__name__}: {e})") from e
  if not isinstance(record, dict) or record.get("format") != FORMAT:
    raise ExportError(f"{path}: not an egsc-jax export (no {FORMAT!r} header)")
  if record.get("format_version") != FORMAT_VERSION:
    raise ExportError(
      f"{path}: export format version {record.get('format_version')!r}; "
      f"this egsc-jax reads version {FORMAT_VERSION}"
    )
  config = trained_run.config_from_json(record["config"])
  if test_noise is not None:
    config.model.test_noise = bool(test_noise)
  config_lib.validate(config)
  rep = NamedSharding(trained_run.local_mesh(devices), P())
  params = jax.device_put(record["params"], rep)
  frozen = jax.device_put(record.get("frozen") or {}, rep)
  logging.info(
    "loaded export %s (stage-2 iteration %d, %s parameters)",
    path,
    record["step"],
    "EMA" if record["used_ema"] else "live",
  )
  return trained_run.Trained(
    workdir=str(path),
    config=config,
    models=build_models(config.model),
    params=params,
    frozen=frozen,
    step=int(record["step"]),
    used_ema=bool(record["used_ema"]),
  )


if __name__ == "__main__":
  # `python -m egsc_jax.export` is the egsc-export command.
  from egsc_jax.cli import export as _command  # pylint: disable=g-import-not-at-top

  _command.run()
