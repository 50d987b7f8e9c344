"""The follower prior and copy: the decoder reads how often, in the training sequences, the
last history items were followed by each item.

The counts are data, not parameters: a memory built once from the training sequences
(`follower_memory`), passed to the model as its 'memory' variable collection. In training each
example's own pair is left out of them, so the model learns how far to trust a pair seen in
*other* sequences, as it must on test, where most pairs were never seen.

- The prior (`FollowerPrior`): decoder position p's logit of code c gets a learned bias per
  position and count bucket (0, 1, 2-3, 4-7, ...) of the followers whose ID starts with the
  decoded prefix and then c; per source (the last item, the one before it, ...).
- The copy (`FollowerCopy`, pointer-generator style): position p's distribution becomes
  (1 - g) softmax(logits) + g q, q the sources' matching followers' counts at learned weights
  normalised over the position's columns, g a learned gate (0 where no follower matches).
  Over the positions, q alone multiplies out to item-transition's ranking.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tiger_jax.errors import ConfigError
from tiger_jax.network.hashing import distinct_keys, find_key, item_keys
from tiger_jax.network.inputs import recent_items
from tiger_jax.network.memory import read_memory
from tiger_jax.network.t5 import DecoderCall, Mechanism, T5Config

@dataclasses.dataclass(frozen=True)
class FollowerConfig(Mechanism):
  """gin: `T5Config.followers = @FollowerConfig()`."""
  count: int = 64  # followers counted per item (the most frequent)
  buckets: int = 8  # count buckets of the prior's tables
  # > 0: the bias is per (count bucket, share bucket), the share being the column's part of
  # all the matching followers' counts (none, > 1/2, 1/4-1/2, 1/8-1/4, ...).
  share_buckets: int = 0
  # The last this-many history items each count their own followers into their own table.
  sources: int = 1
  # True: the bias also gets, per position, a learned scale times log(1 + the sources' counts
  # summed at learned weights): the count itself, where the buckets round it.
  log_count: bool = False
  copy: bool = False  # the copy mixture over the same followers
  # True (with copy): the gate also reads what the counts look like (`copy_gate_features`).
  copy_features: bool = False
  # True: the follower parameters are stepped by the learning rate itself. Under Adafactor a
  # parameter steps by lr times its own RMS (floored at 1e-3), so tables initialised at zero
  # barely move for the first thousand steps.
  absolute_steps: bool = False

  def __post_init__(self):
    if self.count < 1 or self.buckets < 2 or self.share_buckets < 0:
      raise ConfigError(f"FollowerConfig.count={self.count}, buckets={self.buckets}, "
                        f"share_buckets={self.share_buckets}: count 1 or more, buckets 2 or "
                        "more, share_buckets 0 (off) or more")
    if self.sources < 1:
      raise ConfigError(f"FollowerConfig.sources={self.sources}: 1 or more (the last history "
                        "item's followers, then the ones before it)")
    if self.copy_features and not self.copy:
      raise ConfigError("FollowerConfig.copy_features does nothing without "
                        "FollowerConfig.copy: set both")

  def logits(self, decoder: nn.Module, logits: jax.Array, y: jax.Array,
             call: DecoderCall) -> jax.Array:
    prior = FollowerPrior(self, decoder.config, name="follower_prior_module")
    nn.share_scope(prior, decoder)  # the parameters keep the decoder's names (follower_*)
    first, counts = prior.counts(call)
    logits = logits + prior(first, counts, logits.shape[1])
    if self.copy:
      copy = FollowerCopy(self, decoder.config, name="follower_copy_module")
      nn.share_scope(copy, decoder)
      logits = copy(logits, y, first, counts, None if call.logits_block else call.level_blocks)
    return logits

  def absolute_step_params(self) -> tuple[str, ...]:
    return ("follower_",) if self.absolute_steps else ()


def follower_memory(item_tokens: np.ndarray, follower_items: np.ndarray,
                    follower_counts: np.ndarray, max_seeds: int = 64) -> dict[str, jax.Array]:
  """The followers' memory, from item tokens [items, L], each item's followers [items, F]
  (-1: none) and their counts [items, F] (`baselines.followers`): {"keys": [items] uint32,
  sorted; "tokens": [items, F, L] and "counts": [items, F] int32, rows in key order; "seed":
  the keys' hash seed}, as jax arrays (made once here, not at each trace of a step)."""
  seed, keys = distinct_keys(item_tokens, max_seeds)
  order = np.argsort(keys, kind="stable")
  real = follower_items >= 0
  tokens = np.where(real[..., None], item_tokens[np.maximum(follower_items, 0)], 0)
  return {"keys": jnp.asarray(keys[order]), "tokens": jnp.asarray(tokens[order], jnp.int32),
          "counts": jnp.asarray(np.where(real, follower_counts, 0)[order], jnp.int32),
          "seed": jnp.uint32(seed)}


def memory_variables(memory: dict[str, jax.Array]) -> dict[str, dict]:
  """The model's 'memory' collection holding `follower_memory`'s arrays, where the decoder's
  follower modules (which share its scope) read them."""
  return {"decoder": dict(memory)}


def lookup_followers(memory: dict, item_tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Items' tokens [..., L] -> their followers' tokens [..., F, L] and counts [..., F] (all
  zero for an all-zero (absent) item or one the memory lacks)."""
  i, found = find_key(memory["keys"], item_keys(item_tokens, memory["seed"]))
  found = found & (item_tokens > 0).any(-1)
  return memory["tokens"][i], jnp.where(found[..., None], memory["counts"][i], 0)


def source_followers(memory: dict, input_tokens: jax.Array, id_length: int,
                     sources: int) -> tuple[jax.Array, jax.Array]:
  """Input tokens [batch, 1 + id_length * items] -> the followers of the last `sources`
  history items (source k: the k-th last, the last first): tokens [batch, sources, F, L]
  and counts [batch, sources, F]."""
  return lookup_followers(memory, recent_items(input_tokens, id_length, sources))


def count_bucket(n: jax.Array, buckets: int) -> jax.Array:
  """Counts -> buckets 0 (n <= 0), 1 (n = 1), 2 (2-3), 3 (4-7), ..., capped at buckets - 1."""
  log2 = jnp.floor(jnp.log2(jnp.maximum(n, 1).astype(jnp.float32))).astype(jnp.int32)
  return jnp.where(n > 0, jnp.minimum(1 + log2, buckets - 1), 0)


def prior_buckets(n: jax.Array, count_buckets: int, share_buckets: int) -> jax.Array:
  """Follower counts per column [rows, size] -> each column's row of the prior's flattened
  [count_buckets * max(share_buckets, 1)] table: count_bucket(n) * share_buckets + the
  bucket of n's share of the row's total (0: none, 1: > 1/2, 2: 1/4-1/2, ..., capped)."""
  counts = count_bucket(n, count_buckets)
  if not share_buckets:
    return counts
  share = n / jnp.maximum(n.sum(-1, keepdims=True), 1)
  halvings = jnp.floor(-jnp.log2(jnp.maximum(share, 1e-9)) + 1e-6).astype(jnp.int32)
  shares = jnp.where(n > 0, 1 + jnp.minimum(halvings, share_buckets - 2), 0)
  return counts * share_buckets + shares


def weighted_counts(n: jax.Array, log_weights: jax.Array) -> jax.Array:
  """Counts per source [rows, sources, size] and the sources' log weights [sources] ->
  sum_k exp(log_weights[k]) * n[:, k] [rows, size]."""
  return jnp.einsum("rks,k->rs", n, jnp.exp(log_weights))


def weighted_log_count(n: jax.Array, log_weights: jax.Array) -> jax.Array:
  """log(1 + weighted_counts(n, log_weights)) [rows, size]."""
  return jnp.log1p(weighted_counts(n, log_weights))


def copy_mixture(logits: jax.Array, counts: jax.Array, gate_logit: jax.Array) -> jax.Array:
  """One position's copy mixture: logits [rows, size], the followers' (weighted) counts
  [rows, size] and the gate's logit [rows] -> log((1 - g) softmax(logits) + g counts /
  sum(counts)) [rows, size], g = sigmoid(gate_logit); rows without counts keep
  log softmax(logits)."""
  total = counts.sum(-1)
  some = total > 0
  log_q = jnp.where(counts > 0, jnp.log(jnp.where(counts > 0, counts, 1.0)), -jnp.inf) - \
      jnp.log(jnp.where(some, total, 1.0))[:, None]
  log_gate = jnp.where(some, jax.nn.log_sigmoid(gate_logit), -jnp.inf)
  log_keep = jnp.where(some, jax.nn.log_sigmoid(-gate_logit), 0.0)
  return jnp.logaddexp(log_keep[:, None] + jax.nn.log_softmax(logits, -1),
                       log_gate[:, None] + log_q)


def copy_gate_features(per_source: jax.Array, mixed: jax.Array) -> jax.Array:
  """The copy gate's features from one position's counts per source [rows, sources, size]
  and their weighted sum [rows, size] -> [rows, 2 + sources]: the top column's share of the
  weighted total (0 without counts), log(1 + the number of columns with a count), and
  log(1 + each source's own total count)."""
  total = mixed.sum(-1)
  share = mixed.max(-1) / jnp.where(total > 0, total, 1.0)
  columns = jnp.log1p((mixed > 0).sum(-1).astype(jnp.float32))
  return jnp.concatenate([share[:, None], columns[:, None], jnp.log1p(per_source.sum(-1))], 1)


def code_counts(tokens: jax.Array, weights: jax.Array, block: tuple[int, int]) -> jax.Array:
  """Followers' tokens at one position [rows, F] and weights [rows, F] -> the summed weight of
  each vocabulary column of block (start, size) [rows, size] (tokens outside it dropped)."""
  start, size = block
  idx = tokens - start
  idx = jnp.where((idx >= 0) & (idx < size), idx, size)
  return jnp.zeros((tokens.shape[0], size), jnp.float32).at[
      jnp.arange(tokens.shape[0])[:, None], idx].add(weights.astype(jnp.float32), mode="drop")


def source_code_counts(tokens: jax.Array, weights: jax.Array, block: tuple[int, int]) -> jax.Array:
  """code_counts per source: tokens and weights [rows, sources, F] -> [rows, sources, size]."""
  rows, sources, f = tokens.shape
  return code_counts(tokens.reshape(rows * sources, f), weights.reshape(rows * sources, f),
                     block).reshape(rows, sources, -1)


def follower_code_counts(memory: dict, input_tokens: jax.Array, decoder_input_tokens: jax.Array,
                         id_length: int, block: tuple[int, int],
                         leave_out_targets: bool = False, sources: int = 1) -> jax.Array:
  """Teacher-forced, the followers' counts [batch, min(out_len, id_length), sources, block
  size]: at position p, source k, column c, the summed count of the followers of the k-th
  last history item (k = 0: the last) whose tokens before p are
  decoder_input_tokens[:, 1:p + 1] and whose token p is c. leave_out_targets takes each
  row's own pair (the last item -> the target's whole ID, decoder_input_tokens[:, 1:id_length
  + 1]) out of the last item's counts; the earlier items' pairs are not the row's own."""
  tokens, counts = source_followers(memory, input_tokens, id_length, sources)
  out_len = decoder_input_tokens.shape[1]
  if leave_out_targets:
    if out_len < id_length + 1:
      raise ValueError(f"leave_out_targets: targets of {out_len - 1} tokens hold no whole ID "
                       f"of {id_length}")
    own = (tokens == decoder_input_tokens[:, None, None, 1:id_length + 1]).all(-1)
    own = own & (jnp.arange(sources) == 0)[:, None]  # source 0: the last item
    counts = jnp.maximum(counts - own, 0)
  out, match = [], jnp.ones(counts.shape, bool)
  for p in range(min(out_len, id_length)):
    if p > 0:
      match = match & (tokens[..., p - 1] == decoder_input_tokens[:, p, None, None])
    out.append(source_code_counts(tokens[..., p], counts * match, block))
  return jnp.stack(out, 1)


def _empty_memory(id_length: int) -> dict[str, jax.Array]:
  """A memory of one item with no followers: what `init` traces with (shapes only)."""
  return {"keys": jnp.zeros((1,), jnp.uint32), "tokens": jnp.zeros((1, 1, id_length), jnp.int32),
          "counts": jnp.zeros((1, 1), jnp.int32), "seed": jnp.uint32(0)}


class FollowerPrior(nn.Module):
  """The counts and the prior's logit bias (in the decoder's scope)."""
  options: FollowerConfig
  config: T5Config

  def _memory(self) -> dict[str, jax.Array]:
    return read_memory(self, ("keys", "tokens", "counts", "seed"),
                       lambda: _empty_memory(self.config.id_length),
                       "FollowerConfig needs the followers' counts: build the model with "
                       "experiment(), which reads them from the run's training sequences "
                       "(EncoderDecoderModel.memory)")

  def counts(self, call: DecoderCall) -> tuple[int, jax.Array]:
    """(the first position's index, counts [rows, positions, sources, block size]), one
    position per position the decoder computes below id_length (none for eos).

    Position p counts, per source k (the k-th last history item) and column c, that item's
    followers whose tokens before p are the decoded ones and whose token p is c.
    Teacher-forced, the prefixes come from decoder_input_tokens (in training, each row's own
    pair left out); decoding, position 0 puts the row's followers in the cache (shared by
    its hypotheses) and each position the hypotheses' still-matching followers
    (`follower_match_<p>`, reordered with the beams by the search).
    """
    c, memory = self.config, self._memory()
    n_pos, sources = c.id_length, self.options.sources
    block = call.logits_block or (0, c.vocab_size)
    decoder_input_tokens = call.decoder_input_tokens
    rows = decoder_input_tokens.shape[0]

    def per_row(x):  # [batch, ...] shared by a row's hypotheses -> [rows, ...]
      return jnp.repeat(x, rows // x.shape[0], 0)

    if not call.incremental:
      return 0, follower_code_counts(memory, call.input_tokens, decoder_input_tokens, n_pos,
                                     block, not call.deterministic, sources)
    p = call.decode_position
    if p >= n_pos:
      return p, jnp.zeros((rows, 0, sources, block[1]), jnp.float32)
    if p == 0:
      tokens, counts = source_followers(memory, call.input_tokens, n_pos, sources)
      self.put_variable("cache", "follower_tokens", tokens)
      self.put_variable("cache", "follower_counts", counts)
      match = jnp.ones(counts.shape, bool)
    else:
      tokens = self.get_variable("cache", "follower_tokens")
      counts = self.get_variable("cache", "follower_counts")
      match = per_row(self.get_variable("cache", f"follower_match_{p - 1}"))
      match = match & (per_row(tokens)[..., p - 1] == decoder_input_tokens[:, :1, None])
    self.put_variable("cache", f"follower_match_{p}", match)
    n = source_code_counts(per_row(tokens)[..., p], per_row(counts) * per_row(match), block)
    return p, n[:, None]

  @nn.compact
  def __call__(self, first: int, counts: jax.Array, out_len: int) -> jax.Array:
    """The logit bias [rows, out_len, size] for counts [rows, positions, sources, size] of
    positions first, first + 1, ... (`counts`; zero past them): per source, the table entry
    of the count's bucket (log_count: and the position's scale times `weighted_log_count`)."""
    o, n_pos = self.options, self.config.id_length
    width = o.buckets * max(o.share_buckets, 1)
    tables = [self.param("follower_prior" if k == 0 else f"follower_prior_{k}",
                         nn.with_logical_partitioning(nn.initializers.zeros_init(), (None, None)),
                         (n_pos, width), jnp.float32) for k in range(o.sources)]
    if o.log_count:
      scale = self.param("follower_prior_log_scale",
                         nn.with_logical_partitioning(nn.initializers.zeros_init(), (None,)),
                         (n_pos,), jnp.float32)
      log_weights = source_log_weights(self, "follower_prior_log_weights", o.sources)
    out = []
    for i in range(counts.shape[1]):
      p, n = first + i, counts[:, i]
      bias = sum(table[p][prior_buckets(n[:, k], o.buckets, o.share_buckets)]
                 for k, table in enumerate(tables))
      if o.log_count:
        bias = bias + scale[p] * weighted_log_count(n, log_weights)
      out.append(bias)
    rows, size = counts.shape[0], counts.shape[-1]
    out += [jnp.zeros((rows, size), jnp.float32)] * (out_len - counts.shape[1])
    return jnp.stack(out, 1)


def source_log_weights(module: nn.Module, name: str, sources: int) -> jax.Array:
  """A learned log weight per follower source [sources], from log(0.3) * k."""
  return module.param(name, nn.with_logical_partitioning(
      lambda _, shape, dtype: jnp.arange(shape[0], dtype=dtype) * math.log(0.3), (None,)),
                      (sources,), jnp.float32)


class FollowerCopy(nn.Module):
  """The copy mixture (in the decoder's scope)."""
  options: FollowerConfig
  config: T5Config

  @nn.compact
  def __call__(self, logits: jax.Array, y: jax.Array, first: int, counts: jax.Array,
               level_blocks: Sequence[tuple[int, int]] | None) -> jax.Array:
    """Logits [rows, out_len, width] with positions first, first + 1, ... (counts [rows,
    positions, sources, width] from `FollowerPrior.counts`) replaced by the copy mixture's
    log-probabilities (`copy_mixture`), over level_blocks[p]'s columns where given, else
    over all `width`; the gate's logit is y [rows, out_len, embed] . w + bias[p] + scale[p]
    * log(1 + the weighted total count) (+ features[p] . `copy_gate_features`)."""
    c, o = self.config, self.options
    n_pos = c.id_length
    w = self.param("follower_copy_gate", nn.with_logical_partitioning(
        nn.initializers.normal(0.02), ("embed",)), (c.emb_dim,), jnp.float32)
    bias = self.param("follower_copy_bias", nn.with_logical_partitioning(
        nn.initializers.constant(-1.0), (None,)), (n_pos,), jnp.float32)
    scale = self.param("follower_copy_scale", nn.with_logical_partitioning(
        nn.initializers.constant(0.1), (None,)), (n_pos,), jnp.float32)
    log_weights = source_log_weights(self, "follower_copy_log_weights", o.sources)
    if o.copy_features:
      feature_weights = self.param("follower_copy_features", nn.with_logical_partitioning(
          nn.initializers.zeros, (None, None)), (n_pos, 2 + o.sources), jnp.float32)
    state = jnp.dot(y.astype(jnp.float32), w)  # [rows, out_len]
    out = []
    for i in range(logits.shape[1]):
      if i >= counts.shape[1]:
        out.append(logits[:, i])
        continue
      p = first + i
      start, size = level_blocks[p] if level_blocks is not None else (0, logits.shape[-1])
      by_source = jax.lax.slice_in_dim(counts[:, i], start, start + size, axis=2)
      n = weighted_counts(by_source, log_weights)
      gate = state[:, i] + bias[p] + scale[p] * jnp.log1p(n.sum(-1))
      if o.copy_features:
        gate = gate + copy_gate_features(by_source, n) @ feature_weights[p]
      mixed = copy_mixture(jax.lax.slice_in_dim(logits[:, i], start, start + size, axis=1), n, gate)
      out.append(jax.lax.dynamic_update_slice_in_dim(logits[:, i], mixed, start, axis=1))
    return jnp.stack(out, 1)
