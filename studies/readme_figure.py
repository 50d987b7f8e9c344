r"""The README's figure: validation NDCG@10 against training hours for the recipes the README's
table reports, beside the counting floors on the same users (nothing else).

  python -m studies.readme_figure     # -> docs/figures/readme_curves.png

One panel per dataset. A record's curve is its `validation_curve` (the trainer's validation
passes, which `studies.reproduce` keeps: step, trainer hours, R@10, N@10, on the first
`validation_users` users of the split) and its floors `validation_lines` (the same users).
An older record names a `learning_curve` instead (the JSON a `python -m
studies.learning_curve` run kept, the curve's name in it), which also holds SASRec's curve.
"""

from __future__ import annotations

import json
import os

from studies import readme_table
from studies.common import PAPER, REPO

OUT = os.path.join(REPO, "docs", "figures", "readme_curves.png")


def curves(record: dict) -> tuple[list[dict], dict, list[dict] | None, int | None]:
  """A record's TIGER validation points, its floor lines, SASRec's points (older records
  only) and the number of validation users."""
  if record.get("validation_curve"):
    return (record["validation_curve"], record.get("validation_lines") or {}, None,
            record.get("validation_users"))
  with open(os.path.join(REPO, record["learning_curve"]["figure"])) as f:
    kept = json.load(f)
  return (kept["curves"][record["learning_curve"]["curve"]], kept["lines"],
          kept["curves"].get("SASRec"), kept.get("eval_users"))


def main() -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from tiger_jax import io_utils
  records = [r for r in readme_table.load_records(readme_table.default_records())
             if (r.get("validation_curve") or r.get("learning_curve"))
             and not r.get("exclude_history")]  # the table's rows: the paper's protocol
  if not records:
    raise SystemExit("error: no record in records/ keeps a validation curve")
  datasets = sorted({r["dataset"] for r in records}, key=list(PAPER).index)
  fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4), squeeze=False)
  for ax, dataset in zip(axes[0], datasets):
    lines, users = {}, set()
    for r in (r for r in records if r["dataset"] == dataset):
      points, floors, sasrec, n = curves(r)
      users.add(n)
      label = f"{r['label']} (`{os.path.basename(r['recipe'])}`)"
      ax.plot([p["hours"] for p in points], [p["ndcg@10"] for p in points], "o-", ms=3,
              label=label if len(label) < 70 else os.path.basename(r["recipe"]))
      if sasrec:
        ax.plot([p["hours"] for p in sasrec], [p["ndcg@10"] for p in sasrec], "s-", ms=3,
                label="SASRec")
      lines = lines or floors
    for j, (name, value) in enumerate(lines.items()):
      ax.axhline(value["ndcg@10"], ls=("--", ":", "-.")[j % 3], color="0.3", label=name)
    count = ", ".join(f"{u:,}" for u in sorted(u for u in users if u)) or "the"
    ax.set_title(f"{dataset}: validation, {count} fixed users", fontsize=9)
    ax.set_xlabel("training hours (the trainer's clock)")
    ax.set_ylabel("validation NDCG@10")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  machines = sorted({r["hardware"] for r in records})
  fig.suptitle("hardware: " + "; ".join(machines), fontsize=7)
  fig.tight_layout()
  with io_utils.atomic_open(OUT, "wb") as f:
    fig.savefig(f, format="png", dpi=90)
  print(f"wrote {os.path.relpath(OUT, REPO)}")


if __name__ == "__main__":
  main()
