"""A bidirectional recurrent layer (any built-in cell) as a Flax NNX module."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

import nnjax.functional as F
from nnjax import _checks, initializers
from nnjax.functional.bidirectional_rnn import merge_outputs
from nnjax.nn import _validate
from nnjax.nn._base import check_dtypes, compute_dtype
from nnjax.nn._nested import NestedModule
from nnjax.nn.recurrent import final_holds_last, final_output, last_output

_CELLS: dict[str, tuple[Callable[..., tuple[Any, jax.Array]], Callable[..., dict[str, Any]]]] = {
    "rnn": (F.rnn_cell, F.rnn_cell_init),
    "lstm": (F.lstm_cell, F.lstm_cell_init),
    "gru": (F.gru_cell, F.gru_cell_init),
}


class Bidirectional(NestedModule):
    """Reads sequences forwards and backwards with two cells, calling :func:`F.bidirectional`.

    ``nnx.state(layer, nnx.Param)`` is ``{"forward": cell_params, "backward":
    cell_params}``, the dict of :func:`F.bidirectional_init`.

    Args:
      in_features: size ``F`` of each step's input.
      hidden_features: hidden size ``H`` of each direction (formerly ``hidden``).
      cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
      merge: how the two directions combine: ``"concat"`` (``2H``, PyTorch's layout),
        ``"sum"``, ``"mean"`` or ``"mul"``.
      return_sequences: return every step ``(B, T, ·)`` instead of the last.
      return_state: also return ``(forward_final, backward_final)``.
      kernel_init: initializer for the input kernels.
      recurrent_init: initializer for the recurrent kernels.
      param_dtype: dtype of the parameters (float32).
      dtype: compute dtype; ``None`` uses the input's.
      rngs: ``nnx.Rngs`` with a ``params`` stream.

    Raises:
      ValueError: ``in_features`` or ``hidden_features`` is not a positive int, an
        unknown ``cell`` or ``merge``, or an unknown initializer name.
      TypeError: ``return_sequences`` or ``return_state`` is not a bool, a dtype is not
        floating, an initializer is neither a name nor a callable, or ``rngs`` is not
        an ``nnx.Rngs``.

    Example:
      >>> from flax import nnx
      >>> layer = Bidirectional(3, 5, cell="gru", rngs=nnx.Rngs(0))
      >>> layer(jnp.ones((2, 7, 3)), lengths=jnp.array([7, 4])).shape
      (2, 10)
    """

    forward: nnx.Dict  # the forward cell's parameters
    backward: nnx.Dict

    _renamed_args: ClassVar[Mapping[str, str]] = {"hidden": "hidden_features"}

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        *,
        cell: str = "lstm",
        merge: str = "concat",
        return_sequences: bool = False,
        return_state: bool = False,
        kernel_init: str | initializers.Initializer = "glorot_uniform",
        recurrent_init: str | initializers.Initializer = "orthogonal",
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        self.in_features = _validate.positive_int("Bidirectional", "in_features", in_features)
        self.hidden_features = _validate.positive_int(
            "Bidirectional", "hidden_features", hidden_features
        )
        self.cell = _validate.choice("Bidirectional", "cell", cell, tuple(_CELLS))
        self.merge = _validate.choice("Bidirectional", "merge", merge, ("concat", "sum", "mean",
                                                                       "mul"))  # fmt: skip
        self.return_sequences = _checks.check_static_bool(
            "Bidirectional", "return_sequences", return_sequences
        )
        self.return_state = _checks.check_static_bool("Bidirectional", "return_state", return_state)
        check_dtypes("Bidirectional", param_dtype, dtype)
        _validate.initializer("Bidirectional", "kernel_init", kernel_init)
        _validate.initializer("Bidirectional", "recurrent_init", recurrent_init)
        self.dtype = dtype
        self._set_params(
            F.bidirectional_init(
                rngs.params(), _CELLS[self.cell][1], in_features, hidden_features,
                dtype=param_dtype,
                kernel_init=kernel_init, recurrent_init=recurrent_init,
            )
        )  # fmt: skip

    def __call__(
        self,
        xs: jax.typing.ArrayLike,
        state: tuple[Any, Any] | None = None,
        *,
        lengths: jax.typing.ArrayLike | None = None,
    ):
        """Runs both directions over ``xs (B, T, in_features)``.

        Args:
          xs: ``(B, T, in_features)``, floating (any dtype when the layer has a compute
            ``dtype``: it is cast to it).
          state: ``None`` to start both directions from zeros, else a pair
            ``(forward_state, backward_state)``, each the carry of the cell as
            :func:`F.rnn` takes it: an ``LSTMState`` of two ``(B, H)`` arrays for
            ``"lstm"``, a ``(B, H)`` array for ``"gru"`` and ``"rnn"`` (cast to the
            dtype of ``xs``).
          lengths: ``(B,)`` integer valid lengths in ``[0, T]``; the steps after them
            are padding, and the backward direction starts at each sequence's last
            valid step. ``None``: every sequence has ``T`` steps.

        Returns:
          With ``return_sequences``, ``ys (B, T, 2H)`` for ``merge="concat"`` (forward
          features first), else ``(B, T, H)``; without it, the merge of the forward
          output at each sequence's last valid step and the backward output at step
          0, ``(B, 2H)`` or ``(B, H)``. With ``return_state``, ``(output, (forward,
          backward))``, the final states as :func:`F.bidirectional` returns them. All
          in the compute dtype (``dtype``, else the dtype of ``xs``).

        Raises:
          nnjax.ShapeError: ``xs`` is not ``(B, T, in_features)``, ``lengths`` not
            ``(B,)``, or a state of the wrong shape.
          TypeError: ``xs`` is not floating and the layer has no ``dtype``,
            ``lengths`` is not integer, or ``state`` is not a pair (e.g. one
            ``LSTMState``) or a direction's state has the wrong structure.
          ValueError: concrete ``lengths`` outside ``[0, T]``.
        """
        cell = _CELLS[self.cell][0]
        finals, ys = F.bidirectional(
            cell, self.params(), compute_dtype(xs, self.dtype), state, lengths=lengths,
            merge="concat",
        )  # fmt: skip
        fwd, bwd = ys[..., : self.hidden_features], ys[..., self.hidden_features :]
        if not self.return_sequences and final_holds_last(state, lengths, ys.shape[1]):
            fwd, bwd = (final_output(f, ys.dtype) for f in finals)  # the stack left out
        elif not self.return_sequences:
            fwd, bwd = last_output(fwd, lengths, False), last_output(bwd, None, True)
        out = merge_outputs(fwd, bwd, self.merge)
        return (out, finals) if self.return_state else out
