r"""Computes Semantic IDs for a prepared dataset.

  python -m tiger_jax.semantic_ids --data_dir=/tmp/tiger/beauty/data \
      --out_dir=/tmp/tiger/beauty/semantic_ids \
      [--gin_file=gin_configs/semantic_ids/rq_kmeans.gin] [--gin.RQVAEConfig.epochs=500]
"""

from __future__ import annotations

import json
import sys

from absl import flags

from tiger_jax import cli
from tiger_jax import data as data_lib
from tiger_jax.configurables import RQVAEConfig, SemanticIdConfig
from tiger_jax.semantic_ids import pipeline

flags.DEFINE_string("data_dir", None, "A prepared dataset (python -m tiger_jax.data).", required=True)
flags.DEFINE_string("out_dir", None, "Where the Semantic IDs are written.", required=True)
FLAGS = flags.FLAGS



def main() -> None:
  config = SemanticIdConfig(rqvae=RQVAEConfig())
  try:
    rep = pipeline.run(FLAGS.data_dir, FLAGS.out_dir, config)
  except data_lib.DataError as e:
    sys.exit(f"error: {e}")
  summary = {k: rep[k] for k in ("method", "num_items", "distinct_prefixes", "items_in_collision",
                                 "largest_group", "fourth_token_range")}
  summary["used_codewords"] = [l["used_codewords"] for l in rep["levels"]]
  print(json.dumps(summary))
  print(f"wrote semantic_ids.npy, params.npz, report.json, codeword_usage.png to {FLAGS.out_dir}")


if __name__ == "__main__":
  cli.run(main, calls=("SemanticIdConfig", "RQVAEConfig"))
