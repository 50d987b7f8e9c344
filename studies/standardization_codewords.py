r"""Why Semantic-ID vectors are standardized: codewords used with and without, on sentence vectors.

  python -m studies.standardization_codewords [--items=2000] [--seeds=0,1,2] \
      [--record=records/studies/standardization_codewords.json]

MiniLM vectors of the synthetic catalog's item texts are unit-norm, with a large common
direction and ~0.04 std per dimension, as real titles' are. The RQ-VAE (a small one, the
paper's schedule without codeword restarts, which would fill both codebooks anyway) is fitted
on them standardized (`SemanticIdConfig.standardize`, the default) and as they are, per seed;
the figure is the codewords used per level, of 32. On Beauty's titles the unstandardized
RQ-VAE used 24 of 256 level-1 codewords against 157 standardized (an earlier session's
semantic-ID report). A quality figure, so a study, not a test: at 1,000 items the gap is not
there on every seed. The mechanism itself (saved, reapplied at assignment) is
tests/test_semantic_ids.py's.
"""

from __future__ import annotations

import argparse
import time

from studies.common import command_line, hardware


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--items", type=int, default=2000)
  p.add_argument("--seeds", default="0,1,2")
  p.add_argument("--record", default="")
  args = p.parse_args(argv)
  import tempfile
  import numpy as np
  from tiger_jax import content, io_utils
  from tiger_jax.data import synthetic
  from tiger_jax.semantic_ids import RQVAEConfig, SemanticIdConfig, compute_codes
  from tiger_jax.semantic_ids.report import level_usage
  ds = synthetic.generate(synthetic.SyntheticConfig(num_items=args.items, num_users=args.items))
  with tempfile.TemporaryDirectory() as cache:
    x = content.encode_texts(ds.item_text, cache_dir=cache)
  stats = {"items": len(x), "mean_norm": float(np.linalg.norm(x, axis=1).mean()),
           "dim_std": float(x.std(0).mean()), "common_direction": float(np.linalg.norm(x.mean(0)))}
  cfg = RQVAEConfig(hidden_dims=(128, 64), latent_dim=16, codebook_size=32, batch_size=128,
                    epochs=100, log_every=100, kmeans_iters=10, beta=0.25,
                    kmeans_init_items=128, reset_dead_codes=False)
  rows = []
  print(f"{stats['items']} items: norm {stats['mean_norm']:.3f}, per-dimension std "
        f"{stats['dim_std']:.3f}, mean vector's norm {stats['common_direction']:.2f}\n\n"
        "| seed | standardized: codewords per level | unit-norm as encoded | sum, standardized - as encoded |\n|---|---|---|---|")
  for seed in (int(s) for s in args.seeds.split(",")):
    used, seconds = {}, {}
    for standardize in (True, False):
      t = time.time()
      codes, _ = compute_codes(x, SemanticIdConfig(codebook_size=32, rqvae=cfg, seed=seed,
                                                   standardize=standardize))
      used[standardize] = [u["used_codewords"] for u in level_usage(codes, 32)]
      seconds[standardize] = round(time.time() - t, 1)
    rows.append({"seed": seed, "standardized": used[True], "as_encoded": used[False],
                 "seconds": seconds[True] + seconds[False]})
    print(f"| {seed} | {used[True]} | {used[False]} | {sum(used[True]) - sum(used[False]):+d} |",
          flush=True)
  print(f"\nhardware: {hardware()}; command: `{command_line()}`")
  if args.record:
    io_utils.write_json(args.record, {"command": command_line(), "hardware": hardware(),
                                      "vectors": stats, "rows": rows})


if __name__ == "__main__":
  main()
