r"""Does taking TIGER's lean towards popular items out of its scores pay? A logQ-style rerank.

  python -m studies.popularity_prior --model_dir=runs/reproduce_beauty_collab_cooldown

Why: TIGER's top-10 items are far more frequent in training than the targets
(studies/val_test_gap.py: median training count 61 against 12 on Beauty test). The run's
checkpoint (--checkpoint, default best: picked on validation) decodes every validation
and every test user with beam --beam, keeping each beam's log-probability (saved as
MODEL_DIR/results/<split>_<checkpoint>_beam<B>_scored.npz and reused). Each list is then
reordered by log p(item | history) - beta * log(1 + the item's count in training
sequences), for each beta of --betas; beta is chosen on validation NDCG@10, and test is
read at that beta. Writes MODEL_DIR/results/popularity_prior.{md,json}.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from studies.common import check_trained_run, number_list, run_experiment, write_table
from tiger_jax.run_dir import RunDir

KEYS = ("recall@10", "ndcg@10")


def rerank(items: np.ndarray, scores: np.ndarray, log_counts: np.ndarray, beta: float) -> np.ndarray:
  """items [users, beam] (-1: no item), their log-probs [users, beam] -> items reordered by
  score - beta * log_counts[item], best first (stable; -1 last)."""
  adjusted = np.where(items >= 0, scores - beta * log_counts[np.maximum(items, 0)], -np.inf)
  return np.take_along_axis(items, np.argsort(-adjusted, axis=1, kind="stable"), 1)


def scored_lists(model_dir: str, split: str, checkpoint: str, beam: int) -> dict[str, np.ndarray]:
  """{'items', 'scores' [users, beam], 'targets', 'users' [users]} in user order, decoded
  once and saved in MODEL_DIR/results."""
  from tiger_jax import io_utils
  path = RunDir(model_dir).result(f"{split}_{checkpoint}_beam{beam}_scored", ".npz")
  if not os.path.exists(path):
    from tiger_jax import experiment as experiment_lib, input_pipeline, retrieval
    exp = run_experiment(model_dir)
    trainer, state = experiment_lib.restore(exp, model_dir, checkpoint)
    retriever = retrieval.Retriever(exp.model, exp.layout, exp.ids, beam,
                                    batch_sharding=trainer.batch_sharding)
    with trainer.context():
      got = retrieval.retrieve(retriever, state.eval_params, input_pipeline.eval_batches(
          exp.task, exp.feature_lengths, split, 64))
    io_utils.write_npz(path, items=got["ranked"], scores=got["scores"], targets=got["targets"],
                       users=got["users"])
  z = io_utils.load_arrays(path)
  order = np.argsort(z["users"])
  return {k: np.asarray(v)[order] for k, v in z.items()}


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--model_dir", required=True, help="a finished run (config.gin, data/, checkpoints)")
  p.add_argument("--checkpoint", default="best", help="best (picked on validation) or latest")
  p.add_argument("--beam", type=int, default=50, help="beams decoded: the candidates reranked")
  p.add_argument("--betas", default="0,0.1,0.2,0.3,0.5,0.7,1.0")
  args = p.parse_args()
  check_trained_run(args.model_dir)
  betas = number_list("betas", args.betas)
  from tiger_jax import data as data_lib, metrics
  dataset = data_lib.load(RunDir(args.model_dir).data)
  counts = np.bincount(np.concatenate(data_lib.training_sequences(dataset)),
                       minlength=dataset.num_items)
  log_counts = np.log1p(counts)
  rows, target_counts = {}, {}
  for split in ("validation", "test"):
    z = scored_lists(args.model_dir, split, args.checkpoint, args.beam)
    target_counts[split] = float(np.median(counts[z["targets"]]))
    for beta in betas:
      ranked = rerank(z["items"], z["scores"], log_counts, beta)
      rows.setdefault(beta, {})[split] = {
          **metrics.retrieval_metrics(ranked, z["targets"]),
          "top10_median_train_count": float(np.median(counts[np.maximum(ranked[:, :10], 0)]))}
  best = max(betas, key=lambda b: rows[b]["validation"]["ndcg@10"])
  lines = [f"{dataset.name}: {args.model_dir}, checkpoint {args.checkpoint}; all "
           f"{dataset.num_users:,} users, beam {args.beam} reranked by log p - beta * "
           f"log(1 + training count); beta chosen on validation NDCG@10: {best:g}", "",
           "| beta | validation R@10 / N@10 | test R@10 / N@10 | top-10 median training count, "
           "validation / test |", "|---|---|---|---|"]
  for beta, r in rows.items():
    v, t = r["validation"], r["test"]
    mark = " (chosen)" if beta == best else ""
    lines.append(f"| {beta:g}{mark} | {v['recall@10']:.4f} / {v['ndcg@10']:.4f} | "
                 f"{t['recall@10']:.4f} / {t['ndcg@10']:.4f} | "
                 f"{v['top10_median_train_count']:g} / {t['top10_median_train_count']:g} |")
  lines += ["", "median training count of the targets: "
            + ", ".join(f"{split} {c:g}" for split, c in target_counts.items()), ""]
  write_table(RunDir(args.model_dir).results, "popularity_prior", lines,
              {"chosen_beta": best, "beam": args.beam, "target_median_train_count": target_counts,
               "rows": {f"{b:g}": r for b, r in rows.items()}})


if __name__ == "__main__":
  main()
