"""Recurrent cells: ``cell(params, carry, x) -> (new_carry, y)`` with ``x (B, in)``.

All three cells share that signature, so :func:`nnjax.functional.rnn` scans any of them.
Each cell also carries a ``zero_carry(params, batch_shape, dtype)`` attribute that
builds the all-zeros initial carry.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from nnjax import _checks, initializers
from nnjax.functional import _utils

Params = dict[str, jax.Array]


class LSTMState(NamedTuple):
    """The carry of :func:`lstm_cell`: hidden state ``h (B, H)`` and cell state ``c (B, H)``."""

    h: jax.Array
    c: jax.Array


def _recurrent_init(
    key, in_features, hidden, gates, *, dtype, kernel_init, recurrent_init
) -> tuple[jax.Array, jax.Array]:
    """Draws ``w_x (in, gates*H)`` and ``w_h (H, gates*H)``, each gate block separately."""
    k_x, k_h = jax.random.split(key)
    kx = jax.random.split(k_x, gates)
    kh = jax.random.split(k_h, gates)
    w_x = jnp.concatenate(
        [initializers.init_param(kernel_init, k, (in_features, hidden), dtype) for k in kx], axis=1
    )
    w_h = jnp.concatenate(
        [initializers.init_param(recurrent_init, k, (hidden, hidden), dtype) for k in kh], axis=1
    )
    return w_x, w_h


def _check_cell(op: str, params: Params, h: jax.Array, x: jax.Array, gates: int) -> int:
    hidden = params["w_h"].shape[0]
    _checks.check_shape(op, "params['w_h']", params["w_h"], (hidden, gates * hidden))
    _checks.check_rank(op, "params['w_x']", params["w_x"], 2)
    _checks.check_shape(op, "params['w_x']", params["w_x"], (None, gates * hidden))
    _checks.check_shape(op, "x", x, (..., params["w_x"].shape[0]))
    _checks.check_shape(op, "carry", h, (*x.shape[:-1], hidden))
    return hidden


def _zero_carry(params: Params, batch_shape: tuple[int, ...], dtype) -> jax.Array:
    return jnp.zeros((*batch_shape, params["w_h"].shape[0]), dtype)


def rnn_cell_init(
    key: jax.Array,
    in_features: int,
    hidden: int,
    *,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer = "glorot_uniform",
    recurrent_init: str | initializers.Initializer = "orthogonal",
) -> Params:
    """Initialises :func:`rnn_cell`: ``{"w_x": (in, H), "w_h": (H, H), "b": (H,)}``.

    Example:
      >>> jax.tree.map(jnp.shape, rnn_cell_init(jax.random.key(0), 3, 5))
      {'b': (5,), 'w_h': (5, 5), 'w_x': (3, 5)}
    """
    w_x, w_h = _recurrent_init(
        key,
        in_features,
        hidden,
        1,
        dtype=dtype,
        kernel_init=kernel_init,
        recurrent_init=recurrent_init,
    )
    return {"w_x": w_x, "w_h": w_h, "b": jnp.zeros((hidden,), dtype)}


def rnn_cell(params: Params, h: jax.Array, x: jax.typing.ArrayLike) -> tuple[jax.Array, jax.Array]:
    """The Elman cell ``h' = tanh(x w_x + h w_h + b)``.

    Args:
      params: ``{"w_x": (in, H), "w_h": (H, H), "b": (H,)}``.
      h: ``(B, H)`` previous hidden state.
      x: ``(B, in)`` input at this step.

    Returns:
      ``(h', h')``, each ``(B, H)``.

    Example:
      >>> params = rnn_cell_init(jax.random.key(0), 3, 5)
      >>> h, y = rnn_cell(params, jnp.zeros((2, 5)), jnp.ones((2, 3)))
      >>> h.shape
      (2, 5)
    """
    x = _utils.as_compute("rnn_cell", x)
    _check_cell("rnn_cell", params, h, x, 1)
    p = _utils.cast_like(params, x)
    h = jnp.tanh(x @ p["w_x"] + h.astype(x.dtype) @ p["w_h"] + _utils.expand_to(p["b"], x.ndim))
    return h, h


rnn_cell.zero_carry = _zero_carry


def lstm_cell_init(
    key: jax.Array,
    in_features: int,
    hidden: int,
    *,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer = "glorot_uniform",
    recurrent_init: str | initializers.Initializer = "orthogonal",
    forget_bias: float = 1.0,
) -> Params:
    """Initialises :func:`lstm_cell`, gate blocks in order i, f, g, o.

    The forget-gate bias starts at ``forget_bias`` (1.0, as in Keras and Jozefowicz et
    al., 2015), the other biases at zero.

    Returns:
      ``{"w_x": (in, 4H), "w_h": (H, 4H), "b": (4H,)}``.

    Example:
      >>> jax.tree.map(jnp.shape, lstm_cell_init(jax.random.key(0), 3, 5))
      {'b': (20,), 'w_h': (5, 20), 'w_x': (3, 20)}
    """
    w_x, w_h = _recurrent_init(
        key,
        in_features,
        hidden,
        4,
        dtype=dtype,
        kernel_init=kernel_init,
        recurrent_init=recurrent_init,
    )
    b = jnp.zeros((4 * hidden,), dtype).at[hidden : 2 * hidden].set(forget_bias)
    return {"w_x": w_x, "w_h": w_h, "b": b}


def lstm_gates(z: jax.Array, c: jax.Array) -> tuple[LSTMState, jax.Array]:
    """The LSTM update from pre-activations ``z = x w_x + h w_h + b`` of shape ``(B, 4H)``."""
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return LSTMState(h, c), h


def lstm_cell(
    params: Params, state: LSTMState, x: jax.typing.ArrayLike
) -> tuple[LSTMState, jax.Array]:
    """The classic LSTM cell (Hochreiter & Schmidhuber; gate blocks i, f, g, o).

    ``i, f, o = σ(·)``, ``g = tanh(·)``, each ``x w_x + h w_h + b`` sliced per gate;
    ``c' = f*c + i*g`` and ``h' = o*tanh(c')``. Identical to PyTorch's ``nn.LSTMCell``
    with ``w_x = weight_ih.T``, ``w_h = weight_hh.T``, ``b = bias_ih + bias_hh``.

    Args:
      params: ``{"w_x": (in, 4H), "w_h": (H, 4H), "b": (4H,)}``.
      state: ``LSTMState(h (B, H), c (B, H))``.
      x: ``(B, in)``.

    Returns:
      ``(LSTMState(h', c'), h')``.

    Example:
      >>> params = lstm_cell_init(jax.random.key(0), 3, 5)
      >>> state = LSTMState(jnp.zeros((2, 5)), jnp.zeros((2, 5)))
      >>> state, h = lstm_cell(params, state, jnp.ones((2, 3)))
      >>> h.shape
      (2, 5)
    """
    x = _utils.as_compute("lstm_cell", x)
    h, c = state
    _check_cell("lstm_cell", params, h, x, 4)
    _checks.check_shape("lstm_cell", "state.c", c, h.shape)
    p = _utils.cast_like(params, x)
    z = x @ p["w_x"] + h.astype(x.dtype) @ p["w_h"] + _utils.expand_to(p["b"], x.ndim)
    return lstm_gates(z, c.astype(x.dtype))


lstm_cell.zero_carry = lambda params, batch_shape, dtype: LSTMState(
    _zero_carry(params, batch_shape, dtype), _zero_carry(params, batch_shape, dtype)
)


def gru_cell_init(
    key: jax.Array,
    in_features: int,
    hidden: int,
    *,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer = "glorot_uniform",
    recurrent_init: str | initializers.Initializer = "orthogonal",
) -> Params:
    """Initialises :func:`gru_cell`, gate blocks in order r, z, n.

    Returns:
      ``{"w_x": (in, 3H), "w_h": (H, 3H), "b_x": (3H,), "b_h": (3H,)}``.

    Example:
      >>> jax.tree.map(jnp.shape, gru_cell_init(jax.random.key(0), 3, 5))
      {'b_h': (15,), 'b_x': (15,), 'w_h': (5, 15), 'w_x': (3, 15)}
    """
    w_x, w_h = _recurrent_init(
        key,
        in_features,
        hidden,
        3,
        dtype=dtype,
        kernel_init=kernel_init,
        recurrent_init=recurrent_init,
    )
    zeros = jnp.zeros((3 * hidden,), dtype)
    return {"w_x": w_x, "w_h": w_h, "b_x": zeros, "b_h": zeros}


def gru_cell(params: Params, h: jax.Array, x: jax.typing.ArrayLike) -> tuple[jax.Array, jax.Array]:
    """The GRU cell in the cuDNN/PyTorch form (gate blocks r, z, n).

    ``r = σ(x W_r + b_xr + h U_r + b_hr)``, ``z = σ(x W_z + b_xz + h U_z + b_hz)``,
    ``n = tanh(x W_n + b_xn + r * (h U_n + b_hn))``, ``h' = (1 - z) * n + z * h``.

    Args:
      params: ``{"w_x": (in, 3H), "w_h": (H, 3H), "b_x": (3H,), "b_h": (3H,)}``.
      h: ``(B, H)``.
      x: ``(B, in)``.

    Returns:
      ``(h', h')``, each ``(B, H)``.

    Example:
      >>> params = gru_cell_init(jax.random.key(0), 3, 5)
      >>> h, _ = gru_cell(params, jnp.zeros((2, 5)), jnp.ones((2, 3)))
      >>> h.shape
      (2, 5)
    """
    x = _utils.as_compute("gru_cell", x)
    _check_cell("gru_cell", params, h, x, 3)
    p = _utils.cast_like(params, x)
    h = h.astype(x.dtype)
    gx = x @ p["w_x"] + _utils.expand_to(p["b_x"], x.ndim)
    return gru_gates(gx, h, p)


def gru_gates(gx: jax.Array, h: jax.Array, p: Params) -> tuple[jax.Array, jax.Array]:
    """The GRU update given the input projection ``gx = x w_x + b_x`` of shape ``(B, 3H)``."""
    gh = h @ p["w_h"] + _utils.expand_to(p["b_h"], h.ndim)
    xr, xz, xn = jnp.split(gx, 3, axis=-1)
    hr, hz, hn = jnp.split(gh, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    h = (1.0 - z) * n + z * h
    return h, h


gru_cell.zero_carry = _zero_carry
