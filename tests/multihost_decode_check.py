"""Decoding on several hosts, by hand (not yet a test: it shows a known failure).

  PORT=23456; python tests/multihost_decode_check.py 0 2 $PORT & python tests/multihost_decode_check.py 1 2 $PORT

Each of two local processes has 2 fake CPU devices (a data=4 mesh) and passes its own rows of
a batch to a `Retriever`, as the validation pass (`trainer.make_eval_fn`) and
`evaluate_checkpoint`'s several-host branch do. Each prints OK or the error, per batch sharding:
- None (the validation pass's): the jitted search runs, and fetching its global output fails;
- the trainer's batch sharding (evaluate's): numpy inputs with a non-trivial sharding fail.
The fix: global inputs from each host's rows (`partitioning.global_array`), outputs back to
host-local rows, and metrics summed over hosts.
"""

import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=2").strip()

import jax  # noqa: E402

jax.config.update("jax_cpu_collectives_implementation", "gloo")
process_id, num_processes, port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=num_processes, process_id=process_id)

import numpy as np  # noqa: E402

from tiger_jax import network, partitioning, retrieval  # noqa: E402
from tiger_jax.models import EncoderDecoderModel  # noqa: E402
from tiger_jax.semantic_ids import make_unique  # noqa: E402
from tiger_jax.tokens import TokenLayout  # noqa: E402
from tiger_jax.trainer import Trainer, TrainerConfig  # noqa: E402

ids = make_unique(np.unique(np.random.default_rng(0).integers(0, 3, (20, 3)), axis=0))
layout = TokenLayout.for_ids(ids, codebook_size=3, num_user_buckets=5)
config = network.T5Config(vocab_size=layout.vocab_size, emb_dim=16, num_heads=2, head_dim=8,
                          mlp_dim=32, num_encoder_layers=1, num_decoder_layers=1)
model = EncoderDecoderModel(network.Transformer(config))
trainer = Trainer(model, TrainerConfig(), partitioning.make_mesh(), {"inputs": 9, "targets": 5})
state = trainer.init_state()
rows = np.random.default_rng(process_id).integers(2, layout.vocab_size, (4, 9)).astype(np.int32)
for name, sharding in (("None", None), ("batch_sharding", trainer.batch_sharding)):
  try:
    with trainer.context():
      items, _ = retrieval.Retriever(model, layout, ids, 4, batch_sharding=sharding)(
          state.params, rows)
    print(process_id, name, "OK", np.asarray(items).shape, flush=True)
  except Exception as e:  # noqa: BLE001 (what this check reports)
    print(process_id, name, "ERROR", type(e).__name__, str(e).splitlines()[0][:200], flush=True)
jax.distributed.shutdown()
