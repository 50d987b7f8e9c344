"""Cheap yardsticks on the same splits: most-popular and first-order item transitions."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp


def train_pairs(train_sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
  """(previous items, next items): every consecutive pair of the training sequences."""
  prev = [s[:-1] for s in train_sequences if len(s) > 1]
  nxt = [s[1:] for s in train_sequences if len(s) > 1]
  return (np.concatenate(prev), np.concatenate(nxt)) if prev else (np.zeros(0, int), np.zeros(0, int))


def followers(train_sequences: Sequence[np.ndarray], num_items: int,
              max_followers: int) -> tuple[np.ndarray, np.ndarray]:
  """Each item's most frequent next items in the training sequences, as item-transition
  counts them: (items [num_items, max_followers], -1 where fewer; their counts, 0 there),
  most frequent first, ties by item index."""
  prev, nxt = train_pairs(train_sequences)
  pairs, counts = np.unique(np.stack([prev, nxt], 1).reshape(-1, 2), axis=0, return_counts=True)
  order = np.lexsort((pairs[:, 1], -counts, pairs[:, 0]))
  pairs, counts = pairs[order], counts[order]
  rank = np.arange(len(pairs)) - np.searchsorted(pairs[:, 0], pairs[:, 0])
  keep = rank < max_followers
  items = np.full((num_items, max_followers), -1, np.int64)
  out_counts = np.zeros((num_items, max_followers), np.int64)
  items[pairs[keep, 0], rank[keep]] = pairs[keep, 1]
  out_counts[pairs[keep, 0], rank[keep]] = counts[keep]
  return items, out_counts


def most_popular(train_sequences: Sequence[np.ndarray], num_items: int, histories: Sequence[np.ndarray],
                 k: int = 10) -> np.ndarray:
  """The k items seen most in training histories, for every user; [num_users, k]."""
  counts = np.bincount(np.concatenate(list(train_sequences)), minlength=num_items)
  top = np.argsort(-counts, kind="stable")[:k]
  return np.tile(top, (len(histories), 1))


# item_transition's source weights for the last three history items, picked among five
# sets on Beauty validation NDCG@10 (bench/transition_sources.py; Toys' best differs by
# 0.0004): the LAST_ITEMS_ROW floor of the results tables.
LAST_ITEMS_WEIGHTS = (1.0, 0.3, 0.1)
LAST_ITEMS_ROW = f"item-transition, last {len(LAST_ITEMS_WEIGHTS)} items"


def item_transition(train_sequences: Sequence[np.ndarray], num_items: int,
                    histories: Sequence[np.ndarray], k: int = 10,
                    source_weights: Sequence[float] = (1.0,)) -> np.ndarray:
  """Items that followed the user's last item in training sequences, by count; popularity
  fills up. source_weights (w_0, w_1, ...) score an item by sum_j w_j * (times it followed
  the j-th last history item), j = 0 the last: the default is the first-order model."""
  prev, nxt = train_pairs(train_sequences)
  trans = sp.csr_matrix((np.ones(len(prev)), (prev, nxt)), shape=(num_items, num_items))
  trans.sum_duplicates()
  popularity = np.bincount(np.concatenate(list(train_sequences)), minlength=num_items)
  pop_order = np.argsort(-popularity, kind="stable")
  out = np.empty((len(histories), k), np.int64)
  for u, h in enumerate(histories):
    row = sum(w * trans.getrow(int(h[-1 - j])) for j, w in enumerate(source_weights)
              if j < len(h))
    row.sum_duplicates()
    order = row.indices[np.lexsort((-popularity[row.indices], -row.data))][:k]
    if len(order) < k:
      fill = pop_order[~np.isin(pop_order, order)][:k - len(order)]
      order = np.concatenate([order, fill])
    out[u] = order
  return out


def item_transition_last_items(train_sequences: Sequence[np.ndarray], num_items: int,
                               histories: Sequence[np.ndarray], k: int = 10) -> np.ndarray:
  """`item_transition` over the last three history items at LAST_ITEMS_WEIGHTS: the
  LAST_ITEMS_ROW floor."""
  return item_transition(train_sequences, num_items, histories, k, LAST_ITEMS_WEIGHTS)


def content_knn(item_vectors: np.ndarray, histories: Sequence[np.ndarray], k: int = 10,
                batch_size: int = 1024) -> np.ndarray:
  """Items most similar (cosine) in content to the user's last item, itself excluded."""
  v = item_vectors / np.maximum(np.linalg.norm(item_vectors, axis=1, keepdims=True), 1e-12)
  last = np.array([h[-1] for h in histories])
  out = []
  for i in range(0, len(last), batch_size):
    sim = v[last[i:i + batch_size]] @ v.T
    sim[np.arange(len(sim)), last[i:i + batch_size]] = -np.inf
    out.append(np.argsort(-sim, axis=1, kind="stable")[:, :k])
  return np.concatenate(out) if out else np.zeros((0, k), np.int64)
