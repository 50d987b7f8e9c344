"""Reader for the raw McAuley-lab Amazon 2014 files.

`reviews_<Category>_5.json.gz`: one JSON object a line (reviewerID, asin,
unixReviewTime, ...). `meta_<Category>.json.gz`: one Python-literal dict a
line (asin, title, price, brand, categories, ...), parsed with
`ast.literal_eval`, never `eval`.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import re
from typing import Any, Iterator

import numpy as np

from tiger_jax.data.dataset import Dataset, DataError, drop_short_users
from tiger_jax.data.item_meta import check_record, item_text, leaf_categories

CATEGORIES = {"beauty": "Beauty", "sports": "Sports_and_Outdoors", "toys": "Toys_and_Games"}
REVIEW_FIELDS = ("reviewerID", "asin", "unixReviewTime")
_ASIN = re.compile(r"""["']asin["']\s*:\s*["']([^"']+)["']""")


def category_name(category: str) -> str:
  """'beauty' or 'Beauty' -> 'Beauty'; an unknown name is an error."""
  if category in CATEGORIES.values():
    return category
  if category.lower() in CATEGORIES:
    return CATEGORIES[category.lower()]
  raise DataError(f"unknown category {category!r}; expected one of "
                  f"{sorted(CATEGORIES) + sorted(CATEGORIES.values())}")


def review_path(data_dir: str, category: str) -> str:
  return os.path.join(data_dir, f"reviews_{category_name(category)}_5.json.gz")


def meta_path(data_dir: str, category: str) -> str:
  return os.path.join(data_dir, f"meta_{category_name(category)}.json.gz")


def _lines(path: str) -> Iterator[tuple[int, str]]:
  if not os.path.exists(path):
    raise DataError(f"{path}: file not found")
  opener = gzip.open if path.endswith(".gz") else open
  empty = True
  try:
    with opener(path, "rt", encoding="utf-8") as f:
      for lineno, line in enumerate(f, 1):
        if line.strip():
          empty = False
          yield lineno, line
  except (OSError, EOFError, UnicodeDecodeError) as e:
    raise DataError(f"{path}: unreadable ({e})") from None
  if empty:
    raise DataError(f"{path}: empty file")


def read_reviews(path: str) -> list[tuple[str, str, int]]:
  """(reviewerID, asin, unixReviewTime) of every review, in file order."""
  out = []
  for lineno, line in _lines(path):
    try:
      obj = json.loads(line)
    except json.JSONDecodeError as e:
      raise DataError(f"{path}: line {lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(obj, dict):
      raise DataError(f"{path}: line {lineno}: expected a JSON object")
    for field in REVIEW_FIELDS:
      if field not in obj:
        raise DataError(f"{path}: line {lineno}: missing field {field!r}")
    try:
      t = int(obj["unixReviewTime"])
    except (TypeError, ValueError):
      raise DataError(f"{path}: line {lineno}: field 'unixReviewTime' is not an integer") from None
    out.append((str(obj["reviewerID"]), str(obj["asin"]), t))
  return out


def read_meta(path: str, keep: set[str] | None = None) -> dict[str, dict[str, Any]]:
  """asin -> metadata dict, for the asins in `keep` (all when None)."""
  meta = {}
  for lineno, line in _lines(path):
    # Skip the items we do not need without parsing them (most of a meta file).
    m = _ASIN.search(line)
    if keep is not None and m and m.group(1) not in keep:
      continue
    try:
      obj = ast.literal_eval(line.strip())
    except (ValueError, SyntaxError):
      try:  # some mirrors ship strict JSON instead
        obj = json.loads(line)
      except json.JSONDecodeError:
        raise DataError(f"{path}: line {lineno}: not a Python-literal or JSON dict") from None
    if not isinstance(obj, dict):
      raise DataError(f"{path}: line {lineno}: expected a dict")
    if "asin" not in obj:
      raise DataError(f"{path}: line {lineno}: missing field 'asin'")
    check_record(path, lineno, obj)  # field types: asin, title, brand, price, categories
    if keep is None or obj["asin"] in keep:
      meta[obj["asin"]] = obj
  return meta


def item_attribute_names(meta: dict[str, Any]) -> list[str]:
  """Brand and category names, the raw-data counterpart of the preprocessed attributes."""
  names = []
  if meta.get("brand"):
    names.append(f"brand:{meta['brand']}")
  for path in meta.get("categories") or []:
    for c in (path[1:] if isinstance(path, (list, tuple)) else [path]):
      if f"category:{c}" not in names:
        names.append(f"category:{c}")
  return names


def read(data_dir: str, category: str) -> Dataset:
  """Reads the raw reviews + metadata of one category from `data_dir`.

  Users and items are indexed in order of first appearance in time order.
  """
  name = category_name(category)
  reviews = read_reviews(review_path(data_dir, name))
  # Stable sort by time: ties keep their order in the file.
  order = sorted(range(len(reviews)), key=lambda i: reviews[i][2])
  user_index: dict[str, int] = {}
  item_index: dict[str, int] = {}
  rows: list[list[int]] = []
  for i in order:
    user, asin, _ = reviews[i]
    if user not in user_index:
      user_index[user] = len(rows)
      rows.append([])
    if asin not in item_index:
      item_index[asin] = len(item_index)
    rows[user_index[user]].append(item_index[asin])
  item_ids = list(item_index)
  meta_file = meta_path(data_dir, name)
  texts, attrs, leaves = None, None, None
  if os.path.exists(meta_file):
    meta = read_meta(meta_file, keep=set(item_ids))
    texts = [item_text(meta.get(a, {"title": a})) for a in item_ids]
    leaves = [leaf_categories(meta.get(a, {})) for a in item_ids]
    vocab: dict[str, int] = {}
    attrs = [[vocab.setdefault(n, len(vocab) + 1) for n in item_attribute_names(meta.get(a, {}))]
             for a in item_ids]
  user_ids, sequences, dropped = drop_short_users(list(user_index), [np.asarray(r, np.int32) for r in rows])
  return Dataset(name=name.lower(), user_ids=user_ids, item_ids=item_ids, sequences=sequences,
                 item_text=texts, item_attributes=attrs, item_categories=leaves,
                 num_dropped_users=dropped)
