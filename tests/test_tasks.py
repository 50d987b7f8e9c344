"""Token layout and SeqIO tasks."""

import os

import numpy as np
import pytest
import seqio

from tiger_jax import data as data_lib
from tiger_jax import io_utils
from tiger_jax.data.prepare import build_tfds
from tiger_jax.tokens import EOS_ID, TokenLayout


def test_token_layout_round_trip():
  rng = np.random.default_rng(0)
  ids = np.concatenate([rng.integers(0, 256, (500, 3)), rng.integers(0, 7, (500, 1))], 1)
  layout = TokenLayout.for_ids(ids)
  assert layout.level_sizes == (256, 256, 256, 7)
  tokens = layout.item_tokens(ids)
  np.testing.assert_array_equal(layout.tokens_to_ids(tokens), ids)
  assert tokens.min() >= 2 and tokens.max() < layout.user_offset
  for l in range(4):  # every level lives in its own block
    assert {layout.level_of_token(t) for t in tokens[:, l]} == {l}
  users = layout.user_tokens(["A1", "B2", "A1"])
  assert users[0] == users[2] and (users >= layout.user_offset).all()
  assert (users < layout.vocab_size).all() and layout.vocab_size == 2 + 3 * 256 + 7 + 2000
  assert layout.tokens_to_ids(tokens[:, ::-1])[0, 0] == -1  # a token of the wrong level
  with pytest.raises(ValueError, match="outside its level"):
    layout.item_tokens(np.array([[0, 0, 0, 7]]))


def test_task_yields_the_expected_examples_for_a_hand_made_user(tmp_path):
  import tasks
  seqs = [np.arange(25, dtype=np.int32) % 6, np.array([3, 1, 2], np.int32)]
  ds = data_lib.Dataset("handmade", ["alice", "bob"], [f"i{i}" for i in range(6)], seqs)
  data_dir, sid_dir = str(tmp_path / "data"), str(tmp_path / "sid")
  data_lib.save(ds, data_dir, source="test")
  build_tfds(data_dir, "handmade")
  ids = np.array([[i, i % 2, 5, 0] for i in range(6)], np.int32)
  io_utils.write_npy(str(tmp_path / "sid" / "semantic_ids.npy"), ids)
  task = tasks.register_task("tiger_handmade_test", data_dir, sid_dir)
  layout = TokenLayout.for_ids(ids)
  item_tok = layout.item_tokens(ids)
  user_tok = layout.user_tokens(["alice", "bob"])
  lengths = {"inputs": 81, "targets": 5}

  def examples(split):
    return sorted((list(e["inputs"]), list(e["targets"]), int(e["target_item"]))
                  for e in task.get_dataset(lengths, split=split, shuffle=False).as_numpy_iterator())

  alice = seqs[0]
  want_test = [user_tok[0]] + item_tok[alice[4:24]].ravel().tolist()  # the 20 before the last
  test = examples("test")
  assert (want_test, item_tok[alice[24]].tolist() + [EOS_ID], int(alice[24])) in test
  bob_test = ([user_tok[1]] + item_tok[[3, 1]].ravel().tolist(), item_tok[2].tolist() + [EOS_ID], 2)
  assert bob_test in test and len(test) == 2
  val = examples("validation")
  assert ([user_tok[1]] + item_tok[3].tolist(), item_tok[1].tolist() + [EOS_ID], 1) in val
  train = examples("train")
  assert len(train) == 22  # alice: targets at positions 1..22; bob: none
  assert ([user_tok[0]] + item_tok[0].tolist(), item_tok[1].tolist() + [EOS_ID], 1) in train
  assert max(len(x) for x, _, _ in train) == 81
  # seqio metric plumbing: targets post-process to the item, beams of tokens to ranked items.
  ex = next(task.get_dataset(lengths, split="test", shuffle=False).as_numpy_iterator())
  target = task.postprocess_fn(ex["targets"], example=ex, is_target=True)
  assert target == ex["target_item"]
  ranked = [[target, 0, 1, 2, 3], [5, 4, 3, 2, 1]]
  beams = [item_tok[r].tolist() for r in ranked]
  assert [task.postprocess_fn(b) for b in beams] == ranked
  assert task.postprocess_fn([item_tok[2].tolist(), [2, 3, 4, 5]]) == [2, -1]  # no such item
  scores = task.metric_fns[0]([target, 99], [task.postprocess_fn(b) for b in beams])
  assert scores["recall@5"] == 0.5 and scores["ndcg@5"] == 0.5
  vocab = task.output_features["targets"].vocabulary
  assert vocab.vocab_size == layout.vocab_size and vocab.eos_id == EOS_ID
  # Every contiguous sub-sequence (at most 20 items) with the item after it, from the prefixes.
  from tiger_jax import input_pipeline
  subs = sorted((list(e["inputs"]), list(e["targets"])) for e in input_pipeline.history_suffixes(
      task.get_dataset(lengths, split="train", shuffle=False), id_length=4).as_numpy_iterator())
  want = sorted(([user_tok[0]] + item_tok[alice[i:t]].ravel().tolist(),
                 item_tok[alice[t]].tolist() + [EOS_ID])
                for t in range(1, 23) for i in range(max(0, t - 20), t))
  assert subs == want and len(want) == sum(min(t, 20) for t in range(1, 23))  # 250
  batches = input_pipeline.train_batches(task, lengths, 8, seed=0, num_buckets=1,
                                         histories="subsequences")
  batch = next(batches)
  assert batch["inputs"].shape == (8, 81) and set(map(tuple, batch["targets"].tolist())) <= {
      tuple(t) for _, t in want}
  # The shuffle buffer holds one epoch of the 22 training examples, not the task's 10,000
  # (seqio repeats before it shuffles: those would be filled before the first batch).
  assert task.shuffle_buffer_size == 10_000
  assert (input_pipeline.shuffle_buffer_size(task), input_pipeline.shuffle_buffer_size(task, 2)) \
      == (22, 11)
  with pytest.raises(ValueError, match="histories='suffixes'"):
    next(input_pipeline.train_batches(task, lengths, 8, seed=0, histories="suffixes"))
  seqio.TaskRegistry.remove("tiger_handmade_test")


def test_tasks_register_on_the_run_folders_when_asked(tiny_run, tmp_path):
  """One convention: a run's data in MODEL_DIR/{data,semantic_ids} unless DATA_DIR /
  SEMANTIC_ID_DIR say otherwise; the task registers there when the run builds it."""
  import pytest
  import tasks
  from tiger_jax import experiment
  assert tasks.feature_lengths(4) == {"inputs": 81, "targets": 5}
  assert experiment.run_dirs("m", None, None) == ("m/data", "m/semantic_ids")
  assert experiment.run_dirs("m", "d", "s") == ("d", "s")
  with pytest.raises(data_lib.DataError, match="no MODEL_DIR"):
    experiment.run_dirs(None, "d", None)
  assert "tiger_lazy_test" not in seqio.TaskRegistry.names()
  data_dir, sid_dir = tiny_run
  os.symlink(data_dir, tmp_path / "data")
  os.symlink(sid_dir, tmp_path / "semantic_ids")
  exp = experiment.experiment("tiger_lazy_test", model_dir=str(tmp_path))
  assert exp.data_dir == str(tmp_path / "data") and exp.feature_lengths["inputs"] == 81
  task = seqio.get_mixture_or_task("tiger_lazy_test")
  assert task.source.tfds_dataset.data_dir == str(tmp_path / "data" / "tfds")
  seqio.TaskRegistry.remove("tiger_lazy_test")


def test_bucket_bounds_are_whole_item_lengths_and_an_input_gets_the_smallest_that_fits():
  from tiger_jax import buckets
  assert buckets.bucket_boundaries(81, 4, 5) == [17, 33, 49, 65, 81]
  assert buckets.bucket_boundaries(9, 4, 5) == [5, 9]  # 2 items: buckets merge, none empty
  assert buckets.bucket_boundaries(80, 4, 2) == [41, 80]  # a length that ends mid-ID
  assert buckets.bucket_width([41, 80], 79) == 80
  for input_length, id_length, n in [(81, 4, 5), (61, 3, 4), (13, 4, 1), (101, 5, 7)]:
    bounds = buckets.bucket_boundaries(input_length, id_length, n)
    assert bounds[-1] == input_length and bounds == sorted(set(bounds)) and len(bounds) <= n
    assert all((b - 1) % id_length == 0 for b in bounds[:-1])
    for length in range(1, input_length + 1):
      width = buckets.bucket_width(bounds, length)
      assert width >= length and not any(length <= b < width for b in bounds)


def test_eval_batches_cover_each_user_once_in_length_buckets(tiny_run):
  import tasks
  from tiger_jax import input_pipeline
  data_dir, sid_dir = tiny_run
  task = tasks.register_task("tiger_evalbatch_test", data_dir, sid_dir)
  lengths = {"inputs": 81, "targets": 5}
  plain = list(input_pipeline.eval_batches(task, lengths, "test", 16, num_buckets=1))
  bucketed = list(input_pipeline.eval_batches(task, lengths, "test", 16, num_buckets=5))
  def rows(batches):
    out = {}
    for b in batches:
      for i in np.flatnonzero(b["mask"]):
        out[int(b["user"][i])] = (tuple(np.trim_zeros(b["inputs"][i], "b")), tuple(b["targets"][i]))
    return out
  assert rows(plain) == rows(bucketed) and len(rows(plain)) == data_lib.load(data_dir).num_users
  assert all(b["inputs"].shape[0] == 16 for b in bucketed)
  assert {b["inputs"].shape[1] for b in bucketed} <= {17, 33, 49, 65, 81}
  assert len({b["inputs"].shape[1] for b in bucketed}) > 1
  seqio.TaskRegistry.remove("tiger_evalbatch_test")
