"""The networks of EGSC-IT (and of the MUNIT baseline), and the one place that
builds them from a config.

Modules take explicit keyword arguments; `build_models` is where the config's
model section is read (STYLE: modules never see a whole ConfigDict).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

from egsc_jax.models.discriminator import Discriminator
from egsc_jax.models.encoders import DomainEncoder
from egsc_jax.models.generator import AutoEncoder, Generator
from egsc_jax.models.munit import MunitGenerator

# config.model.architecture: EGSC-IT's generator (UNIT and CycleGAN are its
# switches), or MUNIT's (its own style encoders, no F; models/munit.py).
ARCHITECTURES = ("egsc_it", "munit")


@dataclasses.dataclass(frozen=True)
class Models:
  """Module instances (no parameters) for both stages."""

  generator: Generator | MunitGenerator  # stage 2: E_A, E_B, shared, G_A, G_B (or MUNIT's)
  autoencoder: AutoEncoder  # stage 1: one per domain (params under 'a', 'b')
  discriminator: Discriminator  # one per domain (params under 'a', 'b')
  exemplar: DomainEncoder  # F_A, F_B (params under 'a', 'b'; frozen in stage 2)
  use_mask: bool
  use_adain: bool
  train_noise: bool
  test_noise: bool
  architecture: str = "egsc_it"  # ARCHITECTURES: which stage-2 losses the steps use


COMPUTE_DTYPES = ("float32", "bfloat16")  # config.model.compute_dtype


def compute_dtype(name: str) -> Any:
  try:
    return {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[name]
  except KeyError:
    raise ValueError(
      f"config.model.compute_dtype must be 'float32' or 'bfloat16', got {name!r}"
    ) from None


def build_models(model_config) -> Models:
  """Builds the modules from `config.model`."""
  m = model_config
  dtype = compute_dtype(m.compute_dtype)
  common = dict(
    ngf=m.ngf,
    n_downsample=m.n_downsample,
    n_enc_res=m.n_enc_res,
    n_dec_res=m.n_dec_res,
    dtype=dtype,
  )
  out = dict(output_scale=float(m.output_scale))
  # Run configs written before MUNIT existed have no architecture key.
  architecture = m.get("architecture", "egsc_it")
  if architecture == "munit":
    generator = MunitGenerator(
      style_dim=m.munit_style_dim, mlp_dim=m.munit_mlp_dim, **common, **out
    )
  elif architecture == "egsc_it":
    generator = Generator(
      n_shared=m.n_shared,
      adain_mode=m.adain_mode,
      adain_eps=m.adain_eps,
      content_sign_norm=bool(m.content_sign_norm),
      **common,
      **out,
    )
  else:
    raise ValueError(
      f"config.model.architecture must be one of {ARCHITECTURES}, got {architecture!r}"
    )
  return Models(
    generator=generator,
    autoencoder=AutoEncoder(**common, **out),
    # Run configs written before conv_impl existed have no such key.
    discriminator=Discriminator(
      ndf=m.ndf, n_layers=m.n_dis, dtype=dtype, conv_impl=m.get("conv_impl", "xla")
    ),
    exemplar=DomainEncoder(ngf=m.ngf, n_downsample=m.n_downsample, n_res=m.n_enc_res, dtype=dtype),
    use_mask=bool(m.use_feature_mask),
    use_adain=bool(m.use_adain),
    train_noise=bool(m.latent_noise) and m.n_shared > 0,
    test_noise=bool(m.test_noise) and m.n_shared > 0,
    architecture=architecture,
  )
