"""One of two local processes of a multi-host run (see test_launch.py).

  python tests/multiprocess_check.py PROCESS_ID NUM_PROCESSES PORT OUT_FILE

Each process has 2 fake CPU devices; together they form a data=4 mesh. Each
feeds its own half of every global batch; the trained parameters are saved
so the test can check both processes ended with the same ones.
"""

import os
import sys

# 2 fake devices, beside the flags the test session set (tests/conftest.py)
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=2").strip()

import jax  # noqa: E402

jax.config.update("jax_cpu_collectives_implementation", "gloo")
process_id, num_processes, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=num_processes, process_id=process_id)

import numpy as np  # noqa: E402

from tiger_jax import network, partitioning  # noqa: E402
from tiger_jax.models import EncoderDecoderModel  # noqa: E402
from tiger_jax.trainer import Trainer, TrainerConfig  # noqa: E402

assert jax.device_count() == 2 * num_processes and jax.local_device_count() == 2
config = network.T5Config(vocab_size=64, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32,
                          num_encoder_layers=1, num_decoder_layers=1, dropout_rate=0.1)
model = EncoderDecoderModel(network.Transformer(config))
trainer = Trainer(model, TrainerConfig(optimizer="adamw", learning_rate=1e-2), partitioning.make_mesh(),
                  {"inputs": 10, "targets": 5})
state = trainer.init_state()
global_batch = 8
for step in range(5):
  rng = np.random.default_rng(step)  # the same global batch on every host; each feeds its rows
  batch = {"inputs": rng.integers(1, 64, (global_batch, 10)).astype(np.int32),
           "targets": rng.integers(2, 64, (global_batch, 5)).astype(np.int32)}
  rows = slice(process_id * global_batch // num_processes, (process_id + 1) * global_batch // num_processes)
  local = {k: v[rows] for k, v in batch.items()}
  state, metrics = trainer.train_step(state, partitioning.global_array(local, trainer.batch_sharding))
params = jax.tree.map(lambda x: np.asarray(jax.experimental.multihost_utils.process_allgather(x, tiled=True)),
                      state.params)
flat = {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_leaves_with_path(params)}
np.savez(out, loss=float(metrics["loss"]), **flat)
print("process", process_id, "loss", float(metrics["loss"]))
jax.distributed.shutdown()
