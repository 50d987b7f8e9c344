r"""What the Semantic IDs buy: the same TIGER trained on IDs from different item vectors.

  python -m studies.semantic_id_ablation                      # Beauty: 6 rows; Toys: 2 rows
  python -m studies.semantic_id_ablation --categories=beauty --rows=text,random
  python -m studies.semantic_id_ablation --table_only          # the table from the rows recorded so far
  python -m studies.semantic_id_ablation --train_steps=20 --rqvae_epochs=5 \
      --results_dir=/tmp/abl_results --run_dir=/tmp/abl     # a smoke run

One row per kind of Semantic ID: text (item_meta.jsonl through MiniLM),
attributes, text + attributes, text + collaborative block, and random codes
(the paper's ablation). On Beauty, the row `text_cold_start` is the paper's cold-start
experiment on text IDs at the same budget: 5% of items never appear in training
sequences but keep their IDs; its own table gives Recall/NDCG on the test users whose
target is such an item, TIGER's beams alone and with cold items by Semantic-ID prefix
(top 10 holding at most epsilon x 10 cold items), against content-KNN on the same text
vectors. Every row is `python -m tiger_jax.main` with --config (default
studies/configs/beauty_item_inputs.gin: the paper's model size on item-level encoder
inputs, a third of its step time), the same seed and the same
number of training steps, in its own --run_dir/<category>/<row> folder, so an
interrupted row resumes step by step (checkpoints).
Evaluation: constrained beam search (beam 20) over every test user.

A finished row is recorded in --results_dir/<category>/<row>.json (default
studies/results/semantic_id_ablation, in the repository): its figures, the settings it ran
with, its hardware and training minutes. Recorded rows are not run again, so rows may run in
separate processes (e.g. one per core with taskset) and sessions, and the checkpoints
under --run_dir may be deleted. The table, from every recorded row asked for, goes to
--results_dir/semantic_id_ablation.{md,json}.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

from studies.common import PAPER, REPO, SHARED, hardware, relative, write_table
from tiger_jax.run_dir import RunDir

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


def settings(args) -> dict:
  """What makes rows comparable: a record made with other settings is not reused."""
  return {"config": args.config, "train_steps": args.train_steps,
          "rqvae_epochs": args.rqvae_epochs, "gin": list(args.gin)}


def asked_rows(args, category: str) -> list[str]:
  return args.rows.split(",") if args.rows else DEFAULT_ROWS[category]


def record_path(args, category: str, row_name: str) -> str:
  return os.path.join(args.results_dir, category, f"{row_name}.json")


def read_record(args, category: str, row_name: str) -> dict | None:
  """The row's record, None when it has not run; exits when it ran with other settings."""
  from tiger_jax import io_utils
  path = record_path(args, category, row_name)
  if not os.path.exists(path):
    return None
  record = io_utils.read_json(path)
  if record.get("settings") != settings(args):
    raise SystemExit(f"error: {path}: recorded with {record.get('settings')}, not {settings(args)}; "
                     "pass the same --config/--train_steps/--rqvae_epochs/--gin, or another "
                     "--results_dir, or delete the file to run the row again")
  return record


def run_row(args, category: str, row_name: str) -> dict:
  """Trains and evaluates one row (resuming its --run_dir folder) and records it."""
  from tiger_jax import io_utils, results
  content, bindings = ROWS[row_name]
  model_dir = os.path.join(args.run_dir, category, row_name)
  result = RunDir(model_dir).result("test")
  # Rows with text share one embedding cache: MiniLM runs once per category.
  cache = os.path.join(args.run_dir, category, "text_embedding_cache")
  if "text" in content and os.path.isdir(cache):
    shutil.copytree(cache, os.path.join(RunDir(model_dir).data, "cache"), dirs_exist_ok=True)
  bindings = [f"MODEL_DIR='{relative(model_dir)}'", f"TRAIN_STEPS={args.train_steps}",
              f"pipeline.source_dir='{relative(os.path.join(SHARED, category))}'",
              f"pipeline.category='{category}'", f"MIXTURE_OR_TASK_NAME='tiger_{category}'",
              f"pipeline.content='{content}'", "pipeline.run_sasrec=False",
              f"RQVAEConfig.epochs={args.rqvae_epochs}", *bindings, *args.gin]
  cmd = [sys.executable, "-m", "tiger_jax.main", f"--gin_file={args.config}",
         *[f"--gin.{b}" for b in bindings]]
  print(f"== {category}/{row_name}: {' '.join(cmd[1:])}", flush=True)
  subprocess.run(cmd, cwd=REPO, check=True)
  if "text" in content and not os.path.isdir(cache):
    shutil.copytree(os.path.join(RunDir(model_dir).data, "cache"), cache)
  out = io_utils.read_json(result)
  record = {"metrics": {k: out[k] for k in KEYS}, "checkpoint_step": out["checkpoint_step"],
            "settings": settings(args), "bindings": bindings, "hardware": hardware(),
            # the trainer's clock: training only, summed over resumed runs
            "train_minutes": round(results.train_seconds(model_dir) / 60, 1),
            "finished": time.strftime("%Y-%m-%d %H:%M")}
  if row_name in COLD_START_ROWS:
    record["cold_start"] = cold_rows(model_dir)
  io_utils.write_json(record_path(args, category, row_name), record)
  return record


def cold_rows(model_dir: str) -> dict:
  """main.py's cold-start rows (TIGER's beams, + cold items by the 3-code prefix, content-KNN)
  and, from the same saved lists, TIGER + cold items by shorter prefixes: with few
  collisions, few cold items share a 3-code prefix with any warm item."""
  from tiger_jax import cold_start, data as data_lib, io_utils
  from tiger_jax.semantic_ids.pipeline import load_ids
  results = RunDir(model_dir).results
  rows = {k: v for k, v in io_utils.read_json(os.path.join(results, "test_baselines.json")).items()
          if "cold targets" in k}
  dataset = data_lib.load(RunDir(model_dir).data)
  ids = load_ids(RunDir(model_dir).semantic_ids)
  examples = list(data_lib.iter_examples(dataset, "test"))
  for prefix_len in range(1, ids.shape[1] - 1):
    more = cold_start.cold_start_rows(
        dataset, os.path.join(results, "test_ranked.npz"), RunDir(model_dir).data,
        [e.target for e in examples], [e.history for e in examples], COLD_EPSILON, ids, prefix_len)
    rows.update({k: v for k, v in more.items() if "cold_prefix_share" in v})
  return rows


def table(args, records: dict, rows_of: dict[str, list[str]]) -> list[str]:
  """Markdown lines: per category, its recorded rows of rows_of[category] and the paper's
  TIGER; the cold-start row in a table of its own; the rows not recorded yet."""
  lines = []
  for category, asked in rows_of.items():
    rows = [r for r in asked if f"{category}/{r}" in records]
    missing = [r for r in asked if f"{category}/{r}" not in records]
    if not rows:
      lines += [f"{category}: not run yet: {', '.join(missing)}", ""]
      continue
    lines += [f"{category} (test split, all users, beam 20): {args.config}, "
              f"{args.train_steps:,} steps x 256, seed 0, RQ-VAE {args.rqvae_epochs} epochs", "",
              "| Semantic IDs from | " + " | ".join(KEYS) + " | checkpoint step |",
              "|---|" + "---|" * (len(KEYS) + 1)]
    cold = []
    for row in rows:
      r = records[f"{category}/{row}"]
      if row in COLD_START_ROWS:  # beams, then by prefix (shortest first), then content-KNN
        order = lambda name: ("KNN" in name, "prefix" in name, name)
        cold += [f"| {name} | {m['users']} | " + " | ".join(f"{m[k]:.4f}" for k in KEYS)
                 + (f" | {m['cold_prefix_share']:.1%} |" if "cold_prefix_share" in m else " | - |")
                 for name, m in sorted(r["cold_start"].items(), key=lambda kv: order(kv[0]))]
        continue
      lines.append(f"| {row} | " + " | ".join(f"{r['metrics'][k]:.4f}" for k in KEYS)
                   + f" | {r['checkpoint_step']:,} |")
    lines += ["| TIGER (paper, 200k steps) | " + " | ".join(
        f"{PAPER[category]['TIGER (paper)'][k]:.4f}" for k in KEYS) + " | - |", ""]
    if cold:
      lines += [f"{category} cold start: text IDs, {COLD_FRACTION:.0%} of items never in training "
                f"sequences (epsilon {COLD_EPSILON}), test users whose target is one of them; "
                "same recipe and budget", "",
                "| ranked by | users | " + " | ".join(KEYS) + " | cold items the prefix reaches |",
                "|---|---|" + "---|" * (len(KEYS) + 1),
                *cold, ""]
    if missing:
      lines += [f"{category}: not run yet: {', '.join(missing)}", ""]
  hardware_lines = sorted({r["hardware"] for r in records.values()})
  lines += [f"rows ran on: {'; '.join(hardware_lines)}; training minutes (the trainer's clock): "
            + ", ".join(f"{k} {r['train_minutes']}" for k, r in records.items())]
  return lines


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--categories", default="beauty,toys")
  p.add_argument("--rows", default=None, help=f"comma-separated, from {list(ROWS)}")
  p.add_argument("--config", default="studies/configs/beauty_item_inputs.gin",
                 help="the recipe of every row (default: the paper's model on item-level "
                      "encoder inputs, a third of its step time; e.g. "
                      "studies/configs/beauty_cpu.gin for the paper's inputs)")
  p.add_argument("--train_steps", type=int, default=3000)
  p.add_argument("--rqvae_epochs", type=int, default=1000,
                 help="studies/semantic_id_report.py: 1,000 epochs meet #12's codeword targets")
  p.add_argument("--run_dir", default=os.path.join(REPO, "runs", "semantic_id_ablation"),
                 help="each row's model folder (checkpoints; resumable, disposable)")
  p.add_argument("--results_dir", default=os.path.join(REPO, "studies", "results", "semantic_id_ablation"),
                 help="each finished row's record and the table (kept in the repository)")
  p.add_argument("--table_only", action="store_true",
                 help="run no row: write the table from the rows recorded so far")
  p.add_argument("--gin", action="append", default=[], help="more bindings, e.g. --gin=BATCH_SIZE=128")
  args = p.parse_args()
  categories = args.categories.split(",")
  for category in categories:
    if category not in DEFAULT_ROWS:
      raise SystemExit(f"error: --categories: unknown {category!r}; choose from {list(DEFAULT_ROWS)}")
    unknown = set(asked_rows(args, category)) - set(ROWS)
    if unknown:
      raise SystemExit(f"error: --rows: unknown {sorted(unknown)}; choose from {list(ROWS)}")
  if not args.table_only:
    for category in categories:
      for row in asked_rows(args, category):
        if read_record(args, category, row) is None:
          run_row(args, category, row)
  # The table holds every row recorded under --results_dir, not only this run's: rows
  # may run in separate processes.
  rows_of = {c: list(dict.fromkeys(DEFAULT_ROWS[c] + (asked_rows(args, c) if c in categories else [])))
             for c in DEFAULT_ROWS}
  records = {f"{c}/{r}": record for c, rows in rows_of.items() for r in rows
             if (record := read_record(args, c, r)) is not None}
  if not records:
    raise SystemExit(f"error: no row recorded under {args.results_dir}; run without --table_only")
  write_table(args.results_dir, "semantic_id_ablation", table(args, records, rows_of), records)


if __name__ == "__main__":
  main()
