r"""Item-transition with the followers of earlier history items: how much ranking evidence
the items before the last add, counted alone (no model).

  python -m studies.transition_sources --data_dir=runs/learning_curve/beauty/item_embedding_recency_followers/data

Every validation and test user (history capped at 20 items) is ranked by
`baselines.item_transition` with each --weights (w_0, w_1, ...): an item scores
sum_j w_j * (times it followed the j-th last history item in training sequences).
`1` is the first-order baseline. Read the validation columns to pick weights; test is
reported beside them. Writes DATA_DIR/../results/transition_sources.{md,json}. Why it
exists: it motivated FollowerConfig.sources, the model's prior over the same
counts.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from studies.common import write_table


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--data_dir", required=True, help="a prepared dataset (a run's data/)")
  p.add_argument("--weights", default="1;1,0.3;1,0.3,0.1;1,0.5,0.2;1,0.3,0.1,0.05",
                 help="weight sets, ';' between sets, ',' between sources (the last item first)")
  args = p.parse_args()
  try:
    weight_sets = [tuple(float(w) for w in ws.split(",")) for ws in args.weights.split(";")]
  except ValueError:
    raise SystemExit(f"error: --weights={args.weights}: numbers, ',' between sources and ';' "
                     "between sets, e.g. 1;1,0.3") from None
  from tiger_jax import baselines, data as data_lib, metrics
  dataset = data_lib.load(args.data_dir)
  train = data_lib.training_sequences(dataset)
  splits = {}
  for split in ("validation", "test"):
    examples = list(data_lib.iter_examples(dataset, split))
    splits[split] = (np.asarray([e.target for e in examples]), [e.history for e in examples])
  rows = {}
  for weights in weight_sets:
    name = ", ".join(f"{w:g}" for w in weights)
    for split, (targets, histories) in splits.items():
      ranked = baselines.item_transition(train, dataset.num_items, histories,
                                         source_weights=weights)
      rows.setdefault(name, {})[split] = metrics.retrieval_metrics(ranked, targets)
    print(name, rows[name], flush=True)
  lines = [f"{dataset.name}: item-transition with earlier items' followers; all "
           f"{dataset.num_users:,} users", "",
           "| source weights (last item first) | validation R@10 / N@10 | test R@10 / N@10 |",
           "|---|---|---|"]
  lines += [f"| {name} | " + " | ".join(f"{r[s]['recall@10']:.4f} / {r[s]['ndcg@10']:.4f}"
                                       for s in ("validation", "test")) + " |"
            for name, r in rows.items()]
  out_dir = os.path.join(os.path.dirname(os.path.abspath(args.data_dir)), "results")
  write_table(out_dir, "transition_sources", lines, rows)


if __name__ == "__main__":
  main()
