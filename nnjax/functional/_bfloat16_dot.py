"""bfloat16 matmuls that a CPU with native bfloat16 dot products runs natively (private).

XLA:CPU hands a matmul to YNNPACK's bfloat16 kernels (``vdpbf16ps`` on AVX512-BF16)
only when both operands are bfloat16, the result is float32 and the left operand is
row-major with its contracted axis last. A bfloat16 result, or an operand that is a
transpose, and XLA instead widens both operands to float32 and runs a float32 matmul
(plus the conversions). So :func:`matmul` asks for a float32 result
(``preferred_element_type``), and in a library program (``fit``'s steps) its
hand-written backward pass keeps both gradient matmuls on those kernels: the input's
``dy @ kernel.T`` has that form already, and the kernel's ``x.T @ dy`` gets ``x.T``
written out row-major (:func:`leading_contraction`: a transpose behind an optimization
barrier, which XLA cannot fold into the matmul as a column-major layout), copied from
the forward pass's rounding of ``x`` (:func:`written_out`).

Measured on a 2-core AMD EPYC (Zen 5, AVX512-BF16), jax 0.10.2, one matmul, jitted,
medians of 40 interleaved calls, float32 time / bfloat16 time (float32 result):
``(256, 784) @ (784, 500)`` 1.77, its input gradient 1.74, its kernel gradient as
autodiff writes it (XLA widens it to float32) 0.89-0.95, written out as here 1.67;
``(2048, 144) @ (144, 512)`` 1.81, 1.83, 0.77-0.87 and 1.70. A bfloat16 result of the
same matmul (XLA widens it) ran at 0.95x float32's speed.

Example:
  >>> x, k = jnp.ones((2, 3), jnp.bfloat16), jnp.ones((3, 4), jnp.bfloat16)
  >>> matmul(x, k)
  Array([[3., 3., 3., 3.],
         [3., 3., 3., 3.]], dtype=float32)
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import jax
import jax.numpy as jnp
from jax import lax

from nnjax.functional import _bfloat16, _small_loop_dots
from nnjax.functional._conv_compiler import in_library_program
from nnjax.functional._scoped import scoped

_F32 = jnp.float32

_ROUND_OPERANDS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "bfloat16_matmul_operands", default=False
)


@contextlib.contextmanager
def bfloat16_operands(enabled: bool = True) -> Iterator[None]:
    """Within the block, ``F.dense`` of float32 inputs multiplies through :func:`matmul`.

    ``fit``'s ``precision="bfloat16"`` on a CPU with native bfloat16 dot products
    traces its model inside this block: the activations stay float32 and only the
    matmul operands are rounded to bfloat16 (as JAX's default matmul precision does on
    TPUs), so the convolutions and elementwise work that XLA:CPU computes in float32
    either way pay no rounding in between.

    Example:
      >>> with bfloat16_operands():
      ...     rounding_operands()
      True
    """
    with scoped(_ROUND_OPERANDS, bool(enabled)):
        yield


def rounding_operands() -> bool:
    """Whether a matmul traced now belongs in a :func:`bfloat16_operands` block.

    Example:
      >>> rounding_operands()
      False
    """
    return _ROUND_OPERANDS.get()


def _dot(lhs: jax.Array, rhs: jax.Array, lhs_axis: int, rhs_axis: int) -> jax.Array:
    """``lhs`` and ``rhs`` contracted over one axis each, as bfloat16, summed in float32."""
    dims = (((lhs_axis,), (rhs_axis,)), ((), ()))
    lhs, rhs = _bfloat16.to_bfloat16(lhs), _bfloat16.to_bfloat16(rhs)
    return _small_loop_dots.dot_general(lhs, rhs, dims)


def leading_contraction(a: jax.Array, b: jax.Array, out_sharding=None) -> jax.Array:
    """``a (*L, K)`` and ``b (*L, N)`` contracted over their leading axes: ``(K, N)`` float32.

    The kernel gradients' ``x.T @ dy`` in the form YNNPACK's bfloat16 kernels take: ``a``
    rounded and written out as ``(K, *L)`` row-major (a transpose behind an optimization
    barrier, which XLA would otherwise fold into the matmul as a column-major layout and
    widen both operands to float32), the leading axes kept apart, so that a batch split
    over devices stays split: each device sums its own rows and one all-reduce adds them
    (flattened to ``(K, R)`` first, the split rows were all-gathered for every kernel
    gradient). ``b`` rounded to bfloat16 as it is.

    Args:
      a: ``(*L, K)``, any float dtype (at least two leading axes: give a 2-D ``a[None]``).
      b: ``(*L, N)``, any float dtype.
      out_sharding: the result's sharding under a mesh with explicit axes, or ``None``.

    Returns:
      ``(K, N)`` float32 sums of the bfloat16 products.

    Example:
      >>> leading_contraction(jnp.ones((1, 4, 3)), jnp.ones((1, 4, 2)))
      Array([[4., 4.],
             [4., 4.],
             [4., 4.]], dtype=float32)
    """
    lead = tuple(range(a.ndim - 1))
    lhs = lax.optimization_barrier(jnp.transpose(_bfloat16.to_bfloat16(a), (a.ndim - 1, *lead)))
    dims = ((tuple(range(1, a.ndim)), lead), ((), ()))
    rhs = _bfloat16.to_bfloat16(b)
    return _small_loop_dots.dot_general(lhs, rhs, dims, out_sharding)


@jax.custom_vjp
def _matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return _dot(x, kernel, 1, 0)


def _matmul_fwd(x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, tuple]:
    xb, kb = _bfloat16.to_bfloat16(x), _bfloat16.to_bfloat16(kernel)
    zeros = (jnp.zeros((), x.dtype), jnp.zeros((), kernel.dtype))  # the cotangents' dtypes
    return _dot(xb, kb, 1, 0), (xb, kb, zeros)


def written_out(a: jax.Array, key: jax.Array) -> jax.Array:
    """``a`` as its producer wrote it: XLA fuses no consumer's loop with that producer.

    XLA:CPU fuses a cheap elementwise producer (the integer rounding of
    :func:`nnjax.functional._bfloat16.to_bfloat16`) into each of its consumers, so a
    transposing copy of a rounded array computed the rounding again in transposed order:
    ``(4096, 1024)`` float32 -> bfloat16 transposed took 22 ms, the transpose of the
    rounded array alone 2. Nothing is fused across a conditional (``lax.cond``, both
    branches ``a``, the predicate read from ``key`` at run time, so that XLA cannot fold
    it); XLA's optimization barrier is removed before fusion.

    Example:
      >>> written_out(jnp.ones((2, 3)), jnp.zeros(1))
      Array([[1., 1., 1.],
             [1., 1., 1.]], dtype=float32)
    """
    bits = lax.bitcast_convert_type(_bfloat16.to_bfloat16(key.reshape(-1)[0]), jnp.uint16)
    return lax.cond((bits | 1) != 0, lambda v: v, jnp.zeros_like, a)  # always the first


def _matmul_bwd(saved: tuple, dy: jax.Array) -> tuple[jax.Array, jax.Array]:
    xb, kb, (x_like, kernel_like) = saved
    dx = _bfloat16.round_like(_dot(dy, kb, 1, 1), x_like.dtype)
    # x.T @ dy, the transposed copy read from the forward's rounding
    dkernel = leading_contraction(written_out(xb, kb)[None], dy[None])
    dkernel = _bfloat16.round_like(dkernel, kernel_like.dtype)
    return dx, dkernel


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """``x @ kernel`` with bfloat16 operands and a float32 result.

    In a program traced by :func:`nnjax.functional._conv_compiler.jit` (``fit``'s
    steps, which differentiate in reverse mode) the gradients are bfloat16 matmuls with
    float32 sums too (the module docstring); elsewhere it is one ``dot_general``
    differentiated by JAX (forward mode included).

    Args:
      x: ``(..., in)``, any float dtype (rounded to bfloat16).
      kernel: ``(in, out)``, any float dtype (rounded to bfloat16).

    Returns:
      ``(..., out)`` float32. Gradients have the dtypes of ``x`` and ``kernel``.
    """
    if not in_library_program():
        return _dot(x, kernel, x.ndim - 1, 0)
    flat = x.reshape(-1, x.shape[-1])
    return _matmul(flat, kernel).reshape(*x.shape[:-1], kernel.shape[-1])


__all__ = [
    "bfloat16_operands",
    "leading_contraction",
    "matmul",
    "rounding_operands",
    "written_out",
]
