r"""Training examples/s at the paper's model size: length buckets vs a plain padded step.

  python bench/train_throughput.py [--category=beauty] [--batch_size=256] [--steps=30] \
      [--dtype=float32|bfloat16]

Both run in the same process on the same batches' source (shared Beauty,
train split); the Semantic-ID method does not change the cost, so random
IDs are used. Compile time is excluded (the first step of each shape).
--dtype sets the activations' dtype (parameters and optimizer stay float32).
"""

from __future__ import annotations

import json
import time

import jax

jax.config.update("jax_default_prng_impl", "rbg")  # as the training CLI does

from common import hardware, paper_experiment, parser
from tiger_jax import input_pipeline, partitioning
from tiger_jax.trainer import Trainer, TrainerConfig


def measure(trainer, state, batches, steps):
  seen, examples, seconds, tokens = set(), 0, 0.0, 0
  done = 0
  while done < steps:
    batch = next(batches)
    shape = batch["inputs"].shape
    arrays = partitioning.global_array(batch, trainer.batch_sharding)
    t = time.perf_counter()
    state, metrics = trainer.train_step(state, arrays)
    jax.block_until_ready(metrics["loss"])
    if shape in seen:  # the first step of a shape compiles
      seconds += time.perf_counter() - t
      examples += shape[0]
      tokens += shape[0] * shape[1]
      done += 1
    seen.add(shape)
  return state, {"examples_per_sec": examples / seconds, "mean_input_len": tokens / examples,
                 "steps": steps}


def main():
  p = parser()
  p.add_argument("--steps", type=int, default=30)
  p.add_argument("--dtype", default="float32", help="activations dtype")
  args = p.parse_args()
  exp = paper_experiment(args)
  model = exp.model.with_dtype(args.dtype)
  results = {}
  for name, buckets in (("plain (pad to 81)", 1), ("length buckets (5)", 5)):
    trainer = Trainer(model, TrainerConfig(num_buckets=buckets), exp.mesh, exp.feature_lengths)
    state = trainer.init_state()
    batches = input_pipeline.train_batches(exp.task, exp.feature_lengths, args.batch_size, seed=0,
                                           num_buckets=buckets)
    _, results[name] = measure(trainer, state, batches, args.steps)
    print(name, json.dumps(results[name]))
  plain, bucketed = results.values()
  speedup = bucketed["examples_per_sec"] / plain["examples_per_sec"]
  print(f"\n{args.category}, paper model (4+4 layers, d_model 128, 6x64 heads, d_ff 1024), "
        f"{args.dtype} activations, batch {args.batch_size}, {hardware()}")
  print("| step | examples/s | mean input tokens |\n|---|---|---|")
  for name, r in results.items():
    print(f"| {name} | {r['examples_per_sec']:.1f} | {r['mean_input_len']:.1f} |")
  print(f"speed-up: {speedup:.2f}x")


if __name__ == "__main__":
  main()
