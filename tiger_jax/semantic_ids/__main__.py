r"""Computes Semantic IDs for a prepared dataset.

  python -m tiger_jax.semantic_ids --data_dir=/tmp/tiger/beauty/data \
      --out_dir=/tmp/tiger/beauty/semantic_ids [--seed=N] \
      [--gin_file=gin_configs/semantic_ids/paper.gin] [--gin.RQVAEConfig.epochs=500]
  python -m tiger_jax.semantic_ids --data_dir=... --out_dir=... --ids_from=runs/other

The default is the robust RQ-VAE (`RQVAEConfig`'s defaults); paper.gin is the paper's
schedule; --gin.SemanticIdConfig.method='rq_kmeans' (or lsh, random) another method.
--ids_from copies another run's finished IDs instead (same dataset), so that a result can be
reproduced from the very same IDs on another machine.
"""

from __future__ import annotations

import dataclasses
import json
import sys

from absl import flags

from tiger_jax import cli
from tiger_jax import data as data_lib
from tiger_jax.configurables import RQVAEConfig, SemanticIdConfig
from tiger_jax.semantic_ids import pipeline

flags.DEFINE_string("data_dir", None, "A prepared dataset (python -m tiger_jax.data).", required=True)
flags.DEFINE_string("out_dir", None, "Where the Semantic IDs are written.", required=True)
flags.DEFINE_integer("seed", None, "The method's seed (default: SemanticIdConfig.seed, 0).")
flags.DEFINE_string("ids_from", None, "Copy the finished Semantic IDs of this run directory "
                    "(or its semantic_ids folder) instead of computing them.")
FLAGS = flags.FLAGS


def main() -> None:
  config = SemanticIdConfig(rqvae=RQVAEConfig())
  if FLAGS.seed is not None:
    config = dataclasses.replace(config, seed=FLAGS.seed)
  try:
    if FLAGS.ids_from:
      print(json.dumps(pipeline.copy_ids(FLAGS.ids_from, FLAGS.out_dir, FLAGS.data_dir)))
      return
    rep = pipeline.run(FLAGS.data_dir, FLAGS.out_dir, config)
  except data_lib.DataError as e:
    sys.exit(f"error: {e}")
  summary = {k: rep[k] for k in ("method", "sha1", "num_items", "distinct_prefixes",
                                 "items_in_collision", "largest_group", "fourth_token_range")}
  summary["used_codewords"] = [l["used_codewords"] for l in rep["levels"]]
  print(json.dumps(summary))
  print(f"wrote semantic_ids.npy, params.npz, report.json, codeword_usage.png to {FLAGS.out_dir}")


if __name__ == "__main__":
  cli.run(main, calls=("SemanticIdConfig", "RQVAEConfig"))
