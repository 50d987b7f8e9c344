r"""Retrieval by constrained beam search, and the evaluate command.

  python -m tiger_jax.evaluate --gin_file=gin_configs/tiger_beauty.gin \
      --gin.MODEL_DIR="'/tmp/tiger_beauty'" --split=test

writes MODEL_DIR/results/<split>.json: recall@5/10, ndcg@5/10, invalid_rate,
users, beam, checkpoint step, wall time.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from tiger_jax import decoding, input_pipeline, metrics as metrics_lib
from tiger_jax.models import EncoderDecoderModel
from tiger_jax.tokens import TokenLayout


class Retriever:
  """Top-K items per user from a trained model, fully on device (one jit per batch shape)."""

  def __init__(self, model: EncoderDecoderModel, layout: TokenLayout, ids: np.ndarray,
               beam_size: int = 20, constrained: bool = True,
               batch_sharding: jax.sharding.Sharding | None = None):
    self.model, self.layout, self.ids = model, layout, np.asarray(ids)
    self.beam_size, self.constrained = beam_size, constrained
    self.trie = decoding.Trie.build(self.ids) if constrained else None
    self._fn = jax.jit(self._retrieve, in_shardings=(None, batch_sharding) if batch_sharding else None)

  def _retrieve(self, params: Any, inputs: jax.Array):
    model, layout, k = self.model, self.layout, self.beam_size
    length = layout.id_length
    encoded = model.encode(params, inputs)
    cache = model.init_cache(params, encoded, inputs, length, beams=k)
    step = lambda tokens, cache: model.decode_step(params, cache, encoded, inputs, tokens, length)
    return decoding.beam_search(step, cache, inputs.shape[0], k, layout.level_offsets,
                                layout.level_sizes, self.trie)

  def __call__(self, params: Any, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """inputs [batch, in_len] -> (items [batch, beam] best first, -1 = not an item; scores)."""
    codes, scores, items = self._fn(params, inputs)
    if not self.constrained:
      items = decoding.lookup_items(np.asarray(codes), self.ids)
    return np.asarray(items), np.asarray(scores)


def evaluate(retriever: Retriever, params: Any, batches: Iterable[Mapping[str, np.ndarray]],
             cold_items: np.ndarray | None = None) -> dict[str, float]:
  """Recall/NDCG@5/10 and invalid rate over batches with 'inputs', 'target_item', 'mask'."""
  ranked, targets = [], []
  start, users = time.time(), 0
  for batch in batches:
    items, _ = retriever(params, batch["inputs"])
    keep = batch["mask"] > 0
    ranked.append(items[keep])
    targets.append(batch["target_item"][keep])
    users += int(keep.sum())
  ranked = np.concatenate(ranked) if ranked else np.zeros((0, retriever.beam_size), np.int32)
  targets = np.concatenate(targets) if targets else np.zeros((0,), np.int32)
  seconds = time.time() - start
  out = metrics_lib.retrieval_metrics(ranked, targets)
  out["invalid_rate"] = metrics_lib.invalid_rate(ranked, 10)
  out.update(users=users, beam=retriever.beam_size, seconds=round(seconds, 2),
             users_per_sec=round(users / max(seconds, 1e-9), 1))
  logging.info("evaluated %d users in %.1fs (%.0f users/s)", users, seconds, out["users_per_sec"])
  return out
