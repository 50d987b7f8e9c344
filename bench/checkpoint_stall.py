r"""The training time each checkpoint save costs, synchronous against asynchronous, and how long
a preemption save (save, then wait until it is on disk) takes.

  python bench/checkpoint_stall.py --gin_file=gin_configs/recipes/beauty_paper.gin \
      --gin.DATA_DIR="'runs/beauty/data'" --gin.SEMANTIC_ID_DIR="'runs/beauty/semantic_ids'" \
      [--steps=30 --save_every=5]

For the recipe's model and trainer on the prepared data, in one process: the mean step time of
--steps steps without saves, then with a save every --save_every steps, once with orbax's
synchronous writes and once with asynchronous ones; the stall per save is the difference over
the number of saves. Then a preemption save: `Checkpoints.save` and `wait` timed together
(what the trainer does on SIGTERM). Run it alone on the machine.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

flags.DEFINE_integer("steps", 30, "Timed steps per variant.")
flags.DEFINE_integer("save_every", 5, "Steps between saves in the saving variants.")
FLAGS = flags.FLAGS


def _time_steps(trainer, state, batches, steps, checkpoints=None, save_every=0):
  import jax
  from tiger_jax import input_pipeline
  start = time.time()
  for i in range(1, steps + 1):
    batch = input_pipeline.global_array(next(batches), trainer.batch_sharding)
    state, _ = trainer.train_step(state, batch)
    if checkpoints is not None and i % save_every == 0:
      jax.block_until_ready(state)  # what the trainer's clock.pause does before a save
      checkpoints.save(state)
  jax.block_until_ready(state)
  return state, time.time() - start


def main() -> None:
  import gin
  import jax
  from tiger_jax import configurables, input_pipeline
  from tiger_jax.partitioning import hardware
  from tiger_jax.trainer import Checkpoints, Trainer
  exp = configurables.experiment()
  base = configurables.TrainerConfig()
  batch_size = gin.query_parameter("%BATCH_SIZE")
  recipe = FLAGS.gin_file[0] if FLAGS.gin_file else "?"
  n = FLAGS.steps
  print(f"{recipe}: batch {batch_size}, {n} steps per variant, a save every {FLAGS.save_every}; "
        f"{hardware()}", flush=True)
  print("| writes | step, no saves (ms) | step, saving (ms) | stall per save (ms) | "
        "preemption save: save + wait (s) |")
  print("|---|---|---|---|---|")
  for async_ in (False, True):
    config = dataclasses.replace(base, async_checkpointing=async_)
    trainer = Trainer(exp.model, config, exp.mesh, exp.feature_lengths)
    state = trainer.init_state()
    batches = input_pipeline.train_batches(exp.task, exp.feature_lengths, batch_size, seed=0,
                                           num_buckets=1, id_length=exp.layout.id_length)
    state, _ = _time_steps(trainer, state, batches, 3)  # compile
    state, plain = _time_steps(trainer, state, batches, n)
    with tempfile.TemporaryDirectory() as tmp:
      checkpoints = Checkpoints(tmp, keep=2, best_metric=None, every_steps=10 ** 9,
                                async_=async_)
      state, saving = _time_steps(trainer, state, batches, n, checkpoints, FLAGS.save_every)
      checkpoints.wait()
      state, _ = _time_steps(trainer, state, batches, 1)  # a preemption save: the step in
      t0 = time.time()  # hand, complete on disk
      checkpoints.save(state)
      checkpoints.wait()
      preempt = time.time() - t0
      checkpoints.close()
    saves = n // FLAGS.save_every
    print(f"| {'asynchronous' if async_ else 'synchronous'} | {plain / n * 1e3:.0f} | "
          f"{saving / n * 1e3:.0f} | {(saving - plain) / saves * 1e3:.0f} | {preempt:.2f} |",
          flush=True)


if __name__ == "__main__":
  from tiger_jax import cli, configurables  # noqa: F401  (the gin names, before gin parses)
  cli.run(main, calls=("experiment", "TrainerConfig"))
