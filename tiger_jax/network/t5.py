"""The paper's model: a T5-style encoder-decoder in Flax (pre-RMSNorm, relative position bias).

Every parameter and the main activations carry logical axis names ('vocab', 'embed', 'mlp',
'heads', 'kv', 'batch', 'length'); the rules in `partitioning.py` map them onto a device mesh,
as in t5x. Research mechanisms plug in through `Mechanism`'s hooks (the sub-configs of
`T5Config`); with none set, this file alone is the model.
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
from tiger_jax.network.hashing import Dropout
from tiger_jax.network.precision import einsum, matmul

constrain = nn.with_logical_constraint


@dataclasses.dataclass(frozen=True)
class DecoderCall:
  """What the decoder was called with, for the mechanisms' decoder hooks. Teacher-forced
  (decode False, or no decode_position): decoder_input_tokens [batch, out_len]; decoding
  position p: [rows, 1], rows = batch * hypotheses. logits_block: the vocabulary columns
  computed (start, size); level_blocks: each position's softmax columns in the loss."""
  input_tokens: jax.Array
  decoder_input_tokens: jax.Array
  deterministic: bool
  decode: bool
  decode_position: int | None
  logits_block: tuple[int, int] | None
  level_blocks: Sequence[tuple[int, int]] | None

  @property
  def incremental(self) -> bool:
    return self.decode and self.decode_position is not None


class Mechanism:
  """A plug-in: its config is a frozen dataclass subclassing this, set as a field of T5Config.

  The model calls the hooks of every mechanism set (`T5Config.mechanisms`, in field order);
  each default leaves the paper's model as it is. A hook that adds parameters builds a Flax
  module of its own and shares the caller's scope (`nn.share_scope`), so parameter names do
  not depend on where the code lives. Configs check themselves in `__post_init__` (gin
  builds them) and raise ConfigError naming the binding.
  """

  def encoder_positions(self, real: jax.Array, config: T5Config) -> jax.Array:
    """Which encoder positions exist [batch, enc_len], from the real tokens [batch, in_len]."""
    return real

  def encoder_inputs(self, encoder: nn.Module, x: jax.Array, tokens: jax.Array,
                     deterministic: bool) -> jax.Array:
    """The encoder's input vectors [batch, enc_len, embed], from the tokens' embeddings."""
    return x

  def decoder_inputs(self, decoder: nn.Module, y: jax.Array, call: DecoderCall) -> jax.Array:
    """The decoder's input vectors [rows, out_len, embed]."""
    return y

  def logits(self, decoder: nn.Module, logits: jax.Array, y: jax.Array,
             call: DecoderCall) -> jax.Array:
    """The decoder's output logits [rows, out_len, width], from the last hidden states y."""
    return logits

  def absolute_step_params(self) -> tuple[str, ...]:
    """Prefixes of the parameter names the optimizer steps by lr itself (no Adafactor scaling)."""
    return ()


@dataclasses.dataclass(frozen=True)
class T5Config:
  """The paper's model: 4+4 layers, 6 heads of 64, d_model 128, d_ff 1024; and the mechanisms."""
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
  user_token: bool = True  # False: the user token is masked out (the paper's ablation)
  id_length: int = 4  # codes per item in the inputs; experiment() sets it from the IDs
  # Plug-ins (None: off), each a Mechanism config from its own module.
  item_inputs: Mechanism | None = None  # network/item_inputs.py: ItemInputsConfig
  transition: Mechanism | None = None  # network/transition.py: TransitionConfig
  followers: Mechanism | None = None  # network/followers.py: FollowerConfig
  item_head: Mechanism | None = None  # network/item_head.py: ItemHeadConfig

  def __post_init__(self):
    for name in ("item_inputs", "transition", "followers", "item_head"):
      value = getattr(self, name)
      if value is not None and not isinstance(value, Mechanism):
        raise ConfigError(f"T5Config.{name}={value!r}: a mechanism's config (e.g. "
                          f"@{type(value).__name__}()) or None")

  def mechanisms(self) -> tuple[Mechanism, ...]:
    return tuple(m for m in (self.item_inputs, self.transition, self.followers) if m is not None)

  def absolute_step_params(self) -> tuple[str, ...]:
    return tuple(p for m in self.mechanisms() for p in m.absolute_step_params())


def encoder_mask(tokens: jax.Array, config: T5Config) -> jax.Array:
  """Input tokens [batch, 1 + id_length * items] -> which encoder positions are real
  [batch, encoder length] (the tokens' shape unless a mechanism changes the positions)."""
  real = tokens > 0
  if not config.user_token:
    real = real.at[:, 0].set(False)
  for mechanism in config.mechanisms():
    real = mechanism.encoder_positions(real, config)
  return real


def _dense_init(fan_axes_scale: float = 1.0):
  return nn.initializers.variance_scaling(fan_axes_scale, "fan_in", "truncated_normal")


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


def embedding(config: T5Config, rows: int, name: str,
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
    """tokens [batch, in_len] -> encoded [batch, enc_len, emb_dim]: enc_len = in_len unless a
    mechanism changes the positions (`encoder_mask` says which are real)."""
    c = self.config
    x = self.embed(tokens).astype(c.dtype)
    for mechanism in c.mechanisms():
      x = mechanism.encoder_inputs(self, x, tokens, deterministic)
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
               logits_block: tuple[int, int] | None = None,
               level_blocks: Sequence[tuple[int, int]] | None = None):
    """Logits [batch, out_len, vocab] of the next token at each decoder position.

    With decode=True and decode_position p, decoder_input_tokens [batch, 1] is the token at
    position p and the cache holds positions < p (initialise it with `init_cache`:
    decode=True, no position). logits_block (start, size) computes only those vocabulary
    columns: [batch, out_len, size]. level_blocks (start, size) per position: the columns
    each position's softmax covers in the loss (per-level heads), for the mechanisms.
    """
    c = self.config
    call = DecoderCall(input_tokens, decoder_input_tokens, deterministic, decode,
                       decode_position, logits_block, level_blocks)
    y = self.embed(decoder_input_tokens).astype(c.dtype)
    for mechanism in c.mechanisms():
      y = mechanism.decoder_inputs(self, y, call)
    y = Dropout(c.dropout_rate)(y, deterministic=deterministic)
    y = constrain(y, ("batch", "length", "embed"))
    q_len = decoder_input_tokens.shape[1]
    rel = RelativePositionBias(c, bidirectional=False, name="relpos_bias")
    if call.incremental:
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
    for mechanism in c.mechanisms():
      logits = mechanism.logits(self, logits, y, call)
    return constrain(logits, ("batch", "length", "vocab"))


class Transformer(nn.Module):
  """Encoder-decoder. `__call__` is teacher-forced; `encode`/`decode` serve decoding.

  Data a mechanism reads besides its parameters (the follower memory) is the 'memory'
  variable collection, passed with the parameters: {"params": ..., "memory": ...}.
  """
  config: T5Config

  def setup(self):
    c = self.config
    self.embed = embedding(c, c.vocab_size, "token_embedder")
    self.encoder = Encoder(c, self.embed)
    self.decoder = Decoder(c, self.embed)
    self.item_head = c.item_head.module(c) if c.item_head is not None else None

  def encode(self, input_tokens: jax.Array, deterministic: bool = True) -> jax.Array:
    return self.encoder(input_tokens, deterministic)

  def decode(self, encoded, input_tokens, decoder_input_tokens, deterministic: bool = True,
             decode: bool = False, decode_position: int | None = None,
             logits_block: tuple[int, int] | None = None,
             level_blocks: Sequence[tuple[int, int]] | None = None):
    return self.decoder(encoded, input_tokens, decoder_input_tokens, deterministic, decode,
                        decode_position, logits_block, level_blocks)

  def item_logits(self, encoded: jax.Array, input_tokens: jax.Array) -> jax.Array:
    """The item head's logits over all items [batch, items] (T5Config.item_head)."""
    return self.item_head(encoded, input_tokens, self)

  def __call__(self, input_tokens: jax.Array, decoder_input_tokens: jax.Array,
               deterministic: bool = True,
               level_blocks: Sequence[tuple[int, int]] | None = None,
               with_item_logits: bool = False):
    """[batch, in_len], [batch, out_len] -> logits [batch, out_len, vocab]; with_item_logits
    (T5Config.item_head): (logits, the head's item logits [batch, items]). In training
    (deterministic=False) a mechanism may treat the row's own target as unseen."""
    encoded = self.encode(input_tokens, deterministic)
    logits = self.decode(encoded, input_tokens, decoder_input_tokens, deterministic,
                         level_blocks=level_blocks)
    if self.item_head is not None and (with_item_logits or self.is_initializing()):
      item_logits = self.item_logits(encoded, input_tokens)
    return (logits, item_logits) if with_item_logits else logits
