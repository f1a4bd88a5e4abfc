"""Checks of a recurrent cell's carry and of its one-step input (private).

Used by :mod:`nnjax.functional.recurrent` (the cells, and its ``check_carry``, which
``nnjax.functional.sequence`` calls for a whole sequence's initial state).
"""

from __future__ import annotations

from typing import Any

from nnjax import _checks
from nnjax.errors import ShapeError
from nnjax.functional._recurrent_cell import CellSplit

#: What to call instead of a cell for a whole sequence ``xs (B, T, in)``.
_SEQUENCE_OPS = {
    "lstm_cell": "F.lstm(params, xs, state)",
    "gru_cell": "F.gru(params, xs, h)",
    "rnn_cell": "F.rnn(F.rnn_cell, params, xs, h)",
}


def check_carry_leaves(
    op: str, name: str, split: CellSplit, carry: Any, shape: tuple, x_shape: tuple | None = None
) -> Any:
    """Checks the carry ``name``: an ``(h, c)`` pair for ``lstm_cell``, else one array.

    Args:
      op: the public name of the op, for the messages.
      name: how the carry is called (``"state"``, ``"h"``).
      split: the cell's :class:`CellSplit` (its ``name`` tells the LSTM apart).
      carry: the value passed.
      shape: the shape every array of the carry must have.
      x_shape: a cell's one-step input's shape, or ``None`` (a sequence op's state):
        with it, an ``x`` of higher rank than the carry (a sequence passed to a cell)
        is the error, not the carry.

    Returns:
      ``(h, c)`` as a tuple for the LSTM (the caller makes it an ``LSTMState``), else
      ``carry`` as it is.

    Raises:
      TypeError: the wrong structure, naming ``op`` and ``name``.
      ShapeError: a wrong shape (of ``x`` as above, else of the carry).

    Example:
      >>> split = CellSplit("gru_cell", 3, ("b_x", "b_h"), "b_x", None)
      >>> try:
      ...     check_carry_leaves("gru_cell", "h", split, np.zeros((2, 4)), (2, 5, 4), (2, 5, 3))
      ... except ShapeError as err:
      ...     print(str(err).split(": a cell")[0])
      gru_cell: argument `x` has shape (2, 5, 3) (rank 3), expected rank 2 as `h` has shape (2, 4)
    """
    if split.name == "lstm_cell":
        if not isinstance(carry, tuple | list) or len(carry) != 2:
            raise TypeError(
                f"{op}: `{name}` must be an LSTMState(h, c) (or an (h, c) pair), "
                f"got {describe(carry)}"
            )
        leaves, names = tuple(carry), [f"{name}.h", f"{name}.c"]
    else:
        if isinstance(carry, tuple | list | dict) or not hasattr(carry, "shape"):
            raise TypeError(
                f"{op}: `{name}` must be one array h of shape {shape}, got {describe(carry)}"
            )
        leaves, names = (carry,), [name]
    if x_shape is not None:
        _check_step_input(split.name, x_shape, names[0], leaves[0])
    for leaf_name, leaf in zip(names, leaves):
        _checks.check_shape(op, leaf_name, leaf, shape)
    return leaves if split.name == "lstm_cell" else carry


def _check_step_input(op: str, x_shape: tuple, name: str, leaf: Any) -> None:
    """Raises if ``x`` has 3+ axes and more than the carry: a sequence given to a cell.

    (PyTorch's ``LSTMCell`` likewise rejects a 3-D input.) A cell takes ``x (..., in)``
    with the carry's batch axes, so a carry of matching rank passes.
    """
    leaf_shape = getattr(leaf, "shape", None)
    if leaf_shape is None or len(x_shape) < 3 or len(leaf_shape) >= len(x_shape):
        return
    raise ShapeError(
        f"{op}: argument `x` has shape {tuple(x_shape)} (rank {len(x_shape)}), expected "
        f"rank {len(leaf_shape)} as `{name}` has shape {tuple(leaf_shape)}: a cell takes "
        f"one time step, x (B, in); for a whole sequence xs (B, T, in) use "
        f"{_SEQUENCE_OPS.get(op, f'F.rnn(F.{op}, params, xs, carry)')}"
    )


def describe(value: Any) -> str:
    """``"an array of shape (2, 5)"``, ``"an LSTMState"`` or the value's repr (messages).

    Example:
      >>> describe(np.zeros((2, 5))), describe([1, 2])
      ('an array of shape (2, 5)', '[1, 2]')
    """
    if type(value).__name__ == "LSTMState":
        return "an LSTMState"
    shape = getattr(value, "shape", None)
    return repr(value)[:80] if shape is None else f"an array of shape {tuple(shape)}"
