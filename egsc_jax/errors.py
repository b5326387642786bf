"""The one error path of every command, and the exit statuses a scheduler sees.

| status | meaning                                                                 |
|--------|-------------------------------------------------------------------------|
| 0      | done (training finished both stages; translate wrote something, ...)    |
| 1      | a user error: a bad flag, config value, path, dataset or workdir; one   |
|        | line `error: ...` on stderr says what and where                         |
| 3      | training stopped because a loss became NaN/Inf (the last checkpoint is  |
|        | intact; lower the learning rate or look at the data)                    |
| 70     | an internal error (a bug in egsc-jax): the traceback is printed         |
| 74     | the storage failed: no space left, over quota, read-only, or the        |
|        | workdir vanished; one line names the path and the cause. Checkpoints    |
|        | are written whole or not at all: fix it, rerun to resume (EX_IOERR)     |
| 75     | preempted (SIGTERM, or a multi-host preemption notice): a checkpoint    |
|        | was saved; run the same command again to resume (EX_TEMPFAIL)           |
| 130    | interrupted by Ctrl-C                                                   |

A retry loop resubmits on 75 only. Errors the user can fix are `UserError`s (or
a missing file / permission error) and print one line; anything else is a bug
and prints its traceback. `EGSC_TRACEBACK=1` in the environment, or absl's
`--verbosity=1`, prints the traceback of user errors too.

Commands (`egsc_jax.cli`) use it as

  errors.run_command(define_flags, main)  # an absl app: flags, then main(argv) -> status
  sys.exit(errors.call(main, argv))       # anything else

and a UI that must not die on a user's mistake can show `describe(e)`.
This module imports nothing heavy, so every module may use it.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import traceback
from typing import Any, Callable, Sequence

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_DIVERGED = 3
EXIT_INTERNAL = 70  # sysexits.h EX_SOFTWARE
EXIT_STORAGE = 74  # sysexits.h EX_IOERR
EXIT_PREEMPTED = 75  # sysexits.h EX_TEMPFAIL: try again later
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C

TRACEBACK_ENV = "EGSC_TRACEBACK"


class UserError(Exception):
  """An error the user can fix; its message alone explains it (no traceback).

  `exit_status` is the status a command exits with (subclasses may change it).
  """

  exit_status = EXIT_USER_ERROR


class ConfigError(UserError, ValueError):
  """A config value that cannot be used; names the key, the value and what is
  allowed (`config_lib.validate` raises it, as do later checks such as the
  batch size against the device count)."""


# Standard exceptions that mean "a path the user gave is missing or not
# accessible": their message names the path, a traceback adds nothing.
_USER_OS_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


# Faults of the storage rather than of the program, by errno and by the text
# that libraries which do not raise OSError (tensorstore, Orbax's writer threads,
# TensorFlow's file systems) put in their messages.
_STORAGE_FAULTS = {
  errno.ENOSPC: ("no space left on device", "No space left on device"),
  errno.EDQUOT: ("disk quota exceeded", "Disk quota exceeded"),
  errno.EROFS: ("read-only file system", "Read-only file system"),
}
_GCS_QUOTA = ("quotaExceeded", "storage quota", "exceeded its quota")
# A quoted path in such a message (tensorstore: `Failed writing: "/path/file"`).
_PATH_IN_TEXT = re.compile(r"""["'](gs://[^"']+|/[^"']+)["']""")


class StorageError(UserError, OSError):
  """The workdir's storage failed (full, over quota, read-only, vanished)."""

  exit_status = EXIT_STORAGE


def _chain(e: BaseException):
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    yield e
    e = e.__cause__ or e.__context__


def storage_fault(e: BaseException, where: str = "the workdir") -> StorageError | None:
  """A StorageError naming the path and the cause when `e` (or an exception it
  was raised from) is a storage fault; None otherwise.

  `where` is named when no exception in the chain carries a path (a bare
  `write()` failing with ENOSPC, some of Orbax's writer threads): the caller
  passes the directory it was writing to.
  """
  for link in _chain(e):
    if isinstance(link, StorageError):
      return link
    text = str(link)
    cause = None
    if isinstance(link, OSError) and link.errno in _STORAGE_FAULTS:
      cause = _STORAGE_FAULTS[link.errno][0]
    else:
      cause = next((c for c, t in _STORAGE_FAULTS.values() if t in text), None)
      if cause is None and any(t in text for t in _GCS_QUOTA):
        cause = "Cloud Storage quota exceeded"
    if cause is None:
      continue
    path = getattr(link, "filename", None)
    if path is None:
      found = _PATH_IN_TEXT.findall(text)
      path = found[-1] if found else where  # the innermost: the file
    return StorageError(
      f"cannot write {path}: {cause}. Checkpoints are written whole "
      "or not at all: free space (or make the workdir writable) and "
      "run the same command again to resume from the last one"
    )
  return None


def missing_tensorflow(e: BaseException) -> UserError | None:
  """A UserError saying how to install TensorFlow when `e` (or an exception it
  was raised from) is TensorFlow failing to import: it is the `tf` extra, which
  a `pip install egsc-jax` without it leaves out. None otherwise."""
  for link in _chain(e):
    if isinstance(link, ImportError) and (link.name or "").split(".")[0] == "tensorflow":
      return UserError(
        "TensorFlow is not installed; training, evaluation and dataset builds need it "
        "for their input pipeline: pip install 'egsc-jax[tf]' (tensorflow-cpu; a "
        "tensorflow you have already serves if it is within the bound of "
        "requirements-tf.txt). Translating with a trained model does not need it"
      )
  return None


def is_user_error(e: BaseException) -> bool:
  if isinstance(e, (UserError,) + _USER_OS_ERRORS):
    return True
  if storage_fault(e) is not None or missing_tensorflow(e) is not None:
    return True
  try:
    from absl import app, flags  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  return isinstance(e, (app.UsageError, flags.Error))


def one_line(message: str) -> str:
  """A message on one line: an embedded traceback (ml_collections puts one in
  config-file errors) is reduced to its last line, other lines are joined."""
  lines = [line.strip() for line in str(message).splitlines() if line.strip()]
  if any(line.startswith("Traceback (most recent call last)") for line in lines):
    head = lines[0].rstrip(":")
    return f"{head}: {lines[-1]}" if head != lines[-1] else head
  return " ".join(lines)


def describe(e: BaseException) -> str | None:
  """The one-line message of a user error, or None for anything else (a bug)."""
  if not is_user_error(e):
    return None
  fault = storage_fault(e) or missing_tensorflow(e)
  if fault is not None and fault is not e and not isinstance(e, UserError):
    e = fault
  return one_line(str(e) or type(e).__name__)


def exit_status(e: BaseException) -> int:
  if isinstance(e, KeyboardInterrupt):
    return EXIT_INTERRUPTED
  if isinstance(e, UserError):
    return int(e.exit_status)
  if storage_fault(e) is not None:
    return EXIT_STORAGE
  if is_user_error(e):
    return EXIT_USER_ERROR
  return EXIT_INTERNAL


def _traceback_wanted() -> bool:
  if os.environ.get(TRACEBACK_ENV, "").lower() in ("1", "true", "yes"):
    return True
  try:
    from absl import flags  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  try:
    return flags.FLAGS.is_parsed() and int(flags.FLAGS["verbosity"].value) >= 1
  except (KeyError, flags.Error):
    return False


def report(e: BaseException, *, file=None) -> int:
  """Prints `e` the way every command does; returns the exit status for it.

  User errors: `error: <message>` on one line. Ctrl-C: `interrupted`. Anything
  else: the traceback and a line saying it is a bug.
  """
  file = sys.stderr if file is None else file
  status = exit_status(e)
  if isinstance(e, KeyboardInterrupt):
    print("interrupted", file=file, flush=True)
  elif is_user_error(e):
    if _traceback_wanted():
      traceback.print_exception(e, file=file)
    print(f"error: {describe(e)}", file=file, flush=True)
  else:
    traceback.print_exception(e, file=file)
    print(
      f"internal error (a bug in egsc-jax, please report it with the traceback "
      f"above): {type(e).__name__}: {one_line(str(e))}",
      file=file,
      flush=True,
    )
  return status


def call(main: Callable[..., int | None], *args: Any, **kwargs: Any) -> int:
  """Runs `main(*args, **kwargs)`; returns its status (None: 0), or reports the
  exception it raised and returns that exception's status."""
  try:
    status = main(*args, **kwargs)
  except SystemExit:
    raise
  except BaseException as e:  # pylint: disable=broad-except
    return report(e)
  return EXIT_OK if status is None else int(status)


# ----------------------------------------------------------------------------
# absl apps
# ----------------------------------------------------------------------------


def _unknown_key_message(e: BaseException, argv: Sequence[str]) -> str:
  """'--config.optim.lrr=0.5: no such config key (Did you mean "lr" ...?)'."""
  # ml_collections wraps KeyError("'lrr'\nDid you mean ...") in more errors:
  # the longest string argument along the chain holds the key and the hint.
  texts, cause = [str(e)], e
  while cause is not None:
    texts += [a for a in cause.args[:1] if isinstance(a, str)]
    cause = cause.__context__
  text = max(texts[1:] or texts, key=len)
  key, _, hint = text.partition("\n")
  key = key.strip("'\"")
  hint = f" ({one_line(hint)})" if hint.strip() else ""
  for arg in argv:
    name = arg.split("=", 1)[0].lstrip("-")
    if "." in name and key in name.split(".")[1:]:
      return f"{arg}: no such config key {key!r}{hint}"
  return f"no such config key {key!r}{hint}"


def parse_flags(argv: Sequence[str], flag_values=None) -> list[str]:
  """absl's flag parsing, with every failure a `UserError` of one line.

  Also loads config flags (ml_collections) now: a missing config file is only
  raised when the config is first used otherwise.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top

  fv = flags.FLAGS if flag_values is None else flag_values
  try:
    rest = fv(list(argv))
  except flags.Error as e:
    raise UserError(one_line(str(e))) from e
  except (AttributeError, KeyError) as e:
    # ml_collections: an override of a key the (locked) config does not have.
    raise UserError(_unknown_key_message(e, argv)) from e
  for name in list(fv):
    flag = fv[name]
    if flag.flag_type() != "config object" or flag.value is None:
      continue
    try:
      # A config file that failed to load raises its IOError on first use.
      flag.value.keys()
    except IOError as e:
      error = e.__cause__ or e
      raise UserError(
        f"--{name}: cannot load the config file: {str(error).strip().splitlines()[-1].strip()}"
      ) from error
  return rest


def run_command(
  define_flags: Callable[[Any], None], main: Callable[[list[str]], int | None]
) -> None:
  """A command's entry point (egsc-evaluate, ...): `define_flags(absl's FLAGS)`,
  then `run(main)`."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  define_flags(flags.FLAGS)
  run(main)


def run(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> None:
  """`absl.app.run(main)` with the one error path: flag errors and user errors
  print one line, bugs their traceback; exits with `main`'s status."""
  from absl import app  # pylint: disable=g-import-not-at-top

  def parser(args):
    try:
      return parse_flags(args)
    except UserError as e:
      sys.exit(report(e))

  # --help prints the __main__ module's docstring: under a console script
  # (egsc-train, ...) that is the generated launcher, which has none; under
  # `python -m egsc_jax.main` (...) a shim or a library module: the command's.
  launcher = sys.modules.get("__main__")
  if launcher is not None:
    launcher.__doc__ = sys.modules[main.__module__].__doc__

  app.run(lambda args: sys.exit(call(main, args)), argv=argv, flags_parser=parser)
