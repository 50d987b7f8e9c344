"""Fuzzing both readers: every damaged input ends in a DataError naming the file, or a read.

Random truncations, deleted fields, values of the wrong type and odd encodings of
one file at a time, over a small valid folder of each form (S3-Rec/P5 with
item_meta.jsonl; raw McAuley reviews + meta). 200 cases per reader, seeded.
"""

import gzip
import json
import os
import random
import shutil

import pytest

from tiger_jax.data import DataError, amazon_raw, preprocessed

CASES = 200
ODD_VALUES = [None, 7, -1, 3.5, "x", "", [], {}, [1, "a"], True, "\u00e9\u4e2d", 10**30]


def _preprocessed_folder(path):
  rows = [f"{u} " + " ".join(str((u * 3 + k) % 12 + 1) for k in range(5)) for u in range(1, 21)]
  (path / "sequences.txt").write_text("\n".join(rows) + "\n")
  asins = {str(i): f"B{i:05d}" for i in range(1, 13)}
  (path / "datamaps.json").write_text(json.dumps(
      {"id2item": asins, "id2user": {str(u): f"U{u}" for u in range(1, 21)}}))
  (path / "item2attributes.json").write_text(json.dumps({str(i): [i % 4, 9] for i in range(1, 13)}))
  (path / "item_meta.jsonl").write_text("".join(json.dumps(
      {"asin": a, "title": f"Item &amp; {i}", "categories": [["Beauty", f"C{int(i) % 3}"]]}) + "\n"
      for i, a in asins.items()))
  return ["sequences.txt", "datamaps.json", "item2attributes.json", "item_meta.jsonl"]


def _raw_folder(path):
  reviews = [{"reviewerID": f"U{u}", "asin": f"P{(u + k) % 9}", "unixReviewTime": 100 * k + u,
              "overall": 5.0} for u in range(12) for k in range(4)]
  with gzip.open(path / "reviews_Beauty_5.json.gz", "wt") as f:
    f.writelines(json.dumps(r) + "\n" for r in reviews)
  with gzip.open(path / "meta_Beauty.json.gz", "wt") as f:
    f.writelines(repr({"asin": f"P{i}", "title": f"Thing {i}", "price": 1.5 * i, "brand": "Acme",
                       "categories": [["Beauty", f"C{i % 2}"]]}) + "\n" for i in range(9))
  return ["reviews_Beauty_5.json.gz", "meta_Beauty.json.gz"]


def _read_bytes(path):
  opener = gzip.open if str(path).endswith(".gz") else open
  with opener(path, "rb") as f:
    return f.read()


def _write_bytes(path, data):
  opener = gzip.open if str(path).endswith(".gz") else open
  with opener(path, "wb") as f:
    f.write(data)


def _mutate_record(line: bytes, rng: random.Random) -> bytes:
  """Deletes a field of a JSON / Python-literal record, or gives it a value of another type."""
  import ast
  text = line.decode("utf-8", "replace")
  try:
    obj = json.loads(text)
  except ValueError:
    try:
      obj = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
      return line[: len(line) // 2]
  if isinstance(obj, dict) and obj:
    key = rng.choice(sorted(obj, key=str))
    if rng.random() < 0.4:
      del obj[key]
    else:
      obj[key] = rng.choice(ODD_VALUES)
    return (json.dumps(obj) if rng.random() < 0.5 else repr(obj)).encode() + b"\n"
  return json.dumps(rng.choice(ODD_VALUES)).encode() + b"\n"


def _damage(data: bytes, rng: random.Random) -> bytes:
  kind = rng.choice(["truncate", "record", "record", "encoding", "bytes", "lines"])
  if kind == "truncate":
    return data[:rng.randrange(len(data) + 1)]
  lines = data.splitlines(keepends=True)
  if kind == "record" and lines:
    i = rng.randrange(len(lines))
    if data.lstrip().startswith(b"{") and len(lines) == 1:  # one JSON document (the .json files)
      return _mutate_record(data, rng)
    lines[i] = _mutate_record(lines[i], rng)
    return b"".join(lines)
  if kind == "encoding":
    text = data.decode("utf-8")
    return rng.choice([b"\xef\xbb\xbf" + data, text.encode("utf-16"), text.encode("latin-1", "replace")
                       + b"\xe9\xff", data.replace(b"e", b"\xe9", 3)])
  if kind == "bytes":
    pos = rng.randrange(len(data) + 1)
    return data[:pos] + rng.choice([b"\x00", b"\xff\xfe", b"\n\n", b"{", b"]", b"-1 ", b"\r"]) + data[pos:]
  rng.shuffle(lines)  # lines: reordered, one dropped or repeated
  return b"".join(lines[1:] if rng.random() < 0.5 else lines + lines[:1])


@pytest.mark.parametrize("form", ["preprocessed", "raw"])
def test_damaged_files_give_a_data_error_naming_the_file_or_a_read(form, tmp_path):
  rng = random.Random(int(os.environ.get("FUZZ_SEED", 0)) * 2 + (form == "raw"))
  base = tmp_path / "base"
  base.mkdir()
  files = (_preprocessed_folder if form == "preprocessed" else _raw_folder)(base)
  outcomes = {"read": 0, "DataError": 0}
  for case in range(CASES):
    folder = tmp_path / f"case{case}"
    shutil.copytree(base, folder)
    name = rng.choice(files)
    damaged = _damage(_read_bytes(folder / name), rng)
    _write_bytes(folder / name, damaged)
    try:
      if form == "preprocessed":
        ds = preprocessed.read(str(folder))
      else:
        ds = amazon_raw.read(str(folder), "beauty")
    except DataError as e:
      outcomes["DataError"] += 1
      assert str(folder) in str(e) and os.path.basename(str(e).split(":")[0]) in files, (
          f"case {case} ({name}): the error does not name the file: {e}")
      continue
    except Exception as e:  # anything else is a bug
      pytest.fail(f"case {case}: damaging {name} gave {type(e).__name__}: {e}\n"
                  f"first bytes: {damaged[:200]!r}")
    outcomes["read"] += 1
    assert ds.num_users > 0 and len(ds.sequences) == ds.num_users  # a usable dataset
    assert all(len(s) >= 3 and s.max() < ds.num_items for s in ds.sequences)
    if ds.item_text is not None:
      assert len(ds.item_text) == ds.num_items
  print(form, outcomes)
  assert outcomes["DataError"] > CASES // 4 and outcomes["read"] > 0, outcomes
