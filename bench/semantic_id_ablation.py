r"""What the Semantic IDs buy: the same TIGER trained on IDs from different item vectors.

  python bench/semantic_id_ablation.py                      # Beauty: 5 rows; Toys: 2 rows
  python bench/semantic_id_ablation.py --categories=beauty --rows=text,random
  python bench/semantic_id_ablation.py --train_steps=20 --rqvae_epochs=5   # a smoke run

One row per kind of Semantic ID: text (item_meta.jsonl through MiniLM),
attributes, text + attributes, text + collaborative block, and random codes
(the paper's ablation). On Beauty, the row `text_cold_start` is the paper's cold-start
experiment on text IDs at the same budget: 5% of items never appear in training
sequences but keep their IDs; its own table gives Recall/NDCG on the test users whose
target is such an item, TIGER's beams alone and with cold items by Semantic-ID prefix
(top 10 holding at most epsilon x 10 cold items), against content-KNN on the same text
vectors. Every row is `python -m tiger_jax.main` with --config
(default gin_configs/reproduce_beauty_cpu.gin, the paper's model), the same seed and the same
number of training steps, in its own --run_dir/<category>/<row> folder, so an
interrupted table resumes row by row and step by step (checkpoints).
Evaluation: constrained beam search (beam 20) over every test user. The
table goes to --run_dir/semantic_id_ablation.{md,json}.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from common import PAPER, REPO, SHARED, write_table

# row -> (content source, extra gin bindings). Every row binds collaborative_dim: the CPU
# recipes add a 32-dim block by default, which would make "text" the same as
# "text+collaborative".
NO_COLLAB = "SemanticIdConfig.collaborative_dim=0"
COLD_FRACTION, COLD_EPSILON = 0.05, 0.1  # the cold-start row: items held out, prefix epsilon
ROWS = {
    "text": ("text", [NO_COLLAB]),
    "attributes": ("attributes", [NO_COLLAB]),
    "text+attributes": ("text+attributes", [NO_COLLAB]),
    "text+collaborative": ("text", ["SemanticIdConfig.collaborative_dim=32"]),
    "random": ("text", ["SemanticIdConfig.method='random'", NO_COLLAB]),
    "text_cold_start": ("text", [NO_COLLAB, f"pipeline.cold_start_fraction={COLD_FRACTION}",
                                 f"pipeline.cold_start_epsilon={COLD_EPSILON}"]),
}
COLD_START_ROWS = {"text_cold_start"}  # tabled apart: they train on 95% of the items
DEFAULT_ROWS = {"beauty": list(ROWS), "toys": ["text", "attributes"]}
KEYS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")


def run_row(args, category: str, row_name: str) -> dict:
  from tiger_jax import io_utils
  content, bindings = ROWS[row_name]
  model_dir = os.path.join(args.run_dir, category, row_name)
  result = os.path.join(model_dir, "results", "test.json")
  # Rows with text share one embedding cache: MiniLM runs once per category.
  cache = os.path.join(args.run_dir, category, "text_embedding_cache")
  if "text" in content and os.path.isdir(cache):
    shutil.copytree(cache, os.path.join(model_dir, "data", "cache"), dirs_exist_ok=True)
  bindings = [f"MODEL_DIR='{model_dir}'", f"TRAIN_STEPS={args.train_steps}",
              f"pipeline.source_dir='{os.path.join(SHARED, category)}'",
              f"pipeline.category='{category}'", f"MIXTURE_OR_TASK_NAME='tiger_{category}'",
              f"pipeline.content='{content}'", "pipeline.run_sasrec=False",
              f"RQVAEConfig.epochs={args.rqvae_epochs}", *bindings, *args.gin]
  cmd = [sys.executable, "-m", "tiger_jax.main", f"--gin_file={args.config}",
         *[f"--gin.{b}" for b in bindings]]
  print(f"== {category}/{row_name}: {' '.join(cmd[1:])}", flush=True)
  subprocess.run(cmd, cwd=REPO, check=True)
  if "text" in content and not os.path.isdir(cache):
    shutil.copytree(os.path.join(model_dir, "data", "cache"), cache)
  out = io_utils.read_json(result)
  row = {"metrics": {k: out[k] for k in KEYS}, "checkpoint_step": out["checkpoint_step"],
         "bindings": bindings, "model_dir": model_dir}
  if row_name in COLD_START_ROWS:  # main.py's cold-start rows, beside its baselines
    baselines = io_utils.read_json(os.path.join(model_dir, "results", "test_baselines.json"))
    row["cold_start"] = {k: v for k, v in baselines.items() if "cold targets" in k}
  return row


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--categories", default="beauty,toys")
  p.add_argument("--rows", default=None, help=f"comma-separated, from {list(ROWS)}")
  p.add_argument("--config", default="gin_configs/reproduce_beauty_cpu.gin",
                 help="the recipe of every row, e.g. gin_configs/sweeps/beauty_item_inputs.gin "
                      "(a third of the paper model's step time)")
  p.add_argument("--train_steps", type=int, default=3000)
  p.add_argument("--rqvae_epochs", type=int, default=3000)
  p.add_argument("--run_dir", default=os.path.join(REPO, "runs", "semantic_id_ablation"))
  p.add_argument("--gin", action="append", default=[], help="more bindings, e.g. --gin=BATCH_SIZE=128")
  args = p.parse_args()
  results, lines = {}, []
  for category in args.categories.split(","):
    rows = args.rows.split(",") if args.rows else DEFAULT_ROWS[category]
    unknown = set(rows) - set(ROWS)
    if unknown:
      raise SystemExit(f"error: --rows: unknown {sorted(unknown)}; choose from {list(ROWS)}")
    lines += [f"{category} (test split, all users, beam 20): {args.config}, "
              f"{args.train_steps:,} steps x 256, seed 0, RQ-VAE {args.rqvae_epochs} epochs", "",
              "| Semantic IDs from | " + " | ".join(KEYS) + " |", "|---|" + "---|" * len(KEYS)]
    cold = []
    for row in rows:
      results[f"{category}/{row}"] = r = run_row(args, category, row)
      if row in COLD_START_ROWS:
        cold += [f"| {name} | {m['users']} | " + " | ".join(f"{m[k]:.4f}" for k in KEYS) + " |"
                 for name, m in r["cold_start"].items()]
        continue
      lines.append(f"| {row} | " + " | ".join(f"{r['metrics'][k]:.4f}" for k in KEYS) + " |")
    lines += ["| TIGER (paper, 200k steps) | " + " | ".join(f"{PAPER[category]['TIGER (paper)'][k]:.4f}" for k in KEYS)
              + " |", ""]
    if cold:
      lines += [f"{category} cold start: text IDs, {COLD_FRACTION:.0%} of items never in training "
                f"sequences (epsilon {COLD_EPSILON}), test users whose target is one of them; same recipe and budget", "",
                "| ranked by | users | " + " | ".join(KEYS) + " |", "|---|---|" + "---|" * len(KEYS),
                *cold, ""]
  write_table(args.run_dir, "semantic_id_ablation", lines, results)


if __name__ == "__main__":
  main()
