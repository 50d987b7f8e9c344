"""Jitted functions shared by the objects that would trace them alike.

A `Trainer` or `Retriever` jits its steps over its own model and settings, and JAX keys its
cache of traces on the jitted function: a second trainer of the same model (a resumed
`train` call in the same process) or a second retriever with the same settings (the
evaluations of one checkpoint after another that a learning curve runs) would trace, lower
and compile every shape again, seconds each. `shared` hands out one jitted function per key
instead.

A key names the objects it depends on by identity (`id`), the rest by value; the entry holds
those objects, so that an id in a live key always means the same object. At most
`MAX_ENTRIES` entries are kept, the least recently used dropped first.
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable, Hashable, TypeVar

T = TypeVar("T")
MAX_ENTRIES = 16

_entries: collections.OrderedDict[Hashable, tuple[tuple[Any, ...], Any]] = (
    collections.OrderedDict())
_lock = threading.Lock()


def shared(kind: str, objects: tuple[Any, ...], settings: Hashable, build: Callable[[], T]) -> T:
  """build()'s result for (kind, the identities of `objects`, `settings`), built once and
  reused while cached. `build` must depend only on `objects` and on what `settings` names."""
  key = (kind, tuple(id(o) for o in objects), settings)
  with _lock:
    entry = _entries.get(key)
    if entry is not None and all(a is b for a, b in zip(entry[0], objects)):
      _entries.move_to_end(key)
      return entry[1]
  value = build()
  with _lock:
    _entries[key] = (objects, value)
    _entries.move_to_end(key)
    while len(_entries) > MAX_ENTRIES:
      _entries.popitem(last=False)
  return value


def clear() -> None:
  with _lock:
    _entries.clear()
