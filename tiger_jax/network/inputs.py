"""The encoder's input layout: [user token, item_1's id_length codes, item_2's, ...],
right-padded with zeros. Pure functions that find the history's items in it."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def history_items(x: jax.Array, id_length: int) -> jax.Array:
  """[batch, 1 + id_length * items, ...] (user token, then whole Semantic IDs) -> the items'
  codes [batch, items, id_length, ...]."""
  batch, length = x.shape[:2]
  if (length - 1) % id_length:
    raise ValueError(f"an input length of {length} is not 1 + a multiple of "
                     f"id_length {id_length} (user token + whole Semantic IDs)")
  return x[:, 1:].reshape(batch, (length - 1) // id_length, id_length, *x.shape[2:])


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
