"""Leave-one-out retrieval metrics over ranked item lists (full item set, no sampling)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

KS = (5, 10)
METRIC_NAMES = tuple(f"{m}@{k}" for m in ("recall", "ndcg") for k in KS)  # the results' columns


def hit_ranks(ranked: np.ndarray, targets: np.ndarray) -> np.ndarray:
  """0-based rank of each target in its list [n, K], or -1 if absent."""
  ranked, targets = np.asarray(ranked), np.asarray(targets)
  hits = ranked == targets[:, None]
  return np.where(hits.any(1), hits.argmax(1), -1)


def user_recall(ranked: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
  """[n] 1.0 where the user's one held-out item is in their top k, else 0.0."""
  return recall_from_ranks(hit_ranks(np.asarray(ranked)[:, :k], targets), k)


def user_ndcg(ranked: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
  """[n] 1 / log2(rank + 2) for a hit in the top k, else 0 (one relevant item, IDCG = 1)."""
  return ndcg_from_ranks(hit_ranks(np.asarray(ranked)[:, :k], targets), k)


def recall_from_ranks(ranks: np.ndarray, k: int) -> np.ndarray:
  """`user_recall` from `hit_ranks` (any list length >= k)."""
  ranks = np.asarray(ranks)
  return ((ranks >= 0) & (ranks < k)).astype(np.float64)


def ndcg_from_ranks(ranks: np.ndarray, k: int) -> np.ndarray:
  """`user_ndcg` from `hit_ranks` (any list length >= k)."""
  ranks = np.asarray(ranks)
  return np.where((ranks >= 0) & (ranks < k), 1.0 / np.log2(np.maximum(ranks, 0) + 2.0), 0.0)


def encode_hits(ranks: np.ndarray) -> str:
  """`hit_ranks` as one line, "user:rank user:rank ...", over the users whose target is in
  their list: small enough for a results record (about a tenth of the users hit at 20), and
  exact for every per-user metric at k up to the list length, so committed records pair
  (`paired_difference`) after the runs' lists are gone."""
  ranks = np.asarray(ranks)
  return " ".join(f"{u}:{ranks[u]}" for u in np.flatnonzero(ranks >= 0))


def decode_hits(hits: str, users: int) -> np.ndarray:
  """The [users] `hit_ranks` that `encode_hits` wrote (-1: no hit)."""
  ranks = np.full(users, -1, np.int64)
  pairs = np.array([p.split(":") for p in hits.split()], np.int64).reshape(-1, 2)
  if len(pairs) and (pairs.min() < 0 or pairs[:, 0].max() >= users):
    raise ValueError(f"hits name users or ranks outside 0..{users - 1}")
  ranks[pairs[:, 0]] = pairs[:, 1]
  return ranks


def recall_at_k(ranked: np.ndarray, targets: np.ndarray, k: int) -> float:
  """Share of users whose one held-out item is in their top k."""
  r = user_recall(ranked, targets, k)
  return float(r.mean()) if len(r) else 0.0


def ndcg_at_k(ranked: np.ndarray, targets: np.ndarray, k: int) -> float:
  """`user_ndcg` averaged over the users."""
  r = user_ndcg(ranked, targets, k)
  return float(r.mean()) if len(r) else 0.0


def paired_difference(a: np.ndarray, b: np.ndarray, z: float = 1.96) -> dict[str, float]:
  """Mean of a - b over the same users ([n] each, e.g. `user_ndcg` of two models), its
  standard error std(a - b) / sqrt(n), the normal interval at `z` (1.96: 95%) and
  difference / SE. Pairing cancels what the users share: which targets are easy."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
    raise ValueError(f"paired_difference needs two [n] arrays over the same n >= 2 users, "
                     f"got shapes {a.shape} and {b.shape}")
  d = a - b
  mean, se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))
  if se > 0:
    ratio = mean / se
  else:  # every user differs by the same amount
    ratio = math.copysign(math.inf, mean) if mean else 0.0
  return {"a": float(a.mean()), "b": float(b.mean()), "difference": mean, "se": se,
          "low": mean - z * se, "high": mean + z * se, "z": ratio}


def retrieval_metrics(ranked: np.ndarray, targets: np.ndarray, ks: Sequence[int] = KS,
                      histories: Sequence[np.ndarray] | None = None) -> dict[str, float]:
  """Recall and NDCG at each k; with histories, of the lists without each user's own
  history items (`without_history`, the `EXCLUDE_HISTORY` protocol)."""
  if histories is not None:
    ranked = without_history(ranked, histories, max(ks))
  out = {}
  for k in ks:
    out[f"recall@{k}"] = recall_at_k(ranked, targets, k)
    out[f"ndcg@{k}"] = ndcg_at_k(ranked, targets, k)
  return out


def without_history(ranked: np.ndarray, histories: Sequence[np.ndarray], k: int) -> np.ndarray:
  """The evaluation option `exclude_history` for any ranked list: each row of ranked [n, K]
  without the items of that user's history (the example's, as the model reads it), order
  kept, cut to k; -1 pads a row left short. Give K >= k + the longest history and no row
  is short. TIGER excludes them inside its beam search instead (`decoding.beam_search`)."""
  ranked = np.asarray(ranked)
  out = np.full((len(ranked), k), -1, np.int64)
  for u, (row, history) in enumerate(zip(ranked, histories)):
    kept = row[(row >= 0) & ~np.isin(row, history)][:k]
    out[u, :len(kept)] = kept
  return out


def invalid_rate(ranked: np.ndarray, k: int | None = None) -> float:
  """Share of the top-k beams that are not a real item (-1)."""
  r = np.asarray(ranked)[:, :k] if k else np.asarray(ranked)
  return float(np.mean(r < 0)) if r.size else 0.0


def seqio_retrieval_metric(targets: Sequence[int], predictions: Sequence[Sequence[int]]) -> dict:
  """A seqio `metric_fn`: targets = held-out items, predictions = ranked item lists."""
  return retrieval_metrics(np.asarray(list(predictions)), np.asarray(list(targets)))


def cap_cold(ranked: np.ndarray, is_cold: np.ndarray, k: int, epsilon: float) -> np.ndarray:
  """The paper's cold-start knob: top-k lists [n, k] in which at most ceil(epsilon * k)
  items are cold-start items; the rest keep their order (-1 pads a short list)."""
  cap = int(np.ceil(epsilon * k))
  out = np.full((len(ranked), k), -1, np.int64)
  for u, row in enumerate(np.asarray(ranked)):
    picked, cold = [], 0
    for item in row:
      if item < 0:
        continue
      if is_cold[item]:
        if cold >= cap:
          continue
        cold += 1
      picked.append(item)
      if len(picked) == k:
        break
    out[u, :len(picked)] = picked
  return out


def cold_prefix_share(ids: np.ndarray, is_cold: np.ndarray, prefix_len: int) -> float:
  """The share of cold items whose first `prefix_len` codes some warm item's ID also starts
  with: the cold targets that `add_cold_by_prefix` can reach at all."""
  ids = np.asarray(ids)
  warm = {tuple(row) for row in ids[~is_cold, :prefix_len].tolist()}
  cold = ids[is_cold, :prefix_len].tolist()
  return float(np.mean([tuple(row) in warm for row in cold])) if cold else 0.0


def add_cold_by_prefix(ranked: np.ndarray, ids: np.ndarray, is_cold: np.ndarray,
                       prefix_len: int) -> np.ndarray:
  """Cold-start retrieval by Semantic ID: after each retrieved item, the cold items whose ID
  shares its first `prefix_len` codes (they were never a training target, so the model
  rarely decodes their exact ID). ranked [n, k] -> [n, k'] (-1 pads); order otherwise kept."""
  ids = np.asarray(ids)
  by_prefix: dict[tuple, list[int]] = {}
  for item in np.flatnonzero(is_cold):
    by_prefix.setdefault(tuple(ids[item, :prefix_len]), []).append(int(item))
  rows = []
  for row in np.asarray(ranked):
    out, seen = [], set()
    for item in row[row >= 0].tolist():
      for i in [item] + by_prefix.get(tuple(ids[item, :prefix_len]), []):
        if i not in seen:
          seen.add(i)
          out.append(i)
    rows.append(out)
  width = max([len(r) for r in rows] + [ranked.shape[1]])
  result = np.full((len(rows), width), -1, np.int64)
  for u, r in enumerate(rows):
    result[u, :len(r)] = r
  return result
