"""What a run builds from its config (task, token layout, model, mesh), and its checkpoints.

The one convention for where a run's files live: MODEL_DIR holds the
checkpoints, and unless DATA_DIR / SEMANTIC_ID_DIR name other folders, the
prepared data in MODEL_DIR/data and the Semantic IDs in MODEL_DIR/semantic_ids
(what `python -m tiger_jax.main` writes). Tasks register when a run asks for
them, on these folders.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from tiger_jax import baselines, io_utils, network, partitioning
from tiger_jax.network import followers, item_head
from tiger_jax import data as data_lib
from tiger_jax.data import DataError
from tiger_jax.models import EncoderDecoderModel
from tiger_jax.checkpoints import Checkpoints
from tiger_jax.trainer import Trainer, TrainState, saved_trainer_config
from tiger_jax.run_dir import RunDir


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


def run_dirs(model_dir: str | None, data_dir: str | None,
             semantic_id_dir: str | None) -> tuple[str, str]:
  """(data_dir, semantic_id_dir): as given, else MODEL_DIR/data and MODEL_DIR/semantic_ids."""
  if model_dir is None and (data_dir is None or semantic_id_dir is None):
    raise DataError("no MODEL_DIR and no DATA_DIR / SEMANTIC_ID_DIR: set --gin.MODEL_DIR "
                    "(its data/ and semantic_ids/ are used) or both folders")
  return (data_dir or RunDir(model_dir).data, semantic_id_dir or RunDir(model_dir).semantic_ids)


def experiment(mixture_or_task_name: str, task_feature_lengths: Mapping[str, int] | None = None,
               data_dir: str | None = None, semantic_id_dir: str | None = None,
               model_config: network.T5Config = network.T5Config(),
               mesh_shape: Sequence[int] = (-1, 1), label_smoothing: float = 0.0,
               model_dir: str | None = None, per_level_heads: bool = False) -> Experiment:
  """Registers the task on the run's folders and builds model and mesh for it.

  task_feature_lengths None (t5x's `TASK_FEATURE_LENGTHS = None`) derives them
  from the Semantic IDs' length: `tasks.feature_lengths(id_length)`. The model's
  vocabulary and codes per item come from the IDs too; per_level_heads trains one
  softmax per Semantic-ID level (`EncoderDecoderModel.level_blocks`).
  """
  data_dir, semantic_id_dir = run_dirs(model_dir, data_dir, semantic_id_dir)
  if not io_utils.isdir(os.path.join(data_dir, "tfds")):
    raise DataError(f"{data_dir}/tfds: no TFDS dataset here; prepare the data with "
                    f"`python -m tiger_jax.data --out_dir={data_dir} ...` first")
  import tasks  # (seqio and TensorFlow: loaded when a run builds its task)
  task = tasks.register_task(mixture_or_task_name, data_dir, semantic_id_dir)
  item_tokens, _, layout = tasks.token_tables(data_dir, semantic_id_dir)
  ids = layout.tokens_to_ids(item_tokens)
  lengths = dict(task_feature_lengths or tasks.feature_lengths(layout.id_length))
  model_config = dataclasses.replace(model_config, vocab_size=layout.vocab_size,
                                     id_length=layout.id_length)
  model = EncoderDecoderModel(network.Transformer(model_config), label_smoothing=label_smoothing,
                              level_blocks=layout.level_blocks if per_level_heads else None,
                              memory=model_memory(data_dir, item_tokens, model_config))
  mesh = partitioning.make_mesh(*mesh_shape)
  return Experiment(task, layout, ids, model, mesh, lengths, data_dir, semantic_id_dir)


def model_memory(data_dir: str, item_tokens: np.ndarray,
                 config: network.T5Config) -> dict[str, Any] | None:
  """The model's 'memory' collection: the followers' counts and the item head's item tokens,
  where the config asks for them; None where it asks for neither."""
  memory = dict(follower_memory(data_dir, item_tokens, config) or {})
  if config.item_head is not None:
    memory.update(item_head.memory_variables(item_head.item_memory(item_tokens)))
  return memory or None


def follower_memory(data_dir: str, item_tokens: np.ndarray,
                    config: network.T5Config) -> dict[str, Any] | None:
  """The model's 'memory' collection: the followers' counts (T5Config.followers) from the
  run's training sequences (validation and test items left out); None without followers."""
  if config.followers is None:
    return None
  dataset = data_lib.load(data_dir)
  items, counts = baselines.followers(data_lib.training_sequences(dataset), dataset.num_items,
                                      config.followers.count)
  return followers.memory_variables(followers.follower_memory(item_tokens, items, counts))


CHECKPOINTS = ("latest", "best")


def restore(exp: Experiment, model_dir: str, which: str = "latest") -> tuple[Trainer, TrainState]:
  """(trainer, train state) of model_dir's latest checkpoint, or of the one that scored best
  on validation during training (`best/`; the trainer's TrainerConfig.best_metric). The
  trainer is built from the run's own TrainerConfig (its config.json): the optimizer state
  and parameter average restore as they were saved; decode with `state.eval_params`."""
  if which not in CHECKPOINTS:
    raise ValueError(f"checkpoint {which!r}: expected one of {CHECKPOINTS}")
  trainer = Trainer(exp.model, saved_trainer_config(model_dir), exp.mesh, exp.feature_lengths)
  checkpoints = Checkpoints(model_dir, keep=1000,
                            best_metric=trainer.config.best_metric if which == "best" else None)
  try:
    state = (checkpoints.restore_best if which == "best" else checkpoints.restore_latest)(
        trainer.abstract_state())
  finally:
    checkpoints.close()
  if state is None:
    where = "best" if which == "best" else "checkpoints"
    raise FileNotFoundError(f"{model_dir}/{where}: no checkpoint to evaluate"
                            + (" (the run kept none: train with validation, "
                               "TrainerConfig.eval_every > 0)" if which == "best" else ""))
  return trainer, state
