"""What `python -m tiger_jax.main` runs: a plain dataclass (gin name `pipeline`)."""

from __future__ import annotations

import dataclasses

from tiger_jax.retrieval import DEFAULT_BEAM


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """Every stage into model_dir: data -> item vectors -> Semantic IDs -> training ->
  constrained beam search on `split` -> baselines (and cold-start rows).

  data_dir / semantic_id_dir: None = MODEL_DIR/data and MODEL_DIR/semantic_ids
  (`experiment.run_dirs`). content: the item vectors behind the Semantic IDs
  ('auto': text where the data has it, e.g. item_meta.jsonl beside an S3-Rec folder;
  else attributes). checkpoint: which one the final evaluation decodes: 'auto' = the
  best on validation when the run validated (TrainerConfig.eval_every > 0), else the
  latest. interactions / items: source='interactions' reads this log and item file
  (`data.interactions`, read as gin's InteractionsConfig says). ids_from: a run directory (or its semantic_ids folder) whose Semantic IDs this run
  copies instead of computing its own, to reproduce a result from the very same IDs on
  another machine (`semantic_ids.pipeline.copy_ids`). exclude_history: every model's lists leave out the user's own history items
  (TIGER inside its beam search, the others by `metrics.without_history`), and results
  carry a `_nohistory` name (test_nohistory.json, results_nohistory.md).
  cold_start_epsilon: the largest share of cold items in a top-10 list; several values give
  the cold-start rows once per value (the curve over epsilon), the first value's settings
  being those `recommend --include_new_items` uses.
  """
  model_dir: str
  source: str = "synthetic"
  source_dir: str | None = None
  category: str | None = None
  content: str = "auto"
  data_dir: str | None = None
  semantic_id_dir: str | None = None
  ids_from: str | None = None
  interactions: str | None = None
  items: str | None = None
  split: str = "test"
  beam_size: int = DEFAULT_BEAM
  exclude_history: bool = False
  eval_batch_size: int = 64
  checkpoint: str = "auto"
  run_sasrec: bool = True
  cold_start_fraction: float = 0.0
  cold_start_unseen: bool = False  # LIGER's protocol (`data.prepare`)
  cold_start_epsilon: float | tuple[float, ...] = 0.1
  cold_start_prefix_len: int | None = None
  decode_dtype: str | None = None

  def epsilons(self) -> tuple[float, ...]:
    """cold_start_epsilon as a tuple; ValueError names the binding where a value is not in
    (0, 1]."""
    eps = self.cold_start_epsilon
    eps = tuple(eps) if isinstance(eps, (tuple, list)) else (eps,)
    if not eps or any(not 0.0 < float(e) <= 1.0 for e in eps):
      raise ValueError(f"pipeline.cold_start_epsilon={self.cold_start_epsilon!r}: one or "
                       "several shares in (0, 1]")
    return tuple(float(e) for e in eps)
