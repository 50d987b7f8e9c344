r"""Where two models differ: two rows of committed records paired over the test users (as
`studies.pair_records`), within groups of users that a property of their test example defines.

  python -m studies.pair_by_group records/beauty_best_nohistory.json:TIGER \
      records/beauty_best_nohistory.json:SASRec --by=target_popularity \
      --record=records/analysis/beauty_nohistory_tiger_vs_sasrec_by_target_popularity.md

--by (each user's test example: history = every item but the last, target = the last; the
training sequences leave out the last two items, as the pipeline's do):
  target_popularity  how often the target occurs in the training sequences
  history_length     how many items the user's history holds (the model reads the last 20)
  seen_transition    whether the target ever directly follows the history's last item in
                     the training sequences (what the counting floors and the follower
                     prior can find)

The users come from the record's dataset folder (--data_dir, default the shared amazon2014
folder of the record's dataset), read as the pipeline reads it; their count must match the
records' hits. Prints (and with --record writes) one markdown table: per group its users, both
means and A minus B with its paired standard error and z, on Recall@K and NDCG@K.
"""

from __future__ import annotations

import argparse
import collections
import os

import numpy as np

from studies.common import REPO, command_line

POPULARITY_EDGES = (1, 5, 20, 100)  # counts: 0 | 1-4 | 5-19 | 20-99 | 100+
HISTORY_EDGES = (5, 8, 12, 21)  # items: <5 | 5-7 | 8-11 | 12-20 | 21+
GROUPINGS = ("target_popularity", "history_length", "seen_transition")


def _bin_names(edges: tuple[int, ...]) -> list[str]:
  """The bins' names in order: below edges[0] ('0' when that is 1), lo-hi between, last+."""
  names = ["0" if edges[0] == 1 else f"<{edges[0]}"]
  names += [f"{lo}-{hi - 1}" if hi - 1 > lo else f"{lo}" for lo, hi in zip(edges, edges[1:])]
  return names + [f"{edges[-1]}+"]


def _binned(values: np.ndarray, edges: tuple[int, ...]) -> list[str]:
  names = _bin_names(edges)
  return [names[i] for i in np.searchsorted(edges, values, side="right")]


SEEN, UNSEEN = "follows the last item in training", "never follows it"


def group_order(by: str) -> list[str]:
  """The groups of `user_groups(..., by)` in the order a table lists them."""
  return {"target_popularity": _bin_names(POPULARITY_EDGES),
          "history_length": _bin_names(HISTORY_EDGES), "seen_transition": [SEEN, UNSEEN]}[by]


def user_groups(sequences: list[np.ndarray], by: str) -> list[str]:
  """One group name per user (in the dataset's user order) for its test example."""
  train = [s[:-2] for s in sequences]
  if by == "target_popularity":
    counts = collections.Counter(int(i) for s in train for i in s)
    return _binned(np.array([counts[int(s[-1])] for s in sequences]), POPULARITY_EDGES)
  if by == "history_length":
    return _binned(np.array([len(s) - 1 for s in sequences]), HISTORY_EDGES)
  if by == "seen_transition":
    pairs = {(int(a), int(b)) for s in train for a, b in zip(s[:-1], s[1:])}
    return [SEEN if (int(s[-2]), int(s[-1])) in pairs else UNSEEN for s in sequences]
  raise SystemExit(f"error: --by={by}: choose one of {', '.join(GROUPINGS)}")


def grouped_pairs(ranks_a: np.ndarray, ranks_b: np.ndarray, groups: list[str],
                  k: int, order: list[str] | None = None) -> dict[str, dict]:
  """{group: {'users': n, metric: paired difference}}, the groups in `order` (default: sorted),
  then 'all users' (a group of fewer than 2 users is left out)."""
  from studies import ladder
  groups = np.asarray(groups)
  order = sorted(set(groups.tolist())) if order is None else order
  out = {}
  for g in (*order, "all users"):
    mask = np.ones(len(groups), bool) if g == "all users" else groups == g
    if mask.sum() >= 2:
      out[g] = {"users": int(mask.sum()), **ladder.paired(ranks_a[mask], ranks_b[mask], k)}
  return out


def table(rows: dict[str, dict], a: str, b: str, by: str, k: int, protocol: str) -> str:
  lines = [f"A = {a}  \nB = {b}  \nusers grouped by {by}; {protocol}\n",
           f"| {by} | users | A R@{k} | B R@{k} | R@{k} A - B | A N@{k} | B N@{k} | N@{k} A - B |",
           "|---|---|---|---|---|---|---|---|"]
  for g, row in rows.items():
    cells = []
    for m in (f"recall@{k}", f"ndcg@{k}"):
      d = row[m]
      cells += [f"{d['a']:.4f}", f"{d['b']:.4f}",
                f"{d['difference']:+.4f} ± {d['se']:.4f} (z {d['z']:+.1f})"]
    lines.append(f"| {g} | {row['users']:,} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def main(argv=None) -> None:
  from studies import pair_records
  from tiger_jax import data as data_lib, io_utils, results
  from tiger_jax.data import preprocessed
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("a", help="RECORD:MODEL")
  p.add_argument("b", help="RECORD:MODEL")
  p.add_argument("--by", default="target_popularity", choices=GROUPINGS)
  p.add_argument("--k", type=int, default=10)
  p.add_argument("--data_dir", default=None,
                 help="the dataset folder (default ../shared/data/amazon2014/<dataset>)")
  p.add_argument("--record", default=None, help="also write the table here (.md)")
  args = p.parse_args(argv)
  a, b = pair_records.load_side(args.a), pair_records.load_side(args.b)
  pair_records.check_pairable(a, b, args.k)
  record = a[0]
  data_dir = args.data_dir or os.path.join(REPO, "..", "shared", "data", "amazon2014",
                                           record["dataset"])
  try:
    dataset = preprocessed.read(data_dir, record["dataset"])
  except data_lib.DataError as e:
    raise SystemExit(f"error: --data_dir: {e}") from None
  sequences = [s for s in dataset.sequences if len(s) >= data_lib.dataset.MIN_INTERACTIONS]
  users = record["user_hits"]["users"]
  if len(sequences) != users:
    raise SystemExit(f"error: --data_dir={data_dir}: {len(sequences):,} users, the records' hits "
                     f"{users:,}: not the records' dataset")
  rows = grouped_pairs(results.hit_ranks(record["user_hits"], a[1]),
                       results.hit_ranks(b[0]["user_hits"], b[1]),
                       user_groups(sequences, args.by), args.k, group_order(args.by))
  protocol = ("history left out" if record.get("exclude_history") else "history kept") + \
      f", {record['dataset']} test"
  text = table(rows, args.a, args.b, args.by, args.k, protocol)
  print(text)
  if args.record:
    with io_utils.atomic_open(args.record) as f:
      f.write(text + f"\ncommand: `{command_line()}`\n")


if __name__ == "__main__":
  os.chdir(REPO)
  main()
