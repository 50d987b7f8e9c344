"""Helpers the studies share: where the real data is, a finished run's experiment and ranked
lists, and tables that end with the hardware and the command that made them."""

from __future__ import annotations

import functools
import os
import re
import sys

import numpy as np

from tiger_jax.partitioning import hardware  # noqa: F401  (the studies' hardware line)
from tiger_jax.run_dir import RunDir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TIGER_SHARED_DATA", os.path.join(REPO, "..", "shared", "data", "amazon2014"))

PAPER = {  # the TIGER paper's Table: test Recall/NDCG@5/10 after 200k steps on TPU
    "beauty": {
        "TIGER (paper)": {"recall@5": 0.0454, "recall@10": 0.0648, "ndcg@5": 0.0321, "ndcg@10": 0.0384},
        "SASRec (paper)": {"recall@5": 0.0387, "recall@10": 0.0605, "ndcg@5": 0.0249, "ndcg@10": 0.0318}},
    "toys": {
        "TIGER (paper)": {"recall@5": 0.0521, "recall@10": 0.0712, "ndcg@5": 0.0371, "ndcg@10": 0.0432},
        "SASRec (paper)": {"recall@5": 0.0463, "recall@10": 0.0675, "ndcg@5": 0.0306, "ndcg@10": 0.0374}},
}


# Public SASRec figures on the same 5-core 2014 data (leave-one-out, full ranking), test R/N@10,
# with what the public code does with the user's own history items where its code was read.
PUBLIC_SASREC = {
    "beauty": {
        "tuned SASRec, full cross-entropy, public, 3 seeds (as issue #38 quotes it)": {
            "recall@10": 0.0859, "ndcg@10": 0.0503,
            "history": "filtered in the public full cross-entropy SASRec code read "
                       "(antklen/sasrec-bert4rec-recsys23, src/configs/SASRec.yaml: "
                       "filter_seen: True, run on Beauty by src/run_final.sh)"},
        "RecTools SASRec+SS (eSASRec benchmark, blondered/transformer_benchmark README)": {
            "recall@10": 0.0921, "ndcg@10": 0.0531,
            "history": "not in the stored copy of its evaluation code"}},
    "toys": {
        "RecTools SASRec+SS (eSASRec benchmark, blondered/transformer_benchmark README)": {
            "recall@10": 0.0970, "ndcg@10": 0.0580,
            "history": "not in the stored copy of its evaluation code"}},
}


def gap_to_figure(record: dict, row: str, key: str, target: float) -> dict | None:
  """A `studies.reproduce` record's test figure of `row` minus a published `target` (taken as
  exact), with its standard error over users from the record's per-user hits (None without
  them): {'diff', 'se', 'z'}."""
  hits = record.get("user_hits")
  if not hits or row not in hits:
    return None
  from tiger_jax import metrics, results
  name, k = key.split("@")
  fn = metrics.recall_from_ranks if name == "recall" else metrics.ndcg_from_ranks
  per_user = fn(results.hit_ranks(hits, row), int(k))
  d = metrics.paired_difference(per_user, np.full(len(per_user), target))
  return {"diff": d["difference"], "se": d["se"], "z": d["z"]}


def declared(recipe: str, macro: str) -> str | None:
  """A flat recipe's `MACRO = "..."` or `MACRO = '...'` line (its LABEL, its MODEL_DIR), read
  without parsing the recipe; None without one."""
  with open(os.path.join(REPO, recipe)) as f:
    for line in f:
      if match := re.fullmatch(rf"""{macro}\s*=\s*(["'])(.*)\1\s*""", line.rstrip("\n")):
        return match.group(2)
  return None


def relative(path: str) -> str:
  """`path` relative to the repository root when it lies in the repository or beside it
  (../shared/...), so that records and printed commands hold no machine's absolute path."""
  from tiger_jax import io_utils
  return io_utils.near_relpath(path, REPO)


def command_line() -> str:
  """This process's command as a user at the repository root would type it."""
  from tiger_jax import cli
  main = sys.modules.get("__main__")
  spec = getattr(main, "__spec__", None)
  head = ["python", "-m", spec.name] if spec is not None and spec.name else [
      "python", relative(sys.argv[0])]
  return cli.shell_join([*head, *sys.argv[1:]])


def check_trained_run(model_dir: str) -> None:
  """One error line unless --model_dir holds a run's config.gin."""
  if not os.path.exists(RunDir(model_dir).config_gin):
    raise SystemExit(f"error: --model_dir={model_dir}: no config.gin; give a trained run")


def number_list(flag: str, text: str) -> list[float]:
  """'0,0.5,1' -> [0.0, 0.5, 1.0]; one error line naming --flag otherwise."""
  try:
    return [float(x) for x in text.split(",")]
  except ValueError:
    raise SystemExit(f"error: --{flag}={text}: give comma-separated numbers") from None


@functools.cache
def run_experiment(model_dir: str):
  """A finished run's experiment, from its config.gin (parsed once per process: gin locks
  its config after the first parse)."""
  import gin
  from tiger_jax import configurables
  gin.parse_config_files_and_bindings([RunDir(model_dir).config_gin], [])
  return configurables.experiment()


def tiger_lists(model_dir: str, split: str, checkpoint: str, targets: np.ndarray,
                decode: bool = True) -> np.ndarray:
  """TIGER's ranked lists [users, k] in user order, decoding the split unless they are saved
  from the step the checkpoint names now (decode=False: an error line instead, for a second
  run in a process that `run_experiment` has already configured)."""
  from tiger_jax import evaluation as evaluate, retrieval
  name = evaluate.result_name(split, checkpoint=checkpoint)
  path = RunDir(model_dir).ranked(name)
  if evaluate.saved_evaluation(model_dir, name, checkpoint) is None:
    if not decode:
      raise SystemExit(f"error: {model_dir}/results has no {name}_ranked.npz from its {checkpoint} "
                       f"checkpoint; decode it first (python -m studies.val_test_gap "
                       f"--model_dir={model_dir})")
    evaluate.evaluate_checkpoint(run_experiment(model_dir), model_dir, split,
                                 checkpoint=checkpoint)
  try:
    return retrieval.load_ranked(path, targets)
  except ValueError as e:
    raise SystemExit(f"error: {e}; remove them and rerun") from None


def write_table(run_dir: str, name: str, lines: list[str], results: dict) -> str:
  """Ends a study's table with the hardware and the command that made it, writes
  run_dir/<name>.md and .json (the rows behind it), prints it and returns it."""
  from tiger_jax import io_utils
  lines = [*lines, f"hardware: {hardware()}; command: `{command_line()}`"]
  table = "\n".join(lines) + "\n"
  io_utils.write_json(os.path.join(run_dir, f"{name}.json"), results)
  with io_utils.atomic_open(os.path.join(run_dir, f"{name}.md")) as f:
    f.write(table)
  print(table)
  return table
