"""Item-level encoder inputs, the hashed item embedding and the recency embedding.

The paper's encoder reads one position per code: [user, item_1's id_length codes, ...].
`ItemInputsConfig(item_level=True)` gives it one position per history item instead, the sum
of the item's code embeddings (encoder length 1 + items: 4x shorter, a step 4x cheaper);
`embed_buckets` adds the item's own learned vector; `recency_positions` tells each position
how recent its item is.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from tiger_jax.errors import ConfigError
from tiger_jax.network.hashing import Dropout, item_buckets
from tiger_jax.network.inputs import history_items
from tiger_jax.network.t5 import Mechanism, T5Config, embedding, encoder_mask


@dataclasses.dataclass(frozen=True)
class ItemInputsConfig(Mechanism):
  """gin: `T5Config.item_inputs = @ItemInputsConfig()`."""
  # One encoder position per history item, the sum of its code embeddings.
  item_level: bool = True
  # > 0 (item_level only): each history item's position also gets a learned embedding of the
  # item itself, looked up by `embed_hashes` hashes of its whole Semantic ID into a table of
  # this many rows and summed, so that the encoder can tell apart items beyond what their
  # codes share (an ID embedding with no item table to hand the model: the codes are the item).
  embed_buckets: int = 0
  embed_hashes: int = 2
  # In training, drop a history item's whole table embedding with this probability (its codes
  # stay), so that the codes, which generalise to items seen rarely, keep carrying the history.
  embed_dropout: float = 0.0
  # > 0: each history item's position(s) also get a learned embedding of how recent the item
  # is (0 = the last item; items older than recency_positions - 1 share the last row). Inputs
  # are right-padded and relative positions do not say where a history ends.
  recency_positions: int = 0

  def __post_init__(self):
    if self.embed_buckets < 0 or self.embed_hashes < 1:
      raise ConfigError(f"ItemInputsConfig.embed_buckets={self.embed_buckets}, embed_hashes="
                        f"{self.embed_hashes}: buckets 0 (off) or more, hashes 1 or more")
    if self.embed_buckets and not self.item_level:
      raise ConfigError("ItemInputsConfig.embed_buckets needs ItemInputsConfig.item_level = True "
                        "(one encoder position per item to add the item's embedding to)")
    if not 0.0 <= self.embed_dropout <= 1.0 or (self.embed_dropout and not self.embed_buckets):
      raise ConfigError(f"ItemInputsConfig.embed_dropout={self.embed_dropout}: a probability, "
                        "and only with ItemInputsConfig.embed_buckets > 0")
    if self.recency_positions < 0:
      raise ConfigError(f"ItemInputsConfig.recency_positions={self.recency_positions}: 0 (off) "
                        "or more")

  def encoder_positions(self, real: jax.Array, config: T5Config) -> jax.Array:
    if not self.item_level:
      return real
    return jnp.concatenate([real[:, :1], history_items(real, config.id_length).any(-1)], 1)

  def encoder_inputs(self, encoder: nn.Module, x: jax.Array, tokens: jax.Array,
                     deterministic: bool) -> jax.Array:
    module = ItemInputs(self, encoder.config, name="item_inputs")
    nn.share_scope(module, encoder)  # its tables keep the encoder's names
    return module(x, tokens, deterministic)


def item_recency(tokens: jax.Array, config: T5Config) -> jax.Array:
  """Input tokens [batch, 1 + id_length * items] -> each encoder position's item recency
  [batch, encoder length] (int32): 0 for the last history item's position(s), 1 for the one
  before, ...; -1 for the user token and padding."""
  real = encoder_mask(tokens, config)
  item_level = config.item_inputs is not None and config.item_inputs.item_level
  per = 1 if item_level else config.id_length  # encoder positions per item
  pos = jnp.arange(real.shape[1])
  num_items = (real[:, 1:].sum(-1, keepdims=True) + per - 1) // per
  recency = num_items - 1 - (pos - 1) // per
  return jnp.where(real & (pos >= 1), recency, -1).astype(jnp.int32)


def table_rows(options: ItemInputsConfig, item_tokens: jax.Array) -> jax.Array:
  """Items' tokens [..., L] -> their rows of the encoder's item table [..., embed_hashes]
  (`embed_buckets` > 0); the tied item head (network/item_head.py) reads the same rows."""
  return item_buckets(item_tokens, options.embed_buckets, options.embed_hashes)


class ItemInputs(nn.Module):
  """The encoder's input vectors under ItemInputsConfig (in the encoder's scope)."""
  options: ItemInputsConfig
  config: T5Config

  @nn.compact
  def __call__(self, x: jax.Array, tokens: jax.Array, deterministic: bool) -> jax.Array:
    """x: the tokens' embeddings [batch, in_len, embed] -> [batch, enc_len, embed]."""
    c, o = self.config, self.options
    if o.item_level:  # a history item's position: the sum of its codes' embeddings
      items = history_items(x, c.id_length).sum(2)
      if o.embed_buckets:  # + the sum of the item's rows of the item table
        table = embedding(c, o.embed_buckets, "item_embedder")
        rows = table_rows(o, history_items(tokens, c.id_length))
        item_vectors = table(rows).astype(c.dtype).sum(-2)
        if o.embed_dropout:  # in training, keep or drop each item's whole vector
          item_vectors = item_vectors * Dropout(o.embed_dropout, name="item_embed_dropout")(
              jnp.ones(rows.shape[:-1] + (1,), c.dtype), deterministic=deterministic)
        items = items + item_vectors
      x = jnp.concatenate([x[:, :1], items], 1)
    if o.recency_positions:  # + the embedding of how recent the position's item is
      recency = item_recency(tokens, c)
      rows = embedding(c, o.recency_positions, "recency_embedder", (None, "embed"))(
          jnp.clip(recency, 0, o.recency_positions - 1)).astype(c.dtype)
      x = x + jnp.where((recency >= 0)[..., None], rows, 0)
    return x
