"""The per-step GRU over a sequence with a hand-written backward pass (private).

:func:`gru_scan` is :func:`nnjax.functional.gru`'s per-step formulation, built like
``_lstm_scan``: the forward scan keeps ``h_{t-1}``, the gates ``r, z, n`` and
``h_{t-1} w_h + b_h``'s ``n`` block; the backward scan carries only ``dh`` and does one
matmul per step (``dgh_t @ w_h.T``); the weight gradients are one
``(H, T*B) @ (T*B, 3H)`` and one ``(in, T*B) @ (T*B, 3H)`` matmul over every step
(accumulated in at least float32). Reverse mode only, like ``_lstm_scan``;
``rnn(gru_cell, ...)`` is the same function differentiated by autodiff.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from nnjax.functional._lstm_scan import _hold, weight_grad
from nnjax.functional.recurrent import Params


def _forward(p, xs_t, h0, valid, reverse: bool, unroll: int, keep: bool):
    """Scans the GRU; returns ``(h, (ys (T, B, H), residuals or None))``."""
    w_x, w_h, b_x, b_h = p

    def step(h, inputs):
        x, ok = inputs
        gx = x @ w_x + b_x[None, :]
        gh = h @ w_h + b_h[None, :]
        xr, xz, xn = jnp.split(gx, 3, axis=-1)
        hr, hz, hn = jnp.split(gh, 3, axis=-1)
        r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        h_new = (1.0 - z) * n + z * h
        y = _hold(ok, h_new, jnp.zeros_like(h_new))
        res = (h, jnp.concatenate([r, z, n], axis=-1), hn) if keep else None
        return _hold(ok, h_new, h), (y, res)

    return lax.scan(step, h0, (xs_t, valid), reverse=reverse, unroll=unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _gru(p, xs_t, h0, reverse, unroll, valid):
    h, (ys, _) = _forward(p, xs_t, h0, valid, reverse, unroll, keep=False)
    return ys, h


def _gru_fwd(p, xs_t, h0, reverse, unroll, valid):
    h, (ys, res) = _forward(p, xs_t, h0, valid, reverse, unroll, keep=True)
    return (ys, h), (p, xs_t, valid, res)


def _gru_bwd(reverse, unroll, saved, cotangents):
    (w_x, w_h, b_x, b_h), xs_t, valid, (h_prev, acts, hns) = saved
    d_ys, d_h = cotangents
    w_h_t = w_h.T

    def step(dh_out, inputs):
        dy, hp, a, hn, ok = inputs
        r, z, n = jnp.split(a, 3, axis=-1)
        dh = _hold(ok, dh_out + dy, jnp.zeros_like(dy))
        dan = dh * (1 - z) * (1 - n * n)
        dar = dan * hn * r * (1 - r)
        daz = dh * (hp - n) * z * (1 - z)
        dgx = jnp.concatenate([dar, daz, dan], axis=-1)
        dgh = jnp.concatenate([dar, daz, dan * r], axis=-1)
        dh_prev = dh * z + dgh @ w_h_t
        if ok is not None:  # a held step passes the carry's cotangent straight through
            dh_prev = dh_prev + _hold(ok, jnp.zeros_like(dh_out), dh_out)
        return dh_prev, (dgx, dgh)

    inputs = (d_ys, h_prev, acts, hns, valid)
    dh0, (dgx, dgh) = lax.scan(step, d_h, inputs, reverse=not reverse, unroll=unroll)
    dw_x, db_x = weight_grad(xs_t, dgx, w_x.dtype)
    dw_h, db_h = weight_grad(h_prev, dgh, w_h.dtype)
    dxs = jnp.einsum("tbg,fg->tbf", dgx, w_x)
    return (dw_x, dw_h, db_x.astype(b_x.dtype), db_h.astype(b_h.dtype)), dxs, dh0, None


_gru.defvjp(_gru_fwd, _gru_bwd)


def gru_scan(
    p: Params, xs: jax.Array, h0: jax.Array, valid: jax.Array | None, reverse: bool, unroll: int
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
    ys, h = _gru(weights, jnp.swapaxes(xs, 0, 1), h0, reverse, unroll, valid)
    return h, jnp.swapaxes(ys, 0, 1)
