"""network/item_inputs.py: item-level inputs, the item embedding, recency."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import small_config as _config, small_model as _model
from tiger_jax import network
from tiger_jax.errors import ConfigError
from tiger_jax.network import hashing, inputs
from tiger_jax.network.item_inputs import ItemInputsConfig, item_recency
from tiger_jax.models import shift_right, unbox


def test_item_inputs_give_one_encoder_position_per_item():
  model, params = _model(item_inputs=ItemInputsConfig(), id_length=3)
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
  rows = np.asarray(hashing.item_buckets(jnp.asarray(ids), 4096, 2))
  assert rows.shape == (len(ids), 2) and rows.min() >= 0 and rows.max() < 4096
  assert len(np.unique(rows, axis=0)) == len(ids)  # no two items share both rows
  assert (rows[:, 0] != rows[:, 1]).mean() > 0.99  # the two hashes are unrelated
  single = np.asarray(hashing.item_buckets(jnp.asarray(ids), 4096, 1))[:, 0]
  assert len(np.unique(single)) < len(ids)  # one hash alone collides at this load
  np.testing.assert_array_equal(hashing.item_buckets(jnp.asarray(ids[:5]), 4096, 2), rows[:5])
  # The codes' sum is order-free, the item's embedding is not: a permuted ID is another item.
  model, params = _model(item_inputs=ItemInputsConfig(embed_buckets=64), id_length=3)
  assert params["encoder"]["item_embedder"]["embedding"].shape == (64, 16)
  x = jnp.asarray([[9, 11, 12, 13, 21, 22, 23]])
  swapped = model.encode(params, x.at[:, 1:4].set(x[:, 3:0:-1]))
  assert not np.allclose(swapped[:, 1], model.encode(params, x)[:, 1], atol=1e-3)
  with pytest.raises(ConfigError, match="embed_buckets needs ItemInputsConfig.item_level = True"):
    ItemInputsConfig(item_level=False, embed_buckets=64)


def test_item_embedding_dropout_drops_whole_items_in_training_only():
  kw = dict(id_length=3, dropout_rate=0.0)
  model, params = _model(**kw, item_inputs=ItemInputsConfig(embed_buckets=64))
  x = jnp.asarray([[9, 11, 12, 13, 21, 22, 23, 11, 22, 13]])

  def encode(rate, rng, table_scale=1.0):
    p = {**params, "encoder": {**params["encoder"], "item_embedder": {
        "embedding": params["encoder"]["item_embedder"]["embedding"] * table_scale}}}
    m = network.Transformer(_config(**kw, item_inputs=ItemInputsConfig(embed_buckets=64,
                                                                       embed_dropout=rate)))
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
  with pytest.raises(ConfigError, match="embed_dropout=0.5: a probability, and only with"):
    ItemInputsConfig(embed_dropout=0.5)


def test_recency_embedding_marks_each_item_by_its_distance_from_the_end():
  x = jnp.asarray([[9, 11, 12, 13, 21, 22, 23], [9, 11, 12, 13, 0, 0, 0]])
  tokens = _config(id_length=3, item_inputs=ItemInputsConfig(item_level=False))
  items = _config(id_length=3, item_inputs=ItemInputsConfig())
  np.testing.assert_array_equal(item_recency(x, tokens),
                                [[-1, 1, 1, 1, 0, 0, 0], [-1, 0, 0, 0, -1, -1, -1]])
  np.testing.assert_array_equal(item_recency(x, items), [[-1, 1, 0], [-1, 0, -1]])
  # With no encoder layers each position's output is its own input, normalised: a table
  # with only row 0 (the last item) set moves the last item's position(s) and nothing else.
  for config in (tokens, items):
    m = network.Transformer(dataclasses.replace(config, num_encoder_layers=0, item_inputs=dataclasses.replace(
        config.item_inputs, recency_positions=2)))
    params = unbox(m.init(jax.random.PRNGKey(0), x, shift_right(x[:, :4])))["params"]
    table = params["encoder"]["recency_embedder"]["embedding"]
    encode = lambda t: m.apply({"params": {**params, "encoder": {
        **params["encoder"], "recency_embedder": {"embedding": t}}}}, x, True, method=m.encode)
    moved = ~np.isclose(encode(jnp.zeros_like(table).at[0].set(table[0])),
                        encode(jnp.zeros_like(table)), atol=1e-6).all(-1)
    real = np.asarray(network.encoder_mask(x, config))
    np.testing.assert_array_equal(moved[real], (item_recency(x, config) == 0)[real])
  with pytest.raises(ConfigError, match="recency_positions=-1: 0 \\(off\\) or more"):
    ItemInputsConfig(recency_positions=-1)


def test_recent_items_are_the_last_history_items_last_first():
  x = jnp.asarray([[9, 11, 12, 21, 22, 31, 32], [9, 11, 12, 0, 0, 0, 0], [9, 0, 0, 0, 0, 0, 0]])
  np.testing.assert_array_equal(inputs.recent_items(x, 2, 2),
                                [[[31, 32], [21, 22]], [[11, 12], [0, 0]], [[0, 0], [0, 0]]])
  np.testing.assert_array_equal(inputs.last_item(x, 2), [[31, 32], [11, 12], [0, 0]])

