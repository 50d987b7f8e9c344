"""The README's main job, end to end, its bindings parsed as the command line parses them (a
tiny schedule; the binaries' command-line handling: tests/test_cli.py)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

TINY = ["--gin.TRAIN_STEPS=12", "--gin.BATCH_SIZE=32", "--gin.RQVAEConfig.epochs=3",
        "--gin.SASRecConfig.epochs=1", "--gin.T5Config.num_encoder_layers=1",
        "--gin.T5Config.num_decoder_layers=1", "--gin.T5Config.mlp_dim=64",
        "--gin.TrainerConfig.num_buckets=1", "--gin.TrainerConfig.eval_buckets=1",
        "--gin.TrainerConfig.checkpoint_every=12",
        "--gin.SyntheticConfig.num_items=200", "--gin.SyntheticConfig.num_users=200"]


def _pipeline_in_process(gin_file, *bindings):
  """The main binary's pipeline in this process, its gin file and --gin bindings parsed as the
  command line parses them, under its PRNG (one interpreter start less than `_run`)."""
  import gin
  import jax
  from tiger_jax import cli, configurables, main as main_lib
  gin.clear_config()
  prng = jax.config.jax_default_prng_impl
  try:
    jax.config.update("jax_default_prng_impl", cli.FLAGS["prng_impl"].default)
    cli.parse_config([gin_file], [b.removeprefix("--gin.") for b in bindings], main_lib.CALLS)
    return main_lib.run_pipeline(configurables.PipelineConfig())
  finally:
    jax.config.update("jax_default_prng_impl", prng)
    gin.clear_config()


def test_main_job_writes_results_and_a_self_sufficient_config(tmp_path, capsys, monkeypatch):
  # (SIGTERM and resumption: tests/test_preemption.py, through the train binary; every
  # binary handles it in cli.run.)
  # In this process (one interpreter start and its imports less; the command line's own
  # handling of flags, errors and signals is tested through the binaries elsewhere).
  from tiger_jax import main as main_module
  model_dir = str(tmp_path / "run")
  _pipeline_in_process(main_module.DEFAULT_GIN, f"--gin.MODEL_DIR='{model_dir}'", *TINY)
  out = capsys.readouterr().out
  assert "| TIGER |" in out and "| SASRec |" in out and "| item-transition |" in out
  assert "| item-transition, last 3 items |" in out
  result = json.load(open(os.path.join(model_dir, "results", "test.json")))
  assert result["checkpoint_step"] == 12 and result["invalid_rate"] == 0.0
  assert result["users"] == 200  # the SyntheticConfig binding reached the data stage
  assert 0.0 <= result["recall@5"] <= result["recall@10"] <= 1.0
  sasrec = json.load(open(os.path.join(model_dir, "results", "test_sasrec.json")))
  assert sasrec["config"]["epochs"] == 1 and "train_seconds" in sasrec["result"]  # for reruns
  # The same run under EXCLUDE_HISTORY: training and SASRec are reused, every model's list
  # leaves out the user's history, and the results get their own names. (The main binary's
  # pipeline in this process, under the run's own config.gin plus the binding, as
  # `python -m tiger_jax.main --gin_file=MODEL_DIR/config.gin --gin.EXCLUDE_HISTORY=True`
  # runs it: one interpreter start less.)
  import gin
  from tiger_jax import cli, configurables, main as main_lib
  _pipeline_in_process(os.path.join(model_dir, "config.gin"), "EXCLUDE_HISTORY=True")
  assert "own history excluded" in capsys.readouterr().out
  # Run again, the pipeline decodes nothing: the saved evaluation of the same step serves.
  saved = json.load(open(os.path.join(model_dir, "results", "test_nohistory.json")))
  gin.clear_config()
  try:
    cli.parse_config([os.path.join(model_dir, "config.gin")], ["EXCLUDE_HISTORY=True"])
    with monkeypatch.context() as patch:
      patch.setattr(main_lib.evaluate_lib, "evaluate_checkpoint", None)  # not called
      exp = configurables.experiment()
      assert main_lib.tiger_evaluation(exp, configurables.PipelineConfig(), "latest") == saved
  finally:
    gin.clear_config()
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
  # Every model's per-user hits under each protocol, for pairing records after the run is
  # gone: they give each row's metrics again.
  from tiger_jax import metrics, results
  for name in ("test", "test_nohistory"):
    hits = json.load(open(os.path.join(model_dir, "results", f"{name}_hits.json")))
    rows = json.load(open(os.path.join(model_dir, "results", f"{name}_baselines.json")))
    assert hits["users"] == 200 and set(hits) - {"users", "depth"} == set(rows)
    for model, row in rows.items():
      ranks = results.hit_ranks(hits, model)
      assert metrics.recall_from_ranks(ranks, 10).mean() == pytest.approx(row["recall@10"])
      assert metrics.ndcg_from_ranks(ranks, 5).mean() == pytest.approx(row["ndcg@5"])
  # MODEL_DIR/config.gin records MODEL_DIR, where the run's data are: evaluate needs nothing
  # else (what the evaluate command does with --gin_file=config.gin, in this process; the
  # recommend command below starts from config.gin in its own).
  from tiger_jax import evaluation
  gin.clear_config()
  try:
    gin.parse_config_file(os.path.join(model_dir, "config.gin"))  # gin may wrap a long path
    assert gin.query_parameter("%MODEL_DIR") == model_dir
    assert gin.query_parameter("%DATA_DIR") is None
    # The default comes from config.gin's EXCLUDE_HISTORY, which the last run set.
    assert configurables.exclude_history() is True
    result = evaluation.evaluate_checkpoint(configurables.experiment(), model_dir, "validation",
                                            max_examples=64,
                                            exclude_history=configurables.exclude_history())
  finally:
    gin.clear_config()
  assert result["users"] == 64 and result["exclude_history"] is True
  assert os.path.exists(os.path.join(model_dir, "results",
                                     "validation_nohistory_first64users.json"))
  _check_recommend(model_dir, monkeypatch)


def _check_recommend(model_dir, monkeypatch):
  """The recommend API on that run: a test user's history gives the user's ranked list in the
  run's results; titles come from the item text; bad requests are one line (the command:
  the cold-start test below)."""
  from tiger_jax.recommender import Recommender, RecommendError
  rec = Recommender.load(model_dir)
  assert rec.checkpoint == "latest" and rec.step == 12  # the run did not validate
  saved = np.load(os.path.join(model_dir, "results", "test_ranked.npz"))
  users = [rec.dataset.user_ids[u] for u in saved["users"][:16]]
  histories = [rec.user_history(u) for u in users]
  got = rec.recommend(histories, k=20, users=users)
  for recs, ranked in zip(got, saved["ranked"][:16]):
    assert [r.item_id for r in recs] == [rec.dataset.item_ids[i] for i in ranked]
    assert [r.rank for r in recs] == list(range(1, 21))
    assert all(a.score >= b.score for a, b in zip(recs, recs[1:]))
    for r in recs:
      i = rec.index[r.item_id]
      assert r.semantic_id == tuple(rec.exp.ids[i]) and r.title
      assert rec.dataset.item_text[i].startswith(f"Title: {r.title}; ")
  def same(a, b):  # the same items in order, scores to float rounding (other batch shapes)
    return ([r.item_id for r in a] == [r.item_id for r in b]
            and np.allclose([r.score for r in a], [r.score for r in b], atol=1e-5))
  # One history alone decodes as in a batch; excluding the history leaves none of its items.
  assert same(rec.recommend(histories[:1], k=5, users=users[:1])[0], got[0][:5])
  # Requests of 3 and 4 histories run one compiled shape (rows padded to a power of two), a
  # request over MAX_BATCH goes in turns, and the lists stay the same.
  from tiger_jax import recommender as recommender_lib
  plain, batches = rec._retriever(False), []
  with monkeypatch.context() as patch:
    patch.setitem(rec._retrievers, False, lambda params, inputs: (
        batches.append(len(inputs)), plain(params, inputs))[1])
    patch.setattr(recommender_lib, "MAX_BATCH", 8)
    for n in (3, 4, 11):
      assert all(map(same, rec.recommend(histories[:n], k=20, users=users[:n]), got[:n]))
  assert batches == [4, 4, 8, 4]
  excluded = rec.recommend(histories[:4], k=20, exclude_history=True, users=users[:4])
  assert all(not {r.item_id for r in recs} & set(h) for recs, h in zip(excluded, histories))
  # A history longer than the cap keeps its last items.
  longer = rec.dataset.item_ids[:25] + histories[0]
  assert same(rec.recommend([longer], k=5, users=users[:1])[0],
              rec.recommend([longer[-rec.max_items:]], k=5, users=users[:1])[0])
  with pytest.raises(RecommendError, match="unknown item ids nope, nix .*--skip_unknown"):
    rec.recommend([histories[0] + ["nope", "nix"]])
  assert same(rec.recommend([["nope"] + histories[0]], k=5, users=users[:1],
                            skip_unknown=True)[0], got[0][:5])
  with pytest.raises(RecommendError, match="empty history"):
    rec.recommend([[]])
  with pytest.raises(RecommendError, match="no item without training interactions"):
    rec.recommend(histories[:1], include_new_items=True)


def test_a_rerun_reuses_a_stage_result_only_for_the_same_config(tmp_path):
  from tiger_jax.results import reuse_or_run
  path, calls = str(tmp_path / "results" / "test_sasrec.json"), []
  run = lambda: calls.append(1) or {"recall@10": 0.5 + len(calls)}
  config = {"epochs": 30, "learning_rate": 0.001, "num_items": 7}
  assert reuse_or_run(path, config, run) == {"recall@10": 1.5}
  assert reuse_or_run(path, dict(config), run) == {"recall@10": 1.5} and len(calls) == 1
  assert reuse_or_run(path, {**config, "epochs": 31}, run) == {"recall@10": 2.5}
  assert len(calls) == 2


def test_the_cold_start_study_reports_three_groups_with_settings_chosen_on_validation(tmp_path,
                                                                                    capsys):
  """gin_configs/main_synthetic_cold_start.gin: 5% of items never in training; the table
  gets every model on cold-target, warm-target and all users, and validation is decoded to
  choose the KNN query and the mechanism's settings."""
  model_dir = str(tmp_path / "cold")
  # (Attribute vectors and RQ-KMeans IDs: the text encoder and the RQ-VAE run in the main job
  # above, and the study's rows need item vectors of any kind.)
  _pipeline_in_process("gin_configs/main_synthetic_cold_start.gin", f"MODEL_DIR='{model_dir}'",
                       *TINY, "pipeline.run_sasrec=False", "pipeline.content='attributes'",
                       "SemanticIdConfig.method='rq_kmeans'")
  out = capsys.readouterr().out
  assert "TIGER + beam-KNN" in out and "cold targets (eps=0.1)" in out
  assert os.path.exists(os.path.join(model_dir, "results", "validation_ranked.npz"))
  rows = json.load(open(os.path.join(model_dir, "results", "test_baselines.json")))
  for eps in ("0.1", "0.3"):  # the curve over epsilon: every model's rows once per value
    models = {r.split(", cold targets")[0] for r in rows if r.endswith(f"cold targets (eps={eps})")}
    assert any(m.startswith("content-KNN (") for m in models) and "TIGER beams" in models
    for model in models:  # all users = the users of both groups, weighted by their counts
      cold, warm, both = (rows[f"{model}, {g} (eps={eps})"]
                          for g in ("cold targets", "warm targets", "all users"))
      assert cold["users"] + warm["users"] == both["users"] == 200 and cold["users"] > 0
      for m in ("recall@10", "ndcg@10"):
        assert abs(both[m] - (cold[m] * cold["users"] + warm[m] * warm["users"]) / 200) < 1e-9
  knn = next(r.split(", cold targets")[0] for r in rows
             if r.startswith("content-KNN (") and ", cold targets" in r)
  # A larger epsilon lets more of KNN's cold neighbours into the list: never fewer cold hits.
  assert (rows[f"{knn}, cold targets (eps=0.3)"]["recall@10"]
          >= rows[f"{knn}, cold targets (eps=0.1)"]["recall@10"])
  mech = [rows[r] for r in rows if r.startswith("TIGER + beam-KNN")
          and r.endswith("cold targets (eps=0.1)")][0]  # the first epsilon's: recommend's
  assert mech["blend"] in (0.0, 0.25, 0.5, 0.75, 1.0) and mech["knn_query"] in ("last", "mean", "recency")
  # recommend --include_new_items: the settings chosen on validation place the new items.
  from tiger_jax.recommender import Recommender
  settings = json.load(open(os.path.join(model_dir, "results", "cold_start.json")))
  from tiger_jax.cold_start import PLACEMENT_KEYS
  assert settings["blend"] == mech["blend"]
  assert all(settings.get(k) == mech.get(k) for k in PLACEMENT_KEYS)  # a gate, or hit-rate tiers
  ranks = ({settings["position"]} if settings.get("tier_edges") is None
           else set(settings["tier_positions"]) - {-1})
  rec = Recommender.load(model_dir)
  users = rec.dataset.user_ids
  histories = [rec.user_history(u) for u in users]
  plain = rec.recommend(histories, k=20, users=users)
  new = rec.recommend(histories, k=20, users=users, include_new_items=True)
  cold = {rec.dataset.item_ids[i] for i in rec.dataset.cold_items}
  given = 0
  for a, b in zip(plain, new):  # (k = the beam size: `a` holds every beam)
    ids_a, ids_b = [r.item_id for r in a], [r.item_id for r in b]
    if ids_a == ids_b:  # the similarity gate kept this user's list as the beams made it
      continue
    given += 1
    p = next(i for i, (x, y) in enumerate(zip(ids_a, ids_b)) if x != y)
    placed = [i for i in ids_b[p:p + settings["slots"]] if i in cold and i not in ids_a[:p]]
    assert ids_b[p] in placed and any(r <= p < r + settings["slots"] for r in ranks)
    # the beams keep their order around the placed items (one the beams also found moves up)
    rest = [i for i in ids_b if i not in placed]
    assert rest == [i for i in ids_a if i not in placed][:len(rest)]
    # a placed item has no beam score, unless the beams found it too: then it keeps that one
    beam_score = {r.item_id: r.score for r in a}
    for r in b:
      assert (np.isnan(r.score) if r.item_id not in beam_score
              else r.score == beam_score[r.item_id]), r
  # The gate's share of validation users, roughly, gets a new item (everyone at share 1).
  if settings.get("tier_edges") is None:
    assert given == len(users) if settings["min_similarity"] is None else 0 < given < len(users)
  else:
    assert 0 < given <= len(users)
  # The command (one process): a history with an unknown id dropped with a warning, new
  # items placed as in the library, the table's rows.
  anonymous = rec.recommend(histories, k=20, include_new_items=True)  # no --user: no user token
  u = next(u for u, recs in enumerate(anonymous) if any(r.new_item for r in recs))
  proc = subprocess.run([sys.executable, "-m", "tiger_jax.recommend", f"--model_dir={model_dir}",
                         f"--history={','.join(['nope'] + histories[u])}", "--skip_unknown",
                         "--include_new_items", "--k=20"], cwd=REPO, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "dropped 1 unknown item ids: nope" in proc.stderr
  for r in anonymous[u]:
    score = "new item" if np.isnan(r.score) else f"{r.score:.3f}"  # placed, or a beam's
    title = (r.title or "-").replace("|", "/")[:70]
    assert f"| {r.rank} | {r.item_id} | {title} | {score} | " in proc.stdout
