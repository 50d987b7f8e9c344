"""Dots that accumulate in float32 whatever their inputs' dtype (mixed precision)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def dot_general(lhs: jax.Array, rhs: jax.Array, dimension_numbers, precision=None,
                preferred_element_type=None) -> jax.Array:
  """lax.dot_general accumulating in float32, the result cast back to the inputs' dtype.

  With bfloat16 inputs, XLA:CPU runs a bf16 x bf16 -> f32 dot on the AMX/AVX512-BF16
  units (several times a float32 dot: bench/dot_speed.py) but a bf16 -> bf16 dot at
  float32 speed or worse; on TPU/GPU it is the usual mixed-precision dot. The signature
  is jnp.einsum's `_dot_general`; its preferred_element_type is overridden.
  """
  del preferred_element_type
  out = jax.lax.dot_general(lhs, rhs, dimension_numbers, precision,
                            preferred_element_type=jnp.float32)
  return out.astype(jnp.result_type(lhs, rhs))


def einsum(spec: str, *operands: jax.Array) -> jax.Array:
  return jnp.einsum(spec, *operands, _dot_general=dot_general)


@jax.custom_vjp
def matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  """x [..., in] @ w [in, out] -> [..., out] with `dot_general`, and a backward pass whose
  two dots also take the inputs' dtype (JAX's own would multiply a float32 cotangent by
  the bfloat16 operand: a float32 dot)."""
  return dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())))


def _matmul_fwd(x, w):
  return matmul(x, w), (x, w)


def _matmul_bwd(res, g):
  x, w = res
  g = g.astype(x.dtype)
  dx = dot_general(g, w, (((g.ndim - 1,), (1,)), ((), ())))
  batch_axes = tuple(range(x.ndim - 1))
  dw = dot_general(x, g, ((batch_axes, batch_axes), ((), ())))
  return dx, dw.astype(w.dtype)


matmul.defvjp(_matmul_fwd, _matmul_bwd)
