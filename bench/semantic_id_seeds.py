r"""Semantic-ID quality and time over seeds, on whatever machine runs it: how far the IDs move
with the seed, against how far they move with the machine.

  python bench/semantic_id_seeds.py --vectors=runs/beauty/data/item_vectors.npy --seeds=0,1,2,3,4
  python bench/semantic_id_seeds.py --vectors=... --preset=paper --seeds=0
  python bench/semantic_id_seeds.py --vectors=... --set=rqvae.epochs=200 --set=method=rq_kmeans
  python bench/semantic_id_seeds.py --vectors=... --record=records/semantic_ids_beauty.json
  python bench/semantic_id_seeds.py --vectors=... --seeds=0 --against=paper   # speed, one run

Runs `semantic_ids.compute_codes` on a data stage's item vectors with the default
SemanticIdConfig, or a preset of `semantic_ids.PRESETS` (`paper`: the paper's RQ-VAE schedule,
the default before the robust one), with --set changes on top, and prints per seed: the
codewords each level uses, the share of items in collision groups, the largest group, how many
items the group cap (SemanticIdConfig.max_group) moved, and the seconds it took; then the
mean and the range over the seeds, and whether every seed meets the targets (level 1 >= 240
of 256 codewords, <= 12% of items in collision groups, largest group <= 10). --against=PRESET
then runs the first seed under that preset too, in the same process, and gives the time
ratio (a speed measured in one run). --record writes all of it as JSON, with the command line
and the hardware. Needs only
jax, flax, optax and numpy (no TensorFlow), so that it runs on an accelerator machine as it is;
--set=collaborative_dim=32 (the text + collaborative vectors of the best recipe, made from the
vectors' data stage as the pipeline makes them) needs the full install. One thread, a change
of machine's arithmetic: `taskset -c 0 python bench/...` (the record's hardware says so).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

TARGETS = {"level1_min": 240, "collision_max": 0.12, "largest_group_max": 10}


def with_changes(config, changes: list[str]):
  """config with each 'field=value' (or 'rqvae.field=value') applied; values are literals."""
  for change in changes:
    key, sep, text = change.partition("=")
    if not sep:
      raise SystemExit(f"error: --set={change}: expected FIELD=VALUE, e.g. rqvae.epochs=200")
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text  # a bare word: a string, e.g. method=rq_kmeans
    target, _, field = key.rpartition(".")
    if target not in ("", "rqvae"):
      raise SystemExit(f"error: --set={change}: only SemanticIdConfig fields and rqvae.FIELD")
    owner = config.rqvae if target else config
    if field not in {f.name for f in dataclasses.fields(owner)}:
      raise SystemExit(f"error: --set={change}: {type(owner).__name__} has no field {field!r}")
    owner = dataclasses.replace(owner, **{field: value})
    config = dataclasses.replace(config, rqvae=owner) if target else owner
  return config


def portable_command(argv: list[str], vectors: str) -> tuple[str, dict]:
  """The command line with the vectors' folder written DATA_DIR (no machine path in a record),
  and how that folder was made, from its manifest."""
  data_dir = os.path.dirname(os.path.abspath(vectors))
  argv = [a.replace(os.path.dirname(vectors) or ".", "DATA_DIR", 1) if a.startswith("--vectors=")
          else a for a in argv]
  from tiger_jax.data.dataset import prepare_command
  data = prepare_command(data_dir)
  cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
  pinned = (f"taskset -c {','.join(map(str, cpus))} "
            if cpus and len(cpus) < (os.cpu_count() or len(cpus)) else "")
  return pinned + "python " + shlex.join(argv), data


def meets_targets(row: dict) -> bool:
  return (row["used"][0] >= TARGETS["level1_min"]
          and row["items_in_collision"] <= TARGETS["collision_max"]
          and row["largest_group"] <= TARGETS["largest_group_max"])


def measure(vectors: np.ndarray, config, vectors_path: str) -> dict:
  """One seed's codes under `config`: codewords used per level, collisions, the group cap's
  moves and the seconds it took (the collaborative block, where asked, built untimed)."""
  from tiger_jax.semantic_ids import collision_stats, compute_codes
  x, blocks = vectors, None
  if config.collaborative_dim:  # as the pipeline makes them: the item vectors, then the
    # collaborative block from the data stage's training sequences (seeded by the seed)
    from tiger_jax.semantic_ids.pipeline import load_item_vectors
    x, info = load_item_vectors(os.path.dirname(os.path.abspath(vectors_path)), config)
    blocks = [(int(d), float(w)) for _, d, w in info["blocks"]]
  start = time.time()
  codes, learned = compute_codes(x, config, None, blocks)
  seconds = time.time() - start
  used = [int(len(np.unique(codes[:, level]))) for level in range(codes.shape[1])]
  row = {"seed": config.seed, "used": used, **collision_stats(codes), "seconds": round(seconds, 1)}
  cap = learned.get("group_cap")
  if cap:
    row["group_cap"] = cap
  row["meets_targets"] = meets_targets(row)
  moved = f"{cap['moved_items']} (largest {cap['largest_group_before']})" if cap else "-"
  print(f"| {config.seed} | {' / '.join(map(str, used))} | {row['items_in_collision']:.1%} | "
        f"{row['largest_group']} | {moved} | {seconds:.0f} |", flush=True)
  return row


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--vectors", required=True, help="a data stage's item_vectors.npy")
  p.add_argument("--seeds", default="0,1,2,3,4")
  p.add_argument("--preset", default="default", help="a name of semantic_ids.PRESETS")
  p.add_argument("--set", action="append", default=[], dest="changes",
                 help="FIELD=VALUE of SemanticIdConfig, or rqvae.FIELD=VALUE (repeatable)")
  p.add_argument("--against", default="",
                 help="also time this preset (e.g. paper) on the first seed, in the same run")
  p.add_argument("--record", default="", help="also write the rows and summary here as JSON")
  args = p.parse_args()
  import jax
  from tiger_jax import io_utils
  from tiger_jax.partitioning import hardware
  from tiger_jax.semantic_ids import PRESETS
  try:
    vectors = np.load(args.vectors).astype(np.float32)
  except OSError as e:
    raise SystemExit(f"error: --vectors={args.vectors}: {e}") from None
  for flag, name in (("--preset", args.preset), ("--against", args.against)):
    if name and name not in PRESETS:
      raise SystemExit(f"error: {flag}={name}: one of {', '.join(PRESETS)}")
  base = with_changes(PRESETS[args.preset], args.changes)
  if base.collaborative_dim and os.path.basename(args.vectors) != "item_vectors.npy":
    raise SystemExit(f"error: --vectors={args.vectors}: collaborative_dim builds the vectors "
                     "from a data stage's folder; give that folder's item_vectors.npy")
  dim = vectors.shape[1] + base.collaborative_dim  # the collaborative block, where asked
  print(f"{len(vectors):,} vectors of dim {dim}; preset {args.preset}, {base.method}"
        f"{f', {base.rqvae.epochs} epochs' if base.method == 'rqvae' else ''}; {hardware()}; "
        f"jax {jax.__version__}", flush=True)
  print("| seed | codewords used per level | items in collision groups | largest group | "
        "items the group cap moved (largest group before) | seconds |")
  print("|---|---|---|---|---|---|")
  seeds = [int(s) for s in args.seeds.split(",")]
  rows = [measure(vectors, dataclasses.replace(base, seed=seed), args.vectors) for seed in seeds]
  against = None
  if args.against:  # the same seed under another preset, timed in this very process
    other = dataclasses.replace(with_changes(PRESETS[args.against], args.changes), seed=seeds[0])
    print(f"against: preset {args.against}, seed {seeds[0]}"
          f"{f', {other.rqvae.epochs} epochs' if other.method == 'rqvae' else ''}", flush=True)
    row = measure(vectors, other, args.vectors)
    against = {"preset": args.against, "rows": [row],
               "times_slower": round(row["seconds"] / rows[0]["seconds"], 1)}
    print(f"preset {args.against} took {row['seconds']:.0f} s against {rows[0]['seconds']:.0f} s: "
          f"{against['times_slower']}x the time, seed {seeds[0]}, in one run", flush=True)
  summary = {}
  for key, values in (("level1_used", [r["used"][0] for r in rows]),
                      ("items_in_collision", [r["items_in_collision"] for r in rows]),
                      ("largest_group", [r["largest_group"] for r in rows]),
                      ("seconds", [r["seconds"] for r in rows])):
    summary[key] = {"mean": float(np.mean(values)), "min": min(values), "max": max(values)}
    fmt = "{:.1%}" if key == "items_in_collision" else "{:.0f}"
    print(f"{key}: mean {fmt.format(np.mean(values))}, range {fmt.format(min(values))} - "
          f"{fmt.format(max(values))}")
  summary["every_seed_meets_targets"] = all(r["meets_targets"] for r in rows)
  print(f"targets {TARGETS}: {'met on every seed' if summary['every_seed_meets_targets'] else 'missed'}")
  if args.record:
    command, data = portable_command(sys.argv, args.vectors)
    record = {"command": command, "data": data, "preset": args.preset,
              "changes": args.changes, "vectors": os.path.basename(args.vectors),
              "num_items": len(vectors), "dim": int(dim), "rows": rows,
              "summary": summary, "targets": TARGETS, "hardware": hardware(),
              "jax": jax.__version__, "config": dataclasses.asdict(base)}
    if against:
      record["against"] = against
    io_utils.write_json(args.record, record)  # a temporary file renamed into place


if __name__ == "__main__":
  main()
