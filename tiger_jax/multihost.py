"""Decoding on several hosts: each host feeds its own rows and gets its own rows back, all hosts
step through their batches together, and the ranked lists are gathered onto every host.

With one process every function here hands its input back and runs no collective.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

import jax
import numpy as np
from jax.experimental import multihost_utils

# What a padding batch holds: the keys `retrieval.retrieve` reads.
PAD_KEYS = ("inputs", "mask", "target_item", "user")


def several() -> bool:
  return jax.process_count() > 1


def to_global(rows: np.ndarray, sharding: jax.sharding.NamedSharding) -> Any:
  """This host's rows -> one global array split over `sharding` (its leading axis)."""
  if not several():
    return rows
  return jax.make_array_from_process_local_data(sharding, np.asarray(rows))


def to_local(tree: Any, sharding: jax.sharding.NamedSharding) -> Any:
  """Global arrays split like `sharding` -> this host's rows of each, as numpy arrays."""
  if several():
    tree = multihost_utils.global_array_to_host_local_array(tree, sharding.mesh, sharding.spec)
  return jax.tree.map(np.asarray, tree)


def lockstep(batches: Iterable[Mapping[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
  """Each host's decoding batches -> batches all hosts take in step, so that every host runs
  the same compiled search the same number of times: at each step the inputs are padded on the
  right to the widest host's (length buckets differ between hosts), and a host whose batches
  have run out takes a batch of padding rows (mask 0). Every host's batches must have the same
  number of rows."""
  it = iter(batches)
  while True:
    batch = next(it, None)
    mine = (0, 0, 0) if batch is None else (1, *np.shape(batch["inputs"]))
    every = np.asarray(multihost_utils.process_allgather(np.asarray(mine, np.int64)))
    if not every[:, 0].any():
      return
    rows = set(every[every[:, 0] > 0, 1].tolist())
    if len(rows) > 1:
      raise ValueError(f"hosts' decoding batches have different numbers of rows {sorted(rows)}: "
                       "give every host the same batch size")
    n, width = rows.pop(), int(every[:, 2].max())
    if batch is None:
      batch = {k: np.zeros((n, width) if k == "inputs" else (n,), np.int32) for k in PAD_KEYS}
    else:
      batch = dict(batch)
      inputs = batch["inputs"]
      batch["inputs"] = np.pad(inputs, ((0, 0), (0, width - inputs.shape[1])))
    yield batch


def gather_rows(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Each host's rows of each array (hosts may hold different numbers) -> every host's rows,
  host 0's first, on every host."""
  arrays = {k: np.asarray(v) for k, v in arrays.items()}
  if not several():
    return arrays
  counts = np.asarray(multihost_utils.process_allgather(
      np.asarray([len(v) for v in arrays.values()], np.int64)))  # [hosts, arrays]
  out = {}
  for j, (key, value) in enumerate(arrays.items()):
    if not counts[:, j].any():
      out[key] = value
      continue
    padded = np.zeros((int(counts[:, j].max()),) + value.shape[1:], value.dtype)
    padded[:len(value)] = value
    every = np.asarray(multihost_utils.process_allgather(padded))
    out[key] = np.concatenate([every[p, :n] for p, n in enumerate(counts[:, j].tolist())])
  return out
