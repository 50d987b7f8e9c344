"""Beam search over Semantic-ID tokens, constrained to the prefixes of real items.

Pure functions over arrays, in the manner of t5x's decoding.py: the search
takes a `step_fn(token, cache, position, block) -> (logits, cache)` and runs fully on device
(`lax.fori_loop` would do; the ID length is fixed and small, so the loop is
unrolled at trace time). The valid IDs are a trie stored as arrays: per
level, the sorted children of each prefix node (CSR), so memory grows with
the number of items, never with codebook_size ** levels.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

NEG_INF = -1e9


@dataclasses.dataclass(frozen=True)
class Trie:
  """Prefix trie of item IDs (each level's codes relative to its block).

  Node ids are per level: level l has one node per distinct prefix of length
  l (level 0: the root, node 0). For node n of level l, its children are
  edges child_start[l][n] : child_start[l][n] + child_count[l][n] of
  child_code[l] / child_node[l]. Leaves (level L) map to items by leaf_item.
  """
  child_start: tuple[np.ndarray, ...]
  child_count: tuple[np.ndarray, ...]
  child_code: tuple[np.ndarray, ...]
  child_node: tuple[np.ndarray, ...]
  leaf_item: np.ndarray
  max_children: tuple[int, ...]

  @classmethod
  def build(cls, ids: np.ndarray) -> "Trie":
    """ids [num_items, L], unique rows."""
    ids = np.asarray(ids, np.int64)
    n, depth = ids.shape
    starts, counts, codes, nodes, max_children = [], [], [], [], []
    parent = np.zeros(n, np.int64)  # node of each item's prefix at the current level
    for level in range(depth):
      # Distinct (parent node, code) pairs are this level's edges, sorted.
      pairs, child = np.unique(np.stack([parent, ids[:, level]], 1), axis=0, return_inverse=True)
      child = child.ravel()
      num_parents = int(parent.max()) + 1
      count = np.bincount(pairs[:, 0], minlength=num_parents)
      starts.append(np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int32))
      counts.append(count.astype(np.int32))
      codes.append(pairs[:, 1].astype(np.int32))
      nodes.append(np.arange(len(pairs), dtype=np.int32))  # edge e leads to node e of level+1
      max_children.append(int(count.max()))
      parent = child
    leaf_item = np.full(int(parent.max()) + 1, -1, np.int32)
    leaf_item[parent] = np.arange(n, dtype=np.int32)
    if (np.bincount(parent) > 1).any():
      raise ValueError("item IDs are not unique: make them unique (collisions.make_unique) first")
    return cls(tuple(starts), tuple(counts), tuple(codes), tuple(nodes), leaf_item,
               tuple(max_children))

  def children(self, level: int, node: jax.Array, block_size: int) -> tuple[jax.Array, jax.Array]:
    """For nodes [...] of `level`: allowed mask [..., block_size] and child node [..., block_size]."""
    width = self.max_children[level]
    start = jnp.asarray(self.child_start[level])[node]
    count = jnp.asarray(self.child_count[level])[node]
    j = jnp.arange(width)
    edge = start[..., None] + j
    valid = j < count[..., None]
    edge = jnp.where(valid, edge, 0)
    code = jnp.where(valid, jnp.asarray(self.child_code[level])[edge], block_size)  # OOB: dropped
    child = jnp.asarray(self.child_node[level])[edge]
    flat = code.reshape(-1, width)
    rows = jnp.arange(flat.shape[0])[:, None]
    mask = jnp.zeros((flat.shape[0], block_size), bool).at[rows, flat].set(True, mode="drop")
    nodes = jnp.zeros((flat.shape[0], block_size), jnp.int32).at[rows, flat].set(
        child.reshape(-1, width), mode="drop")
    shape = node.shape + (block_size,)
    return mask.reshape(shape), nodes.reshape(shape)


def _gather_beams(tree: Any, parent: jax.Array, batch: int, beams: int) -> Any:
  """Reorders every [batch * beams, ...] leaf by parent beam [batch, beams]."""
  flat = (jnp.arange(batch)[:, None] * beams + parent).reshape(-1)

  def gather(x):
    if x.ndim == 0 or x.shape[0] != batch * beams:
      return x
    return x[flat]

  return jax.tree.map(gather, tree)


def beam_search(step_fn: Callable[[jax.Array, Any, int, tuple[int, int] | None],
                                  tuple[jax.Array, Any]],
                cache: Any, batch: int, beams: int, level_offsets: np.ndarray,
                level_sizes: tuple[int, ...], trie: Trie | None,
                expand_cache: Callable[[Any], Any] | None = None, start_token: int = 0,
                block_softmax: bool = True, exclude: jax.Array | None = None):
  """Top-`beams` Semantic IDs per row.

  step_fn(tokens [rows], cache, position, block) -> (logits [rows, ...], cache):
  tokens are the decoder inputs at `position` (0: the start token, l: level l-1's
  code); block = (start, size) asks for only those vocabulary columns
  ([rows, size]) and None for all of them. The first step, identical for every
  beam, runs on one hypothesis per row (rows = batch), the later ones on
  rows = batch * beams. The step_fn must accept a cache the first step left
  with `batch` rows (our models share such entries across a row's beams), or
  expand_cache must make it [batch * beams] (each hypothesis repeated). Every
  cache leaf with leading dim batch * beams is reordered with its beam.

  Level l only ever emits tokens of its block, and with block_softmax (the
  default) it is scored by the softmax over that block; otherwise over the
  whole vocabulary, as in training (for a trained model the two agree, the
  mass outside the level's block being ~0), at ~vocab/block times the logits
  cost. With a trie every beam is a prefix of a real item; without, any code
  of the block may follow.

  exclude [batch, E, L] (codes relative to each block; rows with a negative code are
  ignored): IDs a row's beams may not end in, e.g. the items of the user's history. The
  last level masks them: their beams go to the next best of that level's candidates (the
  beams' prefixes x codes), and where an excluded item is the only one under its prefix
  (most items, when 3 codes tell items apart) the list is the search's own with it taken
  out, one beam shorter.

  Returns (codes [batch, beams, L] relative to each block, log-probs [batch, beams],
  items [batch, beams] (-1 where a beam is not an item; needs the trie)).
  """
  depth = len(level_sizes)
  scores = jnp.zeros((batch, 1))
  tokens = jnp.full((batch,), start_token, jnp.int32)
  node = jnp.zeros((batch, 1), jnp.int32)
  codes = jnp.zeros((batch, 1, 0), jnp.int32)
  for level in range(depth):
    size, offset = level_sizes[level], int(level_offsets[level])
    hyps = scores.shape[1]  # 1 at the first level, then `beams`
    logits, cache = step_fn(tokens, cache, level, (offset, size) if block_softmax else None)
    logp = jax.nn.log_softmax(logits.astype(jnp.float32))
    if not block_softmax:
      logp = jax.lax.dynamic_slice_in_dim(logp, offset, size, axis=-1)
    logp = logp.reshape(batch, hyps, size)
    if trie is not None:
      allowed, child = trie.children(level, node, size)
      logp = jnp.where(allowed, logp, NEG_INF)
    if exclude is not None and level == depth - 1:
      logp = jnp.where(_excluded(codes, exclude, size), NEG_INF, logp)
    cand = (scores[:, :, None] + logp).reshape(batch, hyps * size)
    if hyps * size < beams:  # fewer candidates than beams: pad with impossible ones
      cand = jnp.pad(cand, ((0, 0), (0, beams - hyps * size)), constant_values=2 * NEG_INF)
    scores, flat = jax.lax.top_k(cand, beams)
    flat = jnp.minimum(flat, hyps * size - 1)
    parent, code = flat // size, flat % size
    if trie is not None:
      node = jnp.take_along_axis(child.reshape(batch, hyps * size), flat, 1)
    codes = jnp.concatenate([jnp.take_along_axis(codes, parent[..., None], 1), code[..., None]], -1)
    if level == 0:
      if expand_cache is not None:
        cache = expand_cache(cache)
    elif level < depth - 1:
      cache = _gather_beams(cache, parent, batch, beams)
    tokens = (code + offset).reshape(-1)
  items = (jnp.asarray(trie.leaf_item)[node] if trie is not None
           else jnp.full((batch, beams), -1, jnp.int32))
  items = jnp.where(scores > NEG_INF / 2, items, -1)  # fewer valid items than beams
  return codes, scores, items


def _excluded(prefix: jax.Array, exclude: jax.Array, size: int) -> jax.Array:
  """[batch, hyps, size] bool: the beam's prefix [batch, hyps, L - 1] followed by code c is
  one of the row's excluded IDs [batch, E, L] (rows with a negative code never match)."""
  real = (exclude >= 0).all(-1)  # [batch, E]
  same_prefix = (prefix[:, :, None, :] == exclude[:, None, :, :-1]).all(-1) & real[:, None]
  last = exclude[:, None, :, -1, None] == jnp.arange(size)  # [batch, 1, E, size]
  return (same_prefix[..., None] & last).any(2)


def lookup_items(codes: np.ndarray, ids: np.ndarray) -> np.ndarray:
  """Item index of each code tuple [..., L]; -1 where no item has that ID (host side)."""
  table = {tuple(r): i for i, r in enumerate(np.asarray(ids).tolist())}
  flat = np.asarray(codes).reshape(-1, codes.shape[-1]).tolist()
  return np.array([table.get(tuple(r), -1) for r in flat], np.int32).reshape(codes.shape[:-1])
