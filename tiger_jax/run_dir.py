"""Where a run keeps its files: the one module that knows the layout of MODEL_DIR.

  MODEL_DIR/
    config.gin          the parsed config (what evaluate and the studies read back)
    config.json         what `train` ran with: task, model, trainer, lengths
    data/               the prepared data (unless DATA_DIR names another folder)
    semantic_ids/       the Semantic IDs (unless SEMANTIC_ID_DIR names another folder)
    checkpoints/        the last N training steps (orbax)
    best/               the step best on validation
    corrupt_checkpoints/ steps that did not restore, set aside
    train/              metric logs (TensorBoard events)
    train_clock.json    training seconds by checkpointed step
    sasrec/             the pipeline's SASRec while it trains (<split>_state.msgpack: resumable)
    logs/               tracebacks of failed commands
    results/            evaluations (<name>.json, <name>_ranked.npz), tables, records,
                        every model's per-user hits (<split>_hits.json: results.user_hits)

Every other module asks `RunDir(model_dir)` for these paths instead of joining names.
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class RunDir:
  path: str

  def _join(self, *parts: str) -> str:
    return os.path.join(self.path, *parts)

  @property
  def config_gin(self) -> str:
    return self._join("config.gin")

  @property
  def config_json(self) -> str:
    return self._join("config.json")

  @property
  def data(self) -> str:
    return self._join("data")

  @property
  def semantic_ids(self) -> str:
    return self._join("semantic_ids")

  @property
  def checkpoints(self) -> str:
    return self._join("checkpoints")

  @property
  def best(self) -> str:
    return self._join("best")

  @property
  def corrupt_checkpoints(self) -> str:
    return self._join("corrupt_checkpoints")

  @property
  def train_logs(self) -> str:
    return self._join("train")

  @property
  def train_clock(self) -> str:
    return self._join("train_clock.json")

  def sasrec_state(self, split: str) -> str:
    """The pipeline's SASRec training state for `split` (sasrec.train's state_path)."""
    return self._join("sasrec", f"{split}_state.msgpack")

  @property
  def logs(self) -> str:
    """Tracebacks of commands that failed unexpectedly (`cli.run`)."""
    return self._join("logs")

  @property
  def results(self) -> str:
    return self._join("results")

  def result(self, name: str, suffix: str = ".json") -> str:
    """results/<name><suffix>: an evaluation's metrics (.json), a table (.md), ..."""
    return self._join("results", name + suffix)

  def ranked(self, name: str) -> str:
    """results/<name>_ranked.npz: the ranked lists behind the evaluation `name`."""
    return self.result(name + "_ranked", ".npz")
