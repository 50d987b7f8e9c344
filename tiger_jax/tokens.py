"""One integer vocabulary for TIGER's token streams.

  0            pad
  1            eos
  2 ...        one block per Semantic-ID level: codeword c of level l is
               token level_offset[l] + c (levels 1-3 have codebook size,
               the 4th as many as the largest collision group)
  user_offset  user tokens: the user id hashed into `num_user_buckets` buckets
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Sequence

import numpy as np

PAD_ID = 0
EOS_ID = 1
NUM_SPECIAL = 2
NUM_USER_BUCKETS = 2000


@dataclasses.dataclass(frozen=True)
class TokenLayout:
  level_sizes: tuple[int, ...]  # e.g. (256, 256, 256, 12)
  num_user_buckets: int = NUM_USER_BUCKETS

  @classmethod
  def for_ids(cls, ids: np.ndarray, codebook_size: int = 256,
              num_user_buckets: int = NUM_USER_BUCKETS) -> "TokenLayout":
    """The layout for Semantic IDs [num_items, levels]: codebook blocks + a collision block."""
    levels = ids.shape[1]
    last = int(ids[:, -1].max()) + 1 if len(ids) else 1
    sizes = tuple([max(codebook_size, int(ids[:, l].max()) + 1) for l in range(levels - 1)] + [last])
    return cls(sizes, num_user_buckets)

  @property
  def id_length(self) -> int:
    return len(self.level_sizes)

  @property
  def level_offsets(self) -> np.ndarray:
    return NUM_SPECIAL + np.concatenate([[0], np.cumsum(self.level_sizes)[:-1]]).astype(np.int32)

  @property
  def level_blocks(self) -> tuple[tuple[int, int], ...]:
    """(first token, size) of each level's block of tokens."""
    return tuple((int(o), int(s)) for o, s in zip(self.level_offsets, self.level_sizes))

  @property
  def user_offset(self) -> int:
    return NUM_SPECIAL + int(sum(self.level_sizes))

  @property
  def vocab_size(self) -> int:
    return self.user_offset + self.num_user_buckets

  def item_tokens(self, ids: np.ndarray) -> np.ndarray:
    """Semantic IDs [..., levels] -> tokens [..., levels]."""
    ids = np.asarray(ids)
    if ids.shape[-1] != self.id_length:
      raise ValueError(f"IDs have {ids.shape[-1]} levels; the layout has {self.id_length}")
    if (ids < 0).any() or (ids >= np.asarray(self.level_sizes)).any():
      raise ValueError("a codeword is outside its level's block")
    return (ids + self.level_offsets).astype(np.int32)

  def tokens_to_ids(self, tokens: np.ndarray) -> np.ndarray:
    """Tokens [..., levels] -> Semantic IDs; -1 where a token is not of its level's block."""
    ids = np.asarray(tokens) - self.level_offsets
    return np.where((ids >= 0) & (ids < np.asarray(self.level_sizes)), ids, -1).astype(np.int32)

  def user_tokens(self, user_ids: Sequence[str]) -> np.ndarray:
    """The hashing trick: crc32 of the original user id, modulo the bucket count."""
    return np.array([self.user_offset + zlib.crc32(str(u).encode()) % self.num_user_buckets
                     for u in user_ids], np.int32)

  def level_of_token(self, token: int) -> int:
    """Which Semantic-ID level a token belongs to; -1 for special and user tokens."""
    for l, (o, s) in enumerate(self.level_blocks):
      if o <= token < o + s:
        return l
    return -1
