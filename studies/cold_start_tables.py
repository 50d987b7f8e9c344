r"""The cold-start tables of several records side by side: each protocol and dataset, the three
groups of test users, the chosen KNN query and mechanism, and the paired differences.

  python -m studies.cold_start_tables records/cold_start/*.json
  python -m studies.cold_start_tables records/cold_start/*.json --epsilon=0.2

Reads cold-start records (`studies.reproduce --gin_file=gin_configs/recipes/*_cold_start*.gin
--record=...`). Per record: its protocol (the paper's: a share of the items held out of
training; LIGER's: the items no training sequence holds), the users and cold items of each
group, then one line per model with R@10 / N@10 on cold targets, warm targets and all users at
one epsilon (default: the smallest the record holds), and the mechanism's paired differences
(mean ± standard error, z): on cold targets against content-KNN, on warm targets and all
users against TIGER's beams alone; and whether the issue's goal holds: cold-target N@10 z >= 2
and R@10 no worse than one standard error against KNN, warm targets within 3% on R@10 and N@10,
all users ahead of the beams.
"""

from __future__ import annotations

import argparse
import json
import os

GROUPS = ("cold targets", "warm targets", "all users")
MODELS = ("content-KNN", "most-popular", "item-transition", "TIGER beams", "prefix rule",
          "TIGER + beam-KNN")  # the table's order: what a row name holds


def protocol(record: dict) -> str:
  recipe = record.get("recipe", "")
  return "LIGER's (unseen items)" if "unseen" in recipe else "the paper's (5% held out)"


def epsilons(record: dict) -> list[str]:
  return sorted({n[n.index("(eps=") + 5:-1] for n in record["rows"] if "(eps=" in n}, key=float)


def model_names(record: dict, eps: str) -> list[str]:
  """The record's model names at one epsilon (a row name less ', <group> (eps=E)'), in MODELS
  order; the KNN and mechanism names carry their settings."""
  names = {n[:-len(f", {g} (eps={eps})")] for n in record["rows"] for g in GROUPS
           if n.endswith(f", {g} (eps={eps})")}
  order = lambda n: next((i for i, m in enumerate(MODELS) if m in n), len(MODELS))
  return sorted(names, key=lambda n: (order(n), n))


def _diff(d: dict) -> str:
  return f"{d['difference']:+.4f} ± {d['se']:.4f} (z {d['z']:+.1f})"


def goal(record: dict, eps: str, max_warm_loss: float = 0.03) -> dict | None:
  """The issue's three tests on the mechanism's rows, or None where the record has none."""
  rows = record["rows"]
  names = model_names(record, eps)
  mech = next((n for n in names if n.startswith("TIGER + beam-KNN")), None)
  knn = next((n for n in names if n.startswith("content-KNN")), None)
  if mech is None or knn is None:
    return None
  cold, warm, every = (rows[f"{mech}, {g} (eps={eps})"] for g in GROUPS)
  beams = rows[f"TIGER beams, warm targets (eps={eps})"]
  n_z = cold[f"vs {knn}: ndcg@10"]["z"]
  r = cold[f"vs {knn}: recall@10"]
  loss = {m: 1.0 - warm[m] / beams[m] for m in ("recall@10", "ndcg@10")}
  return {"cold N@10 z >= 2 against KNN": n_z >= 2.0,
          "cold R@10 no worse than one SE": r["difference"] >= -r["se"],
          f"warm within {max_warm_loss:.0%}": max(loss.values()) <= max_warm_loss + 1e-12,
          "all users ahead of the beams": every["vs TIGER beams: ndcg@10"]["difference"] > 0,
          "warm loss": loss}


def table(record: dict, path: str, eps: str | None = None) -> str:
  eps = eps or epsilons(record)[0]
  rows = record["rows"]
  names = model_names(record, eps)
  some = {g: next(r for n, r in rows.items() if n.endswith(f"{g} (eps={eps})")) for g in GROUPS}
  lines = [f"### {record['dataset'].capitalize()}, {protocol(record)}, epsilon {eps}", "",
           f"`{path}`: `{record['command']}` (seed {record['seed']}, {record['train_steps']:,} "
           f"steps; {record['hardware']}). Cold items: {some['cold targets'].get('cold_items', 0):,}; "
           f"test users: " + ", ".join(f"{some[g]['users']:,} {g}" for g in GROUPS) + ".", "",
           "| model | cold targets R@10 / N@10 | warm targets | all users |", "|---|---|---|---|"]
  for name in names:
    cells = []
    for g in GROUPS:
      r = rows.get(f"{name}, {g} (eps={eps})")
      cells.append(f"{r['recall@10']:.4f} / {r['ndcg@10']:.4f}" if r else "-")
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  mech = next((n for n in names if n.startswith("TIGER + beam-KNN")), None)
  if mech:
    lines += ["", f"{mech}, paired:"]
    for g in GROUPS:
      r = rows[f"{mech}, {g} (eps={eps})"]
      for key, d in r.items():
        if key.startswith("vs "):
          lines.append(f"- {g}, {key}: {_diff(d)}")
    g = goal(record, eps)
    if g:
      loss = g.pop("warm loss")
      lines.append("- the goal: " + "; ".join(f"{k}: {'yes' if v else 'no'}" for k, v in g.items())
                   + f" (warm loss R@10 {loss['recall@10']:.1%}, N@10 {loss['ndcg@10']:.1%})")
  return "\n".join(lines) + "\n"


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("records", nargs="+", help="cold-start records (records/cold_start/*.json)")
  parser.add_argument("--epsilon", default="", help="as the rows write it, e.g. 0.2 (default: "
                      "each record's smallest)")
  args = parser.parse_args()
  for path in args.records:
    try:
      with open(path) as f:
        record = json.load(f)
      text = table(record, os.path.relpath(path), args.epsilon or None)
    except (OSError, json.JSONDecodeError, KeyError, IndexError, StopIteration) as e:
      raise SystemExit(f"error: {path}: not a cold-start record at epsilon "
                       f"{args.epsilon or 'its smallest'} ({type(e).__name__}: {e}); make one with "
                       "`python -m studies.reproduce --gin_file=gin_configs/recipes/"
                       "beauty_cold_start.gin --record=...`")
    print(text)


if __name__ == "__main__":
  main()
