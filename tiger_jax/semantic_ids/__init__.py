"""Stage 3: item vectors -> collision-free Semantic IDs (RQ-VAE and alternatives)."""

from tiger_jax.semantic_ids.collisions import collision_stats, make_unique
from tiger_jax.semantic_ids.methods import METHODS, PRESETS, SemanticIdConfig, compute_codes
from tiger_jax.semantic_ids.rqvae import RQVAEConfig
