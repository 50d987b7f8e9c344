r"""Trains TIGER's encoder-decoder on a SeqIO task (a thin, t5x-shaped CLI).

  python -m tiger_jax.train --gin_file=gin_configs/tiger_beauty.gin \
      --gin.MODEL_DIR="'/tmp/tiger_beauty'" [--gin.TRAIN_STEPS=2000]

gin binds here only: `train` and `experiment` take plain arguments.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Sequence

import gin
import jax
import numpy as np
from absl import flags, logging

from tiger_jax import cli, evaluate as evaluate_lib, input_pipeline, io_utils, network, partitioning
from tiger_jax.models import EncoderDecoderModel
from tiger_jax.trainer import Trainer, TrainerConfig, train_loop

flags.DEFINE_bool("multi_host", False, "Call jax.distributed.initialize() (multi-host runs); "
                  "on TPU VMs and under SLURM it finds its peers by itself.")
flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (plain multi-node).")
flags.DEFINE_integer("num_processes", None, "Number of processes (plain multi-node).")
flags.DEFINE_integer("process_id", None, "This process's index (plain multi-node).")
FLAGS = flags.FLAGS


@dataclasses.dataclass
class Experiment:
  """Everything a run builds from its config: task, token layout, model, mesh."""
  task: Any
  layout: Any
  ids: np.ndarray
  model: EncoderDecoderModel
  mesh: jax.sharding.Mesh
  feature_lengths: dict[str, int]
  data_dir: str
  semantic_id_dir: str


def experiment(mixture_or_task_name: str, task_feature_lengths: Mapping[str, int],
               data_dir: str | None = None, semantic_id_dir: str | None = None,
               model_config: network.T5Config = network.T5Config(),
               mesh_shape: Sequence[int] = (-1, 1), label_smoothing: float = 0.0) -> Experiment:
  """Registers the task on the run's folders and builds model and mesh for it."""
  import tasks
  name = mixture_or_task_name
  root = os.path.join(tasks.tiger_tasks.DATA_ROOT, tasks.TASK_NAMES.get(name, name))
  data_dir = data_dir or os.path.join(root, "data")
  semantic_id_dir = semantic_id_dir or os.path.join(root, "semantic_ids")
  from tiger_jax.data import DataError
  if not io_utils.isdir(os.path.join(data_dir, "tfds")):
    raise DataError(f"{data_dir}/tfds: no TFDS dataset here; prepare the data with "
                    f"`python -m tiger_jax.data --out_dir={data_dir} ...` first")
  task = tasks.register_task(name, data_dir, semantic_id_dir)
  item_tokens, _, layout = tasks.tiger_tasks.token_tables(data_dir, semantic_id_dir)
  ids = layout.tokens_to_ids(item_tokens)
  model_config = dataclasses.replace(model_config, vocab_size=layout.vocab_size)
  model = EncoderDecoderModel(network.Transformer(model_config), label_smoothing=label_smoothing)
  mesh = partitioning.make_mesh(*mesh_shape)
  return Experiment(task, layout, ids, model, mesh, dict(task_feature_lengths), data_dir,
                    semantic_id_dir)


def make_eval_fn(exp: Experiment, trainer: Trainer, split: str, beam_size: int,
                 batch_size: int, max_examples: int | None):
  retriever = evaluate_lib.Retriever(exp.model, exp.layout, exp.ids, beam_size)

  def eval_fn(params, step):
    del step
    with trainer.context():
      batches = input_pipeline.eval_batches(exp.task, exp.feature_lengths, split, batch_size,
                                            max_examples, jax.process_index(), jax.process_count())
      result = evaluate_lib.evaluate(retriever, params, batches)
    return {k: result[k] for k in ("recall@5", "recall@10", "ndcg@5", "ndcg@10")}

  return eval_fn


def train(model_dir: str, train_steps: int, batch_size: int, exp: Experiment,
          trainer_config: TrainerConfig = TrainerConfig(), eval_beam_size: int = 20,
          eval_batch_size: int = 64, eval_examples: int | None = 2000):
  """Trains (resuming by itself), keeps the last and the best checkpoints; returns the state."""
  data_parallel = exp.mesh.devices.shape[0]
  if train_steps < 1 or batch_size < 1 or batch_size % data_parallel:
    raise ValueError(f"train_steps={train_steps}, batch_size={batch_size}: both must be at least "
                     f"1, and the batch a multiple of the mesh's data axis ({data_parallel})")
  trainer = Trainer(exp.model, trainer_config, exp.mesh, exp.feature_lengths)
  io_utils.makedirs(model_dir)
  if jax.process_index() == 0:
    io_utils.write_json(os.path.join(model_dir, "config.json"), {
        "task": exp.task.name, "data_dir": exp.data_dir, "semantic_id_dir": exp.semantic_id_dir,
        "model": dataclasses.asdict(exp.model.config),
        "trainer": dataclasses.asdict(trainer_config), "train_steps": train_steps,
        "batch_size": batch_size, "mesh_shape": list(exp.mesh.devices.shape),
        "feature_lengths": exp.feature_lengths, "devices": [str(d) for d in jax.devices()[:8]],
        "usable_cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count()})
  if jax.process_index() == 0:
    with io_utils.atomic_open(os.path.join(model_dir, "config.gin")) as f:
      f.write(gin.config_str())

  def batches_fn(start_step):
    return input_pipeline.train_batches(
        exp.task, exp.feature_lengths, batch_size, seed=trainer_config.seed,
        num_buckets=trainer_config.num_buckets, id_length=exp.layout.id_length,
        shard_index=jax.process_index(), num_shards=jax.process_count(), start_step=start_step)

  eval_fn = make_eval_fn(exp, trainer, "validation", eval_beam_size, eval_batch_size,
                         eval_examples) if trainer_config.eval_every else None
  return train_loop(trainer, batches_fn, train_steps, model_dir, eval_fn, batch_size=batch_size)


# gin at the edges: the library functions and configs, registered by name.
experiment_configurable = gin.external_configurable(experiment, "experiment")
train_configurable = gin.external_configurable(train, "train")
T5Config = gin.external_configurable(network.T5Config, "T5Config")
TrainerConfigurable = gin.external_configurable(TrainerConfig, "TrainerConfig")


def main() -> None:
  if FLAGS.multi_host:
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  logging.info("devices: %s (process %d of %d)", jax.devices(), jax.process_index(),
               jax.process_count())
  train_configurable(exp=experiment_configurable())


if __name__ == "__main__":
  cli.run(main)
