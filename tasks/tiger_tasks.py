"""SeqIO tasks `tiger_beauty`, `tiger_toys`, `tiger_sports`, `tiger_synthetic`.

Each reads the `amazon_reviews_2014` TFDS dataset that `python -m
tiger_jax.data` built beside the prepared data, and maps item indices to
tokens: inputs = user token + Semantic IDs of the history (flattened),
targets = the next item's Semantic ID + eos.

Tasks register when a run asks for one: `register_task(name, data_dir,
semantic_id_dir)` (what `tiger_jax.experiment.experiment` does with the run's
folders: MODEL_DIR/data and MODEL_DIR/semantic_ids unless DATA_DIR /
SEMANTIC_ID_DIR name others). Importing this module registers nothing, and
files are read when a dataset is built.
"""

from __future__ import annotations

import functools
import os
from typing import Callable, Sequence

import numpy as np
import seqio
import tensorflow as tf

from tiger_jax import data as data_lib
from tiger_jax import io_utils, metrics
from tiger_jax.data import tfds_builder  # noqa: F401  (registers amazon_reviews_2014)
from tiger_jax.semantic_ids import pipeline as sid_pipeline
from tiger_jax.tokens import EOS_ID, TokenLayout

TASK_NAMES = {"tiger_beauty": "beauty", "tiger_toys": "toys", "tiger_sports": "sports",
              "tiger_synthetic": "synthetic"}
TFDS_VERSION = "1.0.0"
MAX_HISTORY = data_lib.MAX_HISTORY


@functools.lru_cache(maxsize=8)
def _tables(data_dir: str, semantic_id_dir: str, mtime: float) -> tuple[np.ndarray, np.ndarray, TokenLayout]:
  del mtime  # part of the cache key only
  ids = sid_pipeline.load_ids(semantic_id_dir)
  layout = TokenLayout.for_ids(ids)
  dataset = data_lib.load(data_dir)
  if len(ids) != dataset.num_items:
    raise data_lib.DataError(f"{semantic_id_dir}: {len(ids)} Semantic IDs for a dataset of "
                             f"{dataset.num_items} items ({data_dir})")
  return layout.item_tokens(ids), layout.user_tokens(dataset.user_ids), layout


def token_tables(data_dir: str, semantic_id_dir: str):
  """(item tokens [num_items, levels], user tokens [num_users], layout) of a run."""
  path = os.path.join(semantic_id_dir, sid_pipeline.IDS_FILE)
  return _tables(io_utils.abspath(data_dir), io_utils.abspath(semantic_id_dir),
                 io_utils.mtime(path) if io_utils.exists(path) else 0.0)


class TokenVocabulary(seqio.PassThroughVocabulary):
  """Pass-through vocabulary whose size comes from the run's Semantic IDs, when first asked."""

  def __init__(self, data_dir: str, semantic_id_dir: str):
    self._dirs = (data_dir, semantic_id_dir)
    self._eos_id = EOS_ID
    seqio.Vocabulary.__init__(self)

  @property
  def _size(self) -> int:
    return token_tables(*self._dirs)[2].vocab_size

  def __eq__(self, other):
    return isinstance(other, TokenVocabulary) and self._dirs == other._dirs


def to_tokens(dataset: tf.data.Dataset, data_dir: str, semantic_id_dir: str) -> tf.data.Dataset:
  """{user, history, target} item indices -> {inputs, targets} tokens (+ target_item, user)."""
  item_tokens, user_tokens, _ = token_tables(data_dir, semantic_id_dir)
  items = tf.constant(item_tokens)
  users = tf.constant(user_tokens)

  def fn(ex):
    history = tf.reshape(tf.gather(items, ex["history"]), [-1])
    return {"inputs": tf.concat([tf.gather(users, ex["user"])[None], history], 0),
            "targets": tf.gather(items, ex["target"]),
            "target_item": ex["target"], "user": ex["user"]}

  return dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE)


@functools.lru_cache(maxsize=8)
def _item_of_tokens(data_dir: str, semantic_id_dir: str, mtime: float) -> dict[tuple, int]:
  del mtime  # part of the cache key only
  item_tokens, _, _ = token_tables(data_dir, semantic_id_dir)
  return {tuple(t): i for i, t in enumerate(item_tokens.tolist())}


def items_of_beams(beams, data_dir: str, semantic_id_dir: str) -> list[int]:
  """Beams of Semantic-ID tokens [beam, id_length] -> item indices (-1: no such item)."""
  path = os.path.join(semantic_id_dir, sid_pipeline.IDS_FILE)
  lookup = _item_of_tokens(io_utils.abspath(data_dir), io_utils.abspath(semantic_id_dir),
                           io_utils.mtime(path) if io_utils.exists(path) else 0.0)
  return [lookup.get(tuple(int(t) for t in beam), -1) for beam in beams]


def postprocess(output, example=None, is_target: bool = False, *, data_dir: str,
                semantic_id_dir: str):
  """Targets -> the held-out item index; predictions (a user's beams of Semantic-ID tokens,
  best first, from `tiger_jax.retrieval.Retriever.tokens`) -> the ranked item list, for
  `metrics.seqio_retrieval_metric`."""
  if is_target:
    return int(example["target_item"])
  return items_of_beams(output, data_dir, semantic_id_dir)


def feature_lengths(id_length: int = 4, max_history: int = MAX_HISTORY) -> dict[str, int]:
  """TASK_FEATURE_LENGTHS: user token + history IDs; one ID + eos."""
  return {"inputs": 1 + max_history * id_length, "targets": id_length + 1}


def register_task(name: str, data_dir: str, semantic_id_dir: str, tfds_config: str | None = None,
                  metric_fns: Sequence[Callable] = (metrics.seqio_retrieval_metric,),
                  extra_preprocessors: Sequence[Callable] = ()):
  """(Re-)registers a TIGER task over a run's prepared data and Semantic IDs."""
  tfds_config = tfds_config or TASK_NAMES.get(name, "synthetic")
  if name in seqio.TaskRegistry.names():
    seqio.TaskRegistry.remove(name)
  vocab = TokenVocabulary(data_dir, semantic_id_dir)
  return seqio.TaskRegistry.add(
      name,
      source=seqio.TfdsDataSource(f"amazon_reviews_2014/{tfds_config}:{TFDS_VERSION}",
                                  tfds_data_dir=os.path.join(data_dir, "tfds")),
      preprocessors=[functools.partial(to_tokens, data_dir=data_dir, semantic_id_dir=semantic_id_dir),
                     *extra_preprocessors, seqio.preprocessors.append_eos_after_trim],
      output_features={"inputs": seqio.Feature(vocab, add_eos=False, dtype=tf.int32),
                       "targets": seqio.Feature(vocab, add_eos=True, dtype=tf.int32)},
      postprocess_fn=functools.partial(postprocess, data_dir=data_dir,
                                       semantic_id_dir=semantic_id_dir),
      metric_fns=list(metric_fns), shuffle_buffer_size=10_000)
