r"""Constrained beam-search speed: Beauty test users per second at the paper's model size.

  python bench/decode_speed.py [--users=2048] [--beam=20] [--batch_size=256]

Speed does not depend on the trained weights (the search always runs 4
steps over the same shapes), so a freshly initialised paper-size model is
used; pass --model_dir to time a trained checkpoint instead.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import jax

jax.config.update("jax_default_prng_impl", "rbg")

from common import hardware, prepared_run  # noqa: E402
from tiger_jax import evaluate as evaluate_lib, input_pipeline, network  # noqa: E402
from tiger_jax import train as train_lib  # noqa: E402
from tiger_jax.trainer import Trainer, TrainerConfig  # noqa: E402


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--category", default="beauty")
  p.add_argument("--users", type=int, default=2048, help="0 = every test user")
  p.add_argument("--beam", type=int, default=20)
  p.add_argument("--batch_size", type=int, default=256)
  p.add_argument("--run_dir", default=os.path.join(tempfile.gettempdir(), "tiger_bench"))
  args = p.parse_args()
  data_dir, sid_dir = prepared_run(args.category, os.path.join(args.run_dir, args.category))
  exp = train_lib.experiment(f"tiger_{args.category}", {"inputs": 81, "targets": 5}, data_dir,
                             sid_dir, network.T5Config())
  trainer = Trainer(exp.model, TrainerConfig(), exp.mesh, exp.feature_lengths)
  params = trainer.init_state().params
  retriever = evaluate_lib.Retriever(exp.model, exp.layout, exp.ids, args.beam,
                                     batch_sharding=trainer.batch_sharding)
  batches = list(input_pipeline.eval_batches(exp.task, exp.feature_lengths, "test",
                                             args.batch_size, args.users or None))
  retriever(params, batches[0]["inputs"])  # compile
  start = time.perf_counter()
  users = 0
  for b in batches:
    items, _ = retriever(params, b["inputs"])
    users += int(b["mask"].sum())
  seconds = time.perf_counter() - start
  print(f"{args.category} test split, paper model, beam {args.beam}, batch {args.batch_size}, "
        f"{len(exp.ids)} items, {hardware()}")
  print(f"{users} users in {seconds:.1f}s: {users / seconds:.1f} users/s "
        f"(all {22363 if args.category == 'beauty' else '?'} users: ~{22363 / (users / seconds):.0f}s)")


if __name__ == "__main__":
  main()
