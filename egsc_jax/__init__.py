"""EGSC-IT in JAX/Flax. `from egsc_jax import Translator`: the Python API of a run.

The attribute is resolved lazily, so `import egsc_jax.data.build` and friends do
not pay for JAX and Orbax.
"""

# The release (pyproject.toml reads it) and the repository's address: the one
# place it is written. The Colab badge, the notebook's install cell and
# pyproject.toml's [project.urls] spell it too; tests/test_packaging.py checks
# they agree, and `python tools/set_repository.py URL` rewrites them for a fork.
__version__ = "0.1.0"
REPOSITORY = "https://github.com/egsc-jax/egsc-jax"

__all__ = ["Style", "Translator"]


def __getattr__(name):
  if name in __all__:
    from egsc_jax import api  # pylint: disable=g-import-not-at-top

    return getattr(api, name)
  raise AttributeError(f"module 'egsc_jax' has no attribute {name!r}")
