"""EGSC-IT in JAX/Flax. `from egsc_jax import Translator`: the Python API of a run.

The attribute is resolved lazily, so `import egsc_jax.data.build` and friends do
not pay for JAX and Orbax.
"""

__all__ = ["Style", "Translator"]


def __getattr__(name):
  if name in __all__:
    from egsc_jax import inference  # pylint: disable=g-import-not-at-top
    return getattr(inference, name)
  raise AttributeError(f"module 'egsc_jax' has no attribute {name!r}")
