"""Trainers and retrievers of one model share their jitted steps, and only when their traces
would be the same (tiger_jax/shared_jit.py)."""

import jax
import numpy as np

from conftest import TINY_MODEL
from tiger_jax import network, partitioning, retrieval, shared_jit
from tiger_jax.models import EncoderDecoderModel
from tiger_jax.semantic_ids import make_unique
from tiger_jax.tokens import TokenLayout
from tiger_jax.trainer import Trainer, TrainerConfig


def test_one_build_per_key_while_its_objects_live_and_the_oldest_goes_first(monkeypatch):
  monkeypatch.setattr(shared_jit, "MAX_ENTRIES", 2)
  shared_jit.clear()
  a, b, builds = object(), object(), []
  get = lambda obj, setting: shared_jit.shared(
      "k", (obj,), setting, lambda: builds.append((obj, setting)) or len(builds))
  assert get(a, 1) == 1 and get(a, 1) == 1 and get(b, 1) == 2 and get(a, 2) == 3
  assert get(a, 1) == 4  # the least recently used of three entries was dropped
  assert len(builds) == 4
  shared_jit.clear()


def _ids_layout_model():
  rng = np.random.default_rng(0)
  ids = make_unique(np.unique(rng.integers(0, 3, (20, 3)), axis=0))
  layout = TokenLayout.for_ids(ids, codebook_size=3, num_user_buckets=5)
  config = network.T5Config(vocab_size=layout.vocab_size, **TINY_MODEL)
  return ids, layout, EncoderDecoderModel(network.Transformer(config))


def test_trainers_of_one_model_and_config_share_their_steps_and_train_the_same():
  ids, layout, model = _ids_layout_model()
  lengths, mesh = {"inputs": 9, "targets": 5}, partitioning.make_mesh()
  config = TrainerConfig(optimizer="adamw", learning_rate=1e-2)
  rng = np.random.default_rng(1)
  batch = {"inputs": rng.integers(2, layout.vocab_size, (4, 9)).astype(np.int32),
           "targets": rng.integers(2, layout.vocab_size, (4, 5)).astype(np.int32)}

  def two_steps(trainer):
    state = trainer.init_state()
    for _ in range(2):
      state, metrics = trainer.train_step(state, batch)
    return trainer, state, float(metrics["loss"])

  first, state_1, loss_1 = two_steps(Trainer(model, config, mesh, lengths))
  second, state_2, loss_2 = two_steps(Trainer(model, config, mesh, lengths))
  assert second._train_step is first._train_step and loss_2 == loss_1
  for x, y in zip(jax.tree.leaves(state_1.params), jax.tree.leaves(state_2.params)):
    np.testing.assert_array_equal(x, y)
  # Another seed (the dropout key), optimizer or model: its own step.
  reseeded, _, _ = two_steps(Trainer(model, TrainerConfig(optimizer="adamw", learning_rate=1e-2,
                                                          seed=5), mesh, lengths))
  assert reseeded._train_step is not first._train_step
  _, _, other_model = _ids_layout_model()  # equal config, another object
  assert two_steps(Trainer(other_model, config, mesh, lengths))[0]._train_step is not (
      first._train_step)
  assert first.eval_step(state_1.params, batch)["loss"] == second.eval_step(
      state_1.params, batch)["loss"] and second._eval_step is first._eval_step


def test_retrievers_share_their_search_only_under_the_same_settings():
  ids, layout, model = _ids_layout_model()
  params = Trainer(model, TrainerConfig(), partitioning.make_mesh(),
                   {"inputs": 9, "targets": 5}).init_state().params
  inputs = np.random.default_rng(2).integers(2, layout.vocab_size, (3, 9)).astype(np.int32)
  first = retrieval.Retriever(model, layout, ids, beam_size=4)
  second = retrieval.Retriever(model, layout, ids.copy(), beam_size=4)
  assert second._fn is first._fn
  np.testing.assert_array_equal(first(params, inputs)[0], second(params, inputs)[0])
  others = [retrieval.Retriever(model, layout, ids, beam_size=5),
            retrieval.Retriever(model, layout, ids, beam_size=4, exclude_history=True),
            retrieval.Retriever(model, layout, ids, beam_size=4, dtype="bfloat16"),
            retrieval.Retriever(model, layout, ids[::-1].copy(), beam_size=4)]
  assert len({id(r._fn) for r in others + [first]}) == len(others) + 1
  # Other Semantic IDs (the same set in another item order): its own search, its own items.
  np.testing.assert_array_equal(others[-1](params, inputs)[0],
                                len(ids) - 1 - first(params, inputs)[0])
