r"""Trains TIGER's encoder-decoder on a SeqIO task (a thin, t5x-shaped CLI).

  python -m tiger_jax.train --gin_file=gin_configs/tiger_beauty.gin \
      --gin.MODEL_DIR="'runs/beauty'" [--gin.TRAIN_STEPS=2000]

The data and Semantic IDs are read from MODEL_DIR/data and MODEL_DIR/semantic_ids
unless --gin.DATA_DIR / --gin.SEMANTIC_ID_DIR name other folders. gin binds here
only: `trainer.train` and `experiment.experiment` take plain arguments.
"""

from __future__ import annotations

import gin

from tiger_jax import cli, configurables, distributed


def main() -> None:
  distributed.initialize()
  exp = configurables.experiment()
  configurables.write_config(gin.query_parameter("%MODEL_DIR"))
  configurables.train(exp=exp)


if __name__ == "__main__":
  cli.run(main, calls=("experiment", "train"))
