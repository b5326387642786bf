"""One jitted function per (function, static arguments), shared by every caller.

  fn = jit_cache.jitted(steps.stage1_reconstruct, models=models, domain="a")

is `jax.jit(functools.partial(steps.stage1_reconstruct, models=models, domain="a"))`,
made once: every later call with equal arguments returns the same jitted
function, so its compilations are reused. The Translator (`egsc_jax.api`) and
training's image grids and periodic scores (`egsc_jax.eval.training`) build
their kernels through it, so that evaluating during training does not recompile.
The static arguments must be hashable (`Models` is a frozen dataclass).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax


@functools.cache
def jitted(fn: Callable[..., Any], **static: Any) -> Callable[..., Any]:
  """`jax.jit(functools.partial(fn, **static))`, once per (fn, static)."""
  return jax.jit(functools.partial(fn, **static))
