r"""Where a training step's time goes, by ablation at one batch shape, with achieved GFLOP/s.

  python bench/step_profile.py [--batch_size=256] [--input_len=32] [--repeats=10]
  python bench/step_profile.py --input_len=81 --only="float32, dropout 0.1" --trace_dir=/tmp/t

Times the paper-size model's jitted training step on random tokens of one shape
(a typical length bucket: Beauty's mean input is 30.6 tokens; 33 = user + 8 items), in variants that
each remove one cost: float32 vs bfloat16 activations, dropout on and off, and
the forward pass alone; and, in the same run, the step with the dropout masks
drawn as before (`jax.random.bits`), so the change is measured before and after,
and the item-level-input model variant (`ItemInputsConfig`: 1 + 8 encoder
positions for the same 33 tokens). FLOPs are XLA's own count of the compiled step
(`cost_analysis`) beside an analytic count of the matmuls
(`analytic_flops`), so GFLOP/s can be set against `bench/dot_speed.py`.
--trace_dir also traces two steps of each variant (`jax.profiler`, a Perfetto trace) and
prints where the executor's threads spent them, by kind of XLA operation.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_default_prng_impl", "rbg")  # as the training CLI does

from common import hardware
from tiger_jax import models, network, partitioning
from tiger_jax.network import hashing
from tiger_jax.trainer import Trainer, TrainerConfig

TARGET_LEN = 5


def random_bits_keep(key, shape, rate):
  """The dropout mask before the counter hash: 8 random bits an element from
  `jax.random.bits` (kept here to time the change in the same run)."""
  threshold = int(round(rate * 256))
  return jax.random.bits(key, shape, jnp.uint8) >= threshold


def analytic_flops(c: network.T5Config, batch: int, n_in: int, n_out: int, vocab: int) -> float:
  """Matmul FLOPs of one training step (forward x 3 for forward + backward)."""
  d, hd, f = c.emb_dim, c.num_heads * c.head_dim, c.mlp_dim
  proj, mlp = 4 * d * hd, 2 * d * f
  enc = n_in * c.num_encoder_layers * (proj + mlp) + c.num_encoder_layers * 2 * n_in * n_in * hd
  dec = c.num_decoder_layers * (n_out * (proj + 2 * d * hd + mlp)  # self, cross q/o, mlp
                                + n_in * 2 * d * hd                 # cross k/v
                                + 2 * n_out * n_out * hd + 2 * n_out * n_in * hd)
  logits = n_out * d * vocab
  return 3 * 2 * batch * (enc + dec + logits)


def batch_of(rng, vocab: int, batch: int, n_in: int) -> dict:
  inputs = rng.integers(2, vocab, (batch, n_in), dtype=np.int32)
  targets = rng.integers(2, vocab, (batch, TARGET_LEN), dtype=np.int32)
  return {"inputs": jnp.asarray(inputs), "targets": jnp.asarray(targets),
          "weights": jnp.ones((batch, TARGET_LEN), jnp.float32)}


def time_step(trainer: Trainer, batch: dict, repeats: int, forward_only: bool) -> tuple[float, float]:
  """Seconds per step (compile excluded) and XLA's FLOP count of the compiled step."""
  state = trainer.init_state()
  if forward_only:
    fn = jax.jit(lambda p, b: trainer.model.loss_fn(p, b, jax.random.PRNGKey(1))[0])
    run = lambda: fn(state.params, batch)
    with trainer.context():
      flops = fn.lower(state.params, batch).compile().cost_analysis().get("flops", 0.0)
  else:
    def run():
      nonlocal state
      state, m = trainer.train_step(state, batch)
      return m["loss"]
    flops = 0.0
  with trainer.context():
    jax.block_until_ready(run())
    jax.block_until_ready(run())
    start = time.perf_counter()
    for _ in range(repeats):
      out = run()
    jax.block_until_ready(out)
    if not forward_only:
      flops = trainer._train_step.lower(state, batch).compile().cost_analysis().get("flops", 0.0)
  return (time.perf_counter() - start) / repeats, flops


def trace_by_kind(trainer: Trainer, batch: dict, trace_dir: str, steps: int = 2) -> list:
  """[(kind, thread-ms per step, ops)] of `steps` traced training steps, most time first:
  a kind is an XLA operation's name without its .N suffix (dots run as ynn_fusion /
  dot_general, layout changes as *copy*/transpose fusions)."""
  state = trainer.init_state()
  with trainer.context():
    for _ in range(2):  # compile and warm
      state, m = trainer.train_step(state, batch)
    jax.block_until_ready(m["loss"])
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
      for _ in range(steps):
        state, m = trainer.train_step(state, batch)
      jax.block_until_ready(m["loss"])
  path = max(glob.glob(os.path.join(trace_dir, "**", "*perfetto_trace.json.gz"), recursive=True),
             key=os.path.getmtime)
  events = json.load(gzip.open(path))
  events = events["traceEvents"] if isinstance(events, dict) else events
  micros, count = collections.Counter(), collections.Counter()
  for e in events:
    name = e.get("name", "")
    if e.get("ph") == "X" and "dur" in e and not name.startswith("$") and "Thunk" not in name \
        and "Await" not in name and "PjitFunction" not in name:
      kind = re.sub(r"\.\d+$", "", name)
      micros[kind] += e["dur"]
      count[kind] += 1
  return [(k, v / 1e3 / steps, count[k] // steps) for k, v in micros.most_common()]


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--batch_size", type=int, default=256)
  p.add_argument("--input_len", type=int, default=33,
                 help="user token + whole 4-code items (item-level inputs need 1 + 4k)")
  p.add_argument("--repeats", type=int, default=10)
  p.add_argument("--only", default="", help="run only the variants whose name contains this")
  p.add_argument("--vocab", type=int, default=network.T5Config().vocab_size)
  p.add_argument("--trace_dir", default="", help="also trace each variant's steps here")
  args = p.parse_args()
  mesh = partitioning.make_mesh()
  lengths = {"inputs": args.input_len, "targets": TARGET_LEN}
  batch = batch_of(np.random.default_rng(0), args.vocab, args.batch_size, args.input_len)
  variants = {  # name: (dtype, dropout, forward only, item-level inputs)
      "bf16, dropout 0.1, masks from jax.random.bits (before)": ("bfloat16", 0.1, False, False),
      "float32, dropout 0.1, masks from jax.random.bits (before)": ("float32", 0.1, False, False),
      "bf16, dropout 0.1 (the recipe)": ("bfloat16", 0.1, False, False),
      "bf16, no dropout": ("bfloat16", 0.0, False, False),
      "float32, dropout 0.1": ("float32", 0.1, False, False),
      "float32, no dropout": ("float32", 0.0, False, False),
      "bf16, forward only": ("bfloat16", 0.1, True, False),
      "bf16, dropout 0.1, item-level inputs (a model variant)": ("bfloat16", 0.1, False, True),
      "float32, dropout 0.1, item-level inputs (a model variant)": ("float32", 0.1, False, True),
  }
  config = network.T5Config(vocab_size=args.vocab)
  print(f"paper model, batch {args.batch_size} x {args.input_len} input tokens, {hardware()}")
  print("| variant | ms/step | examples/s | XLA GFLOP | XLA GFLOP/s |\n|---|---|---|---|---|")
  traces = {}
  for name, (dtype, rate, fwd, item_inputs) in variants.items():
    if args.only not in name:
      continue
    c = network.T5Config(**{**config.__dict__, "dtype": dtype, "dropout_rate": rate,
                            "item_inputs": network.ItemInputsConfig() if item_inputs else None})
    model = models.EncoderDecoderModel(network.Transformer(c))
    trainer = Trainer(model, TrainerConfig(), mesh, lengths)
    hashed = hashing.dropout_keep
    hashing.dropout_keep = random_bits_keep if "(before)" in name else hashed
    try:
      secs, flops = time_step(trainer, batch, args.repeats, fwd)
      print(f"| {name} | {secs * 1e3:.0f} | {args.batch_size / secs:.1f} | {flops / 1e9:.1f} | "
            f"{flops / secs / 1e9:.0f} |", flush=True)
      if args.trace_dir and not fwd:
        traces[name] = trace_by_kind(trainer, batch,
                                     os.path.join(args.trace_dir, re.sub(r"\W+", "_", name)))
    finally:
      hashing.dropout_keep = hashed
  ana = analytic_flops(config, args.batch_size, args.input_len, TARGET_LEN, args.vocab)
  for name, kinds in traces.items():
    total = sum(ms for _, ms, _ in kinds)
    print(f"\n{name}: {total:.0f} thread-ms a step, by kind of XLA operation (top 8)")
    print("| kind | ops a step | thread-ms a step | share |\n|---|---|---|---|")
    for kind, ms, n in kinds[:8]:
      print(f"| {kind} | {n} | {ms:.0f} | {ms / total:.0%} |")
  print(f"analytic matmul FLOPs of a training step: {ana / 1e9:.1f} GFLOP")


if __name__ == "__main__":
  main()
