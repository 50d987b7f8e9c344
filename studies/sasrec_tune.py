r"""SASRec tuned on validation: one variant per --variant, early stopping on validation
NDCG@10, test decoded once, for the epoch chosen on validation.

  python -m studies.sasrec_tune --data_dir=DATA_DIR \
      --variant=base: --variant=drop05:dropout_rate=0.5 \
      --variant=drop05_d128:dropout_rate=0.5,emb_dim=128 --record=records/sasrec/beauty.json

DATA_DIR is a prepared data folder (`python -m tiger_jax.data ... --out_dir=DATA_DIR`;
only its dataset.npz is read). Each variant is NAME:FIELD=VALUE,... over `SASRecConfig`
(defaults from --base, itself FIELD=VALUE,...), trained on the training sequences (each
user's items but the last two), validated on every user's second-to-last item (history:
the items before it) every `validate_every` epochs, stopped after `patience` passes
without a better NDCG@10, and scored on every user's last item (history: all items
before it), full ranking over every item. Each finished variant is kept in
--work_dir/<dataset>/<name>.json and reused when its config is the same (a killed sweep
goes on where it stopped; the chosen epoch's parameters beside it, <name>_params.npz,
`load_params`; a variant killed mid-training, by SIGTERM or a lost session, resumes from
the state saved at its last validation pass, <name>_state.msgpack, removed once the variant is
done); --record collects them,
with the hardware and this command. Every figure
is given both ways: every item ranked (the paper's protocol) and the user's last 20
history items left out of the list (`nohistory`; the pipeline's EXCLUDE_HISTORY).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os

import jax
import numpy as np

from studies.common import REPO, command_line, hardware
from tiger_jax import data as data_lib, io_utils, metrics as metrics_lib, preemption, sasrec
from tiger_jax.results import reuse_or_run


def parse_fields(text: str, where: str) -> dict:
  """'a=1,b=0.5' -> {'a': 1, 'b': 0.5} over SASRecConfig's fields (typed by its defaults)."""
  fields = {f.name: f for f in dataclasses.fields(sasrec.SASRecConfig)}
  defaults = sasrec.SASRecConfig()
  out = {}
  for part in filter(None, text.split(",")):
    name, eq, value = part.partition("=")
    if not eq or name not in fields:
      raise SystemExit(f"error: {where}: '{part}' is not FIELD=VALUE over SASRecConfig "
                       f"(fields: {', '.join(fields)})")
    kind = type(getattr(defaults, name))
    try:
      out[name] = kind(float(value)) if kind is int else kind(value)
    except ValueError:
      raise SystemExit(f"error: {where}: {name}={value} is not a {kind.__name__}") from None
  return out


# SASRecConfig fields added after finished variants were saved: left out of the reuse key
# while at their default, so that those variants stay reusable (same computation).
LATER_FIELDS = ("negatives",)


def reuse_key(config: sasrec.SASRecConfig) -> dict:
  """The config's fields that decide a finished variant's reuse."""
  default = sasrec.SASRecConfig()
  return {k: v for k, v in dataclasses.asdict(config).items()
          if k not in LATER_FIELDS or v != getattr(default, k)}


def splits(dataset) -> dict:
  """Training sequences and the validation and test (histories, targets) of every user."""
  seqs = [s for s in dataset.sequences if len(s) >= 3]
  return {"train": data_lib.training_sequences(dataset),
          "validation": ([s[:-2] for s in seqs], np.array([s[-2] for s in seqs])),
          "test": ([s[:-1] for s in seqs], np.array([s[-1] for s in seqs]))}


def scored(model, params, histories, targets) -> dict:
  """Both protocols: every item ranked, and the user's last MAX_HISTORY history items left
  out of the list (`metrics.without_history`, the pipeline's EXCLUDE_HISTORY)."""
  k = metrics_lib.KS[-1]
  ranked = sasrec.recommend(model, params, histories, k=k + data_lib.MAX_HISTORY)
  plain = metrics_lib.retrieval_metrics(ranked[:, :k], targets)
  recent = [np.asarray(h)[-data_lib.MAX_HISTORY:] for h in histories]
  nohistory = metrics_lib.retrieval_metrics(metrics_lib.without_history(ranked, recent, k),
                                            targets)
  return {**{m: round(float(v), 5) for m, v in plain.items()},
          "nohistory": {m: round(float(v), 5) for m, v in nohistory.items()}}


def save_params(path: str, params) -> None:
  """The chosen epoch's parameters, flattened ('block/…/kernel' -> array), atomically."""
  from flax import traverse_util
  flat = traverse_util.flatten_dict(jax.device_get(params), sep="/")
  io_utils.write_npz(path, **{k: np.asarray(v) for k, v in flat.items()})


def load_params(path: str):
  from flax import traverse_util
  arrays = io_utils.load_arrays(path)
  return traverse_util.unflatten_dict(arrays, sep="/")


def run_variant(data, num_items: int, config: sasrec.SASRecConfig, stem: str) -> dict:
  """Trains one variant, resumable from <stem>_state.msgpack (saved at every validation pass
  and on SIGTERM); keeps the chosen epoch's parameters in <stem>_params.npz."""
  curve, info = [], {}
  validate = lambda model, params: scored(model, params, *data["validation"])["ndcg@10"]
  state_path = stem + "_state.msgpack"
  model, params = sasrec.train(data["train"], num_items, config, validate=validate,
                               curve=curve, state_path=state_path, info=info)
  best = max(curve, key=lambda c: c["score"])
  save_params(stem + "_params.npz", params)
  return {"best_epoch": best["epoch"], "train_seconds": best["seconds"],
          "epochs_run": curve[-1]["epoch"], "train_seconds_all": curve[-1]["seconds"],
          "wall_seconds": info["wall_seconds"],
          "validation": scored(model, params, *data["validation"]),
          "test": scored(model, params, *data["test"]), "curve": curve}


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--data_dir", required=True)
  p.add_argument("--variant", action="append", required=True, help="NAME:FIELD=VALUE,...")
  p.add_argument("--base", default="epochs=300,patience=10,validate_every=2",
                 help="FIELD=VALUE,... under every variant")
  p.add_argument("--work_dir", default=os.path.join(REPO, "runs", "sasrec_tune"))
  p.add_argument("--record", default=None, help="JSON of every variant, e.g. records/sasrec/X.json")
  args = p.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
  if not os.path.exists(os.path.join(args.data_dir, "dataset.npz")):
    raise SystemExit(f"error: --data_dir={args.data_dir}: no dataset.npz; prepare it with "
                     "python -m tiger_jax.data ... --out_dir=DATA_DIR")
  base = parse_fields(args.base, "--base")
  variants = {}
  for v in args.variant:
    name, colon, fields = v.partition(":")
    if not colon or not name:
      raise SystemExit(f"error: --variant={v}: expected NAME:FIELD=VALUE,...")
    variants[name] = sasrec.SASRecConfig(**{**base, **parse_fields(fields, f"--variant={v}")})
  dataset = data_lib.load(args.data_dir)
  data = splits(dataset)
  rows = {}
  for name, config in variants.items():
    path = os.path.join(args.work_dir, dataset.name, f"{name}.json")
    key = {**reuse_key(config), "num_items": dataset.num_items, "users": len(data["test"][1])}
    stem = path[:-len(".json")]
    rows[name] = {"config": dataclasses.asdict(config),
                  **reuse_or_run(path, key, lambda: run_variant(data, dataset.num_items, config,
                                                                stem))}
    if os.path.exists(stem + "_state.msgpack"):  # the variant is done: its state only resumed it
      os.remove(stem + "_state.msgpack")
    r = rows[name]
    print(f"{name}: best epoch {r['best_epoch']} ({r['train_seconds']:.0f}s) validation "
          f"R@10 {r['validation']['recall@10']:.4f} N@10 {r['validation']['ndcg@10']:.4f}; "
          f"test R@10 {r['test']['recall@10']:.4f} N@10 {r['test']['ndcg@10']:.4f} (history "
          f"left out: {r['test']['nohistory']['recall@10']:.4f} / "
          f"{r['test']['nohistory']['ndcg@10']:.4f})", flush=True)
  if args.record:
    command = command_line().replace(f"--data_dir={args.data_dir}", "--data_dir=DATA_DIR")
    io_utils.write_json(args.record, {
        "dataset": dataset.name, "command": command,
        "data": data_lib.dataset.prepare_command(args.data_dir),
        "hardware": hardware(), "protocol": "leave-one-out, every user, full ranking; epoch "
        "chosen on validation NDCG@10, test scored once for it", "variants": rows})


if __name__ == "__main__":
  preemption.exit_when_preempted(main, at_once=True)
