"""One of two local processes of a multi-host run (see test_launch.py).

  python tests/multiprocess_check.py PROCESS_ID NUM_PROCESSES PORT OUT_DIR

Each process has 2 fake CPU devices; together they form a data=4 mesh.
- Training, through the trainer's own loop (`trainer.train_loop`): each feeds its own half of
  every global batch; it validates and saves checkpoints/ and best/ every 3 steps, in
  OUT_DIR/run, which both share. The trained parameters are saved
  (OUT_DIR/params_<process>.npz) so the test can check both ended with the same ones.
- Decoding, in validation and after training: each passes its own users (`host_batches`:
  other counts and widths per host, as length buckets give) to `retrieval.evaluate`, as the
  validation pass and `evaluate` do on several hosts; OUT_DIR/decoded_<process>.npz holds what
  it got back after training, OUT_DIR/metrics_<process>.json its metrics and every
  validation pass's, to compare with one process decoding every user.
"""

import json
import os
import sys

import numpy as np

GLOBAL_BATCH, DECODE_ROWS, BEAM = 8, 4, 4


def build():
  """(model, layout, Semantic IDs, trainer) of the run; the same on any mesh."""
  from tiger_jax import network, partitioning
  from tiger_jax.models import EncoderDecoderModel
  from tiger_jax.semantic_ids import make_unique
  from tiger_jax.tokens import TokenLayout
  from tiger_jax.trainer import Trainer, TrainerConfig
  ids = make_unique(np.unique(np.random.default_rng(0).integers(0, 4, (30, 3)), axis=0))
  layout = TokenLayout.for_ids(ids, codebook_size=4, num_user_buckets=5)
  config = network.T5Config(vocab_size=layout.vocab_size, emb_dim=16, num_heads=2, head_dim=8,
                            mlp_dim=32, num_encoder_layers=1, num_decoder_layers=1,
                            dropout_rate=0.1)
  model = EncoderDecoderModel(network.Transformer(config))
  config = TrainerConfig(optimizer="adamw", learning_rate=1e-2, eval_every=3, checkpoint_every=3,
                         log_every=3)
  trainer = Trainer(model, config, partitioning.make_mesh(), {"inputs": 9, "targets": 5})
  return model, layout, ids, trainer


def host_batches(process_id: int, vocab_size: int) -> list[dict[str, np.ndarray]]:
  """Host 0: 7 users in batches of widths 5 and 9 (the last with one padding row); host 1:
  3 users in one batch of width 5. Users are numbered over hosts."""
  rng = np.random.default_rng(10 + process_id)
  shapes = [(4, 5), (3, 9)] if process_id == 0 else [(3, 5)]
  first, out = 0 if process_id == 0 else 7, []
  for n, width in shapes:
    inputs = np.zeros((DECODE_ROWS, width), np.int32)
    inputs[:n] = rng.integers(1, vocab_size, (n, width))
    users = np.arange(first, first + DECODE_ROWS, dtype=np.int32)
    out.append({"inputs": inputs, "user": users, "target_item": (users * 7) % 20,
                "mask": (np.arange(DECODE_ROWS) < n).astype(np.int32)})
    first += n
  return out


def main():
  process_id, num_processes, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
  # 2 fake devices, beside the flags the test session set (tests/conftest.py)
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_force_host_platform_device_count=2").strip()
  import jax
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=num_processes,
                             process_id=process_id)
  from tiger_jax import metrics as metrics_lib, retrieval, trainer as trainer_lib
  assert jax.device_count() == 2 * num_processes and jax.local_device_count() == 2
  model, layout, ids, trainer = build()
  retriever = retrieval.Retriever(model, layout, ids, BEAM, batch_sharding=trainer.batch_sharding)
  rows = slice(process_id * GLOBAL_BATCH // num_processes,
               (process_id + 1) * GLOBAL_BATCH // num_processes)

  def batches(start):
    for step in range(start, 1000):  # the same global batch on every host; each feeds its rows
      rng = np.random.default_rng(step)
      yield {"inputs": rng.integers(1, layout.vocab_size, (GLOBAL_BATCH, 9)).astype(np.int32)[rows],
             "targets": rng.integers(2, layout.vocab_size, (GLOBAL_BATCH, 5)).astype(np.int32)[rows]}

  passes = []

  def eval_fn(params, step):  # what trainer.make_eval_fn does, on this host's users
    with trainer.context():
      result = retrieval.evaluate(retriever, params, host_batches(process_id, layout.vocab_size))
    passes.append({"step": step, **{k: result[k] for k in metrics_lib.METRIC_NAMES}})
    return {k: result[k] for k in metrics_lib.METRIC_NAMES}

  state = trainer_lib.train_loop(trainer, batches, 6, os.path.join(out, "run"), eval_fn)
  params = jax.tree.map(
      lambda x: np.asarray(jax.experimental.multihost_utils.process_allgather(x, tiled=True)),
      state.params)
  flat = {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_leaves_with_path(params)}
  np.savez(os.path.join(out, f"params_{process_id}.npz"), **flat)

  ranked = {}
  with trainer.context():
    result = retrieval.evaluate(retriever, state.params, host_batches(process_id, layout.vocab_size),
                                ranked)
  np.savez(os.path.join(out, f"decoded_{process_id}.npz"), **ranked)
  with open(os.path.join(out, f"metrics_{process_id}.json"), "w") as f:
    json.dump({**result, "validation": passes}, f)
  print("process", process_id, "users", result["users"])
  jax.distributed.shutdown()


if __name__ == "__main__":
  main()
