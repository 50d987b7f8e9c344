r"""Recommendations from a trained run, by original item id: the recommend command.

  python -m tiger_jax.recommend --model_dir=runs/beauty --history=B004756YJA,B0020YLEYK
  python -m tiger_jax.recommend --model_dir=runs/beauty --user=A1YJEY40YUW4SE --k=5 --json

prints rank, item id, title, score (the beam's log-probability) and Semantic ID of the
top --k items (`recommender.Recommender`: the run's own config, IDs and constrained
search). --include_new_items lets catalog items without training interactions come too
(the run's cold-start settings). --user takes a user of the run's data: the history of its test example (or
--split), with its user token. Imports the recommender library, never training code.
"""

from __future__ import annotations

import json

from absl import flags

from tiger_jax import cli
from tiger_jax.recommender import Recommender, RecommendError

flags.DEFINE_string("model_dir", None, "A run's folder (its config.gin, checkpoints, data).")
flags.DEFINE_list("history", None, "Original item ids, oldest first.")
flags.DEFINE_string("user", None, "A user id of the run's data: recommend from its history.")
flags.DEFINE_enum("split", "test", ["validation", "test"], "--user: whose example's history.")
flags.DEFINE_integer("k", 10, "How many items (at most the beam size).")
flags.DEFINE_bool("exclude_history", False, "Return no item of the history.")
flags.DEFINE_bool("skip_unknown", False, "Drop unknown item ids with a warning, not an error.")
flags.DEFINE_bool("include_new_items", False, "Catalog items without training interactions "
                  "may come too (the run's cold-start settings; `Recommender.recommend`).")
flags.DEFINE_bool("json", False, "Print JSON instead of a table.")
flags.DEFINE_enum("checkpoint", None, ["best", "latest"], "Default: best where the run "
                  "validated, else latest.")
flags.DEFINE_integer("beam_size", None, "Default: the run's BEAM_SIZE (20).")
FLAGS = flags.FLAGS


def table(recs, history, titles) -> str:
  lines = [f"history ({len(history)} items): " + ", ".join(
      f"{i} ({t[:40]})" if t else i for i, t in zip(history, titles)), "",
      "| rank | item id | title | score | Semantic ID |", "|---|---|---|---|---|"]
  for r in recs:
    title = (r.title or "-").replace("|", "/")
    score = "new item" if r.new_item and r.score != r.score else f"{r.score:.3f}"
    lines.append(f"| {r.rank} | {r.item_id} | {title[:70]} | {score} | "
                 f"{'-'.join(map(str, r.semantic_id))} |")
  return "\n".join(lines)


def main() -> None:
  if not FLAGS.model_dir:
    raise SystemExit("error: --model_dir is required")
  if bool(FLAGS.history) == bool(FLAGS.user):
    raise SystemExit("error: give one of --history=ID,ID,... or --user=ID")
  try:
    rec = Recommender.load(FLAGS.model_dir, FLAGS.checkpoint, FLAGS.beam_size)
    history = FLAGS.history or rec.user_history(FLAGS.user, FLAGS.split)
    users = [FLAGS.user] if FLAGS.user else None
    recs = rec.recommend([history], FLAGS.k, FLAGS.exclude_history, users,
                         FLAGS.skip_unknown, FLAGS.include_new_items)[0]
  except RecommendError as e:
    raise SystemExit(f"error: {e}") from None
  if FLAGS.json:
    print(json.dumps({"history": history, "checkpoint": rec.checkpoint, "step": rec.step,
                      "recommendations": [r.__dict__ for r in recs]}, indent=1))
  else:
    titles = [rec.titles[rec.index[i]] if rec.titles and i in rec.index else None
              for i in history]
    print(table(recs, history, titles))


if __name__ == "__main__":
  cli.run(main, calls=())
