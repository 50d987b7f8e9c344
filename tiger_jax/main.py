r"""The whole pipeline on one dataset: the README's main job.

  python -m tiger_jax.main [--gin.MODEL_DIR="'runs/synthetic'"] [--gin_file=...]

content vectors -> Semantic IDs -> training -> constrained beam search on
the test split -> metrics beside the most-popular and item-transition
baselines. Without arguments it runs the embedded synthetic default
(gin_configs/main_synthetic.gin). Every stage reuses what an earlier run
of the same MODEL_DIR wrote, so a killed run picks up where it stopped.
Results: MODEL_DIR/results/test.json and results.md.
"""

from __future__ import annotations

import dataclasses
import os
import time

import gin
import numpy as np
from absl import flags, logging

from tiger_jax import baselines, cli, data as data_lib, evaluate as evaluate_lib, io_utils
from tiger_jax import metrics as metrics_lib
from tiger_jax import sasrec
from tiger_jax import train as train_lib
from tiger_jax.data.prepare import prepare
from tiger_jax.configurables import RQVAEConfig, SASRecConfig, SemanticIdConfig
from tiger_jax.semantic_ids import pipeline as sid_pipeline

FLAGS = flags.FLAGS
DEFAULT_GIN = "gin_configs/main_synthetic.gin"



@gin.configurable("pipeline")
def run_pipeline(model_dir: str = gin.REQUIRED, source: str = "synthetic",
                 source_dir: str | None = None, category: str | None = None,
                 content: str = "auto", split: str = "test", beam_size: int = 20, eval_batch_size: int = 64,
                 run_sasrec: bool = True, cold_start_fraction: float = 0.0,
                 cold_start_epsilon: float = 0.1, cold_start_prefix_len: int | None = None,
                 decode_dtype: str | None = None) -> dict:
  """Runs every stage into model_dir; returns the results table rows.

  content: the item vectors behind the Semantic IDs ('auto': text where the
  data has it, e.g. item_meta.jsonl beside an S3-Rec folder; else attributes).
  """
  t0 = time.time()
  train_lib.TrainerConfigurable()  # a bad TrainerConfig binding stops here, before any stage
  data_dir = os.path.join(model_dir, "data")
  sid_dir = os.path.join(model_dir, "semantic_ids")
  if not io_utils.exists(os.path.join(data_dir, "manifest.json")):
    prepare(source, data_dir, source_dir, category, content_source=content,
            cold_start_fraction=cold_start_fraction)
  logging.info("stage 1-2: prepared data and item vectors in %s", data_dir)
  if not io_utils.exists(os.path.join(sid_dir, "manifest.json")):  # written last by the stage
    sid_pipeline.run(data_dir, sid_dir, SemanticIdConfig(rqvae=RQVAEConfig()))
  logging.info("stage 3: Semantic IDs in %s", sid_dir)
  # Recorded in MODEL_DIR/config.gin, so that file alone serves evaluate and the benchmarks.
  with gin.unlock_config():
    gin.bind_parameter("DATA_DIR/macro.value", data_dir)
    gin.bind_parameter("SEMANTIC_ID_DIR/macro.value", sid_dir)
  exp = train_lib.experiment_configurable(data_dir=data_dir, semantic_id_dir=sid_dir)
  train_lib.train_configurable(model_dir=model_dir, exp=exp)
  logging.info("stage 4-5: trained model in %s", model_dir)
  result = evaluate_lib.evaluate_checkpoint(exp, model_dir, split, beam_size, eval_batch_size,
                                            dtype=decode_dtype)
  dataset = data_lib.load(data_dir)
  rows = {"TIGER": {**result, "train_seconds": train_seconds(model_dir)}}
  examples = list(data_lib.iter_examples(dataset, split))
  targets = [e.target for e in examples]
  histories = [e.history for e in examples]
  train_seqs = data_lib.training_sequences(dataset)
  for name, fn in (("most-popular", baselines.most_popular),
                   ("item-transition", baselines.item_transition)):
    rows[name] = metrics_lib.retrieval_metrics(fn(train_seqs, dataset.num_items, histories), targets)
  if run_sasrec:  # the paper's comparator, same splits and metrics, full ranking
    def run_sasrec_stage() -> dict:
      t = time.time()
      model, params = sasrec.train(train_seqs, dataset.num_items, SASRecConfig())
      full_histories = [s[:-1] if split == "test" else s[:-2] for s in dataset.sequences]
      ranked = sasrec.recommend(model, params, full_histories, k=20)
      return {**metrics_lib.retrieval_metrics(ranked, targets),
              "train_seconds": round(time.time() - t, 1)}
    rows["SASRec"] = reuse_or_run(
        os.path.join(model_dir, "results", f"{split}_sasrec.json"),
        {**dataclasses.asdict(SASRecConfig()), "num_items": dataset.num_items,
         "train_sequences": len(train_seqs)}, run_sasrec_stage)
  if dataset.cold_items is not None and len(dataset.cold_items):
    rows.update(cold_start_rows(dataset, model_dir, data_dir, split, targets, histories,
                                cold_start_epsilon, exp.ids, cold_start_prefix_len, beam_size))
  table = results_table(rows, dataset.name, split)
  io_utils.write_json(os.path.join(model_dir, "results", f"{split}_baselines.json"), rows)
  with io_utils.atomic_open(os.path.join(model_dir, "results", "results.md")) as f:
    f.write(table)
  print(table)
  print(f"pipeline finished in {time.time() - t0:.0f}s; results in {model_dir}/results/")
  return rows


def reuse_or_run(path: str, config: dict, run) -> dict:
  """The result saved at `path` when it was computed with `config`; else run() and save it
  (a rerun of the pipeline, e.g. to train TIGER longer, keeps the finished stages)."""
  if io_utils.exists(path):
    saved = io_utils.read_json(path)
    if saved.get("config") == config:
      logging.info("reusing %s", path)
      return saved["result"]
  result = run()
  io_utils.write_json(path, {"config": config, "result": result})
  return result


def cold_start_rows(dataset, model_dir: str, data_dir: str, split: str, targets, histories,
                    epsilon: float, ids: np.ndarray, prefix_len: int | None = None,
                    beam_size: int = evaluate_lib.DEFAULT_BEAM) -> dict[str, dict]:
  """Recall/NDCG on the users whose target is a cold-start item, top-K capped at epsilon * K
  cold items: TIGER (from its saved ranked lists: its beams alone, and with the cold items
  that share the first `prefix_len` codes of a retrieved item; default: all but the
  collision token) against content-KNN on the same users."""
  is_cold = np.zeros(dataset.num_items, bool)
  is_cold[dataset.cold_items] = True
  z = io_utils.load_arrays(os.path.join(model_dir, "results",
                                        f"{evaluate_lib.result_name(split, beam_size)}_ranked.npz"))
  order = np.argsort(z["users"])
  ranked, tiger_targets = z["ranked"][order], z["targets"][order]
  targets = np.asarray(targets)
  if not np.array_equal(tiger_targets, targets):
    raise ValueError("the saved ranked lists do not match this dataset's users")
  users = np.flatnonzero(is_cold[targets])
  vectors = io_utils.load_array(os.path.join(data_dir, "item_vectors.npy"))
  knn = baselines.content_knn(vectors, [histories[u] for u in users], k=50)
  prefix_len = prefix_len or ids.shape[1] - 1
  by_prefix = metrics_lib.add_cold_by_prefix(ranked[users], ids, is_cold, prefix_len)
  out = {}
  for name, lists in ((f"TIGER beams, cold targets (eps={epsilon})", ranked[users]),
                      (f"TIGER + cold items by {prefix_len}-code prefix, cold targets (eps={epsilon})",
                       by_prefix),
                      (f"content-KNN, cold targets (eps={epsilon})", knn)):
    out[name] = metrics_lib.retrieval_metrics(metrics_lib.cap_cold(lists, is_cold, 10, epsilon),
                                              targets[users])
    out[name]["users"] = int(len(users))
  return out


def train_seconds(model_dir: str) -> float:
  """Wall time of training, evaluation excluded, summed over resumed runs (the trainer's
  clock); for runs from before the clock, first to last TensorBoard event of each run."""
  from tiger_jax import trainer
  seconds = trainer.train_seconds(model_dir)
  if seconds is not None:
    return round(seconds, 1)
  import tensorflow as tf
  total = 0.0
  for path in tf.io.gfile.glob(os.path.join(model_dir, "train", "events.out.tfevents.*")):
    times = [e.wall_time for e in tf.compat.v1.train.summary_iterator(path)]
    total += max(times) - min(times) if times else 0.0
  return round(total, 1)


def results_table(rows: dict[str, dict], dataset: str, split: str) -> str:
  keys = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")
  lines = [f"{dataset} ({split} split, full ranking over all items)", "",
           "| model | " + " | ".join(keys) + " | invalid rate | train time |",
           "|---|" + "---|" * (len(keys) + 2)]
  for name, r in rows.items():
    inv = f"{r['invalid_rate']:.4f}" if "invalid_rate" in r else "-"
    train = f"{r['train_seconds'] / 60:.1f} min" if "train_seconds" in r else "-"
    lines.append(f"| {name} | " + " | ".join(f"{r[k]:.4f}" for k in keys) + f" | {inv} | {train} |")
  return "\n".join(lines) + "\n"


def main() -> None:
  run_pipeline()


if __name__ == "__main__":
  import sys
  if not any(a.startswith("--gin_file") for a in sys.argv[1:]):
    sys.argv.insert(1, f"--gin_file={DEFAULT_GIN}")
  cli.run(main)
