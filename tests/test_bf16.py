"""compute_dtype=bfloat16 runs: stage-1 and stage-2 iterations on the CPU give
finite losses close to float32's, keep every stored number float32, and their
checkpoints restore into float32 runs and back."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from egsc_jax import checkpointing, config_lib, steps
from egsc_jax import state as state_lib
from egsc_jax.models import build_models, layers

IMAGE_SHAPE = (28, 28)
# bf16 keeps 8 significant bits: one rounding is off by at most 2^-9 = 0.2%.
# A loss here passes through ~10 bf16 convolutions (each output a sum of 9*C
# rounded products, then rounded again), so up to ~10 roundings stack along
# the path; the reductions (norm moments, the loss means) are float32 and
# average the per-pixel errors, which do not all share a sign. 10 x 0.2% = 2%
# relative, plus an absolute 2e-3 for terms that are near zero (the D's real /
# fake means around 0.5 +- a few 1e-3 after tanh/sigmoid).
RTOL, ATOL = 2e-2, 2e-3

# Compiling both dtypes' iterations takes a minute or more on 2 cores.
pytestmark = pytest.mark.slow


def _config(dtype):
  c = config_lib.apply_variant(config_lib.base_config(), "tiny,no_perceptual")
  c.model.compute_dtype = dtype
  c.stage1.num_iterations = c.stage2.num_iterations = 10
  return c


def _batches(n, seed, batch=4):
  rs = np.random.RandomState(seed)
  return {
    k: jnp.asarray(rs.uniform(-1, 1, (n, batch, *IMAGE_SHAPE, 3)), jnp.float32) for k in ("a", "b")
  }


class Run:
  """Jitted stage-1 and stage-2 iterations of the tiny config in one compute dtype."""

  def __init__(self, dtype):
    self.config = c = _config(dtype)
    self.models = build_models(c.model)
    self.tx = state_lib.adam(b1=c.optim.b1, b2=c.optim.b2, eps=c.optim.eps)
    sc1, self.sc2 = steps.step_config(c, stage=1), steps.step_config(c, stage=2)
    self.init1 = functools.partial(
      state_lib.init_stage1, self.models, image_shape=IMAGE_SHAPE, tx=self.tx, ema=False
    )
    self.stage1 = jax.jit(
      functools.partial(steps.stage1_iteration, models=self.models, tx=self.tx, sc=sc1)
    )
    self.stage2 = jax.jit(
      functools.partial(
        steps.stage2_iteration, models=self.models, vgg=None, tx=self.tx, sc=self.sc2
      )
    )

  def init2(self, rng, frozen):
    return state_lib.init_stage2(
      self.models, rng, image_shape=IMAGE_SHAPE, tx=self.tx, frozen=frozen, ema=True
    )


@pytest.fixture(scope="module")
def runs():
  """{dtype: (Run, stage-1 state and metrics, stage-2 state and metrics)}, both
  dtypes from the same initial states and batches."""
  f32, bf16 = Run("float32"), Run("bfloat16")
  s1 = f32.init1(jax.random.key(0))
  frozen = state_lib.exemplar_params_from_stage1(s1.g_params)
  s2 = f32.init2(jax.random.key(1), frozen)
  b1, b2 = _batches(2, seed=0), _batches(1 + f32.sc2.g_steps, seed=1)
  out = {}
  for run in (f32, bf16):
    t1, m1 = run.stage1(s1, b1, jax.random.key(2))
    t2, m2 = run.stage2(s2, b2, jax.random.key(3), None)
    out[run.config.model.compute_dtype] = (run, (t1, m1), (t2, m2))
  return out


def test_the_dtype_reaches_the_modules(runs):
  assert runs["bfloat16"][0].models.generator.dtype == jnp.bfloat16
  assert runs["float32"][0].models.generator.dtype == jnp.float32


@pytest.mark.parametrize("stage", [1, 2])
def test_losses_are_finite_float32_and_close_to_float32s(runs, stage):
  _, *ref = runs["float32"]
  _, *low = runs["bfloat16"]
  m32, m16 = ref[stage - 1][1], low[stage - 1][1]
  assert sorted(m32) == sorted(m16)
  for k in m32:
    a, b = np.asarray(m32[k]), np.asarray(m16[k])
    assert b.dtype == np.float32, k
    assert np.all(np.isfinite(b)), k
    np.testing.assert_allclose(b, a, rtol=RTOL, atol=ATOL, err_msg=k)
  # bf16 did change the arithmetic (the comparison is not vacuous).
  assert any(float(m32[k]) != float(m16[k]) for k in m32)


@pytest.mark.parametrize("stage", [1, 2])
def test_every_stored_number_stays_float32(runs, stage):
  _, *low = runs["bfloat16"]
  state = low[stage - 1][0]
  for part in ("g_params", "d_params", "g_opt_state", "d_opt_state", "ema_params", "frozen"):
    for leaf in jax.tree.leaves(getattr(state, part)):
      if jnp.issubdtype(leaf.dtype, jnp.floating):
        assert leaf.dtype == jnp.float32, part
  assert state.step.dtype == jnp.int32


def test_norm_statistics_are_float32():
  """Instance norm and AdaIN moments: float32 from bf16 activations, as exact as
  float32 moments of the same (bf16-rounded) values."""
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 4)).astype(jnp.bfloat16)
  mean, var = layers.moments(x)
  assert mean.dtype == var.dtype == jnp.float32
  x64 = np.asarray(x, np.float64)
  np.testing.assert_allclose(
    mean, x64.mean(axis=(1, 2), keepdims=True).reshape(mean.shape), rtol=1e-5, atol=1e-6
  )
  np.testing.assert_allclose(var, x64.var(axis=(1, 2)).reshape(var.shape), rtol=1e-5)


@pytest.mark.parametrize("saved,restored", [("bfloat16", "float32"), ("float32", "bfloat16")])
def test_checkpoint_restores_across_compute_dtypes(runs, tmp_path, saved, restored):
  """A run's stage-2 checkpoint loads into a run of the other compute dtype
  (the abstract state comes from that run's own init, as in training) and the
  next iteration runs there."""
  src, _, (state, _) = runs[saved]
  dst = runs[restored][0]
  ckpt = checkpointing.Checkpointer(tmp_path / "ckpt", keep=None)
  ckpt.save(1, state, {"stage": 2, "iteration": 1})
  ckpt.wait()
  abstract = jax.eval_shape(
    lambda r: dst.init2(r, jax.tree.map(jnp.zeros_like, state.frozen)), jax.random.key(1)
  )
  rep = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  restored_state, meta = ckpt.restore(1, checkpointing.abstract_with_sharding(abstract, rep))
  ckpt.close()
  assert meta == {"stage": 2, "iteration": 1}
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored_state)):
    assert a.dtype == b.dtype and np.array_equal(np.asarray(a), np.asarray(b))
  batches = _batches(1 + dst.sc2.g_steps, seed=5)
  after, metrics = dst.stage2(restored_state, batches, jax.random.key(4), None)
  assert int(after.step) == int(state.step) + 1
  assert all(np.isfinite(float(v)) for v in metrics.values())
