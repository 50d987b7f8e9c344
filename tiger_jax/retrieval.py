"""Top-K items per user by constrained beam search, and their metrics over a split.

The predict function of this codebase (what t5x's `models.predict_batch` is
there): the trainer's validation pass, `evaluate.py` and the benchmarks use it.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from tiger_jax import decoding, io_utils, metrics as metrics_lib
from tiger_jax.network.inputs import history_items
from tiger_jax.models import EncoderDecoderModel
from tiger_jax.tokens import TokenLayout

DEFAULT_BEAM = 20  # the paper's beam (gin: BEAM_SIZE); results under another get their own name


class Retriever:
  """Top-K items per user from a trained model, fully on device (one jit per batch shape).

  `dtype` overrides the activations' dtype for decoding ('bfloat16': what t5x
  decodes in; dots accumulate in float32, several times faster than float32 dots on
  TPU/GPU and on CPUs with AMX/AVX512-BF16).

  `exclude_history`: no beam ends in an item of the user's own history (read from the
  inputs; `decoding.beam_search`'s exclude says where their beams go). In the Amazon
  5-core data no target is in its history, yet the model spends top-10 places on
  them: bench/decode_variants.py.
  """

  def __init__(self, model: EncoderDecoderModel, layout: TokenLayout, ids: np.ndarray,
               beam_size: int = DEFAULT_BEAM, constrained: bool = True,
               batch_sharding: jax.sharding.Sharding | None = None, block_softmax: bool = True,
               dtype: str | None = None, exclude_history: bool = False):
    if dtype is not None and dtype != model.config.dtype:  # e.g. bfloat16 activations, f32 params
      model = model.with_dtype(dtype)
    self.model, self.layout, self.ids = model, layout, np.asarray(ids)
    self.beam_size, self.constrained, self.block_softmax = beam_size, constrained, block_softmax
    self.exclude_history = exclude_history
    self.trie = decoding.Trie.build(self.ids) if constrained else None
    self._fn = jax.jit(self._retrieve, in_shardings=(None, batch_sharding) if batch_sharding else None)

  def _retrieve(self, params: Any, inputs: jax.Array):
    model, layout, k = self.model, self.layout, self.beam_size
    encoded = model.encode(params, inputs)
    cache = model.init_cache(params, encoded, inputs)
    step = lambda tokens, cache, position, block: model.decode_step(
        params, cache, encoded, inputs, tokens, position, block)
    exclude = history_codes(inputs, layout) if self.exclude_history else None
    return decoding.beam_search(step, cache, inputs.shape[0], k, layout.level_offsets,
                                layout.level_sizes, self.trie,
                                block_softmax=self.block_softmax, exclude=exclude)

  def tokens(self, params: Any, inputs: np.ndarray) -> np.ndarray:
    """inputs [batch, in_len] -> the beams' Semantic-ID tokens [batch, beam, id_length], best
    first (what a seqio predict_fn returns; the task's postprocess_fn maps them to items)."""
    codes, _, _ = self._fn(params, inputs)
    return np.asarray(codes) + np.asarray(self.layout.level_offsets)[:np.shape(codes)[-1]]

  def __call__(self, params: Any, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """inputs [batch, in_len] -> (items [batch, beam] best first, -1 = not an item; scores)."""
    codes, scores, items = self._fn(params, inputs)
    if not self.constrained:
      items = decoding.lookup_items(np.asarray(codes), self.ids)
    return np.asarray(items), np.asarray(scores)


def history_codes(inputs: jax.Array, layout: TokenLayout) -> jax.Array:
  """Input tokens [batch, 1 + id_length * items] (user token, then whole IDs; right-padded)
  -> the history's Semantic IDs [batch, items, id_length] relative to each level's block,
  -1 for padding."""
  tokens = history_items(jnp.asarray(inputs), layout.id_length)
  return jnp.where(tokens > 0, tokens - jnp.asarray(layout.level_offsets), -1)


def retrieve(retriever: Retriever, params: Any,
             batches: Iterable[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """Ranked lists over batches with 'inputs', 'target_item', 'user', 'mask' (padding rows
  dropped): {'ranked' [users, beam], 'scores' [users, beam] (the beams' log-probabilities),
  'targets' [users], 'users' [users], 'seconds'}, in batch order."""
  got = {"ranked": [], "scores": [], "targets": [], "users": []}
  start = time.time()
  for batch in batches:
    items, scores = retriever(params, batch["inputs"])
    keep = batch["mask"] > 0
    for key, value in (("ranked", items), ("scores", scores), ("targets", batch["target_item"]),
                       ("users", batch["user"])):
      got[key].append(np.asarray(value)[keep])
  k = retriever.beam_size
  empty = {"ranked": np.zeros((0, k), np.int32), "scores": np.zeros((0, k), np.float32),
           "targets": np.zeros((0,), np.int32), "users": np.zeros((0,), np.int32)}
  out = {key: np.concatenate(xs) if xs else empty[key] for key, xs in got.items()}
  return {**out, "seconds": time.time() - start}


def evaluate(retriever: Retriever, params: Any, batches: Iterable[Mapping[str, np.ndarray]],
             ranked_out: dict | None = None) -> dict[str, float]:
  """Recall/NDCG@5/10 and invalid rate over batches (see `retrieve`).

  ranked_out, when given, receives the ranked lists [users, beam], their 'scores',
  'targets' and 'users'.
  """
  got = retrieve(retriever, params, batches)
  seconds, users = got.pop("seconds"), len(got["targets"])
  if ranked_out is not None:
    ranked_out.update(got)
  out = metrics_lib.retrieval_metrics(got["ranked"], got["targets"])
  out["invalid_rate"] = metrics_lib.invalid_rate(got["ranked"], 10)
  out.update(users=users, beam=retriever.beam_size, seconds=round(seconds, 2),
             users_per_sec=round(users / max(seconds, 1e-9), 1))
  logging.info("evaluated %d users in %.1fs (%.0f users/s)", users, seconds, out["users_per_sec"])
  return out


def load_ranked(path: str, targets: np.ndarray) -> np.ndarray:
  """The ranked lists [users, k] that `evaluate_checkpoint` saved at `path` (its
  `<name>_ranked.npz`), in user order; ValueError unless their targets are `targets`."""
  z = io_utils.load_arrays(path)
  order = np.argsort(z["users"])
  if not np.array_equal(z["targets"][order], np.asarray(targets)):
    raise ValueError(f"{path}: the saved ranked lists do not match this dataset's users")
  return z["ranked"][order]
