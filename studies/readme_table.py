r"""The README's results table, generated from the committed results records (never typed in).

  python -m studies.readme_table                       # print the table from records/*.json
  python -m studies.readme_table --readme=README.md    # rewrite the README's table block

Each record (records/<name>.json, written by `python -m studies.reproduce --record=...`) holds
one recipe's test rows on one dataset: TIGER, SASRec, the item-transition floors and
most-popular. Per dataset the table shows the records' TIGER rows, then the first record's
baselines, then the paper's figures, and under it the command, hardware, seed and Semantic IDs
(checksum and quality) of each record; rows standing on different IDs are flagged; a record's
other seeds (records/seeds/*.json: the same recipe at another seed, `studies.reproduce --seed`)
follow its note, each paired with it over users, and the mean over its seeds. A second
block, the Semantic-ID table, comes from records/semantic_ids/*.json
(`bench/semantic_id_seeds.py --record=...`), and a third, the cold-start table, from
records/cold_start/beauty.json. `tests/test_repo.py` fails when the README's block differs from what this prints.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

from studies.common import PAPER, REPO, declared

BEGIN, END = "<!-- readme_table:begin -->", "<!-- readme_table:end -->"
KEYS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")
BASELINES = ("SASRec", "item-transition", "item-transition, last 3 items", "most-popular")
# Issue #38's 8-hour rows (gin_configs/recipes/<dataset>_<stem>.gin), "not run yet" with their
# command and their recipe's LABEL until their record is in records/: the paper's model, and the
# best recipe that keeps no count memory.
PENDING = ("paper_cpu", "learned")


def declared_label(recipe: str) -> str:
  """The recipe's `LABEL = "..."` line (what `studies.reproduce` names its row); else its file
  name."""
  return declared(recipe, "LABEL") or os.path.splitext(os.path.basename(recipe))[0]


def _progress(at: dict | None, recipe: str, dataset: str, stem: str) -> str:
  """A pending recipe's row text: where its run stopped (validation only: test is decoded once,
  when the run ends) and the command that goes on; or 'not run yet' and the command."""
  go_on = f"python -m studies.reproduce --gin_file={recipe} --record=records/{dataset}_{stem}.json"
  if at is None:
    return f"not run yet, `{go_on}`"
  text = (f"unfinished, stopped at step {at['step']:,} after {at['train_hours']:.2f} trainer "
          "hours")
  if at["validation_curve"]:
    v = at["validation_curve"][-1]
    text += (f"; validation R@10 {v['recall@10']:.4f}, N@10 {v['ndcg@10']:.4f} on "
             f"{at['validation_users']:,} users at step {v['step']:,}")
  return f"{text} (`{at['path']}`); go on: `{go_on}`"


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
        record = {**json.load(f), "path": os.path.relpath(os.path.abspath(path), REPO)}
      if record["recipe"].endswith("_1_paper.gin"):  # the ladder's first row
        record["label"] = "TIGER, the paper's model, the ladder's row 1"
      records.append(record)
    except (OSError, json.JSONDecodeError) as e:
      raise SystemExit(f"error: {path}: not a results record ({e}); rewrite it with "
                       "`python -m studies.reproduce --record=...`") from None
  return records


def table(records: list[dict], seeds: list[dict] = (), progress: list[dict] = ()) -> str:
  """Markdown: per dataset the TIGER rows, the baselines, the paper; then each record's source
  and its other seeds among `seeds`. A pending 8-hour recipe without a record says where its
  run stands (its record among `progress`, `studies.progress`) or that it has not run."""
  lines = ["| data | model | R@5 | R@10 | N@5 | N@10 | training |", "|---|---|---|---|---|---|---|"]
  notes = []
  for dataset in PAPER:
    mine = [r for r in records if r["dataset"] == dataset and not r.get("exclude_history")]
    name = dataset.capitalize()
    for r in mine:
      t = r["rows"]["TIGER"]
      budget = (f"its {r['max_train_hours']:g} h budget" if r.get("max_train_hours")
                else f"{r['train_steps']:,}")
      label = (f"{r['label']} (`{os.path.basename(r['recipe'])}`; step {t['checkpoint_step']:,} "
               f"of {budget}, best on validation)")
      lines.append(_row(name, label, t, _hours(t["train_seconds"])))
    for stem in PENDING:
      recipe = f"gin_configs/recipes/{dataset}_{stem}.gin"
      if not any(r["recipe"] == recipe for r in mine):
        at = next((p for p in progress if p["recipe"] == recipe), None)
        lines.append(f"| {name} | {declared_label(recipe)} (`{os.path.basename(recipe)}`, 8 "
                     f"trainer hours): {_progress(at, recipe, dataset, stem)} | | | | | |")
    if mine:
      for model in BASELINES:
        if model in mine[0]["rows"]:
          r = mine[0]["rows"][model]
          label = model
          if model == "SASRec":
            label = ("SASRec, ours before tuning" if mine[0].get("sasrec_config", "").startswith(
                "before tuning") else "SASRec, tuned (`SASRecConfig` defaults)")
          lines.append(_row(name, label, r,
                            _hours(r["train_seconds"]) if "train_seconds" in r else ""))
    for model, r in PAPER[dataset].items():
      lines.append(_row(name, model.replace(" (paper)", ", the paper's figure"), r,
                        "200k steps x 256, TPU" if model.startswith("TIGER") else ""))
    for r in mine:
      source = " Transcribed from an earlier README; the record says why." if r.get(
          "provenance") else ""
      if r.get("branched_from"):
        b = r["branched_from"]
        source += (f" Its run started as a copy of `{b['from']}` at step {b['step']:,} "
                   "(`studies.learning_curve.branch`), the same recipe's training.")
      notes.append(f"- {name}, `{r['path']}`: `{r['command']}` (batch {r['batch_size']}, seed "
                   f"{r['seed']}; {r['hardware']}).{source}{_ids_note(r)}{_seeds_note(r, seeds)}")
    checksums = {ids["sha1"] for r in mine if (ids := r["rows"]["TIGER"].get("semantic_ids"))}
    if len(checksums) > 1:
      notes.append(f"- {name}: these rows stand on {len(checksums)} different sets of Semantic "
                   f"IDs ({', '.join(sorted(c[:10] for c in checksums))}): compare them as such.")
  return "\n".join(lines + [""] + notes) + "\n"


def _ids_note(record: dict) -> str:
  """The Semantic IDs a record's TIGER row stood on (results since the IDs' checksum)."""
  ids = record["rows"]["TIGER"].get("semantic_ids")
  if not ids:
    return " Semantic IDs not recorded."
  quality = ""
  if "used_codewords" in ids:
    quality = (f": level-1 codewords {ids['used_codewords'][0]}, "
               f"{ids['items_in_collision']:.1%} of items in collision groups, largest group "
               f"{ids['largest_group']}")
  return f" Semantic IDs sha1 {ids['sha1'][:10]} ({ids.get('method', '?')}{quality})."


def _seeds_note(record: dict, seeds: list[dict]) -> str:
  """The record's TIGER row (and its SASRec row, where both ran it) at its other seeds: the same
  recipe, dataset and protocol at another seed (`studies.reproduce --seed`), each paired over
  users against it (`studies.pair_records`), and the mean over all its seeds."""
  from studies import pair_records
  others = sorted((s for s in seeds if s["recipe"] == record["recipe"]
                   and s["dataset"] == record["dataset"] and s["seed"] != record["seed"]
                   and bool(s.get("exclude_history")) == bool(record.get("exclude_history"))),
                  key=lambda s: s["seed"])
  if not others:
    return ""
  keys = ("recall@10", "ndcg@10")
  parts = []
  for s in others:
    models = []
    for model in ("TIGER", "SASRec"):
      if model in s["rows"] and model in record["rows"]:
        t, d = s["rows"][model], pair_records.pair((s, model), (record, model))
        models.append(f"{model} R@10 {t['recall@10']:.4f}, N@10 {t['ndcg@10']:.4f}, minus seed "
                      f"{record['seed']} " + ", ".join(
                          f"{d[m]['difference']:+.4f} (z {d[m]['z']:+.1f})" for m in keys))
    ids, own = (r["rows"]["TIGER"].get("semantic_ids", {}).get("sha1") for r in (s, record))
    other_ids = (f"; its own build of the recipe's Semantic IDs, sha1 {ids[:10]}, so the "
                 "difference includes the IDs'" if ids and own and ids != own else "")
    parts.append(f"seed {s['seed']} (`{s['path']}`, step {s['rows']['TIGER']['checkpoint_step']:,}"
                 f"{other_ids}): {'; '.join(models)}")
  mean = {m: sum(r["rows"]["TIGER"][m] for r in [record, *others]) / (1 + len(others))
          for m in keys}
  return (f" Other seeds: {'; '.join(parts)}; TIGER's mean over {1 + len(others)} seeds: R@10 "
          f"{mean['recall@10']:.4f}, N@10 {mean['ndcg@10']:.4f}.")


SID_BEGIN, SID_END = "<!-- semantic_ids_table:begin -->", "<!-- semantic_ids_table:end -->"


def _spread(s: dict, fmt: str) -> str:
  return f"{fmt.format(s['mean'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"


def _machine(hardware: str) -> str:
  """'1 of 2 cores' where the record ran pinned (taskset), else 'N cores'."""
  if "(taskset)" in hardware:
    return hardware.split(" CPU cores (taskset)")[0].split(", ")[-1] + " cores"
  return hardware.split(" CPU cores")[0].split(", ")[-1] + " cores"


def semantic_id_table(records: list[dict]) -> str:
  """Markdown from records/semantic_ids/*.json (bench/semantic_id_seeds.py --record): per
  record the machine (cores, pinned or not: XLA:CPU's thread count changes the arithmetic),
  the mean (range) over its seeds of level-1 codewords used, items in collision groups,
  largest group and seconds, whether every seed met the targets, and the record, which holds
  its command; a preset timed in the same run (--against) under its record's row; then how
  each data folder was made."""
  lines = ["| data | Semantic IDs | machine | seeds | level-1 codewords of 256 | items in collision "
           "groups | largest group | seconds | targets on every seed | record |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  made = {}
  for r in records:
    s = r["summary"]
    lines.append(f"| {r['dataset']} | {r['preset']}{' + ' + ', '.join(r['changes']) if r['changes'] else ''} "
                 f"| {_machine(r['hardware'])} | {len(r['rows'])} | {_spread(s['level1_used'], '{:.0f}')} "
                 f"| {_spread(s['items_in_collision'], '{:.1%}')} "
                 f"| {_spread(s['largest_group'], '{:.0f}')} | {_spread(s['seconds'], '{:.0f}')} "
                 f"| {'met' if s['every_seed_meets_targets'] else 'missed'} | `{r['path']}` |")
    if against := r.get("against"):  # another preset timed in the same run (--against)
      a = against["rows"][0]
      lines.append(f"| {r['dataset']} | {against['preset']}, seed {a['seed']}, timed in the run "
                   f"above: {against['times_slower']}x its time | {_machine(r['hardware'])} | 1 "
                   f"| {a['used'][0]} | {a['items_in_collision']:.1%} | {a['largest_group']} "
                   f"| {a['seconds']:.0f} | {'met' if a['meets_targets'] else 'missed'} "
                   f"| `{r['path']}` |")
    if r.get("data", {}).get("command"):
      made.setdefault(r["dataset"], r["data"]["command"])
  hardware = sorted({r["hardware"].replace("1 of 2 CPU cores (taskset)", "2 CPU cores")
                     for r in records})
  notes = ([f"Each record holds its command (`python bench/semantic_id_seeds.py "
            f"--vectors=DATA_DIR/item_vectors.npy ...`); {'; '.join(hardware)}; jax "
            f"{records[0]['jax']}."] if records else [])
  notes += [f"DATA_DIR ({name}): `{command}`." for name, command in made.items()]
  t = records[0]["targets"] if records else {}
  targets = (f"Targets: level 1 uses >= {t['level1_min']} codewords, <= "
             f"{t['collision_max']:.0%} of items in collision groups, largest group <= "
             f"{t['largest_group_max']}." if t else "")
  return "\n".join(lines + [""] + notes + ["", targets]) + "\n"


COLD_BEGIN, COLD_END = "<!-- cold_start_table:begin -->", "<!-- cold_start_table:end -->"
COLD_RECIPE = "gin_configs/recipes/beauty_cold_start.gin"
COLD_RECORD = os.path.join("records", "cold_start", "beauty.json")


def cold_start_table(record: dict | None) -> str:
  """Markdown from the Beauty cold-start record (the paper's protocol; `studies.reproduce
  --gin_file=recipes/beauty_cold_start.gin --record=records/cold_start/beauty.json`): on the
  users whose test target is cold, content-KNN, TIGER with the paper's prefix rule and TIGER
  with the beam-KNN mechanism; 'not run yet' and the command while the record is missing."""
  lines = ["| model | R@5 | R@10 | N@5 | N@10 |", "|---|---|---|---|---|"]
  if record is None:
    return "\n".join(lines + [f"| not run yet: `python -m studies.reproduce --gin_file="
                               f"{COLD_RECIPE} --record={COLD_RECORD}` | | | | |", ""]) + "\n"
  cold = [name for name in record["rows"] if "cold targets (eps=" in name]
  eps = sorted({name[name.index("(eps="):] for name in cold}, key=lambda e: float(e[5:-1]))
  first_eps = eps[0] if eps else ""  # the smallest epsilon: the main table's
  picked = [name for prefix in ("content-KNN", "TIGER + ", "TIGER + beam-KNN")
            for name in cold if name.startswith(prefix) and name.endswith(first_eps)
            and ("beam-KNN" in name) == (prefix == "TIGER + beam-KNN")]
  for name in picked:
    r = record["rows"][name]
    lines.append(f"| {name} | " + " | ".join(f"{r[k]:.4f}" for k in KEYS) + " |")
  users = record["rows"][picked[0]]["users"] if picked else 0
  cold = record["rows"][picked[0]].get("cold_items", 0) if picked else 0
  lines += ["", f"{users:,} test users whose target is one of {cold:,} cold items; `{COLD_RECORD}`: "
            f"`{record['command']}` (seed {record['seed']}; {record['hardware']})."]
  return "\n".join(lines) + "\n"


def load_cold_start_record() -> dict | None:
  path = os.path.join(REPO, COLD_RECORD)
  return json.load(open(path)) if os.path.exists(path) else None


def load_semantic_id_records(paths: list[str]) -> list[dict]:
  records = []
  for path in paths:
    with open(path) as f:
      record = json.load(f)
    dataset = os.path.splitext(os.path.basename(path))[0].split("_")[0]
    records.append({**record, "dataset": dataset.capitalize(),
                    "path": os.path.relpath(os.path.abspath(path), REPO)})
  return records


def default_semantic_id_records() -> list[str]:
  return sorted(glob.glob(os.path.join(REPO, "records", "semantic_ids", "*.json")))


def block(readme_text: str, begin: str = BEGIN, end: str = END) -> str:
  """What stands between the README's begin and end lines."""
  if begin not in readme_text or end not in readme_text:
    raise ValueError(f"no {begin} ... {end} lines")
  return readme_text.split(begin, 1)[1].split(end, 1)[0].lstrip("\n")


def replaced(src: str, text: str, begin: str, end: str, readme: str) -> str:
  if begin not in src or end not in src:
    raise SystemExit(f"error: {readme}: no {begin} ... {end} lines to replace")
  head, rest = src.split(begin, 1)
  return head + begin + "\n" + text + end + rest.split(end, 1)[1]


def rewrite(readme: str, text: str, sid_text: str | None = None,
            cold_text: str | None = None) -> None:
  src = replaced(open(readme).read(), text, BEGIN, END, readme)
  if sid_text is not None:
    src = replaced(src, sid_text, SID_BEGIN, SID_END, readme)
  if cold_text is not None:
    src = replaced(src, cold_text, COLD_BEGIN, COLD_END, readme)
  tmp = readme + ".tmp"
  with open(tmp, "w") as f:
    f.write(src)
  os.replace(tmp, readme)


def default_records() -> list[str]:
  """records/*.json, then each dataset's ladder row 1 (the paper's model at the ladder's
  budget, records/ladder/<dataset>/<dataset>_1_paper.json) where it has run."""
  ladder = [os.path.join(REPO, "records", "ladder", d, f"{d}_1_paper.json") for d in PAPER]
  return (sorted(glob.glob(os.path.join(REPO, "records", "*.json")))
          + [p for p in ladder if os.path.exists(p)])


def default_seed_records() -> list[str]:
  """records/seeds/*.json: the README rows' recipes at other seeds."""
  return sorted(glob.glob(os.path.join(REPO, "records", "seeds", "*.json")))


def default_progress_records() -> list[str]:
  """records/progress/*.json: where unfinished runs of pending recipes stand."""
  return sorted(glob.glob(os.path.join(REPO, "records", "progress", "*.json")))


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--records", default="", help="comma-separated record files (default: records/*.json)")
  p.add_argument("--readme", default="", help="rewrite this README's table in place")
  args = p.parse_args(argv)
  paths = [x for x in args.records.split(",") if x] or default_records()
  text = table(load_records(paths), load_records(default_seed_records()),
               load_records(default_progress_records()))
  sid_text = semantic_id_table(load_semantic_id_records(default_semantic_id_records()))
  cold_text = cold_start_table(load_cold_start_record())
  print(text)
  print(sid_text)
  print(cold_text)
  if args.readme:
    rewrite(args.readme, text, sid_text, cold_text)
    print(f"wrote the table into {args.readme}")


if __name__ == "__main__":
  sys.exit(main())
