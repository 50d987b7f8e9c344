"""The generic interaction-log reader: formats, rules, bad input, and a round trip to Beauty."""

import json
import os

import numpy as np
import pytest

from conftest import shared_dir
from tiger_jax.data import DataError, interactions, preprocessed
from tiger_jax.data.interactions import InteractionsConfig

# Five users, six items; item i6 is seen twice (dropped by 3-core), i9 only in the item file.
ROWS = [("ua", "i1", 30), ("ub", "i2", 5), ("ua", "i2", 10), ("ua", "i3", 20), ("ub", "i1", 6),
        ("ub", "i3", 7), ("uc", "i3", 1), ("uc", "i2", 1), ("uc", "i1", 2), ("ud", "i6", 3),
        ("ud", "i1", 4), ("ue", "i6", 3), ("ud", "i2", 9), ("ud", "i3", 9)]
ITEMS = [{"item_id": "i1", "title": "Red lipstick", "price": 9.5, "brand": "Acme",
          "categories": [["Beauty", "Makeup", "Lips"]], "attributes": ["red", "lips"]},
         {"item_id": "i2", "title": "Blue eyeliner", "categories": [["Beauty", "Makeup", "Eyes"]],
          "attributes": ["blue"]},
         {"item_id": "i3", "title": "title_12", "description": "A mild face soap",
          "categories": [["Beauty", "Skin Care"]], "attributes": []},
         {"item_id": "i6", "title": "Comb"},
         {"item_id": "i9", "title": "New serum", "categories": [["Beauty", "Skin Care"]]}]


def write_log(path, rows, fmt, columns=("user_id", "item_id", "timestamp")):
  import pyarrow as pa
  import pyarrow.parquet as pq
  if fmt == "parquet":
    pq.write_table(pa.table({c: [r[k] for r in rows] for k, c in enumerate(columns)}), path)
  elif fmt == "jsonl":
    with open(path, "w") as f:
      f.writelines(json.dumps(dict(zip(columns, r))) + "\n" for r in rows)
  else:
    sep = "," if fmt == "csv" else "\t"
    with open(path, "w") as f:
      f.write(sep.join(columns) + "\n")
      f.writelines(sep.join(map(str, r)) + "\n" for r in rows)
  return str(path)


def write_items(path, items=ITEMS):
  with open(path, "w") as f:
    f.writelines(json.dumps(it) + "\n" for it in items)
  return str(path)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_each_format_gives_the_same_dataset(tmp_path, fmt):
  log = write_log(tmp_path / f"log.{fmt}", ROWS, fmt)
  ds = interactions.read(log, write_items(tmp_path / "items.jsonl"), InteractionsConfig(k_core=3))
  assert ds.name == "log" and ds.user_ids == ["ua", "ub", "uc", "ud"]  # first appearance
  # Each user's items by time, ties in file order (uc: i3 and i2 both at 1); i6 (2 rows)
  # falls to the 3-core, and with it user ue.
  assert [[ds.item_ids[i] for i in s] for s in ds.sequences] == [
      ["i2", "i3", "i1"], ["i2", "i1", "i3"], ["i3", "i2", "i1"], ["i1", "i2", "i3"]]
  # First appearance, then the item file's others (i6 of too few interactions, i9 of none):
  # the cold-start catalog, which gets Semantic IDs too.
  assert ds.item_ids == ["i2", "i3", "i1", "i6", "i9"] and ds.cold_items.tolist() == [3, 4]
  assert ds.item_text == [
      "Title: Blue eyeliner; Categories: Beauty, Makeup, Eyes",
      "Categories: Beauty, Skin Care; Description: A mild face soap",  # placeholder title
      "Title: Red lipstick; Price: 9.5; Categories: Beauty, Makeup, Lips; Brand: Acme",
      "Title: Comb", "Title: New serum; Categories: Beauty, Skin Care"]
  assert ds.item_categories == [["Eyes"], ["Skin Care"], ["Lips"], [], ["Skin Care"]]
  assert ds.item_attributes == [[3], [], [1, 2], [], []]  # strings numbered by first appearance
  report = ds.read_report["interactions"]
  assert report["dropped_by_k_core"] == 2 and report["dropped_users"] == 1
  assert report["dropped_items"] == 1 and report["item_file"]["catalog_only_items"] == 2


def test_renamed_columns_dates_and_chosen_text_fields(tmp_path):
  rows = [(u, i, f"2014-01-{int(t) % 28 + 1:02d}T10:00:00Z") for u, i, t in ROWS]
  log = write_log(tmp_path / "log.csv", rows, "csv", ("reviewer", "asin", "when"))
  config = InteractionsConfig(user_col="reviewer", item_col="asin", time_col="when", k_core=3,
                              items_id_col="item_id", text_fields=("brand", "title"))
  ds = interactions.read(log, write_items(tmp_path / "items.jsonl"), config)
  assert ds.item_text[ds.item_ids.index("i1")] == "Brand: Acme; Title: Red lipstick"
  assert ds.item_categories is None
  with pytest.raises(DataError, match="no text field 'color'.*fix --text_fields"):
    interactions.read(log, str(tmp_path / "items.jsonl"),
                      InteractionsConfig(**{**config.__dict__, "text_fields": ("color",)}))


def test_k_core_repeats_until_every_user_and_item_has_k():
  users = np.array([0, 0, 1, 1, 2, 2, 2])
  items = np.array([0, 1, 0, 1, 0, 1, 2])
  assert interactions.k_core(users, items, 2).tolist() == [1, 1, 1, 1, 1, 1, 0]
  # Dropping item 2 leaves user 2 with two items: still 2-core; at 3 everything goes.
  assert not interactions.k_core(users, items, 3).any()


@pytest.mark.parametrize("content,message", [
    ("user_id,item_id\nu,i\n", r"log\.csv: no column 'timestamp' \(columns: user_id, item_id\); "
                               r"name yours with --time_col"),
    ("user_id,item_id,timestamp\nu,i,3\nu,j,yesterday\n",
     r"log\.csv: line 3: column 'timestamp': 'yesterday' is neither a number nor an ISO 8601"),
    ("", r"log\.csv: empty file"),
    ("user_id,item_id,timestamp\n", r"log\.csv: empty file, no rows"),
    ("user_id,item_id,timestamp\nu,i,1\nu,j,2\n", r"no user is left after 5-core filtering"),
    ("user_id,item_id,timestamp\nu,,1\n", r"log\.csv: line 2: column 'item_id' is empty"),
])
def test_bad_logs_are_one_error_naming_file_line_and_column(tmp_path, content, message):
  path = tmp_path / "log.csv"
  path.write_text(content)
  with pytest.raises(DataError, match=message):
    interactions.read(str(path))
  from tiger_jax.data.prepare import prepare  # the data stage: the same line, nothing written
  with pytest.raises(DataError, match=message):
    prepare("interactions", str(tmp_path / "out"), interactions=str(path))
  assert not (tmp_path / "out").exists()


def test_a_repeated_item_in_the_item_file_names_both_lines(tmp_path):
  log = write_log(tmp_path / "log.csv", ROWS, "csv")
  items = write_items(tmp_path / "items.jsonl", ITEMS + [{"item_id": "i2", "title": "again"}])
  with pytest.raises(DataError, match=r"items\.jsonl: line 6: item_id 'i2' repeats line 2"):
    interactions.read(log, items, InteractionsConfig(k_core=3))
  from tiger_jax.data.prepare import prepare
  with pytest.raises(DataError, match="repeats line 2"):
    prepare("interactions", str(tmp_path / "out"), interactions=log, items=items,
            interactions_config=InteractionsConfig(k_core=3))
  assert not (tmp_path / "out").exists()


def test_a_bad_log_is_one_cli_error_line_and_leaves_no_output(tmp_path):
  import subprocess
  import sys
  from conftest import REPO
  out = tmp_path / "out"
  bad = tmp_path / "bad.tsv"
  bad.write_text("user\titem\n1\t2\n")
  proc = subprocess.run([sys.executable, "-m", "tiger_jax.data", "--source=interactions",
                         f"--interactions={bad}", f"--out_dir={out}"], cwd=REPO,
                        capture_output=True, text=True)
  assert proc.returncode == 1 and "Traceback" not in proc.stderr
  assert proc.stderr.strip().splitlines()[-1] == (
      f"error: {bad}: no column 'user_id' (columns: user, item); name yours with --user_col")
  assert not out.exists()


def test_the_own_data_recipe_goes_from_a_log_to_test_metrics(tmp_path):
  """gin_configs/recipes/own_data_paper.gin, tiny, in this process (as the main binary runs
  it): the log and item file in, a trained model's results out; a catalog-only item gets a
  Semantic ID."""
  import gin
  from conftest import REPO
  from tiger_jax import cli, configurables, data as data_lib, main as main_lib
  rng = np.random.default_rng(0)
  rows = [(f"u{u}", f"i{i}", t) for u in range(40)
          for t, i in enumerate(rng.choice(12, 6, replace=False))]
  items = [{"item_id": f"i{i}", "title": f"Product {i}", "categories": [["Shop", f"Aisle {i % 3}"]]}
           for i in range(13)]  # i12: in the catalog only
  model_dir = tmp_path / "run"
  bindings = [f"INTERACTIONS = '{write_log(tmp_path / 'log.parquet', rows, 'parquet')}'",
              f"ITEMS = '{write_items(tmp_path / 'items.jsonl', items)}'",
              f"MODEL_DIR = '{model_dir}'", "TRAIN_STEPS = 4", "BATCH_SIZE = 16",
              "T5Config.num_encoder_layers = 1", "T5Config.num_decoder_layers = 1",
              "T5Config.emb_dim = 16", "T5Config.num_heads = 2", "T5Config.head_dim = 8",
              "T5Config.mlp_dim = 32", "TrainerConfig.num_buckets = 1",
              "TrainerConfig.eval_buckets = 1",
              "TrainerConfig.checkpoint_every = 4", "TrainerConfig.eval_every = 0",
              "SemanticIdConfig.method = 'rq_kmeans'", "SemanticIdConfig.codebook_size = 4",
              "pipeline.run_sasrec = False", "BEAM_SIZE = 5"]
  cwd = os.getcwd()
  gin.clear_config()
  try:
    os.chdir(REPO)
    cli.parse_config(["gin_configs/recipes/own_data_paper.gin"], bindings)
    rows_out = main_lib.run_pipeline(configurables.PipelineConfig())
  finally:
    gin.clear_config()
    os.chdir(cwd)
  assert rows_out["TIGER"]["users"] == 40 and rows_out["TIGER"]["invalid_rate"] == 0.0
  ds = data_lib.load(str(model_dir / "data"))
  assert ds.item_ids[-1] == "i12" and ds.cold_items.tolist() == [12]
  assert ds.item_text[-1] == "Title: Product 12; Categories: Shop, Aisle 0"
  ids = np.load(model_dir / "semantic_ids" / "semantic_ids.npy")
  assert len(ids) == 13 and len(np.unique(ids, axis=0)) == 13


def test_beauty_written_as_a_log_reads_back_as_todays_beauty(tmp_path):
  """S3-Rec's Beauty as a log (original user and item ids, the order as timestamp) plus its
  item_meta.jsonl as the item file: the same users, items, sequences, texts and categories."""
  src = shared_dir("beauty")
  reference = preprocessed.read(src, name="beauty")
  maps = json.load(open(os.path.join(src, "datamaps.json")))
  log = tmp_path / "beauty.csv"
  with open(log, "w") as f:
    f.write("user_id,item_id,timestamp\n")
    for line in open(os.path.join(src, "sequences.txt")):
      user, *items = line.split()
      f.writelines(f"{maps['id2user'][user]},{maps['id2item'][i]},{t}\n"
                   for t, i in enumerate(items))
  ds = interactions.read(str(log), os.path.join(src, "item_meta.jsonl"),
                         InteractionsConfig(items_id_col="asin"), name="beauty")
  assert ds.user_ids == reference.user_ids and ds.item_ids == reference.item_ids
  assert len(ds.sequences) == len(reference.sequences) == 22363
  assert all(np.array_equal(a, b) for a, b in zip(ds.sequences, reference.sequences))
  assert ds.item_text == reference.item_text
  assert ds.item_categories == reference.item_categories
  assert ds.cold_items is None and ds.read_report["interactions"]["dropped_by_k_core"] == 0
