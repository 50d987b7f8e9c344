r"""Retrieval by constrained beam search, and the evaluate command.

  python -m tiger_jax.evaluate --gin_file=gin_configs/tiger_beauty.gin \
      --gin.MODEL_DIR="'/tmp/tiger_beauty'" --split=test

writes MODEL_DIR/results/<split>.json: recall@5/10, ndcg@5/10, invalid_rate,
users, beam, checkpoint step, wall time.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Iterable, Mapping

import jax
import numpy as np

from tiger_jax import decoding, input_pipeline, metrics as metrics_lib
from tiger_jax.models import EncoderDecoderModel
from tiger_jax.tokens import TokenLayout


class Retriever:
  """Top-K items per user from a trained model, fully on device (one jit per batch shape).

  `dtype` overrides the activations' dtype for decoding ('bfloat16': what t5x
  decodes in; dots accumulate in float32, several times faster than float32 dots on
  TPU/GPU and on CPUs with AMX/AVX512-BF16).
  """

  def __init__(self, model: EncoderDecoderModel, layout: TokenLayout, ids: np.ndarray,
               beam_size: int = 20, constrained: bool = True,
               batch_sharding: jax.sharding.Sharding | None = None, block_softmax: bool = True,
               dtype: str | None = None):
    if dtype is not None and dtype != model.config.dtype:  # e.g. bfloat16 activations, f32 params
      model = model.with_dtype(dtype)
    self.model, self.layout, self.ids = model, layout, np.asarray(ids)
    self.beam_size, self.constrained, self.block_softmax = beam_size, constrained, block_softmax
    self.trie = decoding.Trie.build(self.ids) if constrained else None
    self._fn = jax.jit(self._retrieve, in_shardings=(None, batch_sharding) if batch_sharding else None)

  def _retrieve(self, params: Any, inputs: jax.Array):
    model, layout, k = self.model, self.layout, self.beam_size
    encoded = model.encode(params, inputs)
    cache = model.init_cache(params, encoded, inputs)
    step = lambda tokens, cache, position, block: model.decode_step(
        params, cache, encoded, inputs, tokens, position, block)
    return decoding.beam_search(step, cache, inputs.shape[0], k, layout.level_offsets,
                                layout.level_sizes, self.trie,
                                block_softmax=self.block_softmax)

  def __call__(self, params: Any, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """inputs [batch, in_len] -> (items [batch, beam] best first, -1 = not an item; scores)."""
    codes, scores, items = self._fn(params, inputs)
    if not self.constrained:
      items = decoding.lookup_items(np.asarray(codes), self.ids)
    return np.asarray(items), np.asarray(scores)


def evaluate(retriever: Retriever, params: Any, batches: Iterable[Mapping[str, np.ndarray]],
             ranked_out: dict | None = None) -> dict[str, float]:
  """Recall/NDCG@5/10 and invalid rate over batches with 'inputs', 'target_item', 'mask'.

  ranked_out, when given, receives the ranked lists [users, beam], 'targets' and 'users'.
  """
  ranked, targets = [], []
  start, users = time.time(), 0
  for batch in batches:
    items, _ = retriever(params, batch["inputs"])
    keep = batch["mask"] > 0
    ranked.append(items[keep])
    targets.append(batch["target_item"][keep])
    if ranked_out is not None:
      ranked_out.setdefault("users", []).append(batch["user"][keep])
    users += int(keep.sum())
  ranked = np.concatenate(ranked) if ranked else np.zeros((0, retriever.beam_size), np.int32)
  targets = np.concatenate(targets) if targets else np.zeros((0,), np.int32)
  seconds = time.time() - start
  if ranked_out is not None:
    ranked_out.update(ranked=ranked, targets=targets,
                      users=np.concatenate(ranked_out.get("users", [np.zeros(0, np.int32)])))
  out = metrics_lib.retrieval_metrics(ranked, targets)
  out["invalid_rate"] = metrics_lib.invalid_rate(ranked, 10)
  out.update(users=users, beam=retriever.beam_size, seconds=round(seconds, 2),
             users_per_sec=round(users / max(seconds, 1e-9), 1))
  logging.info("evaluated %d users in %.1fs (%.0f users/s)", users, seconds, out["users_per_sec"])
  return out


def restore_latest(exp, model_dir: str):
  """(trainer, train state) of model_dir's latest checkpoint, for evaluation."""
  from tiger_jax.trainer import Checkpoints, Trainer, TrainerConfig
  trainer = Trainer(exp.model, TrainerConfig(), exp.mesh, exp.feature_lengths)
  checkpoints = Checkpoints(model_dir, keep=1000, best_metric=None)
  state = checkpoints.restore_latest(trainer.init_state())
  checkpoints.close()
  if state is None:
    raise FileNotFoundError(f"{model_dir}/checkpoints: no checkpoint to evaluate")
  return trainer, state


DEFAULT_BEAM = 20  # the paper's beam; results under another beam get their own file name


def result_name(split: str, beam_size: int = DEFAULT_BEAM, max_examples: int | None = None,
                constrained: bool = True) -> str:
  """The results file stem: `<split>` for the full split at the default beam, constrained;
  anything else says what it is (`test_beam50`, `test_first32users_unconstrained`), so a
  partial or non-default evaluation never overwrites the full one."""
  name = split
  if beam_size != DEFAULT_BEAM:
    name += f"_beam{beam_size}"
  if max_examples:
    name += f"_first{max_examples}users"
  return name if constrained else name + "_unconstrained"


def check_beam_size(beam_size: int, num_items: int) -> None:
  if not 1 <= beam_size <= num_items:
    raise ValueError(f"beam size {beam_size} must be in 1..{num_items} (the number of items): "
                     "a beam returns that many distinct items")


def evaluate_checkpoint(exp, model_dir: str, split: str = "test", beam_size: int = DEFAULT_BEAM,
                        batch_size: int = 64, constrained: bool = True,
                        max_examples: int | None = None, dtype: str | None = None) -> dict:
  """Evaluates the latest checkpoint of model_dir; writes MODEL_DIR/results/<name>.json and
  <name>_ranked.npz, name = result_name(split, beam_size, max_examples, constrained)."""
  from tiger_jax import io_utils
  check_beam_size(beam_size, len(exp.ids))
  trainer, state = restore_latest(exp, model_dir)
  start = time.time()
  retriever = Retriever(exp.model, exp.layout, exp.ids, beam_size, constrained,
                        batch_sharding=trainer.batch_sharding, dtype=dtype)
  import jax
  with trainer.context():
    batches = input_pipeline.eval_batches(exp.task, exp.feature_lengths, split, batch_size,
                                          max_examples, jax.process_index(), jax.process_count())
    ranked = {}
    result = evaluate(retriever, state.params, batches, ranked)
  result.update(checkpoint_step=int(state.step), wall_time=round(time.time() - start, 1),
                split=split, constrained=constrained, dtype=retriever.model.config.dtype,
                hardware=f"{jax.device_count()} x {jax.devices()[0].device_kind}")
  name = result_name(split, beam_size, max_examples, constrained)
  io_utils.write_json(os.path.join(model_dir, "results", f"{name}.json"), result)
  io_utils.write_npz(os.path.join(model_dir, "results", f"{name}_ranked.npz"), **ranked)
  return result


def main() -> None:
  import gin
  from absl import flags
  from tiger_jax import train as train_lib
  FLAGS = flags.FLAGS
  exp = train_lib.experiment_configurable()
  model_dir = gin.query_parameter("%MODEL_DIR")
  try:
    check_beam_size(FLAGS.beam_size, len(exp.ids))
  except ValueError as e:
    raise SystemExit(f"error: --beam_size={FLAGS.beam_size}: {e}") from None
  result = evaluate_checkpoint(exp, model_dir, FLAGS.split, FLAGS.beam_size, FLAGS.batch_size,
                               not FLAGS.unconstrained, FLAGS.max_examples, FLAGS.decode_dtype)
  print(json.dumps(result, indent=1))


if __name__ == "__main__":
  import json
  from absl import flags
  from tiger_jax import cli
  from tiger_jax import main as _main_lib  # noqa: F401  (registers the configurables gin files name)
  flags.DEFINE_string("split", "test", "validation or test.")
  flags.DEFINE_integer("beam_size", DEFAULT_BEAM, "Beam size (= the number of items returned).")
  flags.DEFINE_integer("batch_size", 64, "Users per decoding batch (64 is fastest on CPU: "
                       "bench/decode_speed.py; accelerators want more).")
  flags.DEFINE_integer("max_examples", None, "Evaluate only the first N users.")
  flags.DEFINE_bool("unconstrained", False, "Free decoding: measures the invalid-ID rate.")
  flags.DEFINE_string("decode_dtype", None, "Activations dtype for decoding, e.g. bfloat16 "
                      "(default: the model's).")
  cli.run(main)
