"""Scaled dot-product attention with bfloat16 products and a float32 softmax (private).

Under ``fit(precision="bfloat16")`` on a CPU with native bfloat16 matmuls
(``_bfloat16_dot.bfloat16_operands`` in a library program), ``F.multi_head_attention``
takes its four projections on ``F.dense``'s bfloat16 matmuls; :func:`attention` does
the same for the two products between them, ``q k^T`` and ``weights v``, and for the
four of their gradients. XLA:CPU hands a batched matmul to YNNPACK's bfloat16 kernels
only with one batch axis, the left operand's contracted axis last and the right's
first; otherwise it widens both to float32. So the heads are folded into the batch,
``(B * H, T, D)``, and each transposed operand is written out row-major behind an
optimization barrier, copied from its written-out rounding
(``_bfloat16_dot.written_out``). The logits, the softmax and its gradient stay
float32; the weights are rounded to bfloat16 only as an operand of ``weights v``.

Measured on a 2-core Intel Xeon with AMX, jax 0.10.2, ``q k^T`` of ``(32, 128, 4, 64)``
queries and keys, forward only: float32's einsum 5.1 ms, this product 2.9 (with the heads
kept as a second batch axis XLA widened it: 4.4).

Example:
  >>> q = jnp.ones((2, 5, 3, 4))
  >>> attention(q, q, q, None, False, jnp.ones((3, 4))).shape
  (2, 5, 3, 4)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from nnjax.functional import _bfloat16, _bfloat16_dot, _small_loop_dots
from nnjax.functional._conv_compiler import in_library_program

_F32 = jnp.float32


def applies(dtype: jnp.dtype) -> bool:
    """Whether attention of ``dtype`` inputs traced now takes :func:`attention`.

    Float32 inputs in a library program (``fit``'s step) within
    ``_bfloat16_dot.bfloat16_operands``.

    Example:
      >>> applies(jnp.float32)  # outside fit(precision="bfloat16")'s programs
      False
    """
    return dtype == _F32 and _bfloat16_dot.rounding_operands() and in_library_program()


def _heads_first(a: jax.Array) -> jax.Array:
    """``(B, T, H, D)`` as ``(B * H, T, D)``."""
    b, t, h, d = a.shape
    return jnp.swapaxes(a, 1, 2).reshape(b * h, t, d)


def _bmm(a: jax.Array, b: jax.Array) -> jax.Array:
    """``(N, M, K) @ (N, K, P)`` of bfloat16 operands, summed in float32."""
    return _small_loop_dots.dot_general(a, b, (((2,), (1,)), ((0,), (0,))))


def _transposed(a: jax.Array, key: jax.Array) -> jax.Array:
    """``(N, M, K)`` as ``(N, K, M)`` written out row-major, copied from ``a`` as written.

    Behind the barrier as ``(N, K * M)``: a transposed 3-D array there XLA still read
    in place as a transposed layout (and widened the matmul to float32).
    """
    n, m, k = a.shape
    t = jnp.swapaxes(_bfloat16_dot.written_out(a, key), 1, 2).reshape(n, k * m)
    return lax.optimization_barrier(t).reshape(n, k, m)


def attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    mask: jax.Array | None,
    causal: bool,
    key: jax.Array,
) -> jax.Array:
    """``softmax(q k^T / sqrt(D)) v`` per head, the products in bfloat16, float32 result.

    Args:
      q: ``(B, T, H, D)`` float32 queries.
      k: ``(B, S, H, D)`` float32 keys.
      v: ``(B, S, H, D)`` float32 values.
      mask: boolean ``(B|1, H|1, T, S)``, True where a query may attend, or ``None``.
        A query that may attend no key averages every value (its logits all the lowest
        finite float32, as ``jax.nn.dot_product_attention`` has it).
      causal: also mask every key after the query's position.
      key: an array held alike on every device (a projection's kernel): the
        written-out copies' run-time predicate (``_bfloat16_dot.written_out``).

    Returns:
      ``(B, T, H, D)`` float32; reverse-mode differentiable in ``q``, ``k`` and ``v``.
    """
    b, t, h, d = q.shape
    s = k.shape[1]
    allowed = jnp.ones((1, 1, t, s), jnp.bool_)
    if causal:
        allowed = jnp.tril(allowed)
    if mask is not None:
        allowed = allowed & mask
    allowed = jnp.broadcast_to(allowed, (b, h, t, s)).reshape(b * h, t, s)
    o = _core(_heads_first(q), _heads_first(k), _heads_first(v), allowed, key)
    return jnp.swapaxes(o.reshape(b, h, t, d), 1, 2)


@jax.custom_vjp
def _core(q, k, v, allowed, key):
    return _core_fwd(q, k, v, allowed, key)[0]


def _core_fwd(q, k, v, allowed, key):
    qf, kf, vf = (_bfloat16.to_bfloat16(a) for a in (q, k, v))
    scale = 1.0 / jnp.sqrt(jnp.asarray(qf.shape[-1], _F32))
    logits = _bmm(qf, _transposed(kf, key)) * scale
    w = jax.nn.softmax(jnp.where(allowed, logits, jnp.finfo(_F32).min), axis=-1)
    wb = _bfloat16.to_bfloat16(w)
    return _bmm(wb, vf), (qf, kf, vf, allowed, key, w, wb)


def _core_bwd(saved, do):
    qf, kf, vf, allowed, key, w, wb = saved
    scale = 1.0 / jnp.sqrt(jnp.asarray(qf.shape[-1], _F32))
    dob = _bfloat16.to_bfloat16(do)
    dw = _bmm(dob, _transposed(vf, key))  # (N, T, S)
    dv = _bmm(_transposed(wb, key), dob)  # (N, S, D)
    d_logits = w * (dw - jnp.sum(dw * w, axis=-1, keepdims=True))
    d_logits = _bfloat16.to_bfloat16(jnp.where(allowed, d_logits * scale, 0.0))
    dq = _bmm(d_logits, kf)  # (N, T, D)
    dk = _bmm(_transposed(d_logits, key), qf)  # (N, S, D)
    return dq, dk, dv, None, None


_core.defvjp(_core_fwd, _core_bwd)

__all__ = ["applies", "attention"]
