"""Reader for the S3-Rec / P5 preprocessed Amazon 2014 folders.

A folder holds `sequences.txt` (`user item item ...`, ids from 1, items in
chronological order), `item2attributes.json` (`{"item": [attr, ...]}`) and
optionally `datamaps.json` (`{"id2user": ..., "id2item": ...}`).
"""

from __future__ import annotations

import json
import os

import numpy as np

from tiger_jax.data.dataset import Dataset, DataError, drop_short_users


def _read_json(path: str) -> dict:
  try:
    with open(path) as f:
      obj = json.load(f)
  except json.JSONDecodeError as e:
    raise DataError(f"{path}: line {e.lineno}: invalid JSON ({e.msg})") from None
  if not isinstance(obj, dict):
    raise DataError(f"{path}: expected a JSON object at the top level")
  return obj


def read_sequences(path: str) -> tuple[list[int], list[list[int]]]:
  """Parses sequences.txt into user ids and item-id lists (1-based ids)."""
  if not os.path.exists(path):
    raise DataError(f"{path}: file not found")
  users, rows = [], []
  with open(path) as f:
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
  if not users:
    raise DataError(f"{path}: empty file, no users")
  return users, rows


def read(data_dir: str, name: str | None = None) -> Dataset:
  """Reads a preprocessed folder (e.g. ../shared/data/amazon2014/beauty)."""
  name = name or os.path.basename(os.path.normpath(data_dir))
  seq_path = os.path.join(data_dir, "sequences.txt")
  attr_path = os.path.join(data_dir, "item2attributes.json")
  maps_path = os.path.join(data_dir, "datamaps.json")
  users, rows = read_sequences(seq_path)

  num_items = max(max(r) for r in rows)
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

  item_ids = [str(i) for i in range(1, num_items + 1)]
  user_ids = [str(u) for u in users]
  if os.path.exists(maps_path):
    maps = _read_json(maps_path)
    for field in ("id2user", "id2item"):
      if field not in maps:
        raise DataError(f"{maps_path}: missing field {field!r}")
    item_ids = [maps["id2item"].get(i, i) for i in item_ids]
    user_ids = [maps["id2user"].get(u, u) for u in user_ids]

  sequences = [np.asarray(r, np.int32) - 1 for r in rows]
  user_ids, sequences, dropped = drop_short_users(user_ids, sequences)
  return Dataset(name=name, user_ids=user_ids, item_ids=item_ids, sequences=sequences,
                 item_text=None, item_attributes=attributes, num_dropped_users=dropped)
