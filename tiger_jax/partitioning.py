"""Device mesh and logical-axis rules, in the image of t5x's partitioning.

Parameters and activations are annotated with logical axis names in
`network/`; the rules here map those names to the mesh axes ('data',
'model'). Data parallelism shards 'batch' over 'data'; model parallelism
shards the wide dimensions ('mlp', 'heads', 'vocab') over 'model'.
"""

from __future__ import annotations

import os
import platform
from typing import Any, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

LogicalRules = Sequence[tuple[str, str | None]]


def usable_cpu_cores() -> int:
  """CPU cores this process may run on (fewer than the machine's under taskset)."""
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def standard_logical_axis_rules() -> LogicalRules:
  """t5x's standard 1-D data + 1-D model parallel rules."""
  return (
      ("batch", "data"),
      ("vocab", "model"),
      ("mlp", "model"),
      ("heads", "model"),
      ("kv", None),
      ("embed", None),
      ("length", None),
      ("relpos_buckets", None),
  )


def make_mesh(data: int = -1, model: int = 1, devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A ('data', 'model') mesh over all devices; data=-1 takes what model leaves."""
  devices = list(devices or jax.devices())
  if data == -1:
    if len(devices) % model:
      raise ValueError(f"{len(devices)} devices do not split into model={model} parallel groups")
    data = len(devices) // model
  if data * model != len(devices):
    raise ValueError(f"mesh data={data} x model={model} needs {data * model} devices, "
                     f"have {len(devices)}")
  return Mesh(np.asarray(devices).reshape(data, model), ("data", "model"))


def logical_to_sharding(logical_specs: Any, mesh: Mesh, rules: LogicalRules) -> Any:
  """A tree of logical PartitionSpecs -> a tree of NamedShardings on `mesh`."""
  return nn.logical_to_mesh_sharding(logical_specs, mesh, rules)


def params_sharding(abstract_variables: Any, mesh: Mesh, rules: LogicalRules) -> Any:
  """NamedShardings of a model's (boxed, abstract) variables."""
  return logical_to_sharding(nn.get_partition_spec(abstract_variables), mesh, rules)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Batches are split over 'data' along their leading axis."""
  return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def cpu_model() -> str:
  """The CPU's model name and the matrix units XLA:CPU can use (AMX, AVX512-BF16, AVX2)."""
  name, flags = platform.processor() or platform.machine(), set()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
          name = value.strip()
        elif key.strip() == "flags":
          flags = set(value.split())
          break
  except OSError:
    pass
  units = [u for u, flag in (("AMX", "amx_bf16"), ("AVX512-BF16", "avx512_bf16"),
                             ("AVX-512", "avx512f"), ("AVX2", "avx2")) if flag in flags]
  return f"{name} ({', '.join(units[:2]) or 'no AVX2'})"


def hardware() -> str:
  """One line: the devices, the CPU cores this process may use, the CPU and its matrix units,
  and XLA_FLAGS if set (what a figure's record names as its hardware)."""
  d = jax.devices()[0]
  usable = usable_cpu_cores()
  cores = f"{os.cpu_count()} CPU cores" if usable == os.cpu_count() else \
      f"{usable} of {os.cpu_count()} CPU cores (taskset)"
  xla_flags = os.environ.get("XLA_FLAGS", "").strip()  # e.g. another XLA:CPU dot library
  return (f"{jax.device_count()} x {d.device_kind} ({d.platform}), {cores}, {cpu_model()}"
          + (f", XLA_FLAGS={xla_flags}" if xla_flags else ""))


def global_array(batch: dict[str, np.ndarray], sharding: jax.sharding.Sharding
                 ) -> dict[str, jax.Array]:
  """This host's rows -> global arrays split over the mesh's 'data' axis."""
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}
