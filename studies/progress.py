r"""Where an unfinished recipe's run stands: a small record that the README's table shows in the
recipe's row until the run's results record replaces it.

  python -m studies.progress --gin_file=gin_configs/recipes/toys_paper_cpu.gin \
      --record=records/progress/toys_paper_cpu.json

Reads the recipe's run (its `MODEL_DIR` line): the newest checkpoint, the trainer's clock at it
(train_clock.json, summed over resumes) and the validation curve (`learning_curve.tiger_curve`,
a branch's source included). Nothing of the test split: a run is decoded on test once, when it
ends. The record names the command that goes on, which also writes the results record.
"""

from __future__ import annotations

import argparse
import os

from studies.common import REPO, command_line, declared
from tiger_jax import checkpoints, io_utils
from tiger_jax.run_dir import RunDir


def progress(recipe: str, model_dir: str) -> dict:
  """The record of `recipe`'s run in model_dir (see the module's docstring)."""
  from studies import learning_curve  # TensorFlow, for the event files
  step = checkpoints.checkpoint_step(model_dir)
  seconds = checkpoints.train_seconds(model_dir)
  if step is None or seconds is None:
    raise SystemExit(f"error: {model_dir}: no checkpoint or no train_clock.json; start the run "
                     f"with python -m studies.reproduce --gin_file={recipe}")
  config = io_utils.read_json(RunDir(model_dir).config_json)
  stem = os.path.splitext(os.path.basename(recipe))[0]
  branch = os.path.join(model_dir, "branch.json")
  return {
      "recipe": recipe, "dataset": config["task"].removeprefix("tiger_"),
      "label": declared(recipe, "LABEL"), "step": step, "train_hours": round(seconds / 3600, 3),
      "max_train_hours": config["trainer"]["max_train_hours"], "seed": config["trainer"]["seed"],
      "batch_size": config["batch_size"],
      "validation_users": _validation_users(model_dir),
      "validation_curve": learning_curve.tiger_curve(model_dir),
      "branched_from": io_utils.read_json(branch) if os.path.exists(branch) else None,
      "go_on": f"python -m studies.reproduce --gin_file={recipe} --record=records/{stem}.json",
      "trained_on": f"{', '.join(config['devices'])}, {config['usable_cpu_cores']} usable CPU cores",
      "command": command_line()}


def _validation_users(model_dir: str) -> int | None:
  """The users of each validation pass (`train.eval_examples` in the run's config.gin)."""
  with open(os.path.join(model_dir, "config.gin")) as f:
    for line in f:
      key, _, value = line.partition("=")
      if key.strip() == "train.eval_examples" and value.strip().isdigit():
        return int(value)
  return None


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--gin_file", required=True, help="a flat recipe, gin_configs/recipes/X.gin")
  p.add_argument("--record", required=True, help="e.g. records/progress/X.json")
  args = p.parse_args(argv)
  recipe = os.path.relpath(os.path.abspath(args.gin_file), REPO)
  if not os.path.exists(os.path.join(REPO, recipe)):
    raise SystemExit(f"error: --gin_file={args.gin_file}: no such recipe")
  model_dir = declared(recipe, "MODEL_DIR")
  if model_dir is None:
    raise SystemExit(f"error: --gin_file={args.gin_file}: no MODEL_DIR = '...' line")
  record = progress(recipe, os.path.join(REPO, model_dir))
  io_utils.write_json(args.record, record)
  last = record["validation_curve"][-1] if record["validation_curve"] else None
  print(f"{recipe}: step {record['step']:,}, {record['train_hours']:.2f} of "
        f"{record['max_train_hours']:g} trainer hours"
        + (f"; validation R@10 {last['recall@10']:.4f} N@10 {last['ndcg@10']:.4f} at step "
           f"{last['step']:,}" if last else ""))


if __name__ == "__main__":
  main()
