r"""Trains TIGER's encoder-decoder on a SeqIO task (a thin, t5x-shaped CLI).

  python -m tiger_jax.train --gin_file=gin_configs/tiger_beauty.gin \
      --gin.MODEL_DIR="'runs/beauty'" [--gin.TRAIN_STEPS=2000]

The data and Semantic IDs are read from MODEL_DIR/data and MODEL_DIR/semantic_ids
unless --gin.DATA_DIR / --gin.SEMANTIC_ID_DIR name other folders. gin binds here
only: `trainer.train` and `experiment.experiment` take plain arguments.
"""

from __future__ import annotations

import gin
import jax
from absl import flags, logging

from tiger_jax import cli, configurables

flags.DEFINE_bool("multi_host", False, "Call jax.distributed.initialize() (multi-host runs); "
                  "on TPU VMs and under SLURM it finds its peers by itself.")
flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (plain multi-node).")
flags.DEFINE_integer("num_processes", None, "Number of processes (plain multi-node).")
flags.DEFINE_integer("process_id", None, "This process's index (plain multi-node).")
FLAGS = flags.FLAGS


def main() -> None:
  if FLAGS.multi_host:
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  logging.info("devices: %s (process %d of %d)", jax.devices(), jax.process_index(),
               jax.process_count())
  exp = configurables.experiment()
  configurables.write_config(gin.query_parameter("%MODEL_DIR"))
  configurables.train(exp=exp)


if __name__ == "__main__":
  cli.run(main, calls=("experiment", "train"))
