r"""Why bfloat16 dots accumulate in float32 here: GFLOP/s of the paper model's matmul shapes.

  python bench/dot_speed.py

float32, bf16 x bf16 -> bf16, and bf16 x bf16 -> f32 (`network.dot_general`) for the
decoder's [rows, 128] x [128, 1024] MLP dot at beam-search size (5,120 rows) and the
others of a decode step. XLA:CPU runs only the last on AMX/AVX512-BF16 units.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from common import hardware
from tiger_jax import network

SHAPES = ((5120, 128, 1024), (5120, 1024, 128), (5120, 128, 384))  # MLP in/out, q/k/v


def seconds(fn, *args, repeats: int = 20) -> float:
  jax.block_until_ready(fn(*args))
  start = time.perf_counter()
  for _ in range(repeats):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - start) / repeats


def main():
  variants = {
      "float32": (jnp.float32, lambda x, w: x @ w),
      "bf16 -> bf16": (jnp.bfloat16, lambda x, w: x @ w),
      "bf16 -> f32 accumulate": (jnp.bfloat16, network.matmul),
  }
  print(f"{hardware()}\n| [rows, in] x [in, out] | " + " | ".join(variants) + " |")
  print("|---|" + "---|" * len(variants))
  for rows, n_in, n_out in SHAPES:
    cells = []
    for dtype, fn in variants.values():
      x = jnp.ones((rows, n_in), dtype)
      w = jnp.ones((n_in, n_out), dtype)
      cells.append(f"{2 * rows * n_in * n_out / seconds(jax.jit(fn), x, w) / 1e9:.0f} GFLOP/s")
    print(f"| [{rows}, {n_in}] x [{n_in}, {n_out}] | " + " | ".join(cells) + " |")


if __name__ == "__main__":
  main()
