"""The ladder study's rows (studies/ladder.py): the recipes in order, and paired differences
against the row above."""

import numpy as np
import pytest

from studies import ladder


def test_the_ladder_recipes_come_in_row_order_with_their_titles_and_run_folders():
  for dataset in ("beauty", "toys"):
    paths = ladder.recipes(dataset)
    assert len(paths) == 7
    names = [p.rsplit("/", 1)[1] for p in paths]
    assert names[0] == f"{dataset}_1_paper.gin" and names[-1] == f"{dataset}_7_copy.gin"
    assert ladder.title(paths[0]).startswith("the paper's model")
    assert all(ladder.title(p).startswith("+ ") for p in paths[1:])
    assert ladder.model_dir(paths[2]) == f"runs/ladder/{dataset}/3_item_level"
    # Each row holds every binding of the row above (one mechanism added per row).
    for above, row in zip(paths, paths[1:]):
      binds = lambda p: {l for l in open(p) if "=" in l and not l.startswith(("#", "MODEL_DIR"))}
      assert binds(above) < binds(row)


def test_the_readme_recipes_are_ladder_rows_and_name_their_rows():
  """The best recipe is the ladder's last row with SASRec beside it; the 8-hour recipes are
  rows 1 (the paper's model) and 5 (no count memories) at 8 trainer hours: the same bindings
  but for the run folder, the label, the budget and SASRec. Each names its README row."""
  import gin
  from studies import readme_table, reproduce
  from tiger_jax import cli, configurables  # noqa: F401  (the gin names)
  recipes = "gin_configs/recipes/"
  own = ("MODEL_DIR", "LABEL", "TRAIN_STEPS", "pipeline.run_sasrec", "TrainerConfig.max_train_hours")
  binds = lambda p: {l.split("#")[0].strip() for l in open(p) if "=" in l and not l.startswith(
      ("#", *own))}
  for dataset in ("beauty", "toys"):
    rows = ladder.recipes(dataset)
    for stem, row, hours in (("best", rows[6], 1.0), ("learned", rows[4], 8.0),
                             ("paper_cpu", rows[0], 8.0)):
      recipe = f"{recipes}{dataset}_{stem}.gin"
      assert binds(recipe) == binds(row), (recipe, binds(recipe) ^ binds(row))
      assert ("pipeline.run_sasrec = False" in open(recipe).read()) == (stem != "best")
      gin.clear_config()
      try:
        cli.parse_config([recipe], [])
        assert gin.query_parameter("TrainerConfig.max_train_hours") == hours
        label = reproduce.recipe_label(recipe)
      finally:
        gin.clear_config()
      assert label == readme_table.declared_label(recipe), recipe  # the pending row's
      assert label.startswith("TIGER, the paper's model" if stem == "paper_cpu" else "TIGER + ")


def test_rows_pair_with_the_row_above_from_their_hits_and_a_gap_breaks_the_chain():
  from tiger_jax import metrics
  rng = np.random.default_rng(0)
  targets = rng.integers(0, 50, 400)
  miss = np.full((400, 10), 99)
  hit = miss.copy()
  hit[:, 0] = targets  # every target at rank 1
  half = miss.copy()
  half[::2, 0] = targets[::2]
  # Each row's ranks as its record keeps them (`metrics.encode_hits`, one line of text).
  ranks = [None if r is None else metrics.decode_hits(
      metrics.encode_hits(metrics.hit_ranks(r, targets)), 400) for r in (half, hit, hit, None, hit)]
  rows = ladder.ladder_rows(["a", "b", "c", "d", "e"], ranks)
  assert "vs_above_ndcg@10" not in rows[0]
  up = rows[1]["vs_above_recall@10"]
  assert up["difference"] == 0.5 and up["measurable"] and up["z"] > 2
  assert rows[1]["vs_above_ndcg@10"]["difference"] == 0.5  # rank 1: NDCG 1
  same = rows[2]["vs_above_ndcg@10"]
  assert same["difference"] == 0.0 and not same["measurable"]
  assert "vs_above_recall@10" not in rows[3] and "vs_above_recall@10" not in rows[4]


def test_the_table_reads_committed_records_and_marks_rows_it_cannot_pair(tmp_path, capsys):
  """Rows come from records/ladder/<dataset>/ (no run folder needed): a record with per-user
  hits pairs with the row above; one without shows its metrics and says why it is unpaired."""
  import json
  paths = ladder.recipes("beauty")
  ladder.main(["--dataset=beauty", f"--record={tmp_path / 'ladder.json'}"])
  out = capsys.readouterr().out
  table = json.load(open(tmp_path / "ladder.json"))
  assert len(table["rows"]) == len(paths) == 7
  assert (tmp_path / "ladder.md").read_text().endswith(out)  # the table, as markdown beside it
  for recipe, row, line in zip(paths, table["rows"], out.splitlines()[4:]):
    exists = ladder.os.path.exists(ladder.row_record("beauty", recipe))
    assert ("not run yet" in line) != exists
    if exists:
      record = json.load(open(ladder.row_record("beauty", recipe)))
      assert row["ndcg@10"] == record["rows"]["TIGER"]["ndcg@10"]
      assert row["per_user_hits"] == ("user_hits" in record) == (" †" not in row["name"])
  # Row 2 changes the Semantic-ID recipe (collaborative); rows 3-7 keep it, so a row whose IDs
  # differ from the row above's is another build of the same recipe, and says so.
  p = lambda i: paths[i]
  rec = lambda sha: {"rows": {"TIGER": {"semantic_ids": {"sha1": sha}}}}
  assert not ladder.redrawn_ids(p(0), rec("a"), p(1), rec("b"))  # a new ID recipe
  assert ladder.redrawn_ids(p(2), rec("b"), p(3), rec("c"))
  assert not ladder.redrawn_ids(p(2), rec("b"), p(3), rec("b")) and not ladder.redrawn_ids(
      p(2), None, p(3), rec("c"))
  for row, above, recipe, recipe_above in zip(table["rows"][1:], table["rows"], paths[1:], paths):
    if "semantic_ids" in row and "semantic_ids" in above:
      assert (" ‡" in row["name"]) == ladder.redrawn_ids(
          recipe_above, {"rows": {"TIGER": above}}, recipe, {"rows": {"TIGER": row}})
  # Below the rows, the last row that ran is paired against each floor (and SASRec) whose
  # record keeps hits: its paired difference is the difference of the two rows' metrics.
  last = max(i for i, r in enumerate(table["rows"]) if "ndcg@10" in r)
  floor = table["below"]["item-transition, last 3 items"]
  if table["rows"][last]["per_user_hits"]:
    vs = floor["last_row_vs_this"]
    assert vs["row"] == last + 1
    assert abs(vs["ndcg@10"]["difference"]
               - (table["rows"][last]["ndcg@10"] - floor["ndcg@10"])) < 1e-9
    assert f"row {last + 1} {vs['ndcg@10']['difference']:+.4f}" in out


def test_a_sasrec_record_without_sasrec_or_missing_is_one_error_line(tmp_path):
  import pytest
  no_sasrec = ladder.row_record("beauty", ladder.recipes("beauty")[0])  # the rows leave it out
  for path, message in ((no_sasrec, "the record has no SASRec row"),
                        (str(tmp_path / "nope.json"), "no such file")):
    with pytest.raises(SystemExit, match=f"^error: --sasrec_record=.*: {message}"):
      ladder.main(["--dataset=beauty", f"--sasrec_record={path}"])


def test_an_8_hour_recipe_branches_from_the_latest_checkpoint_of_its_ladder_row(tmp_path):
  """studies.reproduce --branch_from=RUN@latest names the source run's newest checkpoint, and
  learning_curve.branch starts the new run as a copy of it (what it copies, and a resume)."""
  import json
  import os
  import pytest
  from studies import learning_curve, reproduce
  src = tmp_path / "row"
  for d in ("data", "semantic_ids", "checkpoints/500", "checkpoints/1000", "best/500",
            "best/1500"):
    os.makedirs(src / d)
  (src / "train_clock.json").write_text('{"steps": {"1000": 3600.0}}')
  spec = reproduce.latest_step(f"{src}@latest")
  assert spec == f"{src}@1000" and reproduce.latest_step(f"{src}@500") == f"{src}@500"
  learning_curve.branch(spec, str(tmp_path / "long"))
  long = tmp_path / "long"
  assert sorted(os.listdir(long / "checkpoints")) == ["1000"]
  assert os.listdir(long / "best") == ["500"]  # the best up to the branch step only
  assert json.load(open(long / "branch.json"))["step"] == 1000
  assert json.load(open(long / "train_clock.json")) == {"steps": {"1000": 3600.0}}
  learning_curve.branch(f"{src}@500", str(long))  # a resumed branch: left as it is
  assert json.load(open(long / "branch.json"))["step"] == 1000
  with pytest.raises(SystemExit, match="no checkpoint"):
    reproduce.latest_step(f"{tmp_path / 'nothing'}@latest")


def test_an_unfinished_8_hour_run_shows_where_it_stands_in_its_readme_row(tmp_path):
  """studies.progress reads a run's newest checkpoint, trainer clock and validation curve (from
  its event files); the README table's pending row shows them and the command that goes on."""
  import json
  import os
  import tensorflow as tf
  from studies import progress, readme_table
  run = tmp_path / "run"
  os.makedirs(run / "checkpoints" / "1500")
  (run / "train_clock.json").write_text('{"steps": {"1000": 3600.0, "1500": 5400.0}}')
  (run / "config.json").write_text(json.dumps({
      "task": "tiger_toys", "trainer": {"max_train_hours": 8.0, "seed": 0}, "batch_size": 256,
      "devices": ["cpu:0"], "usable_cpu_cores": 1}))
  (run / "config.gin").write_text("train.eval_examples = 4096\n")
  writer = tf.summary.create_file_writer(str(run / "train"))
  with writer.as_default():
    for step, hours, ndcg in ((500, 0.5, 0.011), (1000, 1.0, 0.0152)):
      for tag, value in (("recall@10", 2 * ndcg), ("ndcg@10", ndcg), ("train_hours", hours)):
        tf.summary.scalar(f"validation/{tag}", value, step=step)
  writer.close()
  recipe = "gin_configs/recipes/toys_paper_cpu.gin"
  record = progress.progress(recipe, str(run))
  assert (record["step"], record["train_hours"], record["max_train_hours"]) == (1500, 1.5, 8.0)
  assert [p["step"] for p in record["validation_curve"]] == [500, 1000]
  assert record["dataset"] == "toys" and record["validation_users"] == 4096
  text = readme_table.table([], progress=[{**record, "path": "records/progress/x.json"}])
  row = next(l for l in text.splitlines() if "toys_paper_cpu.gin" in l)
  assert ("unfinished, stopped at step 1,500 after 1.50 trainer hours; validation R@10 0.0304, "
          "N@10 0.0152 on 4,096 users at step 1,000 (`records/progress/x.json`); go on: "
          f"`python -m studies.reproduce --gin_file={recipe} --record=records/toys_paper_cpu.json`"
          ) in row
  assert "not run yet" in next(l for l in text.splitlines() if "toys_learned.gin" in l)
  with pytest.raises(SystemExit, match="no checkpoint"):
    progress.progress(recipe, str(tmp_path / "nothing"))


def test_two_record_rows_pair_by_their_hits_and_bad_sides_are_one_error_line(tmp_path, capsys):
  import json
  import pytest
  from studies import pair_records
  from tiger_jax import metrics, results
  rng = np.random.default_rng(1)
  targets = rng.integers(0, 30, 300)
  lists = {m: rng.integers(0, 30, (300, 20)) for m in ("TIGER", "SASRec")}
  lists["TIGER"][:100, 0] = targets[:100]  # a third of the users hit at rank 1
  hits = results.user_hits(lists, targets, None)
  path = tmp_path / "r.json"
  json.dump({"exclude_history": True, "user_hits": hits}, open(path, "w"))
  pair_records.main([f"{path}:TIGER", f"{path}:SASRec"])
  out = capsys.readouterr().out
  expected = metrics.paired_difference(metrics.user_ndcg(lists["TIGER"], targets, 10),
                                       metrics.user_ndcg(lists["SASRec"], targets, 10))
  assert "300 users, history left out" in out
  assert (f"| ndcg@10 | {expected['a']:.4f} | {expected['b']:.4f} | "
          f"{expected['difference']:+.4f} |") in out
  json.dump({"user_hits": hits}, open(tmp_path / "kept.json", "w"))
  for a, b, message in ((f"{path}:BERT4Rec", f"{path}:TIGER", "no per-user hits of 'BERT4Rec'"),
                        ("nowhere.json:TIGER", f"{path}:TIGER", "no such record"),
                        (f"{path}:TIGER", f"{tmp_path / 'kept.json'}:SASRec",
                         "different protocols")):
    with pytest.raises(SystemExit, match=f"^error: .*{message}"):
      pair_records.main([a, b])


def test_pairs_by_group_split_the_users_by_their_test_example():
  """Users grouped by their target's training count, their history's length, or whether the
  target followed the last history item in training; each group's paired difference is the
  two models' difference on those users alone, and the groups add up to all users."""
  from studies import pair_by_group
  seqs = [np.array(s) for s in ([1, 2, 3, 9, 4], [2, 3, 5, 6, 7, 8, 3], [5, 6, 1, 2, 1, 5],
                                [7, 8, 9, 7, 8, 9, 7, 8, 9, 7, 8, 9, 6])]
  # The training sequences (the last two items out) hold item 4 never, items 3, 5 and 6 twice.
  assert pair_by_group.user_groups(seqs, "target_popularity") == ["0", "1-4", "1-4", "1-4"]
  assert pair_by_group.user_groups(seqs, "history_length") == ["<5", "5-7", "5-7", "12-20"]
  # 9 -> 4 never in training; 8 -> 3 only in a test pair; 1 -> 5 not; 9 -> 6 not, 9 -> 7 is.
  assert pair_by_group.user_groups(seqs, "seen_transition") == ["never follows it"] * 4
  seqs[3][-1] = 7
  assert pair_by_group.user_groups(seqs, "seen_transition")[3] == "follows the last item in training"
  groups = ["a"] * 300 + ["b"] * 100
  a = np.where(np.arange(400) < 300, 0, -1)  # hit ranks, 0-based: A first in group a only
  b = np.where(np.arange(400) % 2 == 0, 0, -1)  # B first for every other user
  rows = pair_by_group.grouped_pairs(a, b, groups, 10)
  assert list(rows) == ["a", "b", "all users"] and rows["a"]["users"] == 300
  assert rows["a"]["recall@10"]["difference"] == pytest.approx(0.5)
  assert rows["b"]["recall@10"]["difference"] == pytest.approx(-0.5)
  assert rows["all users"]["ndcg@10"]["difference"] == pytest.approx(0.75 - 0.5)
  with pytest.raises(SystemExit, match="--by=nope: choose one of target_popularity"):
    pair_by_group.user_groups(seqs, "nope")


def test_a_second_seed_trains_in_its_own_folder_on_the_recipes_data_and_ids():
  """studies.reproduce --seed=N: TIGER's and SASRec's seed N in MODEL_DIR_seed<N>, reading the recipe's
  run's data and Semantic IDs (one set of IDs for every seed); no --seed leaves the recipe."""
  import gin
  import pytest
  from studies import reproduce
  from tiger_jax import cli, configurables
  recipe = "gin_configs/recipes/beauty_item_head.gin"
  try:
    cli.parse_config([recipe], [])
    assert reproduce.configure(None).model_dir == "runs/beauty_item_head"
    assert configurables.TrainerConfig().seed == 0
    pipeline = reproduce.configure(2)  # what studies.reproduce runs
    assert configurables.TrainerConfig().seed == 2 and configurables.SASRecConfig().seed == 2
    assert (pipeline.model_dir, pipeline.data_dir, pipeline.semantic_id_dir) == (
        "runs/beauty_item_head_seed2", "runs/beauty_item_head/data",
        "runs/beauty_item_head/semantic_ids")
    with pytest.raises(SystemExit, match=r"^error: --seed=-1: a seed is a number >= 0$"):
      reproduce.bind_seed(-1)
  finally:
    gin.clear_config()


def test_the_curve_slope_recovers_a_known_curve_and_moves_the_target_by_the_test_ratio(tmp_path,
                                                                                     capsys):
  """A curve that is exactly 0.01 + 0.005 ln(hours) on validation, with test at 0.8 of the chosen
  validation point: the log fit finds a and b, and the paper's 0.0384 on test is 0.048 on the
  validation scale, reached at exp((0.048 - 0.01) / 0.005) hours. The straight line through the
  last 2 points finds their slope; a flat curve never reaches the target."""
  import json
  import math
  from studies import curve_slope
  hours = [0.5, 1.0, 2.0, 4.0, 8.0]
  curve = [{"step": 1000 * (i + 1), "hours": h, "ndcg@10": 0.01 + 0.005 * math.log(h),
            "recall@10": 0.03} for i, h in enumerate(hours)]
  chosen = curve[-1]
  record = {"recipe": "r.gin", "dataset": "beauty", "hardware": "cpu", "validation_users": 4096,
            "validation_curve": curve,
            "rows": {"TIGER": {"checkpoint_step": chosen["step"],
                               "ndcg@10": 0.8 * chosen["ndcg@10"], "recall@10": 0.024}}}
  out = curve_slope.analyse(record, {"ndcg@10": 0.0384, "recall@10": 0.0648}, 1.0, 2)
  n = out["metrics"]["ndcg@10"]
  assert out["points"] == 4 and out["from_hours"] == 1.0
  assert n["test_over_validation"] == pytest.approx(0.8)
  assert n["target_validation"] == pytest.approx(0.048)
  assert n["log_fit"]["a"] == pytest.approx(0.01) and n["log_fit"]["b"] == pytest.approx(0.005)
  assert n["log_fit"]["hours_to_target"] == pytest.approx(math.exp(0.038 / 0.005))
  assert n["last_fit"]["per_hour"] == pytest.approx(0.005 * math.log(2) / 4)  # from 4 h to 8 h
  assert math.isinf(out["metrics"]["recall@10"]["log_fit"]["hours_to_target"])
  assert n["test_minus_target"] is None  # no per-user hits in the record
  # Per-user hits: 4 users, two hit at rank 0 (R@10 0.5): minus a target of 0.4 is +0.1, with
  # the standard error of the 4 users' 1, 1, 0, 0 (sd 0.577 / 2).
  from tiger_jax import metrics
  record["user_hits"] = {"users": 4, "depth": 20,
                         "TIGER": metrics.encode_hits(np.array([0, 0, -1, 12]))}
  from studies.common import gap_to_figure
  gap = gap_to_figure(record, "TIGER", "recall@10", 0.4)
  assert gap["diff"] == pytest.approx(0.1) and gap["se"] == pytest.approx(np.sqrt(1 / 3) / 2)
  path = tmp_path / "rec.json"
  path.write_text(json.dumps(record))
  curve_slope.main([f"--record={path}", f"--out={tmp_path / 'slope.md'}"])
  text = (tmp_path / "slope.md").read_text()
  assert "| ndcg@10 | " in text and "never" in text
  assert json.loads((tmp_path / "slope.json").read_text())["metrics"]["ndcg@10"]["target_test"] == 0.0384
  with pytest.raises(SystemExit, match="from_hours=9.0 leaves 0 points"):
    curve_slope.main([f"--record={path}", "--from_hours=9"])


def test_our_sasrec_beside_the_public_figures_under_both_history_protocols(tmp_path, capsys):
  """Two records of 4 users each, one keeping history items in the ranked list, one leaving them
  out: each protocol's SASRec minus every public figure of its dataset, from the per-user hits
  (R@10 of hits at ranks 0, 0, miss, 12 is 0.5); a record given on the wrong side is one error
  line."""
  import json
  from studies import sasrec_public
  from studies.common import PUBLIC_SASREC
  from tiger_jax import metrics

  def record(ranks, exclude):
    hits = metrics.encode_hits(np.array(ranks))
    return {"dataset": "toys", "exclude_history": exclude, "command": "c", "hardware": "cpu",
            "rows": {"SASRec": {"recall@10": float(np.mean([0 <= r < 10 for r in ranks])),
                                "ndcg@10": 0.1}},
            "user_hits": {"users": 4, "depth": 20, "SASRec": hits}}
  kept, left = tmp_path / "kept.json", tmp_path / "left.json"
  kept.write_text(json.dumps(record([0, 0, -1, 12], False)))
  left.write_text(json.dumps(record([0, 0, 3, 12], True)))
  out = tmp_path / "sasrec.md"
  sasrec_public.main([f"--record=toys:{kept},{left}", f"--out={out}"])
  saved = json.loads((tmp_path / "sasrec.json").read_text())["results"]["toys"]
  (name, public), = PUBLIC_SASREC["toys"].items()
  assert saved["kept"]["ours"]["recall@10"] == 0.5 and saved["left_out"]["ours"]["recall@10"] == 0.75
  gap = saved["left_out"]["against"][name]["recall@10"]
  assert gap["diff"] == pytest.approx(0.75 - public["recall@10"])
  assert gap["se"] == pytest.approx(0.5 / 2)  # sd of 1, 1, 1, 0 over sqrt(4)
  assert f"| toys | {name} |" in out.read_text()
  with pytest.raises(SystemExit, match="give the kept record first"):
    sasrec_public.main([f"--record=toys:{left},{kept}"])
  with pytest.raises(SystemExit, match="DATASET one of"):
    sasrec_public.main([f"--record=sports:{kept},{left}"])


def test_sasrec_seeds_are_the_tuning_variants_that_train_the_default_config(tmp_path):
  """Of a `studies.sasrec_tune` record, the variants whose config is `SASRecConfig`'s default
  but for the seed and stopping knobs are the pipeline SASRec's seeds; a tuned-away variant
  (another dropout) is not."""
  import dataclasses
  import json
  from studies import sasrec_public
  from tiger_jax import sasrec
  default = dataclasses.asdict(sasrec.SASRecConfig())
  test = {"recall@10": 0.1, "ndcg@10": 0.05, "nohistory": {"recall@10": 0.11, "ndcg@10": 0.06}}
  variants = {"s1": {"config": {**default, "seed": 1, "patience": 3}, "test": test, "best_epoch": 9},
              "drop": {"config": {**default, "dropout_rate": 0.2}, "test": test, "best_epoch": 5}}
  path = tmp_path / "toys_seed1.json"
  path.write_text(json.dumps({"dataset": "toys", "hardware": "cpu", "variants": variants}))
  seeds = sasrec_public.default_config_seeds([str(path)])
  assert [s["seed"] for s in seeds["toys"]] == [1] and seeds["toys"][0]["best_epoch"] == 9
  assert "| toys | 1 | 0.1000 | 0.0500 | 0.1100 | 0.0600 | 9 |" in "\n".join(
      sasrec_public.seeds_table(seeds))
