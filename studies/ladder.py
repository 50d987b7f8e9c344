r"""The ladder: what each mechanism buys, one row per flat recipe, each against the row above.

  python -m studies.ladder --dataset=beauty                      # the table from finished rows
  python -m studies.ladder --dataset=beauty --record=records/ladder/beauty.json

Rows are gin_configs/recipes/ladder/<dataset>_<n>_<name>.gin in order; each adds one mechanism
to the row above and trains to the same budget of trainer hours. A row is read from its
MODEL_DIR once `python -m studies.reproduce --gin_file=RECIPE` has run it (test lists of the
checkpoint chosen on validation, `results/test_best_ranked.npz`, or of the latest where the run
never validated); a row not run yet shows the command that runs it. Each finished row gives its
test metrics (all users, beam 20), its training hours and steps, and its paired difference
against the row above on R@10 and N@10 (mean, standard error, z: `metrics.paired_difference`);
a difference within two standard errors is marked as not measurable. Under the rows: the
floors and SASRec on the same users, and the paper. The rows leave SASRec out
(`pipeline.run_sasrec = False`, it would cost each row an hour); its lists come from
--sasrec_dir, else from the dataset's best recipe's run
(`python -m studies.reproduce --gin_file=gin_configs/recipes/<dataset>_best.gin`).
"""

from __future__ import annotations

import argparse
import glob
import os

import numpy as np

from studies.common import PAPER, REPO, command_line, hardware
from tiger_jax.run_dir import RunDir

K = 10
METRICS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")


def recipes(dataset: str) -> list[str]:
  """The ladder's recipe files for a dataset, in row order."""
  paths = glob.glob(os.path.join(REPO, "gin_configs", "recipes", "ladder", f"{dataset}_*.gin"))
  return sorted(paths, key=lambda p: int(os.path.basename(p)[len(dataset) + 1:].split("_")[0]))


def model_dir(recipe: str) -> str:
  """The MODEL_DIR a flat recipe binds (relative to the repository)."""
  for line in open(recipe):
    if line.startswith("MODEL_DIR"):
      return line.split("=", 1)[1].split("#")[0].strip().strip("'\"")
  raise SystemExit(f"error: {recipe}: no MODEL_DIR binding")


def title(recipe: str) -> str:
  """What the row adds, from the recipe's second comment line."""
  with open(recipe) as f:
    f.readline()
    return f.readline().lstrip("# ").rstrip().rstrip(".")


def ladder_rows(names: list[str], lists: list[np.ndarray | None], targets: np.ndarray) -> list[dict]:
  """Per row its metrics and, when the row above ran too, the paired differences on R@K and
  N@K against it (`metrics.paired_difference`) with `measurable`: |z| >= 2."""
  from tiger_jax import metrics
  rows, above = [], None
  for name, ranked in zip(names, lists):
    row = {"name": name}
    if ranked is not None:
      row.update(metrics.retrieval_metrics(ranked, targets, ks=(5, K)))
      if above is not None:
        for m, fn in ((f"recall@{K}", metrics.user_recall), (f"ndcg@{K}", metrics.user_ndcg)):
          d = metrics.paired_difference(fn(ranked, targets, K), fn(above, targets, K))
          row[f"vs_above_{m}"] = {**d, "measurable": abs(d["z"]) >= 2}
      above = ranked
    else:
      above = None  # a gap: the next row has nothing to pair with
    rows.append(row)
  return rows


def _lists(run: str, targets: np.ndarray):
  """(ranked lists, checkpoint name, result json) of a finished row's test decoding, or None."""
  from tiger_jax import io_utils, retrieval
  for name in ("test_best", "test"):
    path = RunDir(run).ranked(name)
    if io_utils.exists(path):
      return retrieval.load_ranked(path, targets), name, io_utils.read_json(RunDir(run).result(name))
  return None


def sasrec_lists(args, runs: list[str], users: int) -> tuple[np.ndarray, str] | None:
  """SASRec's test lists on the ladder's users, and the run they come from: --sasrec_dir,
  else the first of the rows (last first) and the dataset's best recipe's run that holds them
  (the ladder's recipes leave SASRec out, `pipeline.run_sasrec = False`: one SASRec serves
  every row)."""
  from tiger_jax import io_utils, results
  best = os.path.join(REPO, "gin_configs", "recipes", f"{args.dataset}_best.gin")
  dirs = ([args.sasrec_dir] if args.sasrec_dir else
          runs[::-1] + ([os.path.join(REPO, model_dir(best))] if os.path.exists(best) else []))
  for d in dirs:
    path = results.sasrec_ranked_path(d, "test")
    if io_utils.exists(path):
      ranked = io_utils.load_arrays(path)["ranked"]
      if len(ranked) != users:
        raise SystemExit(f"error: {path}: SASRec's lists hold {len(ranked):,} users, the "
                         f"ladder's test split {users:,}; give --sasrec_dir a run on the same data")
      return ranked, os.path.relpath(d, REPO)
  if args.sasrec_dir:
    raise SystemExit(f"error: --sasrec_dir={args.sasrec_dir}: no SASRec test lists "
                     f"({results.sasrec_ranked_path(args.sasrec_dir, 'test')})")
  return None


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--dataset", required=True, choices=sorted(PAPER))
  p.add_argument("--record", default="", help="also write the table's rows here as JSON")
  p.add_argument("--sasrec_dir", default="", help="a run on the same data whose SASRec test "
                 "lists go below the ladder (default: a row's, else the best recipe's run)")
  args = p.parse_args(argv)
  from tiger_jax import baselines, data as data_lib, io_utils, metrics, results
  paths = recipes(args.dataset)
  if not paths:
    raise SystemExit(f"error: no gin_configs/recipes/ladder/{args.dataset}_*.gin")
  runs = [os.path.join(REPO, model_dir(r)) for r in paths]
  done = [r for r in runs if io_utils.exists(os.path.join(r, "data", "dataset.npz"))]
  if not done:
    print("no row has run yet; run each with python -m studies.reproduce --gin_file=RECIPE")
    return
  dataset = data_lib.load(os.path.join(done[-1], "data"))
  examples = list(data_lib.iter_examples(dataset, "test"))
  targets = np.array([e.target for e in examples])
  histories = [e.history for e in examples]
  found = [_lists(r, targets) for r in runs]
  rows = ladder_rows([title(r) for r in paths], [f[0] if f else None for f in found], targets)
  lines = [f"{dataset.name} test, all {len(targets):,} users, beam 20; each row against the row "
           "above, paired over users", "",
           "| row | R@5 | R@10 | N@5 | N@10 | trainer hours (steps) | R@10 vs above | N@10 vs above |",
           "|---|---|---|---|---|---|---|---|"]
  for i, (row, recipe, f) in enumerate(zip(rows, paths, found)):
    rel = os.path.relpath(recipe, REPO)
    if f is None:
      lines.append(f"| {i + 1}. {row['name']} | not run yet: `python -m studies.reproduce "
                   f"--gin_file={rel}` | | | | | | |")
      continue
    hours = results.train_seconds(runs[i]) / 3600
    row.update(recipe=rel, checkpoint=f[1], checkpoint_step=f[2].get("checkpoint_step"),
               train_hours=round(hours, 3), semantic_ids=f[2].get("semantic_ids"))
    diffs = []
    for m in (f"recall@{K}", f"ndcg@{K}"):
      d = row.get(f"vs_above_{m}")
      diffs.append("-" if d is None else f"{d['difference']:+.4f} ± {d['se']:.4f} (z {d['z']:+.1f}"
                   f"{'' if d['measurable'] else ', not measurable'})")
    lines.append(f"| {i + 1}. {row['name']} | " + " | ".join(f"{row[m]:.4f}" for m in METRICS)
                 + f" | {hours:.2f} ({row['checkpoint_step']}) | {diffs[0]} | {diffs[1]} |")
  train = data_lib.training_sequences(dataset)
  floors = {"most-popular": baselines.most_popular(train, dataset.num_items, histories, K),
            baselines.LAST_ITEMS_ROW: baselines.item_transition_last_items(
                train, dataset.num_items, histories, K)}
  sasrec = sasrec_lists(args, runs, len(targets))
  if sasrec is not None:
    floors[f"SASRec (the tuned default; {sasrec[1]})"] = sasrec[0]
  below = {}
  for name, ranked in floors.items():
    below[name] = metrics.retrieval_metrics(ranked, targets, ks=(5, K))
    lines.append(f"| {name} | " + " | ".join(f"{below[name][m]:.4f}" for m in METRICS)
                 + " | | | |")
  for name, r in PAPER[args.dataset].items():
    lines.append(f"| {name} | " + " | ".join(f"{r[m]:.4f}" for m in METRICS) + " | | | |")
  lines += ["", f"hardware: {hardware()}; command: `{command_line()}`"]
  print("\n".join(lines))
  if args.record:
    io_utils.write_json(args.record, {"dataset": args.dataset, "command": command_line(),
                                      "hardware": hardware(), "users": len(targets),
                                      "rows": rows, "below": below})


if __name__ == "__main__":
  main()
