r"""Semantic-ID assignment for a large catalog in bounded memory.

  python bench/assign_ids_1m.py [--items=1000000] [--dim=384] [--batch_size=65536]

Trains the RQ-VAE briefly on a 20k-item sample, then assigns codes to all
items from a disk-backed array (np.memmap), batch by batch: memory stays at
one batch, whatever the catalog size. Prints items/s and the peak RSS.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import tempfile
import time

import numpy as np

from common import hardware
from tiger_jax.semantic_ids import collision_stats, rqvae


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--items", type=int, default=1_000_000)
  p.add_argument("--dim", type=int, default=384)
  p.add_argument("--batch_size", type=int, default=65536)
  p.add_argument("--train_items", type=int, default=20_000)
  p.add_argument("--epochs", type=int, default=20)
  args = p.parse_args()
  rng = np.random.default_rng(0)
  centers = rng.standard_normal((512, args.dim)).astype(np.float32)
  path = os.path.join(tempfile.mkdtemp(), "vectors.f32")
  vectors = np.memmap(path, np.float32, "w+", shape=(args.items, args.dim))
  for i in range(0, args.items, 100_000):  # written chunk by chunk, never whole in memory
    n = min(100_000, args.items - i)
    x = centers[rng.integers(0, 512, n)] + 0.3 * rng.standard_normal((n, args.dim), np.float32)
    vectors[i:i + n] = x / np.linalg.norm(x, axis=1, keepdims=True)
  vectors.flush()
  config = dataclasses.replace(rqvae.RQVAEConfig(), epochs=args.epochs, log_every=args.epochs)
  t = time.time()
  model, params, _ = rqvae.train(config, np.asarray(vectors[:args.train_items]))
  train_s = time.time() - t
  rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  t = time.time()
  codes, mse = rqvae.codes_in_batches(model, params, vectors, args.batch_size)
  seconds = time.time() - t
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  print(f"{hardware()}")
  print(f"RQ-VAE trained on {args.train_items:,} items x {args.epochs} epochs in {train_s:.0f}s")
  print(f"assigned {args.items:,} items (dim {args.dim}) in {seconds:.1f}s: "
        f"{args.items / seconds:,.0f} items/s, batch {args.batch_size:,}, reconstruction MSE {mse:.5f}")
  print(f"peak RSS {peak:,.0f} MiB (before assignment {rss_before:,.0f} MiB; "
        f"the vectors alone would be {args.items * args.dim * 4 / 2**20:,.0f} MiB)")
  print(f"codes {codes.shape}, {collision_stats(codes)}")
  os.remove(path)


if __name__ == "__main__":
  main()
