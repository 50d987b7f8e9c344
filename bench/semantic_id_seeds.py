r"""Semantic-ID quality and time over seeds, on whatever machine runs it: how far the IDs move
with the seed, against how far they move with the machine.

  python bench/semantic_id_seeds.py --vectors=runs/beauty/data/item_vectors.npy --seeds=0,1,2,3,4
  python bench/semantic_id_seeds.py --vectors=... --method=rq_kmeans --out=runs/seeds.json

Runs `semantic_ids.compute_codes` with the default SemanticIdConfig (only the seed and, if
given, --method and --epochs changed) on a data stage's item vectors, and prints per seed: the
codewords each level uses, the share of items in collision groups, the largest group, and the
seconds it took; then the mean and the range over the seeds. Needs only jax, flax, optax and
numpy (no TensorFlow), so that it runs on an accelerator machine as it is.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--vectors", required=True, help="a data stage's item_vectors.npy")
  p.add_argument("--seeds", default="0,1,2,3,4")
  p.add_argument("--method", default=None, help="default: SemanticIdConfig's")
  p.add_argument("--epochs", type=int, default=None, help="RQ-VAE epochs; default: RQVAEConfig's")
  p.add_argument("--out", default="", help="also write the rows here as JSON")
  args = p.parse_args()
  import jax
  from tiger_jax.partitioning import hardware
  from tiger_jax.semantic_ids import SemanticIdConfig, collision_stats, compute_codes
  try:
    vectors = np.load(args.vectors).astype(np.float32)
  except OSError as e:
    raise SystemExit(f"error: --vectors={args.vectors}: {e}") from None
  base = SemanticIdConfig()
  if args.method:
    base = dataclasses.replace(base, method=args.method)
  if args.epochs:
    base = dataclasses.replace(base, rqvae=dataclasses.replace(base.rqvae, epochs=args.epochs))
  print(f"{len(vectors):,} vectors of dim {vectors.shape[1]}; {base.method}"
        f"{f', {base.rqvae.epochs} epochs' if base.method == 'rqvae' else ''}; {hardware()}; "
        f"jax {jax.__version__}", flush=True)
  print("| seed | codewords used per level | items in collision groups | largest group | seconds |")
  print("|---|---|---|---|---|")
  rows = []
  for seed in [int(s) for s in args.seeds.split(",")]:
    start = time.time()
    codes, _ = compute_codes(vectors, dataclasses.replace(base, seed=seed))
    seconds = time.time() - start
    used = [int(len(np.unique(codes[:, level]))) for level in range(codes.shape[1])]
    row = {"seed": seed, "used": used, **collision_stats(codes), "seconds": round(seconds, 1)}
    rows.append(row)
    print(f"| {seed} | {' / '.join(map(str, used))} | {row['items_in_collision']:.1%} | "
          f"{row['largest_group']} | {seconds:.0f} |", flush=True)
  for key, fmt in (("items_in_collision", "{:.1%}"), ("largest_group", "{}"), ("seconds", "{:.0f}")):
    values = [r[key] for r in rows]
    print(f"{key}: mean {fmt.format(np.mean(values))}, range {fmt.format(min(values))} - "
          f"{fmt.format(max(values))}")
  level1 = [r["used"][0] for r in rows]
  print(f"level-1 codewords used: mean {np.mean(level1):.0f}, range {min(level1)} - {max(level1)}")
  if args.out:
    with open(args.out, "w") as f:
      json.dump({"rows": rows, "hardware": hardware(), "method": base.method,
                 "config": dataclasses.asdict(base)}, f, indent=1)


if __name__ == "__main__":
  main()
