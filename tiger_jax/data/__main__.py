r"""Prepares a dataset: read, drop short users, write, and embed item content.

  python -m tiger_jax.data --source=preprocessed \
      --data_dir=../shared/data/amazon2014/beauty --out_dir=/tmp/tiger/beauty/data
  python -m tiger_jax.data --source=raw --category=beauty --download \
      --data_dir=/tmp/amazon_raw --out_dir=/tmp/tiger/beauty_raw/data
  python -m tiger_jax.data --source=synthetic --out_dir=/tmp/tiger/synthetic/data
  python -m tiger_jax.data --source=interactions --interactions=log.csv --items=items.jsonl \
      --out_dir=/tmp/tiger/mine/data      # any log: tiger_jax/data/interactions.py
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from tiger_jax import content
from tiger_jax import data as data_lib
from tiger_jax.data.prepare import prepare

FLAGS = flags.FLAGS
flags.DEFINE_enum("source", "synthetic", list(data_lib.SOURCES), "Where the data comes from.")
flags.DEFINE_string("data_dir", None, "Folder of the raw or preprocessed files.")
flags.DEFINE_string("category", None, "beauty, sports or toys (raw files; name for preprocessed).")
flags.DEFINE_string("out_dir", None, "Where the prepared dataset is written.", required=True)
flags.DEFINE_bool("download", False, "Download the raw files into --data_dir first.")
flags.DEFINE_enum("content", "auto", ["auto", *content.CONTENT_SOURCES, "none"],
                  "Item vectors from text, attributes, both side by side, or not at all; auto: "
                  "text where the data has it (raw meta, item_meta.jsonl), else attributes.")
flags.DEFINE_string("text_model", content.DEFAULT_TEXT_MODEL, "Sentence encoder name.")
flags.DEFINE_integer("attribute_dim", 64, "Dimension of attribute vectors.")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic generator, the SVD, the cold items.")
flags.DEFINE_string("interactions", None, "source=interactions: the log (CSV, TSV, JSON Lines "
                    "or Parquet), one row per interaction.")
flags.DEFINE_string("items", None, "source=interactions: the optional item file (item id + text "
                    "fields); its items without interactions are the cold-start catalog.")
flags.DEFINE_string("user_col", "user_id", "The log's user-id column.")
flags.DEFINE_string("item_col", "item_id", "The log's item-id column (and the item file's).")
flags.DEFINE_string("time_col", "timestamp", "The log's timestamp column (number or ISO date).")
flags.DEFINE_string("items_id_col", None, "The item file's id column when not --item_col.")
flags.DEFINE_list("text_fields", None, "The item file's fields that make the item text, in "
                  "order (default: title, price, categories, brand, description, those present).")
flags.DEFINE_integer("k_core", 5, "Users and items with fewer interactions are dropped, "
                     "repeatedly (the paper's 5-core).")
flags.DEFINE_enum("format", None, ["csv", "tsv", "jsonl", "parquet"],
                  "The log's format (default: from its extension).")
flags.DEFINE_float("cold_start_fraction", 0.0,
                   "Share of items held out of all training data (cold-start study; paper: 0.05).")
flags.DEFINE_bool("cold_start_unseen", False, "Cold-start study, LIGER's protocol: the items that "
                  "occur in no training sequence (only as validation or test targets) are cold.")


def check_out_dir(out: str) -> None:
  """Stops with one line when --out_dir is a file or cannot be written (nothing is created)."""
  if "://" in out:
    return
  existing = os.path.abspath(out)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    sys.exit(f"error: --out_dir={out}: {existing} is a file; pass a folder")
  if not os.access(existing, os.W_OK):
    sys.exit(f"error: --out_dir={out}: {existing} is not writable; pass a writable folder")


def main(argv: list[str]) -> None:
  del argv
  if FLAGS.download:
    from tiger_jax.data import download
    if not (FLAGS.data_dir and FLAGS.category):
      sys.exit("--download needs --data_dir and --category")
    download.download(FLAGS.category, FLAGS.data_dir)
  check_out_dir(FLAGS.out_dir)
  try:
    config = None
    if FLAGS.source == "interactions":
      from tiger_jax.data.interactions import InteractionsConfig
      config = InteractionsConfig(
          user_col=FLAGS.user_col, item_col=FLAGS.item_col, time_col=FLAGS.time_col,
          items_id_col=FLAGS.items_id_col, k_core=FLAGS.k_core, format=FLAGS.format,
          text_fields=tuple(FLAGS.text_fields) if FLAGS.text_fields else None)
    elif FLAGS.interactions or FLAGS.items:
      sys.exit("error: --interactions and --items need --source=interactions")
    manifest = prepare(FLAGS.source, FLAGS.out_dir, FLAGS.data_dir, FLAGS.category, FLAGS.content,
                       FLAGS.text_model, FLAGS.attribute_dim, FLAGS.seed,
                       cold_start_fraction=FLAGS.cold_start_fraction,
                       interactions=FLAGS.interactions, items=FLAGS.items,
                       interactions_config=config, cold_start_unseen=FLAGS.cold_start_unseen)
  except data_lib.DataError as e:
    sys.exit(f"error: {e}")
  c = manifest["counts"]
  print(f"{c['users']:,} users, {c['items']:,} items, {c['interactions']:,} interactions "
        f"({c['dropped_users']} users with < 3 items dropped)")
  log = manifest["config"].get("read_report", {}).get("interactions")
  if log:
    print(f"read {log['rows']:,} rows of {log['file']} ({log['format']}); {log['k_core']}-core "
          f"dropped {log['dropped_by_k_core']:,} interactions, {log['dropped_users']:,} users, "
          f"{log['dropped_items']:,} items")
    if log.get("item_file"):
      f = log["item_file"]
      print(f"item text from {f['file']} ({', '.join(f['text_fields']) or 'no fields'}): "
            f"{f['items_without_text']} items without text, {f['items_not_in_file']} of the "
            f"log's items not in it, {f['catalog_only_items']} catalog-only (cold-start) items")
  meta = manifest["config"].get("read_report", {}).get("item_meta")
  if meta:
    print(f"item text from {meta['file']}: {meta['lines']:,} lines, "
          f"{meta['items_without_text']} items without text, "
          f"{meta.get('placeholder_titles', 0)} placeholder titles (read as no title), "
          f"{meta['unknown_asins']} unknown and {meta['repeated_asins']} repeated ASINs")
  vec = manifest["config"].get("item_vectors")
  if vec:
    print(f"item vectors: {vec['source']}, dim {vec['dim']}"
          + (f" ({vec['text_model']})" if vec.get("text_model") else ""))
  print(f"wrote {', '.join(manifest['files'])} to {FLAGS.out_dir}")


if __name__ == "__main__":
  app.run(main)
