"""The per-step GRU over a sequence with a hand-written backward pass (private).

:func:`gru_scan` is :func:`nnjax.functional.gru`'s per-step formulation, built like
``_lstm_scan``: the forward scan keeps the carries ``h_t`` (also the outputs), the gates
``r, z, n`` and ``h_{t-1} w_h + b_h``'s ``n`` block (``h_{t-1}`` is read from the carries);
the backward scan carries only ``dh``, does one matmul per step (``dgh_t @ w_h.T``) and
keeps only the input-side pre-activation gradient ``dgx_t`` (the recurrent one is
``dgx_t`` with its ``n`` block times ``r``); the weight gradients are one
``(H, T*B) @ (T*B, 3H)`` and one ``(in, T*B) @ (T*B, 3H)`` matmul over every step
(accumulated in at least float32). Reverse mode only, like ``_lstm_scan``;
``rnn(gru_cell, ...)`` is the same function differentiated by autodiff.

Under ``fit(precision="bfloat16")`` on YNNPACK's matmuls (an AMX CPU), as the LSTM's
(``_lstm_scan.rounding_for``): both weight gradients, and above
:data:`BFLOAT16_SCAN_ROWS` rows (or from 8 rows where ``w_h`` has
``_lstm_scan.BFLOAT16_SCAN_WEIGHTS`` elements: ``H`` 183 and up) the recurrent matmuls
of both scans (``h @ w_h``, ``dg @ w_h.T``), take bfloat16 operands with float32 sums
(session 39: at every batch size); the input projection (``x @ w_x``, narrow) stays
float32. Train step of ``bench_lstm.py --cell gru``'s classifier (T 64, in 16, H 128),
2-core Intel Xeon with AMX, over float32's: batch 8 0.95-0.97, 32 0.87-0.91, 64
0.73-0.76, 128 0.90-1.02 (before, float32 recurrences on Eigen: 1.01, 0.98, 0.99, 1.13;
``benchmarks/README.md``, session 39). The stacks between the scans are bfloat16 there
too (``Rounding.residuals``: the gates and ``hn`` as bfloat16 bits, ``dgx`` likewise,
the bias gradients its float32 sums): 1.02 -> 0.98, 0.94 -> 0.88, 0.73 -> 0.71, 0.92 ->
0.85 at batch 8, 32, 64, 128 (session 40).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from nnjax.functional._lstm_scan import (
    Rounding,
    _as_bfloat16,
    _hold,
    _matmul,
    _operand,
    _pack,
    _previous,
    _unpack,
    batch_major_outputs,
    previous_stack,
    rounding_for,
    weight_grad,
)
from nnjax.functional.recurrent import Params

BFLOAT16_SCAN_ROWS = 8
"""Rows above which the GRU's per-step matmuls take bfloat16 operands (module docstring).

Train step of the classifier under ``precision``, per-step matmuls bfloat16 / float32
(both with bfloat16 weight gradients and stacks), 2-core Intel Xeon with AMX, session
40: batch 4 1.12, 8 1.02-1.06, 12 0.90, 16 0.84, 32 0.86, 64 0.79, 128 0.77.
"""


def _forward(
    p, xs_t, h0, valid, reverse: bool, unroll: int, keep: bool, pre: bool, rounded: bool,
    packed: bool = False,
):  # fmt: skip
    """Scans the GRU; returns ``(h, hs)`` or, with ``keep``, ``(h, (hs, acts, hns))``.

    With ``pre`` every step's ``x_t @ w_x + b_x`` is one matmul before the scan.

    ``hs`` stacks the carries (held past a sequence's length); ``acts (T, B, 3, H)`` and
    ``hns (T, B, 1, H)`` have shapes of their own so that XLA zero-fills each scan buffer
    separately instead of sharing one fill and copying it. ``rounded``: ``h @ w_h`` takes
    bfloat16 operands (:class:`~nnjax.functional._lstm_scan.Rounding`'s ``scan``);
    ``packed``: ``acts`` and ``hns`` in bfloat16 bits (its ``residuals``).
    """
    w_x, w_h, b_x, b_h = p
    w_h_op = _operand(w_h, rounded)
    if pre:
        xs_t = jnp.einsum("tbf,fg->tbg", xs_t, w_x) + b_x[None, None, :]

    def step(h, inputs):
        x, ok = inputs
        gx = x if pre else x @ w_x + b_x[None, :]
        gh = _matmul(h, w_h_op, rounded) + b_h[None, :]
        xr, xz, xn = jnp.split(gx, 3, axis=-1)
        hr, hz, hn = jnp.split(gh, 3, axis=-1)
        r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        h_new = _hold(ok, (1.0 - z) * n + z * h, h)
        if not keep:
            return h_new, h_new
        return h_new, (
            h_new,
            _pack(jnp.stack([r, z, n], axis=-2), packed),
            _pack(hn, packed)[:, None],
        )

    return lax.scan(step, h0, (xs_t, valid), reverse=reverse, unroll=unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5, 6))
def _gru(p, xs_t, h0, reverse, unroll, pre, rounding, valid):
    h, hs = _forward(p, xs_t, h0, valid, reverse, unroll, False, pre, rounding.scan)
    return hs, h


def _gru_fwd(p, xs_t, h0, reverse, unroll, pre, rounding, valid):
    h, res = _forward(
        p, xs_t, h0, valid, reverse, unroll, True, pre, rounding.scan, rounding.residuals
    )
    return (res[0], h), (p, xs_t, h0, valid, res)


def _gru_bwd(reverse, unroll, pre, rounding: Rounding, saved, cotangents):
    (w_x, w_h, b_x, b_h), xs_t, h0, valid, (hs, acts, hns) = saved
    d_hs, d_h = cotangents
    w_h_t = _operand(w_h.T, rounding.scan)
    packed = rounding.residuals

    def step(dh_out, inputs):
        t, dy, a, hn, ok = inputs
        r, z, n = (_unpack(a[:, k]) for k in range(3))
        hp = _previous(hs, t, h0, reverse)
        dh_in = dh_out + dy
        dh = _hold(ok, dh_in, jnp.zeros_like(dy))
        dan = dh * (1 - z) * (1 - n * n)
        dar = dan * _unpack(hn[:, 0]) * r * (1 - r)
        daz = dh * (hp - n) * z * (1 - z)
        dg_h = jnp.concatenate([dar, daz, dan * r], axis=-1)
        dh_prev = dh * z + _matmul(dg_h, w_h_t, rounding.scan)
        if ok is not None:  # a held step passes the carry's cotangent straight through
            dh_prev = dh_prev + _hold(ok, jnp.zeros_like(dh_in), dh_in)
        return dh_prev, _pack(jnp.concatenate([dar, daz, dan], axis=-1), packed)

    inputs = (jnp.arange(xs_t.shape[0]), d_hs, acts, hns, valid)
    dh0, dgx = lax.scan(step, d_h, inputs, reverse=not reverse, unroll=unroll)
    r, dgx = _unpack(acts[:, :, 0]), _as_bfloat16(dgx)  # packed: multiplied as it is below
    dgh = dgx * jnp.concatenate([jnp.ones_like(r), jnp.ones_like(r), r], axis=-1)
    h_prev = previous_stack(hs, h0, reverse)
    dw_x, db_x = weight_grad(xs_t, dgx, w_x.dtype, rounding.weight_grad or packed)
    dw_h, db_h = weight_grad(h_prev, dgh, w_h.dtype, rounding.weight_grad or packed)
    dxs = _matmul(dgx, w_x.T, packed)
    return (dw_x, dw_h, db_x.astype(b_x.dtype), db_h.astype(b_h.dtype)), dxs, dh0, None


_gru.defvjp(_gru_fwd, _gru_bwd)


def gru_scan(
    p: Params,
    xs: jax.Array,
    h0: jax.Array,
    valid: jax.Array | None,
    reverse: bool,
    unroll: int,
    precompute: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """The GRU over ``xs (B, T, in)`` from ``h0 (B, H)``; arguments already checked and cast.

    Args:
      p: ``{"w_x": (in, 3H), "w_h": (H, 3H), "b_x": (3H,), "b_h": (3H,)}`` in the dtype
        of ``xs``.
      xs: ``(B, T, in)``.
      h0: ``(B, H)`` in the dtype of ``xs``.
      valid: ``(T, B)`` booleans or ``None``, as in ``_lstm_scan.lstm_scan``.
      reverse: scan from the last step to the first.
      unroll: ``lax.scan``'s ``unroll``, for both scans.
      precompute: project every step's input in one matmul before the scan.

    Returns:
      ``(h (B, H), ys (B, T, H))``, as ``rnn(gru_cell, ...)``.

    Example:
      >>> from nnjax.functional.recurrent import gru_cell_init
      >>> p = gru_cell_init(jax.random.key(0), 3, 5)
      >>> h, ys = gru_scan(p, jnp.ones((2, 7, 3)), jnp.zeros((2, 5)), None, False, 1)
      >>> ys.shape
      (2, 7, 5)
    """
    weights = (p["w_x"], p["w_h"], p["b_x"], p["b_h"])
    rounding = rounding_for(xs.shape[0], BFLOAT16_SCAN_ROWS, weights=p["w_h"].size)
    xs_t = jnp.swapaxes(xs, 0, 1)
    hs, h = _gru(weights, xs_t, h0, reverse, unroll, precompute, rounding, valid)
    return h, batch_major_outputs(hs, valid)
