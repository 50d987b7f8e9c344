"""SASRec yardstick: learns a deterministic next-item rule and ranks over every item."""

import numpy as np

from tiger_jax import metrics, sasrec


def test_sasrec_learns_a_sequential_rule():
  # Item i is always followed by item (i + 1) % 30: a model of order matters, popularity does not.
  rng = np.random.default_rng(0)
  seqs = [(rng.integers(0, 30) + np.arange(rng.integers(5, 12))) % 30 for _ in range(300)]
  train = [s[:-2] for s in seqs]
  curve = []  # a learning curve: validation Recall@5 after every epoch, against training time

  def on_epoch(epoch, model, params, seconds):
    ranked = sasrec.recommend(model, params, [s[:-2] for s in seqs], k=5)
    curve.append((epoch, seconds, metrics.recall_at_k(ranked, np.array([s[-2] for s in seqs]), 5),
                  params))

  model, params = sasrec.train(train, 30, sasrec.SASRecConfig(max_len=12, emb_dim=32, epochs=12,
                                                              batch_size=64, dropout_rate=0.0),
                               on_epoch=on_epoch)
  assert [c[0] for c in curve] == list(range(1, 13)) and curve[-1][3] is params
  assert all(a[1] < b[1] for a, b in zip(curve, curve[1:])) and curve[-1][2] > curve[0][2]
  histories = [s[:-1] for s in seqs]
  ranked = sasrec.recommend(model, params, histories, k=10)
  assert ranked.shape == (300, 10) and ranked.max() < 30
  m = metrics.retrieval_metrics(ranked, np.array([s[-1] for s in seqs]))
  assert m["recall@5"] > 0.9, m


def test_sampled_softmax_learns_the_rule_and_scores_its_target_first():
  import jax
  import jax.numpy as jnp
  rng = np.random.default_rng(0)
  seqs = [(rng.integers(0, 30) + np.arange(8)) % 30 for _ in range(300)]
  config = sasrec.SASRecConfig(max_len=12, emb_dim=32, epochs=16, batch_size=64,
                               dropout_rate=0.0, negatives=6)
  model, params = sasrec.train([s[:-2] for s in seqs], 30, config)
  ranked = sasrec.recommend(model, params, [s[:-1] for s in seqs], k=5)
  assert metrics.recall_at_k(ranked, np.array([s[-1] for s in seqs]), 5) > 0.8  # random: 0.17
  # The target is column 0; a drawn item equal to it is masked, never a second positive.
  h = jnp.ones((3, 32))
  logits, labels = sasrec.sampled_logits(model, params, h, jnp.array([1, 2, 3]), 200,
                                         jax.random.PRNGKey(0), 30)
  assert logits.shape == (3, 201) and (np.asarray(labels) == 0).all()
  assert (np.asarray(logits)[:, 1:] == -1e9).sum() >= 3  # 200 draws of 30 hit every target


def test_trimming_pad_columns_keeps_the_hidden_states():
  import jax
  config = sasrec.SASRecConfig(max_len=12, emb_dim=16)
  model = sasrec.SASRec(config, 30)
  seq = sasrec._left_pad([np.array([3, 7, 1, 9]), np.array([5, 2])], 12)
  params = model.init(jax.random.PRNGKey(0), seq)["params"]
  full = model.apply({"params": params}, seq)[:, -4:]
  trimmed = model.apply({"params": params}, seq[:, -6:])[:, -4:]
  np.testing.assert_allclose(np.asarray(trimmed), np.asarray(full), atol=1e-5)


def test_early_stopping_keeps_the_best_validation_pass_and_stops_after_patience():
  import pytest
  rng = np.random.default_rng(1)
  seqs = [rng.integers(0, 20, 6) for _ in range(64)]
  scores, seen = iter([0.1, 0.3, 0.2, 0.25, 0.9]), []

  def validate(model, params):
    seen.append(params)
    return next(scores)

  curve = []
  config = sasrec.SASRecConfig(max_len=8, emb_dim=16, epochs=20, batch_size=32, patience=2,
                               validate_every=1)
  _, params = sasrec.train(seqs, 20, config, validate=validate, curve=curve)
  # Best at epoch 2; epochs 3 and 4 do not beat it: stop there (epoch 5's 0.9 never comes).
  assert [c["epoch"] for c in curve] == [1, 2, 3, 4] and params is seen[1]
  assert [c["score"] for c in curve] == [0.1, 0.3, 0.2, 0.25]
  assert all(a["seconds"] <= b["seconds"] for a, b in zip(curve, curve[1:]))
  with pytest.raises(ValueError, match="SASRecConfig.dropout_rate must be in"):
    sasrec.SASRecConfig(dropout_rate=1.0)


def test_a_stopped_run_resumes_to_the_uninterrupted_result(tmp_path, caplog):
  """SIGTERM between validation passes saves that epoch and raises Preempted; the same call
  goes on from the saved state (optimizer, best pass, data order, dropout draws) and returns
  exactly the uninterrupted run's parameters and validation curve."""
  import dataclasses
  import logging
  import os
  import signal
  import jax
  import pytest
  from tiger_jax import preemption
  rng = np.random.default_rng(2)
  seqs = [rng.integers(0, 25, rng.integers(3, 9)) for _ in range(96)]
  histories, targets = [s[:-1] for s in seqs], np.array([s[-1] for s in seqs])
  config = sasrec.SASRecConfig(max_len=8, emb_dim=16, epochs=8, batch_size=32,
                               dropout_rate=0.3, validate_every=2, patience=3)

  def validate(model, params):
    ranked = sasrec.recommend(model, params, histories, k=10)
    return metrics.retrieval_metrics(ranked, targets, ks=(10,))["ndcg@10"]

  whole_curve, whole_info = [], {}
  _, whole = sasrec.train(seqs, 25, config, validate=validate, curve=whole_curve,
                          info=whole_info)
  state = str(tmp_path / "sasrec" / "state.msgpack")
  stop_after = lambda n: lambda epoch, *_: epoch == n and os.kill(os.getpid(), signal.SIGTERM)
  with pytest.raises(preemption.Preempted, match="at epoch 3: .*run the same command"):
    sasrec.train(seqs, 25, config, validate=validate, state_path=state, on_epoch=stop_after(3))
  assert os.listdir(tmp_path / "sasrec") == ["state.msgpack"]  # written whole, then renamed
  caplog.set_level(logging.INFO)
  curve, info = [], {}
  _, resumed = sasrec.train(seqs, 25, config, validate=validate, curve=curve, info=info,
                            state_path=state)
  assert any("resuming after epoch 3" in r.getMessage() for r in caplog.records)
  assert [(c["epoch"], c["score"]) for c in curve] == [(c["epoch"], c["score"])
                                                       for c in whole_curve]
  assert {k: info[k] for k in ("epochs", "best_epoch")} == {
      k: whole_info[k] for k in ("epochs", "best_epoch")}
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(whole)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # A state saved for another config is not used: training starts over.
  caplog.clear()
  other = dataclasses.replace(config, learning_rate=3e-3, epochs=2)
  sasrec.train(seqs, 25, other, validate=validate, state_path=state)
  assert any("another SASRec config" in r.getMessage() for r in caplog.records)


def test_the_tuning_sweep_keeps_a_finished_variant_and_drops_its_resume_state(tmp_path):
  """studies.sasrec_tune: a variant's row and chosen parameters stay, the state that would
  resume it goes once the row is written, and a rerun reuses the row without training."""
  import json
  import os
  from studies import sasrec_tune
  from tiger_jax import data as data_lib
  rng = np.random.default_rng(0)  # 40 items: each list scores 30 (k + MAX_HISTORY)
  seqs = [rng.integers(0, 40, rng.integers(4, 9)).astype(np.int32) for _ in range(24)]
  dataset = data_lib.Dataset(name="tiny", user_ids=[f"u{i}" for i in range(24)],
                             item_ids=[f"i{i}" for i in range(40)], sequences=seqs,
                             item_text=[f"item {i}" for i in range(40)])
  data_dir, work = str(tmp_path / "data"), tmp_path / "work"
  data_lib.dataset.save(dataset, data_dir, source="synthetic", config={"source": "synthetic"})
  argv = [f"--data_dir={data_dir}", "--variant=small:emb_dim=8,max_len=6",
          "--base=epochs=2,validate_every=1,patience=1,batch_size=4", f"--work_dir={work}",
          f"--record={tmp_path / 'record.json'}"]
  sasrec_tune.main(argv)
  assert sorted(os.listdir(work / "tiny")) == ["small.json", "small_params.npz"]
  row = json.load(open(tmp_path / "record.json"))["variants"]["small"]
  assert row["config"]["emb_dim"] == 8 and 1 <= row["best_epoch"] <= 2
  before = os.path.getmtime(work / "tiny" / "small_params.npz")
  sasrec_tune.main(argv)
  assert os.path.getmtime(work / "tiny" / "small_params.npz") == before
  assert json.load(open(tmp_path / "record.json"))["variants"]["small"] == row
