"""The repository's shape: no machine's paths, one-way imports, small files, a README whose
results table is what the committed records generate."""

import ast
import os
import re
import subprocess

from conftest import REPO

# An absolute path of some machine: a home or work folder, or a Windows drive. The folder names
# are joined here so that this file does not hold such a path itself.
MACHINE_PATH = re.compile(r"(?<![\w.])(/(%s)/|/(%s)/\w|[A-Z]:\\\\)" % (
    "|".join(("work", "root")), "|".join(("home", "Users"))))
BINARIES = {"tiger_jax.main", "tiger_jax.train", "tiger_jax.evaluate", "tiger_jax.data.__main__",
            "tiger_jax.semantic_ids.__main__"}


def _tracked_files():
  try:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                         check=True, timeout=60).stdout.split("\n")
    return [f for f in out if f and os.path.isfile(os.path.join(REPO, f))]
  except (OSError, subprocess.CalledProcessError):  # not a checkout: every file but outputs
    skip = {".git", "runs", "build", "__pycache__", ".pytest_cache"}
    return [os.path.relpath(os.path.join(d, f), REPO) for d, dirs, files in os.walk(REPO)
            for f in files if not dirs.__setitem__(slice(None), [x for x in dirs if x not in skip])]


def test_no_tracked_file_holds_an_absolute_machine_path():
  found = []
  for path in _tracked_files():
    if path.endswith((".png", ".npz", ".npy")):
      continue
    try:
      text = open(os.path.join(REPO, path), encoding="utf-8").read()
    except UnicodeDecodeError:
      continue
    for n, line in enumerate(text.splitlines(), 1):
      if MACHINE_PATH.search(line):
        found.append(f"{path}:{n}: {line.strip()[:120]}")
  assert not found, "absolute machine paths (write them relative to the repository):\n" + \
      "\n".join(found[:20])


def _modules():
  for d, _, files in os.walk(os.path.join(REPO, "tiger_jax")):
    for f in files:
      if f.endswith(".py"):
        path = os.path.join(d, f)
        name = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
        yield name.removesuffix(".__init__"), path


def test_no_library_module_imports_a_binary_and_files_stay_small():
  """Binaries import libraries, never the reverse (t5x: eval imports the trainer, never
  train); the paper's model is one file of at most 500 lines, no library file over 600."""
  offenders, sizes = [], {}
  for name, path in _modules():
    text = open(path).read()
    sizes[name] = len(text.splitlines())
    if name in BINARIES:
      continue
    for node in ast.walk(ast.parse(text)):
      names = []
      if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom) and node.module:
        names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
      offenders += [f"{name} imports {n}" for n in names if n in BINARIES]
  assert not offenders, offenders
  assert sizes["tiger_jax.network.t5"] <= 500, sizes["tiger_jax.network.t5"]
  assert {n: s for n, s in sizes.items() if s > 600} == {}


def test_readme_table_is_what_the_records_generate():
  """The README's results block is `python -m studies.readme_table`'s output over records/:
  a figure changes only with its record."""
  from studies import readme_table
  readme = open(os.path.join(REPO, "README.md")).read()
  records = readme_table.load_records(readme_table.default_records())
  assert records, "no results records in records/"
  expected = readme_table.table(records,
                                readme_table.load_records(readme_table.default_seed_records()),
                                readme_table.load_records(readme_table.default_progress_records()))
  assert readme_table.block(readme) == expected, (
      "README.md's results block differs from the records: run "
      "`python -m studies.readme_table --readme=README.md`")
  sid_records = readme_table.load_semantic_id_records(readme_table.default_semantic_id_records())
  assert {r["dataset"] for r in sid_records} >= {"Beauty", "Toys"}
  assert readme_table.block(readme, readme_table.SID_BEGIN, readme_table.SID_END) == \
      readme_table.semantic_id_table(sid_records), (
          "README.md's Semantic-ID block differs from records/semantic_ids/: run "
          "`python -m studies.readme_table --readme=README.md`")
  assert readme_table.block(readme, readme_table.COLD_BEGIN, readme_table.COLD_END) == \
      readme_table.cold_start_table(readme_table.load_cold_start_record())
  assert len(readme.splitlines()) <= 250


def test_a_table_of_runs_on_different_semantic_ids_says_so():
  from studies import readme_table
  rows = {k: 0.1 for k in readme_table.KEYS}

  def record(sha1, label):
    tiger = {**rows, "checkpoint_step": 10, "train_seconds": 60,
             "semantic_ids": {"sha1": sha1, "method": "rqvae", "used_codewords": [256, 250, 240],
                              "items_in_collision": 0.081, "largest_group": 7}}
    return {"dataset": "beauty", "label": label, "recipe": f"gin_configs/recipes/{label}.gin",
            "train_steps": 10, "rows": {"TIGER": tiger}, "path": f"records/{label}.json",
            "command": "x", "batch_size": 8, "seed": 0, "hardware": "cpu"}

  same = readme_table.table([record("a" * 40, "one"), record("a" * 40, "two")])
  assert "Semantic IDs sha1 aaaaaaaaaa (rqvae: level-1 codewords 256, 8.1% of items in " \
         "collision groups, largest group 7)." in same and "different sets" not in same
  mixed = readme_table.table([record("a" * 40, "one"), record("b" * 40, "two")])
  assert "these rows stand on 2 different sets of Semantic IDs (aaaaaaaaaa, bbbbbbbbbb)" in mixed


def test_a_rows_other_seeds_follow_its_note_paired_with_it_and_averaged():
  import numpy as np
  from studies import readme_table
  from tiger_jax import results
  targets = np.arange(40)
  lists = np.full((40, 20), 99)

  def record(seed, hit_users, recipe="gin_configs/recipes/x.gin", exclude=False, sasrec=True):
    rows, lists_of = {}, {}
    for model, hit in (("TIGER", hit_users), ("SASRec", 40 - hit_users))[:1 + sasrec]:
      ranked = lists.copy()
      ranked[:hit, 0] = targets[:hit]  # the first users' targets at rank 1
      lists_of[model] = ranked
      rows[model] = {"recall@5": hit / 40, "recall@10": hit / 40, "ndcg@5": hit / 40,
                     "ndcg@10": hit / 40, "checkpoint_step": 10 * (seed + 1), "train_seconds": 60}
    return {"dataset": "beauty", "label": "x", "recipe": recipe, "train_steps": 10,
            "rows": rows, "path": f"records/s{seed}.json", "command": "c",
            "batch_size": 8, "seed": seed, "hardware": "cpu",
            "user_hits": results.user_hits(lists_of, targets), "exclude_history": exclude}

  main = record(0, 10)
  seeds = [record(1, 6), record(2, 20, recipe="gin_configs/recipes/y.gin"),
           record(3, 4, exclude=True), record(4, 2, sasrec=False)]
  text = readme_table.table([main], seeds)
  note = [l for l in text.splitlines() if l.startswith("- Beauty, `records/s0.json`")][0]
  z = lambda lost: -lost / 40 / (np.std(np.r_[-np.ones(lost), np.zeros(40 - lost)], ddof=1)
                                 / np.sqrt(40))
  assert note.endswith(
      f" Other seeds: seed 1 (`records/s1.json`, step 20): TIGER R@10 0.1500, N@10 0.1500, "
      f"minus seed 0 -0.1000 (z {z(4):+.1f}), -0.1000 (z {z(4):+.1f}); SASRec R@10 0.8500, N@10 "
      f"0.8500, minus seed 0 +0.1000 (z {-z(4):+.1f}), +0.1000 (z {-z(4):+.1f}); seed 4 "
      f"(`records/s4.json`, step 50): TIGER R@10 0.0500, N@10 0.0500, minus seed 0 -0.2000 (z "
      f"{z(8):+.1f}), -0.2000 (z {z(8):+.1f}); TIGER's mean over 3 seeds: R@10 0.1500, N@10 "
      f"0.1500."), note
  assert "s2.json" not in text and "s3.json" not in text  # another recipe, another protocol
  assert "Other seeds" not in readme_table.table([main])
  # A seed whose run built its own Semantic IDs (another machine) says so.
  for r, sha in ((main, "a" * 40), (seeds[0], "b" * 40)):
    r["rows"]["TIGER"]["semantic_ids"] = {"sha1": sha}
  assert ("seed 1 (`records/s1.json`, step 20; its own build of the recipe's Semantic IDs, sha1 "
          "bbbbbbbbbb, so the difference includes the IDs'): TIGER") in readme_table.table(
              [main], seeds[:1])


def test_the_cold_start_block_shows_knn_the_prefix_rule_and_the_mechanism_on_cold_targets():
  from studies import readme_table
  metrics = {k: 0.1 for k in readme_table.KEYS}
  rows = {f"{name}, {group} (eps=0.1)": {**metrics, "users": 7, "cold_items": 3}
          for name in ("content-KNN (mean)", "most-popular", "TIGER beams",
                       "TIGER + 3-code prefix rule", "TIGER + beam-KNN (blend 0.5, rank 2)")
          for group in ("cold targets", "warm targets", "all users")
          if not (name == "most-popular" and group == "cold targets")}
  text = readme_table.cold_start_table({"rows": rows, "command": "python -m x", "seed": 0,
                                        "hardware": "cpu"})
  names = [line.split(" | ")[0][2:] for line in text.splitlines()[2:5]]
  assert names == ["content-KNN (mean), cold targets (eps=0.1)",
                   "TIGER + 3-code prefix rule, cold targets (eps=0.1)",
                   "TIGER + beam-KNN (blend 0.5, rank 2), cold targets (eps=0.1)"]
  assert "7 test users whose target is one of 3 cold items" in text
  assert "not run yet" in readme_table.cold_start_table(None)


def test_each_recipe_has_its_own_run_folder_and_its_command_names_the_recipe_itself():
  """Two recipes on one MODEL_DIR would resume each other's checkpoints; a usage line that names
  another recipe (a copy's leftover) runs the wrong model."""
  import glob
  folders = {}
  for path in sorted(glob.glob(os.path.join(REPO, "gin_configs", "recipes", "**", "*.gin"),
                               recursive=True)):
    recipe, text = os.path.relpath(path, REPO), open(path).read()
    folder = re.findall(r"^MODEL_DIR = '([^']+)'", text, re.M)
    assert len(folder) == 1, f"{recipe}: one MODEL_DIR binding"
    assert folder[0] not in folders, f"{recipe} and {folders.get(folder[0])} share {folder[0]}"
    folders[folder[0]] = recipe
    for named in re.findall(r"--gin_file=([\w/.-]*\w)", text):
      assert named in (recipe, "THIS"), f"{recipe}: its command runs {named}"
  assert len(folders) > 30


def test_the_launch_scripts_refuse_bad_input_in_one_line():
  for script, args in (("studies/run_recipes.sh", ["gin_configs/recipes/no_such.gin"]),
                       ("studies/run_recipes.sh", []),
                       ("studies/ids_downstream.sh", ["neither"])):
    proc = subprocess.run(["bash", script, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error:"), (script, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_readme_figure_draws_each_records_validation_curve_and_floors(tmp_path, monkeypatch):
  """One panel per dataset from the records alone: each record's validation curve (kept by
  studies.reproduce) and the floors on the same users."""
  import json
  from studies import readme_figure, readme_table
  points = [{"step": s, "hours": s / 1000, "recall@10": 0.05, "ndcg@10": 0.01 * s / 1000}
            for s in (1000, 2000)]
  paths = []
  for dataset in ("beauty", "toys"):
    record = {"dataset": dataset, "label": "TIGER", "recipe": f"r/{dataset}_x.gin",
              "hardware": "cpu", "validation_curve": points, "validation_users": 64,
              "validation_lines": {"most-popular": {"recall@10": 0.01, "ndcg@10": 0.005}}}
    paths.append(str(tmp_path / f"{dataset}.json"))
    json.dump(record, open(paths[-1], "w"))
  monkeypatch.setattr(readme_table, "default_records", lambda: paths)
  monkeypatch.setattr(readme_figure, "OUT", str(tmp_path / "fig.png"))
  got = readme_figure.curves(json.load(open(paths[0])))
  assert got == (points, {"most-popular": {"recall@10": 0.01, "ndcg@10": 0.005}}, None, 64)
  readme_figure.main()
  assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"
