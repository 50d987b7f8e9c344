r"""Two rows of committed records, paired over users by their per-user hits: no run needed.

  python -m studies.pair_records records/beauty_best_nohistory.json:TIGER \
      records/beauty_best_nohistory.json:SASRec
  python -m studies.pair_records records/ladder/beauty/beauty_7_copy.json:TIGER \
      "records/beauty_best.json:item-transition, last 3 items"

Each side is RECORD:MODEL, a model row of a `studies.reproduce` record that keeps
`user_hits` (`results.user_hits`). Prints both means and A minus B with its paired standard
error and z (`metrics.paired_difference`) on Recall@K and NDCG@K (--k, at most the hits'
depth, 20). Both records must cover the same users under the same protocol (history kept or
left out: `exclude_history`).
"""

from __future__ import annotations

import argparse
import os

from studies.common import REPO


def load_side(spec: str) -> tuple[dict, str]:
  """'RECORD:MODEL' -> (the record, the model), or one error line."""
  from tiger_jax import io_utils
  path, sep, model = spec.rpartition(":")
  if not sep or not path:
    raise SystemExit(f"error: {spec}: expected RECORD:MODEL, e.g. records/beauty_best.json:TIGER")
  if not os.path.exists(path):
    raise SystemExit(f"error: {path}: no such record")
  record = io_utils.read_json(path)
  hits = record.get("user_hits") or {}
  if model not in hits:
    where = f"its models with hits: {', '.join(sorted(set(hits) - {'users', 'depth'}))}" \
        if hits else "the record keeps no per-user hits (rerun it with studies.reproduce)"
    raise SystemExit(f"error: {spec}: no per-user hits of {model!r}; {where}")
  return record, model


def check_pairable(a: tuple[dict, str], b: tuple[dict, str], k: int = 10) -> None:
  """One error line unless both sides cover the same users under the same protocol, with hits
  at least k deep."""
  (ra, _), (rb, _) = a, b
  if ra.get("exclude_history", False) != rb.get("exclude_history", False):
    raise SystemExit("error: the two records score different protocols (exclude_history)")
  if ra["user_hits"]["users"] != rb["user_hits"]["users"]:
    raise SystemExit(f"error: {ra['user_hits']['users']:,} users against "
                     f"{rb['user_hits']['users']:,}: not the same split")
  depth = min(ra["user_hits"]["depth"], rb["user_hits"]["depth"])
  if not 1 <= k <= depth:
    raise SystemExit(f"error: --k={k}: the hits go to rank {depth}")


def pair(a: tuple[dict, str], b: tuple[dict, str], k: int = 10) -> dict:
  """{metric: paired difference of A minus B} at k."""
  from studies import ladder
  from tiger_jax import results
  check_pairable(a, b, k)
  (ra, ma), (rb, mb) = a, b
  return ladder.paired(results.hit_ranks(ra["user_hits"], ma),
                       results.hit_ranks(rb["user_hits"], mb), k)


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("a", help="RECORD:MODEL")
  p.add_argument("b", help="RECORD:MODEL")
  p.add_argument("--k", type=int, default=10)
  args = p.parse_args(argv)
  a, b = load_side(args.a), load_side(args.b)
  rows = pair(a, b, args.k)
  users = a[0]["user_hits"]["users"]
  protocol = "history left out" if a[0].get("exclude_history") else "history kept"
  print(f"A = {args.a}\nB = {args.b}\n{users:,} users, {protocol}\n")
  print("| metric | A | B | A - B | SE | z |\n|---|---|---|---|---|---|")
  for metric, d in rows.items():
    print(f"| {metric} | {d['a']:.4f} | {d['b']:.4f} | {d['difference']:+.4f} | {d['se']:.4f} | "
          f"{d['z']:+.1f} |")


if __name__ == "__main__":
  os.chdir(REPO)
  main()
