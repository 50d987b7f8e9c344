r"""The README's real-data results table, generated from reproduction runs (never typed in).

  python bench/readme_table.py --runs=beauty:runs/reproduce_beauty_cpu,toys:runs/reproduce_toys_cpu
  python bench/readme_table.py --runs=... --readme=README.md   # rewrite the README's table

Each DIR holds results/reproduction.json from `bench/reproduce_beauty.py`. Our rows
(TIGER, SASRec, the item-transition floors, first-order and over the last three items, and
most-popular) sit beside the paper's, followed by the same models with the user's own
history items left out of every list where DIR also holds reproduction_nohistory.json
(`EXCLUDE_HISTORY`); a category with no run yet shows the paper's rows and the command that
would fill it in. With --readme the table replaces what stands between the README's
`<!-- readme_table:begin -->` and `<!-- readme_table:end -->` lines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from common import PAPER
from tiger_jax.baselines import LAST_ITEMS_ROW

BEGIN, END = "<!-- readme_table:begin -->", "<!-- readme_table:end -->"
KEYS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")
OURS = ("TIGER", "SASRec", "item-transition", LAST_ITEMS_ROW, "most-popular")


def _hours(seconds: float) -> str:
  return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _rows(name: str, run: dict, protocol: str) -> list[str]:
  """Our models' rows of one reproduction.json; protocol ends each label."""
  lines = []
  for model in OURS:
    r = run["rows"].get(model)
    if r is None:
      continue
    label, train = model, ""
    if model == "TIGER":
      label = (f"TIGER, ours (step {r['checkpoint_step']:,} of {run['train_steps']:,}, "
               f"{r['checkpoint']} checkpoint)")
    elif model == "SASRec":
      label = "SASRec, ours"
    if "train_seconds" in r:
      train = _hours(r["train_seconds"])
    lines.append(f"| {name} | {label}{protocol} | " + " | ".join(f"{r[k]:.4f}" for k in KEYS)
                 + f" | {train} |")
  return lines


def table(runs: dict[str, str]) -> str:
  """Markdown: one block of rows per category (ours, then the paper's), then how each was made."""
  lines = ["| data | model | R@5 | R@10 | N@5 | N@10 | training |", "|---|---|---|---|---|---|---|"]
  notes = []
  loaded, excluded = {}, {}
  for category, d in runs.items():
    path = os.path.join(d, "results", "reproduction.json")
    if not os.path.exists(path):
      raise SystemExit(f"error: --runs: {path} not found; run bench/reproduce_beauty.py "
                       f"--category={category} with that MODEL_DIR first")
    with open(path) as f:
      loaded[category] = json.load(f)
    path = os.path.join(d, "results", "reproduction_nohistory.json")
    if os.path.exists(path):
      with open(path) as f:
        excluded[category] = json.load(f)
  recipe = next(iter(loaded.values()))["config"] if loaded else "cpu"  # for a missing category
  for category in PAPER:
    run = loaded.get(category)
    name = category.capitalize()
    if run is None:
      lines.append(f"| {name} | ours: not run yet (`python bench/reproduce_beauty.py "
                   f"--config={recipe} --category={category}`) | | | | | |")
    lines += _rows(name, run, "") if run else []
    if category in excluded:
      lines += _rows(name, excluded[category], ", own history excluded")
    for model, r in PAPER[category].items():
      budget = "200k steps x 256, TPU" if model.startswith("TIGER") else ""
      lines.append(f"| {name} | {model.replace(' (paper)', ', paper')} | "
                   + " | ".join(f"{r[k]:.4f}" for k in KEYS) + f" | {budget} |")
    for r in filter(None, (run, excluded.get(category))):
      notes.append(f"{name}: `{r['command']}` ({r['config']}, batch {r['batch_size']}, "
                   f"seed 0; {r['hardware']}).")
  return "\n".join(lines + [""] + notes) + "\n"


def rewrite(readme: str, text: str) -> None:
  src = open(readme).read()
  if BEGIN not in src or END not in src:
    raise SystemExit(f"error: {readme}: no {BEGIN} ... {END} lines to replace")
  head, rest = src.split(BEGIN, 1)
  new = head + BEGIN + "\n" + text + END + rest.split(END, 1)[1]
  tmp = readme + ".tmp"
  with open(tmp, "w") as f:
    f.write(new)
  os.replace(tmp, readme)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--runs", required=True, help="CATEGORY:DIR,... (each DIR has results/reproduction.json)")
  p.add_argument("--readme", default="", help="rewrite this README's table in place")
  args = p.parse_args(argv)
  runs = {}
  for item in filter(None, args.runs.split(",")):
    category, sep, path = item.partition(":")
    if not sep or category not in PAPER:
      raise SystemExit(f"error: --runs={item!r}: expected CATEGORY:DIR with CATEGORY in {sorted(PAPER)}")
    runs[category] = path
  text = table(runs)
  print(text)
  if args.readme:
    rewrite(args.readme, text)
    print(f"wrote the table into {args.readme}")


if __name__ == "__main__":
  sys.exit(main())
