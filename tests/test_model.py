"""The paper's encoder-decoder, its sharding, and the trainer."""

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, TINY_MODEL, small_model as _model
from tiger_jax import network
from tiger_jax.network import hashing, precision
from tiger_jax.models import EncoderDecoderModel, shift_right, unbox
from tiger_jax.trainer import TrainerConfig


# item_inputs with the hashed item and recency embeddings: one compile covers the encoder's
# additions; the transition table with recency on token-level inputs.
VARIANTS = {"tokens": {},
            "item_inputs": dict(id_length=3, item_inputs=network.ItemInputsConfig(
                embed_buckets=64, recency_positions=4)),
            "no_user_token": dict(user_token=False),
            "transition": dict(id_length=3, transition=network.TransitionConfig(buckets=128),
                               item_inputs=network.ItemInputsConfig(item_level=False,
                                                                    recency_positions=4))}


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
  """precision.matmul's hand-written backward pass equals JAX's gradient of a plain dot."""
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  x = jax.random.normal(keys[0], (2, 3, 5)).astype(dtype)
  w = jax.random.normal(keys[1], (5, 4)).astype(dtype)
  c = jax.random.normal(keys[2], (2, 3, 4))
  loss = lambda fn: lambda x, w: jnp.sum(fn(x, w).astype(jnp.float32) * c)
  got = jax.grad(loss(precision.matmul), (0, 1))(x, w)
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
  a = np.asarray(hashing.dropout_keep(keys[0], shape, rate))
  b = np.asarray(hashing.dropout_keep(keys[1], shape, rate))
  n = a.size
  sigma = np.sqrt(rate * (1 - rate) / n)
  assert abs(a.mean() - (1 - rate)) < 5 * sigma
  assert np.array_equal(a, np.asarray(hashing.dropout_keep(keys[0], shape, rate)))
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
  y = hashing.Dropout(0.2).apply({}, x, deterministic=False,
                                 rngs={"dropout": jax.random.PRNGKey(3)})
  kept = np.asarray(y) != 0
  np.testing.assert_allclose(np.asarray(y)[kept], 1 / 0.8, rtol=1e-6)
  assert 0.75 < kept.mean() < 0.85
  np.testing.assert_array_equal(hashing.Dropout(0.2).apply({}, x, deterministic=True), x)


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


def test_a_trained_run_evaluates_every_user_as_the_direct_pass_does(tiny_run, tmp_path):
  """(A killed run resumes to the very same steps: tests/test_preemption.py.)"""
  from tiger_jax import experiment as experiment_lib, trainer as trainer_lib
  data_dir, sid_dir = tiny_run
  exp = experiment_lib.experiment("tiger_resume_test", None, data_dir, sid_dir,
                                  network.T5Config(**TINY_MODEL), mesh_shape=(1, 1))
  assert exp.feature_lengths == {"inputs": 81, "targets": 5}  # derived from the ID length
  cfg = TrainerConfig(checkpoint_every=3, eval_every=0, log_every=2, num_buckets=2,
                      learning_rate=0.01, decay_start=2)
  trainer_lib.train(str(tmp_path / "a"), 3, 8, exp, cfg)  # "killed" after step 3
  trainer_lib.train(str(tmp_path / "a"), 6, 8, exp, cfg)  # resumed there
  assert os.listdir(tmp_path / "a" / "train")  # TensorBoard event files
  assert sorted(os.listdir(tmp_path / "a" / "checkpoints"))[-1] == "6"
  # The evaluate path on that run: every test user, real items only, the JSON the CLI writes.
  import json
  from tiger_jax import evaluation as evaluate_lib, io_utils, results
  assert evaluate_lib.saved_evaluation(str(tmp_path / "a"), "test", "latest") is None  # none yet
  result = evaluate_lib.evaluate_checkpoint(exp, str(tmp_path / "a"), "test", batch_size=32)
  written = json.load(open(tmp_path / "a" / "results" / "test.json"))
  assert written["users"] == 80 and written["checkpoint_step"] == 6 and written["beam"] == 20
  assert {"recall@5", "recall@10", "ndcg@5", "ndcg@10", "invalid_rate"} <= set(written)
  assert written["recall@10"] == result["recall@10"] and written["invalid_rate"] == 0.0
  from tiger_jax.semantic_ids import pipeline as sid_pipeline
  ids_used = written["semantic_ids"]  # which IDs the result stood on, and their quality
  assert ids_used["sha1"] == sid_pipeline.checksum(exp.ids)
  assert {"used_codewords", "items_in_collision", "largest_group"} <= set(ids_used)
  ranked = io_utils.load_arrays(str(tmp_path / "a" / "results" / "test_ranked.npz"))["ranked"]
  assert ranked.shape == (80, 20) and (ranked >= 0).all() and (ranked < len(exp.ids)).all()
  assert results.train_seconds(str(tmp_path / "a")) > 0
  # evaluate's numbers come from seqio.Evaluator and the task's metric_fns, its users decoded
  # in 5 length buckets (TrainerConfig.eval_buckets); the trainer's validation pass computes
  # them directly, here with every user padded to the full length: the same lists and metrics.
  from tiger_jax import experiment as experiment_lib, input_pipeline, retrieval
  from tiger_jax.metrics import METRIC_NAMES
  _, state = experiment_lib.restore(exp, str(tmp_path / "a"))
  direct_ranked = {}
  direct = retrieval.evaluate(
      retrieval.Retriever(exp.model, exp.layout, exp.ids), state.params,
      input_pipeline.eval_batches(exp.task, exp.feature_lengths, "test", 32, num_buckets=1),
      direct_ranked)
  assert {k: direct[k] for k in METRIC_NAMES} == {k: result[k] for k in METRIC_NAMES}
  by_user = lambda z: z["ranked"][np.argsort(z["users"])]
  seqio_ranked = io_utils.load_arrays(str(tmp_path / "a" / "results" / "test_ranked.npz"))
  np.testing.assert_array_equal(by_user(direct_ranked), by_user(seqio_ranked))
  scores = direct_ranked["scores"]  # each beam's log-probability, best first
  assert scores.shape == (80, 20) and np.isfinite(scores).all() and (scores <= 0).all()
  assert (np.diff(scores, axis=1) <= 1e-6).all()
  # A partial evaluation, or one at another beam, writes its own file: test.json stays.
  # (The same beam and batch as above: no new compile.)
  part = evaluate_lib.evaluate_checkpoint(exp, str(tmp_path / "a"), "test", batch_size=32,
                                          max_examples=16)
  assert part["users"] == 16 and json.load(open(tmp_path / "a" / "results" / "test.json")) == written
  assert json.load(open(tmp_path / "a" / "results" / "test_first16users.json"))["users"] == 16
  assert evaluate_lib.result_name("test", 3, 16) == "test_beam3_first16users"
  with pytest.raises(ValueError, match=rf"beam size 2000 must be in 1\.\.{len(exp.ids)} "):
    evaluate_lib.evaluate_checkpoint(exp, str(tmp_path / "a"), "test", beam_size=2000)
  clock = json.load(open(tmp_path / "a" / "train_clock.json"))["steps"]  # resumed at step 3
  assert set(clock) == {"3", "6"} and clock["6"] > clock["3"] > 0
  assert results.train_seconds(str(tmp_path / "a")) == round(clock["6"], 1)
  with pytest.raises(FileNotFoundError, match="best: no checkpoint to evaluate"):  # no validation
    evaluate_lib.evaluate_checkpoint(exp, str(tmp_path / "a"), "test", checkpoint="best")
  # A saved evaluation counts only while its checkpoint is the one `latest` names
  # (bench/val_test_gap.py decodes again otherwise).
  from tiger_jax import checkpoints as checkpoints_lib, trainer as trainer_lib
  a = str(tmp_path / "a")
  assert evaluate_lib.saved_evaluation(a, "test", "latest") == written
  assert checkpoints_lib.checkpoint_step(a, "best") is None
  os.makedirs(tmp_path / "a" / "checkpoints" / "9.orbax-checkpoint-tmp-1")  # unfinished: no step
  assert evaluate_lib.saved_evaluation(a, "test", "latest") == written
  os.makedirs(tmp_path / "a" / "checkpoints" / "9")  # the run trained on: the lists are stale
  assert checkpoints_lib.checkpoint_step(a) == 9
  assert evaluate_lib.saved_evaluation(a, "test", "latest") is None


def test_train_clock_leaves_out_pauses_and_resumes_from_the_restored_step(tmp_path):
  import time
  from tiger_jax.checkpoints import TrainClock
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


def test_the_two_checkpoint_managers_sync_hosts_under_their_own_barrier_names(tmp_path):
  """checkpoints/ and best/ save the same step at a validation step; on several hosts orbax
  syncs each save with named barriers, which must be unique ("no process should wait on the
  same barrier name multiple times"): each manager prefixes its own. (Two local processes
  train through such steps in tests/test_launch.py; a clash there depends on timing.)"""
  from tiger_jax.checkpoints import Checkpoints
  ckpt = Checkpoints(str(tmp_path), keep=1)
  prefixes = [m._options.multiprocessing_options.barrier_sync_key_prefix
              for m in (ckpt.latest, ckpt.best)]
  ckpt.close()
  assert all(prefixes) and len(set(prefixes)) == 2


def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before(tmp_path, caplog):
  import orbax.checkpoint as ocp
  from tiger_jax.checkpoints import Checkpoints
  state = {"w": jnp.arange(6, dtype=jnp.float32), "step": jnp.zeros((), jnp.int32)}
  ckpt = Checkpoints(str(tmp_path), keep=5, best_metric=None)
  for step in (1, 2, 3):
    ckpt.latest.save(step, force=True, args=ocp.args.StandardSave(
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


def test_restore_uses_the_runs_own_trainer_config_and_its_average(tiny_run, tmp_path,
                                                                  monkeypatch):
  """An AdamW run with parameter averaging restores (optimizer state and average as saved) and
  evaluates with the average; a run that turns averaging on at a plain checkpoint starts it
  there."""
  from tiger_jax import evaluation as evaluate_lib, experiment as experiment_lib, retrieval
  from tiger_jax import trainer as trainer_lib
  data_dir, sid_dir = tiny_run
  exp = experiment_lib.experiment("tiger_ema_test", None, data_dir, sid_dir,
                                  network.T5Config(**TINY_MODEL), mesh_shape=(1, 1))
  plain = TrainerConfig(optimizer="adamw", learning_rate=3e-3, checkpoint_every=2, eval_every=0,
                        num_buckets=1, eval_buckets=1)
  ema = dataclasses.replace(plain, ema_decay=0.5)
  trained = trainer_lib.train(str(tmp_path / "a"), 4, 8, exp, ema)
  _, state = experiment_lib.restore(exp, str(tmp_path / "a"))
  assert isinstance(state, trainer_lib.EmaTrainState) and int(state.step) == 4
  for a, b in zip(jax.tree.leaves(trained.ema_params), jax.tree.leaves(state.eval_params)):
    np.testing.assert_array_equal(a, b)
  # The evaluation decodes with the average: the parameters every beam search receives.
  # (That the evaluation gives the direct pass's lists: test_a_trained_run_evaluates_...)
  decoded_with = []
  tokens = retrieval.Retriever.tokens
  monkeypatch.setattr(retrieval.Retriever, "tokens", lambda self, params, inputs: (
      decoded_with.append(params), tokens(self, params, inputs))[1])
  result = evaluate_lib.evaluate_checkpoint(exp, str(tmp_path / "a"), "test", beam_size=3,
                                            batch_size=16, max_examples=16)
  assert result["users"] == 16 and decoded_with
  for params in decoded_with:
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(state.ema_params)):
      np.testing.assert_array_equal(a, b)
  assert not all(np.array_equal(a, b) for a, b in zip(*map(jax.tree.leaves, (
      state.ema_params, state.params))))  # (the average is not the raw parameters)
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
  # A mechanism whose parameters take absolute steps (the followers'): the partitioned
  # Adafactor state saves and resumes.
  followers = experiment_lib.experiment(
      "tiger_ema_test", None, data_dir, sid_dir,
      network.T5Config(**TINY_MODEL, followers=network.FollowerConfig(count=4, absolute_steps=True)),
      mesh_shape=(1, 1))
  partial = TrainerConfig(checkpoint_every=2, eval_every=0, num_buckets=1)
  trainer_lib.train(str(tmp_path / "c"), 2, 8, followers, partial)
  _, at2 = experiment_lib.restore(followers, str(tmp_path / "c"))
  assert "absolute" in at2.opt_state[-1].inner_states  # optax.multi_transform's
  assert int(trainer_lib.train(str(tmp_path / "c"), 3, 8, followers, partial).step) == 3



def test_parameters_keep_their_names_and_initial_values_from_before_the_plugins():
  """Every mechanism on, tiny: the parameter paths, shapes and initial values are those the
  model had when the mechanisms lived inside network.py (recorded from that code in
  tests/data/param_paths_before_plugins.json), so checkpoints of earlier runs restore as they
  are, with no conversion."""
  import json
  from flax import traverse_util
  from tiger_jax import baselines
  from tiger_jax.network import followers
  rng = np.random.default_rng(0)
  tokens = np.unique(rng.integers(2, 50, (40, 3)), axis=0)[:12]
  items, counts = baselines.followers([rng.integers(0, 4, 8) for _ in range(20)], len(tokens), 4)
  config = network.T5Config(
      vocab_size=50, id_length=3, **{**TINY_MODEL, "num_encoder_layers": 1, "num_decoder_layers": 1},
      item_inputs=network.ItemInputsConfig(embed_buckets=64, recency_positions=4),
      transition=network.TransitionConfig(buckets=128),
      followers=network.FollowerConfig(count=4, sources=2, log_count=True, copy=True,
                                       copy_features=True))
  model = EncoderDecoderModel(network.Transformer(config), memory=followers.memory_variables(
      followers.follower_memory(tokens, items, counts)))
  params = traverse_util.flatten_dict(unbox(model.init(jax.random.PRNGKey(0), 7, 5))["params"])
  before = json.load(open(os.path.join(REPO, "tests", "data", "param_paths_before_plugins.json")))
  assert {"/".join(k): list(v.shape) for k, v in params.items()} == before["shapes"]
  for k, v in params.items():
    np.testing.assert_allclose(float(np.asarray(v).ravel()[:3].sum()),
                               before["first3_sums"]["/".join(k)], rtol=1e-5, atol=1e-6)
