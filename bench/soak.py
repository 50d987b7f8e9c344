r"""Kill -9 soak of the main job: killed in every stage, rerun each time, it must end
with the results of an uninterrupted run.

  python bench/soak.py                     # the synthetic default, 10 kills
  python bench/soak.py --kills=20 --seed=1 --gin=TRAIN_STEPS=300

1. A clean run of `python -m tiger_jax.main` into --run_dir/clean, noting when each stage
   began (the pipeline's stage lines).
2. Into --run_dir/soak: the kills go round the stages in pipeline order (data,
   Semantic IDs, training, evaluation and baselines), --kills in all. A kill in stage S
   starts the job, waits for the line that begins S (at once, when earlier stages are
   done), then kill -9s its process group after a random share of S's clean duration.
   Then one run to the end.
3. Compares results/test.json and test_baselines.json of both runs. Writes --run_dir/soak.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

from common import REPO, hardware
from tiger_jax.run_dir import RunDir

# Fields that measure time or the machine, not the result.
VOLATILE = {"wall_time", "seconds", "users_per_sec", "train_seconds", "hardware"}
# stage -> the log line that begins it (None: the start of the process).
STAGES = {"1-2: data": None, "3: Semantic IDs": "stage 1-2:", "4-5: training": "stage 3:",
          "6: evaluation, baselines, SASRec": "stage 4-5:"}


def run_until(cmd: list[str], log_path: str, marker: str | None, delay: float | None):
  """Runs cmd; once `marker` is logged (at once if None), kills it after `delay` seconds
  (never if None). Returns (finished, seconds from start to each marker seen)."""
  seen = {}
  with open(log_path, "w") as log:
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=log, start_new_session=True)
    began = start if marker is None else None
    while proc.poll() is None:
      time.sleep(0.2)
      with open(log_path, errors="replace") as f:
        text = f.read()
      for m in STAGES.values():
        if m and m not in seen and m in text:
          seen[m] = time.time() - start
      if began is None and marker in seen:
        began = time.time()
      if delay is not None and began is not None and time.time() - began >= delay:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return False, seen
  if proc.returncode:
    raise SystemExit(f"error: {' '.join(cmd)} failed (exit {proc.returncode}); see {log_path}")
  return True, seen


def command(model_dir: str, gin: list[str]) -> list[str]:
  return [sys.executable, "-m", "tiger_jax.main", f"--gin.MODEL_DIR='{model_dir}'",
          *[f"--gin.{b}" for b in gin]]


def results(model_dir: str) -> dict:
  out = {}
  for name in ("test", "test_baselines"):
    with open(RunDir(model_dir).result(name)) as f:
      out[name + ".json"] = json.load(f)
  return strip(out)


def strip(obj):
  if isinstance(obj, dict):
    return {k: strip(v) for k, v in obj.items() if k not in VOLATILE}
  return obj


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--kills", type=int, default=10)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--run_dir", default=os.path.join(REPO, "runs", "soak"))
  p.add_argument("--gin", action="append", default=[], help="bindings for both runs")
  args = p.parse_args()
  rng = random.Random(args.seed)
  clean, soak = os.path.join(args.run_dir, "clean"), os.path.join(args.run_dir, "soak")
  for d in (clean, soak):
    shutil.rmtree(d, ignore_errors=True)
  os.makedirs(args.run_dir, exist_ok=True)
  t = time.time()
  _, seen = run_until(command(clean, args.gin), os.path.join(args.run_dir, "clean.log"), None, None)
  clean_seconds = time.time() - t
  begins = [0.0] + [seen[m] for m in list(STAGES.values())[1:]]
  durations = dict(zip(STAGES, np.diff(begins + [clean_seconds])))
  print(f"clean run: {clean_seconds:.0f}s; stage durations "
        + ", ".join(f"{k} {v:.0f}s" for k, v in durations.items()), flush=True)
  names = list(STAGES)
  plan = sorted((names[k % len(names)] for k in range(args.kills)), key=names.index)
  kills = []
  for k, stage in enumerate(plan):
    delay = rng.uniform(0.05, 0.95) * durations[stage]
    finished, _ = run_until(command(soak, args.gin), os.path.join(args.run_dir, f"attempt{k}.log"),
                            STAGES[stage], delay)
    kills.append({"attempt": k, "stage": stage, "after_s_in_stage": round(delay, 1),
                  "finished": finished})
    print(f"attempt {k}: " + ("finished before the kill" if finished else
                              f"killed {delay:.0f}s into stage {stage}"), flush=True)
  t = time.time()
  run_until(command(soak, args.gin), os.path.join(args.run_dir, "final.log"), None, None)
  a, b = results(clean), results(soak)
  identical = a == b
  diffs = [] if identical else [
      f"{name}/{row}: {a[name].get(row)} vs {b[name].get(row)}" for name in a
      for row in set(a[name]) | set(b[name]) if a[name].get(row) != b[name].get(row)]
  from tiger_jax import cli
  by_stage = {}
  for kill in kills:
    if not kill["finished"]:
      by_stage[kill["stage"]] = by_stage.get(kill["stage"], 0) + 1
  summary = {"kills": kills, "kills_by_stage": by_stage, "identical": identical,
             "differences": diffs, "clean_seconds": round(clean_seconds, 1),
             "stage_seconds": {k: round(float(v), 1) for k, v in durations.items()},
             "final_rerun_seconds": round(time.time() - t, 1), "gin": args.gin,
             "hardware": hardware(), "command": cli.shell_join(["python", *sys.argv])}
  with open(os.path.join(args.run_dir, "soak.json"), "w") as f:
    json.dump(summary, f, indent=1)
  print(json.dumps({k: summary[k] for k in ("kills_by_stage", "identical", "differences")}, indent=1))
  print(f"{sum(by_stage.values())} kills; final results {'identical to' if identical else 'DIFFER from'}"
        f" the clean run; {hardware()}")


if __name__ == "__main__":
  main()
