"""The commands: thin modules over the library, all on one pattern.

| command        | module                    | library it calls                      |
|----------------|---------------------------|---------------------------------------|
| egsc-train     | `egsc_jax.cli.train`      | `train.train_and_evaluate`            |
| egsc-evaluate  | `egsc_jax.cli.evaluate`   | `evaluate.evaluate_workdir`           |
| egsc-translate | `egsc_jax.cli.translate`  | `translate.translate_paths`           |
| egsc-export    | `egsc_jax.cli.export`     | `export.export`                       |
| egsc-demo      | `egsc_jax.cli.demo`       | `demo.build_app` over a `Translator`  |
| egsc-build     | `egsc_jax.cli.build`      | `data.build.get_builder`, `prepare`   |

Each module has

  define_flags(flag_values)      its absl flags (config flags via config_files)
  main(argv, flag_values=None)   runs on parsed flags; returns the exit status
  run()                          the console script: errors.run_command(...)

so absl's `--verbosity` and `--help` work everywhere, every failure goes through
`egsc_jax.errors` (one `error: ...` line for a user error, the traceback for a
bug), and the flags are defined only when a command runs: tests run a command in
process with `call`. Library modules define no flags and parse no argv;
`python -m egsc_jax.main` (and `.evaluate`, `.translate`, `.export`, `.demo`,
`.data.build`) still run these commands.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Sequence

from egsc_jax import errors


def call(command: ModuleType, argv: Sequence[str]) -> int:
  """Runs `command` (a module of this package) on `argv` (no program name) with
  its own, fresh flags; returns the exit status, as the console script would
  exit with. For tests and notebooks: nothing touches absl's global FLAGS."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  fv = flags.FlagValues()
  command.define_flags(fv)
  # ml_collections reads `--config.key=value` overrides from sys.argv.
  saved, sys.argv = sys.argv, [command.__name__, *argv]
  try:
    rest = errors.parse_flags(sys.argv, fv)
  except errors.UserError as e:
    return errors.report(e)
  finally:
    sys.argv = saved
  return errors.call(command.main, rest, fv)
