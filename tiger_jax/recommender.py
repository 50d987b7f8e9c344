"""Recommendations from a trained run, by the data's original item ids.

  rec = Recommender.load("runs/beauty")                 # its best checkpoint, else latest
  for r in rec.recommend([["B004756YJA", "B0020YLEYK"]], k=10)[0]:
    print(r.rank, r.item_id, r.title, r.score, r.semantic_id)

It decodes with the run's own config (its config.gin), Semantic IDs, vocabulary and
constrained beam search: `retrieval.Retriever`, the evaluation's predict function, on
inputs built as the run's task builds them (user token, then the history's IDs, the last
`MAX_HISTORY` items, padded to the evaluation's bucket widths; a request's histories
decoded in batches of a power of two rows, at most `MAX_BATCH`, so that requests of any size
reuse a few compiled shapes). A test user's history
with that user's id gives that user's ranked list in the run's results. Loading restores
parameters only (no training step runs); JAX's persistent compilation cache (in
`cache_dir`, default MODEL_DIR/jit_cache) makes a second process's first call fast.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Sequence

import numpy as np

from tiger_jax import buckets, data as data_lib
from tiger_jax.data.item_meta import title_of
from tiger_jax.run_dir import RunDir

ANONYMOUS_USER = ""  # the user id whose hashed token a history without a user gets
MAX_BATCH = 64  # histories decoded at once (the evaluation's batch); more go in turns


class RecommendError(ValueError):
  """A request the run cannot answer (unknown ids, an empty history); one line."""


@dataclasses.dataclass(frozen=True)
class Recommendation:
  rank: int
  item_id: str  # the data's original id
  title: str | None  # where the data has item text with a title
  score: float  # the beam's log-probability (NaN for a new item: it came from no beam)
  semantic_id: tuple[int, ...]
  new_item: bool = False  # an item without training interactions (include_new_items)


def use_compilation_cache(cache_dir: str) -> None:
  """JAX's persistent compilation cache in `cache_dir` (a second process reuses the beam
  search's executables instead of compiling them), unless one is already set."""
  import jax
  if jax.config.jax_compilation_cache_dir:
    return
  os.makedirs(cache_dir, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", cache_dir)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _pipeline_dirs(gin) -> dict:
  """The data and Semantic-ID folders the pipeline ran on where config.gin binds them to
  `pipeline` itself (`--gin.pipeline.data_dir=...`) rather than through DATA_DIR."""
  out = {}
  for name in ("data_dir", "semantic_id_dir"):
    try:
      value = gin.query_parameter(f"pipeline.{name}")
    except ValueError:
      continue
    if isinstance(value, str):
      out[name] = value
  return out


class Recommender:
  """A trained run's model, ready to decode (see the module docstring)."""

  def __init__(self, exp, params, dataset: data_lib.Dataset, beam_size: int, checkpoint: str,
               step: int, dtype: str | None = None, num_buckets: int = 5):
    self.exp, self.params, self.dataset = exp, params, dataset
    self.beam_size, self.checkpoint, self.step, self.dtype = beam_size, checkpoint, step, dtype
    self.index = {item: i for i, item in enumerate(dataset.item_ids)}
    self.user_index = {user: u for u, user in enumerate(dataset.user_ids)}
    self.titles = [title_of(t) for t in dataset.item_text] if dataset.item_text else None
    self.max_items = (exp.feature_lengths["inputs"] - 1) // exp.layout.id_length
    self.bounds = buckets.bucket_boundaries(exp.feature_lengths["inputs"], exp.layout.id_length,
                                           num_buckets)  # the run's TrainerConfig.eval_buckets
    self._item_tokens = exp.layout.item_tokens(exp.ids)
    self._retrievers = {}
    self.new_items = (np.zeros(0, np.int64) if dataset.cold_items is None
                      else np.asarray(dataset.cold_items, np.int64))
    self.model_dir = None  # set by load: where the cold-start settings are

  @classmethod
  def load(cls, model_dir: str, checkpoint: str | None = None, beam_size: int | None = None,
           dtype: str | None = None, cache_dir: str | None = None) -> "Recommender":
    """The run in model_dir at its `checkpoint` ('best' on validation, 'latest'; None: best
    where the run validated, else latest). beam_size: the run's BEAM_SIZE (20) by default;
    recommend's k is at most it. Parses the run's config.gin (gin's config is reset)."""
    import gin
    from tiger_jax import experiment as experiment_lib
    start = time.time()
    config = RunDir(model_dir).config_gin
    if not os.path.exists(config):
      raise RecommendError(f"{model_dir}: no config.gin; pass the folder of a run the pipeline "
                           "or the train binary saved")
    use_compilation_cache(cache_dir or os.path.join(model_dir, "jit_cache"))
    with gin.unlock_config():  # a binary's gin config is locked once parsed
      from tiger_jax import configurables  # registers the names config.gin binds
      gin.clear_config()
      try:
        gin.parse_config_files_and_bindings([config], [f"MODEL_DIR = '{model_dir}'"])
        exp = configurables.experiment(**_pipeline_dirs(gin))
        beam_size = beam_size or configurables.beam_size()
      finally:
        gin.clear_config()
    if checkpoint is None:
      checkpoint = "best" if os.path.isdir(os.path.join(model_dir, "best")) else "latest"
    trainer, state = experiment_lib.restore(exp, model_dir, checkpoint)
    dataset = data_lib.load(exp.data_dir)
    logging.info("loaded %s (%s checkpoint, step %d) in %.1fs", model_dir, checkpoint,
                 int(state.step), time.time() - start)
    rec = cls(exp, state.eval_params, dataset, beam_size, checkpoint, int(state.step), dtype,
              trainer.config.eval_buckets)
    rec.model_dir = model_dir
    return rec

  def new_item_settings(self) -> dict:
    """How `recommend(include_new_items=True)` places new items: the beam-KNN settings the
    run's cold-start study chose on validation (MODEL_DIR/results/cold_start.json), else
    `cold_start.FALLBACK` (logged)."""
    from tiger_jax import cold_start, io_utils
    path = RunDir(self.model_dir).result(cold_start.SETTINGS_FILE) if self.model_dir else None
    if path and io_utils.exists(path):
      return io_utils.read_json(path)
    logging.warning("no cold-start settings chosen on validation in %s: %s", self.model_dir,
                    cold_start.FALLBACK["chosen_on"])
    return dict(cold_start.FALLBACK)

  def _retriever(self, exclude_history: bool):
    from tiger_jax import retrieval
    if exclude_history not in self._retrievers:
      self._retrievers[exclude_history] = retrieval.Retriever(
          self.exp.model, self.exp.layout, self.exp.ids, self.beam_size, dtype=self.dtype,
          exclude_history=exclude_history)
    return self._retrievers[exclude_history]

  def item_indices(self, history: Sequence[str], skip_unknown: bool = False) -> list[int]:
    """Original item ids -> the run's item indices; RecommendError names unknown ones (or,
    skip_unknown, drops them with a warning)."""
    unknown = [str(i) for i in history if str(i) not in self.index]
    if unknown and not skip_unknown:
      raise RecommendError(f"unknown item id{'s' if len(unknown) > 1 else ''} "
                           f"{', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''} "
                           f"(not among the run's {len(self.index):,} items); pass "
                           "--skip_unknown to drop them")
    if unknown:
      logging.warning("dropped %d unknown item ids: %s", len(unknown), ", ".join(unknown[:10]))
    items = [self.index[str(i)] for i in history if str(i) in self.index]
    if not items:
      raise RecommendError("empty history: give at least one known item id")
    return items

  def inputs(self, histories: Sequence[Sequence[int]], users: Sequence[str]) -> np.ndarray:
    """Item-index histories -> input tokens [batch, width] as the task builds them: the user
    token, then the last `max_items` items' IDs, right-padded to a bucket width."""
    rows = [np.concatenate([self.exp.layout.user_tokens([u]),
                            self._item_tokens[np.asarray(h[-self.max_items:])].ravel()])
            for h, u in zip(histories, users)]
    width = buckets.bucket_width(self.bounds, max(len(r) for r in rows))
    out = np.zeros((len(rows), width), np.int32)
    for r, row in enumerate(rows):
      out[r, :len(row)] = row
    return out

  def recommend(self, histories: Sequence[Sequence[str]], k: int = 10,
                exclude_history: bool = False, users: Sequence[str] | None = None,
                skip_unknown: bool = False,
                include_new_items: bool = False) -> list[list[Recommendation]]:
    """Per history (original item ids, oldest first), the top k items. users: the run's
    user ids (their hashed tokens, as in training), else an anonymous user's.
    include_new_items: the catalog's items without training interactions may come too
    (`cold_start.with_new_items`: the content neighbours of the history and the beams, at
    the rank `new_item_settings` gives, for the histories whose nearest new item passes its
    similarity gate); the beams alone rarely return them."""
    if not 1 <= k <= self.beam_size:
      raise RecommendError(f"k={k} must be in 1..{self.beam_size} (the beam size; load "
                           f"with a larger beam_size for more)")
    if include_new_items and not len(self.new_items):
      raise RecommendError("include_new_items: this run's catalog has no item without "
                           "training interactions")
    users = list(users) if users is not None else [ANONYMOUS_USER] * len(histories)
    if len(users) != len(histories):
      raise RecommendError(f"{len(users)} users for {len(histories)} histories")
    item_histories = [self.item_indices(h, skip_unknown) for h in histories]
    items, scores = self._decode(self._retriever(exclude_history),
                                 self.inputs(item_histories, users))
    if include_new_items:
      items, scores = self._with_new_items(item_histories, items, scores, exclude_history)
    is_new = np.zeros(self.dataset.num_items, bool)
    is_new[self.new_items] = True
    return [[Recommendation(rank=r + 1, item_id=self.dataset.item_ids[i],
                            title=self.titles[i] if self.titles else None,
                            score=float(s), semantic_id=tuple(int(c) for c in self.exp.ids[i]),
                            new_item=bool(is_new[i]))
             for r, (i, s) in enumerate(zip(row[:k], row_scores[:k])) if i >= 0]
            for row, row_scores in zip(items, scores)]

  def _decode(self, retriever, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Input rows -> (items, scores) per row: at most MAX_BATCH rows at a time, each batch
    padded with empty rows to a power of two (a serving loop's requests of 3 and 4 histories
    run one compiled search; the padding rows are decoded and dropped)."""
    items, scores = [], []
    for start in range(0, len(inputs), MAX_BATCH):
      rows = inputs[start:start + MAX_BATCH]
      batch = np.zeros((1 << (len(rows) - 1).bit_length(), rows.shape[1]), rows.dtype)
      batch[:len(rows)] = rows
      got_items, got_scores = retriever(self.params, batch)
      items.append(np.asarray(got_items)[:len(rows)])
      scores.append(np.asarray(got_scores, np.float64)[:len(rows)])
    return np.concatenate(items), np.concatenate(scores)

  def _with_new_items(self, histories, items, scores, exclude_history):
    """Beams [n, w] and their scores -> lists with new items placed (scores NaN for them)."""
    from tiger_jax import cold_start, io_utils, metrics as metrics_lib
    if not hasattr(self, "_vectors"):
      self._vectors = io_utils.load_array(os.path.join(self.exp.data_dir, "item_vectors.npy"))
    histories = [np.asarray(h) for h in histories]
    merged = cold_start.with_new_items(self._vectors, histories, items, self.new_items,
                                       self.new_item_settings())
    if exclude_history:  # a new item of the history itself never comes back either
      merged = metrics_lib.without_history(merged, histories, merged.shape[1])
    score_of = [dict(zip(r.tolist(), s.tolist())) for r, s in zip(items, scores)]
    return merged, np.array([[score_of[u].get(int(i), np.nan) for i in row]
                             for u, row in enumerate(merged)])

  def user_history(self, user_id: str, split: str = "test") -> list[str]:
    """The history (original item ids) the run's `split` example of a user decodes from."""
    if str(user_id) not in self.user_index:
      raise RecommendError(f"unknown user id {user_id} (not among the run's "
                           f"{len(self.user_index):,} users)")
    u = self.user_index[str(user_id)]
    (history, _), = data_lib.split_examples(self.dataset.sequences[u], split,
                                            cold_items=self.dataset.cold_items)
    return [self.dataset.item_ids[i] for i in history]
