"""Gin names of the library's config dataclasses, registered once for every command line.

Library code takes these dataclasses as plain arguments; only the CLIs
(`main.py`, `semantic_ids/__main__.py`, `evaluate.py`) build them through gin.
"""

import gin

from tiger_jax import sasrec
from tiger_jax.semantic_ids import methods, rqvae

SemanticIdConfig = gin.external_configurable(methods.SemanticIdConfig, "SemanticIdConfig")
RQVAEConfig = gin.external_configurable(rqvae.RQVAEConfig, "RQVAEConfig")
SASRecConfig = gin.external_configurable(sasrec.SASRecConfig, "SASRecConfig")
