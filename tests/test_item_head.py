"""The item-level next-item head on the encoder (network/item_head.py): the item lookup, its
loss beside the token loss, and the decoding that joins its items to the beams."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import TINY_MODEL
from tiger_jax import network, retrieval
from tiger_jax.errors import ConfigError
from tiger_jax.models import EncoderDecoderModel, unbox
from tiger_jax.network import item_head
from tiger_jax.semantic_ids import make_unique
from tiger_jax.tokens import TokenLayout


def _setup(head: network.ItemHeadConfig, num_items=40, seed=0, **config):
  rng = np.random.default_rng(seed)
  ids = make_unique(np.unique(rng.integers(0, 4, (num_items, 3)), axis=0))
  layout = TokenLayout.for_ids(ids, codebook_size=4, num_user_buckets=5)
  cfg = network.T5Config(vocab_size=layout.vocab_size, id_length=ids.shape[1],
                         item_head=head, **{**TINY_MODEL, "num_encoder_layers": 1,
                                            "num_decoder_layers": 1, **config})
  memory = item_head.memory_variables(item_head.item_memory(layout.item_tokens(ids)))
  model = EncoderDecoderModel(network.Transformer(cfg), memory=memory)
  params = unbox(model.init(jax.random.PRNGKey(seed), 1 + 3 * ids.shape[1], 5))["params"]
  return ids, layout, model, params


def _inputs(layout, ids, histories):
  x = np.zeros((len(histories), 1 + 3 * ids.shape[1]), np.int32)
  for b, h in enumerate(histories):
    x[b, 0] = layout.user_tokens([f"u{b}"])[0]
    x[b, 1:1 + len(h) * ids.shape[1]] = layout.item_tokens(ids[h]).ravel()
  return x


def test_item_index_finds_every_item_and_nothing_else():
  rng = np.random.default_rng(0)
  tokens = np.unique(rng.integers(1, 30, (300, 3)), axis=0)
  memory = item_head.item_memory(tokens)
  np.testing.assert_array_equal(item_head.item_index(memory, jnp.asarray(tokens)),
                                np.arange(len(tokens)))
  absent = np.array([[0, 0, 0], [31, 31, 31]])  # padding, and an ID no item has
  np.testing.assert_array_equal(item_head.item_index(memory, jnp.asarray(absent)), [-1, -1])


def test_the_head_reads_the_last_history_position():
  config = network.T5Config(id_length=2, item_inputs=network.ItemInputsConfig())
  x = jnp.asarray([[5, 7, 8, 9, 10, 0, 0], [5, 0, 0, 0, 0, 0, 0]])
  np.testing.assert_array_equal(item_head.last_position(x, config), [2, 0])  # item-level
  np.testing.assert_array_equal(
      item_head.last_position(x, network.T5Config(id_length=2)), [4, 0])  # token-level


def test_config_errors_name_the_binding():
  with pytest.raises(ConfigError, match="ItemHeadConfig.weight"):
    network.ItemHeadConfig(weight=-1.0)
  with pytest.raises(ConfigError, match="ItemHeadConfig.buckets"):
    network.ItemHeadConfig(hashes=0)


def test_the_loss_adds_the_heads_weighted_cross_entropy():
  ids, layout, model, params = _setup(network.ItemHeadConfig(weight=2.0, buckets=64))
  x = _inputs(layout, ids, [[3, 7], [5], [0, 1, 2]])
  targets = np.zeros((3, 5), np.int32)
  targets[:, :4] = layout.item_tokens(ids[[9, 4, 11]])
  batch = {"inputs": jnp.asarray(x), "targets": jnp.asarray(targets)}
  model = dataclasses.replace(model, z_loss=0.0)  # the loss: token cross-entropy + the head's
  # (one compile each: the loss with its gradients, and the head's log-probabilities)
  (loss, metrics), grads = jax.jit(jax.value_and_grad(
      lambda p: model.loss_fn(p, batch, None), has_aux=True))(params)
  logp = jax.jit(lambda p, x: model.item_log_probs(p, model.encode(p, x), x))(
      params, batch["inputs"])
  expected = -float(jnp.mean(logp[jnp.arange(3), jnp.asarray([9, 4, 11])]))
  np.testing.assert_allclose(float(metrics["item_loss"]), expected, rtol=1e-5)
  np.testing.assert_allclose(float(loss), float(metrics["loss"]) + 2.0 * expected, rtol=1e-5)
  for name in ("code_embedder", "item_embedder", "projection"):
    assert float(jnp.abs(grads["item_head"][name][
        "embedding" if "embedder" in name else "kernel"]).sum()) > 0, name


def test_a_tied_head_scores_items_by_the_encoders_input_vectors():
  """tied: no tables of the head's own; each item's output vector is what the encoder reads
  for it (its codes' token-embedder rows + its item-table rows): the head's logits are an
  untied head's whose tables hold the encoder's, and its loss trains the encoder's tables."""
  inputs = network.ItemInputsConfig(item_level=True, embed_buckets=64)
  ids, layout, tied, params = _setup(network.ItemHeadConfig(tied=True), item_inputs=inputs)
  assert set(params["item_head"]) == {"projection", "norm"}
  _, _, untied, own = _setup(network.ItemHeadConfig(buckets=64), item_inputs=inputs)
  own = {**params, "item_head": {
      **params["item_head"], "code_embedder": params["token_embedder"],
      "item_embedder": params["encoder"]["item_embedder"]}}
  x = jnp.asarray(_inputs(layout, ids, [[3, 7], [5]]))
  logits = lambda model, p: model.item_log_probs(p, model.encode(p, x), x)
  np.testing.assert_allclose(logits(tied, params), logits(untied, own), rtol=1e-5, atol=1e-5)
  # item 9 is in no history: its item-table rows learn only through the tied output
  rows = lambda items: set(np.asarray(item_head.item_buckets(
      jnp.asarray(layout.item_tokens(ids[items])), 64, 2)).ravel().tolist())
  assert not rows([9]) & rows([3, 7, 5])
  grads = jax.jit(jax.grad(lambda p: -logits(tied, p)[:, 9].sum()))(params)
  table = np.abs(np.asarray(grads["encoder"]["item_embedder"]["embedding"])).sum(-1)
  assert all(table[r] > 0 for r in rows([9]))


def test_decoding_ranks_beams_and_head_items_by_the_blend():
  histories, k = [[3, 7], [5], [0, 1, 2], []], 5
  head = network.ItemHeadConfig(buckets=64, blend=1.0, candidates=6)
  ids, layout, model, params = _setup(head, item_inputs=network.ItemInputsConfig())
  x = _inputs(layout, ids, histories)
  encoded = model.encode(params, jnp.asarray(x))
  logp = np.asarray(model.item_log_probs(params, encoded, jnp.asarray(x)))
  score = jax.jit(lambda tokens: model.score_candidates(  # exact log p(ID), teacher-forced
      params, encoded, jnp.asarray(x), tokens, layout.level_blocks))
  for exclude_history in (False, True):
    retriever = retrieval.Retriever(model, layout, ids, k, exclude_history=exclude_history)
    got, scores = retriever(params, x)
    beams, _ = retrieval.Retriever(model, layout, ids, k, exclude_history=exclude_history,
                                   item_head=False)(params, x)
    # one decode of the union serves every blend (how the blend is picked on validation)
    union = retriever.candidates(params, x)
    np.testing.assert_array_equal(union[0][:, :k], beams)  # the beams, then the head's items
    for blend in (1.0, 0.0):  # the Retriever's own blend, and the decoder alone
      top, top_scores = map(np.asarray, retrieval.blend_candidates(*union, blend, k))
      if blend == head.blend:
        np.testing.assert_array_equal(top, got)
        np.testing.assert_allclose(top_scores, scores, rtol=1e-6)
      # each item's score: its exact log p(ID) + blend * the head's log p
      gen = np.asarray(score(layout.item_tokens(ids[top])))
      np.testing.assert_allclose(top_scores, gen + blend * np.take_along_axis(logp, top, 1),
                                 rtol=1e-4, atol=1e-3)
      head_alone = np.asarray(retrieval.blend_candidates(*union, 1e4, k)[0])
      for b, h in enumerate(histories):
        assert len(set(top[b])) == k and (top[b] >= 0).all()
        assert (np.diff(top_scores[b]) <= 1e-5).all()
        if exclude_history:
          assert not set(top[b].tolist()) & set(h)
        head_order = [i for i in np.argsort(-logp[b]) if not (exclude_history and i in h)]
        assert head_alone[b].tolist() == head_order[:k]  # a large blend: the head's own order
        if blend == 0.0:  # the decoder alone: the beams stay, unless a head item beats them
          assert top[b][0] == beams[b][0] or top[b][0] in head_order[:6]
  assert retrieval.decoding_settings(model.config, k) == {
      "item_head": {"blend": 1.0, "candidates": 6}}
  assert retrieval.decoding_settings(network.T5Config(), k) == {}


def test_experiment_builds_the_heads_memory(tiny_run):
  from tiger_jax import experiment as experiment_lib
  data_dir, sid_dir = tiny_run
  exp = experiment_lib.experiment(
      "tiger_item_head_test", None, data_dir, sid_dir,
      network.T5Config(**TINY_MODEL, item_head=network.ItemHeadConfig(buckets=64)),
      mesh_shape=(1, 1))
  tokens = np.asarray(exp.model.memory[item_head.NAME]["tokens"])
  np.testing.assert_array_equal(tokens, exp.layout.item_tokens(exp.ids))


def test_the_model_initialises_under_jit():
  config = network.T5Config(**TINY_MODEL, id_length=3, item_head=network.ItemHeadConfig(buckets=8))
  model = EncoderDecoderModel(network.Transformer(config))
  shapes = jax.eval_shape(lambda k: model.init(k, 7, 5), jax.random.PRNGKey(0))
  assert "item_head" in shapes["params"]


def test_a_run_with_the_head_trains_decodes_and_records_its_blend(tiny_run, tmp_path):
  from tiger_jax import evaluation, experiment as experiment_lib, retrieval, trainer as trainer_lib
  data_dir, sid_dir = tiny_run
  head = network.ItemHeadConfig(buckets=64, blend=0.5)
  exp = experiment_lib.experiment(
      "tiger_item_head_run_test", None, data_dir, sid_dir,
      network.T5Config(**TINY_MODEL, item_head=head), mesh_shape=(1, 1))
  config = trainer_lib.TrainerConfig(optimizer="adamw", learning_rate=3e-3, checkpoint_every=3,
                                     eval_every=0, num_buckets=1, eval_buckets=1)
  trainer_lib.train(str(tmp_path), 3, 16, exp, config)
  result = evaluation.evaluate_checkpoint(exp, str(tmp_path), "test", beam_size=5, batch_size=16)
  assert result["decoding"] == {"item_head": {"blend": 0.5, "candidates": 5}}
  assert result["invalid_rate"] == 0.0 and result["users"] == 80
  name = evaluation.result_name("test", 5)
  settings = retrieval.decoding_settings(exp.model.config, 5)
  assert evaluation.saved_evaluation(str(tmp_path), name, "latest", settings=settings)
  other = retrieval.decoding_settings(dataclasses.replace(
      exp.model.config, item_head=dataclasses.replace(head, blend=1.0)), 5)
  assert evaluation.saved_evaluation(str(tmp_path), name, "latest", settings=other) is None


def test_the_blend_study_ranks_the_union_for_each_blend():
  from studies import item_head_blend
  items = np.array([[4, 7, -1, 9, 2]])  # beams 4, 7 (a third beam found nothing); head 9, 2
  gen = np.array([[-1.0, -2.0, -1e9, -3.0, -9.0]])
  head = np.array([[-5.0, -1.0, -np.inf, -0.5, -0.1]])
  rows = item_head_blend.rank_all((items, gen, head), [0.0, 1.0, 100.0], 3)
  assert rows["beams alone"].tolist() == [[4, 7, -1]]
  assert rows["head alone (over the union)"].tolist() == [[2, 9, 7]]
  assert rows["blend 0"].tolist() == [[4, 7, 9]]  # -1, -2, -3
  assert rows["blend 1"].tolist() == [[7, 9, 4]]  # -3, -3.5, -6, (2: -9.1)
  assert rows["blend 100"].tolist() == [[2, 9, 7]]
  results = {"blend 0": {"ndcg@10": 0.1, "recall@10": 0.2},
             "blend 1": {"ndcg@10": 0.3, "recall@10": 0.1}, "beams alone": {"ndcg@10": 0.9}}
  assert item_head_blend.best_blend(results) == "blend 1"


def test_a_study_parses_its_runs_config_once_and_reuses_the_experiment(tmp_path, monkeypatch):
  """studies.common.run_experiment: gin locks its config after the first parse, so a study
  that asks twice (the popularity prior: validation, then test) gets the first experiment."""
  import gin
  from studies import common
  from tiger_jax import configurables
  (tmp_path / "config.gin").write_text("TRAIN_STEPS = 3\n")
  made = []
  monkeypatch.setattr(configurables, "experiment", lambda: made.append(object()) or made[-1])
  try:
    first = common.run_experiment(str(tmp_path))
    assert common.run_experiment(str(tmp_path)) is first and len(made) == 1
  finally:
    gin.clear_config()
