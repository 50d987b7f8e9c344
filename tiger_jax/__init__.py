"""tiger-jax: generative retrieval for recommendation (TIGER) in JAX/Flax.

Pipeline stages, one package or module each:
  data/            Amazon 2014 readers, synthetic catalog, leave-one-out splits, TFDS builder
  content.py       item content -> vector (sentence encoder, attributes, co-occurrence)
  semantic_ids/    RQ-VAE and alternatives -> collision-free Semantic IDs
  tokens.py        the token layout; SeqIO tasks live in the top-level `tasks/`
  network.py       the T5-style encoder-decoder (Flax, logical axis names)
  models.py        loss and decoding pieces; partitioning.py, trainer.py, train.py
  decoding.py      beam search constrained to real items; metrics.py, evaluate.py
  sasrec.py, baselines.py   yardsticks on the same splits
  main.py          the whole pipeline (the README's main job)
"""

__version__ = "0.1.0"
