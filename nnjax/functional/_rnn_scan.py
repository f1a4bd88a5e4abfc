"""The Elman RNN over a sequence with a hand-written backward pass (private).

:func:`rnn_scan` is what ``nn.RNN`` and ``F.bidirectional(F.rnn_cell, ...)`` run: the
forward scan keeps the stack of hidden states (also the outputs); the backward scan
carries ``dh`` and does one ``da_t @ w_h.T`` per step; the weight gradients are then one
contraction each over every step (``_lstm_scan.weight_grad``), so that under data
parallelism they are summed across devices once, where autodiff of the scanned cell
accumulates them in the reverse loop and XLA sums them at every step.

Being a ``jax.custom_vjp``, it supports reverse mode only; ``F.rnn(F.rnn_cell, ...)``
is the same function differentiated by autodiff (forward mode included).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from nnjax.functional._lstm_scan import _hold, batch_major_outputs, previous_stack, weight_grad
from nnjax.functional.recurrent import Params, rnn_cell
from nnjax.functional.sequence import _run


def _forward(p, xs_t, h0, valid, reverse: bool, unroll: int, pre: bool):
    """Scans the cell; returns ``(h, hs)``. With ``pre`` the inputs are projected first."""
    w_x, w_h, b = p
    if pre:
        xs_t = jnp.einsum("tbf,fh->tbh", xs_t, w_x) + b[None, None, :]

    def step(h, inputs):
        x, ok = inputs
        a = (x if pre else x @ w_x + b[None, :]) + h @ w_h
        h_new = _hold(ok, jnp.tanh(a), h)
        return h_new, h_new

    return lax.scan(step, h0, (xs_t, valid), reverse=reverse, unroll=unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def _rnn(p, xs_t, h0, reverse, unroll, pre, valid):
    h, hs = _forward(p, xs_t, h0, valid, reverse, unroll, pre)
    return hs, h


def _rnn_fwd(p, xs_t, h0, reverse, unroll, pre, valid):
    h, hs = _forward(p, xs_t, h0, valid, reverse, unroll, pre)
    return (hs, h), (p, xs_t, h0, valid, hs)


def _rnn_bwd(reverse, unroll, pre, saved, cotangents):
    (w_x, w_h, b), xs_t, h0, valid, hs = saved
    d_hs, d_h = cotangents
    w_h_t = w_h.T

    def step(dh_out, inputs):
        dy, h_t, ok = inputs
        dh_in = dh_out + dy
        da = _hold(ok, dh_in, jnp.zeros_like(dy)) * (1 - h_t * h_t)
        dh_prev = da @ w_h_t
        if ok is not None:  # a held step passes the carry's cotangent straight through
            dh_prev = dh_prev + _hold(ok, jnp.zeros_like(dh_in), dh_in)
        return dh_prev, da

    dh0, da = lax.scan(step, d_h, (d_hs, hs, valid), reverse=not reverse, unroll=unroll)
    h_prev = previous_stack(hs, h0, reverse)
    dw_x, db = weight_grad(xs_t, da, w_x.dtype)
    dw_h, _ = weight_grad(h_prev, da, w_h.dtype)
    dxs = jnp.einsum("tbh,fh->tbf", da, w_x)
    return (dw_x, dw_h, db.astype(b.dtype)), dxs, dh0, None


_rnn.defvjp(_rnn_fwd, _rnn_bwd)


def rnn_scan(
    p: Params,
    xs: jax.Array,
    h0: jax.Array,
    valid: jax.Array | None,
    reverse: bool,
    unroll: int,
    precompute: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """The Elman RNN over ``xs (B, T, in)`` from ``h0 (B, H)``; arguments checked and cast.

    Args:
      p: ``{"w_x": (in, H), "w_h": (H, H), "b": (H,)}`` in the dtype of ``xs``.
      xs: ``(B, T, in)``.
      h0: ``(B, H)`` in the dtype of ``xs``.
      valid: ``(T, B)`` booleans or ``None``, as in ``_lstm_scan.lstm_scan``.
      reverse: scan from the last step to the first.
      unroll: ``lax.scan``'s ``unroll``, for both scans.
      precompute: project every step's input in one matmul before the scan.

    Returns:
      ``(h (B, H), ys (B, T, H))``, as ``rnn(rnn_cell, ...)``.

    Example:
      >>> from nnjax.functional.recurrent import rnn_cell_init
      >>> p = rnn_cell_init(jax.random.key(0), 3, 5)
      >>> h, ys = rnn_scan(p, jnp.ones((2, 7, 3)), jnp.zeros((2, 5)), None, False, 1)
      >>> ys.shape
      (2, 7, 5)
    """
    weights = (p["w_x"], p["w_h"], p["b"])
    hs, h = _rnn(weights, jnp.swapaxes(xs, 0, 1), h0, reverse, unroll, precompute, valid)
    return h, batch_major_outputs(hs, valid)


def elman(
    params: Params,
    xs: jax.typing.ArrayLike,
    state: jax.Array | None = None,
    *,
    lengths: jax.typing.ArrayLike | None = None,
    reverse: bool = False,
    precompute_inputs: bool | None = None,
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """``F.rnn(F.rnn_cell, ...)`` (same arguments) with :func:`rnn_scan`'s backward pass.

    What ``nn.RNN`` runs; reverse mode only.

    Example:
      >>> from nnjax.functional.recurrent import rnn_cell_init
      >>> h, ys = elman(rnn_cell_init(jax.random.key(0), 3, 5), jnp.ones((2, 7, 3)))
      >>> h.shape, ys.shape
      ((2, 5), (2, 7, 5))
    """
    return _run(
        "rnn", rnn_cell, params, xs, state, lengths, reverse, unroll, precompute_inputs,
        fused=rnn_scan,
    )  # fmt: skip
