r"""Latency of `Recommender`: load, first call, a second process, single-history percentiles
and batch throughput, beam 20 by default. Run it alone on the machine.

  python bench/recommend_latency.py --model_dir=RUN [--requests=1000] [--batch=64] \
      [--record=bench/results/recommend_latency_beauty.json]

RUN is a trained run (its config.gin, checkpoint, data, Semantic IDs). Latency depends on
the model's shapes and the catalog, not on how long it trained: a paper-model run on
Beauty trained for a few steps measures what a long one would, e.g.

  python -m tiger_jax.main --gin_file=gin_configs/recipes/beauty_paper.gin \
      --gin.MODEL_DIR="'runs/latency_beauty'" --gin.TRAIN_STEPS=20 \
      --gin.TrainerConfig.eval_every=0 --gin.pipeline.run_sasrec=False

The run's jit cache (RUN/jit_cache) is emptied first: process 1 starts cold (it compiles
and fills the cache), process 2 starts warm (what a restarted server sees). Both are timed
from their spawn, Python's imports included. Then, in this process: --requests single
histories (test users' histories with their user tokens, in turn) timed one by one, and
batches of --batch histories.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(model_dir: str) -> None:
  """Process 1 / 2: import, load, first call; prints the times as JSON."""
  t0 = time.time()
  from tiger_jax.recommender import Recommender
  t1 = time.time()
  rec = Recommender.load(model_dir)
  t2 = time.time()
  user = rec.dataset.user_ids[0]
  rec.recommend([rec.user_history(user)], k=10, users=[user])
  t3 = time.time()
  print(json.dumps({"import_s": round(t1 - t0, 2), "load_s": round(t2 - t1, 2),
                    "first_call_s": round(t3 - t2, 2)}))


def spawn(model_dir: str) -> dict:
  start = time.time()
  proc = subprocess.run([sys.executable, os.path.abspath(__file__), f"--model_dir={model_dir}",
                         "--child"], capture_output=True, text=True, cwd=REPO)
  if proc.returncode:
    raise SystemExit(f"error: the child process failed:\n{proc.stderr[-2000:]}")
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  return {**out, "ready_s": round(time.time() - start, 2)}


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--model_dir", required=True)
  p.add_argument("--requests", type=int, default=1000)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--record", default=None)
  p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.child:
    return child(args.model_dir)
  import numpy as np
  shutil.rmtree(os.path.join(args.model_dir, "jit_cache"), ignore_errors=True)
  first, second = spawn(args.model_dir), spawn(args.model_dir)
  print(f"process 1 (cold jit cache): {first}\nprocess 2 (warm jit cache): {second}", flush=True)
  from tiger_jax.recommender import Recommender
  from tiger_jax.partitioning import hardware
  rec = Recommender.load(args.model_dir)
  users = rec.dataset.user_ids
  histories = [rec.user_history(u) for u in users[:max(args.requests, args.batch)]]
  for h, u in zip(histories[:5], users):  # every bucket width compiled before timing
    rec.recommend([h], k=10, users=[u])
  for width_users in range(0, len(histories), 997):
    rec.recommend([histories[width_users]], k=10, users=[users[width_users]])
  seconds = []
  for i in range(args.requests):
    j = i % len(histories)
    t = time.perf_counter()
    rec.recommend([histories[j]], k=10, users=[users[j]])
    seconds.append(time.perf_counter() - t)
  ms = np.array(seconds) * 1000
  rec.recommend(histories[:args.batch], k=10, users=users[:args.batch])  # compile
  t, batches = time.perf_counter(), 0
  while time.perf_counter() - t < 20 or batches < 3:
    start = (batches * args.batch) % max(1, len(histories) - args.batch)
    rec.recommend(histories[start:start + args.batch], k=10,
                  users=users[start:start + args.batch])
    batches += 1
  throughput = batches * args.batch / (time.perf_counter() - t)
  result = {
      "model_dir": os.path.basename(os.path.normpath(args.model_dir)), "items": len(rec.index),
      "beam": rec.beam_size, "checkpoint_step": rec.step, "hardware": hardware(),
      "process_1_cold_cache": first, "process_2_warm_cache": second,
      "single_history_ms": {"p50": round(float(np.percentile(ms, 50)), 1),
                            "p95": round(float(np.percentile(ms, 95)), 1),
                            "p99": round(float(np.percentile(ms, 99)), 1),
                            "requests": args.requests},
      "batch": args.batch, "histories_per_second_at_batch": round(throughput, 1),
      "command": " ".join(["python", "bench/recommend_latency.py", *sys.argv[1:]])}
  print(json.dumps(result, indent=1))
  if args.record:
    from tiger_jax import io_utils
    io_utils.write_json(args.record, result)


if __name__ == "__main__":
  main()
