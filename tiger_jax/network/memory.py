"""The model's 'memory' variable collection: data a mechanism reads besides its parameters
(the followers' counts, the item head's item tokens), built once by `experiment()` and passed
with the parameters by `EncoderDecoderModel`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn

MEMORY = "memory"


def read_memory(module: nn.Module, names: Sequence[str], empty: Callable[[], dict],
                missing: str) -> dict:
  """A mechanism module's arrays `names` of the memory collection; at init without it, empty()
  (traceable, shapes only); else ValueError(missing), which says how to build the memory."""
  if all(module.has_variable(MEMORY, n) for n in names):
    return {n: module.get_variable(MEMORY, n) for n in names}
  if module.is_initializing():
    return empty()
  raise ValueError(missing)
