"""TensorFlow is only the input pipeline's engine: it never sees the accelerators."""

from __future__ import annotations

import logging


def hide_accelerators_from_tensorflow() -> None:
  """Hides GPUs and TPUs from TensorFlow, which would otherwise reserve
  accelerator memory that JAX needs. Safe to call any number of times."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  for kind in ("GPU", "TPU"):
    try:
      if tf.config.get_visible_devices(kind):
        tf.config.set_visible_devices([], kind)
    except (RuntimeError, ValueError) as e:  # initialised before us, or no such kind
      logging.warning("Could not hide %s devices from TensorFlow: %s", kind, e)
