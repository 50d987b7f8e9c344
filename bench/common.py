"""Helpers the benchmarks share: where the real data is, a prepared run, a finished run's ranked
lists, the hardware line."""

from __future__ import annotations

import argparse
import functools
import os
import platform
import tempfile

import jax
import numpy as np

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


def cpu_model() -> str:
  """The CPU's model name and the matrix units XLA:CPU can use (AMX, AVX512-BF16, AVX2)."""
  name, flags = platform.processor() or platform.machine(), set()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
          name = value.strip()
        elif key.strip() == "flags":
          flags = set(value.split())
          break
  except OSError:
    pass
  units = [u for u, flag in (("AMX", "amx_bf16"), ("AVX512-BF16", "avx512_bf16"),
                             ("AVX-512", "avx512f"), ("AVX2", "avx2")) if flag in flags]
  return f"{name} ({', '.join(units[:2]) or 'no AVX2'})"


def hardware() -> str:
  d = jax.devices()[0]
  from tiger_jax.partitioning import usable_cpu_cores
  usable = usable_cpu_cores()
  cores = f"{os.cpu_count()} CPU cores" if usable == os.cpu_count() else \
      f"{usable} of {os.cpu_count()} CPU cores (taskset)"
  xla_flags = os.environ.get("XLA_FLAGS", "").strip()  # e.g. another XLA:CPU dot library
  return (f"{jax.device_count()} x {d.device_kind} ({d.platform}), {cores}, {cpu_model()}"
          + (f", XLA_FLAGS={xla_flags}" if xla_flags else ""))


def prepared_run(category: str, run_dir: str, method: str = "random", **sid_kwargs) -> tuple[str, str]:
  """Prepares shared `category` (attribute vectors) and its Semantic IDs under run_dir, once."""
  from tiger_jax.data.prepare import prepare
  from tiger_jax.semantic_ids import SemanticIdConfig, pipeline
  data_dir, sid_dir = os.path.join(run_dir, "data"), os.path.join(run_dir, "semantic_ids")
  source = os.path.join(SHARED, category)
  if not os.path.exists(os.path.join(source, "sequences.txt")):
    raise SystemExit(f"{source}/sequences.txt not found: set TIGER_SHARED_DATA")
  if not os.path.exists(os.path.join(data_dir, "manifest.json")):
    prepare("preprocessed", data_dir, source, category, content_source="attributes")
  if not os.path.exists(os.path.join(sid_dir, "semantic_ids.npy")):
    pipeline.run(data_dir, sid_dir, SemanticIdConfig(method=method, **sid_kwargs))
  return data_dir, sid_dir


@functools.cache
def run_experiment(model_dir: str):
  """A finished run's experiment, from its config.gin (parsed once per process: gin locks
  its config after the first parse)."""
  import gin
  from tiger_jax import configurables
  gin.parse_config_files_and_bindings([os.path.join(model_dir, "config.gin")], [])
  return configurables.experiment()


def tiger_lists(model_dir: str, split: str, checkpoint: str, targets: np.ndarray,
                decode: bool = True) -> np.ndarray:
  """TIGER's ranked lists [users, k] in user order, decoding the split unless they are saved
  from the step the checkpoint names now (decode=False: an error line instead, for a second
  run in a process that `run_experiment` has already configured)."""
  from tiger_jax import evaluate, retrieval
  name = evaluate.result_name(split, checkpoint=checkpoint)
  path = os.path.join(model_dir, "results", f"{name}_ranked.npz")
  if evaluate.saved_evaluation(model_dir, name, checkpoint) is None:
    if not decode:
      raise SystemExit(f"error: {model_dir}/results has no {name}_ranked.npz from its {checkpoint} "
                       f"checkpoint; decode it first (bench/val_test_gap.py --model_dir={model_dir})")
    evaluate.evaluate_checkpoint(run_experiment(model_dir), model_dir, split,
                                 checkpoint=checkpoint)
  try:
    return retrieval.load_ranked(path, targets)
  except ValueError as e:
    raise SystemExit(f"error: {e}; remove them and rerun") from None


def write_table(run_dir: str, name: str, lines: list[str], results: dict) -> str:
  """Ends a benchmark table with the hardware and the command that made it, writes
  run_dir/<name>.md and .json (the rows behind it), prints it and returns it."""
  import sys
  from tiger_jax import cli, io_utils
  lines = [*lines, f"hardware: {hardware()}; command: `{cli.shell_join(['python', *sys.argv])}`"]
  table = "\n".join(lines) + "\n"
  io_utils.write_json(os.path.join(run_dir, f"{name}.json"), results)
  with io_utils.atomic_open(os.path.join(run_dir, f"{name}.md")) as f:
    f.write(table)
  print(table)
  return table


def parser() -> argparse.ArgumentParser:
  """The arguments every benchmark over a shared category takes."""
  p = argparse.ArgumentParser()
  p.add_argument("--category", default="beauty")
  p.add_argument("--batch_size", type=int, default=256)
  p.add_argument("--run_dir", default=os.path.join(tempfile.gettempdir(), "tiger_bench"))
  return p


def paper_experiment(args):
  """The paper-size model over the prepared category (random IDs: cost does not depend on them)."""
  from tiger_jax import experiment, network
  data_dir, sid_dir = prepared_run(args.category, os.path.join(args.run_dir, args.category))
  return experiment.experiment(f"tiger_{args.category}", None, data_dir, sid_dir,
                               network.T5Config())
