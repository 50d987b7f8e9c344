"""Every gin name, registered once, for every command line.

Library code takes plain dataclasses and arguments; only the binaries
(`main.py`, `train.py`, `evaluate.py`, `semantic_ids/__main__.py`) build them
through these names. Gin files bind `experiment`, `train`, `pipeline`,
`T5Config` (and its mechanisms' `ItemInputsConfig`, `TransitionConfig`,
`FollowerConfig`, `ItemHeadConfig`), `TrainerConfig`, `SemanticIdConfig`, `RQVAEConfig`, `SASRecConfig`,
`SyntheticConfig` (the embedded catalog's size), `InteractionsConfig` (how to read one's own
log), `ColdStartConfig` (the cold-start mechanism) and the macros of gin_configs/base.gin.
"""

import gin

from tiger_jax import cold_start, experiment as experiment_lib, io_utils, network, pipeline_config
from tiger_jax import sasrec
from tiger_jax import trainer
from tiger_jax.data import interactions, synthetic
from tiger_jax.retrieval import DEFAULT_BEAM
from tiger_jax.semantic_ids import methods, rqvae
from tiger_jax.run_dir import RunDir

experiment = gin.external_configurable(experiment_lib.experiment, "experiment")
train = gin.external_configurable(trainer.train, "train")
PipelineConfig = gin.external_configurable(pipeline_config.PipelineConfig, "pipeline")
T5Config = gin.external_configurable(network.T5Config, "T5Config")
ItemInputsConfig = gin.external_configurable(network.ItemInputsConfig, "ItemInputsConfig")
TransitionConfig = gin.external_configurable(network.TransitionConfig, "TransitionConfig")
FollowerConfig = gin.external_configurable(network.FollowerConfig, "FollowerConfig")
ItemHeadConfig = gin.external_configurable(network.ItemHeadConfig, "ItemHeadConfig")
TrainerConfig = gin.external_configurable(trainer.TrainerConfig, "TrainerConfig")
SemanticIdConfig = gin.external_configurable(methods.SemanticIdConfig, "SemanticIdConfig")
RQVAEConfig = gin.external_configurable(rqvae.RQVAEConfig, "RQVAEConfig")
SASRecConfig = gin.external_configurable(sasrec.SASRecConfig, "SASRecConfig")
SyntheticConfig = gin.external_configurable(synthetic.SyntheticConfig, "SyntheticConfig")
InteractionsConfig = gin.external_configurable(interactions.InteractionsConfig,
                                               "InteractionsConfig")
ColdStartConfig = gin.external_configurable(cold_start.ColdStartConfig, "ColdStartConfig")


def beam_size() -> int:
  """The BEAM_SIZE macro where the parsed config defines it, else the paper's beam."""
  try:
    return int(gin.query_parameter("%BEAM_SIZE"))
  except ValueError:
    return DEFAULT_BEAM


def exclude_history() -> bool:
  """The EXCLUDE_HISTORY macro where the parsed config defines it, else False (the paper's
  protocol, and that of every run made before the option)."""
  try:
    return bool(gin.query_parameter("%EXCLUDE_HISTORY"))
  except ValueError:
    return False


def write_config(model_dir: str) -> None:
  """MODEL_DIR/config.gin: the parsed config, so that file alone serves evaluate and benches."""
  import jax
  if jax.process_index():
    return
  io_utils.makedirs(model_dir)
  with io_utils.atomic_open(RunDir(model_dir).config_gin) as f:
    f.write(gin.config_str())
