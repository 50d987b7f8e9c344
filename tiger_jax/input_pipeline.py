"""Batches from a SeqIO task: bucketing by history length, per-host shards, resumable order.

Histories average ~9 items, so padding every example to 20 items would
spend half the compute on pads. Training batches are grouped by input
length into a few buckets (each a fixed shape, so jit compiles once per
bucket); evaluation batches are padded to the full length.
"""

from __future__ import annotations

from typing import Iterator, Mapping, Sequence

import numpy as np
import seqio
import tensorflow as tf

from tiger_jax.buckets import bucket_boundaries, bucket_width
from tiger_jax.data import TRAIN_HISTORIES

Batch = dict[str, np.ndarray]


def _pad_to(x: tf.Tensor, length: int) -> tf.Tensor:
  return tf.pad(x[:length], [[0, length - tf.minimum(tf.shape(x)[0], length)]])


def shuffle_buffer_size(task: seqio.Task, num_shards: int = 1) -> int | None:
  """The task's shuffle buffer, at most one epoch of a shard's training examples. SeqIO repeats
  the split before it shuffles, so a larger buffer only mixes epochs, and it fills before the
  first batch comes: 10,000 examples of a catalog with 600 cost each (re)start seconds. A split
  with more examples than the buffer (Beauty, Toys) keeps the task's buffer and its order."""
  examples = task.num_input_examples("train")
  if not examples or task.shuffle_buffer_size is None:
    return None  # the task's own
  return max(1, min(task.shuffle_buffer_size, -(-examples // num_shards)))


def history_suffixes(ds: tf.data.Dataset, id_length: int) -> tf.data.Dataset:
  """Each example {inputs: [user, item_1 .. item_n codes], targets} -> n examples whose
  histories are item_i .. item_n (same user token and target), longest first.

  Over the prefix examples of a sequence, these are all its contiguous
  sub-sequences, each with the item that follows it (at most MAX_HISTORY long).
  """
  def expand(ex):
    starts = 1 + tf.range(tf.maximum((tf.shape(ex["inputs"])[0] - 1) // id_length, 1)) * id_length
    return tf.data.Dataset.from_tensor_slices(starts).map(
        lambda s: {**ex, "inputs": tf.concat([ex["inputs"][:1], ex["inputs"][s:]], 0)})
  return ds.flat_map(expand)


def train_batches(task: seqio.Task, feature_lengths: Mapping[str, int], batch_size: int,
                  seed: int, num_buckets: int = 5, id_length: int = 4,
                  shard_index: int = 0, num_shards: int = 1, start_step: int = 0,
                  histories: str = "prefixes", shuffle_buffer: int = 10_000) -> Iterator[Batch]:
  """Endless per-host training batches [batch_size // num_shards, length].

  The order is fixed by `seed`; `start_step` skips the batches a resumed run
  already trained on, so a restart sees the same data from that step. With
  num_buckets > 1 (single host only) each batch takes the shortest bucket
  length its examples fit. histories='subsequences' trains on every contiguous
  sub-sequence of each training sequence (`history_suffixes`, reshuffled with
  `shuffle_buffer`) instead of its prefixes.
  """
  if histories not in TRAIN_HISTORIES:
    raise ValueError(f"histories={histories!r}: expected one of {TRAIN_HISTORIES}")
  if batch_size % num_shards:
    raise ValueError(f"batch size {batch_size} does not split over {num_shards} hosts")
  local = batch_size // num_shards
  ds = task.get_dataset(feature_lengths, split="train", shuffle=True, seed=seed,
                        shard_info=seqio.ShardInfo(shard_index, num_shards), num_epochs=None,
                        use_cached=False, shuffle_buffer_size=shuffle_buffer_size(task, num_shards))
  in_len, tgt_len = feature_lengths["inputs"], feature_lengths["targets"]
  if histories == "subsequences":
    ds = history_suffixes(ds, id_length).shuffle(shuffle_buffer, seed=seed)
  ds = ds.map(lambda ex: {"inputs": ex["inputs"], "targets": _pad_to(ex["targets"], tgt_len)},
              num_parallel_calls=tf.data.AUTOTUNE)
  if num_buckets > 1 and num_shards == 1:
    bounds = bucket_boundaries(in_len, id_length, num_buckets)
    ds = ds.bucket_by_sequence_length(
        lambda ex: tf.shape(ex["inputs"])[0], bucket_boundaries=[b + 1 for b in bounds[:-1]],
        bucket_batch_sizes=[local] * len(bounds), padded_shapes={"inputs": [None], "targets": [tgt_len]},
        pad_to_bucket_boundary=False, drop_remainder=True)
    ds = ds.map(lambda b: {"inputs": _pad_batch_to_bucket(b["inputs"], bounds), "targets": b["targets"]})
  else:
    ds = ds.padded_batch(local, padded_shapes={"inputs": [in_len], "targets": [tgt_len]},
                         drop_remainder=True)
  ds = ds.skip(start_step).prefetch(tf.data.AUTOTUNE)
  for batch in ds.as_numpy_iterator():
    yield batch


def _pad_batch_to_bucket(inputs: tf.Tensor, bounds: Sequence[int]) -> tf.Tensor:
  """Pads [b, n] to [b, the smallest bound >= n] so each bucket has one shape."""
  n = tf.shape(inputs)[1]
  target = tf.reduce_min(tf.boolean_mask(tf.constant(bounds), tf.constant(bounds) >= n))
  return tf.pad(inputs, [[0, 0], [0, target - n]])


def eval_batches(task: seqio.Task, feature_lengths: Mapping[str, int], split: str, batch_size: int,
                 max_examples: int | None = None, shard_index: int = 0, num_shards: int = 1,
                 num_buckets: int = 5, id_length: int = 4) -> Iterator[Batch]:
  """Evaluation batches covering a split once, each with `batch_size` rows (padding rows
  have mask 0). With num_buckets > 1 users are grouped by history length, so short
  histories are not padded to the longest (one compiled shape per bucket). max_examples counts
  over all shards: each takes its share."""
  ds = task.get_dataset(feature_lengths, split=split, shuffle=False,
                        shard_info=seqio.ShardInfo(shard_index, num_shards), num_epochs=1)
  if max_examples:
    ds = ds.take(-(-max_examples // num_shards))
  in_len, tgt_len = feature_lengths["inputs"], feature_lengths["targets"]
  ds = ds.map(lambda ex: {"inputs": ex["inputs"], "targets": _pad_to(ex["targets"], tgt_len),
                          "target_item": ex["target_item"], "user": ex["user"],
                          "mask": tf.constant(1, tf.int32)})
  shapes = {"inputs": [None], "targets": [tgt_len], "target_item": [], "user": [], "mask": []}
  bounds = bucket_boundaries(in_len, id_length, num_buckets)  # [in_len] for one bucket
  if len(bounds) > 1:
    ds = ds.bucket_by_sequence_length(
        lambda ex: tf.shape(ex["inputs"])[0], bucket_boundaries=[b + 1 for b in bounds[:-1]],
        bucket_batch_sizes=[batch_size] * len(bounds), padded_shapes=shapes)
  else:
    ds = ds.padded_batch(batch_size, padded_shapes=shapes)
  for batch in ds.as_numpy_iterator():
    n, length = batch["inputs"].shape
    width = bucket_width(bounds, length)
    batch["inputs"] = np.pad(batch["inputs"], ((0, 0), (0, width - length)))
    if n < batch_size:
      batch = {k: np.concatenate([v, np.zeros((batch_size - n,) + v.shape[1:], v.dtype)])
               for k, v in batch.items()}
    yield batch
