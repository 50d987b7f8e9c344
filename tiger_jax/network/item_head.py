"""An item-level next-item head on the encoder: an auxiliary loss in training, candidates and
a second score in decoding.

The paper's model names the next item only through its Semantic ID, token by token. The
beams rarely hold a rare target at all (records/analysis/), where an item-level softmax, as
in SASRec, ranks every item by one dot product. `ItemHeadConfig` adds one: the encoder's
output at the last history position, through a residual projection, dotted with each item's
output vector (the sum of its codes' and its hashed item embedding's rows, tables of the
head's own), trained by a full-softmax cross-entropy on the target item beside the token
loss (`weight`).

In decoding (`retrieval.Retriever`) the head's top `candidates` items join the beams; each
candidate gets its exact log-probability under the decoder (teacher-forced, the beam
search's block softmax) and the union is ranked by log p(ID) + blend * log p_head(item).
`blend` 0 ranks by the decoder alone (the beams, plus any head item the search missed).

The items' tokens are data, not parameters: the 'memory' collection (`item_memory`), built
from the Semantic IDs by `experiment()`.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tiger_jax.errors import ConfigError
from tiger_jax.network import item_inputs
from tiger_jax.network.hashing import distinct_keys, find_key, item_buckets, item_keys
from tiger_jax.network.memory import read_memory
from tiger_jax.network.t5 import Mechanism, Projection, RMSNorm, T5Config, embedding, encoder_mask

NAME = "item_head"  # the Transformer's attribute: the head's parameter and memory scope


@dataclasses.dataclass(frozen=True)
class ItemHeadConfig(Mechanism):
  """gin: `T5Config.item_head = @ItemHeadConfig()`."""
  weight: float = 1.0  # the head's cross-entropy's weight beside the token loss
  buckets: int = 32768  # rows of the head's hashed item table (0: codes only)
  hashes: int = 2
  blend: float = 1.0  # decoding: rank by log p(ID) + blend * log p_head(item)
  candidates: int = 0  # the head's top items that join the beams (0: as many as the beam)
  # True: each item's output vector is its encoder input vector, SASRec's tied embeddings: the
  # shared token embedder's rows of its codes plus the encoder's item table's rows
  # (ItemInputsConfig.embed_buckets, where it has one); `buckets`, `hashes` then unused.
  tied: bool = False

  def __post_init__(self):
    if self.weight < 0 or self.blend < 0:
      raise ConfigError(f"ItemHeadConfig.weight={self.weight}, blend={self.blend}: 0 or more")
    if self.buckets < 0 or self.hashes < 1 or self.candidates < 0:
      raise ConfigError(f"ItemHeadConfig.buckets={self.buckets}, hashes={self.hashes}, "
                        f"candidates={self.candidates}: buckets and candidates 0 or more, "
                        "hashes 1 or more")

  def module(self, config: T5Config) -> nn.Module:
    """The head, built in the Transformer's setup (attribute `item_head`)."""
    return ItemHead(self, config)


def item_memory(item_tokens: np.ndarray) -> dict[str, jax.Array]:
  """The head's memory from the items' tokens [items, L] (row = item index): {"tokens"
  [items, L]; "keys" [items] uint32 sorted, "index" [items] (the item of each key), "seed"}."""
  item_tokens = np.asarray(item_tokens)
  seed, keys = distinct_keys(item_tokens)
  order = np.argsort(keys, kind="stable")
  return {"tokens": jnp.asarray(item_tokens, jnp.int32), "keys": jnp.asarray(keys[order]),
          "index": jnp.asarray(order, jnp.int32), "seed": jnp.uint32(seed)}


def memory_variables(memory: dict[str, jax.Array]) -> dict[str, dict]:
  """The model's 'memory' collection entry holding `item_memory`'s arrays."""
  return {NAME: dict(memory)}


def item_index(memory: dict, tokens: jax.Array) -> jax.Array:
  """Items' tokens [..., L] -> their item indices [...] (-1: all-zero, or no such item)."""
  i, found = find_key(memory["keys"], item_keys(tokens, memory["seed"]))
  index = memory["index"][i]
  found = found & (memory["tokens"][index] == tokens).all(-1)
  return jnp.where(found & (tokens > 0).any(-1), index, -1)


def last_position(input_tokens: jax.Array, config: T5Config) -> jax.Array:
  """The last real encoder position of each row [batch] (the user token's, 0, if none)."""
  real = encoder_mask(input_tokens, config)
  return jnp.max(jnp.where(real, jnp.arange(real.shape[1]), 0), -1)


def exclude_items(log_probs: jax.Array, memory: dict, items_tokens: jax.Array) -> jax.Array:
  """log_probs [batch, items] with the items whose tokens are in items_tokens [batch, E, L]
  (zero rows ignored) set to -inf."""
  index = item_index(memory, items_tokens)
  rows = jnp.broadcast_to(jnp.arange(index.shape[0])[:, None], index.shape)
  cols = jnp.where(index >= 0, index, log_probs.shape[1])  # out of range: dropped
  return log_probs.at[rows, cols].set(-jnp.inf, mode="drop")


class ItemHead(nn.Module):
  """encoded [batch, enc_len, embed], input tokens -> logits over all items [batch, items]."""
  options: ItemHeadConfig
  config: T5Config

  def _memory(self) -> dict[str, jax.Array]:
    def one_item():  # traceable (init may run under jit)
      tokens = jnp.arange(1, 1 + self.config.id_length, dtype=jnp.int32)[None]
      return {"tokens": tokens, "keys": item_keys(tokens, 0), "index": jnp.zeros(1, jnp.int32),
              "seed": jnp.uint32(0)}
    return read_memory(self, ("tokens", "keys", "index", "seed"), one_item,
                       "ItemHeadConfig needs the items' tokens: build the model with "
                       "experiment(), which reads them from the Semantic IDs "
                       "(EncoderDecoderModel.memory)")

  @nn.compact
  def __call__(self, encoded: jax.Array, input_tokens: jax.Array,
               transformer: nn.Module | None = None) -> jax.Array:
    """transformer: the model (its token embedder and encoder tables, for `tied`)."""
    c, o = self.config, self.options
    last = last_position(input_tokens, c)
    h = jnp.take_along_axis(encoded, last[:, None, None], 1)[:, 0]
    h = h + Projection((c.emb_dim,), (c.emb_dim,), ("embed", "mlp"), c, name="projection")(h)
    h = RMSNorm(c, name="norm")(h)
    tokens = self._memory()["tokens"]
    if o.tied:
      items = input_vectors(transformer, tokens)
    else:
      items = embedding(c, c.vocab_size, "code_embedder")(tokens).sum(-2)
      if o.buckets:
        rows = item_buckets(tokens, o.buckets, o.hashes)
        items = items + embedding(c, o.buckets, "item_embedder")(rows).sum(-2)
    return jnp.dot(h.astype(jnp.float32), items.astype(jnp.float32).T) / math.sqrt(c.emb_dim)


def input_vectors(transformer: nn.Module, tokens: jax.Array) -> jax.Array:
  """Items' tokens [items, L] -> the vectors the encoder reads for them [items, embed] (item
  inputs: network/item_inputs.py; recency aside): the sum of their codes' rows of the shared
  token embedder, plus their rows of the encoder's item table where it has one."""
  vectors = transformer.embed(tokens).sum(-2)
  inputs = transformer.config.item_inputs
  if inputs is not None and inputs.embed_buckets:
    table = nn.meta.unbox(transformer.encoder.variables["params"]["item_embedder"]["embedding"])
    rows = item_inputs.table_rows(inputs, tokens)
    vectors = vectors + jnp.asarray(table)[rows].astype(vectors.dtype).sum(-2)
  return vectors
