"""A training run survives its machine: SIGTERM saves the step it is in, kill -9 during a
checkpoint write loses nothing but the steps since the last complete one, and a resumed run
trains the very same steps as an uninterrupted one."""

import glob
import logging
import os
import signal
import subprocess
import sys

import pytest

from conftest import REPO, run_until_logged

STEPS = 10


def _bindings(model_dir, data_dir, sid_dir):
  return [f"MODEL_DIR='{model_dir}'", f"DATA_DIR='{data_dir}'", f"SEMANTIC_ID_DIR='{sid_dir}'",
          f"TRAIN_STEPS={STEPS}", "BATCH_SIZE=8", "T5Config.emb_dim=16", "T5Config.num_heads=2",
          "T5Config.head_dim=8", "T5Config.mlp_dim=32", "T5Config.num_encoder_layers=1",
          "T5Config.num_decoder_layers=1", "T5Config.dropout_rate=0.1",
          "TrainerConfig.log_every=1", "TrainerConfig.eval_every=0", "TrainerConfig.num_buckets=1"]


def _command(model_dir, data_dir, sid_dir, *extra):
  return [sys.executable, "-m", "tiger_jax.train", "--gin_file=gin_configs/tiger_synthetic.gin",
          *(f"--gin.{b}" for b in _bindings(model_dir, data_dir, sid_dir)), *extra]


def _train_in_process(model_dir, data_dir, sid_dir, *extra):
  """What `_command` runs, in this process (one interpreter start less): the train binary's
  main() under the same gin config (`extra`: more bindings) and the command line's default
  PRNG."""
  import gin
  import jax
  from tiger_jax import cli, configurables
  prng = jax.config.jax_default_prng_impl
  gin.clear_config()
  jax.config.update("jax_default_prng_impl", cli.FLAGS["prng_impl"].default)
  try:
    cli.parse_config(["gin_configs/tiger_synthetic.gin"],
                     _bindings(model_dir, data_dir, sid_dir) + list(extra), ("experiment", "train"))
    configurables.train(exp=configurables.experiment())
  finally:
    gin.clear_config()
    jax.config.update("jax_default_prng_impl", prng)


def _losses(model_dir):
  """{step: [loss, ...]} from the run's TensorBoard events, one value for each process that
  trained the step (a step trained again after a kill is logged twice)."""
  import tensorflow as tf
  out = {}
  for path in glob.glob(os.path.join(model_dir, "train", "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == "loss":
          out.setdefault(event.step, []).append(
              float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value)
  return out


class _SignalAt(logging.Handler):
  """Sends this process `sig` once a log message contains `text` (as a scheduler would)."""

  def __init__(self, text, sig):
    super().__init__()
    self.text, self.sig, self.sent = text, sig, False

  def emit(self, record):
    if not self.sent and self.text in record.getMessage():
      self.sent = True
      os.kill(os.getpid(), self.sig)


def test_sigterm_saves_its_step_and_kill_9_mid_write_keeps_the_last_complete_one(tiny_run,
                                                                                tmp_path, caplog):
  from tiger_jax import preemption
  data_dir, sid_dir = tiny_run
  whole = str(tmp_path / "whole")
  _train_in_process(whole, data_dir, sid_dir)
  reference = {step: values[0] for step, values in _losses(whole).items()}
  assert sorted(reference) == list(range(1, STEPS + 1))
  same = lambda losses: {s: set(v) for s, v in losses.items()} == {
      s: {v} for s, v in reference.items()}

  # SIGTERM at step 3 (not a multiple of checkpoint_every=100), in this process (the
  # trainer's signal handling is the same in a binary; its exit: exit_when_preempted, as
  # cli.run wraps every binary): that step is saved, one log line says how to go on, the
  # exit code says preempted.
  run = str(tmp_path / "run")
  caplog.set_level(logging.INFO)  # the trainer logs through the standard logging module
  term = _SignalAt(f"step 3/{STEPS}:", signal.SIGTERM)
  logging.getLogger().addHandler(term)
  try:
    with pytest.raises(SystemExit) as exit_:
      preemption.exit_when_preempted(lambda: _train_in_process(run, data_dir, sid_dir))
  finally:
    logging.getLogger().removeHandler(term)
  assert term.sent and exit_.value.code == preemption.EXIT_CODE
  lines = [r.getMessage() for r in caplog.records if "preempted at step" in r.getMessage()]
  assert len(lines) == 1 and "\n" not in lines[0]  # without gin's "In call to" lines
  step = int(lines[0].split("preempted at step ")[1].split(":")[0])
  assert 3 <= step < 6 and "run the same command to continue" in lines[0]
  assert sorted(os.listdir(os.path.join(run, "checkpoints"))) == [str(step)]
  # The same command goes on as a process of its own, now writing a checkpoint at every step
  # (asynchronously, so a write is in flight at any moment), and is killed with kill -9 at
  # step 7: the next run restores the newest complete step, never a half-written one, and
  # trains to the end.
  every = "--gin.TrainerConfig.checkpoint_every=1"
  code, log = run_until_logged(_command(run, data_dir, sid_dir, every), f"step 7/{STEPS}:",
                               signal.SIGKILL)
  assert code == -signal.SIGKILL and f"resumed from step {step}" in log, log[-2000:]
  done = [int(n) for n in os.listdir(os.path.join(run, "checkpoints")) if n.isdigit()]
  assert done and step < max(done) <= 7
  caplog.clear()
  _train_in_process(run, data_dir, sid_dir, every.removeprefix("--gin."))  # (that command)
  resumed = [r.getMessage() for r in caplog.records if "resumed from step" in r.getMessage()]
  resumed_from = int(resumed[-1].split("resumed from step ")[1].split()[0])
  assert resumed_from in done and resumed_from > step
  # Every step, however often trained again after a stop, gave the uninterrupted run's loss:
  # the same data order and the same dropout draws.
  assert same(_losses(run))


def test_checkpoints_by_the_clock_and_asynchronous_writes(tiny_run, tmp_path):
  """checkpoint_every_minutes saves at steps no step interval names, once that much time has
  passed since the last save; asynchronous and synchronous writes restore the same state."""
  import dataclasses
  import time
  import jax
  import numpy as np
  from conftest import TINY_MODEL
  from tiger_jax import experiment as experiment_lib, input_pipeline, network
  from tiger_jax import trainer as trainer_lib
  data_dir, sid_dir = tiny_run
  exp = experiment_lib.experiment("tiger_clock_test", None, data_dir, sid_dir,
                                  network.T5Config(**TINY_MODEL), mesh_shape=(1, 1))
  base = trainer_lib.TrainerConfig(checkpoint_every=1000, eval_every=0, num_buckets=1,
                                   keep_checkpoints=100)

  def batches(start):
    return input_pipeline.train_batches(
        exp.task, exp.feature_lengths, 8, seed=0, num_buckets=1, id_length=exp.layout.id_length,
        start_step=start)

  def slow(start):  # 10 steps a second at most
    for batch in batches(start):
      time.sleep(0.1)
      yield batch

  config = dataclasses.replace(base, checkpoint_every_minutes=0.4 / 60)
  trainer = trainer_lib.Trainer(exp.model, config, exp.mesh, exp.feature_lengths)
  trainer_lib.train_loop(trainer, slow, 16, str(tmp_path / "clock"))
  steps = sorted(int(n) for n in os.listdir(tmp_path / "clock" / "checkpoints") if n.isdigit())
  assert steps[-1] == 16 and len(steps) >= 3, steps  # ~0.4 s apart, and the last step
  # A time budget of 0.8 training seconds at 10 steps a second at most (40 steps would take
  # 4 s): training stops at the first step past it, saves that step, and a rerun finds the
  # budget spent (the clock is summed over resumes).
  config = dataclasses.replace(base, max_train_hours=0.8 / 3600, log_every=1)
  trainer = trainer_lib.Trainer(exp.model, config, exp.mesh, exp.feature_lengths)
  state = trainer_lib.train_loop(trainer, slow, 40, str(tmp_path / "budget"))
  stop = int(state.step)
  assert 1 <= stop < 40, stop
  assert os.listdir(tmp_path / "budget" / "checkpoints") == [str(stop)]
  import json
  clock = json.load(open(tmp_path / "budget" / "train_clock.json"))["steps"]
  assert clock[str(stop)] >= 0.8
  again = trainer_lib.train_loop(trainer, slow, 40, str(tmp_path / "budget"))
  assert int(again.step) == stop
  with pytest.raises(trainer_lib.ConfigError, match="max_train_hours"):
    trainer_lib.TrainerConfig(max_train_hours=-1)
  trainer = trainer_lib.Trainer(exp.model, base, exp.mesh, exp.feature_lengths)
  trainer_lib.train_loop(trainer, slow, 6, str(tmp_path / "steps_only"))
  assert os.listdir(tmp_path / "steps_only" / "checkpoints") == ["6"]  # no clock: the end only
  states = {}
  for async_ in (True, False):
    config = dataclasses.replace(base, async_checkpointing=async_, checkpoint_every=2)
    trainer = trainer_lib.Trainer(exp.model, config, exp.mesh, exp.feature_lengths)
    model_dir = str(tmp_path / f"async_{async_}")
    trainer_lib.train_loop(trainer, batches, 4, model_dir)
    _, states[async_] = experiment_lib.restore(exp, model_dir)
  for a, b in zip(jax.tree.leaves(states[True]), jax.tree.leaves(states[False])):
    np.testing.assert_array_equal(a, b)



def test_a_second_ctrl_c_stops_at_once_and_the_handlers_are_restored():
  import os as os_
  import pytest
  from tiger_jax import preemption
  before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
  with preemption.SignalWatch() as watch:
    os_.kill(os_.getpid(), signal.SIGINT)  # the first: noted, the step goes on
    assert watch.requested == signal.SIGINT
    with pytest.raises(KeyboardInterrupt):
      os_.kill(os_.getpid(), signal.SIGINT)  # the second: at once
  assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
  with preemption.SignalWatch(enabled=False) as off:  # several hosts: JAX's runtime listens
    assert signal.getsignal(signal.SIGTERM) == before[0] and off.requested is None


def test_a_preempted_binary_logs_one_line_and_exits_75(caplog):
  """What every training binary (the trainer's CLI, studies.sasrec_tune) does with Preempted."""
  from tiger_jax import preemption

  def stopped():
    raise preemption.Preempted(4, "/runs/x/state.msgpack", unit="epoch")

  caplog.set_level(logging.WARNING)
  with pytest.raises(SystemExit) as exit_:
    preemption.exit_when_preempted(stopped)
  assert exit_.value.code == preemption.EXIT_CODE == 75
  assert [r.getMessage() for r in caplog.records] == [
      "preempted at epoch 4: checkpoint saved in /runs/x/state.msgpack; run the same command to "
      "continue"]
  assert preemption.exit_when_preempted(lambda: 3) == 3


def test_the_command_line_exits_75_with_the_one_line():
  """cli.run, which every binary runs its main through, ends a preempted main that way (the
  SIGTERM test above stops the trainer in-process)."""
  # main leaves a thread behind that the interpreter's teardown would wait 300 s for (as a
  # tf.data training iterator's threads made it wait 35-75 s): the binary exits at once.
  code = ("import threading, time\n"
          "from tiger_jax import cli, preemption\n"
          "def main():\n"
          "  threading.Thread(target=time.sleep, args=(300,)).start()\n"
          "  raise preemption.Preempted(3, 'runs/x/checkpoints')\n"
          "cli.run(main)\n")
  proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 75, proc.stderr[-2000:]
  lines = [x for x in proc.stderr.splitlines() if "preempted" in x]
  assert len(lines) == 1 and lines[0].endswith(
      "preempted at step 3: checkpoint saved in runs/x/checkpoints; run the same command to "
      "continue")
