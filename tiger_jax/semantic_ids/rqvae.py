"""The paper's RQ-VAE: an MLP autoencoder whose latent is residually quantized.

Encoder d -> 512 -> 256 -> 128 -> 32 (ReLU), decoder mirrored; 3 codebooks of
256 x 32; loss = reconstruction MSE + sum_l ||sg[r_l] - e_l||^2
+ beta ||r_l - sg[e_l]||^2; straight-through gradients to the encoder.
Codebooks start from k-means on the latents' residuals, level by level (of all items by
default; of one batch in the paper's recipe), and codewords that fall out of use restart at
random items' residuals (`reset_dead_codes`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from tiger_jax.semantic_ids import kmeans as kmeans_lib


@dataclasses.dataclass(frozen=True)
class RQVAEConfig:
  hidden_dims: tuple[int, ...] = (512, 256, 128)
  latent_dim: int = 32
  num_levels: int = 3
  codebook_size: int = 256
  # The robust default (bench/semantic_id_seeds.py, docs/notes/2026-12-06-robust-semantic-ids.md):
  # 100 epochs of batches of 128 with commitment weight 1.0 meet the Semantic-ID targets on
  # every seed on Beauty and Toys in under a minute; the paper's recipe (beta 0.25, batches of
  # 1024, 3,000 epochs here, 20k in the paper) is semantic_ids.PRESETS['paper'].
  beta: float = 1.0
  learning_rate: float = 0.4
  optimizer: str = "adagrad"  # the paper's; 'adam' also accepted
  # Gradients clipped to this global norm (0: not clipped, the paper's recipe). Adagrad's
  # first steps move every weight by up to learning_rate; on some machines' round-off that
  # blew the encoder up in the first epoch and the codebooks never recovered.
  grad_clip: float = 1.0
  batch_size: int = 128
  epochs: int = 100
  kmeans_init: bool = True
  kmeans_iters: int = 25
  # Items whose latents seed the k-means codebooks: 0 = all of them; the paper's recipe (and
  # this project's default before the robust one): one batch.
  kmeans_init_items: int = 0
  # Codewords no item used in an epoch restart at the residuals of random items.
  reset_dead_codes: bool = True
  log_every: int = 100
  checkpoint_every: int = 500
  seed: int = 0


class MLP(nn.Module):
  dims: Sequence[int]

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i, d in enumerate(self.dims):
      x = nn.Dense(d, name=f"dense_{i}")(x)
      if i < len(self.dims) - 1:
        x = nn.relu(x)
    return x


def residual_quantize(z: jax.Array, codebooks: jax.Array):
  """Quantizes z [b, d] with codebooks [levels, k, d].

  Returns (codes [b, levels], residuals [levels, b, d] (r_l, the input of
  level l), codewords [levels, b, d] (e_l)). sum_l e_l is the quantized latent
  and r_l - e_l = r_{l+1}.
  """
  def level(r, codebook):
    idx = kmeans_lib.assign(r, codebook)
    e = codebook[idx]
    return r - e, (idx, r, e)

  _, (codes, residuals, codewords) = jax.lax.scan(level, z, codebooks)
  return codes.T, residuals, codewords


class RQVAE(nn.Module):
  config: RQVAEConfig
  input_dim: int

  def setup(self):
    c = self.config
    self.encoder = MLP((*c.hidden_dims, c.latent_dim))
    self.decoder = MLP((*reversed(c.hidden_dims), self.input_dim))
    self.codebooks = self.param(
        "codebooks", nn.initializers.normal(1.0), (c.num_levels, c.codebook_size, c.latent_dim))

  def encode(self, x: jax.Array) -> jax.Array:
    return self.encoder(x)

  def __call__(self, x: jax.Array):
    """x [b, input_dim] -> (reconstruction [b, input_dim], codes [b, levels], losses dict)."""
    c = self.config
    z = self.encoder(x)
    codes, residuals, codewords = residual_quantize(z, self.codebooks)
    z_q = codewords.sum(0)
    z_st = z + jax.lax.stop_gradient(z_q - z)  # straight-through estimator
    recon = self.decoder(z_st)
    sg = jax.lax.stop_gradient
    # Mean squared errors (mean over batch and dims), summed over levels.
    codebook_loss = jnp.sum(jnp.mean((sg(residuals) - codewords) ** 2, axis=(1, 2)))
    commit_loss = jnp.sum(jnp.mean((residuals - sg(codewords)) ** 2, axis=(1, 2)))
    recon_loss = jnp.mean((recon - x) ** 2)
    losses = {"reconstruction": recon_loss, "codebook": codebook_loss,
              "commitment": commit_loss,
              "total": recon_loss + codebook_loss + c.beta * commit_loss}
    return recon, codes, losses


def kmeans_init_codebooks(key: jax.Array, z: jax.Array, num_levels: int, k: int,
                          iters: int) -> jax.Array:
  """Codebooks [levels, k, d] from k-means on the residuals of z, level by level."""
  books, r = [], z
  for key_l in jax.random.split(key, num_levels):
    centers = kmeans_lib.kmeans(key_l, r, k, iters)
    books.append(centers)
    r = r - centers[kmeans_lib.assign(r, centers)]
  return jnp.stack(books)


def make_optimizer(config: RQVAEConfig) -> optax.GradientTransformation:
  tx = _optimizer(config)
  return optax.chain(optax.clip_by_global_norm(config.grad_clip), tx) if config.grad_clip else tx


def _optimizer(config: RQVAEConfig) -> optax.GradientTransformation:
  if config.optimizer == "adagrad":
    return optax.adagrad(config.learning_rate)
  if config.optimizer == "adam":
    return optax.adam(config.learning_rate)
  raise ValueError(f"unknown optimizer {config.optimizer!r}; expected adagrad or adam")


def init(config: RQVAEConfig, vectors: np.ndarray):
  """Parameters (with k-means codebooks) and optimizer state."""
  model = RQVAE(config, vectors.shape[1])
  key = jax.random.PRNGKey(config.seed)
  k_init, k_perm, k_means = jax.random.split(key, 3)
  order = jax.random.permutation(k_perm, len(vectors))
  first = jnp.asarray(vectors)[order[:config.batch_size]]
  params = model.init(k_init, first)["params"]
  if config.kmeans_init:
    sample = jnp.asarray(vectors)[order[:config.kmeans_init_items or len(vectors)]]
    z = model.apply({"params": params}, sample, method=RQVAE.encode)
    params = dict(params)
    params["codebooks"] = kmeans_init_codebooks(k_means, z, config.num_levels,
                                                config.codebook_size, config.kmeans_iters)
  return model, params, make_optimizer(config).init(params)


def make_train_epoch(model: RQVAE, config: RQVAEConfig, num_items: int):
  """A jitted epoch: a scan of train steps over a permutation of the items."""
  tx = make_optimizer(config)
  steps = max(1, num_items // config.batch_size)
  batch = min(config.batch_size, num_items)

  def train_step(carry, idx):
    params, opt_state, vectors = carry
    x = vectors[idx]

    def loss_fn(p):
      _, codes, losses = model.apply({"params": p}, x)
      return losses["total"], (codes, losses)

    (_, (codes, losses)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return (params, opt_state, vectors), (codes, losses)

  def reset_dead(params, vectors, codes, key):
    """Replaces codewords no item used this epoch by residuals of random items."""
    used = jax.vmap(lambda c: jnp.zeros(config.codebook_size, bool).at[c].set(True),
                    in_axes=1)(codes.reshape(-1, config.num_levels))
    pick = jax.random.choice(key, num_items, (config.codebook_size,))
    z = model.apply({"params": params}, vectors[pick], method=RQVAE.encode)
    _, residuals, _ = residual_quantize(z, params["codebooks"])
    params = dict(params)
    params["codebooks"] = jnp.where(used[:, :, None], params["codebooks"], residuals)
    return params

  @jax.jit
  def train_epoch(params, opt_state, vectors, key):
    k_perm, k_reset = jax.random.split(key)
    perm = jax.random.permutation(k_perm, num_items)[:steps * batch].reshape(steps, batch)
    (params, opt_state, _), (codes, losses) = jax.lax.scan(
        train_step, (params, opt_state, vectors), perm)
    if config.reset_dead_codes:
      params = reset_dead(params, vectors, codes, k_reset)
    return params, opt_state, jax.tree.map(jnp.mean, losses)

  return train_epoch


def _in_batches(fn, vectors: np.ndarray, batch_size: int) -> list[np.ndarray]:
  """fn (jitted, returning a tuple of per-row arrays) over any number of vectors in batches of
  one compiled shape (the last one padded); each output concatenated over the rows."""
  outs = []
  n = len(vectors)
  for i in range(0, n, batch_size):
    x = np.asarray(vectors[i:i + batch_size], np.float32)
    pad = batch_size - len(x) if n > batch_size else 0  # one compiled shape for all batches
    outs.append([np.asarray(o)[:len(x)] for o in fn(np.pad(x, ((0, pad), (0, 0))))])
  return [np.concatenate(parts) for parts in zip(*outs)]


def codes_in_batches(model: RQVAE, params, vectors: np.ndarray, batch_size: int = 65536):
  """Codes [n, levels] and mean reconstruction error of any number of vectors, in bounded memory."""
  @jax.jit
  def apply(x):
    recon, codes, _ = model.apply({"params": params}, x)
    return codes, jnp.mean((recon - x) ** 2, -1)

  codes, errors = _in_batches(apply, vectors, batch_size)
  return codes.astype(np.int32), float(errors.mean())


def latents_in_batches(model: RQVAE, params, vectors: np.ndarray,
                       batch_size: int = 65536) -> np.ndarray:
  """The encoder's latents [n, latent_dim] of any number of vectors, in bounded memory."""
  encode = jax.jit(lambda x: (model.apply({"params": params}, x, method=RQVAE.encode),))
  return _in_batches(encode, vectors, batch_size)[0]


_RUN_KNOBS = ("epochs", "log_every", "checkpoint_every")


def _check_same_run(checkpoint_dir: str, config: RQVAEConfig, vectors: np.ndarray) -> None:
  """Refuses to resume a checkpoint written under another config or other vectors."""
  from tiger_jax import io_utils
  path = os.path.join(checkpoint_dir, "run.json")
  run = {"config": {k: v for k, v in dataclasses.asdict(config).items() if k not in _RUN_KNOBS},
         "vectors_shape": list(vectors.shape),
         "vectors_sha1": hashlib.sha1(np.ascontiguousarray(vectors, np.float32).tobytes()).hexdigest()}
  run = json.loads(json.dumps(run))  # tuples -> lists, as they come back from disk
  if io_utils.exists(path):
    old = io_utils.read_json(path)
    if old != run:
      raise ValueError(f"{checkpoint_dir} holds an RQ-VAE run with another config or other "
                       f"vectors ({old} vs {run}); use a fresh --out_dir or delete it")
  else:
    io_utils.write_json(path, run)


def train(config: RQVAEConfig, vectors: np.ndarray, checkpoint_dir: str | None = None):
  """Trains the RQ-VAE on item vectors [n, d]; resumes from `checkpoint_dir` if it holds a run.

  Returns (model, params, history) where history lists the logged epochs.
  """
  import orbax.checkpoint as ocp
  vectors = np.asarray(vectors, np.float32)
  model, params, opt_state = init(config, vectors)
  train_epoch = make_train_epoch(model, config, len(vectors))
  device_vectors = jnp.asarray(vectors)
  start_epoch, history = 0, []
  manager = None
  if checkpoint_dir:
    _check_same_run(checkpoint_dir, config, vectors)
    from tiger_jax import io_utils
    manager = ocp.CheckpointManager(io_utils.abspath(checkpoint_dir),
                                    options=ocp.CheckpointManagerOptions(max_to_keep=1))
    if manager.latest_step() is not None:
      start_epoch = manager.latest_step()
      restored = manager.restore(start_epoch, args=ocp.args.StandardRestore(
          {"params": params, "opt_state": opt_state}))
      params, opt_state = restored["params"], restored["opt_state"]
      logging.info("RQ-VAE: resumed at epoch %d from %s", start_epoch, checkpoint_dir)
  key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1)
  t0 = time.time()
  for epoch in range(start_epoch, config.epochs):
    params, opt_state, losses = train_epoch(params, opt_state, device_vectors,
                                            jax.random.fold_in(key, epoch))
    done = epoch + 1
    if done % config.log_every == 0 or done == config.epochs:
      codes, _ = codes_in_batches(model, params, vectors)
      used = [int(np.unique(codes[:, l]).size) for l in range(config.num_levels)]
      rate = (done - start_epoch) / (time.time() - t0)
      record = {"epoch": done, **{k: float(v) for k, v in losses.items()}, "used_codes": used}
      history.append(record)
      logging.info("RQ-VAE epoch %d/%d: loss %.4f (recon %.4f, codebook %.4f, commit %.4f), "
                   "used codes per level %s, %.1f epochs/s, ETA %.0fs", done, config.epochs,
                   record["total"], record["reconstruction"], record["codebook"],
                   record["commitment"], used, rate, (config.epochs - done) / rate)
    if manager and (done % config.checkpoint_every == 0 or done == config.epochs):
      manager.save(done, args=ocp.args.StandardSave({"params": params, "opt_state": opt_state}))
  if manager:
    manager.wait_until_finished()
    manager.close()
  return model, params, history
