"""Input-length buckets: the few padded widths a batch of histories is trimmed to.

Pure integer functions, free of TensorFlow, so that the evaluator and the recommender shape
their batches exactly as `input_pipeline` does without loading it. An input is the user token
followed by whole item IDs of `id_length` tokens; each bucket bound is such a length.
"""

from __future__ import annotations

from typing import Sequence


def bucket_boundaries(input_length: int, id_length: int, num_buckets: int) -> list[int]:
  """Input lengths (user token + whole item IDs) at which buckets end, the last = input_length
  (also where a set TASK_FEATURE_LENGTHS does not end on a whole ID)."""
  items = (input_length - 1) // id_length
  ends = sorted({max(1, round(items * (b + 1) / num_buckets)) for b in range(num_buckets)})
  return [1 + e * id_length for e in ends[:-1]] + [input_length]


def bucket_width(bounds: Sequence[int], length: int) -> int:
  """The smallest bucket bound an input of `length` tokens fits (its padded width)."""
  return min(b for b in bounds if b >= length)
