r"""The follower prior fitted on held-out validation users, added to a trained run at decoding.

  python -m studies.follower_calibration --model_dir=runs/learning_curve/beauty/item_embedding_recency_ema

Restores the run's checkpoint (--checkpoint, default best), builds the follower prior's
counts from its training sequences (--followers per item, FollowerConfig.count) and fits
the prior's bias table (`calibration.fit_prior_table`) to the validation targets of the
users outside the task's first --eval_users (those the training curve evaluates), the
model's logits held fixed. Those --eval_users validation users and every test user are then decoded
twice, beam 20 constrained, without and with the prior, and R@10 / N@10 are split by
whether the user's (last item -> target) pair occurs in training sequences, as in
studies/val_test_gap.py. A run trained with the prior keeps its own table and gets the fitted
one added. Writes MODEL_DIR/results/follower_calibration.{md,json}.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np

from studies.common import run_experiment, write_table
from tiger_jax.run_dir import RunDir
from studies.val_test_gap import KEYS, seen_transition, split_metrics, transition_pairs


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--model_dir", required=True)
  p.add_argument("--checkpoint", default="best")
  p.add_argument("--followers", type=int, default=64)
  p.add_argument("--share_buckets", type=int, default=0,
                 help="FollowerConfig.share_buckets: > 0 also buckets each column's "
                      "share of the matching followers' counts")
  p.add_argument("--eval_users", type=int, default=4096)
  p.add_argument("--steps", type=int, default=300)
  p.add_argument("--batch_size", type=int, default=256)
  args = p.parse_args()
  if not os.path.exists(RunDir(args.model_dir).config_gin):
    raise SystemExit(f"error: --model_dir={args.model_dir}: no config.gin; give a trained run")
  import jax
  import jax.numpy as jnp
  import tasks
  from studies import calibration
  from tiger_jax import (baselines, data as data_lib, experiment, input_pipeline,
                         network, retrieval)
  from tiger_jax.network import followers as follower_lib
  from tiger_jax.network.followers import FollowerConfig
  from tiger_jax.models import shift_right

  exp = run_experiment(args.model_dir)
  trainer, state = experiment.restore(exp, args.model_dir, args.checkpoint)
  params = state.eval_params
  config = exp.model.config
  trained = config.followers
  if trained and (trained.count, trained.share_buckets) != (args.followers, args.share_buckets):
    raise SystemExit(f"error: --followers={args.followers} --share_buckets={args.share_buckets}: "
                     f"the run was trained with FollowerConfig.count={trained.count}, "
                     f"share_buckets={trained.share_buckets}; pass those")
  if trained and (trained.sources, trained.log_count, trained.copy) != (1, False, False):
    raise SystemExit(f"error: {args.model_dir}: FollowerConfig.sources={trained.sources}, "
                     f"log_count={trained.log_count}, copy={trained.copy}; this study fits the "
                     "last item's table only (sources = 1, log_count = False, copy = False)")
  followers = FollowerConfig(count=args.followers, share_buckets=args.share_buckets)
  prior_config = dataclasses.replace(config, followers=followers)
  item_tokens = tasks.token_tables(exp.data_dir, exp.semantic_id_dir)[0]
  memory = experiment.follower_memory(exp.data_dir, item_tokens, prior_config)
  prior_model = dataclasses.replace(exp.model, module=network.Transformer(prior_config),
                                    memory=memory)
  layout = exp.layout
  offsets, sizes = np.asarray(layout.level_offsets), tuple(layout.level_sizes)
  levels, width = len(sizes), max(sizes)

  # The fit set: the validation users outside the first --eval_users of the task (those the
  # training curve evaluates, decoded below), the model's level-block logits and the
  # prior's count buckets of the same columns.
  t0 = time.time()
  held_out = np.concatenate([b["user"][b["mask"] > 0] for b in input_pipeline.eval_batches(
      exp.task, exp.feature_lengths, "validation", args.batch_size, args.eval_users)])
  logits_fn = jax.jit(lambda p, x, y: exp.model.module.apply(
      exp.model.variables(p), x, shift_right(y)))
  counts_fn = jax.jit(lambda m, x, y: follower_lib.follower_code_counts(
      m["decoder"], x, shift_right(y), config.id_length, (0, config.vocab_size)))
  fit_logits, fit_buckets, fit_targets = [], [], []
  for batch in input_pipeline.eval_batches(exp.task, exp.feature_lengths, "validation",
                                           args.batch_size):
    keep = (batch["mask"] > 0) & ~np.isin(batch["user"], held_out)
    if not keep.any():
      continue
    x, y = jnp.asarray(batch["inputs"]), jnp.asarray(batch["targets"])
    logits = np.asarray(logits_fn(params, x, y))
    counts = np.asarray(counts_fn(memory, x, y))[:, :, 0]  # the last item's followers
    block_logits = np.full((len(x), levels, width), -1e9, np.float32)
    block_counts = np.zeros((len(x), levels, width), np.float32)
    for level, (o, s) in enumerate(zip(offsets, sizes)):
      block_logits[:, level, :s] = logits[:, level, o:o + s]
      block_counts[:, level, :s] = counts[:, level, o:o + s]
    fit_logits.append(block_logits[keep])
    fit_buckets.append(np.asarray(follower_lib.prior_buckets(
        jnp.asarray(block_counts[keep]), followers.buckets, followers.share_buckets)))
    fit_targets.append(np.asarray(batch["targets"])[keep, :levels] - offsets)
  fit_logits, fit_buckets = np.concatenate(fit_logits), np.concatenate(fit_buckets)
  fit_targets = np.concatenate(fit_targets)
  delta = calibration.fit_prior_table(
      fit_logits, fit_buckets, fit_targets,
      followers.buckets * max(followers.share_buckets, 1),
      steps=args.steps)
  own = params["decoder"].get("follower_prior")
  table = delta + (np.asarray(own) if own is not None else 0.0)
  prior_params = {**params, "decoder": {**params["decoder"], "follower_prior": jnp.asarray(table)}}
  print(f"fitted on {len(fit_targets):,} validation users (not the {len(held_out):,} evaluated) "
        f"in {time.time() - t0:.0f}s; table [level, count bucket 0, 1, 2-3, 4-7, ...(, share "
        "bucket none, > 1/2, 1/4-1/2, ...)]:")
  print(np.array2string(table.reshape(levels, followers.buckets, -1).squeeze(-1)
                        if not args.share_buckets else
                        table.reshape(levels, followers.buckets, -1),
                        precision=2, suppress_small=True))

  dataset = data_lib.load(exp.data_dir)
  train = data_lib.training_sequences(dataset)
  pairs = transition_pairs(train, dataset.num_items)
  rows = {}
  for split, max_examples in (("validation", args.eval_users), ("test", None)):
    by_user = {e.user: e for e in data_lib.iter_examples(dataset, split)}
    lists, users = {}, None
    for name, model, p_ in (("TIGER", exp.model, params),
                            ("TIGER + fitted follower prior", prior_model, prior_params)):
      retriever = retrieval.Retriever(model, layout, exp.ids, 20,
                                      batch_sharding=trainer.batch_sharding)
      got = {}
      with trainer.context():
        retrieval.evaluate(retriever, p_, input_pipeline.eval_batches(
            exp.task, exp.feature_lengths, split, 64, max_examples), got)
      order = np.argsort(got["users"])
      users = np.asarray(got["users"])[order] if users is None else users
      if not np.array_equal(np.asarray(got["users"])[order], users):
        raise SystemExit(f"error: {split}: the two decodes saw different users")
      lists[name] = np.asarray(got["ranked"])[order]
    targets = np.asarray([by_user[u].target for u in users])
    histories = [by_user[u].history for u in users]
    seen = seen_transition(pairs, histories, targets, dataset.num_items)
    lists["item-transition"] = np.asarray(baselines.item_transition(train, dataset.num_items,
                                                                    histories))
    for name, ranked in lists.items():
      rows.setdefault(name, {})[split] = {**split_metrics(ranked, targets, seen),
                                          "users": len(targets), "seen_share": float(seen.mean())}
  lines = [f"{dataset.name}: {args.model_dir}, checkpoint {args.checkpoint} (step "
           f"{int(state.step)}); follower prior of {args.followers} followers per item"
           + (f", {args.share_buckets} share buckets" if args.share_buckets else "") + " fitted "
           f"on the other {len(fit_targets):,} validation users; "
           f"validation: the first {args.eval_users:,} users, test: all "
           f"{rows['TIGER']['test']['users']:,}; beam 20", "",
           "| model | validation R@10 / N@10 | seen | unseen | test R@10 / N@10 | seen | unseen |",
           "|---|---|---|---|---|---|---|"]
  for name, r in rows.items():
    cells = [r[split] if part is None else r[split][part] for split in ("validation", "test")
             for part in (None, "seen_transition", "unseen_transition")]
    lines.append(f"| {name} | " + " | ".join(" / ".join(f"{c[k]:.4f}" for k in KEYS)
                                             for c in cells) + " |")
  lines += ["", "seen: the user's (last item -> target) pair occurs in training sequences ("
            + ", ".join(f"{s} {rows['TIGER'][s]['seen_share']:.1%}" for s in ("validation", "test"))
            + ")", ""]
  name = "follower_calibration" + (f"_share{args.share_buckets}" if args.share_buckets else "")
  write_table(RunDir(args.model_dir).results, name, lines,
              {**rows, "table": table.tolist(), "fit_users": len(fit_targets)})


if __name__ == "__main__":
  main()
