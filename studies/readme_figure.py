r"""The README's figure: validation NDCG@10 against training hours for the recipes the README's
table reports, beside SASRec and the counting floors (nothing else).

  python -m studies.readme_figure     # -> docs/figures/readme_curves.png

Each record in records/ names its learning curve (`learning_curve`: the JSON a
`python -m studies.learning_curve` run kept, and the curve's name in it); the curves of every
other recipe stay in those JSON files and in the lab notes.
"""

from __future__ import annotations

import json
import os

from studies import readme_table
from studies.common import REPO

OUT = os.path.join(REPO, "docs", "figures", "readme_curves.png")


def main() -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from tiger_jax import io_utils
  records = [r for r in readme_table.load_records(readme_table.default_records())
             if r.get("learning_curve")]
  if not records:
    raise SystemExit("error: no record in records/ names a learning curve")
  fig, axes = plt.subplots(1, len(records), figsize=(6 * len(records), 4), squeeze=False)
  for ax, r in zip(axes[0], records):
    with open(os.path.join(REPO, r["learning_curve"]["figure"])) as f:
      kept = json.load(f)
    for name, style in ((r["learning_curve"]["curve"], "o-"), ("SASRec", "s-")):
      pts = kept["curves"][name]
      label = f"TIGER, {os.path.basename(r['recipe'])}" if name != "SASRec" else "SASRec, ours"
      ax.plot([p["hours"] for p in pts], [p["ndcg@10"] for p in pts], style, ms=3, label=label)
    for j, (name, value) in enumerate(kept["lines"].items()):
      ax.axhline(value["ndcg@10"], ls=("--", ":")[j % 2], color="0.3", label=name)
    ax.set_title(f"{r['dataset']}: validation, {kept['eval_users']:,} fixed users", fontsize=9)
    ax.set_xlabel("training hours (the trainer's clock)")
    ax.set_ylabel("validation NDCG@10")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.suptitle(f"hardware: {kept['hardware']}", fontsize=7)
  fig.tight_layout()
  with io_utils.atomic_open(OUT, "wb") as f:
    fig.savefig(f, format="png", dpi=90)
  print(f"wrote {os.path.relpath(OUT, REPO)}")


if __name__ == "__main__":
  main()
