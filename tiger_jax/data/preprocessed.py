"""Reader for the S3-Rec / P5 preprocessed Amazon 2014 folders.

A folder holds `sequences.txt` (`user item item ...`, ids from 1, items in
chronological order), `item2attributes.json` (`{"item": [attr, ...]}`) and
optionally `datamaps.json` (`{"id2user": ..., "id2item": ...}`) and
`item_meta.jsonl` (`{"asin", "title", "categories"}` a line, keyed by the
ASINs of `datamaps.json`). With item_meta.jsonl the items get text, built as
the raw reader builds it (`item_meta.item_text`); without it, attributes only.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np

from tiger_jax.data import item_meta
from tiger_jax.data.dataset import Dataset, DataError, drop_short_users


def _read_json(path: str) -> dict:
  try:
    with open(path, encoding="utf-8") as f:
      obj = json.load(f)
  except json.JSONDecodeError as e:
    raise DataError(f"{path}: line {e.lineno}: invalid JSON ({e.msg})") from None
  except UnicodeDecodeError as e:
    raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
  except RecursionError:
    raise DataError(f"{path}: JSON nested too deeply") from None
  if not isinstance(obj, dict):
    raise DataError(f"{path}: expected a JSON object at the top level")
  return obj


def read_sequences(path: str) -> tuple[list[int], list[list[int]], list[int]]:
  """Parses sequences.txt into user ids, item-id lists (1-based ids) and their line numbers."""
  if not os.path.exists(path):
    raise DataError(f"{path}: file not found")
  users, rows, linenos = [], [], []
  with open(path, encoding="utf-8", errors="replace") as f:  # bad bytes: a non-integer field
    for lineno, line in enumerate(f, 1):
      fields = line.split()
      if not fields:
        continue
      try:
        ids = [int(x) for x in fields]
      except ValueError:
        bad = next(x for x in fields if not x.lstrip("-").isdigit())
        raise DataError(f"{path}: line {lineno}: field {bad!r} is not an integer id") from None
      if len(ids) < 2:
        raise DataError(f"{path}: line {lineno}: a user with no items")
      if min(ids) < 1:
        raise DataError(f"{path}: line {lineno}: ids start from 1, got {min(ids)}")
      users.append(ids[0])
      rows.append(ids[1:])
      linenos.append(lineno)
  if not users:
    raise DataError(f"{path}: empty file, no users")
  return users, rows, linenos


def _first_line(rows: list[list[int]], linenos: list[int], item: int) -> int:
  """The line of sequences.txt where `item` first appears."""
  return next(n for n, r in zip(linenos, rows) if item in r)


def read(data_dir: str, name: str | None = None) -> Dataset:
  """Reads a preprocessed folder (e.g. ../shared/data/amazon2014/beauty)."""
  name = name or os.path.basename(os.path.normpath(data_dir))
  seq_path = os.path.join(data_dir, "sequences.txt")
  attr_path = os.path.join(data_dir, "item2attributes.json")
  maps_path = os.path.join(data_dir, "datamaps.json")
  users, rows, linenos = read_sequences(seq_path)

  num_items = max(max(r) for r in rows)
  used = {i for r in rows for i in r}  # item ids the sequences use
  attributes: list[list[int]] | None = None
  if os.path.exists(attr_path):
    raw = _read_json(attr_path)
    attributes = [[] for _ in range(num_items)]
    for key, value in raw.items():
      if not key.isdigit() or not 1 <= int(key) <= num_items:
        raise DataError(f"{attr_path}: item key {key!r} is not an item id in 1..{num_items}")
      if not isinstance(value, list) or not all(isinstance(a, int) for a in value):
        raise DataError(f"{attr_path}: item {key}: attributes must be a list of integers")
      attributes[int(key) - 1] = value
    uncovered = sorted(used - {int(k) for k in raw})
    if uncovered:
      raise DataError(f"{seq_path}: line {_first_line(rows, linenos, uncovered[0])}: item id "
                      f"{uncovered[0]} has no entry in {attr_path} ({len(uncovered)} of the "
                      f"{len(used)} item ids have none); use the files of one folder")

  item_ids = [str(i) for i in range(1, num_items + 1)]
  user_ids = [str(u) for u in users]
  if os.path.exists(maps_path):
    maps = _read_json(maps_path)
    for field in ("id2user", "id2item"):
      if field not in maps:
        raise DataError(f"{maps_path}: missing field {field!r}")
      if not isinstance(maps[field], dict):
        raise DataError(f"{maps_path}: field {field!r} must be an object of id -> original id")
    missing = [i for i in item_ids if i not in maps["id2item"] and int(i) in used]
    if missing:
      raise DataError(f"{maps_path}: id2item has no entry for item id {missing[0]} (first in "
                      f"{seq_path} line {_first_line(rows, linenos, int(missing[0]))}; {len(missing)} of "
                      f"{len(used)} item ids missing); use the datamaps.json of the same folder")
    item_ids = [str(maps["id2item"].get(i, f"unused-id-{i}")) for i in item_ids]
    user_ids = [str(maps["id2user"].get(u, u)) for u in user_ids]
  else:
    logging.warning("%s not found: items and users keep their integer ids (no ASINs)", maps_path)
  texts, leaves, report = None, None, None
  meta_path = os.path.join(data_dir, item_meta.META_FILE)
  if os.path.exists(meta_path):
    if not os.path.exists(maps_path):
      raise DataError(f"{meta_path}: its lines are keyed by ASIN, but {maps_path}, which maps "
                      f"item ids to ASINs, is missing; add it or remove {item_meta.META_FILE}")
    texts, leaves, report = item_meta.read_jsonl(meta_path, item_ids)
    logging.info("%s: %d lines; %d items without text, %d placeholder titles, %d unknown and "
                 "%d repeated ASINs", meta_path, report["lines"], report["items_without_text"],
                 report["placeholder_titles"], report["unknown_asins"], report["repeated_asins"])
    report = {"item_meta": report}

  sequences = [np.asarray(r, np.int32) - 1 for r in rows]
  user_ids, sequences, dropped = drop_short_users(user_ids, sequences)
  return Dataset(name=name, user_ids=user_ids, item_ids=item_ids, sequences=sequences,
                 item_text=texts, item_attributes=attributes, item_categories=leaves,
                 num_dropped_users=dropped, read_report=report)
