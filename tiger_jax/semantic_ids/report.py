"""Statistics of a set of Semantic IDs, and a plot of per-level codeword usage."""

from __future__ import annotations


import numpy as np

from tiger_jax import io_utils
from tiger_jax.semantic_ids.collisions import collision_stats


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


def make_report(codes: np.ndarray, ids: np.ndarray, codebook_size: int, extra: dict) -> dict:
  stats = collision_stats(codes)
  return {"num_items": int(len(codes)), "levels": level_usage(codes, codebook_size),
          **stats, "fourth_token_range": int(ids[:, -1].max()) + 1 if len(ids) else 0,
          "unique_ids": bool(len(np.unique(ids, axis=0)) == len(ids)), **extra}


def plot_usage(codes: np.ndarray, codebook_size: int, path: str, title: str = "") -> None:
  """Bar chart per level of how many items use each codeword (sorted), as PNG."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  levels = codes.shape[1]
  fig, axes = plt.subplots(1, levels, figsize=(4 * levels, 3.2), sharey=True)
  for level, ax in enumerate(np.atleast_1d(axes)):
    counts = np.sort(np.bincount(codes[:, level], minlength=codebook_size))[::-1]
    ax.bar(np.arange(codebook_size), counts, width=1.0, color="C0")
    used = int((counts > 0).sum())
    ax.set_title(f"level {level + 1}: {used}/{codebook_size} codewords used")
    ax.set_xlabel("codeword (sorted by use)")
    ax.set_yscale("log")
  np.atleast_1d(axes)[0].set_ylabel("items")
  fig.suptitle(title)
  fig.tight_layout()
  with io_utils.atomic_open(path, "wb") as f:
    fig.savefig(f, format="png", dpi=90)
  plt.close(fig)
