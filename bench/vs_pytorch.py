r"""Ours against what a PyTorch user would pick: HuggingFace T5ForConditionalGeneration.

  python bench/vs_pytorch.py [--rounds=3] [--steps=5] [--users=256] [--no_decode] [--only=...]
  XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= python bench/vs_pytorch.py --only="like"

Same configuration (d_model 128, 4+4 layers, 6 heads x 64, d_ff 1024, ReLU MLP,
32 relative-position buckets, dropout 0.1, untied output layer), same vocabulary
(Beauty's token layout with random Semantic IDs: cost does not depend on them),
Adafactor at lr 0.01 on both sides, batch 256. The two alternate in one process,
round after round, on identical batch shapes:

- training, like for like: plain padding to 81 input tokens, float32 activations;
- training, best config against best config: ours with length buckets and bfloat16
  activations (float32 accumulation) against HF with the same length buckets in float32,
  and the same with our item-level encoder inputs (`ItemInputsConfig`: a model
  variant, one encoder position per history item) against the same HF run; and both of
  ours against HF in bfloat16 autocast (`torch.autocast`), what a PyTorch user with AMX
  or AVX512-BF16 units would try;
- constrained beam search (beam 20, 20 items a user): our `retrieval.Retriever` against
  `generate(num_beams=20, prefix_allowed_tokens_fn=...)` over the same trie of valid IDs.

Compile time is excluded (the first step of each shape). Examples/s and users/s
are medians over rounds; the ratios are ours / theirs. XLA_FLAGS, when set (the first
command's picks XLA:CPU's Eigen dots instead of YNNPACK), is printed with the hardware.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time

import jax
import numpy as np

jax.config.update("jax_default_prng_impl", "rbg")  # as the training CLI does

from common import hardware, paper_experiment, parser  # noqa: E402
from tiger_jax import input_pipeline, network, partitioning, retrieval  # noqa: E402
from tiger_jax.trainer import Trainer, TrainerConfig  # noqa: E402


def hf_model(vocab_size: int, c: network.T5Config):
  import torch
  import transformers
  config = transformers.T5Config(
      vocab_size=vocab_size, d_model=c.emb_dim, d_kv=c.head_dim, d_ff=c.mlp_dim,
      num_layers=c.num_encoder_layers, num_decoder_layers=c.num_decoder_layers,
      num_heads=c.num_heads, relative_attention_num_buckets=c.relative_buckets,
      relative_attention_max_distance=c.relative_max_distance, dropout_rate=c.dropout_rate,
      feed_forward_proj="relu", tie_word_embeddings=False, pad_token_id=0, eos_token_id=1,
      decoder_start_token_id=0)
  torch.manual_seed(0)
  model = transformers.T5ForConditionalGeneration(config)
  opt = transformers.optimization.Adafactor(model.parameters(), lr=0.01, relative_step=False,
                                            scale_parameter=False, warmup_init=False)
  return model, opt


def hf_step(model, opt, batch, autocast: bool = False) -> float:
  """One HF training step; autocast: the forward in bfloat16 autocast (weights float32)."""
  import torch
  model.train()
  inputs = torch.from_numpy(np.asarray(batch["inputs"], np.int64))
  labels = torch.from_numpy(np.asarray(batch["targets"], np.int64))
  with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
    loss = model(input_ids=inputs, attention_mask=(inputs > 0).long(),
                 labels=labels.masked_fill(labels == 0, -100)).loss
  opt.zero_grad(set_to_none=True)
  loss.backward()
  torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
  opt.step()
  return float(loss)


def time_steps(step, batches, steps: int) -> float:
  """Examples/s over `steps` batches (each shape already compiled/warmed)."""
  examples, start = 0, time.perf_counter()
  for batch in batches[:steps]:
    step(batch)
    examples += batch["inputs"].shape[0]
  return examples / (time.perf_counter() - start)


def allowed_tokens_fn(item_tokens: np.ndarray, eos: int):
  """prefix_allowed_tokens_fn over the trie of valid token sequences (decoder start dropped)."""
  children: dict[tuple, list[int]] = {}
  for row in item_tokens.tolist():
    for i in range(len(row)):
      children.setdefault(tuple(row[:i]), set()).add(row[i])
    children.setdefault(tuple(row), set()).add(eos)
  children = {k: sorted(v) for k, v in children.items()}

  def fn(batch_id, sent):
    return children.get(tuple(sent.tolist()[1:]), [0])
  return fn


def main():
  p = parser()
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--steps", type=int, default=5, help="timed training steps per round and side")
  p.add_argument("--users", type=int, default=256, help="users decoded per round and side")
  p.add_argument("--no_decode", action="store_true")
  p.add_argument("--only", default="", help="run only the training comparisons whose name "
                 "contains this (decoding runs unless --no_decode)")
  args = p.parse_args()
  import torch
  exp = paper_experiment(args)
  c = exp.model.config
  item_tokens = exp.layout.item_tokens(exp.ids)
  print(f"{hardware()}; torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"jax {jax.__version__}; vocab {c.vocab_size}, batch {args.batch_size}", flush=True)
  out = {}
  for name, buckets, dtype, item_inputs, autocast in (
      ("like for like: plain padding, float32", 1, "float32", False, False),
      ("best config: buckets; ours bfloat16, HF float32", 5, "bfloat16", False, False),
      ("best config: buckets; ours bfloat16, HF bfloat16 autocast", 5, "bfloat16", False, True),
      ("best config: buckets; ours bfloat16 + item-level inputs, HF float32", 5, "bfloat16", True,
       False),
      ("best config: buckets; ours bfloat16 + item-level inputs, HF bfloat16 autocast", 5,
       "bfloat16", True, True)):
    if args.only not in name:
      continue
    model_ = dataclasses.replace(exp.model, module=network.Transformer(
        dataclasses.replace(c, dtype=dtype,
                            item_inputs=network.ItemInputsConfig() if item_inputs else None)))
    trainer = Trainer(model_, TrainerConfig(num_buckets=buckets), exp.mesh, exp.feature_lengths)
    state = trainer.init_state()
    stream = input_pipeline.train_batches(exp.task, exp.feature_lengths, args.batch_size, seed=0,
                                          num_buckets=buckets)
    batches = [next(stream) for _ in range(args.steps * args.rounds + 8)]
    model, opt = hf_model(c.vocab_size, c)

    def ours(batch):
      nonlocal state
      state, m = trainer.train_step(state, partitioning.global_array(batch, trainer.batch_sharding))
      jax.block_until_ready(m["loss"])

    theirs = lambda batch: hf_step(model, opt, batch, autocast)
    for shape in sorted({b["inputs"].shape for b in batches}):  # compile / warm every shape
      b = next(b for b in batches if b["inputs"].shape == shape)
      ours(b)
      theirs(b)
    rates = {"ours": [], "HF T5": []}
    for r in range(args.rounds):
      chunk = batches[r * args.steps:(r + 1) * args.steps]
      rates["ours"].append(time_steps(ours, chunk, args.steps))
      rates["HF T5"].append(time_steps(theirs, chunk, args.steps))
      print(f"  {name}, round {r}: ours {rates['ours'][-1]:.1f}, HF {rates['HF T5'][-1]:.1f} "
            "examples/s", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    out[name] = {"examples_per_sec": med, "ratio": med["ours"] / med["HF T5"]}
  if not args.no_decode:
    trainer = Trainer(exp.model, TrainerConfig(), exp.mesh, exp.feature_lengths)
    params = trainer.init_state().params
    retriever = retrieval.Retriever(exp.model, exp.layout, exp.ids, 20)
    batches = list(input_pipeline.eval_batches(exp.task, exp.feature_lengths, "test", 64,
                                               args.users))
    model, _ = hf_model(c.vocab_size, c)
    model.eval()
    allowed = allowed_tokens_fn(item_tokens, eos=1)

    def ours_decode():
      for b in batches:
        retriever(params, b["inputs"])

    def hf_decode():
      with torch.no_grad():
        for b in batches:
          inputs = torch.from_numpy(np.asarray(b["inputs"], np.int64))
          model.generate(input_ids=inputs, attention_mask=(inputs > 0).long(), num_beams=20,
                         num_return_sequences=20, max_new_tokens=item_tokens.shape[1] + 1,
                         prefix_allowed_tokens_fn=allowed, do_sample=False, early_stopping=True)

    users = sum(int(b["mask"].sum()) for b in batches)
    for b in {b["inputs"].shape: b for b in batches}.values():  # compile each shape
      retriever(params, b["inputs"])
    rates = {"ours": [], "HF T5": []}
    for r in range(args.rounds):
      for k, fn in (("ours", ours_decode), ("HF T5", hf_decode)):
        start = time.perf_counter()
        fn()
        rates[k].append(users / (time.perf_counter() - start))
      print(f"  decoding, round {r}: ours {rates['ours'][-1]:.1f}, HF {rates['HF T5'][-1]:.1f} "
            "users/s", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    out["constrained beam search, beam 20"] = {"users_per_sec": med,
                                               "ratio": med["ours"] / med["HF T5"]}
  print("\n| comparison | ours | HF T5 | ours / HF |\n|---|---|---|---|")
  for name, r in out.items():
    unit, v = ("examples/s", r["examples_per_sec"]) if "examples_per_sec" in r else \
        ("users/s", r["users_per_sec"])
    print(f"| {name} ({unit}) | {v['ours']:.1f} | {v['HF T5']:.1f} | {r['ratio']:.2f}x |")
  print(f"\n{hardware()}; medians of {args.rounds} alternating rounds "
        f"({args.steps} steps / {args.users} users a round)")
  print(json.dumps(out))


if __name__ == "__main__":
  main()
