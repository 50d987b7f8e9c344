"""Helpers the speed benchmarks share: the real data's folder, a prepared run of random IDs
(speed does not depend on them), the paper-size model over it."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TIGER_SHARED_DATA", os.path.join(REPO, "..", "shared", "data", "amazon2014"))
sys.path.insert(0, REPO)  # `python bench/x.py` from anywhere finds the checkout's packages

from tiger_jax.partitioning import hardware  # noqa: E402,F401  (the benchmarks' hardware line)


def prepared_run(category: str, run_dir: str, method: str = "random", **sid_kwargs) -> tuple[str, str]:
  """Prepares shared `category` (attribute vectors) and its Semantic IDs under run_dir, once."""
  from tiger_jax import io_utils
  from tiger_jax.data.prepare import prepare
  from tiger_jax.run_dir import RunDir
  from tiger_jax.semantic_ids import SemanticIdConfig, pipeline
  run = RunDir(run_dir)
  source = os.path.join(SHARED, category)
  if not os.path.exists(os.path.join(source, "sequences.txt")):
    raise SystemExit(f"{source}/sequences.txt not found: set TIGER_SHARED_DATA")
  if not io_utils.exists(os.path.join(run.data, "manifest.json")):
    prepare("preprocessed", run.data, source, category, content_source="attributes")
  if not io_utils.exists(os.path.join(run.semantic_ids, "semantic_ids.npy")):
    pipeline.run(run.data, run.semantic_ids, SemanticIdConfig(method=method, **sid_kwargs))
  return run.data, run.semantic_ids


def parser() -> argparse.ArgumentParser:
  """The arguments every benchmark over a shared category takes."""
  p = argparse.ArgumentParser()
  p.add_argument("--category", default="beauty")
  p.add_argument("--batch_size", type=int, default=256)
  p.add_argument("--run_dir", default=os.path.join(tempfile.gettempdir(), "tiger_bench"))
  return p


def paper_experiment(args):
  """The paper-size model over the prepared category (random IDs: cost does not depend on them)."""
  from tiger_jax import experiment, network
  data_dir, sid_dir = prepared_run(args.category, os.path.join(args.run_dir, args.category))
  return experiment.experiment(f"tiger_{args.category}", None, data_dir, sid_dir,
                               network.T5Config())
