r"""How far the beam-KNN mechanism can go: cold targets won against warm targets lost.

  python -m studies.cold_start_frontier --record=records/cold_start/beauty.json

Reads a cold-start record (`studies.reproduce --gin_file=gin_configs/recipes/*_cold_start*.gin
--record=...`): every (gate, rank) the mechanism scored on validation. For each allowance of
warm-target loss (the relative loss of Recall@10 or NDCG@10 against TIGER's beams alone, the
larger of the two), the candidate with the best validation cold-target NDCG@10 within it,
beside content-KNN's validation cold-target NDCG@10 (the record's query, its lists capped at
the same epsilon). One table per epsilon the record holds. The
smallest allowance whose best candidate reaches content-KNN is what beating KNN on cold
targets costs warm targets: the goal of issue #41 asks for 3%. Validation only: the test
figures are in the record's rows.

  python -m studies.cold_start_frontier --record=... --model_dir=runs/beauty_cold_start

also reads the run's data and says why: per split, how well the gate's signal (the similarity
of a user's nearest cold item to the content query) tells cold-target users from warm-target
ones (AUC; 0.5 is a coin), and which share of the users whose nearest cold item is their
target sits among the 20% most similar (what the gate can use); and, on validation (TIGER's
saved lists of the record's checkpoint), how often TIGER's item at each rank is the target
against how often the nearest cold item is, by decile of its similarity (`cold_start.hit_rates`):
a list that ranks by the chance of a hit puts each decile's cold item below every rank that
hits more often (`cold_start.placement`, the mechanism's hit-rate tiers at weight 1), and the
cold- and warm-target scores of that placement say how far expected hits can take it.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

ALLOWANCES = (0.0, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5)


def warm_loss(candidate: dict, beams: dict) -> float:
  """The larger relative loss of warm-target recall and NDCG against the beams alone."""
  return max(1.0 - candidate["warm targets: recall"] / beams["recall"],
             1.0 - candidate["warm targets: ndcg"] / beams["ndcg"])


def frontier(record: dict, epsilon: str | None = None) -> tuple[list[dict], float, str]:
  """[{allowance, candidate name, its scores, loss}] per ALLOWANCES (None where no candidate
  fits), content-KNN's validation cold-target NDCG@10 and its query; for the mechanism's
  rows of one epsilon (as the row names write it, e.g. '0.1'; default: the first found)."""
  rows = record["rows"]
  mech = next(r for name, r in rows.items() if name.startswith("TIGER + beam-KNN")
              and "validation" in r and (epsilon is None or name.endswith(f"(eps={epsilon})")))
  knn = next(r for name, r in rows.items() if name.startswith("content-KNN") and
             "knn_query_validation" in r)
  query = knn["knn_query"]
  beams, candidates = mech["validation"]["warm targets of the beams"], mech["validation"]["candidates"]
  out = []
  for allowance in ALLOWANCES:
    fits = {n: c for n, c in candidates.items() if warm_loss(c, beams) <= allowance + 1e-12}
    best = max(fits, key=lambda n: fits[n]["cold targets: ndcg"]) if fits else None
    out.append({"allowance": allowance, "candidate": best,
                **({"cold": fits[best]["cold targets: ndcg"], "loss": warm_loss(fits[best], beams),
                    "all": fits[best]["all users: ndcg"]} if best else {})})
  knn_val = mech["validation"].get("content-KNN cold-target ndcg",  # capped as the rows are
                                   knn["knn_query_validation"][query])
  return out, knn_val, query


def epsilons(record: dict) -> list[str]:
  """The epsilons of the mechanism's rows, as their names write them, smallest first."""
  return sorted((name[name.index("(eps=") + 5:-1] for name in record["rows"]
                 if name.startswith("TIGER + beam-KNN") and "validation" in record["rows"][name]),
                key=float)


def table(record: dict) -> str:
  lines = []
  for eps in epsilons(record):
    points, knn, query = frontier(record, eps)
    lines += [f"epsilon {eps}: content-KNN ({query}), validation cold-target N@10 {knn:.4f}", "",
              "| warm loss allowed | best (gate, rank) | cold-target N@10 | vs KNN | warm loss | "
              "all-user N@10 |", "|---|---|---|---|---|---|"]
    for p in points:
      if p["candidate"] is None:
        lines.append(f"| {p['allowance']:.0%} | none fits | | | | |")
        continue
      lines.append(f"| {p['allowance']:.0%} | {p['candidate']} | {p['cold']:.4f} | "
                   f"{p['cold'] - knn:+.4f} | {p['loss']:.1%} | {p['all']:.4f} |")
    lines.append("")
  return "\n".join(lines)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
  """The probability that a positive scores above a negative (ties count half)."""
  scores, labels = np.asarray(scores, np.float64), np.asarray(labels, bool)
  pos, neg = scores[labels], scores[~labels]
  if not len(pos) or not len(neg):
    return float("nan")
  order = np.sort(neg)
  below = np.searchsorted(order, pos, side="left")
  ties = np.searchsorted(order, pos, side="right") - below
  return float((below + 0.5 * ties).sum() / (len(pos) * len(neg)))


def gate_signal(item_vectors: np.ndarray, histories, targets: np.ndarray, is_cold: np.ndarray,
                query: str, top_share: float = 0.2) -> dict:
  """What the gate's signal (the nearest cold item's cosine similarity to the content query)
  knows about one split's users: its AUC for a cold target against a warm one, and the share
  of the users whose nearest cold item is their target found among the `top_share` most
  similar."""
  from tiger_jax import cold_start
  cold = np.flatnonzero(is_cold)
  nearest, sim = cold_start.beam_knn(item_vectors, histories, np.full((len(targets), 1), -1),
                                     cold, 1.0, query, 1, 1)
  hit = nearest[:, 0] == targets
  top = np.argsort(-sim[:, 0], kind="stable")[:max(1, int(round(top_share * len(targets))))]
  return {"users": int(len(targets)), "cold-target users": int(is_cold[targets].sum()),
          "auc, cold vs warm target": auc(sim[:, 0], is_cold[targets]),
          "nearest cold item is the target": int(hit.sum()),
          f"of those, among the {top_share:.0%} most similar": (float(hit[top].sum() / hit.sum())
                                                               if hit.any() else float("nan"))}


def hit_rate_lines(record: dict, model_dir: str, dataset, is_cold: np.ndarray,
                   vectors: np.ndarray, query: str) -> list[str]:
  from tiger_jax import cold_start, data as data_lib, retrieval
  from tiger_jax.evaluation import result_name
  tiger = record["rows"]["TIGER"]
  name = result_name("validation", tiger["beam"], checkpoint=tiger["checkpoint"],
                     exclude_history=record.get("exclude_history", False))
  path = os.path.join(model_dir, "results", f"{name}_ranked.npz")
  if not os.path.exists(path):
    return [f"(no {path}: the hit rates need TIGER's saved validation lists)"]
  examples = list(data_lib.iter_examples(dataset, "validation"))
  targets = np.array([e.target for e in examples])
  histories = [e.history for e in examples]
  ranked = cold_start.scored(retrieval.load_ranked(path, targets), is_cold, 1.0)
  nearest, sim = cold_start.beam_knn(vectors, histories, ranked, np.flatnonzero(is_cold), 1.0,
                                     query, 1, 1)
  beam, cold, smooth, edges = cold_start.hit_rates(ranked, nearest[:, 0], sim[:, 0], targets)
  ranks = cold_start.placement(beam, smooth)
  lists = cold_start.scored(cold_start.insert_at(
      ranked, nearest, cold_start.tiered_positions(sim, edges, ranks)), is_cold, 0.1)
  groups = cold_start.group_users(targets, is_cold)
  def both(top, u):
    return cold_start.recall_of_users(top, targets, u), cold_start.ndcg_of_users(top, targets, u)
  score = {g: both(lists, u) for g, u in groups.items()}
  alone = {g: both(ranked, u) for g, u in groups.items()}
  warm = max(1 - score["warm targets"][i] / alone["warm targets"][i] for i in (0, 1))
  return [
      "", "Hit rates on validation, all users: TIGER's item at each rank, and the nearest cold "
      "item (content query) by decile of its similarity, least similar first:", "",
      "| | " + " | ".join(str(i + 1) for i in range(len(beam))) + " |",
      "|---|" + "---|" * len(beam),
      "| TIGER, rank | " + " | ".join(f"{b:.2%}" for b in beam) + " |",
      "| nearest cold item, decile | " + " | ".join(f"{c:.2%}" for c in cold) + " |",
      "| the same, non-decreasing | " + " | ".join(f"{c:.2%}" for c in smooth) + " |",
      "| rank it earns | " + " | ".join(str(r + 1) if r >= 0 else "-" for r in ranks) + " |", "",
      f"Each decile's cold item at the rank it earns (epsilon 0.1; in-sample: the rates "
      f"come from the users they score): cold-target "
      f"R@10 / N@10 {score['cold targets'][0]:.4f} / {score['cold targets'][1]:.4f}, warm loss "
      f"{warm:.1%}, all-user N@10 {score['all users'][1]:.4f} against "
      f"{alone['all users'][1]:.4f} for the beams alone."]


def signal_lines(record: dict, model_dir: str) -> list[str]:
  from tiger_jax import data as data_lib
  data_dir = os.path.join(model_dir, "data")
  dataset = data_lib.load(data_dir)
  is_cold = np.zeros(dataset.num_items, bool)
  is_cold[dataset.cold_items] = True
  vectors = np.load(os.path.join(data_dir, "item_vectors.npy"))
  query = next(r["knn_query"] for r in record["rows"].values() if "knn_query" in r)
  lines = [f"The gate's signal in {model_dir} "
           f"(content query: {query}):", ""]
  for split in ("validation", "test"):
    examples = list(data_lib.iter_examples(dataset, split))
    report = gate_signal(vectors, [e.history for e in examples],
                         np.array([e.target for e in examples]), is_cold, query)
    lines.append(f"- {split}: " + ", ".join(
        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v:,}" for k, v in report.items()))
  return lines + hit_rate_lines(record, model_dir, dataset, is_cold, vectors, query)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--record", required=True, help="a cold-start record (records/cold_start/*.json)")
  parser.add_argument("--model_dir", default="", help="the record's run, to read its data too")
  args = parser.parse_args()
  try:
    record = json.load(open(args.record))
    text = table(record)
    if not text:
      raise KeyError("no beam-KNN row with validation candidates")
  except (OSError, json.JSONDecodeError, StopIteration, KeyError) as e:
    raise SystemExit(f"--record={args.record}: not a cold-start record with the beam-KNN "
                     f"mechanism's validation candidates ({type(e).__name__}: {e}); run "
                     "`python -m studies.reproduce --gin_file=gin_configs/recipes/"
                     "beauty_cold_start.gin --record=...` first")
  print(text)
  if args.model_dir:
    if not os.path.exists(os.path.join(args.model_dir, "data", "manifest.json")):
      raise SystemExit(f"--model_dir={args.model_dir}: no prepared data (data/manifest.json); "
                       "give the run the record was made from")
    print("\n".join(signal_lines(record, args.model_dir)))


if __name__ == "__main__":
  main()
