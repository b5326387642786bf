"""Experiment configs by name or by path.

  --config=mnist_single:sn                  a config shipped with egsc-jax, by name
  --config=configs/mnist_single.py:sn       any config file, by path (yours too)

The experiment configs live in the repository's top-level `configs/` folder. A
wheel installs that folder inside the package as `egsc_jax.configs`
(pyproject.toml's package-dir), so after `pip install` the names work without a
checkout; in a checkout they resolve to `configs/` next to `egsc_jax/`.
A spec that names an existing file, ends in `.py` or holds a `/` is a path.
"""

from __future__ import annotations

import os
import pathlib

from absl import flags
from ml_collections import config_flags

_HERE = pathlib.Path(__file__).resolve().parent


def config_dirs() -> list[pathlib.Path]:
  """Where named configs are looked up: the installed package, then a checkout."""
  return [d for d in (_HERE / "configs", _HERE.parent / "configs") if d.is_dir()]


def names() -> list[str]:
  """The names `--config` accepts (`mnist_single`, ...), sorted."""
  return sorted(
    {p.stem for d in config_dirs() for p in d.glob("*.py") if not p.stem.startswith("_")}
  )


def resolve(spec: str) -> str:
  """`NAME[:VARIANT]` -> `/path/to/NAME.py[:VARIANT]`; a path spec is returned as is.

  Raises ValueError (one line, naming the spec and the known names) for a name
  that is neither a config nor a file.
  """
  path, sep, variant = spec.partition(":")
  if os.path.exists(path) or path.endswith(".py") or "/" in path or os.sep in path:
    return spec
  for folder in config_dirs():
    candidate = folder / f"{path}.py"
    if candidate.is_file():
      return f"{candidate}{sep}{variant}"
  raise ValueError(
    f"{spec!r} is neither a config file nor the name of one "
    f"(names: {', '.join(names()) or 'none found'})"
  )


class _ResolvingParser(flags.ArgumentParser):
  """Wraps ml_collections' config-file parser: `resolve`, then load the file."""

  def __init__(self, file_parser: flags.ArgumentParser):
    self._file_parser = file_parser

  def parse(self, argument):
    return self._file_parser.parse(resolve(argument))

  def flag_type(self):
    return self._file_parser.flag_type()


def define_config_flag(
  name: str = "config", help_string: str | None = None, flag_values: flags.FlagValues = flags.FLAGS
) -> flags.FlagHolder:
  """`config_flags.DEFINE_config_file` (locked; `--name.key=value` overrides) whose
  value may also be a config's name."""
  holder = config_flags.DEFINE_config_file(
    name,
    None,
    help_string
    or (
      "Experiment config: a name (" + ", ".join(names()) + ") or a config "
      "file, then :VARIANT, e.g. mnist_single:sn or configs/mnist_single.py:sn."
    ),
    flag_values=flag_values,
    lock_config=True,
  )
  flag = flag_values[name]
  flag.parser = _ResolvingParser(flag.parser)
  return holder
