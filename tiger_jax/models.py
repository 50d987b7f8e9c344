"""The encoder-decoder model's loss and its pieces for decoding, as in t5x's models.py."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from tiger_jax import network
from tiger_jax.network import item_head
from tiger_jax.network.memory import MEMORY
from tiger_jax.tokens import EOS_ID, PAD_ID

Batch = Mapping[str, jax.Array]


def shift_right(targets: jax.Array, bos_id: int = PAD_ID) -> jax.Array:
  """Decoder inputs: targets shifted right by one, starting with bos (pad, as T5)."""
  return jnp.concatenate([jnp.full_like(targets[:, :1], bos_id), targets[:, :-1]], axis=1)


@dataclasses.dataclass(frozen=True)
class EncoderDecoderModel:
  """Wraps the Flax module: init, loss, and the logits function decoding needs."""
  module: network.Transformer
  label_smoothing: float = 0.0
  z_loss: float = 1e-4
  # Per-level output heads: target position l is scored by a softmax over level l's
  # block of tokens only, (start, size) per level, as the block-softmax beam search
  # decodes; the eos after the last level is not trained. None: one softmax over the
  # whole vocabulary at every position (the paper's).
  level_blocks: tuple[tuple[int, int], ...] | None = None
  # Data the module reads besides its parameters, its 'memory' variable collection (the
  # followers' counts: `network.followers.memory_variables`), built from the training sequences.
  memory: Mapping[str, Any] | None = dataclasses.field(default=None, compare=False, repr=False)

  @property
  def config(self) -> network.T5Config:
    return self.module.config

  def with_dtype(self, dtype: str) -> "EncoderDecoderModel":
    """The same model (same parameters) computing its activations in `dtype`."""
    return dataclasses.replace(self, module=network.Transformer(
        dataclasses.replace(self.config, dtype=dtype)))

  def variables(self, params: Any, **collections: Any) -> dict[str, Any]:
    """What `module.apply` takes: the parameters, the memory (if any) and `collections`."""
    return {"params": params, **({MEMORY: self.memory} if self.memory else {}), **collections}

  def init(self, rng: jax.Array, input_len: int, target_len: int) -> Any:
    """Variables (boxed with logical axis names) for the given feature lengths."""
    x = jnp.ones((1, input_len), jnp.int32)
    y = jnp.ones((1, target_len), jnp.int32)
    return self.module.init({"params": rng, "dropout": rng}, x, y, deterministic=True)

  def loss_fn(self, params: Any, batch: Batch, dropout_rng: jax.Array | None) -> tuple[jax.Array, dict]:
    """Token cross-entropy over non-pad targets (over each level's block with
    level_blocks), plus the item head's weighted cross-entropy (T5Config.item_head); returns
    (loss, metrics)."""
    targets = batch["targets"]
    head = self.config.item_head
    out = self.module.apply(
        self.variables(params), batch["inputs"], shift_right(targets),
        deterministic=dropout_rng is None, level_blocks=self.level_blocks,
        with_item_logits=head is not None,
        rngs={"dropout": dropout_rng} if dropout_rng is not None else None)
    logits, item_logits = out if head is not None else (out, None)
    xent, log_z, correct = self._token_losses(logits, targets)
    weights = (targets[:, :xent.shape[1]] > 0).astype(jnp.float32)
    total = jnp.sum((xent + self.z_loss * log_z ** 2) * weights)
    num_tokens = jnp.maximum(weights.sum(), 1.0)
    accuracy = jnp.sum(correct * weights) / num_tokens
    loss = total / num_tokens
    metrics = {"loss": jnp.sum(xent * weights) / num_tokens, "token_accuracy": accuracy,
               "num_tokens": weights.sum()}
    if head is not None:
      item_loss, item_accuracy = self._item_losses(item_logits, targets)
      loss = loss + head.weight * item_loss
      metrics.update(item_loss=item_loss, item_accuracy=item_accuracy)
    return loss, metrics

  def _item_losses(self, item_logits: jax.Array, targets: jax.Array):
    """The item head's mean cross-entropy over the rows whose target is an item, and its
    top-1 accuracy."""
    index = item_head.item_index(self.memory[item_head.NAME],
                                 targets[:, :self.config.id_length])
    real = (index >= 0).astype(jnp.float32)
    labels = jax.nn.one_hot(index, item_logits.shape[-1])
    xent = optax.softmax_cross_entropy(item_logits, labels)
    rows = jnp.maximum(real.sum(), 1.0)
    return (jnp.sum(xent * real) / rows,
            jnp.sum((item_logits.argmax(-1) == index) * real) / rows)

  def _token_losses(self, logits: jax.Array, targets: jax.Array):
    """(cross-entropy, log-partition, correct) per target position: [b, T] from logits
    [b, T, vocab], or [b, L] over the L levels' blocks with level_blocks."""
    if self.level_blocks is None:
      return self._xent(logits, targets)
    per_level = [self._xent(logits[:, l, start:start + size], targets[:, l] - start)
                 for l, (start, size) in enumerate(self.level_blocks)]
    return tuple(jnp.stack(x, 1) for x in zip(*per_level))

  def _xent(self, logits: jax.Array, targets: jax.Array):
    labels = jax.nn.one_hot(targets, logits.shape[-1])
    if self.label_smoothing:
      labels = optax.smooth_labels(labels, self.label_smoothing)
    return (optax.softmax_cross_entropy(logits, labels), jax.nn.logsumexp(logits, -1),
            logits.argmax(-1) == targets)

  def encode(self, params: Any, inputs: jax.Array) -> jax.Array:
    return self.module.apply(self.variables(params), inputs, method=network.Transformer.encode)

  def init_cache(self, params: Any, encoded: jax.Array, inputs: jax.Array) -> Any:
    """A decode cache: the encoder's keys/values, [batch, heads, enc_len, kv], computed once.

    Each decode step adds its position's self-attention keys/values. The cache
    serves any number of hypotheses per input row: a step may decode batch * G rows
    (G per input row, consecutive); position 0 may be decoded once per input row
    and then shared by that row's hypotheses (see `network.t5.MultiHeadAttention`).
    """
    dummy = jnp.zeros((inputs.shape[0], 1), jnp.int32)
    return self.module.apply(self.variables(params), encoded, inputs, dummy, decode=True,
                             method=network.Transformer.decode, mutable=["cache"])[1]["cache"]

  def decode_step(self, params: Any, cache: Any, encoded: jax.Array, inputs: jax.Array,
                  token: jax.Array, position: int,
                  block: tuple[int, int] | None = None) -> tuple[jax.Array, Any]:
    """Logits [rows, vocab] of the token after `token` [rows], the decoder input at
    `position` (static; the cache holds the positions before it); the new cache.

    rows = batch * hypotheses per input row; `block` (start, size) computes
    only those vocabulary columns: [rows, size].
    """
    logits, variables = self.module.apply(
        self.variables(params, cache=cache), encoded, inputs, token[:, None], decode=True,
        decode_position=position, logits_block=block, method=network.Transformer.decode,
        mutable=["cache"])
    return logits[:, 0], variables["cache"]

  def score(self, params: Any, inputs: jax.Array, targets: jax.Array,
            blocks: Sequence[tuple[int, int]] | None = None) -> jax.Array:
    """Log-probability of each target sequence [batch] (teacher forcing, pad ignored).

    With `blocks` [(start, size) per target position], position l is scored by
    the softmax over its block only, as the block-softmax beam search does.
    """
    logits = self.module.apply(self.variables(params), inputs, shift_right(targets),
                               level_blocks=blocks)
    return sequence_log_prob(logits, targets, blocks)

  def item_log_probs(self, params: Any, encoded: jax.Array, inputs: jax.Array) -> jax.Array:
    """The item head's log-probability of every item [batch, items] (T5Config.item_head)."""
    logits = self.module.apply(self.variables(params), encoded, inputs,
                               method=network.Transformer.item_logits)
    return jax.nn.log_softmax(logits)

  def score_candidates(self, params: Any, encoded: jax.Array, inputs: jax.Array,
                       candidates: jax.Array,
                       blocks: Sequence[tuple[int, int]] | None = None) -> jax.Array:
    """Log-probability [batch, M] of each row's M candidate IDs [batch, M, L] (tokens) under
    the decoder, teacher-forced on the row's encoding (computed once, `encode`); `blocks` as
    in `score`."""
    batch, m, length = candidates.shape
    flat = candidates.reshape(batch * m, length)
    logits = self.module.apply(
        self.variables(params), jnp.repeat(encoded, m, 0), jnp.repeat(inputs, m, 0),
        shift_right(flat), level_blocks=blocks, method=network.Transformer.decode)
    return sequence_log_prob(logits, flat, blocks).reshape(batch, m)


def sequence_log_prob(logits: jax.Array, targets: jax.Array,
                      blocks: Sequence[tuple[int, int]] | None = None) -> jax.Array:
  """Teacher-forced logits [batch, T, vocab] of targets [batch, T] -> each sequence's
  log-probability [batch] (pad ignored); with `blocks` position l's softmax is over its block."""
  if blocks is None:
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], -1)[..., 0]
  else:
    logp = jnp.stack([
        jnp.take_along_axis(jax.nn.log_softmax(logits[:, l, start:start + size]),
                            targets[:, l, None] - start, -1)[:, 0]
        for l, (start, size) in enumerate(blocks)], 1)
    targets = targets[:, :len(blocks)]
  return jnp.sum(logp * (targets > 0), -1)


def unbox(tree: Any) -> Any:
  return nn.meta.unbox(tree)


__all__ = ["EncoderDecoderModel", "sequence_log_prob", "shift_right", "EOS_ID", "PAD_ID", "unbox"]
