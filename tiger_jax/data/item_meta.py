"""Item text and categories, shared by the raw reader and the preprocessed one.

The paper embeds each item's text (title, price, categories, brand). Both
readers build that text with `item_text`, so an item gets the same text
whichever form of the Amazon 2014 data it comes from. `read_jsonl` reads the
`item_meta.jsonl` file that may sit beside an S3-Rec/P5 folder: one JSON
object a line, `{"asin", "title", "categories"}`, keyed by ASIN.
"""

from __future__ import annotations

import html
import json
import os
import re
from typing import Any, Sequence

from tiger_jax.data.dataset import DataError

META_FILE = "item_meta.jsonl"
# An item with no text gets an empty one; more than this share of them is an error.
MAX_MISSING_TEXT = 0.01


def _clean(value: Any) -> str:
  return html.unescape(str(value)).strip()


# Titles that name no product: the shared Toys and Beauty files fill a missing title with
# "title_<number>" (59 and 7 items). Embedded as text, the arbitrary number is all that tells
# such items apart; they are read as items without a title (their categories stay).
PLACEHOLDER_TITLE = re.compile(r"title_\d+")


def is_placeholder_title(title: Any) -> bool:
  return isinstance(title, str) and PLACEHOLDER_TITLE.fullmatch(title.strip()) is not None


def category_paths(meta: dict[str, Any]) -> list[list[str]]:
  """The item's category paths as lists of unescaped names (a bare name is a path of one)."""
  paths = []
  for path in meta.get("categories") or []:
    names = [_clean(c) for c in (path if isinstance(path, (list, tuple)) else [path])]
    if any(names):
      paths.append([c for c in names if c])
  return paths


def leaf_categories(meta: dict[str, Any]) -> list[str]:
  """The last name of each category path, deduplicated in order: what 'same category' compares."""
  out = []
  for path in category_paths(meta):
    if path[-1] not in out:
      out.append(path[-1])
  return out


# The fields of the paper's item text, in its order; any other data names its own
# (`python -m tiger_jax.data --source=interactions --text_fields=...`).
AMAZON_TEXT_FIELDS = ("title", "price", "categories", "brand")


def field_label(field: str) -> str:
  return field.replace("_", " ").strip().capitalize()


def field_text(field: str, value: Any) -> str:
  """One field's value as text: lists (e.g. category paths) flattened, deduplicated in order;
  HTML entities unescaped; '' when empty (or a placeholder title)."""
  if value is None or value == "" or (field == "title" and is_placeholder_title(value)):
    return ""
  if isinstance(value, (list, tuple)):
    flat = []
    for path in category_paths({"categories": value}):
      flat += [c for c in path if c not in flat]
    return ", ".join(flat)
  return _clean(value)


def item_text(meta: dict[str, Any], fields: Sequence[str] = AMAZON_TEXT_FIELDS) -> str:
  """The item text the paper embeds: 'Title: ...; Price: ...; Categories: ...; Brand: ...'
  (`fields` in order, each 'Label: value', the empty ones left out)."""
  parts = []
  for field in fields:
    text = field_text(field, meta.get(field))
    if text:
      parts.append(f"{field_label(field)}: {text}")
  return "; ".join(parts)


def title_of(text: str | None) -> str | None:
  """The title in an item text that `item_text` built ('Title: X; Price: ...'), or None."""
  if not text or not text.startswith("Title: "):
    return None
  title = text[len("Title: "):]
  cut = [title.find(f"; {field_label(f)}: ") for f in (*AMAZON_TEXT_FIELDS, "description")]
  cut = [c for c in cut if c >= 0]
  return title[:min(cut)] if cut else title


def check_record(path: str, lineno: int, obj: Any) -> dict[str, Any]:
  where = f"{path}: line {lineno}"
  if not isinstance(obj, dict):
    raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
  if not isinstance(obj.get("asin"), str) or not obj["asin"]:
    raise DataError(f"{where}: field 'asin' must be a non-empty string")
  for field in ("title", "brand"):
    if obj.get(field) is not None and not isinstance(obj[field], str):
      raise DataError(f"{where}: field {field!r} must be a string")
  if obj.get("price") is not None and (isinstance(obj["price"], bool)
                                       or not isinstance(obj["price"], (str, int, float))):
    raise DataError(f"{where}: field 'price' must be a number or a string")
  cats = obj.get("categories")
  if cats is not None:
    ok = isinstance(cats, list) and all(
        isinstance(p, str) or (isinstance(p, list) and all(isinstance(c, str) for c in p))
        for p in cats)
    if not ok:
      raise DataError(f"{where}: field 'categories' must be a list of category paths "
                      "(lists of strings)")
  return obj


def read_jsonl(path: str, item_asins: Sequence[str]) -> tuple[list[str], list[list[str]], dict]:
  """Texts and leaf categories of the items `item_asins`, from an item_meta.jsonl file.

  Returns (texts [num_items], leaf categories [num_items], report). A line that
  is not a valid record is a DataError naming the file and line. Lines whose
  ASIN is not one of the items, repeated ASINs and items with no line are
  counted in the report; an item with no line gets an empty text, and more
  than MAX_MISSING_TEXT of such items is a DataError.
  """
  index = {a: i for i, a in enumerate(item_asins)}
  records: list[dict | None] = [None] * len(item_asins)
  lines = unknown = repeated = 0
  try:
    with open(path, encoding="utf-8") as f:
      for lineno, line in enumerate(f, 1):
        if not line.strip():
          continue
        lines += 1
        try:
          obj = json.loads(line)
        except json.JSONDecodeError as e:
          raise DataError(f"{path}: line {lineno}: invalid JSON ({e.msg})") from None
        obj = check_record(path, lineno, obj)
        i = index.get(obj["asin"])
        if i is None:
          unknown += 1
        elif records[i] is not None:
          repeated += 1
        else:
          records[i] = obj
  except UnicodeDecodeError as e:
    raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
  missing = [item_asins[i] for i, r in enumerate(records) if r is None]
  placeholders = [r["asin"] for r in records if r and is_placeholder_title(r.get("title"))]
  report = {"file": os.path.abspath(path), "lines": lines, "unknown_asins": unknown,
            "repeated_asins": repeated, "items_without_text": len(missing),
            "items_without_text_examples": missing[:5],
            "placeholder_titles": len(placeholders), "placeholder_title_examples": placeholders[:5]}
  if len(missing) > MAX_MISSING_TEXT * len(item_asins):
    raise DataError(
        f"{path}: {len(missing)} of {len(item_asins)} items ({len(missing) / len(item_asins):.1%}) "
        f"have no line (e.g. {', '.join(missing[:3])}), more than {MAX_MISSING_TEXT:.0%}; "
        f"add their lines, or remove {META_FILE} to use attribute vectors")
  texts = [item_text(r) if r else "" for r in records]
  leaves = [leaf_categories(r) if r else [] for r in records]
  return texts, leaves, report
