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
import shutil
import tempfile
from typing import Any, Iterator

import numpy as np


_UMASK = os.umask(0)
os.umask(_UMASK)


def is_remote(path: str) -> bool:
  """gs://, s3:// and other URLs go through tf.io.gfile; local paths through os."""
  return "://" in str(path)


def _gfile():
  import tensorflow as tf  # only for remote paths: a heavy import
  return tf.io.gfile


def makedirs(path: str) -> None:
  if is_remote(path):
    _gfile().makedirs(path)
  else:
    os.makedirs(path, exist_ok=True)


def exists(path: str) -> bool:
  return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
  return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def listdir(path: str) -> list[str]:
  return [f.rstrip("/") for f in _gfile().listdir(path)] if is_remote(path) else os.listdir(path)


def rmtree(path: str) -> None:
  if is_remote(path):
    if _gfile().exists(path):
      _gfile().rmtree(path)
  else:
    shutil.rmtree(path, ignore_errors=True)


def remove(path: str) -> None:
  """Deletes one file."""
  if is_remote(path):
    _gfile().remove(path)
  else:
    os.remove(path)


def rename(src: str, dest: str) -> None:
  """Moves a file or folder (same filesystem)."""
  if is_remote(src):
    _gfile().rename(src, dest)
  else:
    os.rename(src, dest)


def mtime(path: str) -> float:
  if is_remote(path):
    return _gfile().stat(path).mtime_nsec / 1e9
  return os.path.getmtime(path)


def open_file(path: str, mode: str = "r"):
  return _gfile().GFile(path, mode) if is_remote(path) else open(path, mode)


def load_array(path: str) -> np.ndarray:
  """np.load of a .npy file, local or remote."""
  with open_file(path, "rb") as f:
    return np.load(io.BytesIO(f.read()) if is_remote(path) else f)


def load_arrays(path: str) -> dict[str, np.ndarray]:
  """All arrays of a .npz file, local or remote."""
  with open_file(path, "rb") as f:
    with np.load(io.BytesIO(f.read())) as z:
      return {k: z[k] for k in z.files}


def abspath(path: str) -> str:
  return path if is_remote(path) else os.path.abspath(path)


def near_relpath(path: str, base: str) -> str:
  """`path` relative to the folder `base` when it lies under base's parent (the repository
  and the data beside it: /x/repo/../shared/d -> ../shared/d), else `path` as it is: how a
  command or record names a file without a machine's absolute path."""
  if is_remote(path):
    return path
  full, base = os.path.abspath(path), os.path.abspath(base)
  return os.path.relpath(full, base) if full.startswith(os.path.dirname(base) + os.sep) else path


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w") -> Iterator[io.IOBase]:
  """Opens a temporary file beside `path`; renames it onto `path` on success."""
  if is_remote(path):  # object stores: write a temporary object, then rename it
    gfile = _gfile()
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
      with gfile.GFile(tmp, mode) as f:
        yield f
      gfile.rename(tmp, path, overwrite=True)
    except BaseException:
      if gfile.exists(tmp):
        gfile.remove(tmp)
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
  with open_file(path) as f:
    return json.load(f)


def write_npy(path: str, array: np.ndarray) -> None:
  buf = io.BytesIO()  # serialised in memory: object stores cannot seek
  np.save(buf, array)
  with atomic_open(path, "wb") as f:
    f.write(buf.getvalue())


def write_npz(path: str, **arrays: np.ndarray) -> None:
  buf = io.BytesIO()
  np.savez(buf, **arrays)
  with atomic_open(path, "wb") as f:
    f.write(buf.getvalue())


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
      "files": sorted(f for f in listdir(out_dir) if not f.startswith(".")),
  }
  write_json(os.path.join(out_dir, "manifest.json"), manifest)
  return manifest


def _json_default(obj: Any) -> Any:
  if isinstance(obj, np.generic):
    return obj.item()
  if isinstance(obj, np.ndarray):
    return obj.tolist()
  raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
