r"""Why bfloat16 dots accumulate in float32 here: GFLOP/s of the paper model's matmul shapes.

  python bench/dot_speed.py
  python bench/dot_speed.py --rows=20736 --training   # a training step's dots at 256 x 81
  python bench/dot_speed.py --rows=20736 --training --torch   # beside PyTorch's float32 dots
  XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= python bench/dot_speed.py ...   # Eigen

float32, bf16 x bf16 -> bf16, and bf16 x bf16 -> f32 (`network.precision.dot_general`) for the
decoder's [rows, 128] x [128, 1024] MLP dot at beam-search size (5,120 rows) and the
others of a decode step. XLA:CPU runs only the last on AMX/AVX512-BF16 units.
--training adds the two backward forms of each dot as a training step runs them:
the input gradient (dy @ w.T) and the weight gradient (x.T @ dy, contracting the rows).
--torch adds PyTorch's float32 matmul (oneDNN/MKL, the kernels HF T5 trains with in
bench/vs_pytorch.py) on the same shapes and threads. XLA:CPU's dot library is chosen by
XLA_FLAGS (YNNPACK by default; the empty YNN fusion list falls back to Eigen; add
--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_fusion_type=dot for oneDNN).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from common import hardware
from tiger_jax.network import precision

SHAPES = ((128, 1024), (1024, 128), (128, 384))  # [in, out]: MLP in/out, q/k/v


def seconds(fn, *args, repeats: int = 20) -> float:
  jax.block_until_ready(fn(*args))
  start = time.perf_counter()
  for _ in range(repeats):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - start) / repeats


def torch_seconds(shapes, wrap, repeats: int = 20) -> float:
  """Seconds of PyTorch's float32 dot of the same form (its default threads: the cores)."""
  import torch
  a, b = (torch.ones(s, dtype=torch.float32) for s in shapes)
  fn = wrap(torch.matmul)
  with torch.no_grad():
    fn(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
      fn(a, b)
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
  p.add_argument("--torch", action="store_true", help="also PyTorch's float32 matmul")
  args = p.parse_args()
  variants = {
      "float32": (jnp.float32, lambda x, w: x @ w),
      "bf16 -> bf16": (jnp.bfloat16, lambda x, w: x @ w),
      "bf16 -> f32 accumulate": (jnp.bfloat16, precision.matmul),
  }
  columns = list(variants) + (["PyTorch float32"] if args.torch else [])
  print(hardware())
  print("| [rows, in] x [in, out] | form | " + " | ".join(columns) + " |")
  print("|---|---|" + "---|" * len(columns))
  rows, total_flops, total_seconds = args.rows, 0.0, [0.0] * len(columns)
  for n_in, n_out in SHAPES:
    for form, (shapes, wrap) in forms(args.training).items():
      secs = []
      for dtype, fn in variants.values():
        a, b = (jnp.ones(s, dtype) for s in shapes(rows, n_in, n_out))
        secs.append(seconds(jax.jit(wrap(fn)), a, b))
      if args.torch:
        secs.append(torch_seconds(shapes(rows, n_in, n_out), wrap))
      flops = 2 * rows * n_in * n_out
      total_flops += flops
      total_seconds = [t + s for t, s in zip(total_seconds, secs)]
      print(f"| [{rows}, {n_in}] x [{n_in}, {n_out}] | {form} | "
            + " | ".join(f"{flops / s / 1e9:.0f} GFLOP/s" for s in secs) + " |")
  print("| all of the above, one after another | | "
        + " | ".join(f"{total_flops / s / 1e9:.0f} GFLOP/s" for s in total_seconds) + " |")


if __name__ == "__main__":
  main()
