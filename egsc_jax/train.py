"""Two-stage EGSC-IT training: `train_and_evaluate(config, workdir)`.

  workdir/stage1/   F_A, F_B pretraining (per-domain VAE-GANs, docs/method.md §1.4)
  workdir/stage2/   EGSC-IT (docs/method.md §3.1)
each with checkpoints/, TensorBoard events and images/. Calling it again on
the same workdir resumes wherever it stopped: mid-stage 1, between the stages
or mid-stage 2. The loop of each stage, in phases:

  setup -> restore or init -> input stream from the restored position ->
  [iteration -> metrics/NaN guard -> images -> eval -> checkpoint -> preemption]*

What it shows and scores of the state (image grids; KID and LPIPS diversity on
every dataset, SSIM and more where there is a ground truth) is in
`egsc_jax.eval.training`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from egsc_jax import checkpointing, config_lib, errors, grids, lease, paths, sharding, steps
from egsc_jax import state as state_lib
from egsc_jax.eval import training as eval_training
from egsc_jax.models import build_models

PyTree = Any


class NonFiniteLossError(errors.UserError, FloatingPointError):
  """A loss term became NaN or Inf; the last good checkpoint stays loadable."""

  exit_status = errors.EXIT_DIVERGED


@dataclasses.dataclass
class StageSpec:
  """What differs between stage 1 and stage 2; the loop is shared."""

  stage: int
  batches_per_iteration: int  # 2 (1 D + 1 G) or 1 + g_steps
  init: Callable[[jax.Array], state_lib.GANState]
  iteration: Callable[..., tuple[state_lib.GANState, dict]]
  extra_args: tuple  # passed after (state, batches, rng), e.g. VGG params
  sc: steps.StepConfig  # passed as `sc=`: traced, so T and lr0 don't recompile
  images: Callable[[state_lib.GANState, dict], dict[str, np.ndarray]]
  evaluate: Callable[[state_lib.GANState], dict[str, float]] | None


# ----------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------


def train_and_evaluate(
  config,
  workdir: str,
  *,
  stop_at: tuple[int, int] | None = None,
  mesh: jax.sharding.Mesh | None = None,
) -> dict[str, Any]:
  """Runs stage 1 (when the variant uses F) then stage 2 in `workdir`.

  Args:
    config: an experiment config (configs/*.py).
    workdir: where checkpoints, logs and images go; resumed if present.
    stop_at: (stage, iteration): checkpoint and return after that iteration
      (tests use it to interrupt a run).
    mesh: the device mesh (default: every device of every process).
  Returns:
    {'status': 'done' | 'stopped' | 'preempted', 'state': the last stage's state,
     'metrics': the final evaluation metrics (stage 2, when computed)}.
  Raises:
    NonFiniteLossError: a loss became NaN/Inf (exit status 3 in main.py).
    checkpointing.CheckpointError: a stage's checkpoints cannot be resumed from
      (none readable, or the newest unreadable with train.checkpoint_fallback
      off, or they fit other networks).
    errors.ConfigError: a value the run cannot use (the commands validate the
      whole config first: config_lib.validate).
    lease.WorkdirBusyError: another training holds the workdir (egsc_jax/lease.py).
  A refused start (any of these before the first iteration) leaves the files of
  the workdir as they were: config.json is written once the checkpoints are
  known to fit and a stage has restored its state.
  """
  mesh = mesh or sharding.make_mesh()
  sharding.check_batch_size(config.batch_size, mesh)
  if config_lib.uses_perceptual(config):
    # A missing VGG file stops the run now, not after hours of stage 1.
    from egsc_jax.models import vgg_weights  # pylint: disable=g-import-not-at-top

    vgg_weights.check_weights(config.vgg.arch, config.vgg.weights)
  with _job_lease(workdir) as holder:

    def check_workdir() -> None:
      """Before each checkpoint: Orbax and TensorBoard recreate a deleted
      workdir, and would go on filling an empty one; and a run whose lease was
      taken over stops. One process only: the processes of a job could see a
      deletion at different steps."""
      if holder is not None and jax.process_count() == 1:
        lease.check_held(workdir, holder)

    try:
      return _train(config, workdir, stop_at=stop_at, mesh=mesh, check_workdir=check_workdir)
    except Exception as e:
      if not isinstance(e, errors.UserError) and holder is not None:
        # Orbax's and TensorBoard's writers fail in many ways on a deleted or
        # unmounted directory; the cause is then this one.
        try:
          lease.check_held(workdir, holder)
        except errors.UserError as cause:
          raise cause from e
        except Exception:  # pylint: disable=broad-except
          pass  # the lease cannot be read either: the original error says more
      fault = errors.storage_fault(e, where=workdir)
      if fault is not None and fault is not e:
        raise fault from e
      raise


def _train(
  config, workdir: str, *, stop_at, mesh, check_workdir: Callable[[], None]
) -> dict[str, Any]:
  """train_and_evaluate, with the workdir's lease held."""
  prepare_dataset(config)
  config = resolve_eval_split(resolve_num_iterations(config))
  models = build_models(config.model)
  image_shape = tuple(config.data.image_size)
  tx = state_lib.adam(b1=config.optim.b1, b2=config.optim.b2, eps=config.optim.eps)
  ema = config.optim.ema_decay > 0
  root = jax.random.key(config.seed)
  _check_checkpoints_fit(config, workdir, models, image_shape=image_shape, tx=tx, ema=ema)
  written = []

  def write_config() -> None:
    """config.json, once the first stage that trains has restored its state:
    a start refused before that leaves the workdir as it was."""
    if not written and jax.process_index() == 0:
      # Through a temporary file: a full disk fails the write, not config.json.
      tmp = paths.Path(workdir) / "config.json.tmp"
      try:
        tmp.write_text(config.to_json_best_effort(indent=2))
      except OSError:
        tmp.unlink(missing_ok=True)
        raise
      tmp.replace(paths.Path(workdir) / "config.json")
    written.append(True)

  with checkpointing.SigtermFlag() as sigterm:
    # == Stage 1: the exemplar networks F_A, F_B ==============================
    frozen: PyTree = {}
    if config_lib.needs_stage1(config):
      sc1 = steps.step_config(config, stage=1)
      spec1 = StageSpec(
        stage=1,
        batches_per_iteration=2,
        init=functools.partial(
          state_lib.init_stage1, models, image_shape=image_shape, tx=tx, ema=False
        ),
        iteration=functools.partial(steps.stage1_iteration, models=models, tx=tx),
        extra_args=(),
        sc=sc1,
        images=functools.partial(eval_training.stage1_images, models=models),
        evaluate=None,
      )
      result = _run_stage(
        spec1,
        config,
        workdir,
        mesh,
        jax.random.fold_in(root, 1),
        stop_at=stop_at,
        sigterm=sigterm,
        on_start=write_config,
        before_save=check_workdir,
      )
      if result["status"] != "done":
        return _all_processes_done(result)
      frozen = state_lib.exemplar_params_from_stage1(result["state"].g_params)
      del result

    # == Stage 2: EGSC-IT =====================================================
    sc2 = steps.step_config(config, stage=2)
    vgg_module, vgg_params = None, None
    if sc2.use_perceptual:
      from egsc_jax.models import vgg_weights  # pylint: disable=g-import-not-at-top

      vgg_module, vgg_params = vgg_weights.init_vgg(
        config.vgg.arch,
        config.vgg.weights,
        num_layers=config_lib.vgg_num_layers(config),
        dtype=models.generator.dtype,
      )
      vgg_params = jax.device_put(vgg_params, sharding.replicated(mesh))
    evaluate = None
    if eval_training.has_scores(config):
      # The real images the label-free scores compare with, and their features:
      # read at the first evaluation, kept for the others.
      reference = functools.cache(functools.partial(eval_training.label_free_reference, config))
      evaluate = functools.partial(
        eval_training.stage2_scores,
        models=models,
        config=config,
        workdir=workdir,
        reference=reference,
      )
    spec2 = StageSpec(
      stage=2,
      batches_per_iteration=1 + sc2.g_steps,
      init=functools.partial(
        state_lib.init_stage2, models, image_shape=image_shape, tx=tx, frozen=frozen, ema=ema
      ),
      iteration=functools.partial(steps.stage2_iteration, models=models, vgg=vgg_module, tx=tx),
      extra_args=(vgg_params,),
      sc=sc2,
      images=functools.partial(eval_training.stage2_images, models=models),
      evaluate=evaluate,
    )
    return _all_processes_done(
      _run_stage(
        spec2,
        config,
        workdir,
        mesh,
        jax.random.fold_in(root, 2),
        stop_at=stop_at,
        sigterm=sigterm,
        on_start=write_config,
        before_save=check_workdir,
      )
    )


@contextlib.contextmanager
def _job_lease(workdir: str):
  """The workdir's lease (egsc_jax/lease.py), one for the whole job: process 0
  takes it, and every process learns whether it could. Yields the holder record
  on process 0, None on the others."""
  if jax.process_count() == 1:
    with lease.hold(workdir) as holder:
      yield holder
    return
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  held, refused, holder = contextlib.ExitStack(), None, None
  if jax.process_index() == 0:
    try:
      holder = held.enter_context(lease.hold(workdir))
    except lease.WorkdirBusyError as e:
      refused = e
  sharding.sync_processes("egsc_jax.train.lease")
  ok = int(multihost_utils.broadcast_one_to_all(np.int32(refused is None)))
  with held:
    if refused is not None:
      raise refused
    if not ok:
      raise lease.WorkdirBusyError(
        f"{workdir} is in use by another training (see the error of process 0)"
      )
    yield holder


def _check_checkpoints_fit(config, workdir: str, models, *, image_shape, tx, ema) -> None:
  """Raises CheckpointMismatchError when a stage's checkpoints hold other arrays
  than this config's networks, before anything is written (config.json included).

  Reads only the newest checkpoint's array metadata that can be read; damaged
  checkpoints are left to the stage's restore (which falls back or stops).
  """
  key = jax.random.key(0)  # shapes only
  abstract = {}
  frozen: PyTree = {}
  if config_lib.needs_stage1(config):
    abstract[1] = jax.eval_shape(
      functools.partial(state_lib.init_stage1, models, image_shape=image_shape, tx=tx, ema=False),
      key,
    )
    frozen = state_lib.exemplar_params_from_stage1(abstract[1].g_params)
  abstract[2] = jax.eval_shape(
    lambda k, f: state_lib.init_stage2(
      models, k, image_shape=image_shape, tx=tx, frozen=f, ema=ema
    ),
    key,
    frozen,
  )
  for stage, wanted in abstract.items():
    directory = os.path.join(workdir, f"stage{stage}", "checkpoints")
    if not paths.Path(directory).exists():
      continue
    ckpt = checkpointing.Checkpointer(directory, keep=None, read_only=True)
    try:
      for step in sorted(ckpt.all_steps(), reverse=True):
        try:
          ckpt.check_fits(step, wanted)
        except checkpointing.CheckpointMismatchError:
          raise
        except Exception:  # pylint: disable=broad-except
          continue  # unreadable metadata: the restore reports or falls back
        break
    finally:
      ckpt.close()


def _all_processes_done(result: dict[str, Any]) -> dict[str, Any]:
  """Returns `result` once every process has finished the run.

  The processes end a run at different times: process 0 alone writes images and
  metrics, and each process compiles its process-local evaluation programs
  itself. JAX's persistent compilation cache is written by process 0 only, so
  the others compile those anew on every start and finish last. Without this
  barrier the early ones would wait in JAX's shutdown barrier at exit instead,
  which gives up after 5 minutes and aborts every process, a finished run
  included.
  """
  sharding.sync_processes("egsc_jax.train.done")
  return result


def prepare_dataset(config) -> None:
  """Builds the dataset on first use (process 0; the others wait), so the
  README's single command works on a fresh machine. Datasets that need files
  downloaded by hand fail here with a message naming the files. An existing
  build made from other files than config.data.manual_dir, or storing images
  smaller than config.data.image_size, is refused (build.check_reuse)."""
  from egsc_jax.data import build  # pylint: disable=g-import-not-at-top

  if jax.process_index() == 0:
    builder = build.build(
      build.dataset_name(config),
      data_dir=config.data.data_dir,
      manual_dir=config.data.manual_dir,
      image_size=config.data.get("image_size"),
    )
    logging.info("%s", build.describe(builder))
  # Building a dataset can take hours (GTA5 at full size).
  sharding.sync_processes("egsc_jax.prepare_dataset", timeout_s=24 * 3600)


def resolve_num_iterations(config):
  """Replaces num_iterations = -1 by the number of training pairs, the
  authors' T (docs/method.md §3.1 item 4: one epoch of pairs, not divided by batch size)."""
  # -1 is the only sentinel (the commands validate every key; this keeps a
  # direct caller's -5 from becoming an epoch too).
  config_lib.validate(config, keys=("stage1.num_iterations", "stage2.num_iterations"))
  if config.stage1.num_iterations >= 0 and config.stage2.num_iterations >= 0:
    return config
  from egsc_jax.data import build  # pylint: disable=g-import-not-at-top

  num = build.config_builder(config).info.splits["train"].num_examples
  config = config.copy_and_resolve_references()
  for stage in (config.stage1, config.stage2):
    if stage.num_iterations < 0:
      stage.num_iterations = num
  logging.info("T = %d training pairs of %s", num, config.dataset)
  return config


def resolve_eval_split(config):
  """Sets train.eval_split to the split training will evaluate: 'test' where
  the dataset has no such split (eval.training.eval_split warns). config.json
  then names the split the logged scores are on, so the tools that read it
  (benchmarks/learning_curve.py, comparison_table.py) never call a test score
  a validation one."""
  split = eval_training.eval_split(config)
  if split == config.train.eval_split:
    return config
  config = config.copy_and_resolve_references()
  config.train.eval_split = split
  return config


# ----------------------------------------------------------------------------
# The loop shared by both stages
# ----------------------------------------------------------------------------


def _run_stage(
  spec: StageSpec,
  config,
  workdir: str,
  mesh,
  rng: jax.Array,
  *,
  stop_at,
  sigterm,
  on_start: Callable[[], None],
  before_save: Callable[[], None],
) -> dict[str, Any]:
  from egsc_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top

  # -- Setup -------------------------------------------------------------------
  stage_dir = os.path.join(workdir, f"stage{spec.stage}")
  is_main = jax.process_index() == 0
  # Read before the checkpoint manager creates checkpoints/.
  fresh = is_main and start_of_run(stage_dir)
  ckpt = checkpointing.Checkpointer(
    os.path.join(stage_dir, "checkpoints"), keep=config.train.keep_checkpoints
  )
  rep = sharding.replicated(mesh)
  init_rng, loop_rng = jax.random.split(rng)

  # -- Restore or init ---------------------------------------------------------
  abstract = jax.eval_shape(spec.init, init_rng)
  try:
    restored = ckpt.restore_latest(
      checkpointing.abstract_with_sharding(abstract, rep),
      fallback=config.train.get("checkpoint_fallback", True),
      set_aside=True,
    )
  except checkpointing.CheckpointError:
    ckpt.close()
    raise
  if restored is not None:
    latest, state, meta = restored
    logging.info(
      "stage %d: restored iteration %d from %s (meta %s)", spec.stage, latest, ckpt.directory, meta
    )
  else:
    state = jax.jit(spec.init, out_shardings=rep)(init_rng)
    _log_parameter_overview(spec.stage, state)
  start = int(jax.device_get(state.step))
  if start >= spec.sc.num_iterations:
    logging.info("stage %d: already complete (%d iterations)", spec.stage, start)
    ckpt.close()
    return dict(status="done", state=state, metrics=_read_final_metrics(stage_dir))
  on_start()
  # After the restore: a refused start leaves no new events file behind.
  writer = _metric_writer(stage_dir, is_main=is_main)
  if fresh:
    writer.write_hparams(hparams(config))

  profile = None
  try:
    # -- Input stream from the restored position ---------------------------------
    n = spec.batches_per_iteration
    data_config = config.copy_and_resolve_references()
    data_config.seed = config.seed + 1000 * spec.stage  # a different stream per stage
    local_batches = input_pipeline.train_batches(
      data_config,
      process_index=jax.process_index(),
      process_count=jax.process_count(),
      start_step=start * n,
    )
    stacked = sharding.stacked_batch_sharding(mesh)

    def next_batches() -> dict:
      draws = [next(local_batches) for _ in range(n)]
      local = {k: np.stack([d[k] for d in draws]) for k in ("a", "b")}
      return sharding.to_global(local, stacked, batch_axis=1)

    iteration = jax.jit(spec.iteration, donate_argnums=(0,), out_shardings=(rep, rep))
    first = next_batches()
    # Compile now, then let all processes start the loop together: on CPU (gloo)
    # the first collective of a program connects the processes with a 30 s limit,
    # and processes compile (or read the compilation cache) at different speeds.
    iteration = iteration.lower(state, first, loop_rng, *spec.extra_args, sc=spec.sc).compile()
    sharding.sync_processes(f"egsc_jax.stage{spec.stage}.compiled")
    fixed = eval_training.fixed_examples(config)
    profile = _profiler(config, stage_dir, start=start) if is_main else None

    # -- Loop --------------------------------------------------------------------
    pending: list[tuple[int, dict]] = []
    t0 = time.time()
    status = "done"
    step = start
    while step < spec.sc.num_iterations:
      batches, first = (first if first is not None else next_batches()), None
      state, metrics = iteration(state, batches, loop_rng, *spec.extra_args, sc=spec.sc)
      step += 1
      pending.append((step, metrics))
      # At most two iterations in flight. JAX dispatches asynchronously: left
      # alone, the loop runs ahead of the device until the next fetch of the
      # metrics (log_every iterations), and a SIGTERM is then answered only
      # after all of them have run (minutes on a loaded host, where a TPU VM
      # gives 30 s). Waiting for the previous iteration still lets the host
      # read the next batch while the device computes this one.
      if len(pending) > 1:
        jax.block_until_ready(pending[-2][1])
      if profile is not None:
        profile(step)
      final = step == spec.sc.num_iterations
      stop = stop_at is not None and stop_at == (spec.stage, step)
      preempted = sigterm.is_set() or ckpt.reached_preemption(step)
      save = final or stop or preempted or step % config.train.checkpoint_every == 0

      if save or step % config.train.log_every == 0:
        # NaN guard: every pending iteration's terms are checked before anything
        # is written, so a checkpoint never holds a diverged state.
        fetched = _check_finite(spec.stage, pending, state)
        pending = []
        scalars = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}
        elapsed = time.time() - t0
        scalars["steps_per_sec"] = (step - start) / max(elapsed, 1e-9)
        writer.write_scalars(step, scalars)
        logging.info(
          "%s",
          progress_line(
            spec.stage,
            step,
            spec.sc.num_iterations,
            scalars,
            done_since_start=step - start,
            elapsed=elapsed,
          ),
        )

      if is_main and (final or step % config.train.image_every == 0):
        images = spec.images(state, fixed)
        writer.write_images(step, {k: v[None] for k, v in images.items()})
        _save_pngs(stage_dir, step, images)

      if spec.evaluate is not None and (final or step % config.train.eval_every == 0):
        scores = spec.evaluate(state)
        writer.write_scalars(step, scores)
        # The headline scores; the per-scheme ones are in TensorBoard and
        # final_metrics.json.
        logging.info(
          "stage %d  iter %d  eval  %s",
          spec.stage,
          step,
          "  ".join(f"{k}={v:.4g}" for k, v in sorted(scores.items()) if "/" not in k),
        )
        if final and is_main:
          (paths.Path(stage_dir) / "final_metrics.json").write_text(
            json.dumps({"iteration": step, **scores}, indent=2)
          )

      if save:
        before_save()
        ckpt.save(
          step,
          state,
          {
            "stage": spec.stage,
            "iteration": step,
            "data_step": step * n,
            "wall_seconds_this_run": time.time() - t0,
          },
        )
      writer.flush()
      if stop or preempted:
        status = "stopped" if stop else "preempted"
        logging.warning(
          "stage %d: %s at iteration %d; checkpoint saved in %s",
          spec.stage,
          status,
          step,
          ckpt.directory,
        )
        break

  except BaseException:
    # Close everything (releasing their files) without hiding the error: a
    # failed save is raised again by the close of its manager.
    if profile is not None:
      with contextlib.suppress(Exception):
        profile.close()
    with contextlib.suppress(Exception):
      writer.close()
    with contextlib.suppress(Exception):
      ckpt.close()
    raise
  if profile is not None:
    profile.close()
  try:
    ckpt.close()  # waits for the last save, raising its error
  finally:
    writer.close()
  return dict(status=status, state=state, metrics=_read_final_metrics(stage_dir))


def _metric_writer(stage_dir: str, *, is_main: bool):
  """TensorBoard event files in `stage_dir` (process 0; other processes write
  nothing). Scalars go to TensorBoard only: the log has one progress line per
  interval (`progress_line`) instead of every scalar."""
  from clu import metric_writers  # pylint: disable=g-import-not-at-top

  return metric_writers.AsyncMultiWriter(
    [metric_writers.SummaryWriter(stage_dir)] if is_main else []
  )


def start_of_run(stage_dir: str) -> bool:
  """Whether the stage starts afresh (no checkpoint yet): then its hparams are
  written, once per stage, not again on every resume."""
  return not paths.Path(stage_dir, "checkpoints").exists() or not any(
    paths.Path(stage_dir, "checkpoints").iterdir()
  )


def hparams(config) -> dict[str, Any]:
  """The config as TensorBoard's hparams view takes it: dotted keys, and values
  that are bool, int, float or str (tuples and None as their text)."""
  return {
    k: v if isinstance(v, (bool, int, float, str)) else str(v)
    for k, v in config_lib._flatten(config).items()
  }  # pylint: disable=protected-access


def progress_line(
  stage: int,
  step: int,
  total: int,
  scalars: dict[str, float],
  *,
  done_since_start: int,
  elapsed: float,
) -> str:
  """'stage 2  iter 60/120  50%  2.1 it/s  ETA 29 s  total=1.23  ...': the
  numbers a person follows (_SHOWN); TensorBoard has every scalar."""
  rate = done_since_start / elapsed if elapsed > 0 else 0.0
  eta = (total - step) / rate if rate > 0 else float("nan")
  eta_text = (
    "?"
    if eta != eta
    else f"{eta:.0f} s"
    if eta < 120
    else f"{eta / 60:.0f} min"
    if eta < 7200
    else f"{eta / 3600:.1f} h"
  )
  shown = "  ".join(f"{k}={scalars[k]:.4g}" for k in _SHOWN if k in scalars)
  return (
    f"stage {stage}  iter {step}/{total}  {100 * step / total:.0f}%  "
    f"{rate:.2f} it/s  ETA {eta_text}  {shown}"
  )


def _profiler(config, stage_dir: str, *, start: int):
  """clu's Profile action for config.train.profile_steps iterations (None at 0).

  The trace starts after the first iteration of this run (which may still
  include the compilation's tail) and is written where TensorBoard's Profile
  tab finds it, stage_dir/plugins/profile/.
  """
  from clu import periodic_actions  # pylint: disable=g-import-not-at-top

  num_steps = int(config.train.get("profile_steps", 0))
  if num_steps <= 0:
    return None

  class Profile(periodic_actions.Profile):
    """`close` ends a trace that the stage's end cut short."""

    def close(self):
      if self._session_running:
        self._end_session(jax.profiler.stop_trace())

  profile = Profile(
    logdir=stage_dir,
    num_profile_steps=num_steps,
    profile_duration_ms=None,
    first_profile=start + 1,
    every_steps=None,
    every_secs=None,
  )
  profile(start)  # the first call only records the starting step
  return profile


# `kl` too: a latent that blows up shows there first (the `:cpu` Photo-Grades
# run's total went from 124 to 1.9e6 on its KL term alone, docs/results.md).
_SHOWN = (
  "total",
  "recon",
  "cycle",
  "kl",
  "gan",
  "style",
  "content",
  "d_total",
  "d_real_mean",
  "d_fake_mean",
  "lr",
)


@jax.jit
def _all_finite(tree: PyTree) -> jax.Array:
  """True when every element of every leaf is finite (one jitted reduction)."""
  return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def _check_finite(stage: int, pending: list[tuple[int, dict]], state) -> list[dict]:
  fetched = jax.device_get([m for _, m in pending])
  for (step, _), m in zip(pending, fetched):
    for k, v in sorted(m.items()):
      if not np.all(np.isfinite(v)):
        raise NonFiniteLossError(
          f"stage {stage}, iteration {step}: loss term {k!r} is {v}; stopping. "
          "The last checkpoint before this iteration is intact."
        )
  if not bool(_all_finite((state.g_params, state.d_params))):
    raise NonFiniteLossError(
      f"stage {stage}, iteration {pending[-1][0]}: parameters became non-finite; "
      "stopping. The last checkpoint before this iteration is intact."
    )
  return fetched


def _log_parameter_overview(stage: int, state) -> None:
  from clu import parameter_overview  # pylint: disable=g-import-not-at-top

  logging.info(
    "stage %d: generator side, %d parameters", stage, state_lib.param_count(state.g_params)
  )
  parameter_overview.log_parameter_overview(state.g_params)
  logging.info(
    "stage %d: discriminators, %d parameters", stage, state_lib.param_count(state.d_params)
  )
  parameter_overview.log_parameter_overview(state.d_params)


def _read_final_metrics(stage_dir: str) -> dict:
  path = paths.Path(stage_dir) / "final_metrics.json"
  if path.exists():
    return json.loads(path.read_text())
  return {}


def _save_pngs(stage_dir: str, step: int, images: dict[str, np.ndarray]) -> None:
  out = os.path.join(stage_dir, "images")
  paths.Path(out).mkdir(parents=True, exist_ok=True)
  for name, img in images.items():
    grids.save_png(img, os.path.join(out, f"{name}_{step:07d}.png"))
