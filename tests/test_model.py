"""The encoder-decoder, its sharding, and the trainer."""

import dataclasses
import functools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, TINY_MODEL
from tiger_jax import baselines, network
from tiger_jax.models import EncoderDecoderModel, shift_right, unbox
from tiger_jax.trainer import TrainerConfig


def _config(vocab=50, **kw):
  return network.T5Config(vocab_size=vocab, **{**TINY_MODEL, "num_encoder_layers": 2,
                                               "num_decoder_layers": 2, **kw})


def _model(vocab=50, **kw):
  model = EncoderDecoderModel(network.Transformer(_config(vocab, **kw)))
  return model, unbox(model.init(jax.random.PRNGKey(0), 7, 5))["params"]


# item_inputs with the hashed item and recency embeddings: one compile covers the encoder's
# additions.
VARIANTS = {"tokens": {}, "item_inputs": dict(item_inputs=True, id_length=3, item_embed_buckets=64,
                                              recency_positions=4),
            "no_user_token": dict(user_token=False),
            "transition": dict(id_length=3, transition_buckets=128, recency_positions=4)}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("beams", [1, 3])
def test_incremental_decoding_matches_full_forward(beams, variant):
  model, params = _model(**VARIANTS[variant])
  x = jax.random.randint(jax.random.PRNGKey(1), (2, 7), 1, 50).at[:, 5:].set(0)
  y = jax.random.randint(jax.random.PRNGKey(2), (2 * beams, 5), 2, 50)
  full = model.module.apply({"params": params}, jnp.repeat(x, beams, 0), shift_right(y))
  encoded = model.encode(params, x)  # [2, ...]: beams share the encoder output
  cache = model.init_cache(params, encoded, x)
  prev, steps = jnp.zeros((2 * beams,), jnp.int32), []
  for t in range(5):
    logits, cache = model.decode_step(params, cache, encoded, x, prev, t)
    steps.append(logits)
    prev = y[:, t]
  np.testing.assert_allclose(jnp.stack(steps, 1), full, atol=1e-4)


def test_item_inputs_give_one_encoder_position_per_item():
  model, params = _model(item_inputs=True, id_length=3)
  x = jnp.asarray([[9, 11, 12, 13, 21, 22, 23], [9, 11, 12, 13, 0, 0, 0]])
  encoded = model.encode(params, x)
  assert encoded.shape == (2, 3, 16)  # user + 2 items
  np.testing.assert_array_equal(network.encoder_mask(x, model.config),
                                [[True, True, True], [True, True, False]])
  # An item's position sees its codes only through their sum: their order does not matter...
  swapped = model.encode(params, x.at[:, 1:4].set(x[:, 3:0:-1]))
  np.testing.assert_allclose(swapped, encoded, atol=1e-5)
  # ...but each code does.
  assert not np.allclose(model.encode(params, x.at[:, 2].set(14))[:, 1], encoded[:, 1], atol=1e-3)
  with pytest.raises(ValueError, match="not 1 \\+ a multiple of id_length 3"):
    model.encode(params, x[:, :6])


def test_item_buckets_tell_items_apart_and_the_embedding_sees_the_whole_id():
  ids = np.unique(np.random.default_rng(0).integers(0, 256, (6000, 4)), axis=0)
  rows = np.asarray(network.item_buckets(jnp.asarray(ids), 4096, 2))
  assert rows.shape == (len(ids), 2) and rows.min() >= 0 and rows.max() < 4096
  assert len(np.unique(rows, axis=0)) == len(ids)  # no two items share both rows
  assert (rows[:, 0] != rows[:, 1]).mean() > 0.99  # the two hashes are unrelated
  single = np.asarray(network.item_buckets(jnp.asarray(ids), 4096, 1))[:, 0]
  assert len(np.unique(single)) < len(ids)  # one hash alone collides at this load
  np.testing.assert_array_equal(network.item_buckets(jnp.asarray(ids[:5]), 4096, 2), rows[:5])
  # The codes' sum is order-free, the item's embedding is not: a permuted ID is another item.
  model, params = _model(item_inputs=True, id_length=3, item_embed_buckets=64)
  assert params["encoder"]["item_embedder"]["embedding"].shape == (64, 16)
  x = jnp.asarray([[9, 11, 12, 13, 21, 22, 23]])
  swapped = model.encode(params, x.at[:, 1:4].set(x[:, 3:0:-1]))
  assert not np.allclose(swapped[:, 1], model.encode(params, x)[:, 1], atol=1e-3)
  with pytest.raises(ValueError, match="item_embed_buckets needs T5Config.item_inputs"):
    _model(item_embed_buckets=64)


def test_item_embedding_dropout_drops_whole_items_in_training_only():
  kw = dict(item_inputs=True, id_length=3, item_embed_buckets=64, dropout_rate=0.0)
  model, params = _model(**kw)
  x = jnp.asarray([[9, 11, 12, 13, 21, 22, 23, 11, 22, 13]])

  def encode(rate, rng, table_scale=1.0):
    p = {**params, "encoder": {**params["encoder"], "item_embedder": {
        "embedding": params["encoder"]["item_embedder"]["embedding"] * table_scale}}}
    m = network.Transformer(_config(**kw, item_embed_dropout=rate))
    return m.apply({"params": p}, x, rng is None, method=m.encode,
                   rngs=None if rng is None else {"dropout": rng})

  plain = encode(0.0, None)
  np.testing.assert_allclose(encode(0.5, None), plain, atol=1e-6)  # evaluation: no dropout
  np.testing.assert_allclose(encode(1.0, jax.random.PRNGKey(3)), encode(0.0, None, 0.0), atol=1e-6)
  draws = [encode(0.5, jax.random.PRNGKey(k)) for k in range(8)]
  assert not all(np.allclose(d, draws[0], atol=1e-4) for d in draws[1:])  # masks vary
  # Each item keeps its whole row (scaled 2x) or none: some draw keeps all three items.
  assert any(np.allclose(d, encode(0.0, None, 2.0), atol=1e-5) for d in
             [encode(0.5, jax.random.PRNGKey(k)) for k in range(32)])
  with pytest.raises(ValueError, match="item_embed_dropout=0.5: a probability, and only with"):
    _model(item_embed_dropout=0.5)


def test_recency_embedding_marks_each_item_by_its_distance_from_the_end():
  x = jnp.asarray([[9, 11, 12, 13, 21, 22, 23], [9, 11, 12, 13, 0, 0, 0]])
  tokens, items = _config(id_length=3), _config(id_length=3, item_inputs=True)
  np.testing.assert_array_equal(network.item_recency(x, tokens),
                                [[-1, 1, 1, 1, 0, 0, 0], [-1, 0, 0, 0, -1, -1, -1]])
  np.testing.assert_array_equal(network.item_recency(x, items), [[-1, 1, 0], [-1, 0, -1]])
  # With no encoder layers each position's output is its own input, normalised: a table
  # with only row 0 (the last item) set moves the last item's position(s) and nothing else.
  for config in (tokens, items):
    m = network.Transformer(dataclasses.replace(config, num_encoder_layers=0, recency_positions=2))
    params = unbox(m.init(jax.random.PRNGKey(0), x, shift_right(x[:, :4])))["params"]
    table = params["encoder"]["recency_embedder"]["embedding"]
    encode = lambda t: m.apply({"params": {**params, "encoder": {
        **params["encoder"], "recency_embedder": {"embedding": t}}}}, x, True, method=m.encode)
    moved = ~np.isclose(encode(jnp.zeros_like(table).at[0].set(table[0])),
                        encode(jnp.zeros_like(table)), atol=1e-6).all(-1)
    real = np.asarray(network.encoder_mask(x, config))
    np.testing.assert_array_equal(moved[real], (network.item_recency(x, config) == 0)[real])
  with pytest.raises(ValueError, match="recency_positions=-1: 0 \\(off\\) or more"):
    _model(recency_positions=-1)


def test_transition_embedding_is_keyed_by_the_last_item_and_the_decoded_prefix():
  x = jnp.asarray([[9, 11, 12, 13, 21, 22, 23], [9, 11, 12, 13, 0, 0, 0]])
  np.testing.assert_array_equal(network.last_item(x, 3), [[21, 22, 23], [11, 12, 13]])
  np.testing.assert_array_equal(network.last_item(jnp.asarray([[9, 0, 0, 0]]), 3), [[0, 0, 0]])
  y = jnp.asarray([[3, 4, 5, 1], [6, 7, 8, 2]])
  model, params = _model(id_length=3, transition_buckets=4096, dropout_rate=0.0)
  # The table rows a batch trains are exactly the hashes of (last item, prefix of p codes)
  # at each decoder position p = 0..3 (the 4th code is a target only).
  grad = jax.grad(lambda p: model.loss_fn(p, {"inputs": x, "targets": y}, None)[0])(params)
  trained = np.flatnonzero(np.abs(grad["decoder"]["transition_embedder"]["embedding"]).sum(-1))
  keys = [jnp.concatenate([network.last_item(x, 3), y[:, :p]], 1) for p in range(4)]
  expected = np.unique(np.concatenate([np.asarray(network.item_buckets(k, 4096, 2)).ravel()
                                       for k in keys]))
  np.testing.assert_array_equal(trained, expected)
  assert len(expected) == 16  # 2 users x 4 positions x 2 hashes, no two alike
  with pytest.raises(ValueError, match="transition_hashes=0: 1 or more"):
    _model(id_length=3, transition_buckets=64, transition_hashes=0)


def _follower_model(**kw):
  """A model with the follower prior over 12 items of 3 tokens, 20 random sequences of 4 of
  them (so each has at most 4 followers, all kept), and
  random (not zero) follower parameters; (model, params, item tokens, sequences)."""
  rng = np.random.default_rng(0)
  tokens = np.unique(rng.integers(2, 50, (40, 3)), axis=0)[:12]
  sequences = [rng.integers(0, 4, 8) for _ in range(20)]  # 4 items: pairs recur
  items, counts = baselines.followers(sequences, len(tokens), 4)
  model = EncoderDecoderModel(network.Transformer(_config(id_length=3, follower_prior=4, **kw)),
                              memory=network.follower_memory(tokens, items, counts))
  params = unbox(model.init(jax.random.PRNGKey(0), 7, 5))["params"]
  for k, name in enumerate(n for n in params["decoder"] if n.startswith("follower_")):
    params["decoder"][name] = jax.random.normal(jax.random.PRNGKey(5 + k),
                                                params["decoder"][name].shape)
  return model, params, tokens, sequences


def _without_prior(params):
  """params with every follower-prior table zeroed (the copy's, if any, kept)."""
  return {**params, "decoder": {n: jnp.zeros_like(v) if n.startswith("follower_prior") else v
                                for n, v in params["decoder"].items()}}


def test_followers_are_the_most_frequent_next_items():
  items, counts = baselines.followers([np.array([0, 1, 2]), np.array([0, 1]),
                                       np.array([0, 2, 0, 2])], 4, 2)
  np.testing.assert_array_equal(items, [[1, 2], [2, -1], [0, -1], [-1, -1]])  # ties by index
  np.testing.assert_array_equal(counts, [[2, 2], [1, 0], [1, 0], [0, 0]])
  np.testing.assert_array_equal(baselines.followers([np.array([0, 2, 0, 1, 0, 2])], 3, 1)[0],
                                [[2], [0], [0]])


def test_item_transition_adds_the_earlier_items_followers_by_weight():
  train = [np.array([0, 1, 2]), np.array([0, 1]), np.array([0, 2, 0, 2]), np.array([3, 1])]
  histories = [np.array([0, 2]), np.array([2])]  # followers: 2 -> {0: 1}; 0 -> {1: 2, 2: 2}
  ranked = lambda w: baselines.item_transition(train, 4, histories, 3, w).tolist()
  assert ranked((1.0,)) == [[0, 1, 2], [0, 1, 2]]  # popularity (0, then 1) fills up
  assert ranked((1.0, 1.0)) == [[1, 2, 0], [0, 1, 2]]  # 1 and 2 score 2, 0 scores 1
  assert ranked((1.0, 0.4)) == [[0, 1, 2], [0, 1, 2]]  # 0.8 each: the last item's follower first


@pytest.mark.parametrize("beams,sources,options", [(1, 1, {}), (3, 1, {}),
                                                   (3, 2, dict(follower_prior_log_count=True)),
                                                   (3, 2, dict(follower_copy=True)),
                                                   (3, 2, dict(follower_copy=True,
                                                               follower_copy_features=True))])
def test_follower_prior_decodes_incrementally_as_teacher_forced(beams, sources, options):
  model, params, tokens, _ = _follower_model(follower_prior_sources=sources, **options)
  x = jnp.asarray(np.concatenate([[[9]], tokens[[1, 2]].reshape(1, -1)], 1).repeat(2, 0))
  x = x.at[1, 4:].set(tokens[0])  # row 1's last item: item 0
  # Each hypothesis decodes some item's tokens: prefixes that the followers match.
  y = jnp.asarray(np.concatenate([tokens[np.arange(2 * beams) % 4], np.ones((2 * beams, 1),
                                                                            int)], 1))
  full = model.module.apply({"params": params}, jnp.repeat(x, beams, 0), shift_right(y),
                            memory=model.memory)
  without = model.module.apply({"params": _without_prior(params)}, jnp.repeat(x, beams, 0),
                               shift_right(y), memory=model.memory)
  assert np.abs(full - without)[:, :3].min(-1).max() > 0.1  # the prior moves the logits
  np.testing.assert_allclose(full[:, 3:], without[:, 3:], atol=1e-5)  # no bias at eos
  encoded = model.encode(params, x)
  cache = model.init_cache(params, encoded, x)
  prev, steps = jnp.zeros((2 * beams,), jnp.int32), []
  for t in range(y.shape[1]):
    logits, cache = model.decode_step(params, cache, encoded, x, prev, t)
    steps.append(logits)
    prev = y[:, t]
  np.testing.assert_allclose(jnp.stack(steps, 1), full, atol=1e-4)


def _hand_counts(tokens, sequences, history, target, p, sources):
  """By hand, position p's follower counts [sources, 50]: source k, column c counts every
  (k-th last history item -> f) training pair whose f starts with the target's first p
  tokens and then c; and the row's own pair's part (last item -> target), left out in
  training."""
  prev, nxt = baselines.train_pairs(sequences)
  n = np.zeros((sources, 50), int)
  for k in range(sources):
    for f in nxt[prev == history[-1 - k]]:
      if (tokens[f, :p] == tokens[target, :p]).all():
        n[k, tokens[f, p]] += 1
  own = np.zeros_like(n)
  own[0, tokens[target, p]] = 1
  return n, own


@pytest.mark.parametrize("sources,log_count", [(1, False), (2, False), (2, True)])
def test_follower_prior_counts_the_last_items_followers_and_leaves_out_a_rows_own_pair(
    sources, log_count):
  model, params, tokens, sequences = _follower_model(follower_prior_sources=sources,
                                                     follower_prior_log_count=log_count)
  prev, nxt = baselines.train_pairs(sequences)
  decoder = {n: np.asarray(v) for n, v in params["decoder"].items()}
  tables = [decoder["follower_prior" + (f"_{k}" if k else "")] for k in range(sources)]
  assert ("follower_prior_log_scale" in decoder) == log_count
  history, target = [0, 2], 3  # source 0: item 2 (the last), source 1: item 0
  x = jnp.asarray(np.concatenate([[9], tokens[history].ravel()])[None])
  y = jnp.asarray(np.concatenate([tokens[target], [1]])[None])

  @functools.partial(jax.jit, static_argnums=1)  # as the trainer runs it: memory closed over
  def apply(p, leave):
    return model.module.apply({"params": p}, x, shift_right(y), memory=model.memory,
                              leave_out_targets=leave)[0]
  bias = apply(params, False) - apply(_without_prior(params), False)
  left_out = apply(params, True) - apply(_without_prior(params), True)
  assert (nxt[prev == history[-1]] == target).any() and (nxt[prev == history[0]] == target).any()
  for p in range(3):
    n, own = _hand_counts(tokens, sequences, history, target, p, sources)
    for counts, got in [(n, bias[p]), (n - own, left_out[p])]:
      expected = sum(tables[k][p][np.asarray(network.count_bucket(counts[k], 8))]
                     for k in range(sources))
      if log_count:  # scale[p] * log(1 + the counts summed at weights exp(log_weights))
        weights = np.exp(decoder["follower_prior_log_weights"])
        expected = expected + decoder["follower_prior_log_scale"][p] * np.log1p(weights @ counts)
      np.testing.assert_allclose(got, expected, atol=1e-5)
  np.testing.assert_array_equal(network.count_bucket(jnp.asarray([0, 1, 2, 3, 4, 7, 8, 999]), 5),
                                [0, 1, 2, 2, 3, 3, 4, 4])
  # With share buckets, a column's row is (count bucket, bucket of its share of the row).
  n = jnp.asarray([[0, 6, 2, 1, 1, 0], [4, 0, 0, 0, 0, 0]])
  np.testing.assert_array_equal(network.prior_buckets(n, 8, 5),  # shares .6 .2 .1 .1; 1
                                [[0, 3 * 5 + 1, 2 * 5 + 3, 5 + 4, 5 + 4, 0], [3 * 5 + 1] + [0] * 5])
  np.testing.assert_array_equal(network.prior_buckets(n, 8, 0), network.count_bucket(n, 8))
  no_memory = EncoderDecoderModel(model.module)
  with pytest.raises(ValueError, match="follower_prior=4 needs the followers' counts"):
    no_memory.init(jax.random.PRNGKey(0), 7, 5)
  with pytest.raises(ValueError, match="follower_prior_sources=0: 1 or more"):
    _follower_model(follower_prior_sources=0)
  for option, needed in (dict(follower_copy=True), "follower_prior"), (
      dict(follower_prior=4, follower_copy_features=True), "follower_copy"):
    with pytest.raises(ValueError, match=f"does nothing without T5Config.{needed}"):
      EncoderDecoderModel(network.Transformer(_config(id_length=3, **option))).init(
          jax.random.PRNGKey(0), 7, 5)


def test_copy_mixture_by_hand():
  logits = jnp.asarray([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, -2.0, 3.0]])
  counts = jnp.asarray([[0.0, 3.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
  gate = jnp.asarray([0.4, 2.0])
  got = np.asarray(network.copy_mixture(logits, counts, gate))
  g = 1 / (1 + np.exp(-0.4))
  soft = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  np.testing.assert_allclose(np.exp(got[0]), (1 - g) * soft[0] + g * np.asarray([0, .75, 0, .25]),
                             rtol=1e-5)
  np.testing.assert_allclose(got[1], np.log(soft[1]), rtol=1e-5)  # no followers: the model's
  grads = jax.grad(lambda *a: network.copy_mixture(*a).sum(), argnums=(0, 1, 2))(
      logits, counts, gate)
  assert all(np.isfinite(np.asarray(x)).all() for x in grads)


def test_copy_gate_features_by_hand():
  per_source = jnp.asarray([[[0., 3, 0, 1], [2, 0, 0, 0]], [[0, 0, 0, 0], [0, 0, 0, 0]]])
  mixed = network.weighted_counts(per_source, jnp.log(jnp.asarray([1.0, 0.5])))  # [0 3 0 1] + [1 0 0 0]
  np.testing.assert_allclose(network.copy_gate_features(per_source, mixed),
                             [[3 / 5, np.log(4), np.log(5), np.log(3)], [0, 0, 0, 0]], rtol=1e-6)


@pytest.mark.parametrize("per_level,features", [(False, False), (True, False), (True, True)])
def test_follower_copy_mixes_the_hand_counted_followers_in(per_level, features):
  """With the gate's state weights zeroed, each position's log-probabilities are the copy
  mixture of the model without the copy and the sources' counts by hand, at the learned
  weights (the row's own pair left out in training), over the position's block if given;
  with features, the gate also adds features[p] . (top share, log(1 + columns with a count),
  log(1 + each source's total)), all by hand."""
  sources = 2
  model, params, tokens, sequences = _follower_model(follower_prior_sources=sources,
                                                     follower_copy=True,
                                                     follower_copy_features=features)
  params = {**params, "decoder": {**params["decoder"], "follower_copy_gate":
                                  jnp.zeros_like(params["decoder"]["follower_copy_gate"])}}
  plain = network.Transformer(dataclasses.replace(model.config, follower_copy=False,
                                                   follower_copy_features=False))
  plain_params = {**params, "decoder": {n: v for n, v in params["decoder"].items()
                                        if not n.startswith("follower_copy")}}
  decoder = {n: np.asarray(v) for n, v in params["decoder"].items()}
  weights = np.exp(decoder["follower_copy_log_weights"])
  # per_level: each position's softmax over the columns its items' tokens span
  blocks = tuple((int(lo), int(hi - lo + 1)) for lo, hi in zip(tokens.min(0), tokens.max(0)))
  blocks = blocks if per_level else None
  history, target = [0, 2], 3
  x = jnp.asarray(np.concatenate([[9], tokens[history].ravel()])[None])
  y = jnp.asarray(np.concatenate([tokens[target], [1]])[None])
  for leave in (False, True):
    kw = dict(memory=model.memory, leave_out_targets=leave, level_blocks=blocks)
    got = np.asarray(model.module.apply({"params": params}, x, shift_right(y), **kw)[0])
    before = np.asarray(plain.apply({"params": plain_params}, x, shift_right(y), **kw)[0])
    for p in range(3):
      n, own = _hand_counts(tokens, sequences, history, target, p, sources)
      mixed = weights @ (n - own if leave else n)
      start, size = blocks[p] if blocks else (0, 50)
      assert mixed.sum() > 0 and mixed[:start].sum() + mixed[start + size:].sum() == 0
      gate = decoder["follower_copy_bias"][p] + decoder["follower_copy_scale"][p] * np.log1p(
          mixed.sum())
      if features:
        own_counts = (n - own if leave else n)[:, start:start + size]
        block = mixed[start:start + size]
        by_hand = [block.max() / block.sum(), np.log1p((block > 0).sum()),
                   *np.log1p(own_counts.sum(-1))]
        gate = gate + decoder["follower_copy_features"][p] @ np.asarray(by_hand)
      expected = network.copy_mixture(jnp.asarray(before[None, p, start:start + size]),
                                      jnp.asarray(mixed[None, start:start + size]),
                                      jnp.asarray([gate]))[0]
      np.testing.assert_allclose(got[p, start:start + size], expected, atol=1e-5)
      assert abs(np.log(np.exp(got[p, start:start + size]).sum())) < 1e-5  # normalised
    np.testing.assert_allclose(got[3], before[3], atol=1e-6)  # eos: no copy


def test_recent_items_are_the_last_history_items_last_first():
  x = jnp.asarray([[9, 11, 12, 21, 22, 31, 32], [9, 11, 12, 0, 0, 0, 0], [9, 0, 0, 0, 0, 0, 0]])
  np.testing.assert_array_equal(network.recent_items(x, 2, 2),
                                [[[31, 32], [21, 22]], [[11, 12], [0, 0]], [[0, 0], [0, 0]]])
  np.testing.assert_array_equal(network.last_item(x, 2), [[31, 32], [11, 12], [0, 0]])


def test_without_the_user_token_the_user_changes_nothing():
  y = jnp.asarray([[3, 4, 5, 1]])
  x = jnp.asarray([[9, 11, 12, 13, 21, 22, 23]])
  for user_token, same in ((False, True), (True, False)):
    model, params = _model(user_token=user_token)
    logits = [model.module.apply({"params": params}, x.at[:, 0].set(u), shift_right(y))
              for u in (9, 30)]
    assert np.allclose(*logits, atol=1e-5) == same, user_token


def test_per_level_heads_train_what_the_block_softmax_scores():
  model, params = _model(vocab=30)
  blocks = ((2, 6), (8, 6), (14, 4))
  per_level = EncoderDecoderModel(model.module, z_loss=0.0, level_blocks=blocks)
  x = jax.random.randint(jax.random.PRNGKey(1), (4, 7), 1, 30)
  codes = jax.random.randint(jax.random.PRNGKey(2), (4, 3), 0, 4)
  y = jnp.concatenate([codes + jnp.asarray([2, 8, 14]), jnp.ones((4, 1), jnp.int32)], 1)
  loss, metrics = per_level.loss_fn(params, {"inputs": x, "targets": y}, None)
  logp = per_level.score(params, x, y, blocks)  # [4]: each level by its block's softmax
  np.testing.assert_allclose(loss, -logp.sum() / 12, rtol=1e-5)
  assert int(metrics["num_tokens"]) == 12  # the eos position is not trained
  full, _ = EncoderDecoderModel(model.module, z_loss=0.0).loss_fn(
      params, {"inputs": x, "targets": y}, None)
  assert full > loss  # a softmax over the whole vocabulary spreads mass outside the blocks


@pytest.mark.parametrize("tied", [False, True])
def test_block_logits_and_shared_first_position_match_full_beams(tied):
  model, params = _model(logits_via_embedding=tied)
  x = jax.random.randint(jax.random.PRNGKey(1), (2, 7), 1, 50)
  encoded = model.encode(params, x)
  start = jnp.zeros((2,), jnp.int32)
  one = model.init_cache(params, encoded, x)
  full, one = model.decode_step(params, one, encoded, x, start, 0)  # once per input row
  block, _ = model.decode_step(params, model.init_cache(params, encoded, x), encoded, x, start,
                               0, block=(7, 11))
  np.testing.assert_allclose(block, full[:, 7:18], atol=1e-5)
  _, three = model.decode_step(params, model.init_cache(params, encoded, x), encoded, x,
                               jnp.zeros((6,), jnp.int32), 0)  # once per hypothesis
  y = jax.random.randint(jax.random.PRNGKey(2), (6,), 2, 50)
  expected, three = model.decode_step(params, three, encoded, x, y, 1)
  got, one = model.decode_step(params, one, encoded, x, y, 1)  # 3 hypotheses share position 0
  np.testing.assert_allclose(got, expected, atol=1e-5)
  expected, _ = model.decode_step(params, three, encoded, x, y[::-1], 2)
  got, _ = model.decode_step(params, one, encoded, x, y[::-1], 2)
  np.testing.assert_allclose(got, expected, atol=1e-5)
  assert one["decoder"]["layer_0"]["self_attention"]["cached_key_0"].shape[0] == 2


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_matmul_gradients_match_autodiff(dtype):
  """network.matmul's hand-written backward pass equals JAX's gradient of a plain dot."""
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  x = jax.random.normal(keys[0], (2, 3, 5)).astype(dtype)
  w = jax.random.normal(keys[1], (5, 4)).astype(dtype)
  c = jax.random.normal(keys[2], (2, 3, 4))
  loss = lambda fn: lambda x, w: jnp.sum(fn(x, w).astype(jnp.float32) * c)
  got = jax.grad(loss(network.matmul), (0, 1))(x, w)
  f32 = lambda a: a.astype(jnp.float32)
  want = jax.grad(loss(lambda x, w: f32(x) @ f32(w)), (0, 1))(x, w)
  tol = 1e-5 if dtype == "float32" else 5e-2  # bf16: the output and cotangent are rounded
  for g, r in zip(got, want):
    assert g.dtype == jnp.dtype(dtype)
    np.testing.assert_allclose(f32(g), r, rtol=tol, atol=tol)


@pytest.mark.parametrize("rate", [0.1, 0.25])
def test_dropout_masks_keep_the_rate_and_differ_by_key(rate):
  """The counter-hash masks keep 1 - rate of the elements in every row and column,
  are the same for the same key, and are unrelated across keys and neighbouring counters."""
  keys = jax.random.split(jax.random.PRNGKey(0), 2)
  shape = (256, 32, 128)
  a = np.asarray(network.dropout_keep(keys[0], shape, rate))
  b = np.asarray(network.dropout_keep(keys[1], shape, rate))
  n = a.size
  sigma = np.sqrt(rate * (1 - rate) / n)
  assert abs(a.mean() - (1 - rate)) < 5 * sigma
  assert np.array_equal(a, np.asarray(network.dropout_keep(keys[0], shape, rate)))
  # Per-position rates (a structured bias would show here): 5-sigma bands.
  for axis in (0, 1, 2):
    per = a.mean(axis=tuple(i for i in range(3) if i != axis))
    m = n // per.size
    assert np.all(np.abs(per - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / m))
  flat_a, flat_b = a.ravel().astype(float), b.ravel().astype(float)
  for x, y in ((flat_a, flat_b), (flat_a[1:], flat_a[:-1]), (flat_a, np.roll(flat_b, 1))):
    corr = np.corrcoef(x, y)[0, 1]
    assert abs(corr) < 5 / np.sqrt(n), corr


def test_dropout_layer_scales_the_kept_and_zeros_the_rest():
  x = jnp.ones((64, 100), jnp.float32)
  y = network.Dropout(0.2).apply({}, x, deterministic=False,
                                 rngs={"dropout": jax.random.PRNGKey(3)})
  kept = np.asarray(y) != 0
  np.testing.assert_allclose(np.asarray(y)[kept], 1 / 0.8, rtol=1e-6)
  assert 0.75 < kept.mean() < 0.85
  np.testing.assert_array_equal(network.Dropout(0.2).apply({}, x, deterministic=True), x)


def test_learning_rate_schedules():
  from tiger_jax.trainer import learning_rate_schedule
  rsqrt = learning_rate_schedule(TrainerConfig(learning_rate=0.01, decay_start=100))
  np.testing.assert_allclose([rsqrt(0), rsqrt(100), rsqrt(400)], [0.01, 0.01, 0.005], rtol=1e-6)
  cos = learning_rate_schedule(TrainerConfig(schedule="cosine", learning_rate=1e-3,
                                             warmup_steps=10, total_steps=110))
  np.testing.assert_allclose([cos(0), cos(4), cos(10), cos(60), cos(110), cos(200)],
                             [1e-4, 5e-4, 1e-3, 5e-4, 0.0, 0.0], atol=1e-9)
  const = learning_rate_schedule(TrainerConfig(schedule="constant", learning_rate=5e-4))
  assert float(const(12345)) == pytest.approx(5e-4)
  cool = learning_rate_schedule(TrainerConfig(learning_rate=0.01, decay_start=100,
                                              cooldown_steps=200, total_steps=600))
  np.testing.assert_allclose([cool(100), cool(400), cool(500), cool(600), cool(700)],
                             [0.01, 0.005, 0.01 * 0.2 ** 0.5 * 0.5, 0.0, 0.0], rtol=1e-6, atol=1e-9)
  from tiger_jax.errors import ConfigError
  with pytest.raises(ConfigError, match="total_steps=0 must be at least cooldown_steps=5"):
    TrainerConfig(cooldown_steps=5)
  with pytest.raises(ConfigError, match="TrainerConfig.total_steps=0 must exceed warmup_steps=10"):
    TrainerConfig(schedule="cosine", warmup_steps=10)
  with pytest.raises(ConfigError, match="TrainerConfig.schedule='linear'"):
    TrainerConfig(schedule="linear")
  with pytest.raises(ConfigError, match="TrainerConfig.optimizer='sgd'"):
    TrainerConfig(optimizer="sgd")


def test_absolute_step_params_step_their_zero_tables_by_the_learning_rate():
  """The leaves named by a prefix get optax.adafactor's update without parameter scaling, the
  others the default one: from zero, about lr against lr * 1e-3 (the RMS floor) a step."""
  import optax
  from tiger_jax import trainer as trainer_lib
  from tiger_jax.errors import ConfigError
  params = {"decoder": {"follower_prior": jnp.zeros((4, 8)), "kernel": jnp.zeros((4, 8))},
            "follower_block": {"scale": jnp.zeros((3,))}}  # a prefix names leaves, not modules
  grads = jax.tree.map(lambda x: jax.random.normal(jax.random.PRNGKey(x.size), x.shape), params)
  config = TrainerConfig(learning_rate=0.01, decay_start=10**6, grad_clip=0.0,
                         absolute_step_params=["follower_"])  # a list, as the run's JSON has it
  assert config.absolute_step_params == ("follower_",)
  tx = trainer_lib.make_optimizer(config)
  updates, _ = tx.update(grads, tx.init(params), params)
  reference = {"absolute": optax.adafactor(0.01, multiply_by_parameter_scale=False),
               "scaled": optax.adafactor(0.01)}
  for kind, (module, name) in (("absolute", ("decoder", "follower_prior")),
                               ("scaled", ("decoder", "kernel")),
                               ("scaled", ("follower_block", "scale"))):
    g, p = grads[module][name], params[module][name]
    want, _ = reference[kind].update(g, reference[kind].init(p), p)
    np.testing.assert_allclose(updates[module][name], want, rtol=1e-6)
    rms = float(jnp.sqrt(jnp.mean(updates[module][name] ** 2)))
    assert (0.003 < rms <= 0.0100001) if kind == "absolute" else rms <= 1.001e-5, (kind, rms)
  with pytest.raises(ConfigError, match=r"absolute_step_params=\('follower_',\) is an Adafactor"):
    TrainerConfig(optimizer="adamw", absolute_step_params=("follower_",))
  with pytest.raises(ConfigError, match="a tuple of name prefixes"):
    TrainerConfig(absolute_step_params="follower_")


def test_bfloat16_activations_track_float32():
  """The same parameters with bfloat16 activations give nearly the float32 logits."""
  model, params = _model()
  bf16 = model.with_dtype("bfloat16")
  x = jax.random.randint(jax.random.PRNGKey(1), (4, 7), 1, 50)
  y = jax.random.randint(jax.random.PRNGKey(2), (4, 5), 2, 50)
  want = model.module.apply({"params": params}, x, y)
  got = bf16.module.apply({"params": params}, x, y)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, atol=0.1 * float(jnp.std(want)))


def test_gated_mlp_and_tied_logits_build():
  model, params = _model(gated_mlp=True, logits_via_embedding=True)
  assert "logits_dense" not in params["decoder"]
  assert "wi_gate" in params["encoder"]["layer_0"]["mlp"]


def test_sharded_on_8_devices_matches_one_device():
  proc = subprocess.run([sys.executable, os.path.join(REPO, "tests", "sharding_check.py")],
                        capture_output=True, text=True, cwd=REPO, timeout=300)
  assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]


def test_overfits_a_tiny_dataset():
  from tiger_jax import partitioning
  from tiger_jax.trainer import Trainer
  model, _ = _model(vocab=40)
  rng = np.random.default_rng(0)
  batch = {"inputs": rng.integers(1, 40, (8, 7)).astype(np.int32),
           "targets": rng.integers(2, 40, (8, 5)).astype(np.int32)}
  trainer = Trainer(model, TrainerConfig(optimizer="adamw", learning_rate=3e-3, decay_start=10**6),
                    partitioning.make_mesh(), {"inputs": 7, "targets": 5})
  state = trainer.init_state()
  first = None
  for _ in range(300):
    state, metrics = trainer.train_step(state, batch)
    first = first if first is not None else float(metrics["loss"])
  final = float(trainer.eval_step(state.params, batch)["loss"])
  assert first > 3.0 and final < 0.05, (first, final)


def test_kill_and_resume_gives_the_same_parameters(tiny_run, tmp_path):
  from tiger_jax import experiment as experiment_lib, trainer as trainer_lib
  data_dir, sid_dir = tiny_run
  exp = experiment_lib.experiment("tiger_resume_test", None, data_dir, sid_dir,
                                  network.T5Config(**TINY_MODEL), mesh_shape=(1, 1))
  assert exp.feature_lengths == {"inputs": 81, "targets": 5}  # derived from the ID length
  cfg = TrainerConfig(checkpoint_every=3, eval_every=0, log_every=2, num_buckets=2,
                      learning_rate=0.01, decay_start=2)
  whole = trainer_lib.train(str(tmp_path / "a"), 6, 8, exp, cfg)
  trainer_lib.train(str(tmp_path / "b"), 3, 8, exp, cfg)  # "killed" after step 3
  resumed = trainer_lib.train(str(tmp_path / "b"), 6, 8, exp, cfg)
  assert int(resumed.step) == 6
  for a, b in zip(jax.tree.leaves(whole.params), jax.tree.leaves(resumed.params)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert os.listdir(tmp_path / "a" / "train")  # TensorBoard event files
  assert sorted(os.listdir(tmp_path / "a" / "checkpoints"))[-1] == "6"
  # The evaluate path on that run: every test user, real items only, the JSON the CLI writes.
  import json
  from tiger_jax import evaluate as evaluate_lib, io_utils, results
  result = evaluate_lib.evaluate_checkpoint(exp, str(tmp_path / "a"), "test", batch_size=32)
  written = json.load(open(tmp_path / "a" / "results" / "test.json"))
  assert written["users"] == 80 and written["checkpoint_step"] == 6 and written["beam"] == 20
  assert {"recall@5", "recall@10", "ndcg@5", "ndcg@10", "invalid_rate"} <= set(written)
  assert written["recall@10"] == result["recall@10"] and written["invalid_rate"] == 0.0
  ranked = io_utils.load_arrays(str(tmp_path / "a" / "results" / "test_ranked.npz"))["ranked"]
  assert ranked.shape == (80, 20) and (ranked >= 0).all() and (ranked < len(exp.ids)).all()
  assert results.train_seconds(str(tmp_path / "a")) > 0
  # evaluate's numbers come from seqio.Evaluator and the task's metric_fns; the trainer's
  # validation pass computes them directly: both give the same lists and metrics.
  from tiger_jax import experiment as experiment_lib, input_pipeline, retrieval
  from tiger_jax.metrics import METRIC_NAMES
  _, state = experiment_lib.restore(exp, str(tmp_path / "a"))
  direct_ranked = {}
  direct = retrieval.evaluate(
      retrieval.Retriever(exp.model, exp.layout, exp.ids), state.params,
      input_pipeline.eval_batches(exp.task, exp.feature_lengths, "test", 32), direct_ranked)
  assert {k: direct[k] for k in METRIC_NAMES} == {k: result[k] for k in METRIC_NAMES}
  by_user = lambda z: z["ranked"][np.argsort(z["users"])]
  seqio_ranked = io_utils.load_arrays(str(tmp_path / "a" / "results" / "test_ranked.npz"))
  np.testing.assert_array_equal(by_user(direct_ranked), by_user(seqio_ranked))
  scores = direct_ranked["scores"]  # each beam's log-probability, best first
  assert scores.shape == (80, 20) and np.isfinite(scores).all() and (scores <= 0).all()
  assert (np.diff(scores, axis=1) <= 1e-6).all()
  # A partial evaluation, or one at another beam, writes its own file: test.json stays.
  part = evaluate_lib.evaluate_checkpoint(exp, str(tmp_path / "a"), "test", beam_size=3,
                                          batch_size=32, max_examples=10)
  assert part["users"] == 10 and json.load(open(tmp_path / "a" / "results" / "test.json")) == written
  assert json.load(open(tmp_path / "a" / "results" / "test_beam3_first10users.json"))["users"] == 10
  with pytest.raises(ValueError, match=rf"beam size 2000 must be in 1\.\.{len(exp.ids)} "):
    evaluate_lib.evaluate_checkpoint(exp, str(tmp_path / "a"), "test", beam_size=2000)
  clock = json.load(open(tmp_path / "b" / "train_clock.json"))["steps"]  # resumed at step 3
  assert set(clock) == {"3", "6"} and clock["6"] > clock["3"] > 0
  assert results.train_seconds(str(tmp_path / "b")) == round(clock["6"], 1)
  with pytest.raises(FileNotFoundError, match="best: no checkpoint to evaluate"):  # no validation
    evaluate_lib.evaluate_checkpoint(exp, str(tmp_path / "a"), "test", checkpoint="best")
  # A saved evaluation counts only while its checkpoint is the one `latest` names
  # (bench/val_test_gap.py decodes again otherwise).
  from tiger_jax import trainer as trainer_lib
  a = str(tmp_path / "a")
  assert evaluate_lib.saved_evaluation(a, "test", "latest") == written
  assert evaluate_lib.saved_evaluation(str(tmp_path / "b"), "test", "latest") is None  # none saved
  assert trainer_lib.checkpoint_step(a, "best") is None
  os.makedirs(tmp_path / "a" / "checkpoints" / "9.orbax-checkpoint-tmp-1")  # unfinished: no step
  assert evaluate_lib.saved_evaluation(a, "test", "latest") == written
  os.makedirs(tmp_path / "a" / "checkpoints" / "9")  # the run trained on: the lists are stale
  assert trainer_lib.checkpoint_step(a) == 9
  assert evaluate_lib.saved_evaluation(a, "test", "latest") is None


def test_train_clock_leaves_out_pauses_and_resumes_from_the_restored_step(tmp_path):
  import time
  from tiger_jax.trainer import TrainClock
  clock = TrainClock(str(tmp_path), 0)
  time.sleep(0.2)
  clock.pause(np.zeros(1))
  time.sleep(0.4)  # an evaluation: not training time
  clock.resume()
  time.sleep(0.1)
  seconds = clock.pause(np.zeros(1))
  assert 0.29 <= seconds < 0.5
  clock.record(4)
  time.sleep(0.1)
  clock.pause(np.zeros(1))
  clock.record(8)
  assert TrainClock(str(tmp_path), 4).seconds == round(seconds, 3)  # resumed from step 4
  assert TrainClock(str(tmp_path), 8).seconds > seconds
  assert TrainClock(str(tmp_path), 6).seconds == round(seconds, 3)  # no time for 6: step 4's
  assert TrainClock(str(tmp_path), 0).seconds == 0.0  # a fresh run


def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before(tmp_path, caplog):
  import orbax.checkpoint as ocp
  from tiger_jax.trainer import Checkpoints
  state = {"w": jnp.arange(6, dtype=jnp.float32), "step": jnp.zeros((), jnp.int32)}
  ckpt = Checkpoints(str(tmp_path), keep=5, best_metric=None)
  for step in (1, 2, 3):
    ckpt.latest.save(step, args=ocp.args.StandardSave(
        {"w": state["w"] + step, "step": jnp.full((), step, jnp.int32)}))
  ckpt.close()
  # Truncate every data file of the newest checkpoint, as a kill mid-copy would.
  for root, _, files in os.walk(tmp_path / "checkpoints" / "3"):
    for f in files:
      if not f.endswith(".json") and os.path.getsize(os.path.join(root, f)) > 8:
        with open(os.path.join(root, f), "r+b") as fh:
          fh.truncate(4)
  ckpt = Checkpoints(str(tmp_path), keep=5, best_metric=None)
  with caplog.at_level("WARNING"):
    restored = ckpt.restore_latest(state)
  assert int(restored["step"]) == 2 and np.allclose(restored["w"], state["w"] + 2)
  assert "checkpoint 3 does not restore" in caplog.text and "resuming from 2" in caplog.text
  assert (tmp_path / "corrupt_checkpoints" / "3").is_dir()  # kept, not deleted
  assert ckpt.latest.all_steps() == [1, 2]
  ckpt.close()
  # A model of another shape restores from none of them: an error, and nothing is moved.
  ckpt = Checkpoints(str(tmp_path), keep=5, best_metric=None)
  with pytest.raises(RuntimeError, match=r"none of the checkpoints \[2, 1\] restores"):
    ckpt.restore_latest({"w": jnp.zeros(7, jnp.float32), "step": jnp.zeros((), jnp.int32)})
  assert ckpt.latest.all_steps() == [1, 2]
  ckpt.close()


def test_train_refuses_no_steps_or_a_bad_batch(tiny_run, tmp_path):
  from tiger_jax import experiment as experiment_lib, trainer as trainer_lib
  data_dir, sid_dir = tiny_run
  exp = experiment_lib.experiment("tiger_args_test", None, data_dir, sid_dir,
                                  network.T5Config(**TINY_MODEL), mesh_shape=(1, 1))
  for steps, batch in ((0, 8), (5, -4), (5, 0)):
    with pytest.raises(ValueError, match=f"train_steps={steps}, batch_size={batch}: both must"):
      trainer_lib.train(str(tmp_path), steps, batch, exp, TrainerConfig())
  assert not os.listdir(tmp_path)  # nothing written


def test_ema_of_parameters_follows_its_formula_and_validation_uses_it(tmp_path):
  import itertools
  import tensorflow as tf
  from tiger_jax import partitioning
  from tiger_jax.trainer import EmaTrainState, Trainer, ema_decay_at, train_loop
  model, _ = _model(vocab=40)
  rng = np.random.default_rng(0)
  batch = {"inputs": rng.integers(1, 40, (8, 7)).astype(np.int32),
           "targets": rng.integers(2, 40, (8, 5)).astype(np.int32)}
  config = TrainerConfig(ema_decay=0.2, learning_rate=0.01, decay_start=10**6, eval_every=3,
                         checkpoint_every=3, log_every=3)
  trainer = Trainer(model, config, partitioning.make_mesh(), {"inputs": 7, "targets": 5})
  state = trainer.init_state()
  assert isinstance(state, EmaTrainState)
  expected = jax.tree.map(np.array, state.params)
  for t in range(12):  # decay min(0.2, (1 + t) / (10 + t)): 0.1, 0.18, then 0.2
    state, _ = trainer.train_step(state, batch)
    d = min(0.2, (1 + t) / (10 + t))
    expected = jax.tree.map(lambda e, p: d * e + (1 - d) * np.asarray(p), expected, state.params)
  for e, got in zip(jax.tree.leaves(expected), jax.tree.leaves(state.eval_params)):
    np.testing.assert_allclose(got, e, rtol=1e-5, atol=1e-6)
  assert not np.allclose(jax.tree.leaves(state.eval_params)[0], jax.tree.leaves(state.params)[0])
  assert float(ema_decay_at(0.999, 0)) == pytest.approx(0.1)
  assert float(ema_decay_at(0.999, 10**6)) == pytest.approx(0.999)
  with pytest.raises(ValueError, match=r"TrainerConfig.ema_decay=1.0 must be in \[0, 1\)"):
    TrainerConfig(ema_decay=1.0)
  # The trainer's validation decodes the average (it keeps best/) and logs the raw
  # parameters beside it, on the same trajectory.
  seen = []

  def eval_fn(params, step):
    seen.append(jax.tree.map(np.array, params))
    return {"ndcg@10": float(np.abs(jax.tree.leaves(params)[0]).sum())}

  final = train_loop(trainer, lambda start: itertools.repeat(batch), 3, str(tmp_path), eval_fn)
  assert len(seen) == 2
  for average, raw, e, p in zip(*map(jax.tree.leaves, (seen[0], seen[1], final.ema_params,
                                                       final.params))):
    np.testing.assert_array_equal(average, e)
    np.testing.assert_array_equal(raw, p)
  tags = {v.tag: float(tf.make_ndarray(v.tensor)) for path in (tmp_path / "train").iterdir()
          for event in tf.compat.v1.train.summary_iterator(str(path)) for v in event.summary.value}
  assert tags["validation/ndcg@10"] == pytest.approx(np.abs(jax.tree.leaves(seen[0])[0]).sum())
  assert tags["validation_raw/ndcg@10"] == pytest.approx(np.abs(jax.tree.leaves(seen[1])[0]).sum())


def test_restore_uses_the_runs_own_trainer_config_and_its_average(tiny_run, tmp_path):
  """An AdamW run with parameter averaging restores (optimizer state and average as saved) and
  evaluates with the average; a run that turns averaging on at a plain checkpoint starts it
  there."""
  from tiger_jax import evaluate as evaluate_lib, experiment as experiment_lib, retrieval
  from tiger_jax import input_pipeline, trainer as trainer_lib
  data_dir, sid_dir = tiny_run
  exp = experiment_lib.experiment("tiger_ema_test", None, data_dir, sid_dir,
                                  network.T5Config(**TINY_MODEL), mesh_shape=(1, 1))
  plain = TrainerConfig(optimizer="adamw", learning_rate=3e-3, checkpoint_every=2, eval_every=0,
                        num_buckets=1)
  ema = dataclasses.replace(plain, ema_decay=0.5)
  trained = trainer_lib.train(str(tmp_path / "a"), 4, 8, exp, ema)
  _, state = experiment_lib.restore(exp, str(tmp_path / "a"))
  assert isinstance(state, trainer_lib.EmaTrainState) and int(state.step) == 4
  for a, b in zip(jax.tree.leaves(trained.ema_params), jax.tree.leaves(state.eval_params)):
    np.testing.assert_array_equal(a, b)
  result = evaluate_lib.evaluate_checkpoint(exp, str(tmp_path / "a"), "test", beam_size=3,
                                            batch_size=16, max_examples=16)
  batches = lambda: input_pipeline.eval_batches(exp.task, exp.feature_lengths, "test", 16, 16)
  retriever = retrieval.Retriever(exp.model, exp.layout, exp.ids, 3)
  assert result["ndcg@10"] == retrieval.evaluate(retriever, state.ema_params, batches())["ndcg@10"]
  # Averaging turned on at step 2 of a plain run: resumes there, the average starts from it.
  trainer_lib.train(str(tmp_path / "b"), 2, 8, exp, plain)
  _, at2 = experiment_lib.restore(exp, str(tmp_path / "b"))
  assert type(at2) is trainer_lib.TrainState
  resumed = trainer_lib.train(str(tmp_path / "b"), 3, 8, exp, ema)
  assert int(resumed.step) == 3
  for p2, p3, e3 in zip(*map(jax.tree.leaves, (at2.params, resumed.params, resumed.ema_params))):
    # the update after 2 steps weighs the average by min(0.5, (1 + 2) / (10 + 2)) = 0.25
    np.testing.assert_allclose(e3, 0.25 * np.asarray(p2) + 0.75 * np.asarray(p3), rtol=1e-5,
                               atol=1e-6)
  # Adafactor with absolute steps for some leaves: its partitioned state saves and resumes.
  partial = TrainerConfig(checkpoint_every=2, eval_every=0, num_buckets=1,
                          absolute_step_params=("scale",))  # the RMSNorm scales
  trainer_lib.train(str(tmp_path / "c"), 2, 8, exp, partial)
  _, at2 = experiment_lib.restore(exp, str(tmp_path / "c"))
  assert "absolute" in at2.opt_state[-1].inner_states  # optax.multi_transform's
  assert int(trainer_lib.train(str(tmp_path / "c"), 3, 8, exp, partial).step) == 3


def test_a_fitted_prior_table_recovers_the_log_odds_of_its_buckets():
  """Rows of 4 columns, one in count bucket 1 and the rest in bucket 0; the bucket-1 column
  is the target with probability 0.7 at level 0 and 0.2 at level 1. With the model's logits
  flat, the fit's bucket-1 minus bucket-0 bias is the log-odds log(p * 3 / (1 - p))."""
  from tiger_jax import calibration
  rng = np.random.default_rng(0)
  n = 4000
  hot = rng.integers(0, 4, (n, 2))
  buckets = (np.arange(4)[None, None, :] == hot[..., None]).astype(np.int32)
  hit = rng.random((n, 2)) < np.array([0.7, 0.2])
  other = (hot + rng.integers(1, 4, (n, 2))) % 4
  targets = np.where(hit, hot, other)
  table = calibration.fit_prior_table(np.zeros((n, 2, 4), np.float32), buckets, targets, 3,
                                      steps=400, learning_rate=0.1)
  for level in range(2):
    p = hit[:, level].mean()
    np.testing.assert_allclose(table[level, 1] - table[level, 0], np.log(p * 3 / (1 - p)),
                               atol=0.05)
