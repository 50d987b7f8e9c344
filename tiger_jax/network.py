"""A T5-style encoder-decoder in Flax (pre-RMSNorm, relative position bias).

Every parameter and the main activations carry logical axis names
('vocab', 'embed', 'mlp', 'heads', 'kv', 'batch', 'length'); the rules in
`partitioning.py` map them onto a device mesh, as in t5x.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

constrain = nn.with_logical_constraint


@dataclasses.dataclass(frozen=True)
class T5Config:
  """The paper's model: 4+4 layers, 6 heads of 64, d_model 128, d_ff 1024."""
  vocab_size: int = 2000 + 2 + 256 * 4
  emb_dim: int = 128
  num_heads: int = 6
  head_dim: int = 64
  mlp_dim: int = 1024
  num_encoder_layers: int = 4
  num_decoder_layers: int = 4
  dropout_rate: float = 0.1
  gated_mlp: bool = False  # ReLU MLP by default; gated-GELU as in T5 v1.1 when True
  logits_via_embedding: bool = False  # untied output projection by default
  relative_buckets: int = 32
  relative_max_distance: int = 128
  dtype: str = "float32"  # activations; 'bfloat16' on TPU/GPU
  param_dtype: str = "float32"
  # Encoder inputs are [user token, item_1's id_length codes, item_2's, ...].
  # item_inputs: one encoder position per history item, the sum of its code
  # embeddings (encoder length 1 + items instead of 1 + id_length * items).
  item_inputs: bool = False
  # item_embed_buckets > 0 (item_inputs only): each history item's position also gets a
  # learned embedding of the item itself, looked up by `item_embed_hashes` hashes of its
  # whole Semantic ID into a table of this many rows and summed, so that the encoder can
  # tell two items apart beyond what their codes share (an ID embedding, with no item
  # table the model must be given: the codes are the item).
  item_embed_buckets: int = 0
  item_embed_hashes: int = 2
  # In training, drop a history item's whole table embedding with this probability (its
  # codes stay), so that the codes, which generalise to items seen rarely, keep carrying
  # the history (bench/val_test_gap.py: the table alone trades unseen-pair quality for
  # memorised pairs).
  item_embed_dropout: float = 0.0
  # recency_positions > 0: each history item's encoder position(s) also get a learned
  # embedding of how recent the item is (0 = the last item of the history, the one a
  # first-order transition model looks at; items older than recency_positions - 1 share
  # the last row). Without it the encoder can tell the last item only indirectly (inputs
  # are right-padded and relative positions do not say where a history ends), and the
  # decoder's cross-attention has no positions at all.
  recency_positions: int = 0
  user_token: bool = True  # False: the user token is masked out (the paper's ablation)
  # transition_buckets > 0: decoder position p also gets a learned embedding of (the last
  # history item's whole Semantic ID, the p codes decoded so far), looked up by
  # `transition_hashes` hashes into a table of this many rows and summed: a memory of
  # which item follows which, keyed as a first-order item-transition model keys its counts,
  # on the output side, where the codes alone give an item few parameters of its own
  # (bench/val_test_gap.py: TIGER ranks users whose (last item -> target) pair occurs in
  # training at about half item-transition's recall).
  transition_buckets: int = 0
  transition_hashes: int = 2
  # follower_prior > 0: decoder position p's logit of code c gets a learned bias per
  # position and count bucket (0, 1, 2-3, 4-7, ...; `follower_prior_buckets` of them) of
  # how often, in training sequences, the last history item was followed by an item whose
  # ID starts with the decoded prefix and then c; up to this many followers per item are
  # counted (the most frequent). The counts are data, not parameters (the model's
  # `memory`, built by experiment()), so in training each example's own pair is left out
  # of them: the model learns how far to trust a pair seen in *other* sequences, as it
  # must on test, where most pairs were never seen (a learned transition table, above,
  # always holds its own example's pair and loses the unseen ones, bench/val_test_gap.py).
  follower_prior: int = 0
  follower_prior_buckets: int = 8
  # > 0: the bias is per (count bucket, share bucket), the share being the column's part of
  # all the matching followers' counts (buckets: none, > 1/2, 1/4-1/2, 1/8-1/4, ...), as
  # item-transition ranks a last item's followers against each other.
  follower_prior_share_buckets: int = 0
  # The prior's sources: the last this-many history items each count their own followers
  # into their own table (the last item's is `follower_prior`, the one before it's
  # `follower_prior_1`, ...), summed. Followers of the items before the last rank the next
  # item better than the last item's alone (item-transition with the second and third last
  # items' followers at weights 0.3 and 0.1: Beauty validation N@10 0.0540 -> 0.0584,
  # bench/transition_sources.py).
  follower_prior_sources: int = 1
  # True: the bias also gets, per position, a learned scale times log(1 + the sources'
  # counts summed at learned weights) (`weighted_log_count`; the weights start at 1, 0.3,
  # 0.09, ...): the count itself, where the buckets round it to a power of two. At scale 1
  # and one source, the positions' softmaxes multiply to item-transition's ranking of the
  # last item's followers, which the buckets can only approach.
  follower_prior_log_count: bool = False
  # True: a copy mechanism (pointer-generator style) over the same followers. Position p's
  # distribution becomes (1 - g) softmax(logits) + g q, q the sources' matching followers'
  # counts (at learned weights, from 1, 0.3, 0.09) normalised over the position's columns, g a
  # learned gate (sigmoid of the decoder state, a per-position bias and the log total count;
  # 0 where no follower matches), so one user can trust the followers and the next not; over
  # the positions, q alone multiplies out to item-transition's ranking. The logits become
  # these log-probabilities, normalised over the loss's and the search's softmax (the
  # vocabulary, or a level's block: `level_blocks` in training, `logits_block` decoding).
  follower_copy: bool = False
  # True (with follower_copy): the gate's logit also reads what the counts look like, per
  # position at learned weights (from 0): the top column's share of the count, log(1 + the
  # number of columns with a count), and log(1 + each source's own total count)
  # (`copy_gate_features`), so that a last item with one dominant follower and a history
  # whose only followers come from earlier items can be trusted differently. Under
  # Adafactor, train them with TrainerConfig.absolute_step_params = ('follower_',): by its
  # parameter scale a weight initialised at zero moves about lr / 1000 a step.
  follower_copy_features: bool = False
  id_length: int = 4  # codes per item in the inputs; experiment() sets it from the IDs


def encoder_mask(tokens: jax.Array, config: T5Config) -> jax.Array:
  """Input tokens [batch, 1 + id_length * items] -> which encoder positions are real
  [batch, encoder length]: [batch, 1 + items] with item_inputs, else the tokens' shape."""
  real = tokens > 0
  if not config.user_token:
    real = real.at[:, 0].set(False)
  if not config.item_inputs:
    return real
  return jnp.concatenate([real[:, :1], history_items(real, config.id_length).any(-1)], 1)


def item_recency(tokens: jax.Array, config: T5Config) -> jax.Array:
  """Input tokens [batch, 1 + id_length * items] -> each encoder position's item recency
  [batch, encoder length] (int32): 0 for the last history item's position(s), 1 for the one
  before, ...; -1 for the user token and padding."""
  real = encoder_mask(tokens, config)
  per = 1 if config.item_inputs else config.id_length  # encoder positions per item
  pos = jnp.arange(real.shape[1])
  num_items = (real[:, 1:].sum(-1, keepdims=True) + per - 1) // per
  recency = num_items - 1 - (pos - 1) // per
  return jnp.where(real & (pos >= 1), recency, -1).astype(jnp.int32)


def history_items(x: jax.Array, id_length: int) -> jax.Array:
  """[batch, 1 + id_length * items, ...] (user token, then whole Semantic IDs) -> the items'
  codes [batch, items, id_length, ...]."""
  batch, length = x.shape[:2]
  if (length - 1) % id_length:
    raise ValueError(f"an input length of {length} is not 1 + a multiple of "
                     f"id_length {id_length} (user token + whole Semantic IDs)")
  return x[:, 1:].reshape(batch, (length - 1) // id_length, id_length, *x.shape[2:])


def dot_general(lhs: jax.Array, rhs: jax.Array, dimension_numbers, precision=None,
                preferred_element_type=None) -> jax.Array:
  """lax.dot_general accumulating in float32, the result cast back to the inputs' dtype.

  With bfloat16 inputs, XLA:CPU runs a bf16 x bf16 -> f32 dot on the AMX/AVX512-BF16
  units (several times a float32 dot: bench/dot_speed.py) but a bf16 -> bf16 dot at
  float32 speed or worse; on TPU/GPU it is the usual mixed-precision dot. The signature
  is jnp.einsum's `_dot_general`; its preferred_element_type is overridden.
  """
  del preferred_element_type
  out = jax.lax.dot_general(lhs, rhs, dimension_numbers, precision,
                            preferred_element_type=jnp.float32)
  return out.astype(jnp.result_type(lhs, rhs))


def einsum(spec: str, *operands: jax.Array) -> jax.Array:
  return jnp.einsum(spec, *operands, _dot_general=dot_general)


@jax.custom_vjp
def matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  """x [..., in] @ w [in, out] -> [..., out] with `dot_general`, and a backward pass whose
  two dots also take the inputs' dtype (JAX's own would multiply a float32 cotangent by
  the bfloat16 operand: a float32 dot)."""
  return dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())))


def _matmul_fwd(x, w):
  return matmul(x, w), (x, w)


def _matmul_bwd(res, g):
  x, w = res
  g = g.astype(x.dtype)
  dx = dot_general(g, w, (((g.ndim - 1,), (1,)), ((), ())))
  batch_axes = tuple(range(x.ndim - 1))
  dw = dot_general(x, g, ((batch_axes, batch_axes), ((), ())))
  return dx, dw.astype(w.dtype)


matmul.defvjp(_matmul_fwd, _matmul_bwd)


def _dense_init(fan_axes_scale: float = 1.0):
  return nn.initializers.variance_scaling(fan_axes_scale, "fan_in", "truncated_normal")


def _fmix32(h: jax.Array) -> jax.Array:
  """MurmurHash3's 32-bit finalizer: a bijection on uint32 that mixes every input bit."""
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def hash_chain(state: jax.Array, codes: jax.Array) -> jax.Array:
  """state [..., num_hashes] (uint32), codes [..., n] (ints) -> the state after the codes:
  an fmix32 chain, one round per code, so a chain over a prefix continues to its whole."""
  codes = codes.astype(jnp.uint32)
  for level in range(codes.shape[-1]):
    state = _fmix32(state ^ codes[..., level, None]) + jnp.uint32(0x7F4A7C15)
  return state


def hash_seeds(shape: tuple[int, ...], num_hashes: int) -> jax.Array:
  """The chains' start states [*shape, num_hashes]: hash k is seeded by k."""
  return jnp.broadcast_to(jnp.arange(1, num_hashes + 1, dtype=jnp.uint32) * jnp.uint32(0x9E3779B9),
                          (*shape, num_hashes))


def hash_rows(state: jax.Array, num_buckets: int) -> jax.Array:
  """A chain's state [..., num_hashes] -> table rows in [0, num_buckets) (int32)."""
  return (_fmix32(state) % jnp.uint32(num_buckets)).astype(jnp.int32)


def item_buckets(codes: jax.Array, num_buckets: int, num_hashes: int) -> jax.Array:
  """Codes [..., id_length] (ints) -> [..., num_hashes] rows in [0, num_buckets): hash k of
  an item is an fmix32 chain over its codes, seeded by k. Two items with different IDs share
  all their rows with probability about num_buckets ** -num_hashes."""
  return hash_rows(hash_chain(hash_seeds(codes.shape[:-1], num_hashes), codes), num_buckets)


def recent_items(tokens: jax.Array, id_length: int, count: int) -> jax.Array:
  """Input tokens [batch, 1 + id_length * items] (right-padded) -> the last `count` history
  items' codes, the last first [batch, count, id_length] (zeros where the history is shorter)."""
  items = history_items(tokens, id_length)
  index = (items > 0).any(-1).sum(-1)[:, None] - 1 - jnp.arange(count)
  got = jnp.take_along_axis(items, jnp.maximum(index, 0)[:, :, None], 1)
  return jnp.where((index >= 0)[:, :, None], got, 0)


def last_item(tokens: jax.Array, id_length: int) -> jax.Array:
  """Input tokens [batch, 1 + id_length * items] (right-padded) -> the last history item's
  codes [batch, id_length] (zeros for an empty history)."""
  return recent_items(tokens, id_length, 1)[:, 0]


def transition_start(tokens: jax.Array, config: T5Config) -> jax.Array:
  """Input tokens [batch, 1 + id_length * items] -> the transition chain's state after the
  last history item's codes [batch, transition_hashes] (decoder position 0's key)."""
  return hash_chain(hash_seeds(tokens.shape[:1], config.transition_hashes),
                    last_item(tokens, config.id_length))


def item_keys(tokens: jax.Array, seed: jax.Array | int) -> jax.Array:
  """Items' tokens [..., id_length] -> a uint32 key per item [...]: an fmix32 chain over
  the tokens seeded by `seed` (follower_memory picks a seed that keeps its items apart)."""
  start = jnp.broadcast_to(jnp.asarray(seed, jnp.uint32), (*tokens.shape[:-1], 1))
  return hash_chain(start, tokens)[..., 0]


def follower_memory(item_tokens: np.ndarray, follower_items: np.ndarray,
                    follower_counts: np.ndarray, max_seeds: int = 64) -> dict[str, jax.Array]:
  """The follower prior's memory (T5Config.follower_prior), from item tokens [items, L],
  each item's followers [items, F] (-1: none) and their counts [items, F]
  (`baselines.followers`): {"keys": [items] uint32, sorted; "tokens": [items, F, L] and
  "counts": [items, F] int32, rows in key order; "seed": the keys' hash seed}, as jax
  arrays (made once here, not at each trace of a step that reads them)."""
  for seed in range(max_seeds):
    keys = np.asarray(item_keys(jnp.asarray(item_tokens), seed))
    if len(np.unique(keys)) == len(keys):
      break
  else:
    raise ValueError(f"follower_memory: no seed below {max_seeds} gives {len(item_tokens)} "
                     "items distinct keys (are two items' tokens the same?)")
  order = np.argsort(keys, kind="stable")
  real = follower_items >= 0
  tokens = np.where(real[..., None], item_tokens[np.maximum(follower_items, 0)], 0)
  return {"keys": jnp.asarray(keys[order]), "tokens": jnp.asarray(tokens[order], jnp.int32),
          "counts": jnp.asarray(np.where(real, follower_counts, 0)[order], jnp.int32),
          "seed": jnp.uint32(seed)}


def lookup_followers(memory: dict, item_tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Items' tokens [..., L] -> their followers' tokens [..., F, L] and counts [..., F] (all
  zero for an all-zero (absent) item or one the memory lacks)."""
  key = item_keys(item_tokens, memory["seed"])
  keys = memory["keys"]
  i = jnp.clip(jnp.searchsorted(keys, key), 0, keys.shape[0] - 1)
  found = (keys[i] == key) & (item_tokens > 0).any(-1)
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
  """One position's copy mixture (T5Config.follower_copy): logits [rows, size], the
  followers' (weighted) counts [rows, size] and the gate's logit [rows] -> log((1 - g)
  softmax(logits) + g counts / sum(counts)) [rows, size], g = sigmoid(gate_logit); rows
  without counts keep log softmax(logits)."""
  total = counts.sum(-1)
  some = total > 0
  log_q = jnp.where(counts > 0, jnp.log(jnp.where(counts > 0, counts, 1.0)), -jnp.inf) - \
      jnp.log(jnp.where(some, total, 1.0))[:, None]
  log_gate = jnp.where(some, jax.nn.log_sigmoid(gate_logit), -jnp.inf)
  log_keep = jnp.where(some, jax.nn.log_sigmoid(-gate_logit), 0.0)
  return jnp.logaddexp(log_keep[:, None] + jax.nn.log_softmax(logits, -1),
                       log_gate[:, None] + log_q)


def copy_gate_features(per_source: jax.Array, mixed: jax.Array) -> jax.Array:
  """The copy gate's features (T5Config.follower_copy_features) from one position's counts
  per source [rows, sources, size] and their weighted sum [rows, size] -> [rows, 2 +
  sources]: the top column's share of the weighted total (0 without counts), log(1 + the
  number of columns with a count), and log(1 + each source's own total count)."""
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
  """Teacher-forced, the follower prior's counts [batch, min(out_len, id_length), sources,
  block size]: at position p, source k, column c, the summed count of the followers of the
  k-th last history item (k = 0: the last) whose tokens before p are
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


def dropout_keep(key: jax.Array, shape: tuple[int, ...], rate: float) -> jax.Array:
  """Bool mask of `shape`, each element True with probability 1 - rate (to 2^-32).

  A counter-based hash: element i of the flattened shape gets
  fmix(fmix(i ^ k0) + k1) for a 2 x uint32 key (k0, k1) drawn from the key, so
  each element costs a few vector integer ops. Drawing the bits with
  `jax.random.bits` instead took 40% of a bfloat16 training step on CPU, and this 2%
  (bench/step_profile.py). Two keys give unrelated masks: the inner hash
  permutes the counters by k0 before k1 shifts them.
  """
  k0, k1 = jax.random.bits(key, (2,), jnp.uint32)
  counter = jnp.arange(math.prod(shape), dtype=jnp.uint32).reshape(shape)
  h = _fmix32(_fmix32(counter ^ k0) + k1)
  return h >= jnp.uint32(min(int(round(rate * 2.0 ** 32)), 2 ** 32 - 1))


class Dropout(nn.Module):
  """Inverted dropout with masks from `dropout_keep`."""
  rate: float

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
    if deterministic or self.rate == 0.0:
      return x
    if self.rate >= 1.0:
      return jnp.zeros_like(x)
    keep = dropout_keep(self.make_rng("dropout"), x.shape, self.rate)
    return jnp.where(keep, x / (1.0 - self.rate), 0).astype(x.dtype)


class RMSNorm(nn.Module):
  config: T5Config

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones, ("embed",)),
                       (x.shape[-1],), jnp.dtype(self.config.param_dtype))
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, -1, keepdims=True) + 1e-6)
    return (y * scale).astype(self.config.dtype)


def relative_position_bucket(relative_position: jax.Array, bidirectional: bool,
                             num_buckets: int, max_distance: int) -> jax.Array:
  """T5's log-spaced buckets of (key - query) positions."""
  ret = 0
  n = -relative_position
  if bidirectional:
    num_buckets //= 2
    ret += (n < 0).astype(jnp.int32) * num_buckets
    n = jnp.abs(n)
  else:
    n = jnp.maximum(n, 0)
  max_exact = num_buckets // 2
  is_small = n < max_exact
  val_if_large = max_exact + (
      jnp.log(n.astype(jnp.float32) / max_exact + np.finfo(np.float32).eps)
      / math.log(max_distance / max_exact) * (num_buckets - max_exact)).astype(jnp.int32)
  val_if_large = jnp.minimum(val_if_large, num_buckets - 1)
  return ret + jnp.where(is_small, n, val_if_large)


class RelativePositionBias(nn.Module):
  config: T5Config
  bidirectional: bool

  @nn.compact
  def __call__(self, q_len: int, k_len: int, q_offset: jax.Array | int = 0) -> jax.Array:
    """Bias [1, heads, q_len, k_len] for queries at q_offset + arange(q_len)."""
    c = self.config
    table = self.param("rel_embedding", nn.with_logical_partitioning(
        nn.initializers.normal(1.0), ("heads", "relpos_buckets")),
        (c.num_heads, c.relative_buckets), jnp.dtype(c.param_dtype))
    q_pos = q_offset + jnp.arange(q_len)[:, None]
    k_pos = jnp.arange(k_len)[None, :]
    buckets = relative_position_bucket(k_pos - q_pos, self.bidirectional, c.relative_buckets,
                                       c.relative_max_distance)
    bias = jnp.take(table, buckets, axis=1)  # [heads, q, k]
    return bias[None].astype(c.dtype)


class Projection(nn.Module):
  """x [..., *in_shape] @ kernel [*in_shape, *out_shape], kernel with logical axis names."""
  in_shape: tuple[int, ...]
  out_shape: tuple[int, ...]
  axes: tuple[str, ...]
  config: T5Config

  @nn.compact
  def __call__(self, x: jax.Array, float32_out: bool = False) -> jax.Array:
    """float32_out: return the dot's float32 accumulator (no gradient shortcut; decoding)."""
    fan_in = int(np.prod(self.in_shape))
    init = nn.initializers.truncated_normal(1.0 / math.sqrt(fan_in) / 0.87962566)
    kernel = self.param("kernel", nn.with_logical_partitioning(init, self.axes),
                        (*self.in_shape, *self.out_shape), jnp.dtype(self.config.param_dtype))
    lead = x.shape[:x.ndim - len(self.in_shape)]
    w = kernel.astype(self.config.dtype).reshape(fan_in, -1)
    x = x.reshape(*lead, fan_in)
    y = (jax.lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())),
                             preferred_element_type=jnp.float32) if float32_out
         else matmul(x, w))
    return y.reshape(*lead, *self.out_shape)


def _grouped(x: jax.Array, rows: int) -> jax.Array:
  """[rows * groups, ...] -> [rows, groups, ...]: a decode step's hypotheses by the row
  (user) of a cache entry they share."""
  return x.reshape(rows, x.shape[0] // rows, *x.shape[1:])


class MultiHeadAttention(nn.Module):
  """Attention, with decode caches ('cache' collection) for incremental decoding.

  Decode caches may hold fewer rows than the queries: rows * G queries (G beams per
  user) attend to an entry of `rows` rows as G groups, so beams never copy what they
  share. Cross-attention keeps the encoder's keys/values, one row per user.
  Self-attention keeps each decoded position's keys/values as its own entry
  (`cached_key_<p>`, [rows_p, heads, kv]): position 0, decoded before the beams
  split, stays one row per user; the beam search reorders the later ones.
  """
  config: T5Config
  cross: bool = False

  def _dense(self, name: str) -> Projection:
    c = self.config
    return Projection((c.emb_dim,), (c.num_heads, c.head_dim), ("embed", "heads", "kv"), c,
                      name=name)

  def _out(self, x: jax.Array) -> jax.Array:
    c = self.config
    return Projection((c.num_heads, c.head_dim), (c.emb_dim,), ("heads", "kv", "embed"), c,
                      name="out")(x)

  @nn.compact
  def __call__(self, x_q: jax.Array, x_kv: jax.Array, mask: jax.Array | None,
               bias: jax.Array | None, deterministic: bool, decode: bool = False,
               decode_position: int | None = None) -> jax.Array:
    """x_q [batch, q_len, embed], x_kv [batch_kv, kv_len, embed] -> [batch, q_len, embed].

    mask [batch_kv | 1, 1, q_len | 1, kv_len] (True = attend), bias [1, heads, q_len, kv_len].
    With decode and a decode_position p (self-attention), x_q is position p's
    token [rows, 1, embed] and the cache holds positions < p.
    """
    c = self.config
    if decode and not self.cross and decode_position is not None:
      q = self._dense("query")(x_q, float32_out=True)
      k, v = (self._dense(name)(x_kv, float32_out=True) for name in ("key", "value"))
      return self._decode_self(q, k, v, bias, decode_position, deterministic)
    axes = ("batch", "length", "heads", "kv")
    q = constrain(self._dense("query")(x_q), axes)
    heads_first = lambda x: jnp.swapaxes(x, 1, 2)  # [b, len, h, d] <-> [b, h, len, d]
    if decode and self.cross and self.has_variable("cache", "cached_cross_key"):
      k = self.get_variable("cache", "cached_cross_key")
      v = self.get_variable("cache", "cached_cross_value")
    else:
      # Kept [batch, heads, length, kv], the layout the dots take, so decode steps
      # do not transpose the encoder's keys/values again.
      k = heads_first(constrain(self._dense("key")(x_kv), axes))
      v = heads_first(constrain(self._dense("value")(x_kv), axes))
      if decode and self.cross:
        self.put_variable("cache", "cached_cross_key", k)
        self.put_variable("cache", "cached_cross_value", v)
    batch_q, len_q = q.shape[:2]
    q = heads_first(_grouped(q, k.shape[0]).reshape(k.shape[0], -1, *q.shape[2:]))
    logits = einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(c.head_dim)  # q: groups * q_len
    if bias is not None:
      logits = logits + bias
    if mask is not None:
      logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    weights = jax.nn.softmax(logits.astype(jnp.float32), -1).astype(c.dtype)
    weights = Dropout(c.dropout_rate)(weights, deterministic=deterministic)
    out = heads_first(einsum("bhqk,bhkd->bhqd", weights, v))
    return self._out(out.reshape(batch_q, len_q, c.num_heads, c.head_dim))

  def _decode_self(self, q: jax.Array, k: jax.Array, v: jax.Array, bias: jax.Array,
                   position: int, deterministic: bool) -> jax.Array:
    """One decode step's self-attention: q, k, v [rows, 1, heads, kv] (float32) at
    `position`, bias [1, heads, 1, position + 1]."""
    c = self.config
    rows = q.shape[0]
    q, k, v = q[:, 0], k[:, 0], v[:, 0]
    self.put_variable("cache", f"cached_key_{position}", k)
    self.put_variable("cache", f"cached_value_{position}", v)
    keys = [self.get_variable("cache", f"cached_key_{p}") for p in range(position)] + [k]
    values = [self.get_variable("cache", f"cached_value_{p}") for p in range(position)] + [v]
    # Per position, an elementwise product in the [rows, heads * kv] layout the
    # projections give, summed over each head's kv by a dot with a 0/1 matrix: XLA:CPU
    # runs [rows*heads] batched 1-row dots, or a reduce over kv, slower.
    h, d = c.num_heads, c.head_dim
    head_of = (jnp.arange(h * d)[:, None] // d == jnp.arange(h)[None]).astype(jnp.float32)
    flat = lambda x: x.reshape(x.shape[0], h * d)
    q = flat(q)
    logits = jnp.stack([
        jnp.dot((_grouped(q, k_p.shape[0]) * flat(k_p)[:, None]).reshape(rows, h * d), head_of)
        for k_p in keys], -1) / math.sqrt(d)  # [rows, heads, position + 1]
    logits = logits + bias[:, :, 0]
    weights = jax.nn.softmax(logits, -1)
    weights = Dropout(c.dropout_rate)(weights, deterministic=deterministic)
    out = 0
    for p, v_p in enumerate(values):
      w_p = jnp.dot(weights[..., p], head_of.T)  # [rows, heads * kv]
      out = out + (_grouped(w_p, v_p.shape[0]) * flat(v_p)[:, None]).reshape(rows, h * d)
    out = out.reshape(rows, 1, h, d)
    return self._out(out.astype(c.dtype))


class MLP(nn.Module):
  config: T5Config

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
    c = self.config
    dense = lambda shape, axes, name: Projection(shape[:1], shape[1:], axes, c, name=name)
    h = dense((c.emb_dim, c.mlp_dim), ("embed", "mlp"), "wi")(x)
    if c.gated_mlp:
      h = nn.gelu(h) * dense((c.emb_dim, c.mlp_dim), ("embed", "mlp"), "wi_gate")(x)
    else:
      h = nn.relu(h)
    h = constrain(h, ("batch", "length", "mlp"))
    h = Dropout(c.dropout_rate)(h, deterministic=deterministic)
    return dense((c.mlp_dim, c.emb_dim), ("mlp", "embed"), "wo")(h)


class EncoderLayer(nn.Module):
  config: T5Config

  @nn.compact
  def __call__(self, x, mask, bias, deterministic):
    c = self.config
    drop = lambda y: Dropout(c.dropout_rate)(y, deterministic=deterministic)
    h = RMSNorm(c, name="pre_attention_norm")(x)
    x = x + drop(MultiHeadAttention(c, name="attention")(h, h, mask, bias, deterministic))
    h = RMSNorm(c, name="pre_mlp_norm")(x)
    x = x + drop(MLP(c, name="mlp")(h, deterministic))
    return constrain(x, ("batch", "length", "embed"))


class DecoderLayer(nn.Module):
  config: T5Config

  @nn.compact
  def __call__(self, y, encoded, self_mask, cross_mask, bias, deterministic, decode,
               decode_position=None):
    c = self.config
    drop = lambda z: Dropout(c.dropout_rate)(z, deterministic=deterministic)
    h = RMSNorm(c, name="pre_self_attention_norm")(y)
    y = y + drop(MultiHeadAttention(c, name="self_attention")(
        h, h, self_mask, bias, deterministic, decode, decode_position))
    h = RMSNorm(c, name="pre_cross_attention_norm")(y)
    y = y + drop(MultiHeadAttention(c, cross=True, name="encoder_decoder_attention")(
        h, encoded, cross_mask, None, deterministic, decode=decode))
    h = RMSNorm(c, name="pre_mlp_norm")(y)
    y = y + drop(MLP(c, name="mlp")(h, deterministic))
    return constrain(y, ("batch", "length", "embed"))


def _embedding(config: T5Config, rows: int, name: str,
               axes: tuple[str | None, str] = ("vocab", "embed")) -> nn.Embed:
  """A [rows, emb_dim] table, unit-normal init, partitioned by `axes` (a few rows: (None,
  "embed"), replicated rather than split unevenly over the vocab axis)."""
  return nn.Embed(rows, config.emb_dim, dtype=config.dtype,
                  param_dtype=jnp.dtype(config.param_dtype),
                  embedding_init=nn.with_logical_partitioning(nn.initializers.normal(1.0), axes),
                  name=name)


class Encoder(nn.Module):
  config: T5Config
  embed: nn.Module

  @nn.compact
  def __call__(self, tokens: jax.Array, deterministic: bool) -> jax.Array:
    """tokens [batch, in_len] -> encoded [batch, enc_len, emb_dim]: enc_len = in_len, or
    1 + items with item_inputs (`encoder_mask` says which positions are real)."""
    c = self.config
    if not 0.0 <= c.item_embed_dropout <= 1.0 or (c.item_embed_dropout and not c.item_embed_buckets):
      raise ValueError(f"T5Config.item_embed_dropout={c.item_embed_dropout}: a probability, "
                       "and only with T5Config.item_embed_buckets > 0")
    if c.recency_positions < 0:
      raise ValueError(f"T5Config.recency_positions={c.recency_positions}: 0 (off) or more")
    x = self.embed(tokens).astype(c.dtype)
    if c.item_inputs:  # a history item's position: the sum of its codes' embeddings
      items = history_items(x, c.id_length).sum(2)
      if c.item_embed_buckets:  # + the sum of the item's rows of the item table
        table = _embedding(c, c.item_embed_buckets, "item_embedder")
        rows = item_buckets(history_items(tokens, c.id_length), c.item_embed_buckets,
                            c.item_embed_hashes)
        item_vectors = table(rows).astype(c.dtype).sum(-2)
        if c.item_embed_dropout:  # in training, keep or drop each item's whole vector
          item_vectors = item_vectors * Dropout(c.item_embed_dropout)(
              jnp.ones(rows.shape[:-1] + (1,), c.dtype), deterministic=deterministic)
        items = items + item_vectors
      x = jnp.concatenate([x[:, :1], items], 1)
    elif c.item_embed_buckets:
      raise ValueError("T5Config.item_embed_buckets needs T5Config.item_inputs = True "
                       "(one encoder position per item to add the item's embedding to)")
    if c.recency_positions:  # + the embedding of how recent the position's item is
      recency = item_recency(tokens, c)
      rows = _embedding(c, c.recency_positions, "recency_embedder", (None, "embed"))(
          jnp.clip(recency, 0, c.recency_positions - 1)).astype(c.dtype)
      x = x + jnp.where((recency >= 0)[..., None], rows, 0)
    x = Dropout(c.dropout_rate)(x, deterministic=deterministic)
    x = constrain(x, ("batch", "length", "embed"))
    mask = encoder_mask(tokens, c)[:, None, None, :]
    bias = RelativePositionBias(c, bidirectional=True, name="relpos_bias")(
        x.shape[1], x.shape[1])
    for i in range(c.num_encoder_layers):
      x = EncoderLayer(c, name=f"layer_{i}")(x, mask, bias, deterministic)
    x = RMSNorm(c, name="final_norm")(x)
    return Dropout(c.dropout_rate)(x, deterministic=deterministic)


class Logits(nn.Module):
  """The untied output projection: y [..., embed] -> logits [..., vocab] (float32), or only
  the columns [start, start + size) when `block` is given (one Semantic-ID level's tokens)."""
  config: T5Config

  @nn.compact
  def __call__(self, y: jax.Array, block: tuple[int, int] | None = None) -> jax.Array:
    c = self.config
    kernel = self.param("kernel", nn.with_logical_partitioning(_dense_init(), ("embed", "vocab")),
                        (c.emb_dim, c.vocab_size), jnp.dtype(c.param_dtype))
    if block is not None:
      kernel = jax.lax.slice_in_dim(kernel, block[0], block[0] + block[1], axis=1)
    return jnp.dot(y.astype(jnp.float32), kernel.astype(jnp.float32))


class Decoder(nn.Module):
  config: T5Config
  embed: nn.Module

  @nn.compact
  def __call__(self, encoded: jax.Array, input_tokens: jax.Array, decoder_input_tokens: jax.Array,
               deterministic: bool, decode: bool = False, decode_position: int | None = None,
               logits_block: tuple[int, int] | None = None, memory: dict | None = None,
               leave_out_targets: bool = False,
               level_blocks: Sequence[tuple[int, int]] | None = None):
    """Logits [batch, out_len, vocab] of the next token at each decoder position.

    With decode=True and decode_position p, decoder_input_tokens [batch, 1] is
    the token at position p and the cache holds positions < p (initialise it with
    `init_cache`: decode=True, no position). logits_block (start, size) computes
    only those vocabulary columns: [batch, out_len, size]. memory: the follower
    prior's counts (`follower_memory`); leave_out_targets (teacher-forced training)
    takes each row's own (last item -> target) pair out of them. level_blocks (start, size)
    per position: the columns each position's softmax covers in the loss (per-level
    heads), over which the follower copy (T5Config.follower_copy) normalises.
    """
    c = self.config
    y = self.embed(decoder_input_tokens).astype(c.dtype)
    if c.transition_buckets:
      y = y + self._transition(input_tokens, decoder_input_tokens, decode, decode_position)
    y = Dropout(c.dropout_rate)(y, deterministic=deterministic)
    y = constrain(y, ("batch", "length", "embed"))
    q_len = decoder_input_tokens.shape[1]
    rel = RelativePositionBias(c, bidirectional=False, name="relpos_bias")
    if decode and decode_position is not None:
      bias = rel(q_len, decode_position + 1, q_offset=decode_position)
      self_mask = None  # the cache holds exactly the earlier positions
    else:
      bias = rel(q_len, q_len)
      self_mask = jnp.tril(jnp.ones((q_len, q_len), bool))[None, None]
    cross_mask = encoder_mask(input_tokens, c)[:, None, None, :]
    for i in range(c.num_decoder_layers):
      y = DecoderLayer(c, name=f"layer_{i}")(y, encoded, self_mask, cross_mask, bias,
                                             deterministic, decode, decode_position)
    y = RMSNorm(c, name="final_norm")(y)
    y = Dropout(c.dropout_rate)(y, deterministic=deterministic)
    if c.logits_via_embedding:
      table = self.embed.embedding
      if logits_block is not None:
        table = jax.lax.slice_in_dim(table, logits_block[0], sum(logits_block), axis=0)
      logits = jnp.dot(y.astype(jnp.float32), table.astype(jnp.float32).T) / math.sqrt(c.emb_dim)
    else:
      logits = Logits(c, name="logits_dense")(y, logits_block)
    for option, needed in (("follower_copy", "follower_prior"),
                           ("follower_prior_log_count", "follower_prior"),
                           ("follower_copy_features", "follower_copy")):
      if getattr(c, option) and not getattr(c, needed):
        raise ValueError(f"T5Config.{option} does nothing without T5Config.{needed}: set both")
    if c.follower_prior:
      first, counts = self._follower_counts(memory, input_tokens, decoder_input_tokens, decode,
                                            decode_position, logits_block or (0, c.vocab_size),
                                            leave_out_targets)
      logits = logits + self._follower_bias(first, counts, logits.shape[1])
      if c.follower_copy:
        logits = self._follower_copy(logits, y, first, counts,
                                     None if logits_block else level_blocks)
    return constrain(logits, ("batch", "length", "vocab"))

  def _follower_counts(self, memory: dict | None, input_tokens: jax.Array,
                       decoder_input_tokens: jax.Array, decode: bool,
                       decode_position: int | None, block: tuple[int, int],
                       leave_out_targets: bool) -> tuple[int, jax.Array]:
    """The follower prior's counts (T5Config.follower_prior): (the first position's index,
    counts [rows, positions, sources, block size]), one position per position the decoder
    computes below id_length (none for eos).

    Position p counts, per source k (the k-th last history item) and column c, that item's
    followers whose tokens before p are the decoded ones and whose token p is c.
    Teacher-forced, the prefixes come from decoder_input_tokens; decoding, position 0 puts
    the row's followers in the cache (shared by its hypotheses) and each position the
    hypotheses' still-matching followers (`follower_match_<p>`, reordered with the beams by
    the search).
    """
    c = self.config
    if memory is None:
      raise ValueError(f"T5Config.follower_prior={c.follower_prior} needs the followers' counts: "
                       "build the model with experiment(), which reads them from the run's "
                       "training sequences (EncoderDecoderModel.memory)")
    if c.follower_prior_sources < 1:
      raise ValueError(f"T5Config.follower_prior_sources={c.follower_prior_sources}: 1 or more "
                       "(the last history item's followers, then the ones before it)")
    n_pos, sources = c.id_length, c.follower_prior_sources
    rows = decoder_input_tokens.shape[0]

    def per_row(x):  # [batch, ...] shared by a row's hypotheses -> [rows, ...]
      return jnp.repeat(x, rows // x.shape[0], 0)

    if not (decode and decode_position is not None):
      return 0, follower_code_counts(memory, input_tokens, decoder_input_tokens, n_pos, block,
                                     leave_out_targets, sources)
    p = decode_position
    if p >= n_pos:
      return p, jnp.zeros((rows, 0, sources, block[1]), jnp.float32)
    if p == 0:
      tokens, counts = source_followers(memory, input_tokens, n_pos, sources)
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

  def _source_log_weights(self, name: str) -> jax.Array:
    """A learned log weight per follower source [sources], from log(0.3) * k."""
    return self.param(name, nn.with_logical_partitioning(
        lambda _, shape, dtype: jnp.arange(shape[0], dtype=dtype) * math.log(0.3), (None,)),
                      (self.config.follower_prior_sources,), jnp.float32)

  def _follower_bias(self, first: int, counts: jax.Array, out_len: int) -> jax.Array:
    """The follower prior's logit bias [rows, out_len, size] for counts [rows, positions,
    sources, size] of positions first, first + 1, ... (`_follower_counts`; zero past them):
    per source, the table entry of the count's bucket (follower_prior_log_count: and the
    position's scale times `weighted_log_count` of all sources)."""
    c = self.config
    n_pos, sources = c.id_length, c.follower_prior_sources
    width = c.follower_prior_buckets * max(c.follower_prior_share_buckets, 1)
    tables = [self.param("follower_prior" if k == 0 else f"follower_prior_{k}",
                         nn.with_logical_partitioning(nn.initializers.zeros_init(), (None, None)),
                         (n_pos, width), jnp.float32) for k in range(sources)]
    if c.follower_prior_log_count:
      scale = self.param("follower_prior_log_scale",
                         nn.with_logical_partitioning(nn.initializers.zeros_init(), (None,)),
                         (n_pos,), jnp.float32)
      log_weights = self._source_log_weights("follower_prior_log_weights")
    out = []
    for i in range(counts.shape[1]):
      p, n = first + i, counts[:, i]
      bias = sum(table[p][prior_buckets(n[:, k], c.follower_prior_buckets,
                                        c.follower_prior_share_buckets)]
                 for k, table in enumerate(tables))
      if c.follower_prior_log_count:
        bias = bias + scale[p] * weighted_log_count(n, log_weights)
      out.append(bias)
    rows, size = counts.shape[0], counts.shape[-1]
    out += [jnp.zeros((rows, size), jnp.float32)] * (out_len - counts.shape[1])
    return jnp.stack(out, 1)

  def _follower_copy(self, logits: jax.Array, y: jax.Array, first: int, counts: jax.Array,
                     level_blocks: Sequence[tuple[int, int]] | None) -> jax.Array:
    """T5Config.follower_copy: logits [rows, out_len, width] with positions first, first + 1,
    ... (counts [rows, positions, sources, width] from `_follower_counts`) replaced by the copy
    mixture's log-probabilities (`copy_mixture`), over level_blocks[p]'s columns where given,
    else over all `width`; the gate's logit is y [rows, out_len, embed] . w + bias[p] +
    scale[p] * log(1 + the weighted total count) (+ features[p] . `copy_gate_features` with
    T5Config.follower_copy_features)."""
    c = self.config
    n_pos = c.id_length
    w = self.param("follower_copy_gate", nn.with_logical_partitioning(
        nn.initializers.normal(0.02), ("embed",)), (c.emb_dim,), jnp.float32)
    bias = self.param("follower_copy_bias", nn.with_logical_partitioning(
        nn.initializers.constant(-1.0), (None,)), (n_pos,), jnp.float32)
    scale = self.param("follower_copy_scale", nn.with_logical_partitioning(
        nn.initializers.constant(0.1), (None,)), (n_pos,), jnp.float32)
    log_weights = self._source_log_weights("follower_copy_log_weights")
    if c.follower_copy_features:
      feature_weights = self.param("follower_copy_features", nn.with_logical_partitioning(
          nn.initializers.zeros, (None, None)), (n_pos, 2 + c.follower_prior_sources),
          jnp.float32)
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
      if c.follower_copy_features:
        features = copy_gate_features(by_source, n)
        gate = gate + features @ feature_weights[p]
      mixed = copy_mixture(jax.lax.slice_in_dim(logits[:, i], start, start + size, axis=1), n, gate)
      out.append(jax.lax.dynamic_update_slice_in_dim(logits[:, i], mixed, start, axis=1))
    return jnp.stack(out, 1)

  def _transition(self, input_tokens: jax.Array, decoder_input_tokens: jax.Array, decode: bool,
                  decode_position: int | None) -> jax.Array:
    """Each decoder position's transition embedding [rows, out_len, emb_dim]: the rows of a
    hash chain over (the last history item's codes, the decoded codes up to the position).

    Teacher-forced, position p's chain takes decoder_input_tokens[:, 1:p + 1] (position 0
    holds the start token). Decoding position p, the chain's state after position p - 1
    comes from the cache (`transition_state_<p-1>`; position 0's has one row per input row,
    shared by its hypotheses as the attention caches are, the later ones are reordered
    with their beams by the search) and the state after p is put there.
    """
    c = self.config
    if c.transition_hashes < 1:
      raise ValueError(f"T5Config.transition_hashes={c.transition_hashes}: 1 or more")
    if decode and decode_position is not None:
      prev = (transition_start(input_tokens, c) if decode_position == 0 else
              self.get_variable("cache", f"transition_state_{decode_position - 1}"))
      prev = jnp.repeat(prev, decoder_input_tokens.shape[0] // prev.shape[0], 0)
      state = prev if decode_position == 0 else hash_chain(prev, decoder_input_tokens)
      self.put_variable("cache", f"transition_state_{decode_position}", state)
      states = state[:, None]
    else:
      state = transition_start(input_tokens, c)
      states = [state]
      for p in range(1, decoder_input_tokens.shape[1]):
        state = hash_chain(state, decoder_input_tokens[:, p:p + 1])
        states.append(state)
      states = jnp.stack(states, 1)  # [batch, out_len, hashes]
    table = _embedding(c, c.transition_buckets, "transition_embedder")
    return table(hash_rows(states, c.transition_buckets)).astype(c.dtype).sum(-2)


class Transformer(nn.Module):
  """Encoder-decoder. `__call__` is teacher-forced; `encode`/`decode` serve decoding."""
  config: T5Config

  def setup(self):
    c = self.config
    self.embed = _embedding(c, c.vocab_size, "token_embedder")
    self.encoder = Encoder(c, self.embed)
    self.decoder = Decoder(c, self.embed)

  def encode(self, input_tokens: jax.Array, deterministic: bool = True) -> jax.Array:
    return self.encoder(input_tokens, deterministic)

  def decode(self, encoded, input_tokens, decoder_input_tokens, deterministic: bool = True,
             decode: bool = False, decode_position: int | None = None,
             logits_block: tuple[int, int] | None = None, memory: dict | None = None,
             leave_out_targets: bool = False,
             level_blocks: Sequence[tuple[int, int]] | None = None):
    return self.decoder(encoded, input_tokens, decoder_input_tokens, deterministic, decode,
                        decode_position, logits_block, memory, leave_out_targets, level_blocks)

  def __call__(self, input_tokens: jax.Array, decoder_input_tokens: jax.Array,
               deterministic: bool = True, memory: dict | None = None,
               leave_out_targets: bool = False,
               level_blocks: Sequence[tuple[int, int]] | None = None) -> jax.Array:
    """[batch, in_len], [batch, out_len] -> logits [batch, out_len, vocab]."""
    encoded = self.encode(input_tokens, deterministic)
    return self.decode(encoded, input_tokens, decoder_input_tokens, deterministic,
                       memory=memory, leave_out_targets=leave_out_targets,
                       level_blocks=level_blocks)
