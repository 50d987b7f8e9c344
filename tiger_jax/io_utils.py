"""Atomic artifact writes and run manifests.

Every artifact is written to a temporary file in the destination folder and
renamed into place, so a killed run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import platform
import tempfile
from typing import Any, Iterator

import numpy as np


_UMASK = os.umask(0)
os.umask(_UMASK)


def is_remote(path: str) -> bool:
  """gs://, s3:// and other URLs go through tf.io.gfile; local paths through os."""
  return "://" in str(path)


def makedirs(path: str) -> None:
  if is_remote(path):
    import tensorflow as tf
    tf.io.gfile.makedirs(path)
  else:
    os.makedirs(path, exist_ok=True)


def abspath(path: str) -> str:
  return path if is_remote(path) else os.path.abspath(path)


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w") -> Iterator[io.IOBase]:
  """Opens a temporary file beside `path`; renames it onto `path` on success."""
  if is_remote(path):  # object stores: write a temporary object, then rename it
    import tensorflow as tf
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
      with tf.io.gfile.GFile(tmp, mode) as f:
        yield f
      tf.io.gfile.rename(tmp, path, overwrite=True)
    except BaseException:
      if tf.io.gfile.exists(tmp):
        tf.io.gfile.remove(tmp)
      raise
    return
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
  try:
    with os.fdopen(fd, mode) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)
    raise


def write_json(path: str, obj: Any) -> None:
  with atomic_open(path, "w") as f:
    json.dump(obj, f, indent=2, sort_keys=True, default=_json_default)
    f.write("\n")


def read_json(path: str) -> Any:
  if is_remote(path):
    import tensorflow as tf
    with tf.io.gfile.GFile(path) as f:
      return json.load(f)
  with open(path) as f:
    return json.load(f)


def write_npy(path: str, array: np.ndarray) -> None:
  with atomic_open(path, "wb") as f:
    np.save(f, array)


def write_npz(path: str, **arrays: np.ndarray) -> None:
  with atomic_open(path, "wb") as f:
    np.savez(f, **arrays)


def write_manifest(out_dir: str, stage: str, source: str, counts: dict[str, Any],
                   config: dict[str, Any]) -> dict[str, Any]:
  """Writes `out_dir/manifest.json` describing what a stage wrote."""
  manifest = {
      "stage": stage,
      "source": source,
      "counts": counts,
      "config": config,
      "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "host": platform.node(),
      "files": sorted(f for f in os.listdir(out_dir) if not f.startswith(".")),
  }
  write_json(os.path.join(out_dir, "manifest.json"), manifest)
  return manifest


def _json_default(obj: Any) -> Any:
  if isinstance(obj, np.generic):
    return obj.item()
  if isinstance(obj, np.ndarray):
    return obj.tolist()
  raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
