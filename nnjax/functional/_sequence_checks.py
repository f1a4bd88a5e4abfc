"""A sequence op's parameters and initial state, read and checked (private).

Split out of :mod:`nnjax.functional.sequence` so that :func:`nnjax.functional.bidirectional`
can name the direction an error is in (``params['forward']['w_h']``, ``state[1]``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from nnjax import _checks
from nnjax.functional import _utils
from nnjax.functional._recurrent_init import read_params
from nnjax.functional.recurrent import Params, check_carry


class Names(NamedTuple):
    """How a sequence op's messages call its parameters and its initial state."""

    params: str = "params"
    state: str = "state"


PLAIN = Names()
"""The names of a one-direction op (``F.rnn``, ``F.lstm``, ``F.gru``)."""


def read_split_args(
    cell: Any, op: str, params: Any, xs: jax.Array, state: Any, names: Names = PLAIN
) -> tuple[Params, Any]:
    """Sequence-level checks for a built-in cell, so errors name ``op``, ``xs`` and ``names``.

    Args:
      cell: a built-in cell (it has ``split`` and ``zero_carry``: ``F.lstm_cell``...).
      op: the public name of the op, for the messages.
      params: the cell's parameters as the user passed them.
      xs: the inputs ``(B, T, in)``, already an array of rank 3.
      state: the initial state, or ``None`` for zeros.
      names: how the messages call ``params`` and ``state``.

    Returns:
      ``(params, state)`` as the cell reads them: arrays (from lists too); ``state``
      zeros for ``None``, for the LSTM an ``LSTMState``, in the dtype of ``xs``.

    Raises:
      TypeError, ValueError, MissingKeyError, nnjax.ShapeError: as
      :func:`~nnjax.functional._recurrent_init.read_params` and
      :func:`~nnjax.functional.recurrent.check_carry` raise them, naming ``op``.

    Example:
      >>> from nnjax.functional.recurrent import gru_cell, gru_cell_init
      >>> p = gru_cell_init(jax.random.key(0), 3, 5)
      >>> params, h = read_split_args(gru_cell, "gru", p, jax.numpy.ones((2, 7, 3)), None)
      >>> h.shape
      (2, 5)
    """
    split = cell.split
    params, in_features, hidden = read_params(op, params, split.gates, split.biases, names.params)
    if state is None:
        state = cell.zero_carry(params, xs.shape[:1], xs.dtype)
    _checks.check_shape(op, "xs", xs, (None, None, in_features))
    if split.name == "lstm_cell" and isinstance(state, tuple | list) and len(state) == 2:
        # h and c read before their shapes are checked: a list has none
        state = tuple(_utils.as_array(op, s, f"{names.state}.{n}") for n, s in zip("hc", state))
    state = check_carry(op, names.state, split, state, (xs.shape[0], hidden))
    read = lambda s: _utils.as_array(op, s, names.state).astype(xs.dtype)
    return params, jax.tree.map(read, state)


__all__ = ["PLAIN", "Names", "read_split_args"]
