"""The command-line flags of a run on several hosts, shared by the binaries that run there
(`train`, `evaluate`): each host starts the same command, and `initialize()` joins them."""

from __future__ import annotations

import jax
from absl import flags, logging

flags.DEFINE_bool("multi_host", False, "Call jax.distributed.initialize() (multi-host runs); "
                  "on TPU VMs and under SLURM it finds its peers by itself.")
flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (plain multi-node).")
flags.DEFINE_integer("num_processes", None, "Number of processes (plain multi-node).")
flags.DEFINE_integer("process_id", None, "This process's index (plain multi-node).")
FLAGS = flags.FLAGS


def initialize() -> None:
  """With --multi_host, joins the other hosts (before any other JAX call); logs the devices."""
  if FLAGS.multi_host:
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  logging.info("devices: %s (process %d of %d)", jax.devices(), jax.process_index(),
               jax.process_count())
