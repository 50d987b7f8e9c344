r"""How much of a run's validation quality survives on test, against the floors' own drop.

  python -m studies.val_test_gap --model_dir=runs/reproduce_beauty_collab_cooldown

TIGER's checkpoint (--checkpoint, default best: the one picked on validation) decodes
every validation and every test user (beam 20, constrained; skipped where
MODEL_DIR/results already holds that split's ranked lists from the step the checkpoint
names now), and item-transition and most-popular rank the same users. Validation predicts
each user's second-last item from the items before it, test the last item from everything
before it, so every model drops from validation to test; a ratio far below the floors'
says that the validation curve overstates what a recipe buys on test. Beside each model:
the median training count (in training sequences) of the items in its top 10, and of the
targets: whether a model leans on what was frequent in training. A second table splits the
users by whether the pair (last history item -> target) occurs in some training sequence:
what memorised transitions buy each model, and how many users each split has of them.
Writes MODEL_DIR/results/val_test_gap.{md,json}.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from studies.common import tiger_lists, write_table
from tiger_jax.run_dir import RunDir

KEYS = ("recall@10", "ndcg@10")


def transition_pairs(train: list[np.ndarray], num_items: int) -> np.ndarray:
  """The training sequences' consecutive pairs, each as previous * num_items + next (sorted,
  unique), for `seen_transition`."""
  from tiger_jax import baselines
  prev, nxt = baselines.train_pairs(train)
  return np.unique(prev.astype(np.int64) * num_items + nxt)


def split_metrics(ranked: np.ndarray, targets: np.ndarray, seen: np.ndarray) -> dict:
  """Metrics of ranked lists [users, k] on all users and, as seen_transition / unseen_transition,
  on the users whose (last item -> target) pair occurs in training and the others."""
  from tiger_jax import metrics
  return {**metrics.retrieval_metrics(ranked, targets),
          **{f"{part}_transition": metrics.retrieval_metrics(ranked[m], targets[m])
             for part, m in (("seen", seen), ("unseen", ~seen))}}


def seen_transition(pairs: np.ndarray, histories: list[np.ndarray], targets: np.ndarray,
                    num_items: int) -> np.ndarray:
  """[users] bool: the pair (history[-1], target) is among `pairs`, the training
  sequences' consecutive pairs encoded as previous * num_items + next."""
  keys = np.asarray([int(h[-1]) for h in histories], np.int64) * num_items + targets
  return np.isin(keys, pairs)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--model_dir", required=True, help="a finished run (config.gin, data/, checkpoints)")
  p.add_argument("--checkpoint", default="best", help="best (picked on validation) or latest")
  args = p.parse_args()
  if not os.path.exists(RunDir(args.model_dir).config_gin):
    raise SystemExit(f"error: --model_dir={args.model_dir}: no config.gin; give a trained run")
  from tiger_jax import baselines, data as data_lib, evaluation as evaluate
  dataset = data_lib.load(RunDir(args.model_dir).data)
  train = data_lib.training_sequences(dataset)
  counts = np.bincount(np.concatenate(train), minlength=dataset.num_items)
  pairs = transition_pairs(train, dataset.num_items)
  rows, target_counts, seen = {}, {}, {}
  for split in ("validation", "test"):
    examples = list(data_lib.iter_examples(dataset, split))
    targets, histories = np.asarray([e.target for e in examples]), [e.history for e in examples]
    ranked = tiger_lists(args.model_dir, split, args.checkpoint, targets)
    lists = {"TIGER": ranked,
             "item-transition": baselines.item_transition(train, dataset.num_items, histories),
             "most-popular": baselines.most_popular(train, dataset.num_items, histories)}
    target_counts[split] = float(np.median(counts[targets]))
    seen[split] = seen_transition(pairs, histories, targets, dataset.num_items)
    for name, ranked_lists in lists.items():
      ranked_lists = np.asarray(ranked_lists)
      rows.setdefault(name, {})[split] = {
          **split_metrics(ranked_lists, targets, seen[split]),
          "top10_median_train_count": float(np.median(counts[ranked_lists[:, :10]]))}
  lines = [f"{dataset.name}: {args.model_dir}, checkpoint {args.checkpoint}; all "
           f"{dataset.num_users:,} users, beam {evaluate.DEFAULT_BEAM}", "",
           "| model | validation R@10 / N@10 | test R@10 / N@10 | test / validation | "
           "top-10 median training count, validation / test |", "|---|---|---|---|---|"]
  for name, r in rows.items():
    v, t = r["validation"], r["test"]
    lines.append(f"| {name} | {v['recall@10']:.4f} / {v['ndcg@10']:.4f} | "
                 f"{t['recall@10']:.4f} / {t['ndcg@10']:.4f} | "
                 + " / ".join(f"{t[k] / v[k]:.2f}" for k in KEYS)
                 + f" | {v['top10_median_train_count']:g} / {t['top10_median_train_count']:g} |")
  lines += ["", "median training count of the targets: validation "
            f"{target_counts['validation']:g}, test {target_counts['test']:g}", "",
            "R@10 / N@10 by whether the user's (last item -> target) pair occurs in training "
            "sequences: " + ", ".join(f"{split} {m.mean():.1%} seen ({m.sum():,} users)"
                                      for split, m in seen.items()), "",
            "| model | validation seen | validation unseen | test seen | test unseen |",
            "|---|---|---|---|---|"]
  for name, r in rows.items():
    lines.append(f"| {name} | " + " | ".join(
        " / ".join(f"{r[split][f'{part}_transition'][k]:.4f}" for k in KEYS)
        for split in ("validation", "test") for part in ("seen", "unseen")) + " |")
  lines.append("")
  write_table(RunDir(args.model_dir).results, "val_test_gap", lines,
              {**rows, "target_median_train_count": target_counts,
               "seen_transition_share": {k: float(m.mean()) for k, m in seen.items()}})


if __name__ == "__main__":
  main()
