r"""The whole pipeline on one dataset: the README's main job.

  python -m tiger_jax.main [--gin.MODEL_DIR="'runs/synthetic'"] [--gin_file=...]

content vectors -> Semantic IDs -> training -> constrained beam search on
the test split -> metrics beside the most-popular and item-transition
baselines (and SASRec). Without arguments it runs the embedded synthetic default
(gin_configs/main_synthetic.gin). Every stage reuses what an earlier run
of the same MODEL_DIR wrote, so a killed run picks up where it stopped.
Results: MODEL_DIR/results/test.json and results.md.
"""

from __future__ import annotations

import dataclasses
import os
import time

from absl import logging
import numpy as np

from tiger_jax import baselines, cli, configurables, data as data_lib, evaluation as evaluate_lib
from tiger_jax import experiment as experiment_lib, io_utils, metrics as metrics_lib, results
from tiger_jax import sasrec
from tiger_jax import cold_start, retrieval
from tiger_jax.data.prepare import prepare
from tiger_jax.pipeline_config import PipelineConfig
from tiger_jax.semantic_ids import pipeline as sid_pipeline
from tiger_jax import checkpoints as checkpoints_lib
from tiger_jax.run_dir import RunDir

DEFAULT_GIN = "gin_configs/main_synthetic.gin"
# The configurables the pipeline calls itself: a --gin binding of any other is an error.
CALLS = ("pipeline", "TrainerConfig", "SyntheticConfig", "SemanticIdConfig", "RQVAEConfig",
         "experiment", "train", "SASRecConfig", "InteractionsConfig")


def run_pipeline(config: PipelineConfig) -> dict:
  """Runs every stage into config.model_dir; returns the results table rows."""
  t0 = time.time()
  c = config
  configurables.TrainerConfig()  # a bad TrainerConfig binding stops here, before any stage
  c.epsilons()  # and a bad pipeline.cold_start_epsilon
  data_dir, sid_dir = experiment_lib.run_dirs(c.model_dir, c.data_dir, c.semantic_id_dir)
  if not io_utils.exists(os.path.join(data_dir, "manifest.json")):
    prepare(c.source, data_dir, c.source_dir, c.category, content_source=c.content,
            cold_start_fraction=c.cold_start_fraction, cold_start_unseen=c.cold_start_unseen,
            synthetic_config=configurables.SyntheticConfig() if c.source == "synthetic" else None,
            interactions=c.interactions, items=c.items,
            interactions_config=(configurables.InteractionsConfig()
                                 if c.source == "interactions" else None))
  logging.info("stage 1-2: prepared data and item vectors in %s", data_dir)
  if not io_utils.exists(os.path.join(sid_dir, "manifest.json")):  # written last by the stage
    if c.ids_from:
      sid_pipeline.copy_ids(c.ids_from, sid_dir, data_dir)
    else:
      sid_pipeline.run(data_dir, sid_dir,
                       configurables.SemanticIdConfig(rqvae=configurables.RQVAEConfig()))
  logging.info("stage 3: Semantic IDs in %s", sid_dir)
  exp = configurables.experiment(data_dir=data_dir, semantic_id_dir=sid_dir)
  configurables.write_config(c.model_dir)
  configurables.train(model_dir=c.model_dir, exp=exp)
  logging.info("stage 4-5: trained model in %s", c.model_dir)
  checkpoint = c.checkpoint
  if checkpoint == "auto":
    checkpoint = "best" if checkpoints_lib.checkpoint_step(c.model_dir, "best") is not None \
        else "latest"
  result = tiger_evaluation(exp, c, checkpoint)
  dataset = data_lib.load(data_dir)
  rows = {"TIGER": {**result, "train_seconds": results.train_seconds(c.model_dir)}}
  examples = list(data_lib.iter_examples(dataset, c.split))
  targets = [e.target for e in examples]
  histories = [e.history for e in examples]
  train_seqs = data_lib.training_sequences(dataset)
  excluded = histories if c.exclude_history else None
  tiger = evaluate_lib.result_name(c.split, c.beam_size, checkpoint=checkpoint,
                                   exclude_history=c.exclude_history)
  lists = {"TIGER": retrieval.load_ranked(RunDir(c.model_dir).ranked(tiger), np.asarray(targets))}
  for name, fn in (("most-popular", baselines.most_popular),
                   ("item-transition", baselines.item_transition),
                   (baselines.LAST_ITEMS_ROW, baselines.item_transition_last_items)):
    lists[name] = fn(train_seqs, dataset.num_items, histories, k=ranked_k(dataset))
    rows[name] = metrics_lib.retrieval_metrics(lists[name], targets, histories=excluded)
  if c.run_sasrec:  # the paper's comparator, same splits and metrics, full ranking
    lists["SASRec"], seconds = sasrec_ranked(dataset, train_seqs, c)
    rows["SASRec"] = {**metrics_lib.retrieval_metrics(lists["SASRec"], targets,
                                                      histories=excluded),
                      "train_seconds": seconds}
  if dataset.cold_items is not None and np.isin(targets, dataset.cold_items).any():
    # (catalog-only items of one's own item file are cold but never a target: no rows)
    rows.update(cold_rows(exp, dataset, c, checkpoint, data_dir, train_seqs, histories, targets))
  protocol = evaluate_lib.protocol_suffix(c.exclude_history)
  table = results.results_table(rows, dataset.name, c.split, c.exclude_history)
  io_utils.write_json(RunDir(c.model_dir).result(f"{c.split}{protocol}_baselines"), rows)
  io_utils.write_json(RunDir(c.model_dir).result(f"{c.split}{protocol}_hits"),
                      results.user_hits(lists, np.asarray(targets), excluded))
  with io_utils.atomic_open(RunDir(c.model_dir).result(f"results{protocol}", ".md")) as f:
    f.write(table)
  print(table)
  print(f"pipeline finished in {time.time() - t0:.0f}s; results in {c.model_dir}/results/")
  return rows


def cold_rows(exp, dataset, c: PipelineConfig, checkpoint: str, data_dir: str, train_seqs,
              histories, targets) -> dict:
  """The cold-start rows (`cold_start.cold_start_rows`), once per epsilon: TIGER's saved
  lists of the split, and of validation (decoded here unless saved), where the mechanism's
  settings are chosen; the first epsilon's settings are saved for `recommend`."""
  is_cold = np.zeros(dataset.num_items, bool)
  is_cold[dataset.cold_items] = True
  splits = {}
  for split in ("validation", c.split):
    name = evaluate_lib.result_name(split, c.beam_size, checkpoint=checkpoint,
                                    exclude_history=c.exclude_history)
    path = RunDir(c.model_dir).ranked(name)
    if not io_utils.exists(path):
      evaluate_lib.evaluate_checkpoint(exp, c.model_dir, split, c.beam_size, c.eval_batch_size,
                                       dtype=c.decode_dtype, checkpoint=checkpoint,
                                       exclude_history=c.exclude_history)
    examples = list(data_lib.iter_examples(dataset, split))
    split_targets = np.array([e.target for e in examples])
    splits[split] = cold_start.Split([e.history for e in examples], split_targets,
                                     retrieval.load_ranked(path, split_targets))
  vectors = io_utils.load_array(os.path.join(data_dir, "item_vectors.npy"))
  rows, settings = {}, None
  for epsilon in c.epsilons():  # one set of rows per epsilon: the curve
    eps_rows = cold_start.cold_start_rows(
        configurables.ColdStartConfig(), vectors, exp.ids, is_cold, train_seqs,
        splits["validation"], splits[c.split], epsilon, c.cold_start_prefix_len,
        c.exclude_history)
    settings = settings or cold_start.chosen_settings(eps_rows)
    rows.update(eps_rows)
  if settings:  # what `recommend --include_new_items` uses
    io_utils.write_json(RunDir(c.model_dir).result(cold_start.SETTINGS_FILE), settings)
  return rows


def tiger_evaluation(exp, c: PipelineConfig, checkpoint: str) -> dict:
  """TIGER's evaluation of the split: the saved one when it was decoded from the step that
  `checkpoint` names now, with the same decoding dtype and Semantic IDs (a rerun of a finished
  pipeline, e.g. to add SASRec, decodes nothing); otherwise decoded and saved."""
  name = evaluate_lib.result_name(c.split, c.beam_size, checkpoint=checkpoint,
                                  exclude_history=c.exclude_history)
  saved = evaluate_lib.saved_evaluation(c.model_dir, name, checkpoint,
                                        dtype=c.decode_dtype or exp.model.config.dtype,
                                        ids=exp.ids, settings=retrieval.decoding_settings(
                                            exp.model.config, c.beam_size))
  if saved is not None:
    logging.info("reusing %s: decoded from step %d", RunDir(c.model_dir).result(name),
                 saved["checkpoint_step"])
    return saved
  return evaluate_lib.evaluate_checkpoint(exp, c.model_dir, c.split, c.beam_size,
                                          c.eval_batch_size, dtype=c.decode_dtype,
                                          checkpoint=checkpoint,
                                          exclude_history=c.exclude_history)


# The baselines' and SASRec's lists: the metrics' deepest k, plus room for the history
# items `exclude_history` takes out (the plain metrics read only the first k).
RANKED_K = metrics_lib.KS[-1] + data_lib.MAX_HISTORY


def ranked_k(dataset) -> int:
  """RANKED_K, or every item of a smaller catalog."""
  return min(RANKED_K, dataset.num_items)


def sasrec_validation(dataset):
  """SASRec's early-stopping score: validation NDCG@10 of every user's full list, as
  `studies/sasrec_tune.py` stops its variants. One SASRec serves both protocols
  (EXCLUDE_HISTORY filters its lists afterwards)."""
  examples = list(data_lib.iter_examples(dataset, "validation"))
  histories = [s[:-2] for s in dataset.sequences if len(s) >= data_lib.dataset.MIN_INTERACTIONS]
  targets = np.array([e.target for e in examples])
  return lambda model, params: metrics_lib.retrieval_metrics(
      sasrec.recommend(model, params, histories, k=10), targets, ks=(10,))["ndcg@10"]


def sasrec_ranked(dataset, train_seqs, c: PipelineConfig) -> tuple[np.ndarray, float]:
  """SASRec (configured by gin's SASRecConfig) on the same split: its top RANKED_K items per
  user [users, RANKED_K] and its training seconds; saved, and reused when already run."""
  config = configurables.SASRecConfig()
  ranked_path = results.sasrec_ranked_path(c.model_dir, c.split)

  def run() -> dict:
    validate = sasrec_validation(dataset) if config.patience else None
    state, info = RunDir(c.model_dir).sasrec_state(c.split), {}
    model, params = sasrec.train(train_seqs, dataset.num_items, config, validate=validate,
                                 state_path=state, info=info)
    full_histories = [s[:-1] if c.split == "test" else s[:-2] for s in dataset.sequences]
    io_utils.write_npz(ranked_path, ranked=sasrec.recommend(model, params, full_histories,
                                                            k=ranked_k(dataset)))
    if io_utils.exists(state):
      io_utils.remove(state)  # its lists are saved: the state has served
    return {"train_seconds": info["wall_seconds"], "epochs": info["epochs"],
            "best_epoch": info["best_epoch"]}

  key = {**dataclasses.asdict(config), "num_items": dataset.num_items,
         "train_sequences": len(train_seqs), "k": ranked_k(dataset)}
  path = RunDir(c.model_dir).result(f"{c.split}_sasrec")
  if not io_utils.exists(ranked_path) and io_utils.exists(path):
    io_utils.remove(path)  # a result without its lists: train again
  seconds = results.reuse_or_run(path, key, run)["train_seconds"]
  return io_utils.load_arrays(ranked_path)["ranked"], seconds


def main() -> None:
  run_pipeline(configurables.PipelineConfig())


if __name__ == "__main__":
  import sys
  if not any(a.startswith("--gin_file") for a in sys.argv[1:]):
    sys.argv.insert(1, f"--gin_file={DEFAULT_GIN}")
  cli.run(main, calls=CALLS)
