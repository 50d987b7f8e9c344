r"""The README's results table, generated from the committed results records (never typed in).

  python -m studies.readme_table                       # print the table from records/*.json
  python -m studies.readme_table --readme=README.md    # rewrite the README's table block

Each record (records/<name>.json, written by `python -m studies.reproduce --record=...`) holds
one recipe's test rows on one dataset: TIGER, SASRec, the item-transition floors and
most-popular. Per dataset the table shows the records' TIGER rows, then the first record's
baselines, then the paper's figures, and under it the command, hardware and seed of each
record. `tests/test_readme.py` fails when the README's block differs from what this prints.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

from studies.common import PAPER, REPO

BEGIN, END = "<!-- readme_table:begin -->", "<!-- readme_table:end -->"
KEYS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")
BASELINES = ("SASRec", "item-transition", "item-transition, last 3 items", "most-popular")


def _hours(seconds: float) -> str:
  return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _row(dataset: str, label: str, r: dict, train: str = "") -> str:
  return (f"| {dataset} | {label} | " + " | ".join(f"{r[k]:.4f}" for k in KEYS)
          + f" | {train} |")


def load_records(paths: list[str]) -> list[dict]:
  records = []
  for path in paths:
    try:
      with open(path) as f:
        records.append({**json.load(f), "path": os.path.relpath(os.path.abspath(path), REPO)})
    except (OSError, json.JSONDecodeError) as e:
      raise SystemExit(f"error: {path}: not a results record ({e}); rewrite it with "
                       "`python -m studies.reproduce --record=...`") from None
  return records


def table(records: list[dict]) -> str:
  """Markdown: per dataset the TIGER rows, the baselines, the paper; then each record's source."""
  lines = ["| data | model | R@5 | R@10 | N@5 | N@10 | training |", "|---|---|---|---|---|---|---|"]
  notes = []
  for dataset in PAPER:
    mine = [r for r in records if r["dataset"] == dataset and not r.get("exclude_history")]
    name = dataset.capitalize()
    for r in mine:
      t = r["rows"]["TIGER"]
      label = (f"{r['label']} (`{os.path.basename(r['recipe'])}`; step {t['checkpoint_step']:,} "
               f"of {r['train_steps']:,}, best on validation)")
      lines.append(_row(name, label, t, _hours(t["train_seconds"])))
    if not any(r["recipe"].endswith("_paper.gin") for r in mine):
      recipe = f"gin_configs/recipes/{dataset}_paper.gin"
      lines.append(f"| {name} | TIGER, the paper's model (`{os.path.basename(recipe)}`): not run "
                   f"yet, `python -m studies.reproduce --gin_file={recipe}` | | | | | |")
    if mine:
      for model in BASELINES:
        if model in mine[0]["rows"]:
          r = mine[0]["rows"][model]
          lines.append(_row(name, f"{model}, ours" if model == "SASRec" else model, r,
                            _hours(r["train_seconds"]) if "train_seconds" in r else ""))
    for model, r in PAPER[dataset].items():
      lines.append(_row(name, model.replace(" (paper)", ", the paper's figure"), r,
                        "200k steps x 256, TPU" if model.startswith("TIGER") else ""))
    for r in mine:
      source = " Transcribed from an earlier README; the record says why." if r.get(
          "provenance") else ""
      notes.append(f"- {name}, `{r['path']}`: `{r['command']}` (batch {r['batch_size']}, seed "
                   f"{r['seed']}; {r['hardware']}).{source}")
  return "\n".join(lines + [""] + notes) + "\n"


def block(readme_text: str) -> str:
  """What stands between the README's BEGIN and END lines."""
  if BEGIN not in readme_text or END not in readme_text:
    raise ValueError(f"no {BEGIN} ... {END} lines")
  return readme_text.split(BEGIN, 1)[1].split(END, 1)[0].lstrip("\n")


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


def default_records() -> list[str]:
  return sorted(glob.glob(os.path.join(REPO, "records", "*.json")))


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--records", default="", help="comma-separated record files (default: records/*.json)")
  p.add_argument("--readme", default="", help="rewrite this README's table in place")
  args = p.parse_args(argv)
  paths = [x for x in args.records.split(",") if x] or default_records()
  text = table(load_records(paths))
  print(text)
  if args.readme:
    rewrite(args.readme, text)
    print(f"wrote the table into {args.readme}")


if __name__ == "__main__":
  sys.exit(main())
