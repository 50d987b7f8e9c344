r"""Evaluates a trained checkpoint on a split: the evaluate command.

  python -m tiger_jax.evaluate --gin_file=gin_configs/tiger_beauty.gin \
      --gin.MODEL_DIR="'runs/beauty'" --split=test [--checkpoint=best]

writes MODEL_DIR/results/<name>.json and <name>_ranked.npz (`evaluation.evaluate_checkpoint`).
On several hosts (--multi_host, as `train`) each decodes its share of the users and process 0
writes them all.
Imports the experiment and the evaluation library, never the train binary.
"""

from __future__ import annotations

import json

import gin
from absl import flags

from tiger_jax import cli, configurables, distributed
from tiger_jax import experiment as experiment_lib
from tiger_jax.evaluation import check_beam_size, evaluate_checkpoint
from tiger_jax.retrieval import DEFAULT_BEAM

flags.DEFINE_string("split", "test", "validation or test.")
flags.DEFINE_integer("beam_size", None, "Beam size (= the number of items returned); "
                     f"default: the gin macro BEAM_SIZE, else {DEFAULT_BEAM}.")
flags.DEFINE_integer("batch_size", 64, "Users per decoding batch (64 is fastest on CPU: "
                     "bench/decode_speed.py; accelerators want more).")
flags.DEFINE_integer("max_examples", None, "Evaluate only the first N users.")
flags.DEFINE_bool("exclude_history", None, "Return no item of the user's own history; "
                  "default: the gin macro EXCLUDE_HISTORY, else False.")
flags.DEFINE_bool("unconstrained", False, "Free decoding: measures the invalid-ID rate.")
flags.DEFINE_string("decode_dtype", None, "Activations dtype for decoding, e.g. bfloat16 "
                    "(default: the model's).")
flags.DEFINE_enum("checkpoint", "latest", list(experiment_lib.CHECKPOINTS),
                  "latest, or best: the checkpoint that scored best on validation.")
FLAGS = flags.FLAGS


def main() -> None:
  distributed.initialize()  # --multi_host: every host decodes its share of the users
  exp = configurables.experiment()
  model_dir = gin.query_parameter("%MODEL_DIR")
  beam_size = FLAGS.beam_size or configurables.beam_size()
  try:
    check_beam_size(beam_size, len(exp.ids))
  except ValueError as e:
    raise SystemExit(f"error: --beam_size={beam_size}: {e}") from None
  exclude_history = (configurables.exclude_history() if FLAGS.exclude_history is None
                     else FLAGS.exclude_history)
  result = evaluate_checkpoint(exp, model_dir, FLAGS.split, beam_size, FLAGS.batch_size,
                               not FLAGS.unconstrained, FLAGS.max_examples, FLAGS.decode_dtype,
                               FLAGS.checkpoint, exclude_history)
  print(json.dumps(result, indent=1))


if __name__ == "__main__":
  cli.run(main, calls=("experiment",))
