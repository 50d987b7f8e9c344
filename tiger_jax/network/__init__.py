"""The model: the paper's T5 encoder-decoder (`t5.py`) and the mechanisms that plug into it.

  t5.py          the paper's model: attention, layers, encoder, decoder, logits; `Mechanism`
  hashing.py     hash chains over codes, dropout masks
  inputs.py      the encoder's input layout (user token, then whole Semantic IDs)
  precision.py   dots that accumulate in float32
  item_inputs.py one encoder position per item, the item embedding, recency (ItemInputsConfig)
  transition.py  a learned transition table on the decoder's inputs (TransitionConfig)
  followers.py   the follower prior and copy over training counts (FollowerConfig)
  item_head.py   an item-level next-item head on the encoder (ItemHeadConfig)
  memory.py      the memory collection: data the mechanisms read (counts, item tokens)

A mechanism is a frozen dataclass subclassing `t5.Mechanism`, set as a field of `T5Config`;
the model calls its hooks (encoder positions and inputs, decoder inputs, logits). The item
head is a module of its own beside the decoder (`Transformer.item_logits`).
"""

from tiger_jax.network.followers import FollowerConfig
from tiger_jax.network.item_head import ItemHeadConfig
from tiger_jax.network.item_inputs import ItemInputsConfig
from tiger_jax.network.t5 import DecoderCall, Mechanism, T5Config, Transformer, encoder_mask
from tiger_jax.network.transition import TransitionConfig

__all__ = ["DecoderCall", "FollowerConfig", "ItemHeadConfig", "ItemInputsConfig", "Mechanism",
           "T5Config", "TransitionConfig", "Transformer", "encoder_mask"]
