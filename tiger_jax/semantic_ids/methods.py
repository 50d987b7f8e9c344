"""Semantic-ID methods behind one interface: vectors [n, d] -> codes [n, levels].

  rqvae      the paper's RQ-VAE (rqvae.py)
  rq_kmeans  residual k-means on the vectors, no network
  lsh        random hyperplanes per level (the paper's LSH ablation)
  random     uniform random codes (atomic-ID baseline with the same shape)

Every method returns codes in [0, codebook_size); `collisions.make_unique`
then appends the 4th token. The rest of the system never sees which made them.

Inputs are standardized first (`standardize=True`, the default): each
dimension gets zero mean and unit variance over the catalog, then each block
of the vector (content, collaborative, ...) is scaled so that its share of the
total variance is what it was as a unit-norm block times its weight. Unit-norm
sentence vectors vary little per dimension around a large common direction,
and the RQ-VAE then settles on a few codewords; standardized, it spreads over
the codebook (`bench/semantic_id_report.py` measures both on Beauty and Toys).
The statistics are returned with what the method learned and reapplied when
codes are assigned again (`pipeline.assign_codes`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tiger_jax.semantic_ids import group_cap
from tiger_jax.semantic_ids import kmeans as kmeans_lib
from tiger_jax.semantic_ids import rqvae

METHODS = ("rqvae", "rq_kmeans", "lsh", "random")


@dataclasses.dataclass(frozen=True)
class SemanticIdConfig:
  method: str = "rqvae"
  num_levels: int = 3
  codebook_size: int = 256
  seed: int = 0
  rqvae: rqvae.RQVAEConfig = rqvae.RQVAEConfig()
  kmeans_iters: int = 50
  # Item vectors: content from the prepared dataset, plus an optional
  # collaborative block learned from training histories only.
  collaborative_dim: int = 0
  collaborative_weight: float = 1.0
  standardize: bool = True
  # At most this many items share all `num_levels` codes (0: no ceiling): a larger group's
  # members farthest from its last codeword move to the nearest last-level codeword with room
  # (group_cap.py). Methods with codebooks only (rqvae, rq_kmeans); lsh and random, the
  # paper's ablations, keep their codes. 10 is the target for the largest group; it
  # moves only the outliers (bench/semantic_id_seeds.py reports how many items moved).
  max_group: int = 10
  # Which items the method learns from: 'all' (the paper's cold-start protocol: the RQ-VAE
  # sees every item's content) or 'warm' (LIGER's: the dataset's cold items get codes from
  # the model fitted on the others, as new items would; rqvae and rq_kmeans).
  fit_on: str = "all"

  def __post_init__(self):
    if self.max_group < 0:
      raise ValueError(f"SemanticIdConfig.max_group must be >= 0, got {self.max_group}")
    if self.fit_on not in ("all", "warm"):
      raise ValueError(f"SemanticIdConfig.fit_on={self.fit_on!r}: 'all' or 'warm'")
    if self.fit_on == "warm" and self.method not in ("rqvae", "rq_kmeans"):
      raise ValueError(f"SemanticIdConfig.fit_on='warm' assigns codes with a fitted model: "
                       f"method 'rqvae' or 'rq_kmeans', not {self.method!r}")


# Named Semantic-ID configurations (bench/semantic_id_seeds.py --preset;
# gin_configs/semantic_ids/paper.gin binds the same fields). `paper`: the paper's RQ-VAE as
# this project ran it by default before the robust schedule: commitment weight 0.25, batches
# of 1,024, k-means on one batch's latents, no codeword restarts, 3,000 epochs.
PRESETS = {
    "default": SemanticIdConfig(),
    "paper": SemanticIdConfig(max_group=0, rqvae=rqvae.RQVAEConfig(
        beta=0.25, batch_size=1024, epochs=3000, kmeans_init_items=1024, reset_dead_codes=False,
        grad_clip=0.0)),
}


def fit_standardization(vectors: np.ndarray, blocks: Sequence[tuple[int, float]] | None = None,
                        min_std: float = 1e-6) -> dict[str, np.ndarray]:
  """Per-dimension shift and scale that standardize `vectors` [n, d]; {'mean', 'scale'} of [d].

  blocks: (dims, weight) of consecutive blocks of the vector (default: one
  block). Block b is scaled by weight_b * sqrt(dims_0 / dims_b) after
  standardization, so each block carries the variance it would as a unit-norm
  block of that weight beside the first. Constant dimensions get scale 0.
  """
  x = np.asarray(vectors, np.float64)
  blocks = list(blocks) if blocks else [(x.shape[1], 1.0)]
  if sum(d for d, _ in blocks) != x.shape[1]:
    raise ValueError(f"blocks {blocks} do not add up to the vectors' dimension {x.shape[1]}")
  mean, std = x.mean(0), x.std(0)
  weight = np.concatenate([np.full(d, w * math.sqrt(blocks[0][0] / d)) for d, w in blocks])
  scale = np.where(std > min_std, weight / np.maximum(std, min_std), 0.0)
  return {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32)}


def apply_standardization(vectors: np.ndarray, stats: dict[str, np.ndarray] | None) -> np.ndarray:
  """(vectors - mean) * scale, or the vectors unchanged when stats is None; [n, d] float32."""
  x = np.asarray(vectors, np.float32)
  return x if stats is None else (x - stats["mean"]) * stats["scale"]


def rq_kmeans(vectors: np.ndarray, num_levels: int, k: int, iters: int, seed: int):
  """Residual k-means: level l clusters what levels < l left; returns (codes, centres, mse)."""
  r = jnp.asarray(vectors, jnp.float32)
  codes, books = [], []
  for key in jax.random.split(jax.random.PRNGKey(seed), num_levels):
    centers = kmeans_lib.kmeans(key, r, min(k, r.shape[0]), iters)
    idx = kmeans_lib.assign(r, centers)
    r = r - centers[idx]
    codes.append(idx)
    books.append(centers)
  return (np.asarray(jnp.stack(codes, 1), np.int32), np.asarray(jnp.stack(books)),
          float(jnp.mean(r ** 2)))


def lsh(vectors: np.ndarray, num_levels: int, k: int, seed: int):
  """log2(k) random hyperplanes per level; the sign bits of an item form its code."""
  bits = int(math.log2(k))
  if 2 ** bits != k:
    raise ValueError(f"lsh needs a power-of-two codebook size, got {k}")
  planes = np.random.default_rng(seed).standard_normal((num_levels, vectors.shape[1], bits))
  centred = vectors - vectors.mean(0)
  signs = np.einsum("nd,ldb->nlb", centred, planes) > 0
  return (signs * (1 << np.arange(bits))).sum(-1).astype(np.int32), planes


def random_codes(n: int, num_levels: int, k: int, seed: int) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, k, size=(n, num_levels), dtype=np.int32)


def capped(codes: np.ndarray, latents: np.ndarray, codebooks,
           max_group: int) -> tuple[np.ndarray, dict[str, Any]]:
  """`group_cap.cap_groups` on residual-quantized codes [n, levels] of latents [n, d] under
  codebooks [levels, k, d] (the last level's input is what the levels before it left), and
  {'group_cap': {max_group, moved_items, largest_group_before}}."""
  books = np.asarray(codebooks, np.float32)
  r = np.asarray(latents, np.float32).copy()
  for level in range(books.shape[0] - 1):
    r -= books[level][codes[:, level]]
  out = group_cap.cap_groups(codes, r, books[-1], max_group)
  _, counts = np.unique(codes, axis=0, return_counts=True)
  return out, {"group_cap": {"max_group": max_group,
                             "moved_items": int((out != codes).any(1).sum()),
                             "largest_group_before": int(counts.max())}}


def compute_codes(vectors: np.ndarray, config: SemanticIdConfig,
                  checkpoint_dir: str | None = None,
                  blocks: Sequence[tuple[int, float]] | None = None,
                  fit: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, Any]]:
  """Codes [n, num_levels] of the vectors, and what the method learned (params, stats).

  With config.standardize the method sees standardized vectors (see
  `fit_standardization`, `blocks` as there), and the returned dict holds the
  statistics under 'standardization'. fit: a boolean mask of the items the method (and
  the standardization) learns from; the others get codes of what it learned (`assign`).
  """
  if fit is not None and fit.all():
    fit = None
  stats = (fit_standardization(vectors if fit is None else vectors[fit], blocks)
           if config.standardize else None)
  x = apply_standardization(vectors, stats)
  if fit is None:
    codes, learned = _codes(x, config, checkpoint_dir)
  else:  # learn from the fitted items only; the others get codes of the learned model
    fitted, learned = _codes(x[fit], config, checkpoint_dir)
    codes = np.empty((len(x), config.num_levels), np.int32)
    codes[fit] = fitted
    codes[~fit] = assign(x[~fit], config, learned)
    learned["fit_items"] = int(fit.sum())
  # Mean per-dimension variance of what the method saw: divides an MSE into a scale-free error.
  return codes, {**learned, "standardization": stats, "input_variance": float(x.var(0).mean())}


def assign(x: np.ndarray, config: SemanticIdConfig, learned: dict[str, Any]) -> np.ndarray:
  """Codes [n, levels] of standardized vectors x under what `_codes` learned (no cap)."""
  if config.method == "rqvae":
    return rqvae.codes_in_batches(learned["model"], learned["params"], x)[0]
  if config.method == "rq_kmeans":  # its codebooks quantize residuals as the RQ-VAE's do
    codes, _, _ = rqvae.residual_quantize(jnp.asarray(x, jnp.float32),
                                          jnp.asarray(learned["params"]["codebooks"]))
    return np.asarray(codes, np.int32)
  raise ValueError(f"method {config.method!r} learns no model to assign codes with")


def _codes(vectors: np.ndarray, config: SemanticIdConfig,
           checkpoint_dir: str | None) -> tuple[np.ndarray, dict[str, Any]]:
  n, levels, k = len(vectors), config.num_levels, config.codebook_size
  if config.method == "rqvae":
    cfg = dataclasses.replace(config.rqvae, num_levels=levels, codebook_size=k, seed=config.seed)
    model, params, history = rqvae.train(cfg, vectors, checkpoint_dir)
    codes, mse = rqvae.codes_in_batches(model, params, vectors)
    cap = {}
    if config.max_group:
      codes, cap = capped(codes, rqvae.latents_in_batches(model, params, vectors),
                          params["codebooks"], config.max_group)
    return codes, {"params": params, "reconstruction_mse": mse, "history": history,
                   "model": model, **cap}
  if config.method == "rq_kmeans":
    codes, books, mse = rq_kmeans(vectors, levels, k, config.kmeans_iters, config.seed)
    cap = {}
    if config.max_group:
      codes, cap = capped(codes, vectors, books, config.max_group)
    return codes, {"params": {"codebooks": books}, "quantization_mse": mse, **cap}
  if config.method == "lsh":
    codes, planes = lsh(vectors, levels, k, config.seed)
    return codes, {"params": {"hyperplanes": planes}}
  if config.method == "random":
    return random_codes(n, levels, k, config.seed), {"params": {}}
  raise ValueError(f"unknown semantic-ID method {config.method!r}; expected one of {METHODS}")
