"""Helpers the benchmarks share: where the real data is, a prepared run, hardware line."""

from __future__ import annotations

import os
import platform

import jax

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TIGER_SHARED_DATA", os.path.join(REPO, "..", "shared", "data", "amazon2014"))


def hardware() -> str:
  d = jax.devices()[0]
  return f"{jax.device_count()} x {d.device_kind} ({d.platform}), {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}"


def prepared_run(category: str, run_dir: str, method: str = "random", **sid_kwargs) -> tuple[str, str]:
  """Prepares shared `category` (attribute vectors) and its Semantic IDs under run_dir, once."""
  from tiger_jax.data.prepare import prepare
  from tiger_jax.semantic_ids import SemanticIdConfig, pipeline
  data_dir, sid_dir = os.path.join(run_dir, "data"), os.path.join(run_dir, "semantic_ids")
  source = os.path.join(SHARED, category)
  if not os.path.exists(os.path.join(source, "sequences.txt")):
    raise SystemExit(f"{source}/sequences.txt not found: set TIGER_SHARED_DATA")
  if not os.path.exists(os.path.join(data_dir, "manifest.json")):
    prepare("preprocessed", data_dir, source, category, content_source="attributes")
  if not os.path.exists(os.path.join(sid_dir, "semantic_ids.npy")):
    pipeline.run(data_dir, sid_dir, SemanticIdConfig(method=method, **sid_kwargs))
  return data_dir, sid_dir
