"""Downloads the raw McAuley-lab Amazon 2014 files (resumable, with progress)."""

from __future__ import annotations

import logging
import os
import time
import urllib.request

from tiger_jax.data.amazon_raw import category_name

BASE_URL = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles"


def urls(category: str) -> list[str]:
  name = category_name(category)
  return [f"{BASE_URL}/reviews_{name}_5.json.gz", f"{BASE_URL}/meta_{name}.json.gz"]


def fetch(url: str, out_dir: str, chunk: int = 1 << 20, timeout: float = 60.0) -> str:
  """Fetches `url` into `out_dir`, resuming a partial `.part` file; returns the path."""
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, os.path.basename(url))
  if os.path.exists(path):
    logging.info("%s: already here", path)
    return path
  part = path + ".part"
  have = os.path.getsize(part) if os.path.exists(part) else 0
  request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
  with urllib.request.urlopen(request, timeout=timeout) as response:
    if have and response.status != 206:  # server ignored the range: start over
      have = 0
    total = have + int(response.headers.get("Content-Length", 0) or 0)
    start = time.time()
    with open(part, "ab" if have else "wb") as f:
      got = have
      while block := response.read(chunk):
        f.write(block)
        got += len(block)
        rate = (got - have) / max(time.time() - start, 1e-9)
        eta = (total - got) / rate if total and rate else float("nan")
        logging.info("%s: %.1f/%.1f MB, %.1f MB/s, ETA %.0fs", os.path.basename(url),
                     got / 1e6, total / 1e6, rate / 1e6, eta)
  os.replace(part, path)
  return path


def download(category: str, out_dir: str) -> list[str]:
  return [fetch(u, out_dir) for u in urls(category)]
