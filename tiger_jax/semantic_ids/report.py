r"""Statistics of a set of Semantic IDs, and a plot of per-level codeword usage.

  python -m tiger_jax.semantic_ids.report --semantic_id_dir=RUN/semantic_ids [--groups=3]

prints the collision figures of IDs already computed, with the largest groups of items
that share all their codes and the start of each one's text.

The report gives per-level codeword usage and perplexity, collisions (share of
items whose codes collide, largest group), the reconstruction error, and,
where items have categories, semantic coherence: of the item pairs that share
a code prefix, the share that also share a leaf category, against the share
among random pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

import numpy as np

from tiger_jax import data as data_lib, io_utils
from tiger_jax.semantic_ids.collisions import IDS_FILE, collision_stats, largest_groups


def level_usage(codes: np.ndarray, codebook_size: int) -> list[dict]:
  """Per level: codewords used, and perplexity exp(H) of the code distribution."""
  out = []
  for level in range(codes.shape[1]):
    counts = np.bincount(codes[:, level], minlength=codebook_size)
    p = counts[counts > 0] / counts.sum()
    out.append({"used_codewords": int((counts > 0).sum()),
                "utilisation": float((counts > 0).sum() / codebook_size),
                "perplexity": float(np.exp(-(p * np.log(p)).sum()))})
  return out


def _share_category(cats: list[set], a: np.ndarray, b: np.ndarray) -> float:
  return float(np.mean([bool(cats[i] & cats[j]) for i, j in zip(a, b)])) if len(a) else float("nan")


def _prefix_pairs(groups: np.ndarray, max_pairs: int, rng: np.random.Generator):
  """Pairs (a, b) of distinct items with equal `groups` value: all of them, or a uniform sample."""
  order = np.argsort(groups, kind="stable")
  starts = np.r_[0, np.flatnonzero(np.diff(groups[order])) + 1]
  sizes = np.diff(np.r_[starts, len(order)])
  pairs = sizes * (sizes - 1) // 2
  total = int(pairs.sum())
  if total == 0:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), 0
  if total <= max_pairs:
    a, b = [], []
    for start, size in zip(starts[sizes > 1], sizes[sizes > 1]):
      i, j = np.triu_indices(size, 1)
      a.append(order[start + i])
      b.append(order[start + j])
    return np.concatenate(a), np.concatenate(b), total
  g = rng.choice(len(sizes), max_pairs, p=pairs / total)  # a pair's group, by its share of pairs
  i = rng.integers(0, sizes[g])
  j = (i + rng.integers(1, sizes[g])) % sizes[g]  # another member of the same group
  return order[starts[g] + i], order[starts[g] + j], total


def semantic_coherence(codes: np.ndarray, categories: Sequence[Sequence[str]],
                       max_pairs: int = 200_000, seed: int = 0) -> dict:
  """Share of item pairs sharing a leaf category, by shared code prefix, against random pairs.

  codes: [n, levels]; categories: per item, its leaf category names (items
  with none are left out). Returns {'prefix_<l>': {'pairs', 'same_category'}
  for l = 1..levels, 'random_pairs': {...}}; pairs are enumerated up to
  `max_pairs` per prefix length, sampled uniformly beyond.
  """
  rng = np.random.default_rng(seed)
  keep = np.array([bool(c) for c in categories])
  cats = [set(c) for c in categories]
  idx = np.flatnonzero(keep)
  if len(idx) < 2:
    return {}
  codes = np.asarray(codes)[idx]
  out = {}
  for level in range(1, codes.shape[1] + 1):
    _, groups = np.unique(codes[:, :level], axis=0, return_inverse=True)
    a, b, total = _prefix_pairs(groups.ravel(), max_pairs, rng)
    out[f"prefix_{level}"] = {"pairs": total, "same_category": _share_category(cats, idx[a], idx[b])}
  a = rng.integers(0, len(idx), max_pairs)
  b = (a + rng.integers(1, len(idx), max_pairs)) % len(idx)
  out["random_pairs"] = {"pairs": max_pairs, "same_category": _share_category(cats, idx[a], idx[b])}
  return out


def collision_groups(codes: np.ndarray, texts: Sequence[str] | None, k: int = 3,
                     chars: int = 80) -> list[dict]:
  """The k largest collision groups: size, item indices and, where items have text, the
  start of each item's text (what the 4th token has to tell apart)."""
  out = []
  for items in largest_groups(codes, k):
    group = {"size": len(items), "items": items}
    if texts is not None:
      group["texts"] = [texts[i][:chars] for i in items]
    out.append(group)
  return out


def make_report(codes: np.ndarray, ids: np.ndarray, codebook_size: int, extra: dict,
                categories: Sequence[Sequence[str]] | None = None,
                texts: Sequence[str] | None = None) -> dict:
  stats = collision_stats(codes)
  rep = {"num_items": int(len(codes)), "levels": level_usage(codes, codebook_size),
         **stats, "largest_groups": collision_groups(codes, texts),
         "fourth_token_range": int(ids[:, -1].max()) + 1 if len(ids) else 0,
         "unique_ids": bool(len(np.unique(ids, axis=0)) == len(ids)), **extra}
  if categories is not None:
    rep["semantic_coherence"] = semantic_coherence(codes, categories)
  return rep


def plot_usage(codes: np.ndarray, codebook_size: int, path: str, title: str = "",
               rep: dict | None = None) -> None:
  """PNG: per level, how many items use each codeword (sorted); with `rep`, a panel of
  semantic coherence by prefix length and the collision and reconstruction figures."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  levels = codes.shape[1]
  coherence = (rep or {}).get("semantic_coherence")
  panels = levels + (1 if coherence else 0)
  fig, axes = plt.subplots(1, panels, figsize=(4 * panels, 3.4))
  axes = np.atleast_1d(axes)
  for level, (ax, usage) in enumerate(zip(axes[:levels], level_usage(codes, codebook_size))):
    counts = np.sort(np.bincount(codes[:, level], minlength=codebook_size))[::-1]
    ax.bar(np.arange(codebook_size), counts, width=1.0, color="C0")
    ax.set_title(f"level {level + 1}: {usage['used_codewords']}/{codebook_size} used, "
                 f"perplexity {usage['perplexity']:.0f}", fontsize=9)
    ax.set_xlabel("codeword (sorted by use)")
    ax.set_yscale("log")
  axes[0].set_ylabel("items")
  if coherence:
    ax = axes[levels]
    names = [k for k in coherence if k.startswith("prefix_")] + ["random_pairs"]
    shares = [coherence[k]["same_category"] for k in names]
    ax.bar(range(len(names)), shares, color=["C2"] * (len(names) - 1) + ["C7"])
    ax.set_xticks(range(len(names)), [n.replace("prefix_", "prefix ").replace("_pairs", "")
                                      for n in names], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title("pairs sharing a leaf category", fontsize=9)
  if rep:
    recon = rep.get("reconstruction_mse", rep.get("quantization_mse"))
    title += (f"  |  {rep['items_in_collision']:.1%} of items in collision groups, "
              f"largest {rep['largest_group']}"
              + (f", reconstruction MSE {recon:.4f}" if recon is not None else ""))
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  with io_utils.atomic_open(path, "wb") as f:
    fig.savefig(f, format="png", dpi=90)
  plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
  p = argparse.ArgumentParser(description="Collision groups of computed Semantic IDs.")
  p.add_argument("--semantic_id_dir", required=True, help="what `python -m tiger_jax.semantic_ids` wrote")
  p.add_argument("--groups", type=int, default=3, help="how many of the largest groups to list")
  args = p.parse_args(argv)
  if args.groups < 1:
    raise SystemExit(f"error: --groups={args.groups}: must be at least 1")
  manifest = os.path.join(args.semantic_id_dir, "manifest.json")
  if not io_utils.exists(manifest):
    raise SystemExit(f"error: --semantic_id_dir={args.semantic_id_dir}: no manifest.json, so no "
                     "finished Semantic IDs here; pass the semantic_ids folder of a run")
  codes = io_utils.load_array(os.path.join(args.semantic_id_dir, IDS_FILE))[:, :-1]
  try:
    texts = data_lib.load(io_utils.read_json(manifest)["source"]).item_text
  except data_lib.DataError as e:  # the prepared data moved: the groups without their text
    print(f"warning: {e}; listing the groups without item text", file=sys.stderr)
    texts = None
  print(json.dumps({**collision_stats(codes),
                    "largest_groups": collision_groups(codes, texts, args.groups)}, indent=1))


if __name__ == "__main__":
  main()
