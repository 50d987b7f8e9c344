"""Training: sharded train state, jitted steps, orbax checkpoints, CLU metrics.

Library code with plain arguments; `train.py` binds it to gin and flags.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

# (input_pipeline and clu's metric writers import TensorFlow: they are imported where a run
# reads its data or writes summaries, so that Trainer and its steps load without it.)
from tiger_jax import io_utils, metrics as metrics_lib, partitioning, preemption
from tiger_jax import retrieval, shared_jit
from tiger_jax.data import TRAIN_HISTORIES
from tiger_jax.checkpoints import Checkpoints, TrainClock
from tiger_jax.errors import ConfigError
from tiger_jax.models import EncoderDecoderModel, unbox
from tiger_jax.run_dir import RunDir


OPTIMIZERS = ("adafactor", "adamw")
SCHEDULES = ("rsqrt", "cosine", "constant")


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
  optimizer: str = "adafactor"  # t5x's default; 'adamw' also accepted
  learning_rate: float = 0.01
  schedule: str = "rsqrt"  # 'rsqrt' | 'cosine' | 'constant' (see learning_rate_schedule)
  decay_start: int = 10_000  # rsqrt (the paper): constant lr, then inverse square-root decay
  warmup_steps: int = 0  # linear warmup from 0, before any schedule
  total_steps: int = 0  # cosine, cooldown: the step where lr reaches 0 (bind to %TRAIN_STEPS)
  cooldown_steps: int = 0  # linear decay to 0 over the last steps before total_steps
  weight_decay: float = 0.0
  grad_clip: float = 1.0
  seed: int = 0
  log_every: int = 50
  checkpoint_every: int = 500
  # > 0: also save when this many minutes have passed since the last save (orbax's
  # ContinuousCheckpointingPolicy), bounding what a kill -9 loses whatever the machine's speed.
  checkpoint_every_minutes: float = 0.0
  # Write checkpoints in a background thread while the next steps run; a preemption save and
  # the end of training wait for the write to finish.
  async_checkpointing: bool = True
  keep_checkpoints: int = 3
  eval_every: int = 500
  num_buckets: int = 5  # length buckets of training batches; 1 = plain padding
  # Length buckets of decoding batches (validation, evaluation, the recommender): one compiled
  # beam search per bucket, short histories decoded at their bucket's width; 1 = every user
  # padded to the full input length. The ranked lists are the same either way.
  eval_buckets: int = 5
  train_histories: str = "prefixes"  # or 'subsequences' (input_pipeline.history_suffixes)
  best_metric: str = "ndcg@10"  # validation metric that picks best/ (as public reproductions do)
  # > 0: keep an exponential moving average of the parameters (Polyak averaging; see
  # ema_decay_at) and validate, keep best/ and evaluate with it. 0: off.
  ema_decay: float = 0.0
  # > 0: stop once the trainer's clock (training time summed over resumes, `TrainClock`) has
  # passed this many hours, checked every log_every steps; the stop step validates and saves
  # as the last step would. Rows of a table trained to one budget compare like for like.
  max_train_hours: float = 0.0
  def __post_init__(self):
    if self.optimizer not in OPTIMIZERS:
      raise ConfigError(f"TrainerConfig.optimizer={self.optimizer!r}; expected one of {OPTIMIZERS}")
    if self.schedule not in SCHEDULES:
      raise ConfigError(f"TrainerConfig.schedule={self.schedule!r}; expected one of {SCHEDULES}")
    if self.train_histories not in TRAIN_HISTORIES:
      raise ConfigError(f"TrainerConfig.train_histories={self.train_histories!r}; expected one "
                        f"of {TRAIN_HISTORIES}")
    if self.num_buckets < 1 or self.eval_buckets < 1:
      raise ConfigError(f"TrainerConfig.num_buckets={self.num_buckets}, eval_buckets="
                        f"{self.eval_buckets}; each must be at least 1")
    if self.best_metric not in metrics_lib.METRIC_NAMES:
      raise ConfigError(f"TrainerConfig.best_metric={self.best_metric!r}; expected one of "
                        f"{metrics_lib.METRIC_NAMES}")
    if self.schedule == "cosine" and self.total_steps <= self.warmup_steps:
      raise ConfigError(f"TrainerConfig.total_steps={self.total_steps} must exceed warmup_steps="
                        f"{self.warmup_steps} for the cosine schedule (bind it to %TRAIN_STEPS)")
    if self.max_train_hours < 0:
      raise ConfigError(f"TrainerConfig.max_train_hours={self.max_train_hours} must be >= 0 "
                        "(0: no time budget)")
    if not 0.0 <= self.ema_decay < 1.0:
      raise ConfigError(f"TrainerConfig.ema_decay={self.ema_decay} must be in [0, 1); 0 = off, "
                        "e.g. 0.999")
    if self.checkpoint_every < 1 or self.checkpoint_every_minutes < 0:
      raise ConfigError(f"TrainerConfig.checkpoint_every={self.checkpoint_every}, "
                        f"checkpoint_every_minutes={self.checkpoint_every_minutes}: steps 1 or "
                        "more, minutes 0 (off) or more")
    if self.cooldown_steps and self.total_steps < self.cooldown_steps:
      raise ConfigError(f"TrainerConfig.total_steps={self.total_steps} must be at least "
                        f"cooldown_steps={self.cooldown_steps} (bind it to %TRAIN_STEPS)")


class TrainState(flax.struct.PyTreeNode):
  step: jax.Array
  params: Any
  opt_state: Any

  @property
  def eval_params(self) -> Any:
    """The parameters that validation and evaluation decode with."""
    return self.params


class EmaTrainState(TrainState):
  """TrainState with an exponential moving average of the parameters
  (`TrainerConfig.ema_decay` > 0), which validation and evaluation use."""
  ema_params: Any

  @property
  def eval_params(self) -> Any:
    return self.ema_params


def ema_decay_at(decay: float, step: jax.Array) -> jax.Array:
  """The averaging weight of the update after `step` updates: min(decay, (1 + step) / (10 +
  step)), the warm-up of tf.train.ExponentialMovingAverage(num_updates=...), so that the
  first steps do not keep the average at the initial parameters for ~1 / (1 - decay) steps."""
  step = jnp.asarray(step, jnp.float32)
  return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def update_ema(ema: Any, params: Any, decay: jax.Array) -> Any:
  """ema * decay + params * (1 - decay), leaf by leaf, in the parameters' dtype."""
  return jax.tree.map(lambda e, p: (e + (1.0 - decay) * (p - e)).astype(e.dtype), ema, params)


def learning_rate_schedule(config: TrainerConfig) -> optax.Schedule:
  """The learning rate by step, after `warmup_steps` of linear warmup from 0:

  rsqrt (the paper, t5x's default): lr until `decay_start`, then lr * sqrt(decay_start / step);
  cosine: lr decayed to 0 at `total_steps` along a half cosine; constant: lr.
  `cooldown_steps` then multiplies any of them by a linear ramp from 1 to 0 over the
  last cooldown_steps before `total_steps` (big_vision's rsqrt with cooldown; the
  warmup-stable-decay recipe): one long run gives annealed checkpoints at any budget
  by branching a copy at a checkpoint with a shorter total (bench/README.md).
  """
  lr, warmup = config.learning_rate, config.warmup_steps

  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    if config.schedule == "rsqrt":
      value = lr * jax.lax.rsqrt(jnp.maximum(step, config.decay_start) / config.decay_start)
    elif config.schedule == "cosine":
      frac = jnp.clip((step - warmup) / (config.total_steps - warmup), 0.0, 1.0)
      value = lr * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
    else:
      value = jnp.asarray(lr, jnp.float32)
    if config.cooldown_steps:
      value = value * jnp.clip((config.total_steps - step) / config.cooldown_steps, 0.0, 1.0)
    return value * jnp.minimum(1.0, (step + 1) / warmup) if warmup else value
  return schedule


def absolute_step_labels(params: Any, prefixes: Sequence[str]) -> Any:
  """'absolute' for each leaf whose own name (its last key) starts with one of `prefixes`,
  'scaled' for the others (the model's `T5Config.absolute_step_params()`)."""
  def label(path, _):
    name = str(getattr(path[-1], "key", path[-1])) if path else ""
    return "absolute" if name.startswith(tuple(prefixes)) else "scaled"
  return jax.tree_util.tree_map_with_path(label, params)


def make_optimizer(config: TrainerConfig,
                   absolute_step_params: Sequence[str] = ()) -> optax.GradientTransformation:
  """The optimizer; under Adafactor, the parameters whose names start with one of
  `absolute_step_params` (what the model's mechanisms ask for) are stepped by lr itself
  (Adafactor steps the others by lr times their own RMS, floored at 1e-3)."""
  lr = learning_rate_schedule(config)
  if absolute_step_params and config.optimizer != "adafactor":
    raise ConfigError(f"the model's mechanisms step {tuple(absolute_step_params)} by the "
                      f"learning rate itself, an Adafactor setting; TrainerConfig.optimizer="
                      f"{config.optimizer!r} has no parameter scaling: turn it off (e.g. "
                      "FollowerConfig.absolute_steps = False)")
  if config.optimizer == "adafactor":
    adafactor = functools.partial(optax.adafactor, lr,
                                  weight_decay_rate=config.weight_decay or None)
    opt = adafactor()
    if absolute_step_params:
      opt = optax.multi_transform(
          {"scaled": opt, "absolute": adafactor(multiply_by_parameter_scale=False)},
          functools.partial(absolute_step_labels, prefixes=tuple(absolute_step_params)))
  elif config.optimizer == "adamw":
    opt = optax.adamw(lr, weight_decay=config.weight_decay)
  else:
    raise AssertionError(config.optimizer)  # TrainerConfig checks it
  return optax.chain(optax.clip_by_global_norm(config.grad_clip), opt) if config.grad_clip else opt


class Trainer:
  """Holds the model, optimizer, mesh and the jitted, sharded steps."""

  def __init__(self, model: EncoderDecoderModel, config: TrainerConfig, mesh: Mesh,
               feature_lengths: Mapping[str, int],
               rules: partitioning.LogicalRules = partitioning.standard_logical_axis_rules()):
    self.model, self.config, self.mesh, self.rules = model, config, mesh, rules
    self.feature_lengths = dict(feature_lengths)
    self.tx = make_optimizer(config, model.config.absolute_step_params())
    self.batch_sharding = partitioning.batch_sharding(mesh)
    self.replicated = partitioning.replicated(mesh)
    boxed = jax.eval_shape(lambda r: model.init(r, feature_lengths["inputs"],
                                                feature_lengths["targets"])["params"],
                           jax.random.PRNGKey(0))
    self.param_shardings = partitioning.params_sharding(boxed, mesh, rules)
    self._train_step = None
    self._eval_step = None

  def _trace_settings(self) -> tuple:
    """What besides the model decides this trainer's traces (`shared_jit`): the config
    (seed, optimizer, averaging), mesh, logical rules and feature lengths."""
    return (repr(self.config), self.mesh, tuple(map(tuple, self.rules)),
            tuple(sorted(self.feature_lengths.items())))

  def context(self):
    """Mesh + logical rules, needed while tracing the steps."""
    stack = contextlib.ExitStack()
    stack.enter_context(jax.set_mesh(self.mesh))
    stack.enter_context(nn.logical_axis_rules(self.rules))
    return stack

  def init_state(self, seed: int | None = None, abstract_only: bool = False) -> TrainState:
    rng = jax.random.PRNGKey(self.config.seed if seed is None else seed)
    lengths = self.feature_lengths

    def init(rng):
      params = unbox(self.model.init(rng, lengths["inputs"], lengths["targets"])["params"])
      state = dict(step=jnp.array(0, jnp.int32), params=params, opt_state=self.tx.init(params))
      if self.config.ema_decay:
        return EmaTrainState(**state, ema_params=params)
      return TrainState(**state)

    with self.context():
      abstract = jax.eval_shape(init, rng)
      shardings = self.state_shardings(abstract)
      if abstract_only:
        return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                            abstract, shardings)
      init_fn = shared_jit.shared("init_state", (self.model,), self._trace_settings(),
                                  lambda: jax.jit(init, out_shardings=shardings))
      return init_fn(rng)

  def abstract_state(self) -> TrainState:
    """The state's shapes, dtypes and shardings, computing nothing: what a restore needs
    (evaluation and recommendations restore into it without compiling an initializer)."""
    return self.init_state(abstract_only=True)

  def state_shardings(self, abstract_state: TrainState) -> TrainState:
    """Params by the logical rules; optimizer leaves shaped like a param follow it."""
    flat_params = {p.shape: s for p, s in zip(jax.tree.leaves(abstract_state.params),
                                              jax.tree.leaves(self.param_shardings))}
    opt = jax.tree.map(lambda x: flat_params.get(x.shape, self.replicated)
                       if x.ndim > 1 else self.replicated, abstract_state.opt_state)
    shardings = dict(step=self.replicated, params=self.param_shardings, opt_state=opt)
    if isinstance(abstract_state, EmaTrainState):
      return EmaTrainState(**shardings, ema_params=self.param_shardings)
    return TrainState(**shardings)

  def train_step(self, state: TrainState, batch: Mapping[str, jax.Array]):
    if self._train_step is None:
      model, tx = self.model, self.tx

      def step(state, batch):
        rng = jax.random.fold_in(jax.random.PRNGKey(self.config.seed + 1), state.step)
        (_, metrics), grads = jax.value_and_grad(model.loss_fn, has_aux=True)(
            state.params, batch, rng)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics["grad_norm"] = optax.tree.norm(grads)
        new = dict(step=state.step + 1, params=params, opt_state=opt_state)
        if isinstance(state, EmaTrainState):
          decay = ema_decay_at(self.config.ema_decay, state.step)
          new["ema_params"] = update_ema(state.ema_params, params, decay)
        return state.replace(**new), metrics

      shardings = self.state_shardings(jax.eval_shape(lambda s: s, state))
      self._train_step = shared_jit.shared(
          "train_step", (self.model,), (*self._trace_settings(), type(state).__name__),
          lambda: jax.jit(step, in_shardings=(shardings, self.batch_sharding),
                          out_shardings=(shardings, self.replicated), donate_argnums=0))
    with self.context():
      return self._train_step(state, batch)

  def eval_step(self, params: Any, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    if self._eval_step is None:
      model = self.model
      self._eval_step = shared_jit.shared(
          "eval_step", (model,), self._trace_settings()[1:],
          lambda: jax.jit(lambda p, b: model.loss_fn(p, b, None)[1],
                          in_shardings=(self.param_shardings, self.batch_sharding),
                          out_shardings=self.replicated))
    with self.context():
      return self._eval_step(params, batch)


# With TrainerConfig.ema_decay, each validation pass also decodes the raw parameters and
# logs them under this prefix (`validation/` holds the average's, which picks best/).
RAW_PREFIX = "validation_raw"


def saved_trainer_config(model_dir: str) -> TrainerConfig:
  """The TrainerConfig that trained model_dir (its config.json), so that a checkpoint restores
  into the optimizer state and parameter averaging it was saved with; the defaults for a run
  that wrote none. Fields this version does not know are left out."""
  path = RunDir(model_dir).config_json
  if not io_utils.exists(path):
    return TrainerConfig()
  saved = io_utils.read_json(path).get("trainer", {})
  known = {f.name for f in dataclasses.fields(TrainerConfig)}
  return TrainerConfig(**{k: v for k, v in saved.items() if k in known})


def _restore_latest(checkpoints: Checkpoints, state: TrainState) -> TrainState | None:
  """checkpoints.restore_latest; a run that turns parameter averaging on at a checkpoint saved
  without it (e.g. a branch, bench/learning_curve.py --branch_from) starts the average there."""
  try:
    return checkpoints.restore_latest(state)
  except RuntimeError as error:  # raised only when checkpoints exist and none restores
    if not isinstance(state, EmaTrainState):
      raise
    plain = TrainState(step=state.step, params=state.params, opt_state=state.opt_state)
    try:
      restored = checkpoints.restore_latest(plain)
    except RuntimeError:
      raise error from None
    logging.info("checkpoint %d has no parameter average: it starts from that step's parameters",
                 int(restored.step))
    return EmaTrainState(step=restored.step, params=restored.params,
                         opt_state=restored.opt_state,
                         ema_params=jax.tree.map(lambda x: x.copy(), restored.params))


def train_loop(trainer: Trainer, batches_fn: Callable[[int], Iterator[dict]], train_steps: int,
               model_dir: str, eval_fn: Callable[[Any, int], dict[str, float]] | None = None,
               batch_size: int | None = None) -> TrainState:
  """Trains to `train_steps`, resuming from the latest checkpoint in model_dir by itself.

  batches_fn(start_step) yields this host's batches from that step on (the
  same order as an uninterrupted run); eval_fn(params, step) returns
  validation metrics, logged and used to keep the best checkpoint.
  """
  config = trainer.config
  checkpoints = Checkpoints(model_dir, config.keep_checkpoints,
                            config.best_metric if eval_fn else None, config.checkpoint_every,
                            config.checkpoint_every_minutes, config.async_checkpointing)
  state = trainer.init_state()
  restored = _restore_latest(checkpoints, state)
  if restored is not None:
    state = restored
    logging.info("resumed from step %d in %s", int(state.step), model_dir)
  start = int(state.step)
  clock = TrainClock(model_dir, start)
  budget = config.max_train_hours * 3600
  if budget and clock.seconds >= budget:  # before the data pipeline and the log writer start
    logging.info("the time budget (%.2f training hours) was spent by step %d: nothing to train",
                 config.max_train_hours, start)
    checkpoints.close()
    return state
  from clu import metric_writers
  writer = metric_writers.create_default_writer(
      RunDir(model_dir).train_logs, just_logging=jax.process_index() > 0)
  batches = batches_fn(start)
  clock.resume()  # the clock counts training, not the set-up above
  t0, last_t, last_step = time.time(), time.time(), start
  sums: dict[str, float] = {}
  examples = 0
  try:
    # One process: SIGTERM or a first Ctrl-C stops at the end of the step; several: JAX's
    # runtime watches SIGTERM and every host stops at the same step (reached_preemption).
    with preemption.SignalWatch(enabled=jax.process_count() == 1) as watch:
      for step in range(start + 1, train_steps + 1):
        batch = partitioning.global_array(next(batches), trainer.batch_sharding)
        examples += batch["inputs"].shape[0]
        state, metrics = trainer.train_step(state, batch)
        for k, v in metrics.items():
          sums[k] = sums.get(k, 0.0) + v
        spent = bool(budget) and step % config.log_every == 0 and _all_agree(
            clock.now() >= budget)
        last = step == train_steps or spent
        if step % config.log_every == 0 or last:
          n = step - last_step
          scalars = {k: float(v) / n for k, v in sums.items() if k != "num_tokens"}
          dt = time.time() - last_t
          scalars.update({"steps_per_sec": n / dt, "examples_per_sec": examples / dt,
                          "learning_rate": float(learning_rate_schedule(config)(step)),
                          "train_hours": clock.now() / 3600})
          writer.write_scalars(step, scalars)
          eta = (train_steps - step) / max(n / dt, 1e-9)
          if budget:  # the trainer-hour budget ends the run first where it is shorter
            eta = min(eta, max(budget - clock.now(), 0.0))
          logging.info("step %d/%d: loss %.4f, %.2f steps/s, %.0f examples/s, ETA %.0fs", step,
                       train_steps, scalars["loss"], scalars["steps_per_sec"],
                       scalars["examples_per_sec"], eta)
          sums, examples, last_t, last_step = {}, 0, time.time(), step
        evaluated = None
        preempted = watch.requested is not None or checkpoints.reached_preemption(step)
        do_eval = eval_fn and (step % config.eval_every == 0 or last)
        if do_eval or preempted or last or checkpoints.should_save(step):
          seconds = clock.pause(state)  # evaluation and checkpoint writes are not training time
          if do_eval and not preempted:  # a preempted step saves at once (the grace period)
            evaluated = eval_fn(state.eval_params, step)
            scalars = {**{f"validation/{k}": v for k, v in evaluated.items()},
                       "validation/train_hours": seconds / 3600}
            if isinstance(state, EmaTrainState):  # what averaging adds, on the same trajectory
              raw = eval_fn(state.params, step)
              scalars.update({**{f"{RAW_PREFIX}/{k}": v for k, v in raw.items()},
                              f"{RAW_PREFIX}/train_hours": seconds / 3600})
              logging.info("step %d validation, raw parameters: %s", step,
                           ", ".join(f"{k} {v:.4f}" for k, v in raw.items()))
            writer.write_scalars(step, scalars)
            logging.info("step %d validation (%.2f training hours): %s", step, seconds / 3600,
                         ", ".join(f"{k} {v:.4f}" for k, v in evaluated.items()))
          checkpoints.save(state, evaluated)
          clock.record(step)
          if preempted:  # the checkpoint complete on disk, then stop
            checkpoints.wait()
            raise preemption.Preempted(step, checkpoints.directory)
          clock.resume()
        if spent:
          logging.info("step %d: the time budget (%.2f training hours) is spent; stopping",
                       step, config.max_train_hours)
          break
  finally:
    writer.flush()
    checkpoints.close()
  logging.info("trained %d steps in %.0fs", int(state.step) - start, time.time() - t0)
  return state


def _all_agree(flag: bool) -> bool:
  """Process 0's `flag` on every process (one process: the flag), so that all hosts stop at
  the same step."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils
  return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag)))


def make_eval_fn(exp, trainer: Trainer, split: str, beam_size: int, batch_size: int,
                 max_examples: int | None,
                 exclude_history: bool = False) -> Callable[[Any, int], dict[str, float]]:
  """The validation pass: constrained beam search over the first max_examples users
  (exclude_history: returning none of the user's own history items)."""
  from tiger_jax import input_pipeline
  retriever = retrieval.Retriever(exp.model, exp.layout, exp.ids, beam_size,
                                  batch_sharding=trainer.batch_sharding,
                                  exclude_history=exclude_history)

  def eval_fn(params, step):
    del step
    with trainer.context():
      batches = input_pipeline.eval_batches(exp.task, exp.feature_lengths, split, batch_size,
                                            max_examples, jax.process_index(), jax.process_count(),
                                            trainer.config.eval_buckets, exp.layout.id_length)
      result = retrieval.evaluate(retriever, params, batches)
    return {k: result[k] for k in metrics_lib.METRIC_NAMES}

  return eval_fn


def train(model_dir: str, train_steps: int, batch_size: int, exp,
          trainer_config: TrainerConfig = TrainerConfig(),
          eval_beam_size: int = retrieval.DEFAULT_BEAM, eval_batch_size: int = 64,
          eval_examples: int | None = 2000, eval_exclude_history: bool = False) -> TrainState:
  """Trains `exp` (an `experiment.Experiment`), resuming by itself; keeps the last
  checkpoints and the best by validation (decoded as the final evaluation will be: same
  beam, same `exclude_history`); returns the state."""
  data_parallel = exp.mesh.devices.shape[0]
  if train_steps < 1 or batch_size < 1 or batch_size % data_parallel:
    raise ConfigError(f"train_steps={train_steps}, batch_size={batch_size}: both must be at least "
                      f"1, and the batch a multiple of the mesh's data axis ({data_parallel})")
  trainer = Trainer(exp.model, trainer_config, exp.mesh, exp.feature_lengths)
  io_utils.makedirs(model_dir)
  if jax.process_index() == 0:
    io_utils.write_json(RunDir(model_dir).config_json, {
        "task": exp.task.name, "data_dir": exp.data_dir, "semantic_id_dir": exp.semantic_id_dir,
        "model": dataclasses.asdict(exp.model.config), "label_smoothing": exp.model.label_smoothing,
        "trainer": dataclasses.asdict(trainer_config), "train_steps": train_steps,
        "batch_size": batch_size, "mesh_shape": list(exp.mesh.devices.shape),
        "feature_lengths": exp.feature_lengths, "devices": [str(d) for d in jax.devices()[:8]],
        "per_level_heads": exp.model.level_blocks is not None,
        "usable_cpu_cores": partitioning.usable_cpu_cores()})

  def batches_fn(start_step):
    from tiger_jax import input_pipeline
    return input_pipeline.train_batches(
        exp.task, exp.feature_lengths, batch_size, seed=trainer_config.seed,
        num_buckets=trainer_config.num_buckets, id_length=exp.layout.id_length,
        shard_index=jax.process_index(), num_shards=jax.process_count(), start_step=start_step,
        histories=trainer_config.train_histories)

  eval_fn = make_eval_fn(exp, trainer, "validation", eval_beam_size, eval_batch_size,
                         eval_examples, eval_exclude_history) if trainer_config.eval_every else None
  return train_loop(trainer, batches_fn, train_steps, model_dir, eval_fn, batch_size=batch_size)
