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


def test_every_shipped_gin_file_parses():
  """Each recipe in gin_configs/ binds only registered names and existing parameters."""
  import glob
  import os
  from tiger_jax import configurables  # noqa: F401
  files = sorted(glob.glob(os.path.join(REPO, "gin_configs", "**", "*.gin"), recursive=True))
  assert len(files) >= 15 and any("sweeps" in f for f in files)
  try:
    for path in files:
      gin.clear_config()
      gin.add_config_file_search_path(REPO)
      gin.parse_config_files_and_bindings([path], [], finalize_config=False)
  finally:
    gin.clear_config()


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
  (tmp_path / "open.gin").write_text("TRAIN_STEPS = (\n")
  for args, message in ((["--gin.TRAIN_STEP=5"], "did you mean TRAIN_STEPS?"),
                        (["--gin_file=nope.gin"], "--gin_file=nope.gin: no such file"),
                        (["--gin.TrainerConfig.foo=1"], "doesn't have a parameter named 'foo'"),
                        (["--gin.TrainerConfig.schedule='cosine'"],
                         "TrainerConfig.total_steps=0 must exceed warmup_steps=0"),
                        (["--gin.MODEL_DIR=runs/x"],  # the shell took the quotes off
                         "Failed to parse token 'runs' in `MODEL_DIR=runs/x`"),
                        (["--gin_file=open.gin"], "EOF in multi-line statement in open.gin")):
    proc = subprocess.run([sys.executable, "-m", "tiger_jax.main", *args], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)  # not the checkout: any folder works
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and message in proc.stderr
    assert not (tmp_path / "runs").exists()


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


def test_an_installed_package_ships_and_finds_its_gin_configs(tmp_path):
  """`pip install .` (not -e): the wheel carries gin_configs/, and a command run from any
  folder finds a config and its includes there."""
  subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                  str(tmp_path / "wheel"), REPO], check=True, capture_output=True, timeout=300)
  wheel = next((tmp_path / "wheel").iterdir())
  subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                  str(tmp_path / "site"), str(wheel)], check=True, capture_output=True, timeout=300)
  code = ("import gin, tiger_jax; from tiger_jax import cli, configurables\n"
          "path = cli.find_gin_file('gin_configs/main_synthetic.gin')\n"
          "[gin.add_config_file_search_path(r) for r in (cli._ROOT, cli._PACKAGE)]\n"
          "gin.parse_config_files_and_bindings([path], [])\n"
          "batch = gin.query_parameter('%BATCH_SIZE')\n"
          "gin.clear_config()\n"
          "recipe = cli.find_gin_file('gin_configs/recipes/beauty_best.gin')\n"
          "gin.parse_config_files_and_bindings([recipe], [])  # includes two levels deep\n"
          "print(tiger_jax.__file__, path, batch, recipe,\n"
          "      gin.query_parameter('FollowerConfig.sources'), gin.query_parameter('%TRAIN_STEPS'))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       cwd=tmp_path, env={**__import__("os").environ, "PYTHONPATH": str(tmp_path / "site")},
                       timeout=120).stdout.split()
  site = str(tmp_path / "site")
  assert out[0].startswith(site) and out[1] == f"{site}/tiger_jax/gin_configs/main_synthetic.gin"
  assert out[2] == "128"  # main_synthetic.gin's, over base.gin's include
  assert out[3] == f"{site}/tiger_jax/gin_configs/recipes/beauty_best.gin"
  assert out[4:] == ["3", "3000"]  # the recipe's
