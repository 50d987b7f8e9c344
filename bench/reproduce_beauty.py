r"""TIGER on Amazon Beauty, end to end, next to the paper's numbers.

  python bench/reproduce_beauty.py --config=cpu     # ~2 h on 2 CPU cores
  python bench/reproduce_beauty.py --config=paper   # the paper's schedule, for a GPU/TPU
  python bench/reproduce_beauty.py --config=cpu --gin.TRAIN_STEPS=100   # a smoke run

Runs data -> Semantic IDs -> training -> constrained beam search (test split,
all users) plus SASRec, most-popular and item-transition on the same splits,
and writes MODEL_DIR/results/reproduction.{md,json}.
"""

from __future__ import annotations

import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PAPER = {  # TIGER paper, Table: Beauty
    "TIGER (paper)": {"recall@5": 0.0454, "recall@10": 0.0648, "ndcg@5": 0.0321, "ndcg@10": 0.0384},
    "SASRec (paper)": {"recall@5": 0.0387, "recall@10": 0.0605, "ndcg@5": 0.0249, "ndcg@10": 0.0318},
}


def main():
  config = "cpu"
  for a in list(sys.argv[1:]):
    if a.startswith("--config="):
      config = a.split("=", 1)[1]
      sys.argv.remove(a)
  overrides = [a[len("--gin."):] for a in sys.argv[1:] if a.startswith("--gin.")]
  os.chdir(REPO)
  shared = os.environ.get("TIGER_SHARED_DATA", os.path.join(REPO, "..", "shared", "data", "amazon2014"))
  sys.argv[1:1] = [f"--gin_file=gin_configs/reproduce_beauty_{config}.gin",
                   f"--gin.pipeline.source_dir='{os.path.join(shared, 'beauty')}'"]
  import gin
  from tiger_jax import cli, configurables, io_utils, main as main_lib, results

  def run():
    start = time.time()
    rows = main_lib.run_pipeline(configurables.PipelineConfig())
    model_dir = gin.query_parameter("%MODEL_DIR")
    import jax
    hardware = f"{jax.device_count()} x {jax.devices()[0].device_kind}, {os.cpu_count()} cores, {platform.machine()}"
    rows = {**rows, **PAPER}
    table = results.results_table(rows, "beauty", "test")
    table += (f"\nconfig: gin_configs/reproduce_beauty_{config}.gin"
              + "".join(f", {o}" for o in overrides if not o.startswith("MODEL_DIR"))
              + f"; seed 0; hardware: {hardware}; wall time of this command "
              f"{time.time() - start:.0f}s (stages already done in MODEL_DIR are skipped)\n")
    io_utils.write_json(os.path.join(model_dir, "results", "reproduction.json"),
                        {"rows": rows, "config": config, "overrides": overrides,
                         "hardware": hardware})
    with io_utils.atomic_open(os.path.join(model_dir, "results", "reproduction.md")) as f:
      f.write(table)
    print(table)

  cli.run(run)


if __name__ == "__main__":
  main()
