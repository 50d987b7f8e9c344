r"""Semantic-ID quality on real data: one table per category, one row per kind of item vector.

  python -m studies.semantic_id_report                       # beauty and toys, all variants
  python -m studies.semantic_id_report --categories=beauty --variants=text,text_unit_norm
  python -m studies.semantic_id_report --epochs=500          # a shorter RQ-VAE schedule

For each category and variant it prepares the shared S3-Rec folder (item text
from item_meta.jsonl, or attributes), computes RQ-VAE Semantic IDs
(`SemanticIdConfig` defaults plus the variant's changes), and prints, from each
run's report.json: codeword usage and perplexity per level, the share of items
in collision groups and the largest group, the reconstruction error, and
semantic coherence (share of item pairs with the same 3-code prefix that share
a leaf category, against random pairs). Every run keeps its report.json and
codeword_usage.png under --run_dir/<category>/<variant>/semantic_ids; the
table goes to --run_dir/semantic_id_report.{md,json}. Finished runs are reused.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import time

from studies.common import SHARED, write_table

# variant -> (content source, SemanticIdConfig changes, RQVAEConfig changes). Dead-code
# reset (as studies/configs/beauty_cpu.gin sets it) except where the name says otherwise.
RESET = {"reset_dead_codes": True}
VARIANTS = {
    "text": ("text", {}, RESET),
    "text_no_reset": ("text", {}, {}),
    "text_unit_norm_no_reset": ("text", {"standardize": False}, {}),
    "text_unit_norm": ("text", {"standardize": False}, RESET),
    "attributes": ("attributes", {}, RESET),
    "text+attributes": ("text+attributes", {}, RESET),
    "text+collaborative": ("text", {"collaborative_dim": 32}, RESET),
}
DEFAULT_VARIANTS = {"beauty": list(VARIANTS),
                    "toys": ["text", "text_no_reset", "text_unit_norm_no_reset", "attributes"]}


def prepared(run_dir: str, category: str, content: str) -> str:
  """The shared folder prepared with `content` vectors, once per (category, content)."""
  from tiger_jax.data.prepare import prepare
  data_dir = os.path.join(run_dir, category, f"data_{content}")
  if not os.path.exists(os.path.join(data_dir, "manifest.json")):
    text_cache = os.path.join(run_dir, category, "data_text", "cache")
    if "text" in content and os.path.isdir(text_cache) and content != "text":
      shutil.copytree(text_cache, os.path.join(data_dir, "cache"), dirs_exist_ok=True)
    prepare("preprocessed", data_dir, os.path.join(SHARED, category), category,
            content_source=content)
  return data_dir


def run_variant(run_dir: str, category: str, variant: str, epochs: int | None) -> dict:
  from tiger_jax import io_utils
  from tiger_jax.semantic_ids import RQVAEConfig, SemanticIdConfig, pipeline
  content, changes, rq_changes = VARIANTS[variant]
  data_dir = prepared(run_dir, category, content)
  sid_dir = os.path.join(run_dir, category, variant + (f"_e{epochs}" if epochs else ""),
                         "semantic_ids")
  if not os.path.exists(os.path.join(sid_dir, "manifest.json")):
    rq = RQVAEConfig(**rq_changes, **({} if epochs is None else {"epochs": epochs}))
    t = time.time()
    pipeline.run(data_dir, sid_dir, SemanticIdConfig(rqvae=rq, **changes))
    print(f"{category}/{variant}: Semantic IDs in {time.time() - t:.0f}s", flush=True)
  rep = io_utils.read_json(os.path.join(sid_dir, "report.json"))
  config = pipeline.load_config(sid_dir)
  return {"report": rep, "dir": sid_dir, "config": dataclasses.asdict(config)}


def row(name: str, result: dict) -> str:
  rep = result["report"]
  levels = rep["levels"]
  coh = rep.get("semantic_coherence", {})
  recon = rep.get("reconstruction_relative_error")
  cells = [name, str(rep["item_vectors"]["dim"]),
           " / ".join(str(l["used_codewords"]) for l in levels),
           " / ".join(f"{l['perplexity']:.0f}" for l in levels),
           f"{rep['items_in_collision']:.1%}", str(rep["largest_group"]),
           "-" if recon is None else f"{recon:.4f}",
           f"{coh['prefix_3']['same_category']:.3f}" if coh else "-",
           f"{coh['random_pairs']['same_category']:.3f}" if coh else "-"]
  return "| " + " | ".join(cells) + " |"


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--categories", default="beauty,toys")
  p.add_argument("--variants", default=None, help=f"comma-separated, from {list(VARIANTS)}")
  p.add_argument("--epochs", type=int, default=None, help="RQ-VAE epochs (default: RQVAEConfig's)")
  p.add_argument("--run_dir", default="runs/semantic_id_report")
  args = p.parse_args()
  from tiger_jax.semantic_ids import RQVAEConfig
  unknown = set((args.variants or "").split(",")) - set(VARIANTS) - {""}
  if unknown:
    raise SystemExit(f"error: --variants: unknown {sorted(unknown)}; choose from {list(VARIANTS)}")
  results, lines = {}, []
  epochs = args.epochs or RQVAEConfig().epochs
  for category in args.categories.split(","):
    lines += [f"{category}: RQ-VAE 3 x 256, {epochs} epochs, seed 0", "",
              "| item vectors | dim | codewords used (L1/L2/L3) | perplexity | items in collision "
              "| largest group | reconstruction MSE / input variance | same leaf category, 3-code prefix | "
              "same leaf category, random pairs |", "|---|" + "---|" * 8]
    for variant in (args.variants.split(",") if args.variants else DEFAULT_VARIANTS[category]):
      results[f"{category}/{variant}"] = res = run_variant(args.run_dir, category, variant,
                                                           args.epochs)
      lines.append(row(variant, res))
    lines.append("")
  write_table(args.run_dir, "semantic_id_report", lines, results)


if __name__ == "__main__":
  main()
