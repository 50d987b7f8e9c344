r"""Why bfloat16 dots accumulate in float32 here: GFLOP/s of the paper model's matmul shapes.

  python bench/dot_speed.py
  python bench/dot_speed.py --rows=20736 --training   # a training step's dots at 256 x 81

float32, bf16 x bf16 -> bf16, and bf16 x bf16 -> f32 (`network.dot_general`) for the
decoder's [rows, 128] x [128, 1024] MLP dot at beam-search size (5,120 rows) and the
others of a decode step. XLA:CPU runs only the last on AMX/AVX512-BF16 units.
--training adds the two backward forms of each dot as a training step runs them:
the input gradient (dy @ w.T) and the weight gradient (x.T @ dy, contracting the rows).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from common import hardware
from tiger_jax import network

SHAPES = ((128, 1024), (1024, 128), (128, 384))  # [in, out]: MLP in/out, q/k/v


def seconds(fn, *args, repeats: int = 20) -> float:
  jax.block_until_ready(fn(*args))
  start = time.perf_counter()
  for _ in range(repeats):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - start) / repeats


def forms(training: bool):
  """name -> (lhs shape, rhs shape, dot) of [rows, in] x [in, out] and its backward forms."""
  out = {"x @ w": (lambda r, i, o: ((r, i), (i, o)), lambda d: lambda x, w: d(x, w))}
  if training:
    out["dy @ w.T"] = (lambda r, i, o: ((r, o), (i, o)), lambda d: lambda g, w: d(g, w.T))
    out["x.T @ dy"] = (lambda r, i, o: ((r, i), (r, o)), lambda d: lambda x, g: d(x.T, g))
  return out


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--rows", type=int, default=5120, help="5,120 = a decode step's 256 users x "
                 "20 beams; 20,736 = a training step's 256 examples x 81 tokens")
  p.add_argument("--training", action="store_true", help="also the two backward forms")
  args = p.parse_args()
  variants = {
      "float32": (jnp.float32, lambda x, w: x @ w),
      "bf16 -> bf16": (jnp.bfloat16, lambda x, w: x @ w),
      "bf16 -> f32 accumulate": (jnp.bfloat16, network.matmul),
  }
  print(f"{hardware()}\n| [rows, in] x [in, out] | form | " + " | ".join(variants) + " |")
  print("|---|---|" + "---|" * len(variants))
  rows = args.rows
  for n_in, n_out in SHAPES:
    for form, (shapes, wrap) in forms(args.training).items():
      cells = []
      for dtype, fn in variants.values():
        a, b = (jnp.ones(s, dtype) for s in shapes(rows, n_in, n_out))
        cells.append(f"{2 * rows * n_in * n_out / seconds(jax.jit(wrap(fn)), a, b) / 1e9:.0f} GFLOP/s")
      print(f"| [{rows}, {n_in}] x [{n_in}, {n_out}] | {form} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
  main()
