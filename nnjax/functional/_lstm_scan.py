"""The per-step LSTM over a sequence with a hand-written backward pass (private).

:func:`lstm_scan` is :func:`nnjax.functional.lstm`'s per-step formulation. Its forward
scan does one ``[x_t, h_{t-1}] @ [w_x; w_h]`` matmul per step and keeps, per step, the
concatenated input ``[x_t, h_{t-1}]``, the four gate activations, ``c_{t-1}`` and
``tanh(c_t)``. Its backward scan carries only ``(dh, dc)`` and does one matmul per step
(``dz_t @ w_h.T``); the weight gradient is then ONE ``(in+H, T*B) @ (T*B, 4H)`` matmul
over every step (accumulated in float32), the bias gradient one sum, and the input
gradient one batched matmul. Autodiff of the scan instead accumulates
``[x_t, h_{t-1}]^T dz_t`` inside the reverse loop, four small matmuls per step.

Being a ``jax.custom_vjp``, it supports reverse mode (``grad``, ``vjp``, and reverse
over reverse) but not forward mode (``jvp``, ``jacfwd``); ``rnn(lstm_cell, ...)`` is
the same function differentiated by autodiff.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from nnjax.functional.recurrent import LSTMState, Params


def _hold(valid: jax.Array | None, new: jax.Array, old: jax.Array) -> jax.Array:
    """``new`` where the step is valid (``valid (B,)``), else ``old``."""
    return new if valid is None else jnp.where(valid[:, None], new, old)


def _forward(w_x, w_h, b, xs_t, h0, c0, valid, reverse: bool, unroll: int, keep: bool):
    """Scans the LSTM; returns ``((h, c), (ys (T, B, H), residuals or None))``.

    ``keep``: also return the residuals of the backward pass, computing each step's
    pre-activations as ``[x, h] @ [w_x; w_h]`` (the ``[x, h]`` kept for the weight
    gradient); without, as ``x @ w_x + h @ w_h`` (measured faster forward only).
    """
    w = jnp.concatenate([w_x, w_h], axis=0) if keep else None

    def step(carry, inputs):
        h, c = carry
        x, ok = inputs
        xh = jnp.concatenate([x, h], axis=-1) if keep else None
        z = (xh @ w if keep else x @ w_x + h @ w_h) + b[None, :]
        i, f, g, o = jnp.split(z, 4, axis=-1)
        i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
        c_new = f * c + i * g
        tanh_c = jnp.tanh(c_new)
        h_new = o * tanh_c
        y = _hold(ok, h_new, jnp.zeros_like(h_new))
        out = (h_new, c_new) if ok is None else (_hold(ok, h_new, h), _hold(ok, c_new, c))
        acts = jnp.concatenate([i, f, g, o], axis=-1) if keep else None
        return out, (y, (xh, acts, c, tanh_c) if keep else None)

    return lax.scan(step, (h0, c0), (xs_t, valid), reverse=reverse, unroll=unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def _lstm(w_x, w_h, b, xs_t, h0, c0, reverse, unroll, valid):
    (h, c), (ys, _) = _forward(w_x, w_h, b, xs_t, h0, c0, valid, reverse, unroll, keep=False)
    return ys, h, c


def _lstm_fwd(w_x, w_h, b, xs_t, h0, c0, reverse, unroll, valid):
    (h, c), (ys, res) = _forward(w_x, w_h, b, xs_t, h0, c0, valid, reverse, unroll, keep=True)
    return (ys, h, c), (w_x, w_h, b, valid, res)


def _lstm_bwd(reverse, unroll, saved, cotangents):
    w_x, w_h, b, valid, (xh, acts, c_prev, tanh_c) = saved
    d_ys, d_h, d_c = cotangents
    w_h_t = w_h.T

    def step(carry, inputs):
        dh_out, dc_out = carry
        dy, a, cp, tc, ok = inputs
        i, f, g, o = jnp.split(a, 4, axis=-1)
        dh = _hold(ok, dh_out + dy, jnp.zeros_like(dy))
        dc = _hold(ok, dc_out, jnp.zeros_like(dc_out)) + dh * o * (1 - tc * tc)
        dz = jnp.concatenate(
            [dc * g * i * (1 - i), dc * cp * f * (1 - f), dc * i * (1 - g * g),
             dh * tc * o * (1 - o)],
            axis=-1,
        )  # fmt: skip
        dh_prev, dc_prev = dz @ w_h_t, dc * f
        if ok is not None:  # a held step passes the carry's cotangent straight through
            dh_prev = dh_prev + _hold(ok, jnp.zeros_like(dh_out), dh_out)
            dc_prev = dc_prev + _hold(ok, jnp.zeros_like(dc_out), dc_out)
        return (dh_prev, dc_prev), dz

    inputs = (d_ys, acts, c_prev, tanh_c, valid)
    (dh0, dc0), dz = lax.scan(step, (d_h, d_c), inputs, reverse=not reverse, unroll=unroll)
    dw, db = weight_grad(xh, dz, w_x.dtype)
    n_in = w_x.shape[0]
    db = db.astype(b.dtype)
    dxs = jnp.einsum("tbg,fg->tbf", dz, w_x)
    return dw[:n_in], dw[n_in:], db, dxs, dh0, dc0, None


_lstm.defvjp(_lstm_fwd, _lstm_bwd)


def weight_grad(inputs: jax.Array, d_pre: jax.Array, dtype) -> tuple[jax.Array, jax.Array]:
    """``(sum_t inputs_t^T d_pre_t, sum_t d_pre_t)`` over ``(T, B, *)`` as one matmul.

    Accumulates in at least float32 (a bfloat16 sum over ``T*B`` terms would lose
    digits); the weight gradient is returned in ``dtype``, the bias sum in the
    accumulation dtype.
    """
    k, g = inputs.shape[-1], d_pre.shape[-1]
    acc = jnp.promote_types(d_pre.dtype, jnp.float32)
    dw = lax.dot(inputs.reshape(-1, k).T, d_pre.reshape(-1, g), preferred_element_type=acc)
    return dw.astype(dtype), jnp.sum(d_pre, axis=(0, 1), dtype=acc)


def lstm_scan(
    p: Params,
    xs: jax.Array,
    state: LSTMState,
    valid: jax.Array | None,
    reverse: bool,
    unroll: int,
) -> tuple[LSTMState, jax.Array]:
    """The LSTM over ``xs (B, T, in)`` from ``state``; arguments already checked and cast.

    Args:
      p: ``{"w_x": (in, 4H), "w_h": (H, 4H), "b": (4H,)}`` in the dtype of ``xs``.
      xs: ``(B, T, in)``.
      state: ``LSTMState(h (B, H), c (B, H))`` in the dtype of ``xs``.
      valid: ``(T, B)`` booleans (step ``t`` of sequence ``b`` is within its length),
        or ``None``: past a length the carry is held and the output is zero.
      reverse: scan from the last step to the first.
      unroll: ``lax.scan``'s ``unroll``, for both scans.

    Returns:
      ``(LSTMState(h, c), ys (B, T, H))``, as ``rnn(lstm_cell, ...)``.

    Example:
      >>> from nnjax.functional.recurrent import lstm_cell_init
      >>> p = lstm_cell_init(jax.random.key(0), 3, 5)
      >>> zeros = LSTMState(jnp.zeros((2, 5)), jnp.zeros((2, 5)))
      >>> state, ys = lstm_scan(p, jnp.ones((2, 7, 3)), zeros, None, False, 1)
      >>> ys.shape
      (2, 7, 5)
    """
    xs_t = jnp.swapaxes(xs, 0, 1)
    ys, h, c = _lstm(p["w_x"], p["w_h"], p["b"], xs_t, state.h, state.c, reverse, unroll, valid)
    return LSTMState(h, c), jnp.swapaxes(ys, 0, 1)
