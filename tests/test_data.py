"""Stage 1: readers, splits, errors, atomic writes, synthetic data, TFDS."""

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, shared_dir
from tiger_jax import data as data_lib
from tiger_jax import io_utils
from tiger_jax.data import DataError, amazon_raw, preprocessed, synthetic
from tiger_jax.data.dataset import split_examples


# --- raw McAuley files -------------------------------------------------------

def _write_raw(tmp_path, reviews, metas, category="Beauty"):
  with gzip.open(tmp_path / f"reviews_{category}_5.json.gz", "wt") as f:
    for r in reviews:
      f.write(json.dumps(r) + "\n")
  with gzip.open(tmp_path / f"meta_{category}.json.gz", "wt") as f:
    for m in metas:
      f.write(repr(m) + "\n")  # Python literals, as the real meta files are


def _review(user, asin, t):
  return {"reviewerID": user, "asin": asin, "unixReviewTime": t, "overall": 5.0,
          "reviewText": "fine"}


RAW_REVIEWS = [
    _review("A", "p2", 300), _review("A", "p1", 100), _review("B", "p3", 50),
    _review("A", "p3", 200), _review("B", "p1", 50), _review("B", "p2", 70),
    _review("C", "p1", 10), _review("C", "p2", 20),  # only 2 items: dropped
    _review("A", "p4", 300),  # same time as p2: stays after it (file order)
]
RAW_METAS = [
    {"asin": "p1", "title": "Rose Lip Balm", "price": 4.5, "brand": "Bloom",
     "categories": [["Beauty", "Skin Care", "Lips"]]},
    {"asin": "p2", "title": "Matte Lipstick", "categories": [["Beauty", "Makeup", "Lips"]],
     "description": "it's \"red\""},
    {"asin": "p3", "title": "Foundation"},
    {"asin": "p4", "title": "Toner", "brand": "Bloom"},
    {"asin": "p9", "title": "Never reviewed"},
]


def test_raw_reader_sorts_by_time_and_maps_ids(tmp_path):
  _write_raw(tmp_path, RAW_REVIEWS, RAW_METAS)
  ds = amazon_raw.read(str(tmp_path), "beauty")
  assert ds.user_ids == ["B", "A"]  # indexed by first review in time order
  assert ds.num_dropped_users == 1
  seqs = {u: [ds.item_ids[i] for i in s] for u, s in zip(ds.user_ids, ds.sequences)}
  assert seqs["A"] == ["p1", "p3", "p2", "p4"]  # tie at t=300 keeps file order
  assert seqs["B"] == ["p3", "p1", "p2"]  # tie at t=50 keeps file order
  assert "p9" not in ds.item_ids  # items without reviews are not kept
  text = ds.item_text[ds.item_ids.index("p1")]
  for part in ("Rose Lip Balm", "4.5", "Skin Care", "Bloom"):
    assert part in text
  # brand attribute shared by p1 and p4
  a1, a4 = (set(ds.item_attributes[ds.item_ids.index(p)]) for p in ("p1", "p4"))
  assert a1 & a4


@pytest.mark.parametrize("line, message", [
    ("{not json", "line 2: invalid JSON"),
    (json.dumps({"reviewerID": "A", "unixReviewTime": 3}), "line 2: missing field 'asin'"),
    (json.dumps({"reviewerID": "A", "asin": "x", "unixReviewTime": "soon"}),
     "line 2: field 'unixReviewTime'"),
])
def test_raw_reader_bad_lines_name_file_line_and_field(tmp_path, line, message):
  path = tmp_path / "reviews_Beauty_5.json.gz"
  with gzip.open(path, "wt") as f:
    f.write(json.dumps(_review("A", "p1", 1)) + "\n" + line + "\n")
  with pytest.raises(DataError) as e:
    amazon_raw.read(str(tmp_path), "Beauty")
  assert str(path) in str(e.value) and message in str(e.value)


def test_raw_reader_empty_file_and_unknown_category(tmp_path):
  with gzip.open(tmp_path / "reviews_Beauty_5.json.gz", "wt"):
    pass
  with pytest.raises(DataError, match="reviews_Beauty_5.json.gz: empty file"):
    amazon_raw.read(str(tmp_path), "beauty")
  with pytest.raises(DataError, match="unknown category 'garden'"):
    amazon_raw.read(str(tmp_path), "garden")


def test_meta_is_parsed_safely(tmp_path):
  _write_raw(tmp_path, RAW_REVIEWS, RAW_METAS + [])
  with gzip.open(tmp_path / "meta_Beauty.json.gz", "at") as f:
    f.write("{'asin': 'p1', 'title': __import__('os').getcwd()}\n")
  with pytest.raises(DataError, match="meta_Beauty.json.gz: line 6: not a Python-literal"):
    amazon_raw.read(str(tmp_path), "beauty")


# --- preprocessed (S3-Rec / P5) folders --------------------------------------

@pytest.mark.parametrize("category, users, items, interactions, placeholders", [
    ("beauty", 22363, 12101, 198502, 7), ("toys", 19412, 11924, 167597, 59)])
def test_shared_preprocessed_counts(category, users, items, interactions, placeholders):
  """The shared folders as `python -m tiger_jax.data --source=preprocessed` reads them (the
  CLI itself: test_cli_reports_bad_input_without_traceback and tests/test_interactions.py):
  counts, the item_meta.jsonl report, attribute vectors."""
  ds = preprocessed.read(shared_dir(category))
  assert (ds.num_users, ds.num_items, ds.num_interactions) == (users, items, interactions)
  assert ds.item_ids[0].startswith("B") or ds.item_ids[0][0].isdigit()  # ASINs from datamaps
  assert len(ds.item_attributes) == items
  meta = ds.read_report["item_meta"]
  assert (meta["lines"], meta["items_without_text"], meta["placeholder_titles"],
          meta["unknown_asins"], meta["repeated_asins"]) == (items, 0, placeholders, 0, 0)
  from tiger_jax import content
  vectors, info = content.item_vectors(ds, "attributes", attribute_dim=64)
  assert vectors.shape == (items, 64) and info["source"] == "attributes"


def test_preprocessed_reader_errors(tmp_path):
  (tmp_path / "sequences.txt").write_text("1 1 2 3\n2 4 x 5\n")
  with pytest.raises(DataError, match=r"sequences.txt: line 2: field 'x' is not an integer"):
    preprocessed.read(str(tmp_path))
  (tmp_path / "sequences.txt").write_text("")
  with pytest.raises(DataError, match="sequences.txt: empty file"):
    preprocessed.read(str(tmp_path))
  (tmp_path / "sequences.txt").write_text("1 1 2 3\n2 1 2\n")
  (tmp_path / "item2attributes.json").write_text('{"1": [1], "9": [2]}')
  with pytest.raises(DataError, match=r"item2attributes.json: item key '9'"):
    preprocessed.read(str(tmp_path))
  (tmp_path / "item2attributes.json").write_text('{"1": [1],\n "2": oops}')
  with pytest.raises(DataError, match=r"item2attributes.json: line 2: invalid JSON"):
    preprocessed.read(str(tmp_path))


def test_a_placeholder_title_is_no_title():
  from tiger_jax.data import item_meta
  cats = {"categories": [["Toys & Games", "Puzzles"]]}
  assert item_meta.item_text({"title": "title_208", **cats}) == "Categories: Toys & Games, Puzzles"
  assert item_meta.item_text({"title": " title_7 ", **cats}) == item_meta.item_text(cats)
  for real in ("title_208 Deluxe", "Subtitle_3", "title_"):  # only the bare pattern
    assert item_meta.item_text({"title": real}).startswith(f"Title: {real}")


@pytest.mark.parametrize("category,placeholders", [("beauty", 7), ("toys", 59)])
def test_shared_item_meta_gives_every_item_text(category, placeholders):
  """Every item has text; a placeholder title ("title_208") is left out of it, counted."""
  ds = preprocessed.read(shared_dir(category))
  report = ds.read_report["item_meta"]
  assert report["items_without_text"] == 0 and report["unknown_asins"] == 0
  assert report["placeholder_titles"] == placeholders
  untitled = [t for t in ds.item_text if not t.startswith("Title: ")]
  assert len(untitled) == placeholders and all(t.startswith("Categories: ") for t in untitled)
  assert not any("title_" in t for t in ds.item_text)
  assert not any("&amp;" in t for t in ds.item_text)
  assert all(ds.item_categories)
  if category == "toys":  # the renumbered folder: id -> ASIN -> title agree
    assert "Cards Against Humanity" in ds.item_text[ds.item_ids.index("B004S8F7QM")]


def _meta_folder(path, num_items=150, meta_lines=None):
  """A preprocessed folder of `num_items` items (ASINs A0001...), with item_meta.jsonl lines."""
  rows = [f"{u + 1} " + " ".join(str((u * 7 + k) % num_items + 1) for k in range(4))
          for u in range(num_items)]
  (path / "sequences.txt").write_text("\n".join(rows) + "\n")
  asins = {str(i): f"A{i:04d}" for i in range(1, num_items + 1)}
  (path / "datamaps.json").write_text(json.dumps(
      {"id2item": asins, "id2user": {str(u + 1): f"U{u}" for u in range(num_items)}}))
  if meta_lines is None:
    meta_lines = [json.dumps({"asin": a, "title": f"Item {i}", "categories": [["Beauty", "Nails"]]})
                  for i, a in asins.items()]
  (path / "item_meta.jsonl").write_text("\n".join(meta_lines) + "\n")
  return asins


def test_preprocessed_reader_item_meta(tmp_path):
  asins = _meta_folder(tmp_path)
  lines = [json.dumps({"asin": a, "title": f"Item {i}", "categories": [["Beauty", "Nails"]]})
           for i, a in asins.items()]
  lines[2] = json.dumps({"asin": "A0003", "title": "Freeman Charcoal &amp; Black Sugar Mask",
                         "categories": [["Beauty", "Skin Care", "Masks"], ["Beauty", "Face"]]})
  del lines[5]  # item 6 has no line: 1 of 150 items, under the 1% limit
  lines.append(json.dumps({"asin": "Z9999", "title": "not an item of this folder"}))
  (tmp_path / "item_meta.jsonl").write_text("\n".join(lines) + "\n")
  ds = preprocessed.read(str(tmp_path))
  i = ds.item_ids.index("A0003")
  assert ds.item_text[i] == ("Title: Freeman Charcoal & Black Sugar Mask; "
                             "Categories: Beauty, Skin Care, Masks, Face")
  assert ds.item_categories[i] == ["Masks", "Face"]
  assert ds.item_text[ds.item_ids.index("A0006")] == ""
  assert ds.read_report["item_meta"]["items_without_text"] == 1
  assert ds.read_report["item_meta"]["items_without_text_examples"] == ["A0006"]
  assert ds.read_report["item_meta"]["unknown_asins"] == 1

  # A malformed line names the file and the line.
  bad = list(lines)
  bad[9] = '{"asin": "A0011", "title": "cut off'
  (tmp_path / "item_meta.jsonl").write_text("\n".join(bad) + "\n")
  with pytest.raises(DataError, match=r"item_meta.jsonl: line 10: invalid JSON"):
    preprocessed.read(str(tmp_path))
  bad[9] = json.dumps({"asin": "A0011", "title": ["not", "a", "string"]})
  (tmp_path / "item_meta.jsonl").write_text("\n".join(bad) + "\n")
  with pytest.raises(DataError, match=r"item_meta.jsonl: line 10: field 'title' must be a string"):
    preprocessed.read(str(tmp_path))

  # More than 1% of the items without a line: stop.
  (tmp_path / "item_meta.jsonl").write_text("\n".join(lines[:-4]) + "\n")
  with pytest.raises(DataError, match=r"4 of 150 items \(2.7%\) have no line"):
    preprocessed.read(str(tmp_path))

  # item_meta.jsonl is keyed by ASIN: without datamaps.json it cannot be joined.
  (tmp_path / "datamaps.json").unlink()
  with pytest.raises(DataError, match="datamaps.json, which maps item ids to ASINs, is missing"):
    preprocessed.read(str(tmp_path))


def test_preprocessed_reader_item_missing_from_datamaps(tmp_path):
  _meta_folder(tmp_path, num_items=10)
  maps = json.loads((tmp_path / "datamaps.json").read_text())
  del maps["id2item"]["5"]
  (tmp_path / "datamaps.json").write_text(json.dumps(maps))
  first = next(n for n, line in enumerate((tmp_path / "sequences.txt").read_text().splitlines(), 1)
               if "5" in line.split()[1:])
  with pytest.raises(DataError, match=rf"datamaps.json: id2item has no entry for item id 5 "
                                      rf"\(first in .*sequences.txt line {first};"):
    preprocessed.read(str(tmp_path))


def test_preprocessed_reader_item_without_attributes(tmp_path, caplog):
  (tmp_path / "sequences.txt").write_text("1 1 2 3\n\n2 1 4 2\n")
  (tmp_path / "item2attributes.json").write_text('{"1": [1], "2": [2], "3": [1, 2]}')
  with pytest.raises(DataError, match=r"sequences.txt: line 3: item id 4 has no entry in "
                                      r".*item2attributes.json \(1 of the 4 item ids"):
    preprocessed.read(str(tmp_path))
  (tmp_path / "item2attributes.json").write_text('{"1": [1], "2": [2], "3": [1, 2], "4": [3]}')
  with caplog.at_level("WARNING"):
    ds = preprocessed.read(str(tmp_path))
  assert ds.item_ids == ["1", "2", "3", "4"] and "datamaps.json not found" in caplog.text


def test_preprocessed_reader_drops_short_users(tmp_path):
  (tmp_path / "sequences.txt").write_text("1 1 2 3\n2 1 2\n3 3 2 1 2\n")
  ds = preprocessed.read(str(tmp_path))
  assert ds.user_ids == ["1", "3"] and ds.num_dropped_users == 1
  np.testing.assert_array_equal(ds.sequences[0], [0, 1, 2])  # 1-based -> 0-based


# --- splits ------------------------------------------------------------------

def test_leave_one_out_splits_by_hand():
  seq = np.arange(10, 35)  # 25 items
  (h, t), = split_examples(seq, "test")
  assert t == 34 and list(h) == list(range(14, 34))  # the 20 before the last
  (h, t), = split_examples(seq, "validation")
  assert t == 33 and list(h) == list(range(13, 33))
  train = split_examples(seq, "train")
  assert [t for _, t in train] == list(range(11, 33))  # targets: 2nd .. 3rd last
  assert list(train[0][0]) == [10] and len(train[-1][0]) == 20
  assert list(train[-1][0]) == list(range(12, 32))
  short = np.array([7, 8, 9])
  assert split_examples(short, "train") == []
  assert split_examples(short, "validation")[0][1] == 8
  with pytest.raises(ValueError, match="unknown split"):
    split_examples(seq, "dev")


def test_iter_examples_shards_partition_users(tiny_dataset):
  whole = [(e.user, e.target) for e in data_lib.iter_examples(tiny_dataset, "train")]
  parts = [(e.user, e.target) for s in range(2)
           for e in data_lib.iter_examples(tiny_dataset, "train", shard_index=s, num_shards=2)]
  assert sorted(whole) == sorted(parts) and len(whole) == 2 + 0 + 3 + 1


# --- artifacts ---------------------------------------------------------------

def test_save_load_round_trip_with_manifest(tmp_path, tiny_dataset):
  manifest = data_lib.save(tiny_dataset, str(tmp_path), source="test")
  back = data_lib.load(str(tmp_path))
  assert back.item_ids == tiny_dataset.item_ids and back.item_text == tiny_dataset.item_text
  for a, b in zip(back.sequences, tiny_dataset.sequences):
    np.testing.assert_array_equal(a, b)
  assert manifest["counts"]["interactions"] == 18
  assert io_utils.read_json(str(tmp_path / "manifest.json"))["source"] == "test"


def test_atomic_write_leaves_old_file_and_no_temp_on_failure(tmp_path):
  path = tmp_path / "a.json"
  io_utils.write_json(str(path), {"v": 1})
  with pytest.raises(TypeError):
    io_utils.write_json(str(path), {"v": object()})  # fails half-way through writing
  assert json.loads(path.read_text()) == {"v": 1}
  assert os.listdir(tmp_path) == ["a.json"]


# --- synthetic default ---------------------------------------------------------

def test_synthetic_is_deterministic_and_structured():
  cfg = synthetic.SyntheticConfig(num_items=300, num_users=400)
  a, b = synthetic.generate(cfg), synthetic.generate(cfg)
  assert a.item_text == b.item_text
  assert all(np.array_equal(x, y) for x, y in zip(a.sequences, b.sequences))
  c = synthetic.generate(synthetic.SyntheticConfig(num_items=300, num_users=400, seed=1))
  assert a.item_text != c.item_text
  assert min(len(s) for s in a.sequences) >= 5
  assert all(len(set(s.tolist())) == len(s) for s in a.sequences)
  # Sequential structure: consecutive items share a top category far more often than chance.
  top = np.array([t.split("Categories: ")[1].split(",")[0] for t in a.item_text])
  same = np.mean([top[s[i]] == top[s[i + 1]] for s in a.sequences for i in range(len(s) - 1)])
  assert same > 0.6


# --- TFDS builder --------------------------------------------------------------

def test_tfds_builder_matches_split_rules(tmp_path):
  import tensorflow_datasets as tfds
  from tiger_jax.data import tfds_builder  # noqa: F401  (registers the builder)
  ds = synthetic.generate(synthetic.SyntheticConfig(num_items=200, num_users=150))
  data_lib.save(ds, str(tmp_path / "prepared"), source="synthetic")
  builder = tfds.builder("amazon_reviews_2014/synthetic", data_dir=str(tmp_path / "tfds"))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path / "prepared")))
  for split in data_lib.SPLITS:
    got = sorted((int(e["user"]), tuple(e["history"].tolist()), int(e["target"]))
                 for e in tfds.as_numpy(builder.as_dataset(split=split)))
    want = sorted((e.user, tuple(e.history.tolist()), e.target)
                  for e in data_lib.iter_examples(ds, split))
    assert got == want


# --- the CLI -------------------------------------------------------------------

def test_cli_reports_bad_input_without_traceback(tmp_path):
  (tmp_path / "sequences.txt").write_text("1 2 3\n2 4 ?\n")
  proc = subprocess.run([sys.executable, "-m", "tiger_jax.data", "--source=preprocessed",
                         f"--data_dir={tmp_path}", f"--out_dir={tmp_path / 'out'}"],
                        capture_output=True, text=True, cwd=REPO)
  assert proc.returncode != 0 and "Traceback" not in proc.stderr
  assert "sequences.txt: line 2: field '?'" in proc.stderr
  assert not (tmp_path / "out").exists()


# --- downloader ------------------------------------------------------------------

def test_download_resumes_a_partial_file(tmp_path):
  """A local HTTP server with Range support stands in for the public address."""
  import http.server
  import threading
  from tiger_jax.data import download

  payload = os.urandom(300_000)
  ranges = []

  class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
      start = 0
      if "Range" in self.headers:
        start = int(self.headers["Range"].split("=")[1].split("-")[0])
        ranges.append(start)
        self.send_response(206)
      else:
        self.send_response(200)
      body = payload[start:]
      self.send_header("Content-Length", str(len(body)))
      self.end_headers()
      self.wfile.write(body)

    def log_message(self, *args):
      pass

  server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  try:
    url = f"http://127.0.0.1:{server.server_port}/reviews_Beauty_5.json.gz"
    (tmp_path / "reviews_Beauty_5.json.gz.part").write_bytes(payload[:100_000])  # a killed download
    path = download.fetch(url, str(tmp_path), chunk=65536)
    assert ranges == [100_000]
    assert open(path, "rb").read() == payload
    assert not (tmp_path / "reviews_Beauty_5.json.gz.part").exists()
    assert download.fetch(url, str(tmp_path)) == path and ranges == [100_000]  # already there
  finally:
    server.shutdown()
  assert download.urls("toys")[0].endswith("reviews_Toys_and_Games_5.json.gz")


# --- cold start ------------------------------------------------------------------

def test_cold_start_items_leave_training_data_only(tiny_dataset, tmp_path):
  tiny_dataset.cold_items = np.array([2, 5], np.int32)
  train = list(data_lib.iter_examples(tiny_dataset, "train"))
  assert train and all(e.target not in (2, 5) and not np.isin(e.history, [2, 5]).any() for e in train)
  # user 0: 0 1 2 | 3 4 -> training part without item 2 is [0, 1]: one example 0 -> 1
  assert [(e.user, e.history.tolist(), e.target) for e in train if e.user == 0] == [(0, [0], 1)]
  test = {e.user: e for e in data_lib.iter_examples(tiny_dataset, "test")}
  assert test[3].target == 2 and 5 in test[3].history.tolist()  # kept at evaluation
  assert all(not np.isin(s, [2, 5]).any() for s in data_lib.training_sequences(tiny_dataset))
  data_lib.save(tiny_dataset, str(tmp_path), source="test")
  np.testing.assert_array_equal(data_lib.load(str(tmp_path)).cold_items, [2, 5])
  cold = data_lib.choose_cold_items(synthetic.generate(synthetic.SyntheticConfig(200, 50)), 0.05)
  assert len(set(cold.tolist())) == len(cold) > 0


def test_unseen_items_are_ligers_cold_items_and_prepare_marks_them(tmp_path):
  from tiger_jax.data import Dataset
  from tiger_jax.data.prepare import prepare
  seqs = [[0, 1, 2, 3, 4], [0, 1, 5], [1, 2, 3, 4, 5]]  # training parts: 0 1 2 | 0 | 1 2 3
  d = Dataset(name="t", user_ids=["a", "b", "c"], item_ids=[f"i{i}" for i in range(7)],
              sequences=[np.asarray(s, np.int32) for s in seqs])
  np.testing.assert_array_equal(data_lib.unseen_items(d), [4, 5])  # item 6 occurs nowhere
  config = synthetic.SyntheticConfig(200, 50)
  manifest = prepare("synthetic", str(tmp_path / "s"), synthetic_config=config,
                     content_source="none", cold_start_unseen=True)
  prepared = data_lib.load(str(tmp_path / "s"))
  np.testing.assert_array_equal(prepared.cold_items, data_lib.unseen_items(prepared))
  assert len(prepared.cold_items) > 0 and manifest["config"]["cold_start_unseen"] is True
  assert not any(np.isin(s, prepared.cold_items).any()
                 for s in data_lib.training_sequences(prepared))
  with pytest.raises(data_lib.DataError, match="two protocols"):
    prepare("synthetic", str(tmp_path / "x"), synthetic_config=config, content_source="none",
            cold_start_unseen=True, cold_start_fraction=0.05)
  assert not (tmp_path / "x").exists()


def test_prepare_takes_text_where_item_meta_exists(tmp_path):
  from tiger_jax.data.prepare import prepare
  src = tmp_path / "src"
  src.mkdir()
  _meta_folder(src, num_items=30)
  (src / "item2attributes.json").write_text(json.dumps({str(i): [i % 3 + 1, 7] for i in range(1, 31)}))
  with_text = prepare("preprocessed", str(tmp_path / "a"), str(src))
  assert with_text["config"]["item_vectors"]["source"] == "text"
  assert with_text["config"]["read_report"]["item_meta"]["items_without_text"] == 0
  assert data_lib.load(str(tmp_path / "a")).item_categories[0] == ["Nails"]
  (src / "item_meta.jsonl").unlink()  # an S3-Rec folder without titles (e.g. Sports)
  without = prepare("preprocessed", str(tmp_path / "b"), str(src))
  assert without["config"]["item_vectors"]["source"] == "attributes"
  assert "read_report" not in without["config"]


def test_a_kill_during_the_tfds_build_leaves_the_stage_undone(tmp_path, monkeypatch):
  from tiger_jax.data import prepare as prepare_lib
  config = synthetic.SyntheticConfig(num_items=60, num_users=40)
  out = tmp_path / "data"

  def killed(*args):
    raise KeyboardInterrupt  # kill -9 has the same effect on what is on disk here
  monkeypatch.setattr(prepare_lib, "build_tfds", killed)
  with pytest.raises(KeyboardInterrupt):
    prepare_lib.prepare("synthetic", str(out), content_source="attributes", synthetic_config=config)
  assert (out / "dataset.npz").exists() and not (out / "manifest.json").exists()
  monkeypatch.undo()
  manifest = prepare_lib.prepare("synthetic", str(out), content_source="attributes",
                                 synthetic_config=config)
  assert "tfds" in manifest["files"] and (out / "manifest.json").exists()
  # A rerun that is killed no longer looks finished either.
  monkeypatch.setattr(prepare_lib, "build_tfds", killed)
  with pytest.raises(KeyboardInterrupt):
    prepare_lib.prepare("synthetic", str(out), content_source="attributes", synthetic_config=config)
  assert not (out / "manifest.json").exists()


def test_a_prepared_folders_command_holds_no_machine_path(tmp_path, monkeypatch):
  """The manifest keeps the absolute source path the pipeline resolved; the command a record
  quotes writes it as typed from the working directory (the repository root), and a path
  elsewhere as it is."""
  import json
  from tiger_jax.data import dataset as dataset_lib
  repo = tmp_path / "repo"
  (repo / "prepared").mkdir(parents=True)
  monkeypatch.chdir(repo)
  shared = os.path.join(str(repo), "..", "shared", "data", "beauty")
  config = {"source": "interactions", "interactions": shared, "items": "/elsewhere/items.jsonl",
            "category": "beauty"}
  (repo / "prepared" / "manifest.json").write_text(json.dumps({"config": config}))
  command = dataset_lib.prepare_command("prepared")["command"]
  assert command == ("python -m tiger_jax.data --source=interactions --category=beauty "
                     "--interactions=../shared/data/beauty --items=/elsewhere/items.jsonl "
                     "--out_dir=DATA_DIR")
  assert str(tmp_path) not in command
  from tiger_jax import io_utils
  assert io_utils.near_relpath("gs://bucket/runs/x", str(repo)) == "gs://bucket/runs/x"
  assert io_utils.near_relpath("prepared", str(repo)) == "prepared"
