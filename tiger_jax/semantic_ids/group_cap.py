"""A ceiling on how many items share one Semantic-ID prefix: the last level's overflow moves
to the nearest last-level codeword with room.

Items whose content is (nearly) the same get the same codes from any quantizer; the 4th token
then tells them apart by item order alone, which a model can only memorize. On Toys, a few
dozen title-less video games (whose whole text is a category list) formed groups of up to 17
on some seeds. `cap_groups` keeps, in each group larger than `max_group`, the members nearest
the group's last codeword, and moves each of the others to the nearest last-level codeword
(under the same first levels) whose group has room. Only the last code changes, and only for
the overflow, so the IDs stay as semantic as the quantizer made them (LC-Rec balances the last
level for the same reason, by Sinkhorn over every item; this changes the fewest IDs).
"""

from __future__ import annotations

import collections

import numpy as np


def cap_groups(codes: np.ndarray, residuals: np.ndarray, codebook: np.ndarray,
               max_group: int) -> np.ndarray:
  """codes [n, levels] -> codes with no group of identical rows larger than max_group.

  residuals [n, d]: what the last level quantized (the input of its codebook);
  codebook [k, d]: the last level's codewords. Groups are handled in the order of their
  first item; in a group, members nearer its codeword stay first (ties: item order); each
  moved item takes the nearest codeword whose group holds fewer than max_group items.
  Raises ValueError when max_group < 1 or codes cannot fit (n > max_group * k under a prefix).
  """
  codes = np.array(codes, np.int32)
  if max_group < 1:
    raise ValueError(f"max_group must be >= 1, got {max_group}")
  residuals = np.asarray(residuals, np.float32)
  codebook = np.asarray(codebook, np.float32)
  if len(residuals) != len(codes) or codebook.shape[1] != residuals.shape[1]:
    raise ValueError(f"codes {codes.shape}, residuals {residuals.shape} and codebook "
                     f"{codebook.shape} do not agree")
  count = collections.Counter(map(tuple, codes.tolist()))
  members = collections.defaultdict(list)
  for i, row in enumerate(codes.tolist()):
    members[tuple(row)].append(i)
  for key in list(members):  # insertion order = order of first item
    group = members[key]
    if len(group) <= max_group:
      continue
    dist = ((residuals[group] - codebook[key[-1]]) ** 2).sum(-1)
    order = np.argsort(dist, kind="stable")
    for i in (group[j] for j in order[max_group:]):
      prefix = key[:-1]
      by_distance = np.argsort(((codebook - residuals[i]) ** 2).sum(-1), kind="stable")
      for c in by_distance.tolist():
        if count[(*prefix, c)] < max_group:
          break
      else:
        raise ValueError(f"{len(group)} items under prefix {prefix} do not fit "
                         f"{len(codebook)} codewords of at most {max_group} items")
      count[key] -= 1
      count[(*prefix, c)] += 1
      codes[i, -1] = c
  return codes
