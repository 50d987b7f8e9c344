r"""The item head's blend, picked on validation: one decode of the union, every blend ranked.

  python -m studies.item_head_blend --model_dir=runs/beauty_item_head \
    --record=records/analysis/beauty_item_head_blend.md

A run trained with an item head (T5Config.item_head, network/item_head.py) ranks the beams and
the head's top items together by log p(ID) + blend * log p_head(item). This restores the run's
checkpoint (--checkpoint, default best), decodes the split's users once (--split, default
validation: the blend is a choice, test stays unseen) into that union
(`retrieval.Retriever.candidates`), and ranks it for each of --blends, beside the beams alone
and the head alone. The best blend on N@10 (then R@10) is the one to set in the recipe
(ItemHeadConfig.blend) before its test decode. Writes MODEL_DIR/results/item_head_blend_<split>
.{md,json}; --record also copies the table there.
"""

from __future__ import annotations

import argparse
import os
import shutil

import numpy as np

from studies.common import REPO, check_trained_run, number_list, run_experiment, write_table

METRICS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")


def rank_all(union: tuple[np.ndarray, ...], blends: list[float], k: int) -> dict[str, np.ndarray]:
  """The union (items, log p(ID), head log p) [users, C] -> ranked lists [users, k] per row:
  'beams' (the search's own order), 'head' (the head's order over the union), and each
  'blend <b>'."""
  from tiger_jax import retrieval
  items, gen, head = union
  beams = items[:, :k]
  rows = {"beams alone": np.where(gen[:, :k] > -1e8, beams, -1)}
  order = np.argsort(-np.where(items >= 0, head, -np.inf), axis=1, kind="stable")[:, :k]
  rows["head alone (over the union)"] = np.take_along_axis(items, order, 1)
  for b in blends:
    rows[f"blend {b:g}"] = np.asarray(retrieval.blend_candidates(items, gen, head, b, k)[0])
  return rows


def best_blend(results: dict[str, dict]) -> str:
  """The blend row with the highest N@10, then R@10."""
  blends = [name for name in results if name.startswith("blend ")]
  return max(blends, key=lambda n: (results[n]["ndcg@10"], results[n]["recall@10"]))


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--model_dir", required=True)
  p.add_argument("--checkpoint", default="best", choices=("best", "latest"))
  p.add_argument("--split", default="validation", choices=("validation", "test"))
  p.add_argument("--blends", default="0,0.25,0.5,1,2,4")
  p.add_argument("--exclude_history", action="store_true",
                 help="no item of the user's own history (the EXCLUDE_HISTORY protocol)")
  p.add_argument("--batch_size", type=int, default=64)
  p.add_argument("--record", default=None, help="also copy the table here (a .md path)")
  args = p.parse_args()
  check_trained_run(args.model_dir)
  blends = number_list("blends", args.blends)
  if any(b < 0 for b in blends):
    raise SystemExit(f"error: --blends={args.blends}: 0 or more each")
  from tiger_jax import experiment, input_pipeline, metrics as metrics_lib, retrieval
  exp = run_experiment(args.model_dir)
  if exp.model.config.item_head is None:
    raise SystemExit(f"error: --model_dir={args.model_dir}: the run has no item head "
                     "(T5Config.item_head)")
  trainer, state = experiment.restore(exp, args.model_dir, args.checkpoint)
  retriever = retrieval.Retriever(exp.model, exp.layout, exp.ids, retrieval.DEFAULT_BEAM,
                                  batch_sharding=trainer.batch_sharding,
                                  exclude_history=args.exclude_history)
  parts, targets = [], []
  with trainer.context():
    for batch in input_pipeline.eval_batches(exp.task, exp.feature_lengths, args.split,
                                             args.batch_size):
      keep = batch["mask"] > 0
      parts.append([x[keep] for x in retriever.candidates(state.eval_params, batch["inputs"])])
      targets.append(batch["target_item"][keep])
  union = tuple(np.concatenate(x) for x in zip(*parts))
  targets = np.concatenate(targets)
  rows = rank_all(union, blends, retrieval.DEFAULT_BEAM)
  results = {name: {k: float(v) for k, v in metrics_lib.retrieval_metrics(ranked, targets).items()
                    if k in METRICS} for name, ranked in rows.items()}
  best = best_blend(results)
  lines = [f"# The item head's blend on {args.split} ({len(targets):,} users, checkpoint "
           f"{args.checkpoint}, step {int(state.step)}, beam {retrieval.DEFAULT_BEAM}, "
           f"history {'left out' if args.exclude_history else 'kept'})", "",
           "Ranked by log p(ID) + blend * log p_head(item) over the beams and the head's top "
           f"{exp.model.config.item_head.candidates or retrieval.DEFAULT_BEAM} items. "
           f"Best on N@10: {best}.", "",
           "| ranking | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
  lines += [f"| {name} | " + " | ".join(f"{r[m]:.4f}" for m in METRICS) + " |"
            for name, r in results.items()]
  name = f"item_head_blend_{args.split}" + ("_nohistory" if args.exclude_history else "")
  out_dir = os.path.join(args.model_dir, "results")
  write_table(out_dir, name, lines, {"rows": results, "best": best, "users": len(targets),
                                     "checkpoint_step": int(state.step)})
  if args.record:
    os.makedirs(os.path.dirname(os.path.join(REPO, args.record)) or ".", exist_ok=True)
    shutil.copyfile(os.path.join(out_dir, f"{name}.md"), args.record)


if __name__ == "__main__":
  main()
