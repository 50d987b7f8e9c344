r"""Is a TIGER run's lead over a comparator larger than the luck of which users a split holds?

  python -m studies.paired_compare --model_dir=RUN [--against=RUN2,...] [--split=test]

Per-user Recall@10 and NDCG@10 of TIGER's checkpoint (--checkpoint, default best: the one
picked on validation; decoded unless MODEL_DIR/results already holds its lists) against, on
the same users:
  - SASRec, from MODEL_DIR/results/<split>_sasrec_ranked.npz (studies/reproduce.py
    writes it; the row is left out, with a line saying so, where it is absent);
  - item-transition and item-transition over the last 3 items (tiger_jax.baselines);
  - the same checkpoint of each --against run (another seed or recipe on the same data),
    whose lists must already be saved.
Each row gives both means, TIGER minus the other, the paired standard error of that
difference (`metrics.paired_difference`), a 95% normal interval and z. Pairing removes what
the users share (an easy target is easy for both), so the interval is much narrower than
two unpaired ones; it covers the sampling of users only. A second seed's row shows how much
training noise adds. Writes MODEL_DIR/results/paired_<split>.{md,json}; --record also writes
the rows with the command, the hardware and each run's Semantic IDs (checksum, quality).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from studies.common import tiger_lists, write_table
from tiger_jax.run_dir import RunDir

K = 10


def comparators(dataset, split: str, model_dir: str, against: list[str], checkpoint: str,
                histories: list[np.ndarray], targets: np.ndarray) -> tuple[dict, list[str]]:
  """{name: ranked lists [users, >= K]} of every comparator on the split's users, in user
  order, and the lines saying which were left out."""
  from tiger_jax import baselines, data as data_lib, io_utils, results
  train = data_lib.training_sequences(dataset)
  lists, notes = {}, []
  sasrec = results.sasrec_ranked_path(model_dir, split)
  if io_utils.exists(sasrec):
    lists["SASRec"] = io_utils.load_arrays(sasrec)["ranked"]
  else:
    notes.append(f"SASRec left out: no {sasrec} (studies/reproduce.py writes it)")
  lists["item-transition"] = baselines.item_transition(train, dataset.num_items, histories, k=K)
  lists[baselines.LAST_ITEMS_ROW] = baselines.item_transition_last_items(
      train, dataset.num_items, histories, k=K)
  for run in against:
    lists[f"TIGER {os.path.basename(os.path.normpath(run))}"] = tiger_lists(
        run, split, checkpoint, targets, decode=False)
  for name, ranked in lists.items():
    if len(ranked) != len(targets):
      raise SystemExit(f"error: {name}: {len(ranked)} ranked lists for {len(targets)} "
                       f"{split} users; it was made on other data")
  return lists, notes


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--model_dir", required=True, help="a finished run (config.gin, data/, checkpoints)")
  p.add_argument("--against", default="", help="comma-separated finished runs on the same data "
                 "whose <split>_<checkpoint>_ranked.npz is saved (e.g. another seed)")
  p.add_argument("--split", default="test", choices=("validation", "test"))
  p.add_argument("--checkpoint", default="best", help="best (picked on validation) or latest")
  p.add_argument("--record", default="", help="also write the rows, the command, the hardware "
                 "and each run's Semantic IDs (checksum, quality) here, e.g. records/X.json")
  args = p.parse_args()
  against = [r for r in args.against.split(",") if r]
  for run in [args.model_dir, *against]:
    if not os.path.exists(RunDir(run).config_gin):
      raise SystemExit(f"error: {run}: no config.gin; give a trained run")
  from tiger_jax import checkpoints, data as data_lib, evaluation as evaluate, metrics
  dataset = data_lib.load(RunDir(args.model_dir).data)
  examples = list(data_lib.iter_examples(dataset, args.split))
  targets, histories = np.asarray([e.target for e in examples]), [e.history for e in examples]
  ours = tiger_lists(args.model_dir, args.split, args.checkpoint, targets)
  lists, notes = comparators(dataset, args.split, args.model_dir, against, args.checkpoint,
                             histories, targets)
  per_user = {f"recall@{K}": metrics.user_recall, f"ndcg@{K}": metrics.user_ndcg}
  rows = {name: {m: metrics.paired_difference(fn(ours, targets, K), fn(ranked, targets, K))
                 for m, fn in per_user.items()} for name, ranked in lists.items()}
  step = checkpoints.checkpoint_step(args.model_dir, args.checkpoint)
  lines = [f"{dataset.name} {args.split}, all {len(targets):,} users: TIGER = {args.model_dir}, "
           f"{args.checkpoint} checkpoint (step {step}), beam {evaluate.DEFAULT_BEAM}", *notes, "",
           "| TIGER against | metric | TIGER | other | TIGER - other | paired SE | 95% interval | z |",
           "|---|---|---|---|---|---|---|---|"]
  for name, r in rows.items():
    for m, d in r.items():
      lines.append(f"| {name} | {m} | {d['a']:.4f} | {d['b']:.4f} | {d['difference']:+.4f} | "
                   f"{d['se']:.4f} | [{d['low']:+.4f}, {d['high']:+.4f}] | {d['z']:+.1f} |")
  lines.append("")
  write_table(RunDir(args.model_dir).results, f"paired_{args.split}", lines,
              {"checkpoint_step": step, "users": len(targets), "rows": rows})
  if args.record:
    from studies.common import command_line, hardware
    from tiger_jax import io_utils
    from tiger_jax.semantic_ids import pipeline as sid_pipeline
    runs = [args.model_dir, *against]
    io_utils.write_json(args.record, {
        "command": command_line(), "hardware": hardware(), "dataset": dataset.name,
        "split": args.split, "checkpoint": args.checkpoint, "users": len(targets),
        "steps": {run: checkpoints.checkpoint_step(run, args.checkpoint) for run in runs},
        "semantic_ids": {run: sid_pipeline.summary(RunDir(run).semantic_ids) for run in runs},
        "rows": rows})


if __name__ == "__main__":
  main()
