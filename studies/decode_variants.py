r"""Does a faster search change what is retrieved? Recall/NDCG of one trained model under
each decoding variant, on the same users.

  python -m studies.decode_variants --gin_file=MODEL_DIR/config.gin [--split=validation] \
      [--max_examples=2000]

Variants: block softmax (default) vs the full-vocabulary softmax, float32 vs bfloat16
activations, and the search that never ends in an item of the user's own history
(`Retriever(exclude_history=True)`); also the share of users whose top-10 list is identical
to the first variant's, and how many of the first variant's top-10 items a user has in
their history already.
"""

from __future__ import annotations

import json
import time

import gin
import jax
import numpy as np
from absl import flags

from tiger_jax import (cli, configurables, decoding, experiment as experiment_lib,
                       input_pipeline, retrieval)
from tiger_jax.metrics import METRIC_NAMES

flags.DEFINE_string("split", "validation", "validation or test.")
flags.DEFINE_integer("max_examples", 2000, "Users to decode (0 = all).")
FLAGS = flags.FLAGS
VARIANTS = (("block softmax, float32", True, "float32", False),
            ("full softmax, float32", False, "float32", False),
            ("block softmax, bfloat16", True, "bfloat16", False),
            ("block softmax, float32, history items excluded", True, "float32", True))


def histories(batches, layout, ids) -> dict[int, set[int]]:
  """user -> the items of their history, read back from the batches' input tokens."""
  out = {}
  for b in batches:
    keep = b["mask"] > 0
    codes = np.asarray(retrieval.history_codes(b["inputs"], layout))[keep]
    items = decoding.lookup_items(codes, ids)
    for user, row in zip(b["user"][keep], items.tolist()):
      out[int(user)] = {i for i in row if i >= 0}  # -1: padding
  return out


def main() -> None:
  exp = configurables.experiment()
  model_dir = gin.query_parameter("%MODEL_DIR")
  _, state = experiment_lib.restore(exp, model_dir)
  batches = list(input_pipeline.eval_batches(exp.task, exp.feature_lengths, FLAGS.split, 64,
                                             FLAGS.max_examples or None))
  first, history = None, histories(batches, exp.layout, exp.ids)
  targets = {int(u): int(t) for b in batches
             for u, t in zip(b["user"][b["mask"] > 0], b["target_item"][b["mask"] > 0])}
  print(f"{model_dir} step {int(state.step)}, {FLAGS.split}, {FLAGS.max_examples or 'all'} users, "
        f"{jax.device_count()} x {jax.devices()[0].device_kind}; targets in their own history: "
        f"{np.mean([t in history[u] for u, t in targets.items()]):.4f}", flush=True)
  for name, block, dtype, exclude in VARIANTS:
    retriever = retrieval.Retriever(exp.model, exp.layout, exp.ids, configurables.beam_size(),
                                    block_softmax=block, dtype=dtype, exclude_history=exclude)
    ranked = {}
    start = time.time()
    result = retrieval.evaluate(retriever, state.eval_params, batches, ranked)
    top10 = ranked["ranked"][:, :10]
    first = top10 if first is None else first
    same = float(np.mean((top10 == first).all(1)))
    in_history = np.mean([sum(i in history[int(u)] for i in row)
                          for u, row in zip(ranked["users"], top10.tolist())])
    print(json.dumps({"variant": name, **{k: round(result[k], 4) for k in METRIC_NAMES},
                      "same_top10_as_first": round(same, 4),
                      "top10_items_in_own_history": round(float(in_history), 3),
                      "seconds_incl_compile": round(time.time() - start, 1)}), flush=True)


if __name__ == "__main__":
  cli.run(main)
