"""Collision-free Semantic IDs: a last token that tells apart items with equal codes."""

from __future__ import annotations

import numpy as np

IDS_FILE = "semantic_ids.npy"  # where a Semantic-ID folder keeps its [num_items, levels + 1] IDs


def make_unique(codes: np.ndarray) -> np.ndarray:
  """codes [n, levels] -> ids [n, levels + 1], unique rows.

  The extra token is the item's index within its group of identical codes
  (0, 1, ... in item order); every item gets it, so all IDs have one length.
  """
  codes = np.asarray(codes, np.int32)
  if codes.ndim != 2:
    raise ValueError(f"codes must be [num_items, levels], got shape {codes.shape}")
  _, group = np.unique(codes, axis=0, return_inverse=True)
  group = group.ravel()
  order = np.argsort(group, kind="stable")
  starts = np.r_[0, np.flatnonzero(np.diff(group[order])) + 1]
  sizes = np.diff(np.r_[starts, len(order)])
  rank = np.empty(len(codes), np.int32)
  rank[order] = np.arange(len(order)) - np.repeat(starts, sizes)
  return np.concatenate([codes, rank[:, None]], axis=1)


def collision_stats(codes: np.ndarray) -> dict:
  """Distinct prefixes, share of items whose codes collide, largest group."""
  _, counts = np.unique(np.asarray(codes), axis=0, return_counts=True)
  return {"distinct_prefixes": int(len(counts)),
          "items_in_collision": float(counts[counts > 1].sum() / max(len(codes), 1)),
          "largest_group": int(counts.max()) if len(counts) else 0}


def largest_groups(codes: np.ndarray, k: int = 3) -> list[list[int]]:
  """The item indices of the k largest groups of identical codes (size > 1), largest
  first; groups of one size in the order of their first item."""
  codes = np.asarray(codes)
  if len(codes) == 0:
    return []
  _, first, group, counts = np.unique(codes, axis=0, return_index=True, return_inverse=True,
                                      return_counts=True)
  group = group.ravel()
  order = [g for g in np.lexsort((first, -counts)) if counts[g] > 1][:k]
  return [np.flatnonzero(group == g).tolist() for g in order]
