"""Recurrent cells: ``cell(params, carry, x) -> (new_carry, y)`` with ``x (B, in)``.

All three cells share that signature, so :func:`nnjax.functional.rnn` scans any of them.
Each built-in cell also carries two attributes:

* ``zero_carry(params, batch_shape, dtype)``: the all-zeros initial carry;
* ``split``: a :class:`CellSplit` that splits the cell into its input projection
  ``x @ w_x + b`` and its recurrence, so that sequence ops can project every step's
  input in one matmul before the scan (see :func:`nnjax.functional.lstm`).

A cell *is* ``split.recurrence(params, carry, x @ w_x + params[split.input_bias])``
after its checks and the cast to the compute dtype: both formulations run the same code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from nnjax import _checks, initializers
from nnjax._deprecation import renamed_args
from nnjax.functional import _utils
from nnjax.functional._recurrent_carry import check_carry_leaves
from nnjax.functional._recurrent_cell import Cell as Cell
from nnjax.functional._recurrent_cell import CellSplit as CellSplit
from nnjax.functional._recurrent_cell import Params as Params
from nnjax.functional._recurrent_cell import built_in_cell
from nnjax.functional._recurrent_init import draw_weights, read_params


class LSTMState(NamedTuple):
    """The carry of :func:`lstm_cell`: hidden state ``h (B, H)`` and cell state ``c (B, H)``.

    A ``NamedTuple`` (a pytree; ``h, c = state``); the cells and ``lstm`` take ``(h, c)`` too.

    Attributes:
      h: ``(B, H)`` hidden state (the cell's output), floating; the cells return it in
        the dtype of their input ``x``.
      c: ``(B, H)`` cell state, the same shape and dtype as ``h``.

    Example:
      >>> state = LSTMState(h=jnp.zeros((2, 5)), c=jnp.ones((2, 5)))
      >>> h, c = state
      >>> h.shape, c.dtype
      ((2, 5), dtype('float32'))
      >>> params = lstm_cell_init(jax.random.key(0), 3, 5)
      >>> new, y = lstm_cell(params, state, jnp.ones((2, 3)))
      >>> type(new).__name__, bool((new.h == y).all())
      ('LSTMState', True)
    """

    h: jax.Array
    c: jax.Array


def _apply_cell(split: CellSplit, params: Params, carry, x: jax.typing.ArrayLike, name: str):
    """Checks, casts to the dtype of ``x``, projects ``x`` and runs the recurrence."""
    x = _utils.as_compute(split.name, x)
    params, _, hidden = read_params(split.name, params, split.gates, split.biases)
    _checks.check_min_rank(split.name, "x", x, 1)
    _checks.check_shape(split.name, "x", x, (..., params["w_x"].shape[0]))
    carry = check_carry(split.name, name, split, carry, (*x.shape[:-1], hidden), x.shape)
    p = _utils.cast_like(params, x)
    carry = jax.tree.map(lambda s: s.astype(x.dtype), carry)
    gx = x @ p["w_x"] + _utils.expand_to(p[split.input_bias], x.ndim)
    return split.recurrence(p, carry, gx)


def check_carry(op: str, name: str, split: CellSplit, carry, shape: tuple, x_shape=None) -> Any:
    """The carry ``name``: an LSTMState (from an ``(h, c)`` pair) or one array, each ``shape``.

    With ``x_shape`` (a cell's step input) a sequence ``x`` is the error, not the carry.

    Raises:
      TypeError: the wrong structure, naming ``op`` and ``name``; ShapeError: a wrong shape.
    """
    carry = check_carry_leaves(op, name, split, carry, shape, x_shape)
    return LSTMState(*carry) if split.name == "lstm_cell" else carry


def _zero_carry(split: CellSplit):
    """The cell's ``zero_carry`` (``H`` from ``w_h``); the scanning op checks ``params``.

    Only a ``params`` without a 2-D ``w_h`` is checked here, the errors naming the cell.
    """

    def zero_carry(params: Params, batch_shape: tuple[int, ...], dtype) -> Any:
        w_h: Any = params.get("w_h") if isinstance(params, Mapping) else None
        if getattr(w_h, "ndim", None) != 2:  # raises, naming what is wrong (or reads a list)
            w_h = read_params(split.name, params, split.gates, split.biases)[0]["w_h"]
        h = jnp.zeros((*batch_shape, w_h.shape[0]), dtype)
        return LSTMState(h, h) if split.name == "lstm_cell" else h

    return zero_carry


# --------------------------------------------------------------------------- Elman RNN


@renamed_args(hidden="hidden_features")
def rnn_cell_init(
    key: jax.Array,
    in_features: int,
    hidden_features: int,
    *,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer = "glorot_uniform",
    recurrent_init: str | initializers.Initializer = "orthogonal",
) -> Params:
    """Initialises :func:`rnn_cell`: ``{"w_x": (in, H), "w_h": (H, H), "b": (H,)}``.

    ``hidden_features`` is ``H``; the old keyword ``hidden`` still works, with a
    :class:`DeprecationWarning`.

    Args:
      key: a PRNG key.
      in_features: ``in``, the size of each step's input.
      hidden_features: ``H``, the size of the hidden state.
      dtype: the parameters' floating dtype.
      kernel_init: initializer (or its name) of ``w_x``.
      recurrent_init: initializer (or its name) of ``w_h``, drawn per ``(H, H)`` block.

    Returns:
      ``{"w_x": (in, H), "w_h": (H, H), "b": (H,)}`` in ``dtype``; ``b`` is zeros.

    Raises:
      ValueError: a size that is not a positive int, or an unknown initializer name.
      TypeError: a ``key`` that is not a PRNG key, a non-floating ``dtype``, or an
        initializer that is neither a name nor a callable.
      nnjax.ShapeError: an initializer that cannot draw an ``(n, H)`` block.

    Example:
      >>> jax.tree.map(jnp.shape, rnn_cell_init(jax.random.key(0), 3, 5))
      {'b': (5,), 'w_h': (5, 5), 'w_x': (3, 5)}
    """
    w_x, w_h = draw_weights(
        key, in_features, hidden_features, 1, dtype=dtype, kernel_init=kernel_init,
        recurrent_init=recurrent_init,
    )  # fmt: skip
    return {"w_x": w_x, "w_h": w_h, "b": jnp.zeros((hidden_features,), dtype)}


def _rnn_recurrence(p: Params, h: jax.Array, gx: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = jnp.tanh(gx + h @ p["w_h"])
    return h, h


_RNN = CellSplit("rnn_cell", 1, ("b",), "b", _rnn_recurrence)


@built_in_cell(_RNN, _zero_carry(_RNN))
def rnn_cell(params: Params, h: jax.Array, x: jax.typing.ArrayLike) -> tuple[jax.Array, jax.Array]:
    """The Elman cell ``h' = tanh(x w_x + h w_h + b)``; PyTorch's ``nn.RNNCell`` (tanh).

    Equal to PyTorch with ``w_x = weight_ih.T``, ``w_h = weight_hh.T`` and
    ``b = bias_ih + bias_hh``. Computes in the dtype of ``x``.

    Args:
      params: ``{"w_x": (in, H), "w_h": (H, H), "b": (H,)}`` (cast to the dtype of ``x``).
      h: ``(B, H)`` previous hidden state, floating (cast to the dtype of ``x``).
      x: ``(B, in)`` input at this step, floating: the compute dtype.

    Returns:
      ``(h', h')``, each ``(B, H)`` in the dtype of ``x``.

    Raises:
      nnjax.ShapeError, ValueError, TypeError: a wrong shape (a sequence as ``x`` too:
        use :func:`nnjax.functional.rnn`; a weight in PyTorch's layout is named so), a
        missing (a ``KeyError`` too) or unknown key, ``x`` not floating, ``h`` not one
        array, or ``params`` not a dict of arrays (lists and NumPy arrays are read).

    Example:
      >>> params = rnn_cell_init(jax.random.key(0), 3, 5)
      >>> h, y = rnn_cell(params, jnp.zeros((2, 5)), jnp.ones((2, 3)))
      >>> h.shape
      (2, 5)
    """
    return _apply_cell(rnn_cell.split, params, h, x, "h")


# --------------------------------------------------------------------------- LSTM


@renamed_args(hidden="hidden_features")
def lstm_cell_init(
    key: jax.Array,
    in_features: int,
    hidden_features: int,
    *,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer = "glorot_uniform",
    recurrent_init: str | initializers.Initializer = "orthogonal",
    forget_bias: float = 1.0,
) -> Params:
    """Initialises :func:`lstm_cell`, gate blocks in order i, f, g, o.

    ``hidden_features`` is ``H``; the old keyword ``hidden`` still works, with a
    :class:`DeprecationWarning`.

    The forget-gate bias starts at ``forget_bias`` (1.0, as in Keras and Jozefowicz et
    al., 2015), the other biases at zero; each gate's ``(H, H)`` recurrent block is
    orthogonal.

    Args:
      key: a PRNG key.
      in_features: ``in``, the size of each step's input.
      hidden_features: ``H``, the size of the hidden state.
      dtype: the parameters' floating dtype.
      kernel_init: initializer (or its name) of ``w_x``.
      recurrent_init: initializer (or its name) of ``w_h``, drawn per ``(H, H)`` block.
      forget_bias: the initial value of the forget gate's bias block.

    Returns:
      ``{"w_x": (in, 4H), "w_h": (H, 4H), "b": (4H,)}`` in ``dtype``.

    Raises:
      ValueError, TypeError, nnjax.ShapeError: as :func:`rnn_cell_init`.

    Example:
      >>> jax.tree.map(jnp.shape, lstm_cell_init(jax.random.key(0), 3, 5))
      {'b': (20,), 'w_h': (5, 20), 'w_x': (3, 20)}
    """
    w_x, w_h = draw_weights(
        key, in_features, hidden_features, 4, dtype=dtype, kernel_init=kernel_init,
        recurrent_init=recurrent_init,
    )  # fmt: skip
    h = hidden_features
    b = jnp.zeros((4 * h,), dtype).at[h : 2 * h].set(forget_bias)
    return {"w_x": w_x, "w_h": w_h, "b": b}


def lstm_gates(z: jax.Array, c: jax.Array) -> tuple[LSTMState, jax.Array]:
    """The LSTM update from the pre-activations ``z = x w_x + h w_h + b``.

    Args:
      z: ``(B, 4H)``, gate blocks i, f, g, o.
      c: ``(B, H)`` previous cell state.

    Returns:
      ``(LSTMState(h', c'), h')``.

    Example:
      >>> state, h = lstm_gates(jnp.zeros((2, 20)), jnp.ones((2, 5)))
      >>> float(state.c[0, 0])  # f = σ(0) = 0.5 keeps half of c; i * g = 0.5 * 0
      0.5
    """
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return LSTMState(h, c), h


def _lstm_recurrence(p: Params, state: LSTMState, gx: jax.Array) -> tuple[LSTMState, jax.Array]:
    return lstm_gates(gx + state.h @ p["w_h"], state.c)


_LSTM = CellSplit("lstm_cell", 4, ("b",), "b", _lstm_recurrence)


@built_in_cell(_LSTM, _zero_carry(_LSTM))
def lstm_cell(
    params: Params, state: LSTMState, x: jax.typing.ArrayLike
) -> tuple[LSTMState, jax.Array]:
    """The classic LSTM cell (Hochreiter & Schmidhuber; gate blocks i, f, g, o).

    ``i, f, o = σ(·)``, ``g = tanh(·)``, each ``x w_x + h w_h + b`` sliced per gate;
    ``c' = f*c + i*g`` and ``h' = o*tanh(c')``. Identical to PyTorch's ``nn.LSTMCell``
    with ``w_x = weight_ih.T``, ``w_h = weight_hh.T``, ``b = bias_ih + bias_hh``.

    Args:
      params: ``{"w_x": (in, 4H), "w_h": (H, 4H), "b": (4H,)}``.
      state: ``LSTMState(h (B, H), c (B, H))`` (a plain ``(h, c)`` tuple is accepted),
        floating (cast to the dtype of ``x``).
      x: ``(B, in)``, floating: the compute dtype.

    Returns:
      ``(LSTMState(h', c'), h')``, each array ``(B, H)`` in the dtype of ``x``.

    Raises:
      nnjax.ShapeError, ValueError, TypeError: as :func:`rnn_cell` (``state``: ``(h, c)``).

    Example:
      >>> params = lstm_cell_init(jax.random.key(0), 3, 5)
      >>> state = LSTMState(jnp.zeros((2, 5)), jnp.zeros((2, 5)))
      >>> state, h = lstm_cell(params, state, jnp.ones((2, 3)))
      >>> h.shape
      (2, 5)
    """
    return _apply_cell(lstm_cell.split, params, state, x, "state")


# --------------------------------------------------------------------------- GRU


@renamed_args(hidden="hidden_features")
def gru_cell_init(
    key: jax.Array,
    in_features: int,
    hidden_features: int,
    *,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer = "glorot_uniform",
    recurrent_init: str | initializers.Initializer = "orthogonal",
) -> Params:
    """Initialises :func:`gru_cell`, gate blocks in order r, z, n; zero biases.

    ``hidden_features`` is ``H``; the old keyword ``hidden`` still works, with a
    :class:`DeprecationWarning`.

    Args:
      key: a PRNG key.
      in_features: ``in``, the size of each step's input.
      hidden_features: ``H``, the size of the hidden state.
      dtype: the parameters' floating dtype.
      kernel_init: initializer (or its name) of ``w_x``.
      recurrent_init: initializer (or its name) of ``w_h``, drawn per ``(H, H)`` block.

    Returns:
      ``{"w_x": (in, 3H), "w_h": (H, 3H), "b_x": (3H,), "b_h": (3H,)}`` in ``dtype``.

    Raises:
      ValueError, TypeError, nnjax.ShapeError: as :func:`rnn_cell_init`.

    Example:
      >>> jax.tree.map(jnp.shape, gru_cell_init(jax.random.key(0), 3, 5))
      {'b_h': (15,), 'b_x': (15,), 'w_h': (5, 15), 'w_x': (3, 15)}
    """
    w_x, w_h = draw_weights(
        key, in_features, hidden_features, 3, dtype=dtype, kernel_init=kernel_init,
        recurrent_init=recurrent_init,
    )  # fmt: skip
    b_x = jnp.zeros((3 * hidden_features,), dtype)
    b_h = jnp.zeros((3 * hidden_features,), dtype)
    return {"w_x": w_x, "w_h": w_h, "b_x": b_x, "b_h": b_h}


def gru_gates(gx: jax.Array, h: jax.Array, p: Params) -> tuple[jax.Array, jax.Array]:
    """The GRU update given the input projection ``gx = x w_x + b_x``.

    Args:
      gx: ``(B, 3H)``, gate blocks r, z, n.
      h: ``(B, H)`` previous hidden state.
      p: the cell's parameters (``w_h (H, 3H)`` and ``b_h (3H,)`` are used), in the
        dtype of ``gx``.

    Returns:
      ``(h', h')``.

    Example:
      >>> p = gru_cell_init(jax.random.key(0), 3, 5)
      >>> h, _ = gru_gates(jnp.zeros((2, 15)), jnp.ones((2, 5)), p)
      >>> h.shape
      (2, 5)
    """
    gh = h @ p["w_h"] + _utils.expand_to(p["b_h"], h.ndim)
    xr, xz, xn = jnp.split(gx, 3, axis=-1)
    hr, hz, hn = jnp.split(gh, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    h = (1.0 - z) * n + z * h
    return h, h


_GRU = CellSplit("gru_cell", 3, ("b_x", "b_h"), "b_x", lambda p, h, gx: gru_gates(gx, h, p))


@built_in_cell(_GRU, _zero_carry(_GRU))
def gru_cell(params: Params, h: jax.Array, x: jax.typing.ArrayLike) -> tuple[jax.Array, jax.Array]:
    """The GRU cell in the cuDNN/PyTorch form (gate blocks r, z, n).

    ``r = σ(x W_r + b_xr + h U_r + b_hr)``, ``z = σ(x W_z + b_xz + h U_z + b_hz)``,
    ``n = tanh(x W_n + b_xn + r * (h U_n + b_hn))``, ``h' = (1 - z) * n + z * h``.
    Identical to PyTorch's ``nn.GRUCell`` with ``w_x = weight_ih.T``,
    ``w_h = weight_hh.T``, ``b_x = bias_ih``, ``b_h = bias_hh``.

    Args:
      params: ``{"w_x": (in, 3H), "w_h": (H, 3H), "b_x": (3H,), "b_h": (3H,)}``.
      h: ``(B, H)`` previous hidden state, floating (cast to the dtype of ``x``).
      x: ``(B, in)``, floating: the compute dtype.

    Returns:
      ``(h', h')``, each ``(B, H)`` in the dtype of ``x``.

    Raises:
      nnjax.ShapeError, ValueError, TypeError: as :func:`rnn_cell`.

    Example:
      >>> params = gru_cell_init(jax.random.key(0), 3, 5)
      >>> h, _ = gru_cell(params, jnp.zeros((2, 5)), jnp.ones((2, 3)))
      >>> h.shape
      (2, 5)
    """
    return _apply_cell(gru_cell.split, params, h, x, "h")
