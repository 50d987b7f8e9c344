"""A run's checkpoints and training clock: orbax managers for `checkpoints/` and `best/`
(what to save when: orbax's save-decision policies; writes in the background), the fallback
past a checkpoint that does not restore, and the clock that sums training time over resumes.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Mapping

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import save_decision_policy as save_policy

from tiger_jax import io_utils
from tiger_jax.run_dir import RunDir

def _restore_args(abstract_state: Any) -> ocp.args.StandardRestore:
  """Restore into the shapes, dtypes and shardings of `abstract_state`."""
  return ocp.args.StandardRestore(jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state))


class Checkpoints:
  """`checkpoints/`: the last N steps; `best/`: the best by a validation metric.

  When to save is orbax's save-decision policy: every `every_steps` steps, or `every_minutes`
  after the last save, or at a preemption that JAX's distributed runtime reports; writes run
  in the background (`async_`) unless a caller waits (`wait`)."""

  def __init__(self, model_dir: str, keep: int, best_metric: str | None = "ndcg@10",
               every_steps: int = 500, every_minutes: float = 0.0, async_: bool = True):
    run = RunDir(io_utils.abspath(model_dir))
    self.directory, self.corrupt = run.checkpoints, run.corrupt_checkpoints
    policies = [save_policy.FixedIntervalPolicy(every_steps),
                save_policy.PreemptionCheckpointingPolicy()]
    if every_minutes:
      policies.append(save_policy.ContinuousCheckpointingPolicy(
          minimum_interval_secs=max(1, int(round(every_minutes * 60)))))
    # Each manager's cross-host barriers get their own key prefix: orbax's barrier names must be
    # unique, and both managers save the same step at a validation step. With a shared prefix a
    # two-process run once sat idle at two different barriers in close() until killed (one
    # process has no barriers).
    barriers = lambda name: ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=name)
    self.latest = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=async_,
            save_decision_policy=save_policy.AnySavePolicy(policies),
            multiprocessing_options=barriers("latest")))
    self.best_metric = best_metric
    self.best = ocp.CheckpointManager(
        run.best,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, create=True, best_fn=lambda m: m[best_metric], best_mode="max",
            multiprocessing_options=barriers("best"))
    ) if best_metric else None

  def restore_latest(self, abstract_state: Any) -> Any | None:
    """The newest checkpoint that restores, or None when there is none.

    A newer one that does not restore (a truncated file, a half-copied folder)
    is moved to MODEL_DIR/corrupt_checkpoints/<step> with a warning, never
    deleted. When no checkpoint restores, nothing is moved: that is a run of
    another model config, and the error says so.
    """
    steps = sorted(self.latest.all_steps(), reverse=True)
    args = _restore_args(abstract_state)
    failed = []
    for step in steps:
      try:
        state = self.latest.restore(step, args=args)
      except Exception as e:  # orbax/tensorstore raise many types for a damaged checkpoint
        failed.append((step, f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"))
        continue
      for bad, why in failed:
        logging.warning("checkpoint %d does not restore (%s); moved it to %s, resuming from %d",
                        bad, why, self._set_aside(bad), step)
      if failed:
        self.latest.reload()
      return state
    if failed:
      raise RuntimeError(f"{self.directory}: none of the checkpoints {[s for s, _ in failed]} "
                         f"restores into this model (newest: {failed[0][1]}); a run of another "
                         "model config? Use another MODEL_DIR")
    return None

  def restore_best(self, abstract_state: Any) -> Any | None:
    """The checkpoint kept in best/ (the best validation score), or None when there is none."""
    step = self.best.best_step() if self.best else None
    if step is None:
      return None
    return self.best.restore(step, args=_restore_args(abstract_state))

  def _set_aside(self, step: int) -> str:
    src = os.path.join(self.directory, str(step))
    dest = os.path.join(self.corrupt, str(step))
    n = 0
    while io_utils.exists(dest + (f".{n}" if n else "")):
      n += 1
    dest += f".{n}" if n else ""
    io_utils.makedirs(os.path.dirname(dest))
    io_utils.rename(src, dest)
    return dest

  def should_save(self, step: int) -> bool:
    """Whether the policy saves this step (a step multiple, the minutes since the last save,
    or a preemption all hosts have reached)."""
    return self.latest.should_save(step)

  def reached_preemption(self, step: int) -> bool:
    """Whether JAX's distributed runtime reports a preemption that every host has reached by
    this step (False on one process: the trainer's signal handler tells it there)."""
    return jax.process_count() > 1 and self.latest.reached_preemption(step)

  def wait(self) -> None:
    """Until every write started so far is complete on disk."""
    for m in (self.latest, self.best):
      if m:
        m.wait_until_finished()

  def save(self, state: Any, metrics: Mapping[str, float] | None = None) -> None:
    step = int(state.step)
    if self.latest.latest_step() != step:
      self.latest.save(step, args=ocp.args.StandardSave(state), force=True)
    if self.best and metrics and self.best_metric in metrics:
      self.best.save(step, args=ocp.args.StandardSave(state),
                     metrics={k: float(v) for k, v in metrics.items()})

  def close(self) -> None:
    for m in (self.latest, self.best):
      if m:
        m.wait_until_finished()
        m.close()


class TrainClock:
  """Training wall time, excluding evaluation and checkpoint writes, summed over resumed runs.

  At each checkpoint the seconds so far are recorded against the step in
  MODEL_DIR/train_clock.json, so a resumed run continues from the time of the
  step it restored (the steps a kill lost are trained, and timed, again).
  """

  def __init__(self, model_dir: str, start_step: int):
    self.path = RunDir(model_dir).train_clock
    self.steps: dict[str, float] = {}
    if start_step and io_utils.exists(self.path):
      self.steps = {k: v for k, v in io_utils.read_json(self.path)["steps"].items()
                    if int(k) <= start_step}
    known = max(self.steps, key=int, default=None)
    if start_step and known != str(start_step):
      logging.warning("%s has no time for step %d; training time counts from step %s",
                      self.path, start_step, known)
    self.seconds = self.steps[known] if known else 0.0
    self._since = time.time()

  def pause(self, state: Any) -> float:
    """Waits for the device work so far, adds it to the clock; returns the seconds so far."""
    jax.block_until_ready(state)
    self.seconds += time.time() - self._since
    self._since = time.time()
    return self.seconds

  def resume(self) -> None:
    self._since = time.time()

  def now(self) -> float:
    return self.seconds + time.time() - self._since

  def record(self, step: int) -> None:
    self.steps[str(step)] = round(self.seconds, 3)
    if jax.process_index() == 0:
      io_utils.write_json(self.path, {"steps": self.steps})



def checkpoint_step(model_dir: str, which: str = "latest") -> int | None:
  """The step a restore of `which` ('latest' or 'best') would read from the step folders in
  checkpoints/ or best/ (the newest; orbax's unfinished temporary folders are not steps), or
  None when there is none. Reads no checkpoint: for telling whether a saved evaluation is of
  the checkpoint `which` names now."""
  run = RunDir(model_dir)
  directory = run.best if which == "best" else run.checkpoints
  steps = [int(n) for n in io_utils.listdir(directory) if n.isdigit()] if io_utils.exists(
      directory) else []
  return max(steps) if steps else None


def train_seconds(model_dir: str) -> float | None:
  """The training wall time (evaluation excluded) up to the newest checkpoint, or None."""
  path = RunDir(model_dir).train_clock
  if not io_utils.exists(path):
    return None
  steps = io_utils.read_json(path)["steps"]
  return steps[max(steps, key=int)] if steps else None
