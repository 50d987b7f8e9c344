"""Prepared dataset -> Semantic IDs on disk (semantic_ids.npy, params, report, plot)."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import time

import numpy as np
from flax import traverse_util

from tiger_jax import content, io_utils
from tiger_jax import data as data_lib
from tiger_jax.semantic_ids import collisions, methods, report, rqvae

IDS_FILE = collisions.IDS_FILE
STANDARDIZATION_FILE = "standardization.npz"  # per-dimension mean and scale of the inputs


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
  blocks = info.get("blocks") or [["content", int(vectors.shape[1]), 1.0]]
  if config.collaborative_dim:
    collab = content.collaborative_vectors(data_lib.training_sequences(dataset), dataset.num_items,
                                           config.collaborative_dim, seed=config.seed)
    vectors = np.concatenate([vectors, config.collaborative_weight * collab], 1)
    blocks = [*blocks, ["collaborative", config.collaborative_dim, config.collaborative_weight]]
    info = {**info, "collaborative_dim": config.collaborative_dim,
            "collaborative_weight": config.collaborative_weight}
  return vectors.astype(np.float32), {**info, "blocks": blocks}


def run(data_dir: str, out_dir: str, config: methods.SemanticIdConfig) -> dict:
  """Computes and writes the Semantic IDs of a prepared dataset; returns the report."""
  t0 = time.time()
  dataset = data_lib.load(data_dir)
  vectors, vector_info = load_item_vectors(data_dir, config, dataset)
  logging.info("Semantic IDs (%s) for %d items, vectors of dim %d", config.method,
               len(vectors), vectors.shape[1])
  io_utils.makedirs(out_dir)
  blocks = [(int(d), float(w)) for _, d, w in vector_info["blocks"]]
  fit = None
  if config.fit_on == "warm" and dataset.cold_items is not None and len(dataset.cold_items):
    fit = np.ones(len(vectors), bool)
    fit[dataset.cold_items] = False
  codes, learned = methods.compute_codes(vectors, config, os.path.join(out_dir, "checkpoints"),
                                         blocks, fit)
  ids = collisions.make_unique(codes)
  # The input's checksum beside the output's: where two machines' IDs differ, it tells whether
  # the item vectors (the text encoder's floats) or the quantizer's training differ.
  extra = {"method": config.method, "sha1": checksum(ids), "vectors_sha1": checksum(vectors),
           "item_vectors": vector_info,
           "seconds": round(time.time() - t0, 1)}
  for key in ("group_cap", "fit_items"):
    if key in learned:
      extra[key] = learned[key]
  for key in ("reconstruction_mse", "quantization_mse"):
    if key in learned:
      extra[key] = learned[key]
      # The MSE over the inputs' mean variance: comparable with and without standardization.
      extra[key.replace("_mse", "_relative_error")] = learned[key] / max(learned["input_variance"], 1e-12)
  if learned.get("history"):
    extra["final_losses"] = learned["history"][-1]
    extra["history"] = learned["history"]  # losses and codewords used, every log_every epochs
  rep = report.make_report(codes, ids, config.codebook_size, extra, dataset.item_categories,
                           dataset.item_text)
  flat = {"/".join(k): np.asarray(v) for k, v in
          traverse_util.flatten_dict(dict(learned["params"])).items()}
  io_utils.write_npz(os.path.join(out_dir, "params.npz"), **flat)
  if learned["standardization"] is not None:
    io_utils.write_npz(os.path.join(out_dir, STANDARDIZATION_FILE), **learned["standardization"])
  io_utils.write_npy(os.path.join(out_dir, IDS_FILE), ids.astype(np.int32))
  io_utils.write_json(os.path.join(out_dir, "report.json"), rep)
  report.plot_usage(codes, config.codebook_size, os.path.join(out_dir, "codeword_usage.png"),
                    f"{dataset.name}: {config.method} on {vector_info.get('source', 'vectors')}",
                    rep)
  io_utils.write_manifest(out_dir, "semantic_ids", io_utils.abspath(data_dir),
                          {"items": len(ids), "id_length": ids.shape[1]}, dataclasses.asdict(config))
  return rep


def load_ids(semantic_id_dir: str) -> np.ndarray:
  path = os.path.join(semantic_id_dir, IDS_FILE)
  if not io_utils.exists(path):
    raise FileNotFoundError(f"{path}: no Semantic IDs here; run `python -m tiger_jax.semantic_ids`")
  return io_utils.load_array(path)


def checksum(array: np.ndarray) -> str:
  """sha1 of the IDs [items, id_length] as int32 (names the very IDs a result stood on), or of
  float item vectors as float32."""
  dtype = np.float32 if np.issubdtype(np.asarray(array).dtype, np.floating) else np.int32
  array = np.ascontiguousarray(array, dtype)
  return hashlib.sha1(f"{array.shape}".encode() + array.tobytes()).hexdigest()


def summary(semantic_id_dir: str) -> dict:
  """What a results record says about its IDs: checksum, method and quality report."""
  out = {"sha1": checksum(load_ids(semantic_id_dir))}
  path = os.path.join(semantic_id_dir, "report.json")
  if io_utils.exists(path):  # IDs written by other means (a benchmark's random ones) have none
    rep = io_utils.read_json(path)
    out.update(method=rep.get("method"),
               used_codewords=[level["used_codewords"] for level in rep["levels"]],
               items_in_collision=rep["items_in_collision"], largest_group=rep["largest_group"])
    if "vectors_sha1" in rep:  # reports written before it have none
      out["vectors_sha1"] = rep["vectors_sha1"]
  return out


# What copy_ids takes from a finished Semantic-ID stage (not the RQ-VAE's training checkpoints).
_COPIED = (IDS_FILE, "params.npz", STANDARDIZATION_FILE, "report.json", "codeword_usage.png")


def copy_ids(source: str, out_dir: str, data_dir: str) -> dict:
  """Copies the finished Semantic IDs of `source` (a run directory or its semantic_ids folder)
  to out_dir, for the prepared dataset in data_dir; returns their summary.

  The item count must match the dataset's. Files go to a temporary folder renamed into place,
  so out_dir holds either nothing or complete IDs."""
  if not io_utils.exists(os.path.join(source, "manifest.json")) and io_utils.exists(
      os.path.join(source, "semantic_ids", "manifest.json")):
    source = os.path.join(source, "semantic_ids")
  manifest_path = os.path.join(source, "manifest.json")
  if not io_utils.exists(manifest_path):
    raise data_lib.DataError(f"--ids_from={source}: no finished Semantic IDs here (neither "
                             "manifest.json nor semantic_ids/manifest.json)")
  items = io_utils.read_json(manifest_path)["counts"]["items"]
  num_items = data_lib.load(data_dir).num_items
  if items != num_items:
    raise data_lib.DataError(f"--ids_from={source}: IDs for {items} items, but the dataset in "
                             f"{data_dir} has {num_items}; copy IDs made for the same data")
  tmp = out_dir.rstrip("/") + ".copying"
  if io_utils.exists(tmp):
    io_utils.rmtree(tmp)
  io_utils.makedirs(tmp)
  for name in _COPIED + ("manifest.json",):
    if io_utils.exists(os.path.join(source, name)):
      with io_utils.open_file(os.path.join(source, name), "rb") as src, \
          io_utils.open_file(os.path.join(tmp, name), "wb") as dst:
        shutil.copyfileobj(src, dst)
  if io_utils.exists(out_dir):
    io_utils.rmtree(out_dir)
  io_utils.rename(tmp, out_dir)
  logging.info("Semantic IDs copied from %s to %s", source, out_dir)
  return summary(out_dir)


def load_config(semantic_id_dir: str) -> methods.SemanticIdConfig:
  """The SemanticIdConfig a finished run of `run` recorded in its manifest."""
  path = os.path.join(semantic_id_dir, "manifest.json")
  if not io_utils.exists(path):
    raise FileNotFoundError(f"{path}: no finished Semantic-ID run here")
  fields = dict(io_utils.read_json(path)["config"])
  rq = fields.pop("rqvae", {})
  rq["hidden_dims"] = tuple(rq.get("hidden_dims", ()))
  return methods.SemanticIdConfig(rqvae=rqvae.RQVAEConfig(**rq), **fields)


def assign_codes(semantic_id_dir: str, vectors: np.ndarray) -> np.ndarray:
  """Codes [n, levels] of item vectors [n, d] under a finished run's saved model.

  Reapplies the run's standardization, then its RQ-VAE or RQ-KMeans
  codebooks: the training vectors get back the codes of `semantic_ids.npy`
  (its first `levels` columns), except the items the group cap moved (their nearest last
  codeword, not the one the cap gave them; report.json counts them); new items get codes of
  the same model, without a cap.
  """
  config = load_config(semantic_id_dir)
  stats = None
  if config.standardize:
    stats = io_utils.load_arrays(os.path.join(semantic_id_dir, STANDARDIZATION_FILE))
  x = methods.apply_standardization(vectors, stats)
  flat = io_utils.load_arrays(os.path.join(semantic_id_dir, "params.npz"))
  params = traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in flat.items()})
  if config.method not in ("rqvae", "rq_kmeans"):
    raise ValueError(f"{semantic_id_dir}: codes of method {config.method!r} are not computed "
                     "from a saved model; only rqvae and rq_kmeans can assign new vectors")
  learned = {"params": params}
  if config.method == "rqvae":
    cfg = dataclasses.replace(config.rqvae, num_levels=config.num_levels,
                              codebook_size=config.codebook_size)
    learned["model"] = rqvae.RQVAE(cfg, x.shape[1])
  return methods.assign(x, config, learned)
