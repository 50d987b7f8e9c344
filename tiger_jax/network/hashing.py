"""Hash functions over Semantic-ID codes, and the dropout masks drawn by a counter hash.

Pure functions over uint32 arrays: the item-embedding and transition tables find their rows
by hash chains over codes, the follower memory keys its items by one, and dropout draws its
masks from a counter hash instead of `jax.random.bits` (40% of a bfloat16 training step on
CPU, against 2%: bench/step_profile.py).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def fmix32(h: jax.Array) -> jax.Array:
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
    state = fmix32(state ^ codes[..., level, None]) + jnp.uint32(0x7F4A7C15)
  return state


def hash_seeds(shape: tuple[int, ...], num_hashes: int) -> jax.Array:
  """The chains' start states [*shape, num_hashes]: hash k is seeded by k."""
  return jnp.broadcast_to(jnp.arange(1, num_hashes + 1, dtype=jnp.uint32) * jnp.uint32(0x9E3779B9),
                          (*shape, num_hashes))


def hash_rows(state: jax.Array, num_buckets: int) -> jax.Array:
  """A chain's state [..., num_hashes] -> table rows in [0, num_buckets) (int32)."""
  return (fmix32(state) % jnp.uint32(num_buckets)).astype(jnp.int32)


def item_buckets(codes: jax.Array, num_buckets: int, num_hashes: int) -> jax.Array:
  """Codes [..., id_length] (ints) -> [..., num_hashes] rows in [0, num_buckets): hash k of
  an item is an fmix32 chain over its codes, seeded by k. Two items with different IDs share
  all their rows with probability about num_buckets ** -num_hashes."""
  return hash_rows(hash_chain(hash_seeds(codes.shape[:-1], num_hashes), codes), num_buckets)


def item_keys(tokens: jax.Array, seed: jax.Array | int) -> jax.Array:
  """Items' tokens [..., id_length] -> a uint32 key per item [...]: an fmix32 chain over
  the tokens seeded by `seed` (the follower memory picks a seed that keeps its items apart)."""
  start = jnp.broadcast_to(jnp.asarray(seed, jnp.uint32), (*tokens.shape[:-1], 1))
  return hash_chain(start, tokens)[..., 0]


def distinct_keys(item_tokens: np.ndarray, max_seeds: int = 64) -> tuple[int, np.ndarray]:
  """(the first seed below max_seeds under which `item_keys` gives the items [items, L]
  distinct keys, those keys [items]): lookups by key then find each item exactly."""
  for seed in range(max_seeds):
    keys = np.asarray(item_keys(jnp.asarray(item_tokens), seed))
    if len(np.unique(keys)) == len(keys):
      return seed, keys
  raise ValueError(f"no seed below {max_seeds} gives {len(item_tokens)} items distinct keys "
                   "(are two items' tokens the same?)")


def find_key(sorted_keys: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Keys [...] in sorted_keys [n] -> (their positions [...], clipped into range; whether
  the key is there)."""
  i = jnp.clip(jnp.searchsorted(sorted_keys, key), 0, sorted_keys.shape[0] - 1)
  return i, sorted_keys[i] == key


def dropout_keep(key: jax.Array, shape: tuple[int, ...], rate: float) -> jax.Array:
  """Bool mask of `shape`, each element True with probability 1 - rate (to 2^-32).

  A counter-based hash: element i of the flattened shape gets fmix(fmix(i ^ k0) + k1) for a
  2 x uint32 key (k0, k1) drawn from the key, so each element costs a few vector integer
  ops. Two keys give unrelated masks: the inner hash permutes the counters by k0 before k1
  shifts them.
  """
  k0, k1 = jax.random.bits(key, (2,), jnp.uint32)
  counter = jnp.arange(math.prod(shape), dtype=jnp.uint32).reshape(shape)
  h = fmix32(fmix32(counter ^ k0) + k1)
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
