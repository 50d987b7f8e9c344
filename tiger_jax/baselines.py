"""Cheap yardsticks on the same splits: most-popular and first-order item transitions."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from tiger_jax import metrics as metrics_lib


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


# Content-KNN queries (`content_knn`): the last history item; the mean of the history's unit
# vectors; a recency-weighted mean (weight RECENCY_DECAY ** age, age 0 = the last item).
KNN_QUERIES = ("last", "mean", "recency")
RECENCY_DECAY = 0.7


def normalized(item_vectors: np.ndarray) -> np.ndarray:
  """Unit-length rows (zero rows stay zero); float32."""
  v = np.asarray(item_vectors, np.float32)
  return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def knn_queries(unit_vectors: np.ndarray, histories: Sequence[np.ndarray], query: str = "last",
                decay: float = RECENCY_DECAY) -> np.ndarray:
  """One unit query vector per history [n, d], made as KNN_QUERIES says."""
  if query not in KNN_QUERIES:
    raise ValueError(f"content-KNN query {query!r}: expected one of {KNN_QUERIES}")
  out = np.zeros((len(histories), unit_vectors.shape[1]), np.float32)
  for u, h in enumerate(histories):
    h = np.asarray(h)
    if query == "last":
      h = h[-1:]
    weights = decay ** np.arange(len(h))[::-1] if query == "recency" else np.ones(len(h))
    out[u] = weights @ unit_vectors[h]
  return normalized(out)


def content_knn(item_vectors: np.ndarray, histories: Sequence[np.ndarray], k: int = 10,
                batch_size: int = 1024, query: str = "last", decay: float = RECENCY_DECAY,
                candidates: np.ndarray | None = None) -> np.ndarray:
  """Items most similar (cosine) in content to the user's query (`knn_queries`: the last
  item by default), the items the query is made of excluded; [n, k], -1 pads when fewer
  candidates. candidates: the item indices that may be returned (default: every item),
  e.g. a catalog's new items."""
  v = normalized(item_vectors)
  pool = np.arange(len(v)) if candidates is None else np.asarray(candidates, np.int64)
  q = knn_queries(v, histories, query, decay)
  out = np.full((len(histories), k), -1, np.int64)
  for i in range(0, len(histories), batch_size):
    sim = q[i:i + batch_size] @ v[pool].T
    for row, h in enumerate(histories[i:i + batch_size]):
      used = np.asarray(h)[-1:] if query == "last" else np.asarray(h)
      sim[row, np.isin(pool, used)] = -np.inf
    top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    found = np.take_along_axis(sim, top, 1) > -np.inf
    out[i:i + len(top), :top.shape[1]] = np.where(found, pool[top], -1)
  return out


def choose_knn_query(item_vectors: np.ndarray, histories: Sequence[np.ndarray],
                     targets: np.ndarray, candidates: np.ndarray | None = None,
                     k: int = 10) -> tuple[str, dict[str, float]]:
  """The KNN query with the best NDCG@k on these (validation) users, and every query's
  NDCG@k; ties go to the earlier of KNN_QUERIES."""
  scores = {}
  for query in KNN_QUERIES:
    lists = content_knn(item_vectors, histories, k, query=query, candidates=candidates)
    scores[query] = float(metrics_lib.retrieval_metrics(lists, targets, ks=(k,))[f"ndcg@{k}"])
  return max(KNN_QUERIES, key=lambda q: (scores[q], -KNN_QUERIES.index(q))), scores
