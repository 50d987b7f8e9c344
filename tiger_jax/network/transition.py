"""A learned transition table on the decoder's inputs.

Decoder position p also gets a learned embedding of (the last history item's whole Semantic
ID, the p codes decoded so far), looked up by `hashes` hashes into a table of `buckets` rows
and summed: a memory of which item follows which, keyed as a first-order item-transition
model keys its counts, on the output side.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax

from tiger_jax.errors import ConfigError
from tiger_jax.network.hashing import hash_chain, hash_rows, hash_seeds
from tiger_jax.network.inputs import last_item
from tiger_jax.network.t5 import DecoderCall, Mechanism, T5Config, embedding


@dataclasses.dataclass(frozen=True)
class TransitionConfig(Mechanism):
  """gin: `T5Config.transition = @TransitionConfig()`."""
  buckets: int = 65536
  hashes: int = 2

  def __post_init__(self):
    if self.buckets < 1 or self.hashes < 1:
      raise ConfigError(f"TransitionConfig.buckets={self.buckets}, hashes={self.hashes}: "
                        "1 or more each")

  def decoder_inputs(self, decoder: nn.Module, y: jax.Array, call: DecoderCall) -> jax.Array:
    module = Transition(self, decoder.config, name="transition")
    nn.share_scope(module, decoder)  # its table keeps the decoder's name
    return y + module(call)


def transition_start(tokens: jax.Array, hashes: int, id_length: int) -> jax.Array:
  """Input tokens [batch, 1 + id_length * items] -> the transition chain's state after the
  last history item's codes [batch, hashes] (decoder position 0's key)."""
  return hash_chain(hash_seeds(tokens.shape[:1], hashes), last_item(tokens, id_length))


class Transition(nn.Module):
  """Each decoder position's transition embedding (in the decoder's scope)."""
  options: TransitionConfig
  config: T5Config

  @nn.compact
  def __call__(self, call: DecoderCall) -> jax.Array:
    """[rows, out_len, emb_dim]: the rows of a hash chain over (the last history item's codes,
    the decoded codes up to the position).

    Teacher-forced, position p's chain takes decoder_input_tokens[:, 1:p + 1] (position 0
    holds the start token). Decoding position p, the chain's state after position p - 1
    comes from the cache (`transition_state_<p-1>`; position 0's has one row per input row,
    shared by its hypotheses as the attention caches are, the later ones are reordered
    with their beams by the search) and the state after p is put there.
    """
    c, o = self.config, self.options
    tokens, position = call.decoder_input_tokens, call.decode_position
    if call.incremental:
      prev = (transition_start(call.input_tokens, o.hashes, c.id_length) if position == 0 else
              self.get_variable("cache", f"transition_state_{position - 1}"))
      prev = jax.numpy.repeat(prev, tokens.shape[0] // prev.shape[0], 0)
      state = prev if position == 0 else hash_chain(prev, tokens)
      self.put_variable("cache", f"transition_state_{position}", state)
      states = state[:, None]
    else:
      state = transition_start(call.input_tokens, o.hashes, c.id_length)
      states = [state]
      for p in range(1, tokens.shape[1]):
        state = hash_chain(state, tokens[:, p:p + 1])
        states.append(state)
      states = jax.numpy.stack(states, 1)  # [batch, out_len, hashes]
    table = embedding(c, o.buckets, "transition_embedder")
    return table(hash_rows(states, o.buckets)).astype(c.dtype).sum(-2)
