r"""What a run's validation curve says about the hours it would need to reach a target.

  python -m studies.curve_slope --record=records/beauty_paper_cpu.json \
    --out=records/analysis/beauty_paper_cpu_slope.md

A record made by `studies.reproduce` keeps its validation curve (step, trainer hours, R@10,
N@10 on the first `validation_users` users) and its test figures from the checkpoint chosen
on validation. This fits each metric against the trainer's clock two ways, over the curve's
points from --from_hours on (the warm-up left out):

- log: metric = a + b * ln(hours), a curve that flattens; b is the gain per doubling / ln 2;
- last: the straight line through the last --last points, the slope where the curve stands.

The target is the paper's test figure (`studies.common.PAPER`, or --target=METRIC:VALUE,...)
moved onto the validation scale by the record's own test / validation ratio (its test figure
over the chosen checkpoint's validation figure), so "hours to reach" reads: the trainer hours
at which this curve, continued by the fit, would score the target on test. Beside it, the
test figure minus the target with its standard error over users (the record's per-user hits;
the paper's figure is taken as exact). The fits are an extrapolation,
not a measurement: the curve is noisy (4,096 users) and a fit's continuation is a guess; the
table states the points it rests on.
"""

from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np

from studies.common import PAPER, command_line, gap_to_figure, relative

KEYS = ("recall@10", "ndcg@10")


def fit_line(hours: np.ndarray, values: np.ndarray) -> tuple[float, float]:
  """Least squares of values = a + b hours: (a, b)."""
  if len(hours) < 2:
    raise ValueError("a fit needs at least 2 points")
  b, a = np.polyfit(hours, values, 1)
  return float(a), float(b)


def fit_log(hours: np.ndarray, values: np.ndarray) -> tuple[float, float]:
  """Least squares of values = a + b ln(hours): (a, b)."""
  return fit_line(np.log(hours), values)


def hours_to_reach(a: float, b: float, target: float, log: bool) -> float:
  """The hours at which a + b * (ln h or h) equals `target` (inf where the fit never rises to
  it)."""
  if b <= 0:
    return math.inf
  x = (target - a) / b
  if log:
    return math.exp(x) if x < 700 else math.inf
  return x


def chosen_point(curve: list[dict], step: int) -> dict:
  """The validation point of the checkpoint the record decoded test from."""
  for point in curve:
    if point["step"] == step:
      return point
  raise ValueError(f"the validation curve holds no point at step {step}, the decoded checkpoint")


def analyse(record: dict, targets: dict[str, float], from_hours: float, last: int) -> dict:
  """Per metric: test, chosen validation, their ratio, the target on the validation scale, both
  fits and the hours each needs to reach it."""
  curve = sorted(record["validation_curve"], key=lambda p: p["hours"])
  tiger = record["rows"]["TIGER"]
  chosen = chosen_point(curve, tiger["checkpoint_step"])
  kept = [p for p in curve if p["hours"] >= from_hours]
  if len(kept) < 3:
    raise ValueError(f"--from_hours={from_hours} leaves {len(kept)} points; a fit needs 3")
  hours = np.asarray([p["hours"] for p in kept])
  out = {"points": len(kept), "from_hours": float(hours[0]), "to_hours": float(hours[-1]),
         "metrics": {}}
  for key in targets:
    values = np.asarray([p[key] for p in kept])
    ratio = tiger[key] / chosen[key]
    on_val = targets[key] / ratio
    a, b = fit_log(hours, values)
    la, lb = fit_line(hours[-last:], values[-last:])
    out["metrics"][key] = {
        "test": tiger[key], "validation": chosen[key], "test_over_validation": ratio,
        "target_test": targets[key], "target_validation": on_val,
        "test_minus_target": gap_to_figure(record, "TIGER", key, targets[key]),
        "log_fit": {"a": a, "b": b, "per_doubling": b * math.log(2),
                    "hours_to_target": hours_to_reach(a, b, on_val, log=True)},
        "last_fit": {"points": min(last, len(kept)), "per_hour": lb,
                     "hours_to_target": hours_to_reach(la, lb, on_val, log=False)}}
  return out


def _h(x: float) -> str:
  return "never (the fit does not rise)" if math.isinf(x) else f"{x:,.1f}"


def table(record: dict, result: dict, source: str) -> list[str]:
  lines = [f"# What the validation curve of `{record['recipe']}` says", "",
           f"{record['dataset']}: the record's test figures (checkpoint step "
           f"{record['rows']['TIGER']['checkpoint_step']}, chosen on validation) and its "
           f"validation curve on {record.get('validation_users')} users, {result['points']} points "
           f"from {result['from_hours']:.2f} to {result['to_hours']:.2f} trainer hours. Target: "
           f"{source}, moved onto the validation scale by the record's own test / validation "
           "ratio. Hours are the trainer's clock on the record's hardware; the fits extrapolate.",
           "",
           "| metric | test | target (test) | test minus target (SE over users) | test / "
           "validation | target (validation) | log fit: gain per doubling of hours | log fit: "
           "hours to target | last points: gain per hour | last points: hours to target |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  for key, m in result["metrics"].items():
    gap = m["test_minus_target"]
    gap = (f"{gap['diff']:+.4f} ± {gap['se']:.4f} (z {gap['z']:+.1f})" if gap
           else "- (no per-user hits)")
    lines.append(
        f"| {key} | {m['test']:.4f} | {m['target_test']:.4f} | {gap} | "
        f"{m['test_over_validation']:.2f} | "
        f"{m['target_validation']:.4f} | {m['log_fit']['per_doubling']:+.4f} | "
        f"{_h(m['log_fit']['hours_to_target'])} | {m['last_fit']['per_hour']:+.4f} "
        f"({m['last_fit']['points']} points) | {_h(m['last_fit']['hours_to_target'])} |")
  lines += ["", f"hardware: {record['hardware']}; command: `{command_line()}`"]
  return lines


def parse_targets(text: str) -> dict[str, float]:
  out = {}
  for part in filter(None, text.split(",")):
    key, sep, value = part.partition(":")
    try:
      if not sep or key not in KEYS:
        raise ValueError
      out[key] = float(value)
    except ValueError:
      raise SystemExit(f"error: --target={text}: give METRIC:VALUE pairs, METRIC one of "
                       f"{', '.join(KEYS)}, e.g. ndcg@10:0.0384") from None
  return out


def main(argv=None) -> None:
  p = argparse.ArgumentParser()
  p.add_argument("--record", required=True, help="a record of studies.reproduce")
  p.add_argument("--out", help="where to write the table (.md; a .json beside it)")
  p.add_argument("--target", default="", help="METRIC:VALUE,... (default: the paper's figures)")
  p.add_argument("--from_hours", type=float, default=1.0, help="fit the points from here on")
  p.add_argument("--last", type=int, default=3, help="points of the straight-line fit")
  args = p.parse_args(argv)
  try:
    with open(args.record) as f:
      record = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise SystemExit(f"error: --record={args.record}: {e}") from None
  if not record.get("validation_curve") or "TIGER" not in record.get("rows", {}):
    raise SystemExit(f"error: --record={args.record}: no validation_curve or TIGER row; give a "
                     "record of studies.reproduce")
  if args.target:
    targets, source = parse_targets(args.target), f"--target={args.target}"
  else:
    paper = PAPER.get(record["dataset"], {}).get("TIGER (paper)")
    if paper is None:
      raise SystemExit(f"error: --record={args.record}: no paper figure for dataset "
                       f"{record['dataset']}; give --target=METRIC:VALUE")
    targets, source = {k: paper[k] for k in KEYS}, "the TIGER paper's test figure"
  if args.last < 2:
    raise SystemExit(f"error: --last={args.last}: a line needs at least 2 points")
  try:
    result = analyse(record, targets, args.from_hours, args.last)
  except ValueError as e:
    raise SystemExit(f"error: --record={args.record}: {e}") from None
  lines = table(record, result, source)
  print("\n".join(lines))
  if args.out:
    from tiger_jax import io_utils
    with io_utils.atomic_open(args.out) as f:
      f.write("\n".join(lines) + "\n")
    io_utils.write_json(os.path.splitext(args.out)[0] + ".json",
                        {"record": relative(args.record), **result})
    print(f"wrote {relative(args.out)}")


if __name__ == "__main__":
  main()
