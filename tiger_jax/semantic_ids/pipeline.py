"""Prepared dataset -> Semantic IDs on disk (semantic_ids.npy, params, report, plot)."""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np
from flax import traverse_util

from tiger_jax import content, io_utils
from tiger_jax import data as data_lib
from tiger_jax.semantic_ids import collisions, methods, report

IDS_FILE = "semantic_ids.npy"


def load_item_vectors(data_dir: str, config: methods.SemanticIdConfig,
                      dataset: data_lib.Dataset | None = None) -> tuple[np.ndarray, dict]:
  """The prepared item vectors (computed if absent), plus the collaborative block if asked."""
  dataset = dataset or data_lib.load(data_dir)
  path = os.path.join(data_dir, "item_vectors.npy")
  if io_utils.exists(path):
    vectors = io_utils.load_array(path)
    info = io_utils.read_json(os.path.join(data_dir, "manifest.json"))["config"].get("item_vectors", {})
  else:
    vectors, info = content.item_vectors(
        dataset, cache_dir=None if io_utils.is_remote(data_dir) else os.path.join(data_dir, "cache"))
  if len(vectors) != dataset.num_items:
    raise data_lib.DataError(f"{path}: {len(vectors)} vectors for {dataset.num_items} items")
  if config.collaborative_dim:
    collab = content.collaborative_vectors(data_lib.training_sequences(dataset), dataset.num_items,
                                           config.collaborative_dim, seed=config.seed)
    vectors = np.concatenate([vectors, config.collaborative_weight * collab], 1)
    info = {**info, "collaborative_dim": config.collaborative_dim,
            "collaborative_weight": config.collaborative_weight}
  return vectors.astype(np.float32), info


def run(data_dir: str, out_dir: str, config: methods.SemanticIdConfig) -> dict:
  """Computes and writes the Semantic IDs of a prepared dataset; returns the report."""
  t0 = time.time()
  dataset = data_lib.load(data_dir)
  vectors, vector_info = load_item_vectors(data_dir, config, dataset)
  logging.info("Semantic IDs (%s) for %d items, vectors of dim %d", config.method,
               len(vectors), vectors.shape[1])
  io_utils.makedirs(out_dir)
  codes, learned = methods.compute_codes(vectors, config, os.path.join(out_dir, "checkpoints"))
  ids = collisions.make_unique(codes)
  extra = {"method": config.method, "item_vectors": vector_info,
           "seconds": round(time.time() - t0, 1)}
  for key in ("reconstruction_mse", "quantization_mse"):
    if key in learned:
      extra[key] = learned[key]
  if learned.get("history"):
    extra["final_losses"] = learned["history"][-1]
  rep = report.make_report(codes, ids, config.codebook_size, extra)
  flat = {"/".join(k): np.asarray(v) for k, v in
          traverse_util.flatten_dict(dict(learned["params"])).items()}
  io_utils.write_npz(os.path.join(out_dir, "params.npz"), **flat)
  io_utils.write_npy(os.path.join(out_dir, IDS_FILE), ids.astype(np.int32))
  io_utils.write_json(os.path.join(out_dir, "report.json"), rep)
  report.plot_usage(codes, config.codebook_size, os.path.join(out_dir, "codeword_usage.png"),
                    f"{dataset.name}: {config.method}")
  io_utils.write_manifest(out_dir, "semantic_ids", io_utils.abspath(data_dir),
                          {"items": len(ids), "id_length": ids.shape[1]}, dataclasses.asdict(config))
  return rep


def load_ids(semantic_id_dir: str) -> np.ndarray:
  path = os.path.join(semantic_id_dir, IDS_FILE)
  if not io_utils.exists(path):
    raise FileNotFoundError(f"{path}: no Semantic IDs here; run `python -m tiger_jax.semantic_ids`")
  return io_utils.load_array(path)
