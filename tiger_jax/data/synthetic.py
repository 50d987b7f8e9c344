"""A synthetic catalog and users with real structure: the embedded default.

Items sit in a three-level category tree and belong to brands that sell in a
few top categories; titles and prices follow from both. Users favour a few
top categories and brands, and their histories follow sequential patterns
(each leaf category leads to a next one, e.g. cleanser -> toner ->
moisturiser), so a model that reads item content and order has something to
learn that popularity alone does not give. Deterministic under a seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tiger_jax.data.dataset import Dataset

# top category -> sub category -> leaf nouns (a leaf is one noun).
TREE: dict[str, dict[str, list[str]]] = {
    "Skin Care": {"Face": ["cleanser", "toner", "serum", "moisturizer"],
                  "Body": ["body lotion", "body scrub", "body wash"],
                  "Sun": ["sunscreen", "after-sun gel"]},
    "Hair Care": {"Wash": ["shampoo", "conditioner", "hair mask"],
                  "Styling": ["hair spray", "styling gel", "hair oil"],
                  "Tools": ["hair dryer", "flat iron", "round brush"]},
    "Makeup": {"Face": ["foundation", "concealer", "blush", "setting powder"],
               "Eyes": ["mascara", "eyeliner", "eyeshadow palette"],
               "Lips": ["lipstick", "lip gloss", "lip liner"]},
    "Fragrance": {"Women": ["eau de parfum", "body mist"],
                  "Men": ["cologne", "aftershave balm"]},
    "Toys": {"Building": ["building blocks", "magnetic tiles", "marble run"],
             "Games": ["board game", "card game", "jigsaw puzzle"],
             "Outdoor": ["water blaster", "kite", "jump rope"]},
    "Sports": {"Fitness": ["yoga mat", "resistance band", "dumbbell set"],
               "Camping": ["tent", "sleeping bag", "camp stove"],
               "Cycling": ["bike helmet", "bike light", "water bottle"]},
}
ADJECTIVES = ["gentle", "hydrating", "classic", "premium", "travel size", "organic", "deluxe",
              "lightweight", "long lasting", "natural", "professional", "compact", "vibrant",
              "ultra", "everyday", "sensitive", "matte", "glossy", "eco", "family"]
SYLLABLES = ["lu", "ma", "vel", "ora", "kin", "sol", "bri", "no", "zen", "ta", "ri", "ex",
             "ar", "quo", "mi", "del", "fa", "pe", "ion", "sa"]


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
  num_items: int = 1200
  num_users: int = 3000
  num_brands: int = 40
  min_length: int = 5
  max_length: int = 30
  mean_length: float = 9.0
  p_pattern: float = 0.55  # next item follows its leaf's sequential pattern
  p_same_leaf: float = 0.15  # next item from the same leaf
  p_same_brand: float = 0.5  # a followed pattern stays with the user's brand
  zipf: float = 1.1  # item popularity exponent
  seed: int = 0


def _leaves() -> list[tuple[str, str, str]]:
  return [(top, sub, leaf) for top, subs in TREE.items() for sub, leaves in subs.items()
          for leaf in leaves]


def generate(config: SyntheticConfig = SyntheticConfig()) -> Dataset:
  """Builds the synthetic dataset (items with text and attributes, user sequences)."""
  rng = np.random.default_rng(config.seed)
  leaves = _leaves()
  tops = list(TREE)
  leaf_top = np.array([tops.index(t) for t, _, _ in leaves])
  # Sequential pattern: each leaf leads to the next leaf of its sub category
  # (cycling), and the last leaf of a sub category to the next sub category.
  next_leaf = np.array([(i + 1) if i + 1 < len(leaves) and leaves[i + 1][0] == leaves[i][0]
                        else min(j for j in range(len(leaves)) if leaves[j][0] == leaves[i][0])
                        for i in range(len(leaves))])

  brand_names = sorted({("".join(rng.choice(SYLLABLES, size=rng.integers(2, 4)))).title()
                        for _ in range(config.num_brands * 3)})[:config.num_brands]
  brand_tops = [rng.choice(len(tops), size=rng.integers(1, 3), replace=False)
                for _ in brand_names]

  # Items: a leaf, a brand selling in the leaf's top category, a title, a price.
  item_leaf = rng.integers(0, len(leaves), size=config.num_items)
  item_brand = np.empty(config.num_items, np.int64)
  texts, attributes = [], []
  leaf_price = rng.lognormal(2.5, 0.6, size=len(leaves))
  attr_vocab: dict[str, int] = {}
  for i, leaf in enumerate(item_leaf):
    sellers = [b for b, ts in enumerate(brand_tops) if leaf_top[leaf] in ts]
    brand = int(rng.choice(sellers)) if sellers else int(rng.integers(len(brand_names)))
    item_brand[i] = brand
    top, sub, noun = leaves[leaf]
    adjs = rng.choice(ADJECTIVES, size=2, replace=False)
    size = int(rng.choice([1, 2, 4, 8, 12, 16]))
    price = leaf_price[leaf] * rng.lognormal(0.0, 0.25)
    title = f"{brand_names[brand]} {adjs[0]} {adjs[1]} {noun}, {size} pack"
    texts.append(f"Title: {title}; Price: {price:.2f}; Categories: {top}, {sub}, {noun}; "
                 f"Brand: {brand_names[brand]}")
    attributes.append([attr_vocab.setdefault(a, len(attr_vocab) + 1) for a in
                       (f"brand:{brand_names[brand]}", f"sub:{top}/{sub}", f"leaf:{noun}")])

  popularity = 1.0 / np.arange(1, config.num_items + 1) ** config.zipf
  popularity = popularity[rng.permutation(config.num_items)]
  items_by_leaf = [np.flatnonzero(item_leaf == l) for l in range(len(leaves))]
  items_by_top = [np.flatnonzero(leaf_top[item_leaf] == t) for t in range(len(tops))]

  def draw(candidates: np.ndarray, seen: set[int], prefer_brand: int | None = None) -> int | None:
    cands = np.array([c for c in candidates if c not in seen], np.int64)
    if cands.size == 0:
      return None
    if prefer_brand is not None:
      same = cands[item_brand[cands] == prefer_brand]
      if same.size and rng.random() < config.p_same_brand:
        cands = same
    p = popularity[cands] / popularity[cands].sum()
    return int(rng.choice(cands, p=p))

  sequences = []
  for _ in range(config.num_users):
    user_tops = rng.choice(len(tops), size=rng.integers(1, 3), replace=False)
    pool = np.concatenate([items_by_top[t] for t in user_tops])
    length = int(np.clip(config.min_length + rng.geometric(1.0 / (config.mean_length - config.min_length + 1)) - 1,
                         config.min_length, config.max_length))
    seq: list[int] = []
    seen: set[int] = set()
    item = draw(pool, seen)
    while item is not None and len(seq) < length:
      seq.append(item)
      seen.add(item)
      u = rng.random()
      leaf = item_leaf[item]
      if u < config.p_pattern:
        nxt = draw(items_by_leaf[next_leaf[leaf]], seen, prefer_brand=int(item_brand[item]))
      elif u < config.p_pattern + config.p_same_leaf:
        nxt = draw(items_by_leaf[leaf], seen)
      else:
        nxt = None
      item = nxt if nxt is not None else draw(pool, seen)
    sequences.append(np.asarray(seq, np.int32))

  # Keep the items that anyone interacted with, re-indexed densely (as the real data does).
  used = np.unique(np.concatenate(sequences))
  remap = np.full(config.num_items, -1, np.int32)
  remap[used] = np.arange(used.size, dtype=np.int32)
  return Dataset(
      name="synthetic",
      user_ids=[f"user_{u:06d}" for u in range(config.num_users)],
      item_ids=[f"item_{i:06d}" for i in used],
      sequences=[remap[s] for s in sequences],
      item_text=[texts[i] for i in used],
      item_attributes=[attributes[i] for i in used],
      item_categories=[[leaves[item_leaf[i]][2]] for i in used],
      num_dropped_users=0)
