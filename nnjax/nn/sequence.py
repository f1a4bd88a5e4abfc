"""Sequence classifiers and regressors on stacked RNN, LSTM or GRU layers."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from nnjax import _checks, activations
from nnjax.nn import _validate
from nnjax.nn._base import recorded
from nnjax.nn.dense import Dense
from nnjax.nn.dropout import Dropout
from nnjax.nn.recurrent import GRU, LSTM, RNN

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


class _SequenceModel(nnx.Module):
    """Stacked recurrent layers, then a dense head on the last step or on every step."""

    integer_inputs: ClassVar[tuple[str, ...]] = ("lengths",)
    """Arguments that take integers: ``fit`` and ``predict`` accept integer ``lengths``."""

    def __init__(
        self,
        in_features: int,
        hidden: int | Sequence[int],
        out_features: int,
        *,
        cell: str = "lstm",
        all_steps: bool = False,
        output_activation: str | activations.Activation | None = None,
        dropout: float = 0.0,
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        owner = type(self).__name__
        hidden = _validate.positive_ints(owner, "hidden", hidden, allow_empty=False)
        _validate.positive_int(owner, "in_features", in_features)
        _validate.positive_int(owner, "out_features", out_features)
        cls = CELLS[_validate.choice(owner, "cell", cell, tuple(CELLS))]
        _validate.rate(owner, "dropout", dropout)
        _validate.activation(owner, "output_activation", output_activation)
        _validate.float_dtype(owner, "param_dtype", param_dtype)
        _validate.float_dtype(owner, "dtype", dtype, allow_none=True)
        self.all_steps = all_steps = _checks.check_static_bool(owner, "all_steps", all_steps)
        sizes = [in_features, *hidden]
        self.recurrent = nnx.List(
            [
                cls(
                    n_in,
                    n_out,
                    return_sequences=all_steps or i < len(hidden) - 1,
                    param_dtype=param_dtype,
                    dtype=dtype,
                    rngs=rngs,
                )
                for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes))
            ]
        )
        self.dropout = Dropout(dropout, rngs=rngs if dropout else None)
        self.head = Dense(
            hidden[-1],
            out_features,
            activation=output_activation,
            param_dtype=param_dtype,
            dtype=dtype,
            rngs=rngs,
        )

    def __call__(
        self, xs: jax.typing.ArrayLike, lengths: jax.typing.ArrayLike | None = None
    ) -> jax.Array:
        """Runs the recurrent layers over ``xs``, then the head.

        Args:
          xs: ``(B, T, in_features)``, or ``(B, T)`` when ``in_features`` is 1; floating.
          lengths: ``(B,)`` integer valid lengths of a padded batch (PyTorch's packed
            sequences), or ``None`` (every sequence is ``T`` long). The head reads each
            sequence's step ``length - 1``; with ``all_steps``, the outputs past a
            length come from zero hidden states (leave them out of the loss: a
            ``loss_fn`` that masks them). ``fit`` passes it from data
            ``((xs, lengths), y)`` or ``({"xs": xs, "lengths": lengths}, y)``.

        Returns:
          ``(B, out_features)``, or ``(B, T, out_features)`` with ``all_steps``, in the
          compute dtype.

        Raises:
          nnjax.ShapeError: ``xs`` is not ``(B, T, in_features)`` (naming the shape
            passed), or ``lengths`` is not ``(B,)``.
          TypeError: ``xs`` is not floating and the model has no ``dtype``, or
            ``lengths`` is not integer.
          ValueError: concrete ``lengths`` outside ``[0, T]``.
        """
        h = jnp.asarray(xs)
        features = self.recurrent[0].in_features
        if h.ndim == 2 and features == 1:
            h = h[..., None]
        else:
            why = f"in_features={features}" + ("; (B, T) is for 1" if h.ndim == 2 else "")
            _checks.check_shape(type(self).__name__, "xs", h, (None, None, features), why=why)
        for layer in self.recurrent:
            h = layer(h, lengths=lengths)
        return self.head(self.dropout(h))


_ARGS = """
    Args:
      in_features: features per step ``F`` (inputs ``(B, T)`` get ``F = 1``).
      hidden: hidden size, or sizes of stacked recurrent layers, e.g. ``(64, 32)``.
      {out}
      cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
      all_steps: predict at every step ``(B, T, ...)`` instead of after the last.
      output_activation: activation of the dense head.
      dropout: dropout rate before the head (0: none).
      param_dtype: dtype of the parameters (float32).
      dtype: compute dtype (e.g. ``jnp.bfloat16``); ``None`` uses the input's.
      rngs: ``nnx.Rngs`` with ``params`` (and ``dropout``) streams.

    Raises:
      ValueError: a size that is not a positive int (``hidden`` empty too), an unknown
        ``cell`` or activation name, or a ``dropout`` outside ``[0, 1]`` or NaN.
      TypeError: ``dropout`` is not a real number, ``all_steps`` is not a bool, an
        ``output_activation`` that is neither a name nor a callable, a dtype is not
        floating, or ``rngs`` is not an ``nnx.Rngs``. Each names the model and the
        argument.
"""


@recorded
class SequenceClassifier(_SequenceModel):  # noqa: D101 (docstring assembled below)
    __doc__ = (
        """Classifies sequences ``(B, T, F)`` into ``out_features`` logits.
"""
        + _ARGS.format(out="out_features: number of classes (the head outputs logits).")
        + """
    Example:
      >>> model = SequenceClassifier(3, 16, 4, cell="gru", rngs=nnx.Rngs(0))
      >>> model(jnp.ones((2, 7, 3))).shape
      (2, 4)
"""
    )

    _renamed_args: ClassVar[dict[str, str]] = {"num_classes": "out_features"}
    # __init__: _SequenceModel's (the same arguments)


@recorded
class SequenceRegressor(_SequenceModel):  # noqa: D101 (docstring assembled below)
    __doc__ = (
        """Regresses ``out_features`` values from sequences ``(B, T, F)``.
"""
        + _ARGS.format(out="out_features: number of predicted values (1).")
        + """
    Example:
      >>> model = SequenceRegressor(1, 20, all_steps=True, rngs=nnx.Rngs(0))
      >>> model(jnp.ones((2, 50, 1))).shape
      (2, 50, 1)
"""
    )

    def __init__(
        self,
        in_features: int,
        hidden: int | Sequence[int],
        out_features: int = 1,
        *,
        cell: str = "lstm",
        all_steps: bool = False,
        output_activation: str | activations.Activation | None = None,
        dropout: float = 0.0,
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        super().__init__(
            in_features,
            hidden,
            out_features,
            cell=cell,
            all_steps=all_steps,
            output_activation=output_activation,
            dropout=dropout,
            param_dtype=param_dtype,
            dtype=dtype,
            rngs=rngs,
        )
