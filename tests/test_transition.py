"""network/transition.py: the learned transition table."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import small_model as _model
from tiger_jax.errors import ConfigError
from tiger_jax.network import hashing, inputs
from tiger_jax.network.transition import TransitionConfig


def test_transition_embedding_is_keyed_by_the_last_item_and_the_decoded_prefix():
  x = jnp.asarray([[9, 11, 12, 13, 21, 22, 23], [9, 11, 12, 13, 0, 0, 0]])
  np.testing.assert_array_equal(inputs.last_item(x, 3), [[21, 22, 23], [11, 12, 13]])
  np.testing.assert_array_equal(inputs.last_item(jnp.asarray([[9, 0, 0, 0]]), 3), [[0, 0, 0]])
  y = jnp.asarray([[3, 4, 5, 1], [6, 7, 8, 2]])
  model, params = _model(id_length=3, transition=TransitionConfig(buckets=4096), dropout_rate=0.0)
  # The table rows a batch trains are exactly the hashes of (last item, prefix of p codes)
  # at each decoder position p = 0..3 (the 4th code is a target only).
  grad = jax.jit(jax.grad(lambda p: model.loss_fn(p, {"inputs": x, "targets": y}, None)[0]))(
      params)
  trained = np.flatnonzero(np.abs(grad["decoder"]["transition_embedder"]["embedding"]).sum(-1))
  keys = [jnp.concatenate([inputs.last_item(x, 3), y[:, :p]], 1) for p in range(4)]
  expected = np.unique(np.concatenate([np.asarray(hashing.item_buckets(k, 4096, 2)).ravel()
                                       for k in keys]))
  np.testing.assert_array_equal(trained, expected)
  assert len(expected) == 16  # 2 users x 4 positions x 2 hashes, no two alike
  with pytest.raises(ConfigError, match="hashes=0: 1 or more"):
    TransitionConfig(buckets=64, hashes=0)

