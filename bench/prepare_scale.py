r"""How the interaction-log reader scales: time and peak memory against the log's size.

  python bench/prepare_scale.py [--rows=1000000,3000000,10000000] [--format=csv] \
      [--work_dir=/tmp/prepare_scale] [--record=bench/results/prepare_scale.json]

For each size, a log is generated (users = rows / 10, 200,000 items drawn Zipf-like,
random timestamps, an item file with a title and categories per item) and read in a fresh
process: read, 5-core filter, order, leave-one-out splits (every user's train, validation
and test examples counted), and the prepared files written (`data.save`). The text
embedding is not in it: it is measured apart, in items/s, by the data stage's progress
line. Time is that process's wall time; peak memory its maximum resident set. Run alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ITEMS = 200_000


def generate(path: str, items_path: str, rows: int, fmt: str, seed: int = 0) -> None:
  import numpy as np
  import pyarrow as pa
  import pyarrow.csv as pacsv
  import pyarrow.parquet as pq
  rng = np.random.default_rng(seed)
  users = rng.integers(0, max(1, rows // 10), rows)
  popularity = 1.0 / np.arange(1, ITEMS + 1) ** 0.8
  items = rng.choice(ITEMS, rows, p=popularity / popularity.sum())
  table = pa.table({"user_id": pa.array(np.char.add("u", users.astype(str))),
                    "item_id": pa.array(np.char.add("i", items.astype(str))),
                    "timestamp": rng.integers(1_300_000_000, 1_400_000_000, rows)})
  if fmt == "parquet":
    pq.write_table(table, path)
  else:
    pacsv.write_csv(table, path)
  ids = np.char.add("i", np.arange(ITEMS).astype(str))
  with open(items_path, "w") as f:
    for k, i in enumerate(ids):
      f.write(json.dumps({"item_id": str(i), "title": f"Product {k} of brand {k % 997}",
                          "categories": [["Store", f"Department {k % 31}",
                                          f"Shelf {k % 503}"]]}) + "\n")


def child(path: str, items_path: str, out_dir: str) -> None:
  from tiger_jax import data as data_lib
  from tiger_jax.data import interactions
  start = time.time()
  dataset = interactions.read(path, items_path)
  read_s = time.time() - start
  counts = {split: sum(len(data_lib.split_examples(s, split)) for s in dataset.sequences)
            for split in data_lib.SPLITS}
  data_lib.save(dataset, out_dir, source=path)
  print(json.dumps({"read_kcore_order_s": round(read_s, 1), "examples": counts,
                    **dataset.read_report["interactions"]}))


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--rows", default="1000000,3000000,10000000")
  p.add_argument("--format", default="csv", choices=["csv", "parquet"])
  p.add_argument("--work_dir", default="/tmp/prepare_scale")
  p.add_argument("--record", default=None)
  p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.child:
    return child(*args.child)
  os.makedirs(args.work_dir, exist_ok=True)
  results = []
  for rows in map(int, args.rows.split(",")):
    log = os.path.join(args.work_dir, f"log_{rows}.{args.format}")
    items = os.path.join(args.work_dir, "items.jsonl")
    if not os.path.exists(log):
      generate(log, items, rows, args.format)
    start = time.time()
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", log, items,
                             os.path.join(args.work_dir, f"prepared_{rows}")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    out, err = proc.communicate()
    wall = time.time() - start
    if proc.returncode:
      raise SystemExit(f"error: reading {log} failed:\n{err[-2000:]}")
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    row = {"rows": rows, "log_mb": round(os.path.getsize(log) / 2**20, 1),
           "wall_s": round(wall, 1), "peak_rss_gb": round(peak_gb, 2),
           **json.loads(out.strip().splitlines()[-1])}
    print(json.dumps(row), flush=True)
    results.append(row)
  from tiger_jax.partitioning import hardware
  record = {"format": args.format, "items": ITEMS, "hardware": hardware(),
            "command": " ".join(["python", "bench/prepare_scale.py", *sys.argv[1:]]),
            "note": "peak_rss_gb is the largest child so far (RUSAGE_CHILDREN): sizes run in "
                    "increasing order, so each row's figure is its own", "runs": results}
  if args.record:
    from tiger_jax import io_utils
    io_utils.write_json(args.record, record)


if __name__ == "__main__":
  main()
