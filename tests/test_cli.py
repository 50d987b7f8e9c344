"""Command-line checks shared by every binary: gin files and bindings."""

import shlex
import subprocess
import sys

import gin
import pytest

from conftest import REPO
from tiger_jax import cli


@pytest.fixture
def parsed():
  from tiger_jax import configurables  # noqa: F401  (registers the names the files bind)

  def parse(bindings):
    gin.clear_config()
    gin.add_config_file_search_path(REPO)
    gin.parse_config_files_and_bindings([cli.find_gin_file("gin_configs/main_synthetic.gin")],
                                        bindings)
    return bindings
  yield parse
  gin.clear_config()


def _gin_files(*parts):
  import glob
  import os
  return sorted(glob.glob(os.path.join(REPO, *parts, "**", "*.gin"), recursive=True))


def _include_depth(path, seen=()):
  """How many includes deep a gin file's chain goes (0: it includes nothing)."""
  import os
  import re
  includes = re.findall(r"^include\s+'([^']+)'", open(path).read(), re.M)
  assert path not in seen, f"{path} includes itself"
  return max((1 + _include_depth(os.path.join(REPO, f), seen + (path,)) for f in includes),
             default=0)


def test_every_gin_file_parses():
  """Each shipped config in gin_configs/ and each study config in studies/configs/ binds only
  registered names and existing parameters."""
  from tiger_jax import configurables  # noqa: F401
  files = _gin_files("gin_configs") + _gin_files("studies", "configs")
  assert len(files) >= 40 and any("recipes" in f for f in files)
  try:
    for path in files:
      gin.clear_config()
      gin.add_config_file_search_path(REPO)
      gin.parse_config_files_and_bindings([path], [], finalize_config=False)
  finally:
    gin.clear_config()


def test_shipped_gin_files_are_at_most_two_includes_deep():
  """A recipe writes its bindings out: it includes its task's file (which includes base.gin)
  at most, so one file says what a result ran."""
  depths = {f.rpartition("gin_configs/")[-1]: _include_depth(f) for f in _gin_files("gin_configs")}
  assert {f for f, d in depths.items() if d > 2} == set(), depths
  recipes = {f: d for f, d in depths.items() if f.startswith("recipes/")}
  assert set(recipes) >= {"recipes/beauty_paper.gin", "recipes/beauty_best.gin",
                          "recipes/toys_paper.gin", "recipes/toys_best.gin"}


def test_a_binding_of_a_configurable_the_command_never_calls_is_an_error(parsed):
  on = ["T5Config.followers=@FollowerConfig()", "FollowerConfig.count=3"]
  cli.check_binding_targets(parsed(on), calls=("experiment", "train"))
  cli.check_binding_targets(parsed(["TrainerConfig.log_every=1"]), calls=("experiment", "train"))
  with pytest.raises(SystemExit, match=r"--gin.FollowerConfig.count=3: this command never calls "
                                       r"FollowerConfig with this config"):
    cli.check_binding_targets(parsed(["FollowerConfig.count=3"]), calls=("experiment", "train"))
  with pytest.raises(SystemExit, match=r"--gin.SASRecConfig.epochs=2: this command never calls"):
    cli.check_binding_targets(parsed(["SASRecConfig.epochs=2"]), calls=("experiment", "train"))


def test_an_unexpected_error_is_one_line_with_its_traceback_in_a_file(tmp_path):
  """A crash deep in a command: one `error:` line naming the traceback's file (in the run's
  logs/), the whole traceback only with --verbose."""
  import os
  run = lambda *extra: subprocess.run(
      [sys.executable, "-m", "tiger_jax.evaluate", "--gin_file=gin_configs/tiger_synthetic.gin",
       f"--gin.MODEL_DIR='{tmp_path}'", f"--gin.DATA_DIR='{tmp_path}'", *extra],
      capture_output=True, text=True, cwd=REPO, timeout=120)
  os.makedirs(tmp_path / "tfds")  # past the "no TFDS dataset here" check, to the IDs' loader
  out = run()
  last = out.stderr.strip().splitlines()[-1]
  assert out.returncode == 1 and last.startswith("error: ") and "Traceback" not in out.stderr
  path = last.split("full traceback in ")[1].split(";")[0]
  assert path.startswith(str(tmp_path / "logs")) and "Traceback" in open(path).read()


def test_verbose_prints_the_crash_traceback_too(tmp_path, monkeypatch, capsys):
  """The crash report under --verbose (in-process; the command line's path is the test above):
  the same one `error:` line and file, and the traceback on stderr as well."""
  import types
  import gin
  monkeypatch.setattr(cli, "FLAGS", types.SimpleNamespace(verbose=True))
  gin.clear_config()
  gin.bind_parameter("%MODEL_DIR", str(tmp_path))
  try:
    try:
      raise RuntimeError("deep down")
    except RuntimeError as e:
      with pytest.raises(SystemExit, match=r"^error: RuntimeError: deep down \(full traceback "
                                           rf"in {tmp_path / 'logs'}/traceback-\d+\.txt;"):
        cli._report_crash(e)
  finally:
    gin.clear_config()
  assert "Traceback" in capsys.readouterr().err and 'raise RuntimeError("deep down")' in open(
      next((tmp_path / "logs").iterdir())).read()


def test_a_mistyped_macro_stops_with_the_closest_name(parsed):
  cli.check_macro_bindings(parsed(["TRAIN_STEPS=5", "BATCH_SIZE=8", "TrainerConfig.log_every=1"]))
  with pytest.raises(SystemExit, match=r"--gin.TRAIN_STEP=5: no binding .* uses the macro "
                                       r"TRAIN_STEP; did you mean TRAIN_STEPS\?"):
    cli.check_macro_bindings(parsed(["TRAIN_STEP=5"]))
  with pytest.raises(SystemExit, match="uses the macro QWERTY Check"):
    cli.check_macro_bindings(parsed(["QWERTY=1"]))


def test_gin_files_resolve_from_any_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert cli.find_gin_file("gin_configs/tiger_beauty.gin").startswith(REPO)
  with pytest.raises(SystemExit, match=r"--gin_file=gin_configs/nope.gin: no such file"):
    cli.find_gin_file("gin_configs/nope.gin")


def test_bad_gin_input_is_one_error_line(tmp_path):
  """Each kind of bad gin input stops before any work with its own message (parsed here as
  the command line parses it); one command line shows the whole wiring: exit code 1, one
  `error:` line, no traceback, nothing written."""
  from tiger_jax import configurables
  from tiger_jax.errors import ConfigError
  from tiger_jax.main import CALLS as main_calls
  (tmp_path / "open.gin").write_text("TRAIN_STEPS = (\n")
  try:
    for files, bindings, message in (
        ([], ["TRAIN_STEP=5"], "did you mean TRAIN_STEPS?"),
        (["nope.gin"], [], "--gin_file=nope.gin: no such file"),
        ([], ["TrainerConfig.foo=1"], "doesn't have a parameter named 'foo'"),
        ([], ["MODEL_DIR=runs/x"], "Failed to parse token 'runs' in `MODEL_DIR=runs/x`"),
        ([str(tmp_path / "open.gin")], [], "EOF in multi-line statement in")):
      gin.clear_config()
      with pytest.raises(SystemExit, match="^error: ") as stop:
        cli.parse_config(files or ["gin_configs/main_synthetic.gin"], bindings, main_calls)
      assert message in str(stop.value), (message, str(stop.value))
    gin.clear_config()
    cli.parse_config(["gin_configs/main_synthetic.gin"], ["TrainerConfig.schedule='cosine'"],
                     main_calls)
    with pytest.raises(ConfigError, match="TrainerConfig.total_steps=0 must exceed warmup_steps=0"):
      configurables.TrainerConfig()  # the main job builds it first, before any stage
    with pytest.raises(ConfigError, match="num_buckets=5, eval_buckets=0; each must be at least"):
      configurables.TrainerConfig(schedule="rsqrt", eval_buckets=0)
  finally:
    gin.clear_config()
  proc = subprocess.run([sys.executable, "-m", "tiger_jax.main", "--gin.TRAIN_STEP=5"],
                        capture_output=True, text=True, cwd=tmp_path, timeout=120)  # any folder
  assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
  assert "did you mean TRAIN_STEPS?" in proc.stderr and not (tmp_path / "runs").exists()


def test_printed_commands_paste_back_into_a_shell():
  argv = ["python", "bench/x.py", "--gin.MODEL_DIR='runs/a b'", "--n=3", "--weights=1;1,0.3",
          "--gin.X='say \"hi\" $HOME'", "it's", "--recipes=a:b.gin,c:d.gin"]
  line = cli.shell_join(argv)
  assert shlex.split(line) == argv
  assert "--gin.MODEL_DIR=\"'runs/a b'\" --n=3 --weights=\"1;1,0.3\"" in line


def test_positive_macros(parsed):
  cli.check_positive_macros()  # main_synthetic.gin's own values
  for binding, message in (("TRAIN_STEPS=0", "TRAIN_STEPS=0: must be a whole number of at least 1"),
                           ("BATCH_SIZE=-4", "BATCH_SIZE=-4: must be"),
                           ("TRAIN_STEPS=1.5", "TRAIN_STEPS=1.5: must be")):
    parsed([binding])
    with pytest.raises(SystemExit, match=message):
      cli.check_positive_macros()


def test_data_out_dir_that_is_a_file_or_read_only(tmp_path):
  import os
  (tmp_path / "afile").write_text("x")
  locked = tmp_path / "locked"
  locked.mkdir()
  os.chmod(locked, 0o500)
  cases = [(tmp_path / "afile", "is a file"), (tmp_path / "afile" / "sub", "is a file")]
  if os.geteuid() != 0:  # root writes anywhere
    cases.append((locked / "out", "is not writable"))
  for out, message in cases:
    proc = subprocess.run([sys.executable, "-m", "tiger_jax.data", "--source=synthetic",
                           f"--out_dir={out}"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == f"error: --out_dir={out}: " + (
        f"{tmp_path / 'afile'} {message}; pass a folder" if "file" in message
        else f"{locked} {message}; pass a writable folder")


def test_the_binaries_load_without_tensorflow():
  """TensorFlow (seqio's, TFDS', clu's summary writers) takes 10 s of CPU to import on a
  2-core machine: only what reads the task's data or writes summaries loads it, so that the
  Semantic-ID stage, a multi-host trainer and every binary's flags start without it (a
  mistyped flag of the main job stops in 4 s, not 12)."""
  code = ("import sys, tiger_jax.configurables, tiger_jax.trainer, tiger_jax.experiment, "
          "tiger_jax.semantic_ids.__main__, tiger_jax.main, tiger_jax.evaluation, "
          "tiger_jax.recommender, tiger_jax.buckets\n"  # (one binary a process: each defines its flags)
          "print(sorted(m for m in ('tensorflow', 'seqio', 'tensorflow_datasets') "
          "if m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       check=True, timeout=120).stdout
  assert out.strip() == "[]"


def test_an_installed_package_ships_and_finds_its_gin_configs(tmp_path):
  """`pip install .` (not -e): the wheel carries gin_configs/, and a command run from any
  folder finds a config and its includes there."""
  subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                  str(tmp_path / "wheel"), REPO], check=True, capture_output=True, timeout=300)
  wheel = next((tmp_path / "wheel").iterdir())
  subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                  str(tmp_path / "site"), str(wheel)], check=True, capture_output=True, timeout=300)
  # (Macros only, the configurables left unregistered: no JAX or TensorFlow to import.)
  code = ("import gin, tiger_jax; from tiger_jax import cli\n"
          "path = cli.find_gin_file('gin_configs/main_synthetic.gin')\n"
          "[gin.add_config_file_search_path(r) for r in (cli._ROOT, cli._PACKAGE)]\n"
          "gin.parse_config_files_and_bindings([path], [], skip_unknown=True)\n"
          "batch = gin.query_parameter('%BATCH_SIZE')\n"
          "gin.clear_config()\n"
          "recipe = cli.find_gin_file('gin_configs/recipes/beauty_best.gin')\n"
          "gin.parse_config_files_and_bindings([recipe], [], skip_unknown=True)\n"
          "print(tiger_jax.__file__, path, batch, recipe, gin.query_parameter('%TRAIN_STEPS'),\n"
          "      gin.query_parameter('%MIXTURE_OR_TASK_NAME'), gin.query_parameter('%BEAM_SIZE'))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       cwd=tmp_path, env={**__import__("os").environ, "PYTHONPATH": str(tmp_path / "site")},
                       timeout=120).stdout.split()
  site = str(tmp_path / "site")
  assert out[0].startswith(site) and out[1] == f"{site}/tiger_jax/gin_configs/main_synthetic.gin"
  assert out[2] == "128"  # main_synthetic.gin's, over base.gin's include
  assert out[3] == f"{site}/tiger_jax/gin_configs/recipes/beauty_best.gin"
  # The recipe's own, its include's (tiger_beauty.gin) and that file's include's (base.gin).
  assert out[4:] == ["100000", "tiger_beauty", "20"]
