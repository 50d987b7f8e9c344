"""Stage 1: Amazon 2014 readers (raw and preprocessed), the synthetic default,
leave-one-out splits, and the prepared-dataset files."""

from tiger_jax.data.dataset import (MAX_HISTORY, SPLITS, TRAIN_HISTORIES, Dataset, DataError,
                                    Example, choose_cold_items, iter_examples, load, save,
                                    split_examples, training_sequences, unseen_items)

SOURCES = ("preprocessed", "raw", "synthetic", "interactions")


def read(source: str, data_dir: str | None = None, category: str | None = None,
         synthetic_config=None, interactions: str | None = None, items: str | None = None,
         interactions_config=None) -> Dataset:
  """Reads a dataset from one of SOURCES (interactions: a log file, an optional item file and
  `interactions.InteractionsConfig`)."""
  from tiger_jax.data import amazon_raw, preprocessed, synthetic
  if source == "interactions":
    from tiger_jax.data import interactions as interactions_lib
    if not interactions:
      raise DataError("--interactions=FILE is required for source=interactions")
    return interactions_lib.read(interactions, items, interactions_config, name=category)
  if source == "preprocessed":
    if not data_dir:
      raise DataError("--data_dir is required for source=preprocessed")
    return preprocessed.read(data_dir, name=category)
  if source == "raw":
    if not data_dir or not category:
      raise DataError("--data_dir and --category are required for source=raw")
    return amazon_raw.read(data_dir, category)
  if source == "synthetic":
    return synthetic.generate(synthetic_config or synthetic.SyntheticConfig())
  raise DataError(f"unknown source {source!r}; expected one of {SOURCES}")
