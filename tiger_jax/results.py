"""The pipeline's results: a small cache of finished rows, training time, the markdown table."""

from __future__ import annotations

import os
from typing import Callable

from absl import logging
import numpy as np

from tiger_jax import checkpoints, io_utils, metrics
from tiger_jax.metrics import METRIC_NAMES
from tiger_jax.run_dir import RunDir


HIT_DEPTH = 20  # the ranks a hits record keeps: the beam's width, past every reported k


def user_hits(lists: dict[str, np.ndarray], targets, histories=None) -> dict:
  """Each model's per-user hits (`metrics.encode_hits`) in its top HIT_DEPTH, without each
  user's own history items when `histories` are given (as its metrics read the lists): the
  record that lets any two models on the same users be paired later, with no run kept."""
  out = {"users": len(targets), "depth": HIT_DEPTH}
  for name, ranked in lists.items():
    ranked = np.asarray(ranked)
    if histories is not None:
      ranked = metrics.without_history(ranked, histories, HIT_DEPTH)
    out[name] = metrics.encode_hits(metrics.hit_ranks(ranked[:, :HIT_DEPTH], targets))
  return out


def hit_ranks(hits: dict, model: str) -> np.ndarray:
  """The [users] `metrics.hit_ranks` of one model of a `user_hits` record."""
  return metrics.decode_hits(hits[model], hits["users"])


def reuse_or_run(path: str, config: dict, run: Callable[[], dict]) -> dict:
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


def sasrec_ranked_path(model_dir: str, split: str) -> str:
  """Where the pipeline keeps SASRec's ranked lists [users, k] of a split (user order)."""
  return RunDir(model_dir).ranked(f"{split}_sasrec")


def train_seconds(model_dir: str) -> float:
  """Wall time of training, evaluation excluded, summed over resumed runs (the trainer's
  clock); for runs from before the clock, first to last TensorBoard event of each run."""
  seconds = checkpoints.train_seconds(model_dir)
  if seconds is not None:
    return round(seconds, 1)
  import tensorflow as tf
  total = 0.0
  for path in tf.io.gfile.glob(os.path.join(RunDir(model_dir).train_logs, "events.out.tfevents.*")):
    times = [e.wall_time for e in tf.compat.v1.train.summary_iterator(path)]
    total += max(times) - min(times) if times else 0.0
  return round(total, 1)


def results_table(rows: dict[str, dict], dataset: str, split: str,
                  exclude_history: bool = False) -> str:
  """Markdown: one row per model, METRIC_NAMES, invalid rate and training time where known;
  the title says when the lists left out each user's own history (`EXCLUDE_HISTORY`)."""
  protocol = ", own history excluded" if exclude_history else ""
  lines = [f"{dataset}{protocol} ({split} split, full ranking over all items)", "",
           "| model | " + " | ".join(METRIC_NAMES) + " | invalid rate | train time |",
           "|---|" + "---|" * (len(METRIC_NAMES) + 2)]
  for name, r in rows.items():
    inv = f"{r['invalid_rate']:.4f}" if "invalid_rate" in r else "-"
    train = f"{r['train_seconds'] / 60:.1f} min" if "train_seconds" in r else "-"
    lines.append(f"| {name} | " + " | ".join(f"{r[k]:.4f}" for k in METRIC_NAMES)
                 + f" | {inv} | {train} |")
  return "\n".join(lines) + "\n"
