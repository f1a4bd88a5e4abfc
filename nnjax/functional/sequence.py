"""Running recurrent cells over sequences with ``lax.scan``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from nnjax import _checks
from nnjax.functional import _utils
from nnjax.functional.recurrent import LSTMState, lstm_cell, lstm_gates

Cell = Callable[[Any, Any, jax.Array], tuple[Any, jax.Array]]


def zero_carry(cell: Cell, params, batch_shape: tuple[int, ...], dtype=jnp.float32):
    """The all-zeros initial carry of ``cell`` for inputs with leading axes ``batch_shape``.

    Raises:
      TypeError: if ``cell`` has no ``zero_carry`` attribute (a user-defined cell); then
        pass ``state`` explicitly.
    """
    make = getattr(cell, "zero_carry", None)
    if make is None:
        raise TypeError(
            f"rnn: cell {getattr(cell, '__name__', cell)!r} has no `zero_carry` attribute; "
            "pass the initial `state` explicitly"
        )
    return make(params, batch_shape, dtype)


def _check_sequence(op: str, xs: jax.Array) -> jax.Array:
    xs = _utils.as_compute(op, xs)
    _checks.check_rank(op, "xs", xs, 3)
    return xs


def rnn(
    cell: Cell,
    params,
    xs: jax.typing.ArrayLike,
    state=None,
    *,
    reverse: bool = False,
    unroll: int = 1,
):
    """Scans ``cell`` over the time axis of batch-major sequences.

    Args:
      cell: any ``cell(params, carry, x) -> (new_carry, y)``, e.g. ``F.rnn_cell``,
        ``F.lstm_cell`` or ``F.gru_cell``.
      params: the cell's parameters.
      xs: ``(B, T, F)`` inputs.
      state: the initial carry; ``None`` starts from zeros.
      reverse: run from the last step to the first (``ys`` stays in input order).
      unroll: steps unrolled per scan iteration (``lax.scan``'s ``unroll``).

    Returns:
      ``(final_state, ys)`` with ``ys (B, T, H)``.

    Example:
      >>> from nnjax.functional.recurrent import gru_cell, gru_cell_init
      >>> params = gru_cell_init(jax.random.key(0), 3, 5)
      >>> h, ys = rnn(gru_cell, params, jnp.ones((2, 7, 3)))
      >>> ys.shape
      (2, 7, 5)
    """
    xs = _check_sequence("rnn", xs)
    if state is None:
        state = zero_carry(cell, params, xs.shape[:1], xs.dtype)
    step = lambda carry, x: cell(params, carry, x)
    state, ys = lax.scan(step, state, jnp.swapaxes(xs, 0, 1), reverse=reverse, unroll=unroll)
    return state, jnp.swapaxes(ys, 0, 1)


def _default_precompute() -> bool:
    # Hoisting xs @ w_x out of the scan is one large matmul instead of T small ones: a
    # clear win on accelerators. On XLA:CPU the per-step fused version measured faster.
    return jax.default_backend() != "cpu"


def lstm(
    params,
    xs: jax.typing.ArrayLike,
    state: LSTMState | None = None,
    *,
    reverse: bool = False,
    precompute_inputs: bool | None = None,
    unroll: int = 1,
) -> tuple[LSTMState, jax.Array]:
    """Runs the LSTM over a sequence: equal to ``rnn(lstm_cell, ...)``, the fast path.

    Args:
      params: ``{"w_x": (in, 4H), "w_h": (H, 4H), "b": (4H,)}`` from ``F.lstm_cell_init``.
      xs: ``(B, T, in)``.
      state: initial ``LSTMState``; ``None`` starts from zeros.
      reverse: run from the last step to the first.
      precompute_inputs: compute ``xs @ w_x + b`` for all steps in one matmul before the
        scan. ``None`` picks per backend: on for GPU/TPU, off for CPU.
      unroll: steps unrolled per scan iteration.

    Returns:
      ``(final_state, ys)`` with ``ys (B, T, H)``.

    Example:
      >>> from nnjax.functional.recurrent import lstm_cell_init
      >>> params = lstm_cell_init(jax.random.key(0), 3, 5)
      >>> state, ys = lstm(params, jnp.ones((2, 7, 3)))
      >>> ys.shape, state.c.shape
      ((2, 7, 5), (2, 5))
    """
    xs = _check_sequence("lstm", xs)
    if precompute_inputs is None:
        precompute_inputs = _default_precompute()
    if not precompute_inputs:
        return rnn(lstm_cell, params, xs, state, reverse=reverse, unroll=unroll)
    if state is None:
        state = lstm_cell.zero_carry(params, xs.shape[:1], xs.dtype)
    hidden = params["w_h"].shape[0]
    _checks.check_shape("lstm", "params['w_x']", params["w_x"], (xs.shape[-1], 4 * hidden))
    _checks.check_shape("lstm", "state.h", state.h, (xs.shape[0], hidden))
    p = _utils.cast_like(params, xs)
    gx = jnp.einsum("btf,fg->tbg", xs, p["w_x"]) + _utils.expand_to(p["b"], 3)

    def step(carry: LSTMState, gx_t: jax.Array):
        return lstm_gates(gx_t + carry.h @ p["w_h"], carry.c)

    state = LSTMState(state.h.astype(xs.dtype), state.c.astype(xs.dtype))
    state, ys = lax.scan(step, state, gx, reverse=reverse, unroll=unroll)
    return state, jnp.swapaxes(ys, 0, 1)
