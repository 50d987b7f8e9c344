"""What every command line shares: t5x-style gin flags and quiet library logs."""

from __future__ import annotations

import difflib
import logging as std_logging
import os
import re
import shlex
import sys
import tokenize
from typing import Callable, Iterator, Sequence

import gin
from absl import app, flags, logging

from tiger_jax import preemption
from tiger_jax.data.dataset import DataError
from tiger_jax.errors import ConfigError

flags.DEFINE_multi_string("gin_file", [], "Gin files, applied in order.")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings (also accepted as --gin.NAME=VALUE).")
flags.DEFINE_bool("verbose", False, "On an unexpected error, print the full traceback (it is "
                  "always written to a file, named in the error line).")
flags.DEFINE_enum("prng_impl", "rbg", ["threefry2x32", "rbg", "unsafe_rbg"],
                  "JAX PRNG. 'rbg' makes dropout masks ~1.6x cheaper than threefry on CPU.")
FLAGS = flags.FLAGS
_QUIET = ("orbax", "tensorflow_datasets", "absl/logging", "jax/_src")
# The checkout's root, where gin_configs/ lives: gin files and their includes resolve against
# it too, so the commands work from any working directory.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# An installed package (`pip install .`) carries them as tiger_jax/gin_configs/ (setup.py).
_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def split_gin_args(argv: list[str]) -> tuple[list[str], list[str]]:
  """Splits t5x-style `--gin.NAME=VALUE` arguments off argv as gin bindings."""
  rest, bindings = [], []
  for arg in argv:
    if arg.startswith("--gin."):
      name, _, value = arg[len("--gin."):].partition("=")
      bindings.append(f"{name}={value}")
    else:
      rest.append(arg)
  return rest, bindings


def shell_join(argv: Sequence[str]) -> str:
  """A command line that a POSIX shell gives back as argv: `--gin.MODEL_DIR='runs/x'` prints
  as `--gin.MODEL_DIR="'runs/x'"`, so a printed command can be pasted and run again."""
  def quote(arg: str) -> str:
    if shlex.quote(arg) == arg:
      return arg
    name, eq, value = arg.partition("=")
    plain_name = eq and name.startswith("-") and shlex.quote(name) == name
    if plain_name and not set('"\\$`!') & set(value):  # nothing double quotes would expand
      return f'{name}="{value}"'
    return shlex.quote(arg)
  return " ".join(quote(a) for a in argv)


def find_gin_file(path: str) -> str:
  """`path` as given, else relative to the checkout or the installed package; a missing
  file is an error."""
  for candidate in (path, os.path.join(_ROOT, path), os.path.join(_PACKAGE, path)):
    if os.path.isfile(candidate):
      return candidate
  raise SystemExit(f"error: --gin_file={path}: no such file (looked in {os.getcwd()}, {_ROOT} "
                   f"and {_PACKAGE}); pass an existing gin file, e.g. gin_configs/tiger_beauty.gin")


def check_macro_bindings(bindings: Sequence[str]) -> None:
  """Stops on a `--gin.NAME=...` macro that no binding of the parsed config references.

  gin itself rejects an unknown `Configurable.param`; an unknown macro would
  just be defined and never used (`--gin.TRAIN_STEP=5` training the default steps).
  """
  used = set(re.findall(r"%([A-Za-z_][\w./]*)", gin.config_str()))
  for binding in bindings:
    name = binding.partition("=")[0].strip()
    if not name or "." in name or "/" in name or name in used:
      continue
    close = difflib.get_close_matches(name, sorted(used), n=1)
    raise SystemExit(f"error: --gin.{binding}: no binding of the config uses the macro {name}"
                     + (f"; did you mean {close[0]}?" if close else "")
                     + " Check the name against the gin files.")


# Macros that must hold a positive integer, checked before any stage runs.
POSITIVE_MACROS = ("TRAIN_STEPS", "BATCH_SIZE")


def check_positive_macros(names: Sequence[str] = POSITIVE_MACROS) -> None:
  """Stops on TRAIN_STEPS=0, BATCH_SIZE=-4 and the like before any work is done."""
  for name in names:
    try:
      value = gin.query_parameter(f"%{name}")
    except ValueError:  # not defined by this config
      continue
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise SystemExit(f"error: {name}={value!r}: must be a whole number of at least 1 "
                       f"(set it with --gin.{name}=N)")


def _references(value, seen_macros: set[str]) -> Iterator[str]:
  """The configurables (selectors) a bound value refers to, through macros and containers."""
  from gin import config as gin_config
  if isinstance(value, gin_config.ConfigurableReference):
    if value.configurable.selector == "gin.macro":
      name = value.scoped_selector.rpartition("/")[0]
      if name not in seen_macros:
        seen_macros.add(name)
        macro = gin_config._CONFIG.get((name, "gin.macro"), {})  # pylint: disable=protected-access
        yield from _references(macro.get("value"), seen_macros)
    else:
      yield value.configurable.selector
  elif isinstance(value, (list, tuple, set)):
    for v in value:
      yield from _references(v, seen_macros)
  elif isinstance(value, dict):
    for v in value.values():
      yield from _references(v, seen_macros)


def called_configurables(calls: Sequence[str]) -> set[str]:
  """The selectors of `calls` (the configurables a binary calls itself) and of every
  configurable their bindings refer to, transitively (`@T5Config()` in experiment's, ...)."""
  from gin import config as gin_config
  registry = gin_config._REGISTRY  # pylint: disable=protected-access
  todo = [registry.get_match(name).selector for name in calls]
  reached: set[str] = set()
  while todo:
    selector = todo.pop()
    if selector in reached:
      continue
    reached.add(selector)
    for (_, bound), params in gin_config._CONFIG.items():  # pylint: disable=protected-access
      if bound == selector:
        for value in params.values():
          todo.extend(_references(value, set()))
  return reached


def check_binding_targets(bindings: Sequence[str], calls: Sequence[str]) -> None:
  """Stops on a `--gin.Name.param=...` binding of a configurable that this command never calls
  (say FollowerConfig.count while T5Config.followers is None): gin would accept it and the
  run would silently ignore it."""
  from gin import config as gin_config
  registry = gin_config._REGISTRY  # pylint: disable=protected-access
  reached = called_configurables(calls)
  for binding in bindings:
    name = binding.partition("=")[0].strip()
    target = name.rpartition(".")[0].rpartition("/")[-1]
    if not target or "." not in name:
      continue  # a macro: check_macro_bindings
    match = registry.get_match(target)
    if match is not None and match.selector not in reached:
      refs = ", ".join(sorted(s.rpartition(".")[-1] for s in reached))
      raise SystemExit(f"error: --gin.{binding}: this command never calls {target} with this "
                       f"config (it calls {refs}); switch it on first (e.g. "
                       f"T5Config.followers = @FollowerConfig() for FollowerConfig) or drop "
                       "the binding")


def _report_crash(error: BaseException) -> None:
  """One error line naming the file that holds the full traceback (--verbose: print it too)."""
  import tempfile
  import traceback
  text = "".join(traceback.format_exception(error))
  try:
    model_dir = gin.query_parameter("%MODEL_DIR")
  except ValueError:
    model_dir = None
  try:
    import jax
    if model_dir and jax.process_index() == 0:
      from tiger_jax.run_dir import RunDir
      os.makedirs(RunDir(model_dir).logs, exist_ok=True)
      path = os.path.join(RunDir(model_dir).logs, f"traceback-{os.getpid()}.txt")
    else:
      path = tempfile.mkstemp(prefix="tiger_jax_traceback_", suffix=".txt")[1]
    with open(path, "w") as f:
      f.write(text)
  except OSError:
    path = None
  if FLAGS.verbose:
    sys.stderr.write(text)
  where = f"full traceback in {path}" if path else "no traceback file could be written"
  first = (str(error).strip().splitlines() or [""])[0][:300]
  raise SystemExit(f"error: {type(error).__name__}: {first} ({where}; --verbose prints it)")


class _QuietLibraries(std_logging.Filter):
  def filter(self, record: std_logging.LogRecord) -> bool:
    if record.pathname.endswith(os.path.join("gin", "resource_reader.py")):
      return False  # "Path not found" while gin tries the include search paths in turn
    return record.levelno >= std_logging.WARNING or not any(q in record.pathname for q in _QUIET)


def parse_config(gin_files: Sequence[str], bindings: Sequence[str],
                 calls: Sequence[str] | None = None) -> None:
  """Parses the gin files and bindings as a command line does, with every check before work
  starts; bad input stops with one `error:` line (SystemExit)."""
  for root in (_ROOT, _PACKAGE):  # for `include 'gin_configs/...'` from any directory
    gin.add_config_file_search_path(root)
  try:
    gin.parse_config_files_and_bindings([find_gin_file(f) for f in gin_files], bindings)
  except (ValueError, OSError) as e:  # unknown configurable or parameter, bad include
    raise SystemExit(f"error: gin: {e}".splitlines()[0]) from None
  except SyntaxError as e:  # a value gin cannot parse, e.g. a path the shell unquoted
    where = e.filename if e.filename and not e.filename.startswith("<") else "--gin bindings"
    raise SystemExit(f"error: gin: {str(e.msg).strip().splitlines()[-1].strip()} in "
                     f"`{(e.text or '').strip()}` ({where}, line {e.lineno}); gin values are "
                     "Python literals: quote strings for the shell too, e.g. "
                     '--gin.MODEL_DIR="\'runs/x\'"') from None
  except tokenize.TokenError as e:  # e.g. a bracket left open at the end of a file
    raise SystemExit(f"error: gin: {e.args[0]} in {', '.join(gin_files) or 'no file'} or "
                     "the --gin bindings; close the bracket or string") from None
  check_macro_bindings(bindings)
  if calls is not None:
    check_binding_targets(bindings, calls)
  check_positive_macros()


def run(main: Callable[[], None], calls: Sequence[str] | None = None) -> None:
  """Parses absl flags and gin (files, --gin_bindings and --gin.X=V), then calls main().

  calls: the configurables main() calls itself (its gin names); a --gin binding of any other
  configurable, not reached from these through the config's references, is an error. An
  exception main() does not expect ends in one `error:` line and a traceback file."""
  argv, extra = split_gin_args(sys.argv)

  def _main(_):
    logging.get_absl_handler().addFilter(_QuietLibraries())
    import jax
    jax.config.update("jax_default_prng_impl", FLAGS.prng_impl)
    parse_config(FLAGS.gin_file, FLAGS.gin_bindings + extra, calls)
    try:
      preemption.exit_when_preempted(main, at_once=True)
    except (DataError, ConfigError) as e:  # gin appends "In call to configurable ..." lines
      raise SystemExit(f"error: {str(e).splitlines()[0]}") from None
    except Exception as e:  # pylint: disable=broad-except
      _report_crash(e)

  app.run(_main, argv=argv)
