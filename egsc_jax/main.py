"""`python -m egsc_jax.main`: the egsc-train command, `egsc_jax.cli.train`."""

from egsc_jax.cli.train import run

if __name__ == "__main__":
  run()
