"""Cold-start rows of the results table: TIGER's saved ranked lists against content-KNN,
on the users whose held-out item was never seen in training (the paper's experiment)."""

from __future__ import annotations

import os

import numpy as np

from tiger_jax import baselines, io_utils, metrics as metrics_lib, retrieval
from tiger_jax.data import Dataset


def cold_start_rows(dataset: Dataset, ranked_path: str, data_dir: str, targets, histories,
                    epsilon: float, ids: np.ndarray,
                    prefix_len: int | None = None, exclude_history: bool = False) -> dict[str, dict]:
  """Recall/NDCG on the users whose target is a cold-start item, top-K capped at epsilon * K
  cold items: TIGER (from its ranked lists saved at `ranked_path` by `evaluate`: its beams
  alone, and with the cold items that share the first `prefix_len` codes of a retrieved
  item; default: all but the collision token) against content-KNN on the same users. The
  prefix row also gives `cold_prefix_share`: the share of cold items whose prefix some
  warm item has (`metrics.cold_prefix_share`), the cold targets that row can reach.
  exclude_history: every list leaves out the user's own history items, as the evaluation
  that wrote `ranked_path` did (`metrics.without_history`)."""
  is_cold = np.zeros(dataset.num_items, bool)
  is_cold[dataset.cold_items] = True
  targets = np.asarray(targets)
  ranked = retrieval.load_ranked(ranked_path, targets)
  users = np.flatnonzero(is_cold[targets])
  vectors = io_utils.load_array(os.path.join(data_dir, "item_vectors.npy"))
  knn = baselines.content_knn(vectors, [histories[u] for u in users], k=50)
  prefix_len = prefix_len or ids.shape[1] - 1
  by_prefix = metrics_lib.add_cold_by_prefix(ranked[users], ids, is_cold, prefix_len)
  reach = {"cold_prefix_share": metrics_lib.cold_prefix_share(ids, is_cold, prefix_len)}
  out = {}
  for name, lists, extra in (
      (f"TIGER beams, cold targets (eps={epsilon})", ranked[users], {}),
      (f"TIGER + cold items by {prefix_len}-code prefix, cold targets (eps={epsilon})",
       by_prefix, reach),
      (f"content-KNN, cold targets (eps={epsilon})", knn, {})):
    if exclude_history:
      lists = metrics_lib.without_history(lists, [histories[u] for u in users], lists.shape[1])
    out[name] = {**metrics_lib.retrieval_metrics(metrics_lib.cap_cold(lists, is_cold, 10, epsilon),
                                                 targets[users]),
                 "users": int(len(users)), **extra}
  return out
