r"""The training time each checkpoint save costs, synchronous against asynchronous, and how long
a preemption save (save, then wait until it is on disk) takes.

  python bench/checkpoint_stall.py --gin_file=gin_configs/recipes/beauty_paper.gin \
      --gin.DATA_DIR="'runs/beauty/data'" --gin.SEMANTIC_ID_DIR="'runs/beauty/semantic_ids'" \
      [--saves=5 --between=3]

For the recipe's model and trainer on the prepared data, in one process, once with orbax's
synchronous writes and once with asynchronous ones: --saves saves, each after --between plain
steps. Per save it times the `Checkpoints.save` call (what blocks the loop) and the step after it
against the median plain step (what a background write takes from training on a machine with
few cores); the stall is their sum. Then a preemption save: `save` and `wait` timed together
(what the trainer does on SIGTERM before it exits). Run it alone on the machine.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

flags.DEFINE_integer("saves", 6, "Saves timed per variant.")
flags.DEFINE_integer("between", 3, "Plain steps before each save.")
FLAGS = flags.FLAGS


def main() -> None:
  import gin
  import jax
  from tiger_jax import configurables, input_pipeline, partitioning
  from tiger_jax.partitioning import hardware
  from tiger_jax.checkpoints import Checkpoints
  from tiger_jax.trainer import Trainer
  exp = configurables.experiment()
  base = configurables.TrainerConfig()
  batch_size = gin.query_parameter("%BATCH_SIZE")
  recipe = FLAGS.gin_file[0] if FLAGS.gin_file else "?"
  print(f"{recipe}: batch {batch_size}, plain padding, {FLAGS.saves} saves "
        f"per variant after {FLAGS.between} plain steps each; {hardware()}", flush=True)
  print("| writes | plain step (ms, median) | save call (ms) | step after a save, extra (ms) | "
        "stall per save (ms) | preemption save: save + wait (s) |")
  print("|---|---|---|---|---|---|")
  for async_ in (False, True):
    # Plain padding: every step has the same shape, so the step after a save compares with
    # the others (length buckets make step times vary several-fold from batch to batch).
    config = dataclasses.replace(base, async_checkpointing=async_, num_buckets=1)
    trainer = Trainer(exp.model, config, exp.mesh, exp.feature_lengths)
    state = trainer.init_state()
    batches = input_pipeline.train_batches(exp.task, exp.feature_lengths, batch_size, seed=0,
                                           num_buckets=config.num_buckets,
                                           id_length=exp.layout.id_length)

    def step(state):
      t0 = time.time()
      state, _ = trainer.train_step(
          state, partitioning.global_array(next(batches), trainer.batch_sharding))
      jax.block_until_ready(state)
      return state, time.time() - t0

    for _ in range(3):  # compile every bucket shape seen early
      state, _ = step(state)
    plain, calls, after = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
      checkpoints = Checkpoints(tmp, keep=2, best_metric=None, every_steps=10 ** 9,
                                async_=async_)
      for _ in range(FLAGS.saves):
        for _ in range(FLAGS.between):
          state, seconds = step(state)
          plain.append(seconds)
        t0 = time.time()
        checkpoints.save(state)
        calls.append(time.time() - t0)
        state, seconds = step(state)
        after.append(seconds)
      checkpoints.wait()
      state, _ = step(state)
      t0 = time.time()  # a preemption save: the step in hand, complete on disk
      checkpoints.save(state)
      checkpoints.wait()
      preempt = time.time() - t0
      checkpoints.close()
    median = statistics.median(plain)
    extra = statistics.mean(after) - median
    call = statistics.mean(calls)
    print(f"| {'asynchronous' if async_ else 'synchronous'} | {median * 1e3:.0f} | "
          f"{call * 1e3:.0f} | {extra * 1e3:.0f} | {(call + extra) * 1e3:.0f} | {preempt:.2f} |",
          flush=True)


if __name__ == "__main__":
  from tiger_jax import cli, configurables  # noqa: F401  (the gin names, before gin parses)
  cli.run(main, calls=("experiment", "TrainerConfig"))
