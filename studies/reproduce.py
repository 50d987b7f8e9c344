r"""One recipe end to end on real data, its results record, next to the paper's numbers.

  python -m studies.reproduce --gin_file=gin_configs/recipes/beauty_best.gin
  python -m studies.reproduce --gin_file=gin_configs/recipes/toys_paper.gin --gin.TRAIN_STEPS=8000
  python -m studies.reproduce --gin_file=... --record=records/beauty_best.json   # keep the record
  python -m studies.reproduce --gin_file=... --gin.EXCLUDE_HISTORY=True   # no history items
  python -m studies.reproduce --gin_file=gin_configs/recipes/beauty_best.gin --seed=1 \
      --record=records/seeds/beauty_best_seed1.json    # a second seed of a README row

Runs data -> Semantic IDs -> training -> constrained beam search (test split, all users; the
checkpoint best on validation when the run validated) plus SASRec, most-popular and the
item-transition floors on the same splits (`tiger_jax.main`), reading the category's data from
../shared/data/amazon2014/<category> (TIGER_SHARED_DATA). Writes
MODEL_DIR/results/reproduction{,_nohistory}.{md,json}; with --record, the same record (small
JSON, relative paths) where the README's table is generated from (`studies/readme_table.py`).
Stages already done in MODEL_DIR are skipped, so pointing MODEL_DIR at a finished run only
decodes and runs the baselines.
"""

from __future__ import annotations

import os
import sys
import time

from absl import flags

from studies.common import PAPER, REPO, SHARED, command_line, hardware, relative

flags.DEFINE_string("record", None, "Also write the results record here (e.g. records/X.json).")
flags.DEFINE_string("label", None, "The TIGER row's name in the README's table (default: the "
                    "recipe's LABEL macro, else its file name).")
flags.DEFINE_string("branch_from", None, "RUN_DIR@STEP (STEP a number or 'latest'): start "
                    "MODEL_DIR as a copy of that run at that checkpoint (data, Semantic IDs, "
                    "the checkpoint, best/ up to it, the clock), e.g. an 8-hour recipe from the "
                    "ladder row whose first hour it is; the record says so. A no-op on resume.")
flags.DEFINE_integer("seed", None, "Train TIGER (and SASRec, where the recipe runs it) at this "
                     "seed in MODEL_DIR_seed<N>, on the recipe's run's data and Semantic IDs "
                     "(the seeds differ in the models' init, dropout and data order, not in the "
                     "IDs); its --record goes to records/seeds/, where the README's table finds "
                     "a row's other seeds.")
FLAGS = flags.FLAGS


def bind_seed(seed: int | None) -> None:
  """--seed=N: TrainerConfig.seed and SASRecConfig.seed = N, MODEL_DIR + '_seed<N>', and
  DATA_DIR / SEMANTIC_ID_DIR the recipe's own run's folders unless the recipe names others."""
  import gin
  from tiger_jax.run_dir import RunDir
  if seed is None:
    return
  if seed < 0:
    raise SystemExit(f"error: --seed={seed}: a seed is a number >= 0")
  model_dir = gin.query_parameter("%MODEL_DIR")
  shared = RunDir(model_dir)
  with gin.unlock_config():
    gin.bind_parameter("TrainerConfig.seed", seed)
    gin.bind_parameter("SASRecConfig.seed", seed)  # where the recipe runs SASRec: its seed too
    gin.bind_parameter("MODEL_DIR/macro.value", f"{model_dir}_seed{seed}")
    for macro, folder in (("DATA_DIR", shared.data), ("SEMANTIC_ID_DIR", shared.semantic_ids)):
      if gin.query_parameter(f"%{macro}") is None:
        gin.bind_parameter(f"{macro}/macro.value", folder)


def latest_step(spec: str) -> str:
  """'RUN_DIR@latest' -> 'RUN_DIR@<its newest checkpoint step>'; other specs as they are."""
  from tiger_jax import checkpoints
  from tiger_jax.run_dir import RunDir
  run, _, step = spec.rpartition("@")
  if step != "latest":
    return spec
  newest = checkpoints.checkpoint_step(run, "latest")
  if newest is None:
    raise SystemExit(f"error: --branch_from={spec}: no checkpoint in {RunDir(run).checkpoints}")
  return f"{run}@{newest}"


def recipe_label(recipe: str) -> str:
  """The row name a recipe gives itself (`LABEL = '...'`), else its file name."""
  import gin
  try:
    return gin.query_parameter("%LABEL")
  except ValueError:
    return os.path.splitext(os.path.basename(recipe))[0]


def validation_floors(model_dir: str) -> dict:
  """The users of the trainer's validation pass (the first `train.eval_examples` of the split)
  and the counting floors on them, beside the validation curve (`studies.readme_figure`)."""
  import inspect
  import gin
  from studies import learning_curve
  from tiger_jax import io_utils, trainer
  from tiger_jax.run_dir import RunDir
  try:
    users = gin.query_parameter("train.eval_examples")
  except ValueError:  # not bound: train's default
    users = inspect.signature(trainer.train).parameters["eval_examples"].default
  if not users or not os.path.exists(RunDir(model_dir).config_json):
    return {}
  ids = learning_curve.validation_users(model_dir, users)
  data_dir = io_utils.read_json(RunDir(model_dir).config_json)["data_dir"]
  lines = learning_curve.reference_curves(data_dir, ids, sasrec_epochs=0)
  return {"validation_users": int(len(ids)),
          "validation_lines": {k: v for k, v in lines.items() if k != "SASRec"}}


def configure(seed: int | None):
  """The parsed recipe's PipelineConfig: its category's shared data, and --seed's folders
  (`bind_seed`) bound before the config is built."""
  import gin
  from tiger_jax import configurables
  category = gin.query_parameter("pipeline.category")
  if category not in PAPER:
    raise SystemExit(f"error: pipeline.category={category!r}: the paper reports {sorted(PAPER)}")
  with gin.unlock_config():
    gin.bind_parameter("pipeline.source_dir", os.path.join(SHARED, category))
  bind_seed(seed)
  return configurables.PipelineConfig()


def main():
  import gin
  from tiger_jax import configurables, evaluation as evaluate_lib, io_utils, main as main_lib
  from tiger_jax import results
  from tiger_jax.run_dir import RunDir
  from studies import learning_curve
  start = time.time()
  pipeline = configure(FLAGS.seed)
  category, model_dir = pipeline.category, pipeline.model_dir
  if FLAGS.branch_from:
    learning_curve.branch(latest_step(FLAGS.branch_from), model_dir)
  rows = main_lib.run_pipeline(pipeline)
  protocol = evaluate_lib.protocol_suffix(pipeline.exclude_history)
  recipe = relative(FLAGS.gin_file[0]) if FLAGS.gin_file else ""
  record = {"dataset": category, "recipe": recipe,
            "label": FLAGS.label or recipe_label(recipe),
            "command": command_line(), "exclude_history": pipeline.exclude_history,
            "seed": configurables.TrainerConfig().seed, "hardware": hardware(),
            "train_steps": gin.query_parameter("%TRAIN_STEPS"),
            "max_train_hours": configurables.TrainerConfig().max_train_hours,
            "batch_size": gin.query_parameter("%BATCH_SIZE"), "rows": rows,
            # the trainer's validation passes: (step, trainer hours, R@10, N@10); a run started
            # as a copy of another at one of its checkpoints (learning_curve.branch) says so
            "validation_curve": learning_curve.tiger_curve(model_dir),
            **validation_floors(model_dir),
            "branched_from": io_utils.read_json(os.path.join(model_dir, "branch.json"))
                             if os.path.exists(os.path.join(model_dir, "branch.json")) else None,
            # per-user hits of every model: rows of two records pair with no run kept
            "user_hits": io_utils.read_json(RunDir(model_dir).result(
                f"{pipeline.split}{protocol}_hits"))}
  table = results.results_table({**rows, **PAPER[category]}, category, "test",
                                pipeline.exclude_history)
  table += (f"\nrecipe: {recipe}; seed {record['seed']}; hardware: {record['hardware']}; wall "
            f"time of this command {time.time() - start:.0f}s (stages done before are skipped)\n")
  io_utils.write_json(RunDir(model_dir).result(f"reproduction{protocol}"), record)
  with io_utils.atomic_open(RunDir(model_dir).result(f"reproduction{protocol}", ".md")) as f:
    f.write(table)
  if FLAGS.record:
    io_utils.write_json(FLAGS.record, record)
  print(table)


if __name__ == "__main__":
  os.chdir(REPO)
  from tiger_jax import cli, configurables  # noqa: F401  (the gin names, before gin parses)
  cli.run(main, calls=("pipeline", "TrainerConfig", "SyntheticConfig", "SemanticIdConfig",
                       "RQVAEConfig", "experiment", "train", "SASRecConfig"))
  sys.exit(0)
