r"""Our SASRec beside the public SASRec figures, under both protocols for the user's own history.

  python -m studies.sasrec_public --out=records/analysis/sasrec_against_public.md

Public leave-one-out figures differ in one step of evaluation that moves them a lot: whether the
items already in a user's history are removed from the ranked list before it is cut at K. Our
pipeline scores both from the same trained SASRec: the README's rows keep them (the TIGER
paper's protocol; its beam may decode a history item), and `--gin.EXCLUDE_HISTORY=True` records
remove them (`metrics.without_history`). This puts the SASRec row of each pair of records
(--record=DATASET:KEPT,LEFT_OUT; default: the best recipes' records) beside each public figure
of `studies.common.PUBLIC_SASREC`, with what the public code does with history where its code
was read, and each difference with its standard error over users (the public figure taken as
exact: its own seed noise is not in the SE). Below, `SASRecConfig`'s defaults at each seed that
records/sasrec/ holds (`studies.sasrec_tune --variant=NAME:seed=N`): the seed-to-seed spread.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os

from studies.common import PUBLIC_SASREC, REPO, command_line, gap_to_figure, relative

KEYS = ("recall@10", "ndcg@10")
PROTOCOLS = {"kept": "history kept", "left_out": "history left out"}
DEFAULT_RECORDS = {d: (f"records/{d}_best.json", f"records/{d}_best_nohistory.json")
                   for d in PUBLIC_SASREC}
ROW = "SASRec"


def load(path: str, flag: str) -> dict:
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise SystemExit(f"error: {flag}: {path}: {e}") from None
  if ROW not in record.get("rows", {}):
    raise SystemExit(f"error: {flag}: {path} has no {ROW} row; give a record of "
                     "studies.reproduce from a recipe that trains SASRec")
  return record


def compare(records: dict[str, dict]) -> dict:
  """records: {'kept': record, 'left_out': record} of one dataset -> per protocol, our figures
  and, per public figure, ours minus theirs ({'diff', 'se', 'z'} or None without hits)."""
  out = {}
  for protocol, record in records.items():
    ours = {k: record["rows"][ROW][k] for k in KEYS}
    out[protocol] = {"ours": ours, "against": {}}
    for name, public in PUBLIC_SASREC[record["dataset"]].items():
      out[protocol]["against"][name] = {
          k: gap_to_figure(record, ROW, k, public[k]) for k in KEYS}
  return out


def _cell(value: float, gap: dict | None) -> str:
  if gap is None:
    return f"{value:.4f}"
  return f"{value:.4f} ({gap['diff']:+.4f} ± {gap['se']:.4f}, z {gap['z']:+.1f})"


def table(results: dict, sources: dict) -> list[str]:
  lines = ["# Our SASRec beside the public SASRec figures", "",
           "Test, all users, full ranking, epoch chosen on validation NDCG@10. Each of our cells: "
           "the figure, then ours minus the public figure in that row ± its standard error over "
           "users (the public figure taken as exact), z. \"history left out\": the user's own "
           "history items are removed from the ranked list before the cut at K.", "",
           "| data | public figure | its R@10 / N@10 | its history items | ours, history kept: "
           "R@10 | N@10 | ours, history left out: R@10 | N@10 |",
           "|---|---|---|---|---|---|---|---|"]
  for dataset, result in results.items():
    for name, public in PUBLIC_SASREC[dataset].items():
      cells = []
      for protocol in PROTOCOLS:
        r = result[protocol]
        cells += [_cell(r["ours"][k], r["against"][name][k]) for k in KEYS]
      lines.append(f"| {dataset} | {name} | {public['recall@10']:.4f} / "
                   f"{public['ndcg@10']:.4f} | {public['history']} | " + " | ".join(cells) + " |")
  lines += ["", "Our rows: the SASRec row of each record (`SASRecConfig` defaults, the pipeline's "
            "SASRec), one seed:"]
  for dataset, paths in sources.items():
    for protocol, (path, record) in paths.items():
      lines.append(f"- {dataset}, {PROTOCOLS[protocol]}: `{relative(path)}` "
                   f"(`{record['command']}`; {record['hardware']})")
  lines += ["", f"command: `{command_line()}`"]
  return lines


_RUN_FIELDS = ("seed", "epochs", "patience", "validate_every")


def default_config_seeds(paths: list[str]) -> dict[str, list[dict]]:
  """Per dataset, the `studies.sasrec_tune` variants that train `SASRecConfig`'s defaults (the
  pipeline's SASRec) but for the seed and the stopping knobs: {seed, test, record, hardware}."""
  from tiger_jax import sasrec
  default = {k: v for k, v in dataclasses.asdict(sasrec.SASRecConfig()).items()
             if k not in _RUN_FIELDS}
  out: dict[str, list[dict]] = {}
  for path in paths:
    with open(path) as f:
      record = json.load(f)
    for variant in record.get("variants", {}).values():
      config = {k: v for k, v in variant["config"].items() if k not in _RUN_FIELDS}
      if {**default, **config} == default:  # fields added later keep their default
        out.setdefault(record["dataset"], []).append(
            {"seed": variant["config"]["seed"], "test": variant["test"],
             "best_epoch": variant["best_epoch"], "record": relative(path),
             "hardware": record["hardware"]})
  return {d: sorted(v, key=lambda s: s["seed"]) for d, v in out.items()}


def seeds_table(seeds: dict[str, list[dict]]) -> list[str]:
  if not seeds:
    return []
  lines = ["", "`SASRecConfig`'s defaults by seed, each from `studies.sasrec_tune` (its own "
           "training, on the same data): how far one seed moves the figures.", "",
           "| data | seed | history kept: R@10 | N@10 | history left out: R@10 | N@10 | best "
           "epoch | record |", "|---|---|---|---|---|---|---|---|"]
  for dataset, runs in seeds.items():
    for r in runs:
      t, n = r["test"], r["test"]["nohistory"]
      lines.append(f"| {dataset} | {r['seed']} | {t['recall@10']:.4f} | {t['ndcg@10']:.4f} | "
                   f"{n['recall@10']:.4f} | {n['ndcg@10']:.4f} | {r['best_epoch']} | "
                   f"`{r['record']}` ({r['hardware']}) |")
  return lines


def parse_record_flag(text: str) -> tuple[str, tuple[str, str]]:
  dataset, sep, paths = text.partition(":")
  kept, sep2, left_out = paths.partition(",")
  if not sep or not sep2 or dataset not in PUBLIC_SASREC:
    raise SystemExit(f"error: --record={text}: give DATASET:KEPT.json,LEFT_OUT.json with DATASET "
                     f"one of {', '.join(PUBLIC_SASREC)}")
  return dataset, (kept, left_out)


def main(argv=None) -> None:
  p = argparse.ArgumentParser()
  p.add_argument("--record", action="append", default=[],
                 help="DATASET:KEPT.json,LEFT_OUT.json (repeat; default: the best recipes')")
  p.add_argument("--out", help="where to write the table (.md; a .json beside it)")
  args = p.parse_args(argv)
  pairs = dict(map(parse_record_flag, args.record)) if args.record else DEFAULT_RECORDS
  results, sources = {}, {}
  for dataset, (kept, left_out) in pairs.items():
    flag = f"--record={dataset}:{kept},{left_out}"
    records = {"kept": load(kept, flag), "left_out": load(left_out, flag)}
    for protocol, record in records.items():
      if record.get("dataset") != dataset or bool(record.get("exclude_history")) != (
          protocol == "left_out"):
        raise SystemExit(f"error: {flag}: {record.get('dataset')} record with exclude_history="
                         f"{record.get('exclude_history')} given as {dataset}, "
                         f"{PROTOCOLS[protocol]}; give the kept record first")
    results[dataset] = compare(records)
    sources[dataset] = {p: (path, records[p]) for p, path in (("kept", kept), ("left_out", left_out))}
  seeds = default_config_seeds(sorted(glob.glob(os.path.join(REPO, "records", "sasrec", "*.json"))))
  seeds = {d: v for d, v in seeds.items() if d in results}
  lines = table(results, sources)
  lines[-2:-2] = seeds_table(seeds)
  print("\n".join(lines))
  if args.out:
    from tiger_jax import io_utils
    with io_utils.atomic_open(args.out) as f:
      f.write("\n".join(lines) + "\n")
    io_utils.write_json(os.path.splitext(args.out)[0] + ".json", {
        "records": {d: {p: relative(v[0]) for p, v in s.items()} for d, s in sources.items()},
        "public": PUBLIC_SASREC, "results": results, "seeds": seeds})
    print(f"wrote {relative(args.out)}")


if __name__ == "__main__":
  main()
