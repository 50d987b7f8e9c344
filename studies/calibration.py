"""Fitting the follower prior's bias table on held-out examples (FollowerConfig, network/followers.py).

The other way to give the prior unbiased evidence than leaving each training row's own
pair out of its counts: keep a trained model fixed and fit the table on users it was not
trained on. `fit_prior_table` fits the table's [levels, buckets] scalars to such users'
targets, the model's own logits held fixed: a product of the model and a count prior, each
level scored by its block's softmax as the beam search scores it. On Beauty it moved test
NDCG@10 by 0.0003, where the prior trained with the model lifted it by 0.0077
(studies/follower_calibration.py; docs/notes/2026-12-01-follower-prior.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax


def fit_prior_table(logits: np.ndarray, buckets: np.ndarray, targets: np.ndarray,
                    num_buckets: int, steps: int = 300, learning_rate: float = 0.05) -> np.ndarray:
  """logits [N, levels, S] (each level's block, padded with -inf past its size), the count
  buckets of the same columns [N, levels, S] (ints < num_buckets), targets [N, levels]
  (column of each level's target) -> the bias table [levels, num_buckets] minimising the
  mean over rows and levels of -log softmax(logits + table[level][buckets])[target]
  (full-batch Adam, from zeros)."""
  levels = logits.shape[1]

  def loss(table, logits, buckets, targets):
    bias = table[jnp.arange(levels)[None, :, None], buckets]
    logp = jax.nn.log_softmax(logits + bias, -1)
    return -jnp.take_along_axis(logp, targets[..., None], -1).mean()

  tx = optax.adam(learning_rate)

  @jax.jit  # the data are arguments, not constants XLA would fold
  def step(table, opt_state, logits, buckets, targets):
    grad = jax.grad(loss)(table, logits, buckets, targets)
    updates, opt_state = tx.update(grad, opt_state, table)
    return optax.apply_updates(table, updates), opt_state

  data = [jnp.asarray(a) for a in (logits, buckets, targets)]
  table = jnp.zeros((levels, num_buckets), jnp.float32)
  opt_state = tx.init(table)
  for _ in range(steps):
    table, opt_state = step(table, opt_state, *data)
  return np.asarray(table)
