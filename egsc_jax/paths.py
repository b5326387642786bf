"""The one path API for everything the project reads or writes: `etils.epath`.

`epath.Path(p)` is a local path for a plain `p` and a Cloud Storage path for
`gs://bucket/...` (through `tf.io.gfile` when TensorFlow is installed), with the
same methods (`open`, `exists`, `is_file`, `mkdir`, `iterdir`, `walk`, ...).
Strings are still joined with `os.path.join`, which keeps `gs://` intact.
"""

from __future__ import annotations

import os

from etils import epath

Path = epath.Path


def is_url(path: str | os.PathLike[str]) -> bool:
  """True for `scheme://...` paths (gs://, s3://), which are already absolute."""
  return "://" in os.fspath(path)


def absolute(path: str | os.PathLike[str]) -> str:
  """A local path made absolute (Orbax needs that); a URL unchanged (`os.path.abspath`
  would turn gs://b/x into ./gs:/b/x)."""
  path = os.fspath(path)
  return path if is_url(path) else os.path.abspath(path)
