"""K-means in JAX (Lloyd's algorithm, k-means++ seeding), used to initialise the
RQ-VAE codebooks and by RQ-KMeans."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def squared_distances(x: jax.Array, centers: jax.Array) -> jax.Array:
  """[n, d], [k, d] -> [n, k] squared Euclidean distances."""
  return (jnp.sum(x * x, -1, keepdims=True) - 2.0 * x @ centers.T
          + jnp.sum(centers * centers, -1)[None, :])


def _plus_plus_init(key: jax.Array, x: jax.Array, k: int) -> jax.Array:
  n = x.shape[0]
  first = jax.random.randint(key, (), 0, n)
  centers = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])
  d2 = jnp.sum((x - x[first]) ** 2, -1)

  def body(i, carry):
    centers, d2, key = carry
    key, sub = jax.random.split(key)
    total = jnp.sum(d2)
    # All points coincide with chosen centres: fall back to a uniform draw.
    probs = jnp.where(total > 0, d2 / jnp.maximum(total, 1e-30), jnp.full_like(d2, 1.0 / n))
    idx = jax.random.choice(sub, n, p=probs)
    centers = centers.at[i].set(x[idx])
    d2 = jnp.minimum(d2, jnp.sum((x - x[idx]) ** 2, -1))
    return centers, d2, key

  centers, _, _ = jax.lax.fori_loop(1, k, body, (centers, d2, key))
  return centers


@functools.partial(jax.jit, static_argnames=("k", "iters"))
def kmeans(key: jax.Array, x: jax.Array, k: int, iters: int = 25) -> jax.Array:
  """Fits k centres to x [n, d]; returns [k, d]. Empty clusters keep their centre."""
  x = x.astype(jnp.float32)
  centers = _plus_plus_init(key, x, k)

  def step(centers, _):
    assign = jnp.argmin(squared_distances(x, centers), -1)
    onehot = jax.nn.one_hot(assign, k, dtype=x.dtype)
    counts = onehot.sum(0)
    sums = onehot.T @ x
    new = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centers)
    return new, None

  centers, _ = jax.lax.scan(step, centers, None, length=iters)
  return centers


def assign(x: jax.Array, centers: jax.Array) -> jax.Array:
  """Nearest centre index of each row of x; [n]."""
  return jnp.argmin(squared_distances(x, centers), -1)
