"""Top-K items per user by constrained beam search, and their metrics over a split.

The predict function of this codebase (what t5x's `models.predict_batch` is
there): the trainer's validation pass, `evaluate.py` and the benchmarks use it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from tiger_jax import decoding, io_utils, metrics as metrics_lib, multihost, shared_jit
from tiger_jax.network import item_head
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

  A model with an item head (T5Config.item_head) ranks the beams and the head's top items
  together (`blend_candidates`); `item_head=False` keeps the beams alone.

  `batch_sharding` (the trainer's) splits a batch's rows over the mesh's 'data' axis. On
  several hosts it is required: each host passes its own rows and gets its own rows back
  (`multihost`), and all hosts call together with the same shapes.
  """

  def __init__(self, model: EncoderDecoderModel, layout: TokenLayout, ids: np.ndarray,
               beam_size: int = DEFAULT_BEAM, constrained: bool = True,
               batch_sharding: jax.sharding.Sharding | None = None, block_softmax: bool = True,
               dtype: str | None = None, exclude_history: bool = False,
               item_head: bool = True):
    base = model
    if dtype is not None and dtype != model.config.dtype:  # e.g. bfloat16 activations, f32 params
      model = model.with_dtype(dtype)
    self.model, self.layout, self.ids = model, layout, np.asarray(ids)
    self.beam_size, self.constrained, self.block_softmax = beam_size, constrained, block_softmax
    self.exclude_history, self.batch_sharding = exclude_history, batch_sharding
    if batch_sharding is None and multihost.several():
      raise ValueError("decoding on several hosts needs batch_sharding (the trainer's)")
    self.item_head = item_head and model.config.item_head is not None and constrained
    self.trie = decoding.Trie.build(self.ids) if constrained else None
    self._candidates_fn = None
    # One trace per batch shape for every retriever of this model with these settings.
    ids_digest = hashlib.sha1(np.ascontiguousarray(self.ids).tobytes()).hexdigest()
    settings = (model.config.dtype, layout, self.ids.shape, str(self.ids.dtype), ids_digest,
                beam_size, constrained, block_softmax, exclude_history, self.item_head,
                batch_sharding)
    self._fn = shared_jit.shared("retrieve", (base,), settings, lambda: self._jit(self._retrieve))

  def _jit(self, fn):
    if self.batch_sharding is None:
      return jax.jit(fn)
    return jax.jit(fn, in_shardings=(None, self.batch_sharding), out_shardings=self.batch_sharding)

  def _run(self, fn, params: Any, inputs: np.ndarray):
    """fn's outputs for this host's rows, as this host's numpy rows."""
    if self.batch_sharding is None:
      return jax.tree.map(np.asarray, fn(params, inputs))
    return multihost.to_local(fn(params, multihost.to_global(inputs, self.batch_sharding)),
                              self.batch_sharding)

  def _retrieve(self, params: Any, inputs: jax.Array):
    encoded, codes, scores, items = self._beams(params, inputs)
    if not self.item_head:
      return codes, scores, items
    return self._with_item_head(params, encoded, inputs, scores, items)

  def _beams(self, params: Any, inputs: jax.Array):
    """(the encoding, the beams' codes, log-probabilities and items)."""
    model, layout, k = self.model, self.layout, self.beam_size
    encoded = model.encode(params, inputs)
    cache = model.init_cache(params, encoded, inputs)
    step = lambda tokens, cache, position, block: model.decode_step(
        params, cache, encoded, inputs, tokens, position, block)
    exclude = history_codes(inputs, layout) if self.exclude_history else None
    codes, scores, items = decoding.beam_search(
        step, cache, inputs.shape[0], k, layout.level_offsets, layout.level_sizes, self.trie,
        block_softmax=self.block_softmax, exclude=exclude)
    return encoded, codes, scores, items

  def _with_item_head(self, params: Any, encoded: jax.Array, inputs: jax.Array,
                      scores: jax.Array, items: jax.Array):
    """The beams joined by the item head's top items, ranked by log p(ID) + blend * log
    p_head(item) (network/item_head.py): (codes, those scores, items), `beam_size` each."""
    union = self._head_candidates(params, encoded, inputs, scores, items)
    items, scores = blend_candidates(*union, self.model.config.item_head.blend, self.beam_size)
    return jnp.asarray(self.ids)[jnp.maximum(items, 0)], scores, items

  def _head_candidates(self, params: Any, encoded: jax.Array, inputs: jax.Array,
                       scores: jax.Array, items: jax.Array):
    """The beams' items [batch, K] and the head's top M ones (M: ItemHeadConfig.candidates,
    else K) not among them: (items [batch, K + M], -1 for none; their log p(ID) under the
    decoder; their log p under the head, -inf for none or an excluded item)."""
    model, layout, head = self.model, self.layout, self.model.config.item_head
    head_logp = model.item_log_probs(params, encoded, inputs)
    if self.exclude_history:
      head_logp = item_head.exclude_items(head_logp, model.memory[item_head.NAME],
                                          history_items(inputs, layout.id_length))
    ids = jnp.asarray(self.ids)
    _, head_items = jax.lax.top_k(head_logp, head.candidates or self.beam_size)
    offsets = jnp.asarray(layout.level_offsets)[:ids.shape[1]]
    blocks = layout.level_blocks if self.block_softmax else None
    head_gen = model.score_candidates(params, encoded, inputs, ids[head_items] + offsets, blocks)
    in_beams = (head_items[:, :, None] == items[:, None, :]).any(-1)
    union = jnp.concatenate([items, jnp.where(in_beams, -1, head_items)], 1)
    gen = jnp.concatenate([scores, head_gen], 1)
    head_of = jnp.take_along_axis(head_logp, jnp.maximum(union, 0), 1)
    return union, gen, jnp.where(union >= 0, head_of, -jnp.inf)

  def candidates(self, params: Any, inputs: np.ndarray) -> tuple[np.ndarray, ...]:
    """inputs [batch, in_len] -> the union the item head's decoding ranks (`_head_candidates`):
    (items, log p(ID), head log p), each [batch, K + M]; `blend_candidates` ranks it for any
    blend (studies/item_head_blend.py picks the blend on validation from one decode)."""
    if not self.item_head:
      raise ValueError("candidates needs a model with an item head (T5Config.item_head)")
    if self._candidates_fn is None:
      def fn(params, inputs):
        encoded, _, scores, items = self._beams(params, inputs)
        return self._head_candidates(params, encoded, inputs, scores, items)
      self._candidates_fn = self._jit(fn)
    return tuple(self._run(self._candidates_fn, params, inputs))

  def settings(self) -> dict:
    """What, beyond beam, dtype and history, decides the lists (`decoding_settings`)."""
    return decoding_settings(self.model.config, self.beam_size) if self.item_head else {}

  def tokens(self, params: Any, inputs: np.ndarray) -> np.ndarray:
    """inputs [batch, in_len] -> the beams' Semantic-ID tokens [batch, beam, id_length], best
    first (what a seqio predict_fn returns; the task's postprocess_fn maps them to items)."""
    codes, _, _ = self._run(self._fn, params, inputs)
    return codes + np.asarray(self.layout.level_offsets)[:codes.shape[-1]]

  def __call__(self, params: Any, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """inputs [batch, in_len] -> (items [batch, beam] best first, -1 = not an item; scores)."""
    codes, scores, items = self._run(self._fn, params, inputs)
    if not self.constrained:
      items = decoding.lookup_items(codes, self.ids)
    return items, scores


def decoding_settings(config, beam_size: int) -> dict:
  """What of a model's config, beyond beam, dtype and history, decides its ranked lists (a
  results file records it; a saved evaluation with other settings is stale): the item head's
  blend and candidates; {} without a head."""
  head = config.item_head
  if head is None:
    return {}
  return {"item_head": {"blend": head.blend, "candidates": head.candidates or beam_size}}


def blend_candidates(items: jax.Array, gen: jax.Array, head: jax.Array, blend: float,
                     k: int) -> tuple[jax.Array, jax.Array]:
  """Candidates [batch, C] (-1: none), their log p(ID) and head log p (-inf: none or
  excluded) -> the top k by log p(ID) + blend * head log p: (items [batch, k], -1 where fewer;
  their scores, -inf there). Works on jax and numpy arrays alike."""
  items, gen, head = map(jnp.asarray, (items, gen, head))
  total = jnp.where((items >= 0) & (head > -jnp.inf), gen + blend * head, -jnp.inf)
  scores, order = jax.lax.top_k(total, k)
  top = jnp.take_along_axis(items, order, 1)
  return jnp.where(jnp.isfinite(scores), top, -1), scores


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
  'targets' [users], 'users' [users], 'seconds'}, in batch order. On several hosts each passes
  its own batches, and each gets every host's users (host 0's first)."""
  got = {"ranked": [], "scores": [], "targets": [], "users": []}
  start = time.time()
  for batch in (multihost.lockstep(batches) if multihost.several() else batches):
    items, scores = retriever(params, batch["inputs"])
    keep = batch["mask"] > 0
    for key, value in (("ranked", items), ("scores", scores), ("targets", batch["target_item"]),
                       ("users", batch["user"])):
      got[key].append(np.asarray(value)[keep])
  k = retriever.beam_size
  empty = {"ranked": np.zeros((0, k), np.int32), "scores": np.zeros((0, k), np.float32),
           "targets": np.zeros((0,), np.int32), "users": np.zeros((0,), np.int32)}
  out = {key: np.concatenate(xs) if xs else empty[key] for key, xs in got.items()}
  return {**multihost.gather_rows(out), "seconds": time.time() - start}


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
