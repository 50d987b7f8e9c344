"""Run in a subprocess with 8 fake CPU devices: loss and grads, sharded (data=4 x model=2) vs one device."""

import os
import sys

# 8 fake devices, beside the flags the test session set (tests/conftest.py)
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from tiger_jax import network, partitioning  # noqa: E402
from tiger_jax.models import EncoderDecoderModel  # noqa: E402
from tiger_jax.trainer import Trainer, TrainerConfig  # noqa: E402

assert jax.device_count() == 8, jax.devices()
config = network.T5Config(vocab_size=64, emb_dim=16, num_heads=4, head_dim=8, mlp_dim=32,
                          num_encoder_layers=2, num_decoder_layers=2, dropout_rate=0.0,
                          item_inputs=network.ItemInputsConfig(item_level=False, recency_positions=3))
# recency: 3 rows, replicated, not split over 'model'
model = EncoderDecoderModel(network.Transformer(config))
lengths = {"inputs": 12, "targets": 5}
mesh = partitioning.make_mesh(4, 2)
trainer = Trainer(model, TrainerConfig(optimizer="adamw", learning_rate=1e-3, grad_clip=0.0), mesh, lengths)
state = trainer.init_state()
rng = np.random.default_rng(0)
batch = {"inputs": rng.integers(1, 64, (16, 12)).astype(np.int32),
         "targets": rng.integers(2, 64, (16, 5)).astype(np.int32)}
batch["inputs"][:, 9:] = 0  # some padding

# Sharded: params split over 'model', batch over 'data'.
specs = {str(jax.tree_util.keystr(p)): l.sharding.spec
         for p, l in jax.tree_util.tree_leaves_with_path(state.params)}
assert any("model" in str(s) for s in specs.values()), specs
sharded_batch = jax.device_put(batch, trainer.batch_sharding)
with trainer.context():
  loss_fn = jax.jit(jax.value_and_grad(lambda p, b: model.loss_fn(p, b, None)[0]))
  loss_s, grads_s = loss_fn(state.params, sharded_batch)

# One device: the same params, gathered.
params_1 = jax.device_get(state.params)
cpu0 = jax.devices()[0]
loss_1, grads_1 = jax.jit(jax.value_and_grad(lambda p, b: model.loss_fn(p, b, None)[0]),
                          device=cpu0)(params_1, batch)
np.testing.assert_allclose(float(loss_s), float(loss_1), rtol=1e-5)
for a, b in zip(jax.tree.leaves(jax.device_get(grads_s)), jax.tree.leaves(grads_1)):
  np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6)

# And a full train step through the trainer's sharded jit moves the loss the same way.
state2, metrics = trainer.train_step(state, sharded_batch)
xent_1 = jax.jit(lambda p, b: model.loss_fn(p, b, None)[1]["loss"], device=cpu0)(params_1, batch)
np.testing.assert_allclose(float(metrics["loss"]), float(xent_1), rtol=1e-5)
assert int(state2.step) == 1
print("OK", float(loss_s), float(loss_1))
sys.exit(0)
