"""Shared fixtures: where the real data lives, and small datasets."""

import atexit
import os
import shutil
import tempfile

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One compile per shape: XLA executables go to an on-disk cache for this test session
# (a fresh folder that pytest's xdist workers and the CLI subprocesses a test starts
# inherit; removed at exit), so a trainer that a test runs three times, or a CLI run
# after an in-process one with the same shapes, compiles once. A size limit turns on
# JAX's file lock, which the processes sharing the folder need. Set
# JAX_COMPILATION_CACHE_DIR yourself to choose the folder. Compiles under half a second
# (eager ops) are not worth a file: caching them made a decoding test 1.4x slower.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _XLA_CACHE = tempfile.mkdtemp(prefix="tiger_jax_test_xla_cache_")
  atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _XLA_CACHE
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
  os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(4 << 30))

# Tests run tiny models, where XLA's compile time dominates: compile with most optimizations
# off (about 20% less suite time on 2 cores). It changes no result a test compares: both sides
# of every comparison run under it. Benchmarks never set it.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# XLA:CPU's newer fusion emitters take about twice as long to compile a tiny model's beam
# search or train step (1.3 s -> 0.55 s and 0.6 s -> 0.3 s on 2 cores): off, the suite took
# 358 s against 529 s. As above, both sides of every comparison compile under the same flags.
if "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_cpu_use_fusion_emitters=false").strip()

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get("TIGER_SHARED_DATA",
                             os.path.join(REPO, "..", "shared", "data", "amazon2014"))


def shared_dir(category: str) -> str:
  """The shared S3-Rec folder of a category, or skip the test with the reason."""
  path = os.path.join(SHARED_DATA, category)
  if not os.path.exists(os.path.join(path, "sequences.txt")):
    pytest.skip(f"real data absent: {path}/sequences.txt not found "
                "(set TIGER_SHARED_DATA to the amazon2014 folder)")
  return path


@pytest.fixture
def tiny_dataset():
  from tiger_jax.data import Dataset
  seqs = [[0, 1, 2, 3, 4], [2, 3, 5], [5, 4, 3, 2, 1, 0], [1, 5, 0, 2]]
  return Dataset(name="tiny", user_ids=[f"u{i}" for i in range(4)],
                 item_ids=[f"i{i}" for i in range(6)],
                 sequences=[np.asarray(s, np.int32) for s in seqs],
                 item_text=[f"item {i}" for i in range(6)],
                 item_attributes=[[1, 2], [1, 3], [2], [1, 2], [4], [3, 4]])


TINY_MODEL = dict(emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32, num_encoder_layers=1,
                  num_decoder_layers=1, dropout_rate=0.0)


def run_until_logged(command, text, sig):
  """Starts `command` in the checkout, sends it `sig` once its log (stderr) shows `text`, and
  returns (its return code, its whole log)."""
  import subprocess
  proc = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          text=True)
  lines = []
  for line in proc.stderr:
    lines.append(line)
    if text in line:
      proc.send_signal(sig)
      break
  lines += proc.stderr.read().splitlines(keepends=True)
  return proc.wait(timeout=600), "".join(lines)


def small_config(vocab=50, **kw):
  """A 2+2-layer T5Config of TINY_MODEL's sizes; kw: any T5Config field (mechanisms too)."""
  from tiger_jax import network
  return network.T5Config(vocab_size=vocab, **{**TINY_MODEL, "num_encoder_layers": 2,
                                               "num_decoder_layers": 2, **kw})


def small_model(vocab=50, **kw):
  """(model, params) of `small_config`, initialised for inputs of 7 and targets of 5."""
  import jax
  from tiger_jax import network
  from tiger_jax.models import EncoderDecoderModel, unbox
  model = EncoderDecoderModel(network.Transformer(small_config(vocab, **kw)))
  return model, unbox(model.init(jax.random.PRNGKey(0), 7, 5))["params"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
  """A small synthetic run: prepared data + TFDS + Semantic IDs (RQ-KMeans, fast). Read-only
  for the tests; built once for the whole session: pytest-xdist's workers share it (the first
  to take the lock builds it, the others wait and read)."""
  import fcntl
  from tiger_jax.data import synthetic
  from tiger_jax.data.prepare import prepare
  from tiger_jax.semantic_ids import SemanticIdConfig, pipeline
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent  # this session's folder, above each worker's own
  root = root / "tiny_run_shared"
  data_dir, sid_dir = str(root / "data"), str(root / "semantic_ids")
  with open(str(root) + ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
    if not (root / "complete").exists():
      shutil.rmtree(root, ignore_errors=True)  # a build that failed part-way
      prepare("synthetic", data_dir, content_source="attributes",
              synthetic_config=synthetic.SyntheticConfig(num_items=120, num_users=80, seed=3))
      pipeline.run(data_dir, sid_dir, SemanticIdConfig(method="rq_kmeans", codebook_size=8,
                                                       kmeans_iters=10))
      (root / "complete").touch()
  return data_dir, sid_dir


# The slowest tests first (measured with --durations), so that on two cores pytest-xdist
# does not end the run with one worker alone on a long test while the other is idle.
SLOWEST_FIRST = ("test_main_job_writes_results", "test_the_cold_start_study_reports",
                 "test_a_trained_run_evaluates_every_user",
                 "test_checkpoints_by_the_clock_and_asynchronous_writes",
                 "test_sigterm_saves_its_step_and_kill_9",
                 "test_restore_uses_the_runs_own_trainer_config",
                 "test_sharded_on_8_devices", "test_two_processes_train_to_identical_parameters",
                 "test_cli_writes_ids_report_and_plot",
                 "test_an_installed_package_ships_and_finds_its_gin_configs",
                 "test_an_unexpected_error_is_one_line", "test_bad_gin_input_is_one_error_line")


def pytest_collection_modifyitems(items):
  rank = lambda item: next((i for i, name in enumerate(SLOWEST_FIRST) if name in item.name),
                           len(SLOWEST_FIRST))
  items.sort(key=rank)  # stable: the others keep their order
