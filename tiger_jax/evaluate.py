r"""Evaluates a trained checkpoint on a split: the evaluate command.

  python -m tiger_jax.evaluate --gin_file=gin_configs/tiger_beauty.gin \
      --gin.MODEL_DIR="'/tmp/tiger_beauty'" --split=test [--checkpoint=best]

writes MODEL_DIR/results/<name>.json (`result_name`): recall@5/10, ndcg@5/10,
invalid_rate, users, beam, checkpoint step, wall time; and <name>_ranked.npz.
Imports the experiment and the retrieval library, never the train binary.
"""

from __future__ import annotations

import os
import time

import jax

from tiger_jax import experiment as experiment_lib, input_pipeline, io_utils, retrieval
from tiger_jax.retrieval import DEFAULT_BEAM


def result_name(split: str, beam_size: int = DEFAULT_BEAM, max_examples: int | None = None,
                constrained: bool = True, checkpoint: str = "latest") -> str:
  """The results file stem: `<split>` for the full split at the default beam, constrained,
  latest checkpoint; anything else says what it is (`test_beam50`, `test_best`,
  `test_first32users_unconstrained`), so a partial or non-default evaluation never
  overwrites the full one."""
  name = split
  if checkpoint != "latest":
    name += f"_{checkpoint}"
  if beam_size != DEFAULT_BEAM:
    name += f"_beam{beam_size}"
  if max_examples:
    name += f"_first{max_examples}users"
  return name if constrained else name + "_unconstrained"


def check_beam_size(beam_size: int, num_items: int) -> None:
  if not 1 <= beam_size <= num_items:
    raise ValueError(f"beam size {beam_size} must be in 1..{num_items} (the number of items): "
                     "a beam returns that many distinct items")


def evaluate_checkpoint(exp: experiment_lib.Experiment, model_dir: str, split: str = "test",
                        beam_size: int = DEFAULT_BEAM, batch_size: int = 64,
                        constrained: bool = True, max_examples: int | None = None,
                        dtype: str | None = None, checkpoint: str = "latest") -> dict:
  """Evaluates model_dir's latest checkpoint, or its best on validation (checkpoint='best');
  writes MODEL_DIR/results/<name>.json and <name>_ranked.npz (name: `result_name`)."""
  check_beam_size(beam_size, len(exp.ids))
  trainer, state = experiment_lib.restore(exp, model_dir, checkpoint)
  start = time.time()
  retriever = retrieval.Retriever(exp.model, exp.layout, exp.ids, beam_size, constrained,
                                  batch_sharding=trainer.batch_sharding, dtype=dtype)
  with trainer.context():
    batches = input_pipeline.eval_batches(exp.task, exp.feature_lengths, split, batch_size,
                                          max_examples, jax.process_index(), jax.process_count())
    ranked = {}
    result = retrieval.evaluate(retriever, state.params, batches, ranked)
  result.update(checkpoint=checkpoint, checkpoint_step=int(state.step),
                wall_time=round(time.time() - start, 1), split=split, constrained=constrained,
                dtype=retriever.model.config.dtype,
                hardware=f"{jax.device_count()} x {jax.devices()[0].device_kind}")
  name = result_name(split, beam_size, max_examples, constrained, checkpoint)
  io_utils.write_json(os.path.join(model_dir, "results", f"{name}.json"), result)
  io_utils.write_npz(os.path.join(model_dir, "results", f"{name}_ranked.npz"), **ranked)
  return result


def main() -> None:
  import json
  import gin
  from absl import flags
  from tiger_jax import configurables
  FLAGS = flags.FLAGS
  exp = configurables.experiment()
  model_dir = gin.query_parameter("%MODEL_DIR")
  beam_size = FLAGS.beam_size or configurables.beam_size()
  try:
    check_beam_size(beam_size, len(exp.ids))
  except ValueError as e:
    raise SystemExit(f"error: --beam_size={beam_size}: {e}") from None
  result = evaluate_checkpoint(exp, model_dir, FLAGS.split, beam_size, FLAGS.batch_size,
                               not FLAGS.unconstrained, FLAGS.max_examples, FLAGS.decode_dtype,
                               FLAGS.checkpoint)
  print(json.dumps(result, indent=1))


if __name__ == "__main__":
  from absl import flags
  from tiger_jax import cli
  from tiger_jax import configurables  # noqa: F401  (the gin names, before gin parses)
  flags.DEFINE_string("split", "test", "validation or test.")
  flags.DEFINE_integer("beam_size", None, "Beam size (= the number of items returned); "
                       f"default: the gin macro BEAM_SIZE, else {DEFAULT_BEAM}.")
  flags.DEFINE_integer("batch_size", 64, "Users per decoding batch (64 is fastest on CPU: "
                       "bench/decode_speed.py; accelerators want more).")
  flags.DEFINE_integer("max_examples", None, "Evaluate only the first N users.")
  flags.DEFINE_bool("unconstrained", False, "Free decoding: measures the invalid-ID rate.")
  flags.DEFINE_string("decode_dtype", None, "Activations dtype for decoding, e.g. bfloat16 "
                      "(default: the model's).")
  flags.DEFINE_enum("checkpoint", "latest", list(experiment_lib.CHECKPOINTS),
                    "latest, or best: the checkpoint that scored best on validation.")
  cli.run(main)
