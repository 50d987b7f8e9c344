r"""Does a code change keep what a recipe computes? Trains a recipe for a few steps from saved
initial parameters and writes each step's loss and the ranked lists of the first validation
users; a second run (after the change) compares against that record, exactly.

  python tools/equivalence.py --gin_file=gin_configs/recipes/beauty_paper.gin \
      --gin.DATA_DIR="'runs/ref/data'" --gin.SEMANTIC_ID_DIR="'runs/ref/semantic_ids'" \
      --gin.MODEL_DIR="'runs/ref/paper'" --record=runs/ref/paper.json [--steps=50 --users=512]

The first run saves the initial parameters beside the record (`<record>.init.npz`, by
parameter path) and the record; later runs load those parameters, train the same steps on
the same batches and print `identical` or the first difference (exit 1).
"""

from __future__ import annotations

import os
import sys

import jax
import numpy as np
from absl import flags
from flax import traverse_util

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tiger_jax import cli, configurables, input_pipeline, io_utils, partitioning, retrieval  # noqa: E402
from tiger_jax.trainer import Trainer  # noqa: E402

flags.DEFINE_string("record", None, "The record's JSON path (written if absent, else compared).",
                    required=True)
flags.DEFINE_integer("steps", 50, "Training steps.")
flags.DEFINE_integer("users", 512, "Validation users whose ranked lists are recorded.")
FLAGS = flags.FLAGS


def _flat(params) -> dict[str, np.ndarray]:
  return {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(params).items()}


def _load_params(path: str, like):
  saved = io_utils.load_arrays(path)
  flat = _flat(like)
  if set(saved) != set(flat):
    raise SystemExit(f"error: {path}: parameter paths differ from this model's: only saved "
                     f"{sorted(set(saved) - set(flat))[:5]}, only here {sorted(set(flat) - set(saved))[:5]}")
  unflat = traverse_util.unflatten_dict({tuple(k.split("/")): saved[k] for k in flat})
  return jax.tree.map(lambda x, y: jax.device_put(np.asarray(x, y.dtype), y.sharding), unflat, like)


def run(exp, trainer_config, batch_size: int, init_path: str) -> dict:
  trainer = Trainer(exp.model, trainer_config, exp.mesh, exp.feature_lengths)
  state = trainer.init_state()
  if io_utils.exists(init_path):
    params = _load_params(init_path, state.params)
    fresh = jax.tree.leaves(state.params)
    same = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(params), fresh))
    print(f"this code's own initial parameters (seed {trainer_config.seed}) are "
          f"{'identical to' if same else 'different from'} the saved ones")
    state = state.replace(params=params, opt_state=trainer.tx.init(params))
    if hasattr(state, "ema_params"):
      state = state.replace(ema_params=jax.tree.map(lambda x: x.copy(), params))
  else:
    io_utils.write_npz(init_path, **_flat(state.params))
  batches = input_pipeline.train_batches(
      exp.task, exp.feature_lengths, batch_size, seed=trainer_config.seed,
      num_buckets=trainer_config.num_buckets, id_length=exp.layout.id_length,
      histories=trainer_config.train_histories)
  losses = []
  for _ in range(FLAGS.steps):
    batch = partitioning.global_array(next(batches), trainer.batch_sharding)
    state, metrics = trainer.train_step(state, batch)
    losses.append(float(metrics["loss"]))
  retriever = retrieval.Retriever(exp.model, exp.layout, exp.ids, configurables.beam_size())
  with trainer.context():
    got = retrieval.retrieve(retriever, state.eval_params, input_pipeline.eval_batches(
        exp.task, exp.feature_lengths, "validation", 64, FLAGS.users))
  return {"losses": losses, "ranked": got["ranked"].tolist(), "users": got["users"].tolist()}


def main() -> None:
  import gin
  exp = configurables.experiment()
  trainer_config = configurables.TrainerConfig()
  out = run(exp, trainer_config, gin.query_parameter("%BATCH_SIZE"), FLAGS.record + ".init.npz")
  if not io_utils.exists(FLAGS.record):
    io_utils.write_json(FLAGS.record, out)
    print(f"wrote {FLAGS.record}: {len(out['losses'])} losses (last {out['losses'][-1]:.6f}), "
          f"{len(out['ranked'])} users' lists")
    return
  ref = io_utils.read_json(FLAGS.record)
  for key in ("losses", "users", "ranked"):
    if ref[key] != out[key]:
      i = next(i for i, (a, b) in enumerate(zip(ref[key], out[key])) if a != b) if len(
          ref[key]) == len(out[key]) else "length"
      print(f"differs: {key} at {i}: {ref[key][i] if i != 'length' else len(ref[key])} "
            f"recorded, {out[key][i] if i != 'length' else len(out[key])} now")
      sys.exit(1)
  print(f"identical: {len(out['losses'])} losses and {len(out['ranked'])} users' ranked lists "
        f"as recorded in {FLAGS.record}")


if __name__ == "__main__":
  cli.run(main, calls=("experiment", "TrainerConfig"))
