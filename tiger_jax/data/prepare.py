"""Prepares a dataset: read it, write it, embed its items, build its TFDS dataset."""

from __future__ import annotations

import dataclasses
import os

from absl import logging

from tiger_jax import content, io_utils
from tiger_jax import data as data_lib
from tiger_jax.data import synthetic


def prepare(source: str, out_dir: str, data_dir: str | None = None, category: str | None = None,
            content_source: str = "auto", text_model: str = content.DEFAULT_TEXT_MODEL,
            attribute_dim: int = 64, seed: int = 0,
            synthetic_config: synthetic.SyntheticConfig | None = None,
            cold_start_fraction: float = 0.0, interactions: str | None = None,
            items: str | None = None, interactions_config=None,
            cold_start_unseen: bool = False) -> dict:
  """Reads a dataset, writes it and its item vectors under `out_dir`; returns the manifest.

  Cold-start studies: cold_start_fraction holds a random share of the items out of every
  training sequence (the paper's protocol); cold_start_unseen marks the items that occur in
  no training sequence, only as validation or test targets (LIGER's protocol).

  manifest.json, which marks the stage done, is written last: a run killed
  on the way leaves no manifest, and the next run prepares the folder again.
  """
  if source == "synthetic":
    synthetic_config = synthetic_config or synthetic.SyntheticConfig(seed=seed)
  if source == "interactions" and interactions_config is None:
    from tiger_jax.data.interactions import InteractionsConfig
    interactions_config = InteractionsConfig()
  dataset = data_lib.read(source, data_dir, category, synthetic_config, interactions, items,
                          interactions_config)
  if content_source == "auto" and not dataset.item_text and not dataset.item_attributes:
    raise data_lib.DataError(f"{interactions or data_dir or source}: the items have no text and "
                             "no attributes to embed; pass --items=FILE with text fields, or "
                             "--content=none")
  if not any(len(s) > 3 for s in dataset.sequences):
    raise data_lib.DataError(f"{interactions or data_dir or source}: no training example: every "
                             "user has 3 items or fewer (one each goes to validation and test, "
                             "and a training target needs one item before it)")
  if cold_start_fraction and cold_start_unseen:
    raise data_lib.DataError("--cold_start_fraction and --cold_start_unseen are two protocols; "
                             "pass one")
  flag = "--cold_start_fraction" if cold_start_fraction else "--cold_start_unseen"
  if (cold_start_fraction or cold_start_unseen) and dataset.cold_items is not None:
    raise data_lib.DataError(f"{flag}: this dataset already has cold items (items of the item "
                             "file that no one interacted with); leave it out")
  if cold_start_fraction:
    dataset.cold_items = data_lib.choose_cold_items(dataset, cold_start_fraction, seed)
  if cold_start_unseen:
    dataset.cold_items = data_lib.unseen_items(dataset)
    if not len(dataset.cold_items):
      raise data_lib.DataError(f"{flag}: every item occurs in some training sequence; there is "
                               "no unseen item to study")
  logging.info("%s: %s", dataset.name, dataset.counts())
  config = {"source": source, "data_dir": data_dir, "category": category,
            **({"interactions": interactions, "items": items,
                "interactions_config": dataclasses.asdict(interactions_config)}
               if source == "interactions" else {}),
            "content": content_source, "seed": seed, "cold_start_fraction": cold_start_fraction,
            **({"cold_start_unseen": True} if cold_start_unseen else {})}
  if synthetic_config is not None:
    config["synthetic"] = dataclasses.asdict(synthetic_config)
  if dataset.read_report:
    config["read_report"] = dataset.read_report
  io_utils.makedirs(out_dir)
  manifest_path = os.path.join(out_dir, "manifest.json")
  if io_utils.exists(manifest_path):  # an earlier, finished preparation: no longer valid
    io_utils.remove(manifest_path)
  if content_source != "none":
    vectors, info = content.item_vectors(dataset, content_source, text_model, attribute_dim,
                                         cache_dir=None if io_utils.is_remote(out_dir) else os.path.join(out_dir, "cache"), seed=seed)
    io_utils.write_npy(os.path.join(out_dir, "item_vectors.npy"), vectors)
    config["item_vectors"] = info
  data_lib.save(dataset, out_dir, source=data_dir or interactions or source, config=config,
                manifest=False)
  build_tfds(out_dir, "synthetic" if source == "synthetic" else (category or dataset.name))
  return io_utils.write_manifest(out_dir, "data", data_dir or interactions or source,
                                 dataset.counts(), config)


def build_tfds(prepared_dir: str, config_name: str) -> None:
  """Builds `amazon_reviews_2014/<config>` from the prepared files, into prepared_dir/tfds."""
  import tensorflow_datasets as tfds
  from tiger_jax.data import amazon_raw, tfds_builder  # noqa: F401
  name = config_name.lower()
  name = next((k for k, v in amazon_raw.CATEGORIES.items() if v.lower() == name), name)
  if name not in {c.name for c in tfds_builder.AmazonReviews2014.BUILDER_CONFIGS}:
    name = "synthetic"  # any other dataset: the config that reads a prepared folder as-is
  tfds_dir = os.path.join(prepared_dir, "tfds")
  io_utils.rmtree(tfds_dir)  # built from the files just written, never stale
  builder = tfds.builder(f"amazon_reviews_2014/{name}", data_dir=tfds_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=prepared_dir))
