"""The in-memory interaction dataset, its leave-one-out splits, and its files.

Items and users are indexed from 0 internally; the original ids (ASINs,
reviewer ids, or the preprocessed integer ids) are kept beside them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
from typing import Iterator, Sequence

import numpy as np

from tiger_jax import io_utils

MAX_HISTORY = 20
MIN_INTERACTIONS = 3
SPLITS = ("train", "validation", "test")
# The training examples a sequence gives: every prefix -> the next item, or every contiguous
# sub-sequence -> the item after it (`TrainerConfig.train_histories`).
TRAIN_HISTORIES = ("prefixes", "subsequences")


class DataError(ValueError):
  """Bad input data; the message names the file, line and field."""


@dataclasses.dataclass
class Dataset:
  """Users, items, chronological item sequences and item content.

  Attributes:
    name: dataset name, e.g. 'beauty'.
    user_ids: [num_users] original user ids.
    item_ids: [num_items] original item ids.
    sequences: per user, the item indices in chronological order.
    item_text: [num_items] item text, or None where the source has none.
    item_attributes: [num_items] attribute-id lists, or None.
    num_dropped_users: users dropped for having < MIN_INTERACTIONS items.
    cold_items: items held out of all training data (cold-start study), or None.
    item_categories: [num_items] leaf category names of each item, or None.
    read_report: what the reader counted and skipped (e.g. item text coverage).
  """
  name: str
  user_ids: list[str]
  item_ids: list[str]
  sequences: list[np.ndarray]
  item_text: list[str] | None = None
  item_attributes: list[list[int]] | None = None
  num_dropped_users: int = 0
  cold_items: np.ndarray | None = None
  item_categories: list[list[str]] | None = None
  read_report: dict | None = None

  @property
  def num_users(self) -> int:
    return len(self.user_ids)

  @property
  def num_items(self) -> int:
    return len(self.item_ids)

  @property
  def num_interactions(self) -> int:
    return int(sum(len(s) for s in self.sequences))

  def counts(self) -> dict[str, int]:
    return {"users": self.num_users, "items": self.num_items,
            "interactions": self.num_interactions,
            "dropped_users": self.num_dropped_users,
            "cold_items": 0 if self.cold_items is None else int(len(self.cold_items))}


def drop_short_users(user_ids: list[str], sequences: list[np.ndarray],
                     min_len: int = MIN_INTERACTIONS) -> tuple[list[str], list[np.ndarray], int]:
  """Drops users with fewer than `min_len` interactions; returns the count dropped."""
  keep = [i for i, s in enumerate(sequences) if len(s) >= min_len]
  return ([user_ids[i] for i in keep], [sequences[i] for i in keep],
          len(sequences) - len(keep))


# ---------------------------------------------------------------------------
# Leave-one-out splits.


@dataclasses.dataclass(frozen=True)
class Example:
  user: int
  history: np.ndarray  # [<= MAX_HISTORY] item indices, oldest first
  target: int


def split_examples(sequence: np.ndarray, split: str, max_history: int = MAX_HISTORY,
                   cold_items: np.ndarray | None = None) -> list[tuple[np.ndarray, int]]:
  """(history, target) pairs of one user's sequence for a split.

  test: the last item; validation: the second last; train: every item from
  the second up to the third last, each with up to `max_history` items before it.
  Cold-start items never appear in training examples (neither as targets nor
  in histories); validation and test examples keep them.
  """
  n = len(sequence)
  if n < MIN_INTERACTIONS:
    return []
  if split == "train" and cold_items is not None and len(cold_items):
    train = sequence[:-2][~np.isin(sequence[:-2], cold_items)]
    return [(train[max(0, t - max_history):t], int(train[t])) for t in range(1, len(train))]
  if split == "test":
    positions = [n - 1]
  elif split == "validation":
    positions = [n - 2]
  elif split == "train":
    positions = range(1, n - 2)
  else:
    raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
  return [(sequence[max(0, t - max_history):t], int(sequence[t])) for t in positions]


def iter_examples(dataset: Dataset, split: str, max_history: int = MAX_HISTORY,
                  shard_index: int = 0, num_shards: int = 1) -> Iterator[Example]:
  """Examples of a split, users in order; a host reads users u % num_shards == shard_index."""
  for user in range(shard_index, dataset.num_users, num_shards):
    for history, target in split_examples(dataset.sequences[user], split, max_history,
                                          dataset.cold_items):
      yield Example(user, history, target)


def training_sequences(dataset: Dataset) -> list[np.ndarray]:
  """Each user's sequence without the validation and test items (and without cold items)."""
  train = [s[:-2] for s in dataset.sequences]
  if dataset.cold_items is not None and len(dataset.cold_items):
    train = [s[~np.isin(s, dataset.cold_items)] for s in train]
  return train


def unseen_items(dataset: Dataset) -> np.ndarray:
  """Items that occur in no training sequence, only as (or after) a validation or test target:
  LIGER's cold items (sorted indices)."""
  seen = np.zeros(dataset.num_items, bool)
  for s in dataset.sequences:
    seen[s[:-2]] = True
  occurs = np.zeros(dataset.num_items, bool)
  for s in dataset.sequences:
    occurs[s] = True
  return np.flatnonzero(occurs & ~seen).astype(np.int32)


def choose_cold_items(dataset: Dataset, fraction: float, seed: int = 0) -> np.ndarray:
  """A random `fraction` of the items to hold out of training (sorted indices)."""
  if not 0.0 <= fraction < 1.0:
    raise ValueError(f"cold-start fraction must be in [0, 1), got {fraction}")
  n = int(round(fraction * dataset.num_items))
  return np.sort(np.random.default_rng(seed).choice(dataset.num_items, n, replace=False)).astype(np.int32)


# ---------------------------------------------------------------------------
# Files: dataset.npz (sequences), items.json, users.json, manifest.json.


def save(dataset: Dataset, out_dir: str, source: str, config: dict | None = None,
         manifest: bool = True) -> dict | None:
  """Writes the prepared dataset atomically under `out_dir`; returns the manifest
  (written last; `manifest=False` leaves it to a caller that writes more files)."""
  io_utils.makedirs(out_dir)
  lengths = np.array([len(s) for s in dataset.sequences], np.int64)
  flat = (np.concatenate(dataset.sequences) if dataset.sequences else np.zeros([0])).astype(np.int32)
  io_utils.write_npz(os.path.join(out_dir, "dataset.npz"),
                     offsets=np.concatenate([[0], np.cumsum(lengths)]), items=flat)
  io_utils.write_json(os.path.join(out_dir, "items.json"), {
      "item_ids": dataset.item_ids, "item_text": dataset.item_text,
      "item_attributes": dataset.item_attributes, "item_categories": dataset.item_categories,
      "cold_items": None if dataset.cold_items is None else dataset.cold_items.tolist()})
  io_utils.write_json(os.path.join(out_dir, "users.json"), {
      "name": dataset.name, "user_ids": dataset.user_ids,
      "num_dropped_users": dataset.num_dropped_users})
  if not manifest:
    return None
  return io_utils.write_manifest(out_dir, "data", source, dataset.counts(), config or {})


def load(prepared_dir: str) -> Dataset:
  """Reads a dataset that `save` wrote."""
  path = os.path.join(prepared_dir, "dataset.npz")
  if not io_utils.exists(path):
    raise DataError(f"{path}: no prepared dataset here; run `python -m tiger_jax.data "
                    f"--out_dir={prepared_dir}` first")
  arrays = io_utils.load_arrays(path)
  offsets, flat = arrays["offsets"], arrays["items"]
  items = io_utils.read_json(os.path.join(prepared_dir, "items.json"))
  users = io_utils.read_json(os.path.join(prepared_dir, "users.json"))
  sequences = [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
  return Dataset(name=users["name"], user_ids=users["user_ids"], item_ids=items["item_ids"],
                 sequences=sequences, item_text=items["item_text"],
                 item_attributes=items["item_attributes"],
                 item_categories=items.get("item_categories"),
                 num_dropped_users=users["num_dropped_users"],
                 cold_items=None if items.get("cold_items") is None
                 else np.asarray(items["cold_items"], np.int32))


def as_sequences(rows: Sequence[Sequence[int]]) -> list[np.ndarray]:
  return [np.asarray(r, np.int32) for r in rows]


def prepare_command(prepared_dir: str) -> dict:
  """How a prepared folder was made, from its manifest, with the folder written DATA_DIR and
  the sources as typed from the working directory (no machine path in a record): {'command',
  'placeholder_titles'}; {} without a manifest."""
  try:
    with open(os.path.join(prepared_dir, "manifest.json")) as f:
      config = json.load(f)["config"]
  except (OSError, KeyError, ValueError):
    return {}
  made = ["python", "-m", "tiger_jax.data", f"--source={config['source']}"]
  for key in ("category", "data_dir", "interactions", "items"):
    if config.get(key):
      value = io_utils.near_relpath(config[key], os.getcwd()) if key != "category" else config[key]
      made.append(f"--{key}={value}")
  return {"command": shlex.join(made + ["--out_dir=DATA_DIR"]),
          "placeholder_titles": config.get("read_report", {}).get("item_meta", {}).get(
              "placeholder_titles")}
