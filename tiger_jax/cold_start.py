"""Cold start: retrieving items that no training sequence holds (the paper's second claim).

The results rows of a run whose data has cold items (`Dataset.cold_items`), in three groups of
the split's users: those whose target is cold, those whose target is warm, and all of them
(the list a real system would show). Every top-K list holds at most ceil(epsilon * K) cold
items (the paper's knob, `metrics.cap_cold`). Rows:

  content-KNN            items nearest the user's content query (`baselines.content_knn`),
                         the query (last item, history mean, recency-weighted mean) chosen on
                         validation cold-target users;
  most-popular, item-transition, last 3 items   the floors (warm and all users);
  TIGER beams            the model's constrained beams alone (it rarely decodes an ID it never
                         saw as a target);
  TIGER + prefix rule    the paper's rule: after each retrieved item, the cold items sharing
                         its first `prefix_len` codes (`metrics.add_cold_by_prefix`);
  TIGER + beam-KNN       the plug-in mechanism (`ColdStartConfig`): the cold items nearest a
                         query that blends the user's content query with the items TIGER's
                         beams found, `slots` of them inserted at one rank of TIGER's list, for
                         the users whose nearest cold item is most similar to their query (a
                         similarity gate). The blend, the gate and the rank are chosen on
                         validation: the blend that finds cold targets best, then the (gate,
                         rank) that scores best on cold targets among those that keep
                         warm-target Recall@K and NDCG@K within `max_warm_loss` of the beams
                         alone. Beside the (gate, rank) pairs, placements by hit rate: the
                         users in equal-count tiers of that similarity, each tier's cold item
                         at the first rank whose item hits the target less often than
                         `weight` x the tier's cold item (`hit_rates`, `placement`; rates
                         estimated on one half of the validation users and scored on the
                         other). Every candidate's validation scores are kept: the trade-off
                         between cold and warm targets, which decides how far the mechanism
                         can go.

A system may know which catalog items have no interactions (a catalog knows its new items);
nothing here reads the test targets except to score.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from tiger_jax import baselines, metrics as metrics_lib

K = 10
GROUPS = ("cold targets", "warm targets", "all users")


@dataclasses.dataclass(frozen=True)
class ColdStartConfig:
  """The beam-KNN cold-start mechanism. blends: weights of the user's content query against
  the beams' items (1.0: content alone, 0.0: beams alone); gates: shares of users who get a
  cold item, those whose nearest cold item is most similar to their query (1.0: everyone; the
  share becomes a similarity threshold on validation); positions: 0-based ranks of the top-K
  list where the cold items go; all chosen on validation. top_beams: how many of TIGER's
  items make the beam query (weights 1 / (1 + rank)). max_warm_loss: the largest relative
  loss of warm-target Recall@K and NDCG@K that a chosen candidate may cost. tiers,
  tier_weights: the placements by hit rate, one candidate per weight (a weight above 1 favours
  cold items; () for none), over `tiers` equal-count tiers of the similarity."""
  mechanism: str = "beam_knn"  # or 'none': no mechanism row
  blends: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
  gates: tuple[float, ...] = (1.0, 0.5, 0.3, 0.2, 0.1, 0.05)
  positions: tuple[int, ...] = (0, 1, 2, 4, 6, 9)
  top_beams: int = 5
  max_warm_loss: float = 0.03
  tiers: int = 10
  tier_weights: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0)

  def __post_init__(self):
    if self.mechanism not in ("beam_knn", "none"):
      raise ValueError(f"ColdStartConfig.mechanism={self.mechanism!r}: 'beam_knn' or 'none'")
    if not self.blends or any(not 0.0 <= b <= 1.0 for b in self.blends):
      raise ValueError(f"ColdStartConfig.blends={self.blends}: weights in [0, 1]")
    if not self.gates or any(not 0.0 < g <= 1.0 for g in self.gates):
      raise ValueError(f"ColdStartConfig.gates={self.gates}: shares of users in (0, 1]")
    if not self.positions or any(not 0 <= p < K for p in self.positions):
      raise ValueError(f"ColdStartConfig.positions={self.positions}: ranks in [0, {K})")
    if self.top_beams < 1 or not 0.0 <= self.max_warm_loss < 1.0:
      raise ValueError("ColdStartConfig.top_beams must be >= 1 and max_warm_loss in [0, 1)")
    if self.tiers < 1 or any(w <= 0.0 for w in self.tier_weights):
      raise ValueError(f"ColdStartConfig.tiers={self.tiers}, tier_weights={self.tier_weights}: "
                       "tiers >= 1 and weights > 0")


# The keys of a chosen placement: a gate (share of users, min_similarity, position) or hit-rate
# tiers (weight, tier_edges, tier_positions; position None).
PLACEMENT_KEYS = ("share", "min_similarity", "position", "weight", "tier_edges", "tier_positions")
SETTINGS_FILE = "cold_start"  # MODEL_DIR/results/cold_start.json: the settings chosen on validation
# Where a run chose none (its data had no cold validation target, e.g. one's own catalog
# whose new items were never a target): the history's content alone, one new item, last.
# min_similarity None: every user gets the new item.
FALLBACK = {"knn_query": "last", "blend": 1.0, "position": K - 1, "slots": 1, "top_beams": 5,
            "min_similarity": None,
            "chosen_on": "nothing (fallback: the last item's content, one new item, last)"}


def beam_queries(unit_vectors: np.ndarray, ranked: np.ndarray, top_beams: int) -> np.ndarray:
  """Unit vectors [n, d]: the 1 / (1 + rank)-weighted mean of each list's first `top_beams`
  items (-1 entries skipped; a list without items gives zeros)."""
  out = np.zeros((len(ranked), unit_vectors.shape[1]), np.float32)
  for u, row in enumerate(np.asarray(ranked)):
    items = row[row >= 0][:top_beams]
    if len(items):
      out[u] = (1.0 / (1.0 + np.arange(len(items)))) @ unit_vectors[items]
  return baselines.normalized(out)


def beam_knn(item_vectors: np.ndarray, histories: Sequence[np.ndarray], ranked: np.ndarray,
             cold_items: np.ndarray, blend: float, query: str, top_beams: int,
             k: int) -> tuple[np.ndarray, np.ndarray]:
  """The k cold items [n, k] nearest normalize(blend * content query + (1 - blend) * beam
  query) (cosine; `baselines.knn_queries`, `beam_queries`), and their similarities [n, k]."""
  v = baselines.normalized(item_vectors)
  q = (blend * baselines.knn_queries(v, histories, query)
       + (1.0 - blend) * beam_queries(v, ranked, top_beams))
  q = baselines.normalized(q)
  cold = np.asarray(cold_items, np.int64)
  sim = q @ v[cold].T
  order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
  return cold[order], np.take_along_axis(sim, order, axis=1)


def gated_positions(similarity: np.ndarray, position: int,
                    min_similarity: float | None) -> np.ndarray:
  """Each user's insertion rank [n]: `position` where the nearest cold item's similarity
  (similarity [n, k], best first) reaches min_similarity (None: everyone), else -1 (none)."""
  n = len(similarity)
  if min_similarity is None:
    return np.full(n, position, np.int64)
  return np.where(similarity[:, 0] >= min_similarity, position, -1).astype(np.int64)


def tiered_positions(similarity: np.ndarray, edges, positions) -> np.ndarray:
  """Each user's insertion rank [n]: positions[t] for the tier t that the nearest cold item's
  similarity falls in (edges: the ascending similarities between tiers)."""
  tier = np.searchsorted(np.asarray(edges, np.float64), similarity[:, 0], side="right")
  return np.asarray(positions, np.int64)[tier]


def user_positions(similarity: np.ndarray, settings: dict) -> np.ndarray:
  """Each user's insertion rank [n] under chosen settings: by hit-rate tier where they hold
  'tier_edges', else the gate (position, min_similarity)."""
  if settings.get("tier_edges") is not None:
    return tiered_positions(similarity, settings["tier_edges"], settings["tier_positions"])
  return gated_positions(similarity, settings["position"], settings.get("min_similarity"))


def increasing(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
  """The weighted least-squares non-decreasing fit of values (pool adjacent violators); a
  zero-weight value takes its neighbours' level."""
  blocks = []  # [level, weight, length]
  for v, w in zip(np.asarray(values, float), np.asarray(weights, float)):
    blocks.append([v if w > 0 else (blocks[-1][0] if blocks else 0.0), w, 1])
    while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
      (v2, w2, n2), (v1, w1, n1) = blocks.pop(), blocks.pop()
      level = (v1 * w1 + v2 * w2) / (w1 + w2) if w1 + w2 > 0 else min(v1, v2)
      blocks.append([level, w1 + w2, n1 + n2])
  return np.concatenate([np.full(n, v) for v, _, n in blocks]) if blocks else np.zeros(0)


def hit_rates(ranked: np.ndarray, nearest: np.ndarray, similarity: np.ndarray,
              targets: np.ndarray, tiers: int = 10
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Over all users: the share whose list's item at rank r (0..K-1) is their target [K]; the
  share whose nearest cold item (nearest [n], its similarity [n]) is, per tier of equal-count
  similarity quantiles, least similar first [tiers], and that share made non-decreasing in the
  similarity (`increasing`; a more similar cold item is no less likely the target) [tiers];
  and the edges between tiers [tiers - 1]."""
  targets = np.asarray(targets)
  beam = np.array([(ranked[:, r] == targets).mean() for r in range(K)])
  edges = np.quantile(similarity, np.linspace(0.0, 1.0, tiers + 1))[1:-1]
  tier = np.searchsorted(edges, similarity, side="right")
  hit = nearest == targets
  counts = np.bincount(tier, minlength=tiers)
  cold = np.bincount(tier, weights=hit, minlength=tiers) / np.maximum(counts, 1)
  return beam, cold, increasing(cold, counts), edges


def placement(beam: np.ndarray, cold: np.ndarray, weight: float = 1.0) -> np.ndarray:
  """Per tier, the rank that ranking by the chance of a hit gives its cold item (its chance
  times `weight`): the first rank whose item hits less often, -1 (left out) where none does."""
  return np.array([next((r for r, b in enumerate(beam) if weight * c > b), -1) for c in cold],
                  np.int64)


def insert_at(ranked: np.ndarray, extra: np.ndarray, position) -> np.ndarray:
  """Each list with `extra`'s items [n, m] placed from rank `position` on (one rank for
  all, or one per list [n]; -1: that list gets none), the rest of the list after them in its
  order (an item already in the list keeps its first place); [n, width + m], -1 pads."""
  ranked, extra = np.asarray(ranked), np.asarray(extra)
  positions = np.broadcast_to(np.asarray(position, np.int64), (len(ranked),))
  out = np.full((len(ranked), ranked.shape[1] + extra.shape[1]), -1, np.int64)
  for u in range(len(ranked)):
    row = [i for i in ranked[u].tolist() if i >= 0]
    p = int(positions[u])
    added = [i for i in extra[u].tolist() if i >= 0] if p >= 0 else []
    merged, seen = [], set()
    for i in row[:max(p, 0)] + added + row[max(p, 0):]:
      if i not in seen:
        seen.add(i)
        merged.append(i)
    out[u, :len(merged)] = merged
  return out


def group_users(targets: np.ndarray, is_cold: np.ndarray) -> dict[str, np.ndarray]:
  """The user indices of each of GROUPS."""
  cold = is_cold[np.asarray(targets)]
  return {"cold targets": np.flatnonzero(cold), "warm targets": np.flatnonzero(~cold),
          "all users": np.arange(len(targets))}


def scored(lists: np.ndarray, is_cold: np.ndarray, epsilon: float,
           histories: Sequence[np.ndarray] | None = None) -> np.ndarray:
  """The capped top-K lists [n, K] that the table scores: the user's history left out when
  `histories` is given (the EXCLUDE_HISTORY protocol), then at most ceil(epsilon * K) cold."""
  if histories is not None:
    lists = metrics_lib.without_history(lists, histories, lists.shape[1])
  return metrics_lib.cap_cold(lists, is_cold, K, epsilon)


def ndcg_of_users(lists: np.ndarray, targets: np.ndarray, users: np.ndarray) -> float:
  """Mean NDCG@K of the rows `users` of the lists (0 for no user)."""
  if not len(users):
    return 0.0
  return float(metrics_lib.ndcg_at_k(lists[users], np.asarray(targets)[users], K))


def recall_of_users(lists: np.ndarray, targets: np.ndarray, users: np.ndarray) -> float:
  """Mean Recall@K of the rows `users` of the lists (0 for no user)."""
  if not len(users):
    return 0.0
  return float(metrics_lib.recall_at_k(lists[users], np.asarray(targets)[users], K))


@dataclasses.dataclass
class Split:
  """One split's users as the table needs them: histories, targets, TIGER's ranked lists."""
  histories: list
  targets: np.ndarray
  ranked: np.ndarray


def choose(config: ColdStartConfig, item_vectors: np.ndarray, val: Split, is_cold: np.ndarray,
           query: str, epsilon: float, exclude_history: bool) -> dict:
  """On validation: the blend (best cold-target NDCG@K, cold items at rank 0), then the
  placement (best cold-target NDCG@K among the candidates, every (gate, rank) pair and every
  hit-rate weight, that keep warm-target Recall@K and NDCG@K within max_warm_loss of the beams
  alone; ties: all users' NDCG@K; where none does, the one that costs warm targets least);
  with every candidate's scores. A gate's share of users becomes min_similarity, the
  similarity of the nearest cold item that share of validation users reaches."""
  cold_items = np.flatnonzero(is_cold)
  groups = group_users(val.targets, is_cold)
  excluded = val.histories if exclude_history else None
  slots = max(1, math.ceil(epsilon * K))
  cold_users = groups["cold targets"]
  cold_histories = [val.histories[u] for u in cold_users]
  cold_excluded = None if excluded is None else cold_histories
  every_cold_user = np.arange(len(cold_users))
  by_blend = {}
  for blend in config.blends:
    extra, _ = beam_knn(item_vectors, cold_histories, val.ranked[cold_users], cold_items, blend,
                        query, config.top_beams, slots)
    lists = insert_at(val.ranked[cold_users], extra, 0)
    by_blend[blend] = ndcg_of_users(scored(lists, is_cold, epsilon, cold_excluded),
                            val.targets[cold_users], every_cold_user)
  blend = max(config.blends, key=lambda b: (by_blend[b], b))  # ties: more content
  knn = scored(baselines.content_knn(item_vectors, cold_histories, K + 10, query=query),
               is_cold, epsilon, cold_excluded)
  knn_cold = ndcg_of_users(knn, val.targets[cold_users], every_cold_user)
  extra, similarity = beam_knn(item_vectors, val.histories, val.ranked, cold_items, blend, query,
                               config.top_beams, slots)
  base = scored(val.ranked, is_cold, epsilon, excluded)
  warm = groups["warm targets"]
  beams = {"recall": recall_of_users(base, val.targets, warm),
           "ndcg": ndcg_of_users(base, val.targets, warm)}
  candidates = {
      **_gate_candidates(config, val, extra, similarity, groups, is_cold, epsilon, excluded),
      **_tier_candidates(config, val, extra, similarity, base, groups, is_cold, epsilon, excluded)}
  best, allowed = _pick(candidates, beams, config.max_warm_loss)
  placed = {k: best[k] for k in PLACEMENT_KEYS if k in best}
  return {"blend": blend, **placed, "slots": slots, "within_warm_allowance": allowed,
          "validation": {"cold-target ndcg by blend": by_blend, "warm targets of the beams": beams,
                         "content-KNN cold-target ndcg": knn_cold, "candidates": candidates}}


def _gate_candidates(config: ColdStartConfig, val: Split, extra: np.ndarray,
                     similarity: np.ndarray, groups: dict, is_cold: np.ndarray, epsilon: float,
                     excluded) -> dict[str, dict]:
  """Every (gate, rank) of the config on validation: its similarity threshold, and the cold-
  and warm-target and all-user scores of the lists it makes."""
  candidates = {}
  for share in config.gates:
    threshold = None if share >= 1.0 else float(np.quantile(similarity[:, 0], 1.0 - share))
    for p in config.positions:
      lists = scored(insert_at(val.ranked, extra, gated_positions(similarity, p, threshold)),
                     is_cold, epsilon, excluded)
      candidates[f"{share:.0%} of users, rank {p}"] = {
          "share": share, "min_similarity": threshold, "position": p,
          "cold targets: ndcg": ndcg_of_users(lists, val.targets, groups["cold targets"]),
          "warm targets: recall": recall_of_users(lists, val.targets, groups["warm targets"]),
          "warm targets: ndcg": ndcg_of_users(lists, val.targets, groups["warm targets"]),
          "all users: ndcg": ndcg_of_users(lists, val.targets, groups["all users"])}
  return candidates


def _tier_candidates(config: ColdStartConfig, val: Split, extra: np.ndarray,
                     similarity: np.ndarray, base: np.ndarray, groups: dict, is_cold: np.ndarray,
                     epsilon: float, excluded) -> dict[str, dict]:
  """The placements by hit rate, one per weight of the config: each user's rank from the hit
  rates (`hit_rates`, `placement`) of the other half of the validation users (a fixed random
  half), so that the scores are not fitted to the users they score; the settings kept (tier
  edges and ranks) come from all of them."""
  half = np.random.default_rng(0).permutation(len(val.targets)) % 2
  nearest, top = extra[:, 0], similarity[:, :1]
  folds = []  # per half: its users, and the rates of the other half (the same for every weight)
  for fold in (0, 1):
    fit, apply = half != fold, half == fold
    folds.append((apply, hit_rates(base[fit], nearest[fit], top[fit, 0], val.targets[fit],
                                   config.tiers)))
  beam, _, cold, edges = hit_rates(base, nearest, top[:, 0], val.targets, config.tiers)
  candidates = {}
  for weight in config.tier_weights:
    positions = np.full(len(val.targets), -1, np.int64)
    for apply, (fold_beam, _, fold_cold, fold_edges) in folds:
      positions[apply] = tiered_positions(top[apply], fold_edges,
                                          placement(fold_beam, fold_cold, weight))
    lists = scored(insert_at(val.ranked, extra, positions), is_cold, epsilon, excluded)
    candidates[f"hit-rate tiers, weight {weight}"] = {
        "share": float((positions >= 0).mean()), "min_similarity": None, "position": None,
        "weight": weight, "tier_edges": [float(e) for e in edges],
        "tier_positions": [int(r) for r in placement(beam, cold, weight)],
        "cold targets: ndcg": ndcg_of_users(lists, val.targets, groups["cold targets"]),
        "warm targets: recall": recall_of_users(lists, val.targets, groups["warm targets"]),
        "warm targets: ndcg": ndcg_of_users(lists, val.targets, groups["warm targets"]),
        "all users: ndcg": ndcg_of_users(lists, val.targets, groups["all users"])}
  return candidates


def _pick(candidates: dict[str, dict], beams: dict, max_warm_loss: float) -> tuple[dict, bool]:
  """The candidate with the best cold-target NDCG among those keeping warm-target recall and
  NDCG within max_warm_loss of the beams' (ties: all users' NDCG, fewer users, a later rank),
  and True; where none does, the one that keeps the most, and False."""
  def kept(c):  # the share of the beams' warm-target recall and NDCG a candidate keeps
    return min(c["warm targets: recall"] / max(beams["recall"], 1e-12),
               c["warm targets: ndcg"] / max(beams["ndcg"], 1e-12))

  allowed = [c for c in candidates.values() if kept(c) >= 1.0 - max_warm_loss]
  if allowed:
    return max(allowed, key=lambda c: (c["cold targets: ndcg"], c["all users: ndcg"],
                                       -c["share"], K if c["position"] is None
                                       else c["position"])), True
  return max(candidates.values(), key=lambda c: (kept(c), c["cold targets: ndcg"])), False


def cold_start_rows(config: ColdStartConfig, item_vectors: np.ndarray, ids: np.ndarray,
                    is_cold: np.ndarray, train_sequences: Sequence[np.ndarray], val: Split,
                    test: Split, epsilon: float, prefix_len: int | None = None,
                    exclude_history: bool = False) -> dict[str, dict]:
  """The results rows, one per (model, group), on the test split; each row gives its group's
  users, and the chosen settings (KNN query, blend, gate, rank) where a row has them. The
  mechanism's rows also give paired differences (`metrics.paired_difference`) on R@K and N@K:
  on cold targets against content-KNN, on warm targets and all users against the beams alone
  (keys 'vs <model>: <metric>')."""
  num_items = len(is_cold)
  val_cold = group_users(val.targets, is_cold)["cold targets"]
  if not len(val_cold):
    raise ValueError("no validation user's target is a cold item: nothing to choose the "
                     "content-KNN query and the cold-start mechanism on")
  query, query_scores = baselines.choose_knn_query(
      item_vectors, [val.histories[u] for u in val_cold], val.targets[val_cold], k=K)
  width = K + (max(len(h) for h in test.histories) if exclude_history else 0)
  prefix_len = prefix_len or ids.shape[1] - 1
  lists = {
      f"content-KNN ({query})": baselines.content_knn(item_vectors, test.histories, width + 10,
                                                      query=query),
      "most-popular": baselines.most_popular(train_sequences, num_items, test.histories, width),
      baselines.LAST_ITEMS_ROW: baselines.item_transition_last_items(
          train_sequences, num_items, test.histories, width),
      "TIGER beams": test.ranked,
      f"TIGER + {prefix_len}-code prefix rule": metrics_lib.add_cold_by_prefix(
          test.ranked, ids, is_cold, prefix_len)}
  settings = {f"content-KNN ({query})": {"knn_query": query, "knn_query_validation": query_scores}}
  if config.mechanism == "beam_knn":
    chosen = choose(config, item_vectors, val, is_cold, query, epsilon, exclude_history)
    extra, similarity = beam_knn(item_vectors, test.histories, test.ranked,
                                 np.flatnonzero(is_cold), chosen["blend"], query,
                                 config.top_beams, chosen["slots"])
    placed = (f"{chosen['share']:.0%} of users at rank {chosen['position']}"
              if chosen.get("tier_edges") is None else
              f"ranks by hit rate x{chosen['weight']}, {chosen['share']:.0%} of users")
    name = f"TIGER + beam-KNN (blend {chosen['blend']}, {placed})"
    positions = user_positions(similarity, chosen)
    lists[name] = insert_at(test.ranked, extra, positions)
    settings[name] = {"knn_query": query, "top_beams": config.top_beams, **chosen,
                      "test users given a cold item": int((positions >= 0).sum())}
  groups = group_users(test.targets, is_cold)
  excluded = test.histories if exclude_history else None
  rows, capped = {}, {}
  for model, ranked in lists.items():
    capped[model] = scored(ranked, is_cold, epsilon, excluded)
    for group, users in groups.items():
      if group == "cold targets" and model in ("most-popular", baselines.LAST_ITEMS_ROW):
        continue  # they never return a cold item
      rows[f"{model}, {group} (eps={epsilon})"] = {
          **metrics_lib.retrieval_metrics(capped[model][users], test.targets[users], ks=(5, K)),
          "users": int(len(users)), "cold_items": int(is_cold.sum()),
          **{k: v for k, v in settings.get(model, {}).items()  # validation's scores: once
             if k != "validation" or group == "cold targets"}}
  mechanism = [m for m in lists if m.startswith("TIGER + beam-KNN")]
  for model in mechanism:  # paired over each group's users: against KNN on cold targets, and
    for group, other in (("cold targets", f"content-KNN ({query})"),  # against the beams alone
                         ("warm targets", "TIGER beams"), ("all users", "TIGER beams")):
      users = groups[group]
      if len(users) < 2:
        continue
      row = rows[f"{model}, {group} (eps={epsilon})"]
      for m, fn in ((f"recall@{K}", metrics_lib.user_recall), (f"ndcg@{K}", metrics_lib.user_ndcg)):
        row[f"vs {other}: {m}"] = metrics_lib.paired_difference(
            fn(capped[model][users], test.targets[users], K),
            fn(capped[other][users], test.targets[users], K))
  return rows


def chosen_settings(rows: dict[str, dict]) -> dict | None:
  """The beam-KNN settings that `cold_start_rows` chose (for SETTINGS_FILE), or None."""
  for name, row in rows.items():
    if name.startswith("TIGER + beam-KNN") and "blend" in row:
      return {"knn_query": row["knn_query"], "blend": row["blend"], "slots": row["slots"],
              "top_beams": row.get("top_beams", 5), "min_similarity": None,
              **{k: row[k] for k in PLACEMENT_KEYS if k in row}, "chosen_on": "validation"}
  return None


def with_new_items(item_vectors: np.ndarray, histories: Sequence[np.ndarray],
                   ranked: np.ndarray, new_items: np.ndarray, settings: dict) -> np.ndarray:
  """TIGER's lists [n, w] with `settings['slots']` new items (beam-KNN, `settings` as
  SETTINGS_FILE holds them) placed by `user_positions`: at the rank of the user's hit-rate tier
  where the settings hold tiers, else at `settings['position']` for the users whose nearest new
  item reaches `settings['min_similarity']` (absent or None: every user); [n, w + slots]."""
  extra, similarity = beam_knn(item_vectors, histories, ranked, new_items, settings["blend"],
                               settings["knn_query"], settings["top_beams"], settings["slots"])
  return insert_at(ranked, extra, user_positions(similarity, settings))
