"""SASRec (Kang & McAuley, 2018) in Flax: TIGER's main comparator, on the same splits,
with the same metrics and full ranking over every item.

Causal self-attention over the item history; the hidden state at the last
position scores every item by a dot product with its embedding. Trained
with full softmax cross-entropy at every real (non-pad) position of the
training sequences (today's common practice; the original used sampled BCE).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import zlib
from typing import Any, Callable, Sequence

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from tiger_jax import io_utils, preemption


@dataclasses.dataclass(frozen=True)
class SASRecConfig:
  """The defaults are the strong SASRec of records/sasrec/{beauty,toys}_tune.json (tuned on
  validation; `studies/sasrec_tune.py`): full-softmax cross-entropy, 64 dimensions, 2 blocks,
  1 head, dropout 0.5, up to 200 epochs stopped early on validation NDCG@10 (a pass every 2
  epochs, patience 8 passes): Beauty test R@10 / N@10 0.0944 / 0.0573 and Toys 0.1000 / 0.0623
  with the user's history left out (the public figures' protocol), in 13-14 minutes on 2 CPU
  cores."""
  max_len: int = 50
  emb_dim: int = 64
  num_blocks: int = 2
  num_heads: int = 1
  dropout_rate: float = 0.5
  learning_rate: float = 1e-3
  batch_size: int = 128
  epochs: int = 200
  seed: int = 0
  weight_decay: float = 0.0  # AdamW's decoupled decay when > 0 (Adam otherwise)
  # Early stopping on validation NDCG@10 (when `train` gets a `validate` function): a
  # validation pass every `validate_every` epochs; training stops after `patience` passes
  # without a better score (0: run every epoch) and returns the best pass's parameters.
  validate_every: int = 2
  patience: int = 8
  # Sampled softmax: > 0 scores each target against this many uniformly drawn items per
  # batch instead of every item (RecTools' SASRec trains so; far cheaper on large catalogs).
  negatives: int = 0

  def __post_init__(self):
    for name in ("max_len", "emb_dim", "num_blocks", "num_heads", "batch_size", "epochs",
                 "validate_every"):
      if getattr(self, name) < 1:
        raise ValueError(f"SASRecConfig.{name} must be >= 1, got {getattr(self, name)}")
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(f"SASRecConfig.dropout_rate must be in [0, 1), got {self.dropout_rate}")
    if self.patience < 0 or self.weight_decay < 0 or self.negatives < 0:
      raise ValueError("SASRecConfig.patience, weight_decay and negatives must be >= 0")


class Block(nn.Module):
  config: SASRecConfig

  @nn.compact
  def __call__(self, x, mask, deterministic):
    c = self.config
    h = nn.LayerNorm()(x)
    h = nn.MultiHeadDotProductAttention(num_heads=c.num_heads, dropout_rate=c.dropout_rate,
                                        deterministic=deterministic)(h, h, mask=mask)
    x = x + nn.Dropout(c.dropout_rate)(h, deterministic=deterministic)
    h = nn.LayerNorm()(x)
    h = nn.Dense(c.emb_dim)(nn.relu(nn.Dense(c.emb_dim)(h)))
    return x + nn.Dropout(c.dropout_rate)(h, deterministic=deterministic)


class SASRec(nn.Module):
  config: SASRecConfig
  num_items: int

  def setup(self):
    c = self.config
    self.item_embedding = nn.Embed(self.num_items + 1, c.emb_dim)
    self.position_embedding = nn.Embed(c.max_len, c.emb_dim)
    self.blocks = [Block(c) for _ in range(c.num_blocks)]
    self.dropout = nn.Dropout(c.dropout_rate)
    self.final_norm = nn.LayerNorm()

  def __call__(self, seq: jax.Array, deterministic: bool = True) -> jax.Array:
    """seq [batch, max_len] of item index + 1 (0 = pad, left padded) -> hidden [batch, len, d]."""
    x = self.item_embedding(seq) * jnp.sqrt(self.config.emb_dim)
    # Left padded: the last position is max_len - 1 however many pad columns were trimmed.
    x = x + self.position_embedding(jnp.arange(seq.shape[1]) + self.config.max_len - seq.shape[1])
    keep = (seq > 0)[..., None]
    x = self.dropout(x, deterministic=deterministic) * keep
    mask = nn.combine_masks(nn.make_causal_mask(seq), nn.make_attention_mask(seq > 0, seq > 0))
    for block in self.blocks:
      x = block(x, mask, deterministic) * keep
    return self.final_norm(x)

  def scores(self, hidden: jax.Array, dtype: jnp.dtype = jnp.float32) -> jax.Array:
    """hidden [..., d] -> scores over items [..., num_items] (pad row dropped), float32; the
    product runs in `dtype` (training uses bfloat16: 4-5x faster matmuls on AMX/TPU/GPU)."""
    return jnp.dot(hidden.astype(dtype), self.item_embedding.embedding[1:].astype(dtype).T,
                   preferred_element_type=jnp.float32)


def _left_pad(seqs: Sequence[np.ndarray], max_len: int) -> np.ndarray:
  out = np.zeros((len(seqs), max_len), np.int32)
  for i, s in enumerate(seqs):
    s = np.asarray(s)[-max_len:] + 1
    if len(s):
      out[i, -len(s):] = s
  return out


def sampled_logits(model: SASRec, params, hidden: jax.Array, labels: jax.Array, negatives: int,
                   rng: jax.Array, num_items: int) -> tuple[jax.Array, jax.Array]:
  """Sampled softmax: each position's target against `negatives` items drawn uniformly for the
  batch (shared by its positions; a draw equal to the target is masked out). Returns
  (logits [positions, 1 + negatives], labels: all 0)."""
  table = params["item_embedding"]["embedding"][1:]
  drawn = jax.random.randint(rng, (negatives,), 0, num_items)
  h = hidden.astype(jnp.bfloat16)
  positive = jnp.sum(h.astype(jnp.float32) * table[labels].astype(jnp.float32), -1)
  negative = jnp.dot(h, table[drawn].astype(jnp.bfloat16).T, preferred_element_type=jnp.float32)
  negative = jnp.where(drawn[None, :] == labels[:, None], -1e9, negative)
  return jnp.concatenate([positive[:, None], negative], 1), jnp.zeros_like(labels)


def _save_state(path: str, arrays: dict, meta: dict) -> None:
  """One file (msgpack, written whole then renamed): the arrays and the loop's counters."""
  blob = flax.serialization.msgpack_serialize(
      {"arrays": flax.serialization.to_state_dict(jax.device_get(arrays)),
       "meta": json.dumps(meta)})
  with io_utils.atomic_open(path, "wb") as f:
    f.write(blob)


def _load_state(path: str, arrays: dict, key: dict) -> tuple[dict, dict] | None:
  """(arrays shaped like `arrays`, meta) saved by a run with the same `key`, else None."""
  if not path or not io_utils.exists(path):
    return None
  with io_utils.open_file(path, "rb") as f:
    saved = flax.serialization.msgpack_restore(f.read())
  meta = json.loads(saved["meta"])
  if meta.get("key") != key:
    logging.warning("%s was saved for another SASRec config or data: training from scratch", path)
    return None
  return flax.serialization.from_state_dict(arrays, saved["arrays"]), meta


def train(train_sequences: Sequence[np.ndarray], num_items: int, config: SASRecConfig = SASRecConfig(),
          on_epoch: Callable[[int, SASRec, Any, float], None] | None = None,
          validate: Callable[[SASRec, Any], float] | None = None,
          curve: list | None = None, state_path: str | None = None, info: dict | None = None):
  """Trains on training sequences (validation and test items removed); returns (model, params).

  on_epoch(epoch, model, params, train_seconds), when given, runs after every
  epoch (e.g. a validation pass for a learning curve); its time is not training time.

  validate(model, params) -> score (higher is better, e.g. validation NDCG@10), when
  given, runs every `config.validate_every` epochs: the parameters returned are those of
  the best pass, and training stops after `config.patience` passes without a better one.
  `curve`, when given, receives {'epoch', 'seconds', 'score'} per pass. Validation time is
  not training time.

  state_path, when given, makes training resumable: the whole state (parameters, optimizer,
  best pass, random streams, counters) is saved there after every validation pass (every
  epoch without `validate`), and on SIGTERM or a first Ctrl-C at the end of the epoch, which
  then raises `preemption.Preempted`. A later call with the same config and data goes on from
  it and returns what one uninterrupted call would have. `info`, when given, receives
  {'epochs', 'best_epoch', 'train_seconds', 'wall_seconds'}, seconds summed over resumes
  (train: validation excluded; wall: included).
  """
  model = SASRec(config, num_items)
  seqs = [s for s in train_sequences if len(s) >= 2]
  padded = _left_pad(seqs, config.max_len + 1)
  inputs, targets = padded[:, :-1], padded[:, 1:]
  rng = jax.random.PRNGKey(config.seed)
  params = model.init(rng, jnp.asarray(inputs[:2]))["params"]
  tx = (optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
        if config.weight_decay else optax.adam(config.learning_rate))
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, x, y, positions, valid, rng):
    def loss_fn(p):
      h = model.apply({"params": p}, x, deterministic=False, rngs={"dropout": rng})
      # Only the real (non-pad) positions are scored against every item.
      h = h.reshape(-1, h.shape[-1])[positions]
      labels = jnp.maximum(y.reshape(-1)[positions] - 1, 0)
      if config.negatives:
        logits, labels = sampled_logits(model, p, h, labels, config.negatives,
                                        jax.random.fold_in(rng, 1), num_items)
      else:
        logits = model.apply({"params": p}, h, jnp.bfloat16, method=SASRec.scores)
      xent = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
      return jnp.sum(xent * valid) / jnp.maximum(valid.sum(), 1)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  order_rng = np.random.default_rng(config.seed)
  n, b = len(inputs), config.batch_size
  lengths = (inputs > 0).sum(1)
  start = time.time()
  paused = 0.0  # seconds spent in on_epoch and validate
  best, since_best = None, 0  # (score, epoch, params) of the best validation pass
  first_epoch, before = 0, 0.0  # where a saved state left off; its wall seconds
  saved_curve = []  # the validation passes so far
  key = {**dataclasses.asdict(config), "num_items": num_items,
         "data_crc32": zlib.crc32(padded.tobytes())}
  loaded = _load_state(state_path, {"params": params, "opt_state": opt_state, "rng": rng,
                                    "best_params": params}, key)
  if loaded is not None:
    arrays, meta = loaded
    params, opt_state, rng = arrays["params"], arrays["opt_state"], arrays["rng"]
    order_rng.bit_generator.state = meta["order_rng"]
    first_epoch, since_best, before = meta["epoch"], meta["since_best"], meta["wall_seconds"]
    saved_curve = meta["curve"]
    start -= meta["train_seconds"]
    if meta["best_epoch"]:
      best = (meta["best_score"], meta["best_epoch"], arrays["best_params"])
    logging.info("SASRec: resuming after epoch %d from %s", first_epoch, state_path)

  def save(epoch: int) -> None:
    _save_state(state_path, {"params": params, "opt_state": opt_state, "rng": rng,
                             "best_params": params if best is None else best[2]},
                {"key": key, "epoch": epoch, "since_best": since_best,
                 "best_score": best[0] if best else None, "best_epoch": best[1] if best else 0,
                 "order_rng": order_rng.bit_generator.state, "curve": saved_curve,
                 "train_seconds": time.time() - start - paused,
                 "wall_seconds": before + time.time() - wall_start})

  wall_start, done = time.time(), first_epoch
  with preemption.SignalWatch(enabled=state_path is not None) as watch:
    for epoch in range(first_epoch, config.epochs):
      perm = order_rng.permutation(n)
      losses = []
      for i in range(0, n - b + 1, b):
        idx = perm[i:i + b]
        # Trim the batch's all-pad columns and gather its real positions; both sizes are
        # rounded up (to 10 columns, 256 positions) so that few shapes compile.
        width = min(config.max_len, -(-int(lengths[idx].max()) // 10) * 10)
        x, y = inputs[idx, -width:], targets[idx, -width:]
        real = np.flatnonzero((x > 0) & (y > 0))
        size = -(-max(len(real), 1) // 256) * 256
        positions = np.zeros(size, np.int32)
        positions[:len(real)] = real
        valid = (np.arange(size) < len(real)).astype(np.float32)
        rng, sub = jax.random.split(rng)
        params, opt_state, loss = step(params, opt_state, x, y, positions, valid, sub)
        losses.append(loss)
      done = epoch + 1
      if on_epoch is not None:
        jax.block_until_ready(params)
        t = time.time()
        on_epoch(epoch + 1, model, params, t - start - paused)
        paused += time.time() - t
      stop = False
      if validate is not None and ((epoch + 1) % config.validate_every == 0
                                   or epoch + 1 == config.epochs):
        jax.block_until_ready(params)
        t = time.time()
        score = float(validate(model, params))
        saved_curve.append({"epoch": epoch + 1, "seconds": round(t - start - paused, 1),
                            "score": score})
        if best is None or score > best[0]:
          best, since_best = (score, epoch + 1, params), 0
        else:
          since_best += 1
        paused += time.time() - t
        logging.info("SASRec epoch %d: validation %.4f (best %.4f at epoch %d)", epoch + 1,
                     score, best[0], best[1])
        stop = bool(config.patience and since_best >= config.patience)
        if stop:
          logging.info("SASRec: no better validation in %d passes; stopping at epoch %d, "
                       "keeping epoch %d", since_best, epoch + 1, best[1])
      if stop:
        break
      if (epoch + 1) % max(1, config.epochs // 10) == 0:
        rate = (epoch + 1) / (time.time() - start - paused)  # (start: shifted on resume)
        logging.info("SASRec epoch %d/%d: loss %.4f, %.1fs/epoch, ETA %.0fs", epoch + 1,
                     config.epochs, float(np.mean(jax.device_get(losses))), 1 / rate,
                     (config.epochs - epoch - 1) / rate)
      if state_path and (watch.requested is not None or validate is None
                         or len(saved_curve) and saved_curve[-1]["epoch"] == epoch + 1):
        save(epoch + 1)
        if watch.requested is not None:
          raise preemption.Preempted(epoch + 1, state_path, unit="epoch")
  if curve is not None:
    curve[:] = saved_curve
  if info is not None:
    info.update(epochs=done,
                best_epoch=best[1] if best else None,
                train_seconds=round(time.time() - start - paused, 1),
                wall_seconds=round(before + time.time() - wall_start, 1))
  return model, (params if best is None else best[2])


def recommend(model: SASRec, params, histories: Sequence[np.ndarray], k: int = 20,
              batch_size: int = 1024) -> np.ndarray:
  """Top-k items [num_users, k] over the full item set for each history."""
  @jax.jit
  def top(x):
    h = model.apply({"params": params}, x)[:, -1]
    return jax.lax.top_k(model.apply({"params": params}, h, method=SASRec.scores), k)[1]

  out = []
  for i in range(0, len(histories), batch_size):
    x = _left_pad(histories[i:i + batch_size], model.config.max_len)
    pad = batch_size - len(x)
    out.append(np.asarray(top(np.pad(x, ((0, pad), (0, 0)))))[:len(x)])
  return np.concatenate(out)
