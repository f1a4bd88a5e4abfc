"""bfloat16 matmuls that XLA:CPU's small-loop kernels compile (private).

XLA:CPU compiles a while loop that reads and writes fewer bytes than its backend option
``xla_cpu_small_while_loop_byte_threshold`` (1024 by default) into one kernel of its
older IR emitter, and in jaxlib 0.8 and 0.9 that emitter has no matmul of bfloat16
operands with a float32 result: the whole program fails to compile ("UNIMPLEMENTED:
unsupported operand type BF16 in op dot"; jaxlib 0.10.2 compiles it). On a CPU with
native bfloat16, ``predict(precision="bfloat16")`` of a one-layer MLP with 8 inputs, on
4 CPU devices, failed so at batches of 5 to 24 rows.

:func:`dot_general` is the matmul of bfloat16 operands with float32 sums that nnjax's
rounded matmuls use. Where :func:`small_loops_take_bfloat16_dots` finds that emitter
without it (a probe compiled once per process), a matmul small enough that a loop
holding it could be a small loop multiplies its operands widened to float32 instead:
the same products (the product of two bfloat16 numbers is exact in float32), summed in
float32 as before, at no cost that matters for a matmul of under a kilobyte.

Example:
  >>> a = jnp.ones((2, 3), jnp.bfloat16)
  >>> dot_general(a, a.T, (((1,), (0,)), ((), ())))
  Array([[3., 3.],
         [3., 3.]], dtype=float32)
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import os
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, SingleDeviceSharding

_F32 = jnp.float32

THRESHOLD_OPTION = "xla_cpu_small_while_loop_byte_threshold"
"""The XLA:CPU backend option (``--xla_backend_extra_options``): a small loop's bytes."""
DEFAULT_THRESHOLD = 1024
"""Its value where ``XLA_FLAGS`` does not set it (XLA's ``SmallWhileLoopByteThreshold``)."""


def small_loop_byte_threshold(xla_flags: str | None = None) -> int:
    """The bytes under which XLA:CPU compiles a while loop as one kernel (0: never).

    Args:
      xla_flags: the flags to read (default: the ``XLA_FLAGS`` environment variable).

    Example:
      >>> small_loop_byte_threshold("")
      1024
      >>> flags = "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=0"
      >>> small_loop_byte_threshold(flags)
      0
    """
    flags = os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags
    match = re.search(rf"{THRESHOLD_OPTION}=(\d+)", flags)
    return int(match.group(1)) if match else DEFAULT_THRESHOLD


def _probe_loop(x: jax.Array, kernel: jax.Array, n: jax.Array) -> jax.Array:
    """A loop of ``x[i] @ kernel`` (bfloat16 operands, float32 result) small enough."""

    def body(i: jax.Array, out: jax.Array) -> jax.Array:
        return out.at[i].set(lax.dot(x[i], kernel, preferred_element_type=_F32))

    out = jnp.zeros((x.shape[0], x.shape[1], kernel.shape[1]), _F32)
    return lax.fori_loop(0, n, body, out)


@functools.cache
def small_loops_take_bfloat16_dots() -> bool:
    """Whether this jaxlib compiles a bfloat16 matmul with a float32 result in a small loop.

    Compiles one loop of ``(4, 8) @ (8, 3)`` matmuls (under 1 KiB: one failing shape of
    jaxlib 0.8.1 and 0.9.0) on the first CPU device, once per process. The probe runs on
    a thread of its own, in a mesh of its own: the first matmul that asks may be traced
    inside ``jit`` and a mesh (``fit``'s, ``predict``'s), where JAX's tracing state and
    mesh, both per thread, would refuse or shape the probe's program. ``True`` without
    a CPU backend.

    Example:
      >>> isinstance(small_loops_take_bfloat16_dots(), bool)
      True
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_probe_compiles).result()


def _probe_compiles() -> bool:
    try:
        device = jax.devices("cpu")[0]
    except RuntimeError:  # no CPU backend: no XLA:CPU loop to fail
        return True
    sharding = SingleDeviceSharding(device)
    args = (
        jax.ShapeDtypeStruct((2, 4, 8), jnp.bfloat16, sharding=sharding),
        jax.ShapeDtypeStruct((8, 3), jnp.bfloat16, sharding=sharding),
        jax.ShapeDtypeStruct((), jnp.int32, sharding=sharding),
    )
    try:
        with jax.set_mesh(Mesh(np.array([device]), ("probe",))):
            jax.jit(_probe_loop).lower(*args).compile()
    except Exception:  # XlaRuntimeError: UNIMPLEMENTED (the emitter's missing matmul)
        return False
    return True


def _out_shape(lhs: tuple, rhs: tuple, dimension_numbers: Any) -> tuple[int, ...]:
    """The shape of ``lax.dot_general(lhs, rhs, dimension_numbers)`` for these shapes."""
    (lc, rc), (lb, rb) = dimension_numbers
    free = lambda shape, used: tuple(d for i, d in enumerate(shape) if i not in used)
    return tuple(lhs[i] for i in lb) + free(lhs, {*lc, *lb}) + free(rhs, {*rc, *rb})


def _bytes(shape: tuple[int, ...], dtype: Any) -> int:
    return math.prod(shape) * jnp.dtype(dtype).itemsize


def widens(lhs: Any, rhs: Any, out_shape: tuple[int, ...]) -> bool:
    """Whether :func:`dot_general` widens these operands (see the module docstring).

    ``True`` where this jaxlib's small loops lack the matmul (``jax.default_backend()``
    is the CPU) and the operands and the float32 result, split over every device, take
    fewer bytes than :func:`small_loop_byte_threshold`: a loop holding the matmul
    could then be a small one.

    Example:
      >>> big = jax.ShapeDtypeStruct((512, 512), jnp.bfloat16)
      >>> widens(big, big, (512, 512))
      False
    """
    if jax.default_backend() != "cpu":
        return False
    size = _bytes(lhs.shape, lhs.dtype) + _bytes(rhs.shape, rhs.dtype) + _bytes(out_shape, _F32)
    small = size < small_loop_byte_threshold() * jax.device_count()
    return small and not small_loops_take_bfloat16_dots()


def dot_general(
    lhs: jax.Array, rhs: jax.Array, dimension_numbers: Any, out_sharding: Any = None
) -> jax.Array:
    """``lax.dot_general`` of bfloat16 ``lhs`` and ``rhs``, float32 sums and result.

    As ``lax.dot_general(lhs, rhs, dimension_numbers, preferred_element_type=float32)``,
    with the operands widened to float32 first where :func:`widens` (same values).

    Args:
      lhs: a bfloat16 array.
      rhs: a bfloat16 array.
      dimension_numbers: as :func:`jax.lax.dot_general`'s.
      out_sharding: the result's sharding under a mesh with explicit axes, or ``None``.

    Returns:
      the float32 result.
    """
    if widens(lhs, rhs, _out_shape(lhs.shape, rhs.shape, dimension_numbers)):
        lhs, rhs = lhs.astype(_F32), rhs.astype(_F32)
    return lax.dot_general(
        lhs, rhs, dimension_numbers, preferred_element_type=_F32, out_sharding=out_sharding
    )


__all__ = [
    "DEFAULT_THRESHOLD",
    "THRESHOLD_OPTION",
    "dot_general",
    "small_loop_byte_threshold",
    "small_loops_take_bfloat16_dots",
    "widens",
]
