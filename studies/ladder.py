r"""The ladder: what each mechanism buys, one row per flat recipe, each against the row above.

  RECORD_DIR=records/ladder/beauty bash studies/run_recipes.sh gin_configs/recipes/ladder/beauty_*.gin
  python -m studies.ladder --dataset=beauty --record=records/ladder/beauty.json

Rows are gin_configs/recipes/ladder/<dataset>_<n>_<name>.gin in order; each adds one mechanism
to the row above and trains to the same budget of trainer hours. A row is read from its
committed record, records/ladder/<dataset>/<recipe name>.json, which
`python -m studies.reproduce --gin_file=RECIPE --record=...` writes (test split, all users,
beam 20, the checkpoint chosen on validation); a row not run yet shows the command. Each row
gives its test metrics, training hours and steps, and its paired difference against the row
above on R@10 and N@10 (mean, standard error, z: `metrics.paired_difference`) from the two
records' per-user hits (`results.user_hits`), so no run folder needs to survive; a difference
within two standard errors is marked as not measurable. Under the rows: the floors (from the
last row's record) and SASRec (from --sasrec_record, default the dataset's best recipe's
record: the rows leave SASRec out, `pipeline.run_sasrec = False`), each paired against the
last row that ran where both records keep hits (against SASRec: the moonshot's test), and the
paper.
"""

from __future__ import annotations

import argparse
import glob
import os

import numpy as np

from studies.common import PAPER, REPO, command_line, hardware

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


def _ids_sha(record: dict) -> str:
  return (record["rows"]["TIGER"].get("semantic_ids") or {}).get("sha1", "unknown")


def _rows_by(found: list[dict | None], key) -> dict[str, list[str]]:
  """The numbers of the rows that ran, grouped by key(record), in row order."""
  groups: dict[str, list[str]] = {}
  for i, f in enumerate(found):
    if f is not None:
      groups.setdefault(key(f), []).append(str(i + 1))
  return groups


def _rows_text(groups: dict[str, list[str]]) -> str:
  """'rows 1, 2: A; row 3: B'."""
  return "; ".join(f"row{'s' * (len(r) > 1)} {', '.join(r)}: {k}" for k, r in groups.items())


def redrawn_ids(recipe_above: str, above: dict | None, recipe: str, record: dict) -> bool:
  """Whether a row stands on other Semantic IDs than the row above although both recipes bind
  the same Semantic-ID configuration: its difference then mixes the mechanism with the IDs."""
  if above is None:
    return False
  binds = lambda p: {l.strip() for l in open(p) if l.startswith("SemanticIdConfig")}
  return binds(recipe_above) == binds(recipe) and _ids_sha(above) != _ids_sha(record)


def paired(a: np.ndarray, b: np.ndarray, k: int = K) -> dict:
  """{'recall@k', 'ndcg@k': A minus B paired over users} from two models' per-user hit ranks
  (`metrics.paired_difference`, with `measurable`: |z| >= 2)."""
  from tiger_jax import metrics
  out = {}
  for m, fn in ((f"recall@{k}", metrics.recall_from_ranks), (f"ndcg@{k}", metrics.ndcg_from_ranks)):
    d = metrics.paired_difference(fn(a, k), fn(b, k))
    out[m] = {**d, "measurable": abs(d["z"]) >= 2}
  return out


def ladder_rows(names: list[str], ranks: list[np.ndarray | None]) -> list[dict]:
  """Per row (its per-user `metrics.hit_ranks`, or None where it has none) the paired
  differences on R@K and N@K against the row above (`metrics.paired_difference`) with
  `measurable`: |z| >= 2; a row without ranks breaks the chain."""
  rows, above = [], None
  for name, r in zip(names, ranks):
    row = {"name": name}
    if r is not None and above is not None:
      row.update({f"vs_above_{m}": d for m, d in paired(r, above).items()})
    above = r
    rows.append(row)
  return rows


def row_record(dataset: str, recipe: str) -> str:
  """Where a row's record is: records/ladder/<dataset>/<recipe name>.json."""
  name = os.path.splitext(os.path.basename(recipe))[0]
  return os.path.join(REPO, "records", "ladder", dataset, name + ".json")


def _ranks(record: dict, model: str) -> np.ndarray | None:
  """A model's per-user hit ranks from a record, None where the record predates them."""
  from tiger_jax import results
  hits = record.get("user_hits")
  return results.hit_ranks(hits, model) if hits and model in hits else None


def _diff(d: dict | None) -> str:
  """'+0.0072 ± 0.0011 (z +6.6)' for a paired difference, '-' for none."""
  if d is None:
    return "-"
  return (f"{d['difference']:+.4f} ± {d['se']:.4f} (z {d['z']:+.1f}"
          f"{'' if d['measurable'] else ', not measurable'})")


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--dataset", required=True, choices=sorted(PAPER))
  p.add_argument("--record", default="", help="also write the table's rows here as JSON, and "
                 "the table as markdown beside it (the same name, .md)")
  p.add_argument("--sasrec_record", default="", help="a results record on the same data whose "
                 "SASRec row goes below the ladder (default: records/<dataset>_best.json)")
  args = p.parse_args(argv)
  from tiger_jax import io_utils
  paths = recipes(args.dataset)
  if not paths:
    raise SystemExit(f"error: no gin_configs/recipes/ladder/{args.dataset}_*.gin")
  found = [io_utils.read_json(row_record(args.dataset, r))
           if os.path.exists(row_record(args.dataset, r)) else None for r in paths]
  done = [f for f in found if f is not None]
  if not done:
    print("no row has run yet: RECORD_DIR=records/ladder/<dataset> bash studies/run_recipes.sh "
          "RECIPE ...")
    return
  users = done[-1]["rows"]["TIGER"]["users"]
  for r, f in zip(paths, found):
    if f is not None and f["rows"]["TIGER"]["users"] != users:
      raise SystemExit(f"error: {row_record(args.dataset, r)}: {f['rows']['TIGER']['users']:,} "
                       f"users, the last row {users:,}; rerun it on the same data")
  rows = ladder_rows([title(r) for r in paths],
                     [_ranks(f, "TIGER") if f else None for f in found])
  lines = [f"{args.dataset} test, all {users:,} users, beam 20; each row against the row "
           "above, paired over users", "",
           "| row | R@5 | R@10 | N@5 | N@10 | trainer hours (steps) | R@10 vs above | N@10 vs above |",
           "|---|---|---|---|---|---|---|---|"]
  for i, (row, recipe, f) in enumerate(zip(rows, paths, found)):
    rel = os.path.relpath(recipe, REPO)
    if f is None:
      lines.append(f"| {i + 1}. {row['name']} | not run yet: `python -m studies.reproduce "
                   f"--gin_file={rel} --record={os.path.relpath(row_record(args.dataset, recipe), REPO)}`"
                   " | | | | | | |")
      continue
    tiger = f["rows"]["TIGER"]
    hours = tiger["train_seconds"] / 3600
    row.update({m: tiger[m] for m in METRICS}, recipe=rel, checkpoint=tiger["checkpoint"],
               checkpoint_step=tiger.get("checkpoint_step"), train_hours=round(hours, 3),
               semantic_ids=tiger.get("semantic_ids"), hardware=f["hardware"],
               per_user_hits="user_hits" in f)
    diffs = [_diff(row.get(f"vs_above_{m}")) for m in (f"recall@{K}", f"ndcg@{K}")]
    if "user_hits" not in f:
      row["name"] += " †"
    if i and redrawn_ids(paths[i - 1], found[i - 1], recipe, f):
      row["name"] += " ‡"
      row["ids_differ_from_above"] = True
    lines.append(f"| {i + 1}. {row['name']} | " + " | ".join(f"{row[m]:.4f}" for m in METRICS)
                 + f" | {hours:.2f} ({row['checkpoint_step']}) | {diffs[0]} | {diffs[1]} |")
  below = {name: {m: r[m] for m in METRICS} for name, r in done[-1]["rows"].items()
           if name in ("most-popular", "item-transition, last 3 items")}
  below_ranks = {name: _ranks(done[-1], name) for name in below}
  sasrec = args.sasrec_record or os.path.join(REPO, "records", f"{args.dataset}_best.json")
  if os.path.exists(sasrec):
    record = io_utils.read_json(sasrec)
    if "SASRec" not in record["rows"]:
      raise SystemExit(f"error: --sasrec_record={sasrec}: the record has no SASRec row")
    if record["rows"]["SASRec"].get("users", record["rows"]["TIGER"]["users"]) != users:
      raise SystemExit(f"error: --sasrec_record={sasrec}: not the ladder's {users:,} users")
    name = f"SASRec (the tuned default; {os.path.relpath(sasrec, REPO)})"
    below[name] = {m: record["rows"]["SASRec"][m] for m in METRICS}
    below_ranks[name] = _ranks(record, "SASRec")
  elif args.sasrec_record:
    raise SystemExit(f"error: --sasrec_record={args.sasrec_record}: no such file")
  # The last row that ran against each row below it, paired over users where both kept hits
  # (against SASRec: the moonshot's test).
  last = max(i for i, f in enumerate(found) if f is not None)
  mine = _ranks(found[last], "TIGER")
  for name, theirs in below_ranks.items():
    if mine is not None and theirs is not None:
      below[name]["last_row_vs_this"] = {"row": last + 1, **paired(mine, theirs)}
  for name, r in {**below, **PAPER[args.dataset]}.items():
    vs = r.get("last_row_vs_this")
    diffs = " | |" if vs is None else "".join(
        f" | row {vs['row']} {_diff(vs[m])}" for m in (f"recall@{K}", f"ndcg@{K}"))
    lines.append(f"| {name} | " + " | ".join(f"{r[m]:.4f}" for m in METRICS) + f" |{diffs} |")
  machines = _rows_by(found, lambda f: f["hardware"])
  lines += ["", "trained on: " + _rows_text(machines)
            + " (trainer hours are not comparable across machines)" * (len(machines) > 1)]
  lines += ["", "Semantic IDs (sha1): " + _rows_text(_rows_by(found, lambda f: _ids_sha(f)[:10]))]
  if any(r.get("ids_differ_from_above") for r in rows):
    lines += ["", "‡ the same Semantic-ID recipe as the row above, another build of it (built "
              "on another machine, say), so its difference against the row above includes the "
              "change of IDs"]
  if any(f is not None and "user_hits" not in f for f in found):
    lines += ["", "† its record predates per-user hits (`results.user_hits`): rerun the row to "
              "pair it with its neighbours"]
  lines += ["", f"hardware: {hardware()}; command: `{command_line()}`"]
  print("\n".join(lines))
  if args.record:  # the JSON, and the table beside it as markdown (what the README links)
    io_utils.write_json(args.record, {"dataset": args.dataset, "command": command_line(),
                                      "hardware": hardware(), "users": users,
                                      "rows": rows, "below": below})
    with io_utils.atomic_open(os.path.splitext(args.record)[0] + ".md") as f:
      f.write(f"# The ladder on {args.dataset.capitalize()}\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
  main()
