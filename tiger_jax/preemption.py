"""Stopping a training run cleanly: on SIGTERM (what spot/preemptible VMs and SLURM send ahead
of a kill) or a first Ctrl-C, the trainer finishes its step, saves it and raises `Preempted`;
the command line turns that into one log line and exit code EXIT_CODE. A second Ctrl-C stops at
once (KeyboardInterrupt); the last complete checkpoint stays intact (orbax writes a step to a
temporary folder and renames it when complete).

On several hosts the step comes from JAX's distributed runtime instead (`Checkpoints.
reached_preemption`), so that every host saves the same step.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Callable, TypeVar

T = TypeVar("T")

EXIT_CODE = 75  # EX_TEMPFAIL: the run stopped early and resumes when the same command reruns


class Preempted(Exception):
  """Training stopped at `step` (an epoch where `unit` says so) after saving it in
  `directory`."""

  def __init__(self, step: int, directory: str, unit: str = "step"):
    super().__init__(f"preempted at {unit} {step}: checkpoint saved in {directory}; run the "
                     "same command to continue")
    self.step, self.directory, self.unit = step, directory, unit


def exit_when_preempted(main: Callable[[], T], at_once: bool = False) -> T:
  """Runs `main()`; a `Preempted` becomes one warning line (where the state is, how to go on;
  not gin's "In call to" lines) and exit code EXIT_CODE. Every binary that trains uses it.

  at_once (what the binaries pass, `cli.run`): the process ends right after that line, without
  the interpreter's teardown. The state is already saved and the logs flushed, while tearing
  down a tf.data training iterator waited 35-75 s for its threads: past a scheduler's grace
  period (SLURM's KillWait is 30 s by default), where the kill would replace the exit code
  that asks for a requeue."""
  try:
    return main()
  except Preempted as e:
    logging.warning("%s", str(e).splitlines()[0])
    if at_once:
      _exit_now(EXIT_CODE)
    sys.exit(EXIT_CODE)


def _exit_now(code: int) -> None:
  """Flushes the logs and standard streams, leaves JAX's distributed runtime (several hosts),
  and ends the process with `code`, skipping atexit handlers and waits on other threads."""
  for handler in logging.getLogger().handlers:
    handler.flush()
  for stream in (sys.stdout, sys.stderr):
    stream.flush()
  jax = sys.modules.get("jax")
  if jax is not None:
    jax.distributed.shutdown()  # nothing where it was never initialized
  os._exit(code)  # pylint: disable=protected-access


class SignalWatch:
  """While entered (in the main thread), SIGTERM and a first SIGINT set `requested` (the signal
  number) instead of ending the process; a second SIGINT raises KeyboardInterrupt."""

  def __init__(self, enabled: bool = True):
    self.enabled = enabled  # False on several hosts: JAX's runtime watches SIGTERM there
    self.requested: int | None = None
    self._previous: dict[int, object] = {}

  def _handle(self, signum, frame):
    del frame
    if self.requested is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt  # the second Ctrl-C: stop now
    self.requested = signum
    logging.warning("%s received: saving at the end of this step, then stopping (Ctrl-C "
                    "again to stop at once)", signal.Signals(signum).name)

  def __enter__(self) -> SignalWatch:
    if self.enabled and threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous.clear()
