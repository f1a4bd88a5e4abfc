"""The scan behind :mod:`nnjax.functional.sequence` (private), with padded sequences.

``lengths`` masks a padded batch as PyTorch's packed sequences do: past a sequence's
length its carry is held and its output is zero.

Example:
  >>> step = lambda h, x: (h + x, h + x)
  >>> h, ys = scan_masked(step, jnp.zeros(2), jnp.ones((3, 2)), jnp.array([1, 3]), False, 1)
  >>> h.tolist(), ys.tolist()
  ([1.0, 3.0], [[1.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from nnjax.functional import _utils


def _masked(step, lengths, steps: int):
    """Wraps ``step(carry, x)`` to scan over ``(x, valid)``.

    Past a sequence's length its carry is held and its output is zero (PyTorch's
    packed-sequence semantics).
    """
    if lengths is None:
        return step, None

    def hold(valid, new, old):
        return jnp.where(jnp.reshape(valid, valid.shape + (1,) * (new.ndim - 1)), new, old)

    def masked_step(carry, inputs):
        x, valid = inputs
        new, y = step(carry, x)
        new = jax.tree.map(lambda n, o: hold(valid, n, o), new, carry)
        y = jax.tree.map(lambda a: hold(valid, a, jnp.zeros_like(a)), y)
        return new, y

    return masked_step, valid_mask(lengths, steps)


def valid_mask(lengths: jax.Array, steps: int) -> jax.Array:
    """``(T, B)`` booleans: step ``t`` lies within sequence ``b``'s length."""
    return jnp.arange(steps)[:, None] < lengths[None, :]


def scan_masked(step, state, xs_t, lengths, reverse, unroll):
    """``lax.scan`` of ``step`` over time-major ``xs_t``, masked by ``lengths``."""
    step, valid = _masked(step, lengths, xs_t.shape[0])
    inputs = xs_t if valid is None else (xs_t, valid)
    state, ys = lax.scan(step, state, inputs, reverse=reverse, unroll=unroll)
    return state, jnp.swapaxes(ys, 0, 1)


def cast_carry(state, dtype):
    """Casts the floating leaves of a carry to the compute dtype (scan needs fixed types)."""
    cast = lambda s: s.astype(dtype) if jnp.issubdtype(jnp.result_type(s), jnp.floating) else s
    return jax.tree.map(cast, state)


def scan_precomputed(split, params, xs, state, lengths, reverse, unroll):
    """A split cell's scan with every step's input projected first (one matmul).

    ``split`` is the cell's :class:`~nnjax.functional.recurrent.CellSplit`; ``xs`` is
    ``(B, T, F)``; the arguments are already checked.
    """
    p = _utils.cast_like(params, xs)
    gx = jnp.einsum("btf,fg->tbg", xs, p["w_x"]) + _utils.expand_to(p[split.input_bias], 3)
    step = lambda carry, gx_t: split.recurrence(p, carry, gx_t)
    return scan_masked(step, state, gx, lengths, reverse, unroll)


__all__ = ["cast_carry", "scan_masked", "scan_precomputed", "valid_mask"]
