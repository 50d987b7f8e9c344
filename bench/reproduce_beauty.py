r"""TIGER on Amazon Beauty (or Toys), end to end, next to the paper's numbers.

  python bench/reproduce_beauty.py --config=cpu     # the CPU recipe, hours on 2 CPU cores
  python bench/reproduce_beauty.py --config=paper   # the paper's schedule, for a GPU/TPU
  python bench/reproduce_beauty.py --config=cpu --category=toys   # the same recipe on Toys
  python bench/reproduce_beauty.py --config=cpu --gin.TRAIN_STEPS=100   # a smoke run
  python bench/reproduce_beauty.py --config=gin_configs/sweeps/beauty_item_inputs.gin  # a recipe
  python bench/reproduce_beauty.py ... --gin.EXCLUDE_HISTORY=True   # no model returns history items

Runs data -> Semantic IDs -> training -> constrained beam search (test split,
all users; the checkpoint best on validation when the run validated) plus
SASRec, most-popular and item-transition on the same splits, and writes
MODEL_DIR/results/reproduction.{md,json}; `bench/readme_table.py` turns those
into the README's table. With --gin.EXCLUDE_HISTORY=True every model leaves the
user's own history items out of its list (reproduction_nohistory.{md,json}).
Stages already done in MODEL_DIR are skipped, so pointing MODEL_DIR at a
finished run (e.g. a learning-curve recipe's) only decodes and runs the baselines.
"""

from __future__ import annotations

import os
import sys
import time

from common import PAPER, REPO, SHARED, hardware

CATEGORIES = {"beauty": "tiger_beauty", "toys": "tiger_toys"}


def _flag(name: str, default: str) -> str:
  for a in list(sys.argv[1:]):
    if a.startswith(f"--{name}="):
      sys.argv.remove(a)
      return a.split("=", 1)[1]
  return default


def main():
  config, category = _flag("config", "cpu"), _flag("category", "beauty")
  if category not in CATEGORIES:
    raise SystemExit(f"error: --category={category}: expected one of {sorted(CATEGORIES)}")
  overrides = [a[len("--gin."):] for a in sys.argv[1:] if a.startswith("--gin.")]
  os.chdir(REPO)
  gin_file = config if config.endswith(".gin") else f"gin_configs/reproduce_beauty_{config}.gin"
  sys.argv[1:1] = [f"--gin_file={gin_file}",
                   f"--gin.pipeline.source_dir='{os.path.join(SHARED, category)}'"]
  if category != "beauty":  # the Beauty recipe, on another category's data and task
    sys.argv[3:3] = [f"--gin.pipeline.category='{category}'",
                     f"--gin.MIXTURE_OR_TASK_NAME='{CATEGORIES[category]}'",
                     f"--gin.MODEL_DIR='runs/reproduce_{category}_{os.path.splitext(os.path.basename(config))[0]}'"]
  import gin
  from tiger_jax import cli, configurables, evaluate as evaluate_lib, io_utils, main as main_lib
  from tiger_jax import results

  def run():
    start = time.time()
    pipeline = configurables.PipelineConfig()
    rows = main_lib.run_pipeline(pipeline)
    model_dir = gin.query_parameter("%MODEL_DIR")
    rows = {**rows, **PAPER[category]}
    protocol = evaluate_lib.protocol_suffix(pipeline.exclude_history)
    table = results.results_table(rows, category, "test", pipeline.exclude_history)
    command = cli.shell_join(["python", "bench/reproduce_beauty.py", f"--config={config}",
                              f"--category={category}", *(f"--gin.{o}" for o in overrides)])
    table += (f"\nconfig: {gin_file}" + "".join(f", {o}" for o in overrides)
              + f"; seed 0; hardware: {hardware()}; wall time of this command "
              f"{time.time() - start:.0f}s (stages already done in MODEL_DIR are skipped)\n")
    io_utils.write_json(os.path.join(model_dir, "results", f"reproduction{protocol}.json"),
                        {"rows": rows, "category": category, "config": gin_file,
                         "exclude_history": pipeline.exclude_history,
                         "overrides": overrides, "command": command, "hardware": hardware(),
                         "train_steps": gin.query_parameter("%TRAIN_STEPS"),
                         "batch_size": gin.query_parameter("%BATCH_SIZE")})
    with io_utils.atomic_open(os.path.join(model_dir, "results", f"reproduction{protocol}.md")) as f:
      f.write(table)
    print(table)

  cli.run(run)


if __name__ == "__main__":
  main()
