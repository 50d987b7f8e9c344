"""tiger-jax: generative retrieval for recommendation (TIGER) in JAX/Flax.

Pipeline stages, one package or module each:
  data/          Amazon 2014 readers, synthetic catalog, leave-one-out splits
  content.py     item content -> vector (sentence encoder or attributes)
  semantic_ids/  RQ-VAE and alternatives -> collision-free Semantic IDs
"""

__version__ = "0.1.0"
