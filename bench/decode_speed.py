r"""Constrained beam-search speed: Beauty test users per second at the paper's model size.

  python bench/decode_speed.py [--users=2048] [--beam=20] [--batch_size=64] \
      [--dtypes=float32,bfloat16]

One line per activations dtype (the parameters stay float32; bfloat16 is
what t5x decodes in; its dots accumulate in float32, which CPUs with
AMX/AVX512-BF16 run several times faster than float32 dots).

Speed does not depend on the trained weights (the search always runs 4
steps over the same shapes), so a freshly initialised paper-size model is
used; pass --model_dir to time a trained checkpoint instead.
"""

from __future__ import annotations

import time

import jax

jax.config.update("jax_default_prng_impl", "rbg")

from common import hardware, paper_experiment, parser  # noqa: E402
from tiger_jax import input_pipeline, retrieval  # noqa: E402
from tiger_jax.trainer import Trainer, TrainerConfig  # noqa: E402


def main():
  p = parser()
  p.add_argument("--users", type=int, default=2048, help="0 = every test user")
  p.add_argument("--beam", type=int, default=retrieval.DEFAULT_BEAM)
  p.add_argument("--dtypes", default="float32,bfloat16", help="activations dtypes to time")
  p.set_defaults(batch_size=64)  # users per batch; the fastest on CPU (try 32-256)
  args = p.parse_args()
  exp = paper_experiment(args)
  trainer = Trainer(exp.model, TrainerConfig(), exp.mesh, exp.feature_lengths)
  params = trainer.init_state().params
  batches = list(input_pipeline.eval_batches(exp.task, exp.feature_lengths, "test",
                                             args.batch_size, args.users or None))
  print(f"{args.category} test split, paper model, beam {args.beam}, batch {args.batch_size}, "
        f"{len(exp.ids)} items, {hardware()}")
  for dtype in args.dtypes.split(","):
    retriever = retrieval.Retriever(exp.model, exp.layout, exp.ids, args.beam,
                                    batch_sharding=trainer.batch_sharding, dtype=dtype)
    for shape in sorted({b["inputs"].shape for b in batches}):  # compile each bucket's shape
      retriever(params, next(b for b in batches if b["inputs"].shape == shape)["inputs"])
    start = time.perf_counter()
    users = 0
    for b in batches:
      items, _ = retriever(params, b["inputs"])
      users += int(b["mask"].sum())
    seconds = time.perf_counter() - start
    print(f"{dtype}: {users} users in {seconds:.1f}s: {users / seconds:.1f} users/s (all "
          f"{22363 if args.category == 'beauty' else '?'} users: ~{22363 / (users / seconds):.0f}s)",
          flush=True)


if __name__ == "__main__":
  main()
