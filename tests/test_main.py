"""The README's main job, end to end, from the command line (a tiny schedule)."""

import json
import os
import subprocess
import sys

import numpy as np

from conftest import REPO

TINY = ["--gin.TRAIN_STEPS=12", "--gin.BATCH_SIZE=32", "--gin.RQVAEConfig.epochs=10",
        "--gin.SASRecConfig.epochs=1", "--gin.T5Config.num_encoder_layers=1",
        "--gin.T5Config.num_decoder_layers=1", "--gin.T5Config.mlp_dim=64",
        "--gin.TrainerConfig.num_buckets=2", "--gin.TrainerConfig.checkpoint_every=12",
        "--gin.SyntheticConfig.num_items=200", "--gin.SyntheticConfig.num_users=200"]


def _run(*args):
  proc = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True,
                        timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


def test_main_job_writes_results_and_a_self_sufficient_config(tmp_path):
  # (SIGTERM and resumption: tests/test_preemption.py, through the train binary; every
  # binary handles it in cli.run.)
  model_dir = str(tmp_path / "run")
  out = _run("tiger_jax.main", f"--gin.MODEL_DIR='{model_dir}'", *TINY)
  assert "| TIGER |" in out and "| SASRec |" in out and "| item-transition |" in out
  assert "| item-transition, last 3 items |" in out
  result = json.load(open(os.path.join(model_dir, "results", "test.json")))
  assert result["checkpoint_step"] == 12 and result["invalid_rate"] == 0.0
  assert result["users"] == 200  # the SyntheticConfig binding reached the data stage
  assert 0.0 <= result["recall@5"] <= result["recall@10"] <= 1.0
  sasrec = json.load(open(os.path.join(model_dir, "results", "test_sasrec.json")))
  assert sasrec["config"]["epochs"] == 1 and "train_seconds" in sasrec["result"]  # for reruns
  # The same run under EXCLUDE_HISTORY: training and SASRec are reused, every model's list
  # leaves out the user's history, and the results get their own names.
  out = _run("tiger_jax.main", f"--gin.MODEL_DIR='{model_dir}'", *TINY,
             "--gin.EXCLUDE_HISTORY=True")
  assert "own history excluded" in out
  assert json.load(open(os.path.join(model_dir, "results", "test_sasrec.json"))) == sasrec
  from tiger_jax import data as data_lib
  from tiger_jax.io_utils import load_arrays
  dataset = data_lib.load(os.path.join(model_dir, "data"))
  history = {e.user: e.history for e in data_lib.iter_examples(dataset, "test")}
  for name in ("test", "test_nohistory"):
    saved = load_arrays(os.path.join(model_dir, "results", f"{name}_ranked.npz"))
    in_history = sum(np.isin(r[:10], history[u]).sum()
                     for r, u in zip(saved["ranked"], saved["users"]))
    assert (in_history > 0) == (name == "test"), (name, in_history)
  rows = json.load(open(os.path.join(model_dir, "results", "test_nohistory_baselines.json")))
  assert rows["SASRec"]["train_seconds"] == sasrec["result"]["train_seconds"]
  assert rows["TIGER"]["exclude_history"] is True
  # MODEL_DIR/config.gin records MODEL_DIR, where the run's data are: evaluate needs nothing else.
  import gin
  from tiger_jax import configurables  # noqa: F401  (the names config.gin binds)
  gin.clear_config()
  gin.parse_config_file(os.path.join(model_dir, "config.gin"))  # gin may wrap a long path
  assert gin.query_parameter("%MODEL_DIR") == model_dir
  assert gin.query_parameter("%DATA_DIR") is None
  gin.clear_config()
  out = _run("tiger_jax.evaluate", f"--gin_file={model_dir}/config.gin", "--split=validation",
             "--max_examples=64")
  result = json.loads(out[out.index("{"):])
  # The default comes from config.gin's EXCLUDE_HISTORY, which the last run set.
  assert result["users"] == 64 and result["exclude_history"] is True
  assert os.path.exists(os.path.join(model_dir, "results",
                                     "validation_nohistory_first64users.json"))


def test_a_rerun_reuses_a_stage_result_only_for_the_same_config(tmp_path):
  from tiger_jax.results import reuse_or_run
  path, calls = str(tmp_path / "results" / "test_sasrec.json"), []
  run = lambda: calls.append(1) or {"recall@10": 0.5 + len(calls)}
  config = {"epochs": 30, "learning_rate": 0.001, "num_items": 7}
  assert reuse_or_run(path, config, run) == {"recall@10": 1.5}
  assert reuse_or_run(path, dict(config), run) == {"recall@10": 1.5} and len(calls) == 1
  assert reuse_or_run(path, {**config, "epochs": 31}, run) == {"recall@10": 2.5}
  assert len(calls) == 2
