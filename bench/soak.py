r"""Kill -9 soak of the main job: killed at random moments across its stages, rerun each
time, it must end with the results of an uninterrupted run.

  python bench/soak.py                     # the synthetic default, 10 kills
  python bench/soak.py --kills=20 --seed=1 --gin=TRAIN_STEPS=300

1. A clean run of `python -m tiger_jax.main` into --run_dir/clean, timed.
2. Into --run_dir/soak: draw --kills moments uniformly over the clean run's duration;
   attempt k starts the job and kill -9s its process group after the gap to moment k plus
   --startup seconds (a rerun's imports and reloading), so the kills spread over every
   stage; then one run to the end.
3. Compares results/test.json and test_baselines.json of both, and prints the stage of
   each kill (the last stage line the job logged) and whether the results are identical.
Writes --run_dir/soak.json.
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

from common import REPO, hardware

# Fields that measure time or the machine, not the result.
VOLATILE = {"wall_time", "seconds", "users_per_sec", "train_seconds", "hardware"}
STAGES = [("RQ-VAE epoch", "3: Semantic IDs"), ("stage 1-2", "3: Semantic IDs"),
          ("Generating", "1-2: data"), ("encoded", "1-2: data"), ("step ", "4-5: training"),
          ("stage 3", "4-5: training"), ("stage 4-5", "6: evaluation"),
          ("evaluated", "6: baselines/SASRec"), ("SASRec epoch", "6: baselines/SASRec")]


def command(model_dir: str, gin: list[str]) -> list[str]:
  return [sys.executable, "-m", "tiger_jax.main", f"--gin.MODEL_DIR='{model_dir}'",
          *[f"--gin.{b}" for b in gin]]


def stage_of(log: str) -> str:
  """The stage the job was in: from the last line of its log that names one."""
  for line in reversed(log.splitlines()):
    for marker, stage in STAGES:
      if marker in line:
        return stage
  return "0: start-up"


def results(model_dir: str) -> dict:
  out = {}
  for name in ("test.json", "test_baselines.json"):
    with open(os.path.join(model_dir, "results", name)) as f:
      out[name] = json.load(f)
  return strip(out)


def strip(obj):
  if isinstance(obj, dict):
    return {k: strip(v) for k, v in obj.items() if k not in VOLATILE}
  return obj


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--kills", type=int, default=10)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--startup", type=float, default=15.0, help="seconds a rerun takes to resume")
  p.add_argument("--run_dir", default=os.path.join(REPO, "runs", "soak"))
  p.add_argument("--gin", action="append", default=[], help="bindings for both runs")
  args = p.parse_args()
  rng = random.Random(args.seed)
  clean, soak = os.path.join(args.run_dir, "clean"), os.path.join(args.run_dir, "soak")
  for d in (clean, soak):
    shutil.rmtree(d, ignore_errors=True)
  t = time.time()
  subprocess.run(command(clean, args.gin), cwd=REPO, check=True, capture_output=True)
  clean_seconds = time.time() - t
  print(f"clean run: {clean_seconds:.0f}s", flush=True)
  moments = sorted(rng.uniform(0, clean_seconds) for _ in range(args.kills))
  kills = []
  for k, (before, moment) in enumerate(zip([0.0] + moments, moments)):
    wait = moment - before + args.startup
    log_path = os.path.join(args.run_dir, f"attempt{k}.log")
    with open(log_path, "w") as log:
      proc = subprocess.Popen(command(soak, args.gin), cwd=REPO, stdout=log, stderr=log,
                              start_new_session=True)
      try:
        proc.wait(timeout=wait)
        finished = True
      except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        finished = False
    with open(log_path, errors="replace") as f:
      stage = stage_of(f.read())
    kills.append({"attempt": k, "after_s": round(wait, 1), "stage": stage, "finished": finished})
    print(f"attempt {k}: killed after {wait:.0f}s in stage {stage}" if not finished else
          f"attempt {k}: finished before the kill", flush=True)
    if finished:
      break
  t = time.time()
  final = subprocess.run(command(soak, args.gin), cwd=REPO, capture_output=True, text=True)
  if final.returncode:
    print(final.stderr[-3000:])
    raise SystemExit(f"error: the final rerun failed (exit {final.returncode})")
  a, b = results(clean), results(soak)
  identical = a == b
  diffs = [] if identical else [
      f"{name}/{row}: {a[name].get(row)} vs {b[name].get(row)}" for name in a
      for row in set(a[name]) | set(b[name]) if a[name].get(row) != b[name].get(row)]
  by_stage = {}
  for kill in kills:
    if not kill["finished"]:
      by_stage[kill["stage"]] = by_stage.get(kill["stage"], 0) + 1
  summary = {"kills": kills, "kills_by_stage": by_stage, "identical": identical,
             "differences": diffs, "clean_seconds": round(clean_seconds, 1),
             "final_rerun_seconds": round(time.time() - t, 1), "gin": args.gin,
             "hardware": hardware(), "command": " ".join(sys.argv)}
  with open(os.path.join(args.run_dir, "soak.json"), "w") as f:
    json.dump(summary, f, indent=1)
  print(json.dumps({k: summary[k] for k in ("kills_by_stage", "identical", "differences")}, indent=1))
  print(f"{sum(by_stage.values())} kills; final results {'identical to' if identical else 'DIFFER from'}"
        f" the clean run; {hardware()}")


if __name__ == "__main__":
  main()
