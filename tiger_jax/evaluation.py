"""Evaluating a trained checkpoint on a split (the library behind `python -m tiger_jax.evaluate`).

`evaluate_checkpoint` writes MODEL_DIR/results/<name>.json (`result_name`): recall@5/10,
ndcg@5/10, invalid_rate, users, beam, checkpoint step, wall time; and <name>_ranked.npz. The
metrics come from `seqio.Evaluator` running the task's own metric_fns, with the constrained
beam search as its predict function (`seqio_predict_fn`). seqio and TensorFlow load when an
evaluation reads its split, so that a command that stops at its flags stops at once.
"""

from __future__ import annotations

import logging
import time
from typing import Sequence

import jax
import numpy as np

from tiger_jax import buckets, experiment as experiment_lib, io_utils
from tiger_jax.semantic_ids import pipeline as sid_pipeline
from tiger_jax import metrics as metrics_lib, retrieval
from tiger_jax import checkpoints as checkpoints_lib
from tiger_jax.retrieval import DEFAULT_BEAM
from tiger_jax.run_dir import RunDir


def protocol_suffix(exclude_history: bool) -> str:
  """What every results file of a run under `EXCLUDE_HISTORY` ends its stem with."""
  return "_nohistory" if exclude_history else ""


def result_name(split: str, beam_size: int = DEFAULT_BEAM, max_examples: int | None = None,
                constrained: bool = True, checkpoint: str = "latest",
                exclude_history: bool = False) -> str:
  """The results file stem: `<split>` for the full split at the default beam, constrained,
  latest checkpoint, history not excluded; anything else says what it is (`test_beam50`,
  `test_best_nohistory`, `test_first32users_unconstrained`), so a partial or non-default
  evaluation never overwrites the full one."""
  name = split
  if checkpoint != "latest":
    name += f"_{checkpoint}"
  if beam_size != DEFAULT_BEAM:
    name += f"_beam{beam_size}"
  name += protocol_suffix(exclude_history)
  if max_examples:
    name += f"_first{max_examples}users"
  return name if constrained else name + "_unconstrained"


def check_beam_size(beam_size: int, num_items: int) -> None:
  if not 1 <= beam_size <= num_items:
    raise ValueError(f"beam size {beam_size} must be in 1..{num_items} (the number of items): "
                     "a beam returns that many distinct items")


def seqio_predict_fn(retriever: retrieval.Retriever, params, batch_size: int,
                     bucket_bounds: Sequence[int]):
  """A seqio predict_fn: the (index, features) dataset of `seqio.Evaluator` -> [(index, beams of
  Semantic-ID tokens [beam, id_length])]. Users are decoded sorted by history length, each
  batch trimmed to the smallest bucket bound its longest input fits (the trimmed positions
  are padding, masked: the beams do not change), so short histories are not decoded at 81."""

  def predict_fn(ds) -> list[tuple[int, list]]:
    rows = [(int(i), f["encoder_input_tokens"]) for i, f in ds.as_numpy_iterator()]
    lengths = np.array([int(np.flatnonzero(x).max(initial=0)) + 1 for _, x in rows])
    order = np.argsort(lengths, kind="stable")
    out = []
    for start in range(0, len(order), batch_size):
      chunk = order[start:start + batch_size]
      width = buckets.bucket_width(bucket_bounds, lengths[chunk].max())
      inputs = np.zeros((batch_size, width), np.int32)
      for r, i in enumerate(chunk):
        inputs[r] = rows[i][1][:width]
      beams = retriever.tokens(params, inputs)
      out.extend((rows[i][0], beams[r].tolist()) for r, i in enumerate(chunk))
    return out
  return predict_fn


def evaluate_with_seqio(exp: experiment_lib.Experiment, retriever: retrieval.Retriever, params,
                        split: str, batch_size: int, max_examples: int | None,
                        ranked_out: dict | None = None, num_buckets: int = 5) -> dict:
  """The task's own metric_fns over `split` through `seqio.Evaluator`, with the constrained
  beam search as its predict function (batches in `num_buckets` length buckets); plus the
  invalid rate and speed. ranked_out, when given, receives 'ranked' items [users, beam],
  'targets' and 'users' in split order."""
  import seqio
  import tasks
  evaluator = seqio.Evaluator(exp.task.name, seqio.EncDecFeatureConverter(pack=False),
                              eval_split=split, sequence_length=exp.feature_lengths,
                              num_examples=max_examples, async_compute_metrics=False)
  bounds = buckets.bucket_boundaries(exp.feature_lengths["inputs"], exp.layout.id_length,
                                    num_buckets)
  start = time.time()
  metrics_future, outputs = evaluator.evaluate(
      compute_metrics=True, predict_fn=seqio_predict_fn(retriever, params, batch_size, bounds))
  seconds = time.time() - start
  scores = metrics_future.result()[exp.task.name]
  beams = outputs[exp.task.name][seqio.metrics.ModelOutputType.PREDICTION]  # in split order
  ranked = np.array([tasks.items_of_beams(b, exp.data_dir, exp.semantic_id_dir) for b in beams],
                    np.int64).reshape(-1, retriever.beam_size)
  examples = list(evaluator.cached_task_datasets[exp.task.name].as_numpy_iterator())
  if ranked_out is not None:
    ranked_out.update(ranked=ranked, targets=np.array([e["target_item"] for e in examples]),
                      users=np.array([e["user"] for e in examples]))
  out = {k: float(getattr(v, "value", v)) for k, v in scores.items()}  # Scalar or float
  out["invalid_rate"] = metrics_lib.invalid_rate(ranked, 10)
  out.update(users=len(ranked), beam=retriever.beam_size, seconds=round(seconds, 2),
             users_per_sec=round(len(ranked) / max(seconds, 1e-9), 1))
  logging.info("evaluated %d users in %.1fs (%.0f users/s)", len(ranked), seconds,
               out["users_per_sec"])
  return out


def saved_evaluation(model_dir: str, name: str, checkpoint: str, dtype: str | None = None,
                     ids: np.ndarray | None = None, settings: dict | None = None) -> dict | None:
  """MODEL_DIR/results/<name>.json (with its <name>_ranked.npz beside it) when it was decoded
  from the step that `checkpoint` ('latest', 'best') names now, and, where given, in activation
  `dtype`, on the Semantic IDs `ids` and with the retriever's `settings` (`Retriever.settings`:
  the item head's blend); None when it is missing or stale (the run has trained on,
  validation picked another step, or the decoding differs since)."""
  path = RunDir(model_dir).result(name)
  if not (io_utils.exists(path) and io_utils.exists(RunDir(model_dir).ranked(name))):
    return None
  saved = io_utils.read_json(path)
  current = checkpoints_lib.checkpoint_step(model_dir, checkpoint)
  if current is None or saved.get("checkpoint_step") != current:
    return None
  if dtype is not None and saved.get("dtype") != dtype:
    return None
  if ids is not None and saved.get("semantic_ids", {}).get("sha1") != sid_pipeline.checksum(ids):
    return None
  if settings is not None and saved.get("decoding", {}) != settings:
    return None
  return saved


def evaluate_checkpoint(exp: experiment_lib.Experiment, model_dir: str, split: str = "test",
                        beam_size: int = DEFAULT_BEAM, batch_size: int = 64,
                        constrained: bool = True, max_examples: int | None = None,
                        dtype: str | None = None, checkpoint: str = "latest",
                        exclude_history: bool = False) -> dict:
  """Evaluates model_dir's latest checkpoint, or its best on validation (checkpoint='best');
  writes MODEL_DIR/results/<name>.json and <name>_ranked.npz (name: `result_name`).
  exclude_history: no returned item is in the user's own history (`retrieval.Retriever`)."""
  check_beam_size(beam_size, len(exp.ids))
  trainer, state = experiment_lib.restore(exp, model_dir, checkpoint)
  start = time.time()
  retriever = retrieval.Retriever(exp.model, exp.layout, exp.ids, beam_size, constrained,
                                  batch_sharding=trainer.batch_sharding, dtype=dtype,
                                  exclude_history=exclude_history)
  ranked, settings = {}, retriever.settings()
  with trainer.context():
    if jax.process_count() == 1:  # metrics from the task's metric_fns, as a t5x user runs it
      result = evaluate_with_seqio(exp, retriever, state.eval_params, split, batch_size,
                                   max_examples, ranked, trainer.config.eval_buckets)
    else:  # each host decodes its shard of the users, and all get all lists (seqio.Evaluator
      # would read the whole split on every host)
      from tiger_jax import input_pipeline  # TensorFlow: loaded only where it is used
      batches = input_pipeline.eval_batches(exp.task, exp.feature_lengths, split, batch_size,
                                            max_examples, jax.process_index(), jax.process_count(),
                                            trainer.config.eval_buckets, exp.layout.id_length)
      result = retrieval.evaluate(retriever, state.eval_params, batches, ranked)
  result.update(checkpoint=checkpoint, checkpoint_step=int(state.step),
                wall_time=round(time.time() - start, 1), split=split, constrained=constrained,
                dtype=retriever.model.config.dtype, exclude_history=exclude_history,
                **({"decoding": settings} if settings else {}),
                hardware=f"{jax.device_count()} x {jax.devices()[0].device_kind}",
                semantic_ids=sid_pipeline.summary(exp.semantic_id_dir))
  name = result_name(split, beam_size, max_examples, constrained, checkpoint, exclude_history)
  if jax.process_index() == 0:  # every host holds every user's lists (`retrieval.retrieve`)
    io_utils.write_json(RunDir(model_dir).result(name), result)
    io_utils.write_npz(RunDir(model_dir).ranked(name), **ranked)
  return result
