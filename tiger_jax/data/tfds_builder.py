"""`amazon_reviews_2014`: a tensorflow-datasets builder of leave-one-out examples.

One config per category (beauty, sports, toys) plus `synthetic`. The
category configs read local files from `manual_dir`: a prepared dataset
(`python -m tiger_jax.data --out_dir=...`), an S3-Rec/P5 folder
(`sequences.txt`, ...), or the raw McAuley files. `synthetic` generates the
embedded default (or reads a prepared synthetic folder given as manual_dir).

Each example: `user` (index), `history` (item indices, oldest first, at most
20), `target` (item index). SeqIO tasks read it with `seqio.TfdsDataSource`
and map item indices to Semantic-ID tokens in a preprocessor.

  builder = tfds.builder('amazon_reviews_2014/beauty', data_dir=TFDS_DIR)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir='../shared/data/amazon2014/beauty'))
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from tiger_jax import data as data_lib
from tiger_jax import io_utils
from tiger_jax.data import amazon_raw, dataset as dataset_lib, preprocessed, synthetic


@dataclasses.dataclass
class AmazonConfig(tfds.core.BuilderConfig):
  category: str = "beauty"
  max_history: int = dataset_lib.MAX_HISTORY


def read_manual_dir(manual_dir: str, category: str) -> dataset_lib.Dataset:
  """Reads whichever form of the data `manual_dir` holds."""
  if io_utils.exists(os.path.join(manual_dir, "dataset.npz")):
    return dataset_lib.load(manual_dir)
  if io_utils.exists(os.path.join(manual_dir, "sequences.txt")):
    return preprocessed.read(manual_dir, name=category)
  if category != "synthetic" and os.path.exists(amazon_raw.review_path(manual_dir, category)):
    return amazon_raw.read(manual_dir, category)
  raise data_lib.DataError(
      f"{manual_dir}: holds neither a prepared dataset (dataset.npz), an S3-Rec folder "
      f"(sequences.txt) nor {os.path.basename(amazon_raw.review_path(manual_dir, category))}")


class AmazonReviews2014(tfds.core.GeneratorBasedBuilder):
  """Amazon 2014 5-core reviews as next-item examples (TIGER's splits)."""

  name = "amazon_reviews_2014"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Leave-one-out splits, history capped at 20 items."}
  BUILDER_CONFIGS = [AmazonConfig(name=c, category=c, description=f"Amazon 2014 {n} 5-core")
                     for c, n in amazon_raw.CATEGORIES.items()] + [
                         AmazonConfig(name="synthetic", category="synthetic",
                                      description="The embedded synthetic catalog (seed 0).")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Point manual_dir at a prepared dataset, an S3-Rec/P5 folder (sequences.txt, "
      "item2attributes.json, datamaps.json) or the raw reviews_<Category>_5.json.gz and "
      "meta_<Category>.json.gz files (`python -m tiger_jax.data --download` fetches them).")

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "user": tfds.features.Scalar(dtype=np.int32),
            "history": tfds.features.Sequence(tfds.features.Scalar(dtype=np.int32)),
            "target": tfds.features.Scalar(dtype=np.int32),
        }),
        homepage="https://cseweb.ucsd.edu/~jmcauley/datasets/amazon/links.html")

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    config: AmazonConfig = self.builder_config
    manual_dir = dl_manager._manual_dir  # pylint: disable=protected-access
    if config.category == "synthetic" and not (manual_dir and io_utils.isdir(os.fspath(manual_dir))):
      dataset = synthetic.generate()
    else:
      dataset = read_manual_dir(os.fspath(dl_manager.manual_dir), config.category)
    return {split: self._generate_examples(dataset, split) for split in dataset_lib.SPLITS}

  def _generate_examples(self, dataset: dataset_lib.Dataset, split: str):
    for user, sequence in enumerate(dataset.sequences):
      pairs = dataset_lib.split_examples(sequence, split, self.builder_config.max_history,
                                         dataset.cold_items)
      for k, (history, target) in enumerate(pairs):
        yield f"{user}-{k}", {"user": user, "history": history, "target": target}
