"""Reader for any interaction log: CSV, TSV, JSON Lines or Parquet, with an optional item file.

  python -m tiger_jax.data --source=interactions --interactions=log.csv --items=items.jsonl \
      --out_dir=DATA_DIR

The log has one row per interaction with columns `user_id`, `item_id` and `timestamp`
(other names: `InteractionsConfig.user_col` etc., the CLI's --user_col ...). A timestamp
is a number (e.g. Unix seconds, or just an order) or an ISO 8601 date-time. The item
file, when given, has `item_id` and any text fields; `text_fields` (in order) become the
item text the way Amazon items' text is built (`item_meta.item_text`: 'Title: ...;
Price: ...'), a list field (e.g. category paths) flattened; an optional `attributes`
list gives attribute vectors.

Rules: interactions whose user or item has fewer than `k_core` interactions are
dropped, repeatedly, until none is left (the paper's 5-core data); each user's items
are ordered by timestamp, ties kept in file order; users are numbered in order of first
appearance in the file, items in order of first appearance in the users' ordered
sequences (what the S3-Rec folders use), then items only in the item file, which get
Semantic IDs as the cold-start catalog. Original ids are kept as strings.

Bad input is one DataError naming the file, the line (the row, for Parquet) and the
column. Everything is columnar (pyarrow, numpy): 10 million rows take well under the
10 minutes of bench/prepare_scale.py on 2 cores.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

from tiger_jax.data import item_meta
from tiger_jax.data.dataset import Dataset, DataError, MIN_INTERACTIONS

FORMATS = ("csv", "tsv", "jsonl", "parquet")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
               ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


@dataclasses.dataclass(frozen=True)
class InteractionsConfig:
  """How to read a log (and its item file). Column names apply to both files' ids."""
  user_col: str = "user_id"
  item_col: str = "item_id"
  time_col: str = "timestamp"
  items_id_col: str | None = None  # the item file's id column; None: item_col
  text_fields: tuple[str, ...] | None = None  # None: those of DEFAULT_TEXT_FIELDS present
  attributes_col: str = "attributes"
  k_core: int = 5
  format: str | None = None  # None: from the file's extension

  def __post_init__(self):
    if self.k_core < 1:
      raise DataError(f"k_core must be >= 1, got {self.k_core}")
    if self.format is not None and self.format not in FORMATS:
      raise DataError(f"format {self.format!r} is not one of {', '.join(FORMATS)}")


# Amazon's fields in the paper's order, then a free-text description (last: sentence
# encoders truncate long inputs).
DEFAULT_TEXT_FIELDS = (*item_meta.AMAZON_TEXT_FIELDS, "description")


def file_format(path: str, fmt: str | None = None) -> str:
  if fmt:
    return fmt
  ext = os.path.splitext(path[:-3] if path.endswith(".gz") else path)[1].lower()
  if ext not in _EXTENSIONS:
    raise DataError(f"{path}: cannot tell the format from '{ext or 'no extension'}'; name it "
                    f"with --format ({', '.join(FORMATS)})")
  return _EXTENSIONS[ext]


def _where(fmt: str, row: int) -> str:
  """A row index as the user sees it: the line in a text file (after a CSV header)."""
  if fmt == "parquet":
    return f"row {row + 1}"
  return f"line {row + 2 if fmt in ('csv', 'tsv') else row + 1}"


def read_table(path: str, columns: Sequence[str], fmt: str | None = None,
               optional: Sequence[str] = (), string_columns: Sequence[str] = ()):
  """The file as a pyarrow Table of `columns` (DataError naming a missing one) plus those of
  `optional` present; `string_columns` are read as text, whatever they look like."""
  import pyarrow as pa
  import pyarrow.csv as pacsv
  import pyarrow.json as pajson
  import pyarrow.parquet as pq
  if not os.path.exists(path):
    raise DataError(f"{path}: file not found")
  if os.path.getsize(path) == 0:
    raise DataError(f"{path}: empty file")
  fmt = file_format(path, fmt)
  try:
    if fmt in ("csv", "tsv"):
      table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(
          delimiter="," if fmt == "csv" else "\t", newlines_in_values=False),
          convert_options=pacsv.ConvertOptions(
              column_types={c: pa.string() for c in string_columns}))
    elif fmt == "jsonl":
      table = pajson.read_json(path)
    else:
      table = pq.read_table(path)
  except (pa.ArrowInvalid, OSError) as e:
    message = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise DataError(f"{path}: cannot be read as {fmt} ({message})") from None
  missing = [c for c in columns if c not in table.column_names]
  if missing:
    raise DataError(f"{path}: no column {missing[0]!r} (columns: "
                    f"{', '.join(table.column_names) or 'none'}); name yours with "
                    f"--{_flag(missing[0])}")
  if table.num_rows == 0:
    raise DataError(f"{path}: empty file, no rows")
  keep = [*columns, *[c for c in optional if c in table.column_names and c not in columns]]
  return table.select(keep), fmt


def _flag(column: str) -> str:
  return {"user_id": "user_col", "item_id": "item_col", "timestamp": "time_col"}.get(
      column, "user_col, --item_col or --time_col")


def _ids(table, column: str, path: str, fmt: str):
  """A column of ids -> (codes [rows] int64 in order of first appearance, the ids as str)."""
  import pyarrow as pa
  import pyarrow.compute as pc
  col = table.column(column)
  if col.null_count:
    row = int(np.flatnonzero(np.asarray(pc.is_null(col)))[0])
    raise DataError(f"{path}: {_where(fmt, row)}: column {column!r} is empty")
  if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
    col = pc.cast(col, pa.string())
  empty = np.asarray(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(col)), 0))
  if empty.any():
    raise DataError(f"{path}: {_where(fmt, int(np.flatnonzero(empty)[0]))}: column "
                    f"{column!r} is empty")
  encoded = pc.dictionary_encode(col).combine_chunks()
  return (np.asarray(encoded.indices, np.int64),
          np.asarray(encoded.dictionary.to_pylist(), dtype=object))


def _timestamps(table, column: str, path: str, fmt: str) -> np.ndarray:
  """The timestamp column as float64 (numbers as they are, date-times as Unix seconds)."""
  import pyarrow as pa
  import pyarrow.compute as pc
  col = table.column(column).combine_chunks()
  if col.null_count:
    row = int(np.flatnonzero(np.asarray(pc.is_null(col)))[0])
    raise DataError(f"{path}: {_where(fmt, row)}: column {column!r} is empty")
  if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
    values = np.asarray(pc.cast(col, pa.float64()))
  elif pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
    values = np.asarray(pc.cast(pc.cast(col, pa.timestamp("us")), pa.int64())) / 1e6
  else:
    text = pc.utf8_trim_whitespace(pc.cast(col, pa.string()))
    values = _parse_text_times(text, path, fmt, column)
  bad = np.flatnonzero(~np.isfinite(values))
  if len(bad):
    raise DataError(f"{path}: {_where(fmt, int(bad[0]))}: column {column!r}: "
                    f"{table.column(column)[int(bad[0])].as_py()!r} is not a finite timestamp")
  return values


_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_DATE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?Z?$"


def _parse_text_times(text, path: str, fmt: str, column: str) -> np.ndarray:
  """Text timestamps -> float64: all numbers, or all ISO 8601 date-times (UTC, 'Z' allowed)
  as Unix seconds; DataError at the first row that is neither, or that mixes the two."""
  import pyarrow as pa
  import pyarrow.compute as pc
  number = np.asarray(pc.match_substring_regex(text, _NUMBER))
  date = np.asarray(pc.match_substring_regex(text, _DATE))
  for bad, what in ((~(number | date), "is neither a number nor an ISO 8601 date-time"),
                    (date if number[0] else number,
                     f"is a {'date' if number[0] else 'number'} where the first row has a "
                     f"{'number' if number[0] else 'date'}")):
    if bad.any():
      row = int(np.flatnonzero(bad)[0])
      raise DataError(f"{path}: {_where(fmt, row)}: column {column!r}: "
                      f"{text[row].as_py()!r} {what}")
  if number[0]:
    return np.asarray(pc.cast(text, pa.float64()))
  strings = np.asarray(pc.replace_substring(text, "Z", "").to_numpy(zero_copy_only=False),
                       dtype=str)
  return strings.astype("datetime64[us]").astype(np.int64) / 1e6


def k_core(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
  """A mask of the interactions that remain when users and items with fewer than k
  interactions are dropped, again and again, until every one left has k."""
  keep = np.ones(len(users), bool)
  while True:
    u_count = np.bincount(users[keep], minlength=users.max() + 1 if len(users) else 0)
    i_count = np.bincount(items[keep], minlength=items.max() + 1 if len(items) else 0)
    drop = keep & ((u_count[users] < k) | (i_count[items] < k))
    if not drop.any():
      return keep
    keep &= ~drop


def read_items(path: str, config: InteractionsConfig) -> dict:
  """The item file: {'ids': [n] str, 'texts', 'categories', 'attributes' (or None), 'report'}."""
  id_col = config.items_id_col or config.item_col
  table, fmt = read_table(path, [id_col], None,
                          optional=[*(config.text_fields or DEFAULT_TEXT_FIELDS),
                                    config.attributes_col],
                          string_columns=[id_col])
  codes, ids = _ids(table, id_col, path, fmt)
  if len(ids) < table.num_rows:
    first = np.full(len(ids), -1)
    for row, code in enumerate(codes):
      if first[code] >= 0:
        raise DataError(f"{path}: {_where(fmt, row)}: {id_col} {ids[code]!r} repeats "
                        f"{_where(fmt, int(first[code]))}; keep one row per item")
      first[code] = row
  fields = config.text_fields
  if fields is None:
    fields = tuple(f for f in DEFAULT_TEXT_FIELDS if f in table.column_names)
  missing = [f for f in fields if f not in table.column_names]
  if missing:
    raise DataError(f"{path}: no text field {missing[0]!r} (columns: "
                    f"{', '.join(table.column_names)}); fix --text_fields")
  records = table.select(list(fields)).to_pylist()
  texts = [item_meta.item_text(r, fields) for r in records]
  categories = ([item_meta.leaf_categories(r) for r in records] if "categories" in fields
                else None)
  attributes = None
  if config.attributes_col in table.column_names:
    attributes = _attribute_ids(table.column(config.attributes_col).to_pylist(), path, fmt,
                                config.attributes_col)
  report = {"file": os.path.basename(path), "rows": table.num_rows, "text_fields": list(fields),
            "items_without_text": sum(not t for t in texts),
            "placeholder_titles": sum(item_meta.is_placeholder_title(r.get("title"))
                                      for r in records)}
  return {"ids": [str(i) for i in ids], "texts": texts, "categories": categories,
          "attributes": attributes, "report": report}


def _attribute_ids(values: list, path: str, fmt: str, column: str) -> list[list[int]]:
  """Attribute lists as integers: kept when they are integers, else numbered from 1 in
  order of first appearance."""
  out, index = [], {}
  ints = all(v is None or all(isinstance(a, int) and not isinstance(a, bool) for a in v)
             for v in values if isinstance(v, list) or v is None)
  for row, v in enumerate(values):
    if v is None:
      out.append([])
      continue
    if not isinstance(v, list):
      raise DataError(f"{path}: {_where(fmt, row)}: column {column!r} must be a list")
    out.append([int(a) for a in v] if ints else
               [index.setdefault(str(a), len(index) + 1) for a in v])
  return out


def read(interactions: str, items: str | None = None, config: InteractionsConfig | None = None,
         name: str | None = None) -> Dataset:
  """Reads a log (and item file) into a Dataset; the rules are in the module docstring."""
  config = config or InteractionsConfig()
  table, fmt = read_table(interactions, [config.user_col, config.item_col, config.time_col],
                          config.format, string_columns=[config.user_col, config.item_col])
  rows = table.num_rows
  user_codes, user_names = _ids(table, config.user_col, interactions, fmt)
  item_codes, item_names = _ids(table, config.item_col, interactions, fmt)
  times = _timestamps(table, config.time_col, interactions, fmt)
  del table
  keep = k_core(user_codes, item_codes, config.k_core)
  report = {"file": os.path.basename(interactions), "format": fmt, "rows": rows,
            "k_core": config.k_core, "dropped_by_k_core": int(rows - keep.sum())}
  if not keep.any():
    raise DataError(f"{interactions}: no user is left after {config.k_core}-core filtering "
                    f"({rows:,} rows, {len(user_names):,} users, {len(item_names):,} items); "
                    f"lower --k_core")
  order = np.flatnonzero(keep)
  # Users by first appearance in the file (dictionary codes are numbered so), each user's
  # items by time, ties in file order.
  order = order[np.lexsort((order, times[order], user_codes[order]))]
  users, flat = user_codes[order], item_codes[order]
  starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
  lengths = np.diff(np.r_[starts, len(users)])
  # Items by first appearance in the users' ordered sequences.
  seen, first = np.unique(flat, return_index=True)
  item_order = seen[np.argsort(first)]
  new_index = np.full(len(item_names), -1, np.int64)
  new_index[item_order] = np.arange(len(item_order))
  item_ids = [str(i) for i in item_names[item_order]]
  flat = new_index[flat].astype(np.int32)
  sequences = np.split(flat, np.cumsum(lengths)[:-1])
  user_ids = [str(u) for u in user_names[users[starts]]]
  report.update(users=len(user_ids), items=len(item_ids), interactions=int(len(flat)),
                dropped_users=int(len(user_names) - len(user_ids)),
                dropped_items=int(len(item_names) - len(item_ids)))
  texts = categories = attributes = cold = None
  if items:
    meta = read_items(items, config)
    index = {i: n for n, i in enumerate(meta["ids"])}
    unknown = [i for i in item_ids if i not in index]
    if len(unknown) > item_meta.MAX_MISSING_TEXT * len(item_ids):
      raise DataError(f"{items}: {len(unknown):,} of the log's {len(item_ids):,} items have no "
                      f"row (e.g. {', '.join(unknown[:3])}); add them, or leave --items out")
    in_log = set(item_ids)
    cold_ids = [i for i in meta["ids"] if i not in in_log]
    all_ids = item_ids + cold_ids
    rows_of = [index.get(i) for i in all_ids]
    pick = lambda values, empty: [values[r] if r is not None else empty for r in rows_of]
    texts = pick(meta["texts"], "")
    categories = pick(meta["categories"], []) if meta["categories"] is not None else None
    attributes = pick(meta["attributes"], []) if meta["attributes"] is not None else None
    if cold_ids:
      cold = np.arange(len(item_ids), len(all_ids), dtype=np.int32)
    item_ids = all_ids
    report["item_file"] = {**meta["report"], "items_not_in_file": len(unknown),
                           "catalog_only_items": len(cold_ids)}
  short = lengths < MIN_INTERACTIONS
  if short.any():  # k_core below MIN_INTERACTIONS: a user needs a train, validation and test item
    sequences = [s for s, drop in zip(sequences, short) if not drop]
    user_ids = [u for u, drop in zip(user_ids, short) if not drop]
  return Dataset(name=name or os.path.splitext(os.path.basename(interactions))[0],
                 user_ids=user_ids, item_ids=item_ids, sequences=list(sequences),
                 item_text=texts, item_attributes=attributes, item_categories=categories,
                 num_dropped_users=int(report["dropped_users"] + short.sum()),
                 cold_items=cold, read_report={"interactions": report})
