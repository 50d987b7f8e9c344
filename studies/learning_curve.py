r"""Learning curves: validation Recall@10 and NDCG@10 against training wall-clock hours.

  python -m studies.learning_curve --recipes=paper_cpu:studies/configs/beauty_cpu.gin
  python -m studies.learning_curve --recipes=a:A.gin,b:B.gin --train_steps=8000 --eval_every=500
  python -m studies.learning_curve --recipes=paper_cpu:studies/configs/beauty_cpu.gin \
      --no_train        # plot what the runs under --run_dir hold so far

Each recipe is a gin file for `python -m tiger_jax.main`, run (or resumed) in
--run_dir/<category>/<recipe> with validation every --eval_every steps on a
fixed set of the first --eval_users validation users (the trainer's own
validation pass, `train.eval_examples`). x is the trainer's clock: training
time summed over resumed runs, evaluation and checkpoint writes excluded
(`trainer.TrainClock`). SASRec (`SASRecConfig` defaults, --sasrec_epochs) is
evaluated after every epoch on the same users; most-popular and
item-transition are horizontal lines. Writes --out_dir/learning_curve_<category>.{png,json}
(default studies/figures, kept in the repository). The JSON keeps every curve's points, so a
later --no_train draw takes the curve of a recipe whose run folder is gone from it.

--ids_from=DIR gives every recipe the same prepared data and Semantic IDs
(DIR/data and DIR/semantic_ids, or a data folder and an IDs folder as
DATA,IDS), copied into each recipe's folder before its first run, so recipes
differ only in training. Each curve's JSON entry names the IDs it used.
--train_only trains and stops (to run recipes side by side, e.g. each under
`taskset -c N`); a later --no_train run draws them all.

--branch_from=RUN_DIR@STEP starts each recipe as a copy of another run at one of
its checkpoints (data, Semantic IDs, that checkpoint, best/ up to it, the clock),
e.g. to anneal a long run with TrainerConfig.cooldown_steps:

  python -m studies.learning_curve --recipes=collab_cooldown:studies/configs/X.gin \
      --branch_from=runs/learning_curve/beauty/collab@8000 --train_steps=9500 \
      --gin=TrainerConfig.cooldown_steps=1500 --gin=TrainerConfig.total_steps=9500

The branch's curve starts with the source's points up to STEP (branch.json).

--exclude_history runs every model under EXCLUDE_HISTORY=True (no list holds an item
of the user's own history; TIGER's validation too, so its recipes need run folders
of their own, e.g. --run_dir=runs/learning_curve_nohistory) and writes
learning_curve_<category>_nohistory.{png,json}.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np

from studies.common import REPO, SHARED, command_line, hardware, relative
from tiger_jax.run_dir import RunDir

KEYS = ("recall@10", "ndcg@10")
RAW_SUFFIX = " (raw parameters)"  # the curve of a recipe's raw parameters beside its average


def seed_ids(ids_from: str, model_dir: str) -> None:
  """Copies the prepared data and Semantic IDs into model_dir, where absent."""
  data, _, ids = ids_from.partition(",")
  sources = {"data": data if ids else RunDir(data).data,
             "semantic_ids": ids or RunDir(data).semantic_ids}
  for name, src in sources.items():
    if not os.path.exists(os.path.join(src, "manifest.json")):
      raise SystemExit(f"error: --ids_from: {src}/manifest.json not found")
    dst = getattr(RunDir(model_dir), name)
    if not os.path.exists(os.path.join(dst, "manifest.json")):
      shutil.rmtree(dst, ignore_errors=True)
      shutil.copytree(src, dst + ".tmp", dirs_exist_ok=True)
      os.replace(dst + ".tmp", dst)


def branch(spec: str, model_dir: str) -> None:
  """Starts model_dir as a copy of run RUN_DIR at checkpoint STEP (spec 'RUN_DIR@STEP')."""
  src, _, step = spec.rpartition("@")
  ckpt = os.path.join(RunDir(src).checkpoints, step)
  if os.path.exists(os.path.join(model_dir, "branch.json")):
    return  # a resumed branch
  if not step.isdigit() or not os.path.isdir(ckpt):
    kept = sorted(os.listdir(RunDir(src).checkpoints)) if os.path.isdir(
        RunDir(src).checkpoints) else []
    raise SystemExit(f"error: --branch_from={spec}: no checkpoint {ckpt} (kept: {kept})")
  if os.path.exists(model_dir):
    raise SystemExit(f"error: --branch_from: {model_dir} exists and is not a branch; "
                     "choose another recipe name")
  tmp = model_dir + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  old, new = RunDir(src), RunDir(tmp)
  shutil.copytree(old.data, new.data)
  shutil.copytree(old.semantic_ids, new.semantic_ids)
  shutil.copytree(ckpt, os.path.join(new.checkpoints, step))
  for best in os.listdir(old.best) if os.path.isdir(old.best) else []:
    if best.isdigit() and int(best) <= int(step):
      shutil.copytree(os.path.join(old.best, best), os.path.join(new.best, best))
  shutil.copy(old.train_clock, new.train_clock)
  with open(os.path.join(tmp, "branch.json"), "w") as f:
    json.dump({"from": relative(src), "step": int(step)}, f)
  os.replace(tmp, model_dir)


def ids_summary(model_dir: str) -> str:
  """The item vectors and Semantic-ID settings a run used, in one line."""
  from tiger_jax import io_utils
  data = io_utils.read_json(os.path.join(RunDir(model_dir).data, "manifest.json"))["config"]
  sid = io_utils.read_json(os.path.join(RunDir(model_dir).semantic_ids, "manifest.json"))["config"]
  vectors = data.get("item_vectors", {})
  out = (f"{sid['method']} {sid['num_levels']}x{sid['codebook_size']} on "
         f"{vectors.get('source', data.get('content'))} vectors"
         f" ({vectors.get('text_model', '')})" * bool(vectors.get("text_model")))
  if sid.get("collaborative_dim"):
    out += f" + {sid['collaborative_dim']}-dim collaborative block"
    out += f" (weight {sid['collaborative_weight']})" * (sid.get("collaborative_weight", 1) != 1)
  if sid["method"] == "rqvae":
    out += f", {sid['rqvae']['epochs']} epochs"
  return out + (", standardized" if sid.get("standardize") else "")


def train_recipe(args, name: str, gin_file: str) -> str:
  model_dir = os.path.join(args.run_dir, args.category, name)
  if args.branch_from:
    branch(args.branch_from, model_dir)
  if args.ids_from:
    seed_ids(args.ids_from, model_dir)
  bindings = [f"MODEL_DIR='{relative(model_dir)}'", f"TRAIN_STEPS={args.train_steps}",
              f"pipeline.source_dir='{relative(os.path.join(SHARED, args.category))}'",
              f"pipeline.category='{args.category}'",
              f"MIXTURE_OR_TASK_NAME='tiger_{args.category}'", "pipeline.run_sasrec=False",
              f"TrainerConfig.eval_every={args.eval_every}", f"train.eval_examples={args.eval_users}",
              *(["EXCLUDE_HISTORY=True"] if args.exclude_history else []), *args.gin]
  cmd = [sys.executable, "-m", "tiger_jax.main", f"--gin_file={gin_file}",
         *[f"--gin.{b}" for b in bindings]]
  print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
  subprocess.run(cmd, cwd=REPO, check=True)
  return model_dir


def tiger_curve(model_dir: str, prefix: str = "validation") -> list[dict]:
  """(step, train_hours, recall@10, ndcg@10) of every validation pass in model_dir's events
  (prefix 'validation'; with parameter averaging, trainer.RAW_PREFIX gives the raw
  parameters' passes); a branch (branch.json) starts with its source's points up to the
  step it copied."""
  import tensorflow as tf
  prior = []
  if os.path.exists(os.path.join(model_dir, "branch.json")):
    with open(os.path.join(model_dir, "branch.json")) as f:
      b = json.load(f)
    prior = [p for p in tiger_curve(b["from"], prefix) if p["step"] <= b["step"]]
  points: dict[int, dict] = {}
  for path in sorted(glob.glob(os.path.join(RunDir(model_dir).train_logs, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        if v.tag.startswith(prefix + "/"):
          value = float(tf.make_ndarray(v.tensor)) if v.HasField("tensor") else v.simple_value
          points.setdefault(int(event.step), {})[v.tag.split("/", 1)[1]] = value
  return prior + [{"step": s, "hours": p["train_hours"], **{k: p[k] for k in KEYS}}
                  for s, p in sorted(points.items())
                  if "train_hours" in p and all(k in p for k in KEYS)]


def validation_users(model_dir: str, eval_users: int) -> np.ndarray:
  """The users of the trainer's validation pass: the first `eval_users` of the split, as read."""
  from tiger_jax import experiment, input_pipeline, io_utils
  config = io_utils.read_json(RunDir(model_dir).config_json)
  exp = experiment.experiment(config["task"], config["feature_lengths"], config["data_dir"],
                              config["semantic_id_dir"])
  users = [b["user"][b["mask"] > 0] for b in input_pipeline.eval_batches(
      exp.task, exp.feature_lengths, "validation", 256, eval_users)]
  return np.concatenate(users)


def reference_curves(data_dir: str, users: np.ndarray, sasrec_epochs: int,
                     exclude_history: bool = False) -> dict:
  """SASRec after every epoch, and the most-popular and item-transition (last item, last 3
  items) lines, on `users` (exclude_history: each list without the user's own history items,
  as EXCLUDE_HISTORY)."""
  from tiger_jax import baselines, data as data_lib, metrics, sasrec
  dataset = data_lib.load(data_dir)
  examples = {e.user: e for e in data_lib.iter_examples(dataset, "validation")}
  histories = [examples[u].history for u in users]
  targets = np.array([examples[u].target for u in users])
  train_seqs = data_lib.training_sequences(dataset)
  width = 10 + data_lib.MAX_HISTORY  # room for what exclude_history takes out

  def scores(ranked):
    m = metrics.retrieval_metrics(ranked, targets, histories=histories if exclude_history else None)
    return {k: m[k] for k in KEYS}

  out = {name: scores(fn(train_seqs, dataset.num_items, histories, k=width)) for name, fn in (
      ("most-popular", baselines.most_popular), ("item-transition", baselines.item_transition),
      (baselines.LAST_ITEMS_ROW, baselines.item_transition_last_items))}
  curve = []

  def on_epoch(epoch, model, params, seconds):
    m = scores(sasrec.recommend(model, params, histories, k=width))
    curve.append({"epoch": epoch, "hours": seconds / 3600, **{k: m[k] for k in KEYS}})
    print(f"SASRec epoch {epoch}: {seconds:.0f}s, R@10 {m['recall@10']:.4f}", flush=True)

  if sasrec_epochs:
    sasrec.train(train_seqs, dataset.num_items, sasrec.SASRecConfig(epochs=sasrec_epochs),
                 on_epoch=on_epoch)
  out["SASRec"] = curve
  return out


def plot(curves: dict, lines: dict, path: str, title: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from tiger_jax import io_utils
  # 20 colours x 8 markers: a dozen recipes, SASRec and the lines never share a style.
  tab20 = plt.get_cmap("tab20").colors  # pairs of (dark, light): the 10 dark ones first
  colors, markers = tab20[0::2] + tab20[1::2], "o s ^ v D P X *".split()
  fig, axes = plt.subplots(1, 2, figsize=(15, 4.5))
  for ax, key in zip(axes, KEYS):
    for i, (name, pts) in enumerate(curves.items()):
      ax.plot([p["hours"] for p in pts], [p[key] for p in pts], label=name, ms=3,
              color=colors[i % len(colors)], marker=markers[i % len(markers)])
    for j, (name, value) in enumerate(lines.items()):
      ax.axhline(value[key], ls=("--", ":", "-.")[j % 3], color="0.3", label=name)
    ax.set_xlabel("training wall-clock hours (evaluation excluded)")
    ax.set_ylabel(f"validation {key}")
    ax.grid(alpha=0.3)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  # Beside the plots, however long the names: the saved figure grows to hold it.
  fig.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5),
             fontsize=8)
  with io_utils.atomic_open(path, "wb") as f:
    fig.savefig(f, format="png", dpi=100, bbox_inches="tight")
  plt.close(fig)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--category", default="beauty")
  p.add_argument("--recipes", required=True, help="name:gin_file,... (gin files for tiger_jax.main)")
  p.add_argument("--train_steps", type=int, default=8000)
  p.add_argument("--eval_every", type=int, default=500)
  p.add_argument("--eval_users", type=int, default=4096)
  p.add_argument("--sasrec_epochs", type=int, default=30,
                 help="SASRec's curve (0: none, the lines only; a quick draw)")
  p.add_argument("--no_train", action="store_true", help="plot the runs as they stand")
  p.add_argument("--train_only", action="store_true", help="train the recipes, then stop")
  p.add_argument("--ids_from", default="", help="DIR (with data/ and semantic_ids/) or DATA,IDS: "
                 "every recipe starts from these prepared folders")
  p.add_argument("--branch_from", default="", help="RUN_DIR@STEP: each recipe starts as a "
                 "copy of that run's checkpoint STEP (e.g. a cooldown of a long run)")
  p.add_argument("--run_dir", default=os.path.join(REPO, "runs", "learning_curve"))
  p.add_argument("--out_dir", default=os.path.join(REPO, "studies", "figures"),
                 help="where the PNG and the JSON of every curve go (in the repository)")
  p.add_argument("--gin", action="append", default=[], help="a binding for every recipe")
  p.add_argument("--exclude_history", action="store_true", help="every model leaves the "
                 "user's own history items out (EXCLUDE_HISTORY, in validation too); "
                 "files get a _nohistory name")
  args = p.parse_args()
  from tiger_jax import io_utils
  recipes = []
  for spec in args.recipes.split(","):
    name, _, gin_file = spec.partition(":")
    if not gin_file or not os.path.exists(os.path.join(REPO, gin_file)):
      raise SystemExit(f"error: --recipes: {spec!r} is not name:gin_file with an existing file")
    recipes.append((name, gin_file))
  model_dirs = {name: (os.path.join(args.run_dir, args.category, name) if args.no_train
                       else train_recipe(args, name, gin_file)) for name, gin_file in recipes}
  if args.train_only:
    return
  from tiger_jax.evaluation import protocol_suffix
  suffix = protocol_suffix(args.exclude_history)
  out = os.path.join(args.out_dir, f"learning_curve_{args.category}{suffix}")
  # What an earlier draw kept (the repository's copy): the curves of runs whose folders
  # are gone (run folders do not outlive a machine; the JSON beside the figure does).
  kept = io_utils.read_json(out + ".json") if os.path.exists(out + ".json") else {}
  if kept.get("eval_users") != args.eval_users:  # other validation users: not comparable
    kept = {}
  from tiger_jax.trainer import RAW_PREFIX
  curves, ids = {}, {}
  for name, d in model_dirs.items():
    if glob.glob(os.path.join(RunDir(d).train_logs, "events.out.tfevents.*")):
      curves[name], ids[name] = tiger_curve(d), ids_summary(d)
      raw = tiger_curve(d, RAW_PREFIX)  # a run with parameter averaging: its raw parameters
      if raw:
        curves[name + RAW_SUFFIX], ids[name + RAW_SUFFIX] = raw, ids[name]
    elif f"TIGER {name}" in kept.get("curves", {}):
      for n in (name, name + RAW_SUFFIX):
        if f"TIGER {n}" in kept["curves"]:
          curves[n], ids[n] = kept["curves"][f"TIGER {n}"], kept["ids"][n]
      print(f"{name}: no run under {d}; taking its curve from {out}.json")
    else:
      raise SystemExit(f"error: --recipes: {name}: no run under {d} and no curve for it in "
                       f"{out}.json at --eval_users={args.eval_users}; train it (leave out --no_train)")
  ref_path = os.path.join(args.run_dir, args.category,
                          f"reference_{args.eval_users}users_{args.sasrec_epochs}epochs{suffix}.json")
  present = [d for d in model_dirs.values()
             if os.path.exists(RunDir(d).config_json)]
  if os.path.exists(ref_path):
    ref = io_utils.read_json(ref_path)
  elif present:  # the same users and epochs give the same curves: once
    users = validation_users(present[0], args.eval_users)
    data_dir = io_utils.read_json(RunDir(present[0]).config_json)["data_dir"]
    ref = {"users": users.tolist(), **reference_curves(data_dir, users, args.sasrec_epochs,
                                                       args.exclude_history)}
    io_utils.write_json(ref_path, ref)
  elif kept and kept.get("sasrec_epochs") == args.sasrec_epochs:
    ref = {"users": None, "SASRec": kept["curves"].get("SASRec", []), **kept["lines"]}
  else:
    raise SystemExit(f"error: no run folder under {args.run_dir}/{args.category} to take the "
                     f"validation users from, and {out}.json has no reference curves for "
                     f"--eval_users={args.eval_users} --sasrec_epochs={args.sasrec_epochs}")
  lines = {k: ref[k] for k in ("item-transition", "most-popular")}
  all_curves = {**{f"TIGER {n}": c for n, c in curves.items()},
                **({"SASRec": ref["SASRec"]} if ref["SASRec"] else {})}
  n_users = kept["eval_users"] if ref["users"] is None else len(ref["users"])
  title = (f"{args.category}: validation, {n_users:,} fixed users"
           f"{', own history excluded' if args.exclude_history else ''}; "
           f"{hardware()}")
  plot(all_curves, lines, out + ".png", title)
  io_utils.write_json(out + ".json", {"curves": all_curves, "lines": lines,
                                      "recipes": dict(recipes), "hardware": hardware(),
                                      "ids": ids, "eval_users": n_users,
                                      "sasrec_epochs": args.sasrec_epochs,
                                      "command": command_line()})
  for name, c in all_curves.items():
    if c:
      best = max(c, key=lambda q: q["ndcg@10"])
      print(f"{name}: {len(c)} points, {c[-1]['hours']:.2f} h; best N@10 {best['ndcg@10']:.4f} "
            f"(R@10 {best['recall@10']:.4f}) at {best['hours']:.2f} h")
  for name, v in lines.items():
    print(f"{name}: R@10 {v['recall@10']:.4f}, N@10 {v['ndcg@10']:.4f}")
  print(points_table(curves))
  print(f"wrote {out}.png and {out}.json")


def points_table(curves: dict[str, list[dict]]) -> str:
  """Markdown: every TIGER recipe's validation points, step by step."""
  names = list(curves)
  steps = sorted({p["step"] for c in curves.values() for p in c})
  at = {n: {p["step"]: p for p in c} for n, c in curves.items()}
  cell = lambda p: (f"{p['hours']:.2f} h: {p['recall@10']:.4f} / {p['ndcg@10']:.4f}"
                    if p else "")
  lines = ["| step | " + " | ".join(f"{n}: hours, R@10 / N@10" for n in names) + " |",
           "|---|" + "---|" * len(names)]
  lines += [f"| {s:,} | " + " | ".join(cell(at[n].get(s)) for n in names) + " |" for s in steps]
  return "\n".join(lines)


if __name__ == "__main__":
  main()
