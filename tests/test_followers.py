"""network/followers.py: the follower prior and copy, and their counts."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import small_config as _config
from tiger_jax import baselines, network
from tiger_jax.errors import ConfigError
from tiger_jax.network import followers
from tiger_jax.network.followers import FollowerConfig
from tiger_jax.models import EncoderDecoderModel, shift_right, unbox
from tiger_jax.trainer import TrainerConfig


def _follower_model(**kw):
  """A model with the follower prior over 12 items of 3 tokens, 20 random sequences of 4 of
  them (so each has at most 4 followers, all kept), and
  random (not zero) follower parameters; (model, params, item tokens, sequences)."""
  rng = np.random.default_rng(0)
  tokens = np.unique(rng.integers(2, 50, (40, 3)), axis=0)[:12]
  sequences = [rng.integers(0, 4, 8) for _ in range(20)]  # 4 items: pairs recur
  items, counts = baselines.followers(sequences, len(tokens), 4)
  model = EncoderDecoderModel(
      network.Transformer(_config(id_length=3, followers=FollowerConfig(count=4, **kw))),
      memory=followers.memory_variables(followers.follower_memory(tokens, items, counts)))
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
                                                   (3, 2, dict(log_count=True)),
                                                   (3, 2, dict(copy=True)),
                                                   (3, 2, dict(copy=True, copy_features=True))])
def test_follower_prior_decodes_incrementally_as_teacher_forced(beams, sources, options):
  model, params, tokens, _ = _follower_model(sources=sources, **options)
  x = jnp.asarray(np.concatenate([[[9]], tokens[[1, 2]].reshape(1, -1)], 1).repeat(2, 0))
  x = x.at[1, 4:].set(tokens[0])  # row 1's last item: item 0
  # Each hypothesis decodes some item's tokens: prefixes that the followers match.
  y = jnp.asarray(np.concatenate([tokens[np.arange(2 * beams) % 4], np.ones((2 * beams, 1),
                                                                            int)], 1))
  # (Each under jit, as the trainer and the search run them: one compile each, not one per op.)
  apply = jax.jit(lambda p: model.module.apply(model.variables(p), jnp.repeat(x, beams, 0),
                                               shift_right(y)))
  full, without = apply(params), apply(_without_prior(params))
  assert np.abs(full - without)[:, :3].min(-1).max() > 0.1  # the prior moves the logits
  np.testing.assert_allclose(full[:, 3:], without[:, 3:], atol=1e-5)  # no bias at eos

  @jax.jit
  def incremental(p):  # the decoding loop, step by step from the cache
    encoded = model.encode(p, x)
    cache = model.init_cache(p, encoded, x)
    prev, steps = jnp.zeros((2 * beams,), jnp.int32), []
    for t in range(y.shape[1]):
      logits, cache = model.decode_step(p, cache, encoded, x, prev, t)
      steps.append(logits)
      prev = y[:, t]
    return jnp.stack(steps, 1)
  np.testing.assert_allclose(incremental(params), full, atol=1e-4)


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
  model, params, tokens, sequences = _follower_model(sources=sources, log_count=log_count)
  prev, nxt = baselines.train_pairs(sequences)
  decoder = {n: np.asarray(v) for n, v in params["decoder"].items()}
  tables = [decoder["follower_prior" + (f"_{k}" if k else "")] for k in range(sources)]
  assert ("follower_prior_log_scale" in decoder) == log_count
  history, target = [0, 2], 3  # source 0: item 2 (the last), source 1: item 0
  x = jnp.asarray(np.concatenate([[9], tokens[history].ravel()])[None])
  y = jnp.asarray(np.concatenate([tokens[target], [1]])[None])

  @functools.partial(jax.jit, static_argnums=1)  # as the trainer runs it: memory closed over
  def apply(p, leave):  # training (not deterministic) leaves the row's own pair out
    return model.module.apply(model.variables(p), x, shift_right(y), deterministic=not leave)[0]
  bias = apply(params, False) - apply(_without_prior(params), False)
  left_out = apply(params, True) - apply(_without_prior(params), True)
  assert (nxt[prev == history[-1]] == target).any() and (nxt[prev == history[0]] == target).any()
  for p in range(3):
    n, own = _hand_counts(tokens, sequences, history, target, p, sources)
    for counts, got in [(n, bias[p]), (n - own, left_out[p])]:
      expected = sum(tables[k][p][np.asarray(followers.count_bucket(counts[k], 8))]
                     for k in range(sources))
      if log_count:  # scale[p] * log(1 + the counts summed at weights exp(log_weights))
        weights = np.exp(decoder["follower_prior_log_weights"])
        expected = expected + decoder["follower_prior_log_scale"][p] * np.log1p(weights @ counts)
      np.testing.assert_allclose(got, expected, atol=1e-5)
  np.testing.assert_array_equal(followers.count_bucket(jnp.asarray([0, 1, 2, 3, 4, 7, 8, 999]), 5),
                                [0, 1, 2, 2, 3, 3, 4, 4])
  # With share buckets, a column's row is (count bucket, bucket of its share of the row).
  n = jnp.asarray([[0, 6, 2, 1, 1, 0], [4, 0, 0, 0, 0, 0]])
  np.testing.assert_array_equal(followers.prior_buckets(n, 8, 5),  # shares .6 .2 .1 .1; 1
                                [[0, 3 * 5 + 1, 2 * 5 + 3, 5 + 4, 5 + 4, 0], [3 * 5 + 1] + [0] * 5])
  np.testing.assert_array_equal(followers.prior_buckets(n, 8, 0), followers.count_bucket(n, 8))
  no_memory = EncoderDecoderModel(model.module)  # initialises, but cannot run without counts
  with pytest.raises(ValueError, match="FollowerConfig needs the followers' counts"):
    no_memory.loss_fn(unbox(no_memory.init(jax.random.PRNGKey(0), 7, 5))["params"],
                      {"inputs": x, "targets": y}, None)
  with pytest.raises(ConfigError, match="FollowerConfig.sources=0: 1 or more"):
    FollowerConfig(sources=0)
  with pytest.raises(ConfigError, match="copy_features does nothing without FollowerConfig.copy"):
    FollowerConfig(copy_features=True)


def test_copy_mixture_by_hand():
  logits = jnp.asarray([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, -2.0, 3.0]])
  counts = jnp.asarray([[0.0, 3.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
  gate = jnp.asarray([0.4, 2.0])
  got = np.asarray(followers.copy_mixture(logits, counts, gate))
  g = 1 / (1 + np.exp(-0.4))
  soft = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  np.testing.assert_allclose(np.exp(got[0]), (1 - g) * soft[0] + g * np.asarray([0, .75, 0, .25]),
                             rtol=1e-5)
  np.testing.assert_allclose(got[1], np.log(soft[1]), rtol=1e-5)  # no followers: the model's
  grads = jax.grad(lambda *a: followers.copy_mixture(*a).sum(), argnums=(0, 1, 2))(
      logits, counts, gate)
  assert all(np.isfinite(np.asarray(x)).all() for x in grads)


def test_copy_gate_features_by_hand():
  per_source = jnp.asarray([[[0., 3, 0, 1], [2, 0, 0, 0]], [[0, 0, 0, 0], [0, 0, 0, 0]]])
  mixed = followers.weighted_counts(per_source, jnp.log(jnp.asarray([1.0, 0.5])))  # [0 3 0 1] + [1 0 0 0]
  np.testing.assert_allclose(followers.copy_gate_features(per_source, mixed),
                             [[3 / 5, np.log(4), np.log(5), np.log(3)], [0, 0, 0, 0]], rtol=1e-6)


@pytest.mark.parametrize("per_level,features", [(False, False), (True, False), (True, True)])
def test_follower_copy_mixes_the_hand_counted_followers_in(per_level, features):
  """With the gate's state weights zeroed, each position's log-probabilities are the copy
  mixture of the model without the copy and the sources' counts by hand, at the learned
  weights (the row's own pair left out in training), over the position's block if given;
  with features, the gate also adds features[p] . (top share, log(1 + columns with a count),
  log(1 + each source's total)), all by hand."""
  sources = 2
  model, params, tokens, sequences = _follower_model(sources=sources, copy=True,
                                                     copy_features=features)
  params = {**params, "decoder": {**params["decoder"], "follower_copy_gate":
                                  jnp.zeros_like(params["decoder"]["follower_copy_gate"])}}
  plain = network.Transformer(dataclasses.replace(model.config, followers=dataclasses.replace(
      model.config.followers, copy=False, copy_features=False)))
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
    kw = dict(deterministic=not leave, level_blocks=blocks)  # training leaves its pair out
    got = np.asarray(model.module.apply(model.variables(params), x, shift_right(y), **kw)[0])
    before = np.asarray(plain.apply(model.variables(plain_params), x, shift_right(y), **kw)[0])
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
      expected = followers.copy_mixture(jnp.asarray(before[None, p, start:start + size]),
                                      jnp.asarray(mixed[None, start:start + size]),
                                      jnp.asarray([gate]))[0]
      np.testing.assert_allclose(got[p, start:start + size], expected, atol=1e-5)
      assert abs(np.log(np.exp(got[p, start:start + size]).sum())) < 1e-5  # normalised
    np.testing.assert_allclose(got[3], before[3], atol=1e-6)  # eos: no copy


def test_absolute_step_params_step_their_zero_tables_by_the_learning_rate():
  """FollowerConfig.absolute_steps names its parameters' prefix; the leaves it names get
  optax.adafactor's update without parameter scaling, the others the default one: from zero,
  about lr against lr * 1e-3 (the RMS floor) a step."""
  import optax
  from tiger_jax import trainer as trainer_lib
  params = {"decoder": {"follower_prior": jnp.zeros((4, 8)), "kernel": jnp.zeros((4, 8))},
            "follower_block": {"scale": jnp.zeros((3,))}}  # a prefix names leaves, not modules
  grads = jax.tree.map(lambda x: jax.random.normal(jax.random.PRNGKey(x.size), x.shape), params)
  config = TrainerConfig(learning_rate=0.01, decay_start=10**6, grad_clip=0.0)
  prefixes = _config(followers=FollowerConfig(absolute_steps=True)).absolute_step_params()
  assert prefixes == ("follower_",)
  assert _config(followers=FollowerConfig()).absolute_step_params() == ()
  tx = trainer_lib.make_optimizer(config, prefixes)
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
  with pytest.raises(ConfigError, match=r"step \('follower_',\) by the learning rate itself, an "
                     "Adafactor setting"):
    trainer_lib.make_optimizer(TrainerConfig(optimizer="adamw"), prefixes)


def test_a_fitted_prior_table_recovers_the_log_odds_of_its_buckets():
  """Rows of 4 columns, one in count bucket 1 and the rest in bucket 0; the bucket-1 column
  is the target with probability 0.7 at level 0 and 0.2 at level 1. With the model's logits
  flat, the fit's bucket-1 minus bucket-0 bias is the log-odds log(p * 3 / (1 - p))."""
  from studies import calibration
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
