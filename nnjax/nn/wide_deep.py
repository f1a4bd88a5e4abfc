"""The Wide & Deep network (Cheng et al., 2016): the input skips past the deep path."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from nnjax import _checks, activations
from nnjax.errors import ShapeError
from nnjax.nn import _validate
from nnjax.nn._base import recorded
from nnjax.nn.dense import Dense
from nnjax.nn.mlp import MLP


@recorded
class WideAndDeep(nnx.Module):
    """``head(concat([x_wide, deep(x_deep)]))``, with ``deep`` an MLP of ReLU layers.

    Called with one input, that input feeds both paths; called as
    ``model(x_wide, x_deep)`` (give ``deep_features``), each path gets its own.

    Args:
      in_features: features of the wide input (and of the deep one by default).
      hidden: sizes of the deep path's layers, e.g. ``(30, 30)``.
      out_features: size of the output (1 for regression).
      deep_features: features of a separate deep input (``None``: the same input).
      activation: activation of the deep path.
      output_activation: activation of the head (``None``: linear).
      param_dtype: dtype of the parameters (float32).
      dtype: compute dtype; ``None`` uses the input's.
      rngs: ``nnx.Rngs`` with a ``params`` stream.

    Raises:
      ValueError: a bad argument, named as ``WideAndDeep``'s (e.g. ``hidden=()`` or an
        unknown activation name). Calls raise ``ShapeError`` naming ``x_wide`` or
        ``x_deep`` for inputs of another shape (see :meth:`__call__`).
      TypeError: ``param_dtype`` is not a floating dtype, or ``dtype`` is neither
        ``None`` nor one.

    Example:
      >>> model = WideAndDeep(8, (30, 30), 1, rngs=nnx.Rngs(0))
      >>> model(jnp.ones((4, 8))).shape
      (4, 1)
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (30, 30),
        out_features: int = 1,
        *,
        deep_features: int | None = None,
        activation: str | activations.Activation = "relu",
        output_activation: str | activations.Activation | None = None,
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        hidden = _validate.positive_ints("WideAndDeep", "hidden", hidden, allow_empty=False)
        in_features = _validate.positive_int("WideAndDeep", "in_features", in_features)
        _validate.positive_int("WideAndDeep", "out_features", out_features)
        if deep_features is not None:
            _validate.positive_int("WideAndDeep", "deep_features", deep_features)
        _validate.activation("WideAndDeep", "activation", activation)
        _validate.activation("WideAndDeep", "output_activation", output_activation)
        _validate.float_dtype("WideAndDeep", "param_dtype", param_dtype)
        _validate.float_dtype("WideAndDeep", "dtype", dtype, allow_none=True)
        deep_in = in_features if deep_features is None else deep_features
        kw: dict[str, Any] = dict(param_dtype=param_dtype, dtype=dtype, rngs=rngs)
        self.deep = MLP(
            deep_in,
            hidden[:-1],
            hidden[-1],
            activation=activation,
            output_activation=activation,
            **kw,
        )
        self.head = Dense(
            in_features + hidden[-1], out_features, activation=output_activation, **kw
        )
        self.two_inputs = deep_features is not None

    def __call__(
        self, x_wide: jax.typing.ArrayLike, x_deep: jax.typing.ArrayLike | None = None
    ) -> jax.Array:
        """Maps ``(B, in_features)`` (and ``(B, deep_features)``) to ``(B, out_features)``.

        Args:
          x_wide: ``(B, in_features)``; also the deep input when ``x_deep`` is ``None``.
          x_deep: ``(B, deep_features)`` (``(B, ...)`` is flattened to ``deep_features``,
            as :class:`MLP` does), with the batch size of ``x_wide``; required when the
            model was built with ``deep_features``.

        Returns:
          ``(B, out_features)`` in the compute dtype.

        Raises:
          ValueError: ``x_deep`` is missing although the model was built with
            ``deep_features``.
          ShapeError: ``x_wide`` is not ``(B, in_features)``, or ``x_deep`` does not have
            ``deep_features`` per row or the batch size of ``x_wide`` (names both shapes).
            Checked on static shapes, so also under ``jax.jit``.
        """
        if self.two_inputs and x_deep is None:
            raise ValueError("WideAndDeep: built with `deep_features`; call model(x_wide, x_deep)")
        x_wide = jnp.asarray(x_wide)
        wide_in = self.head.in_features - self.deep.out_features
        why = "a leading batch axis; one example is x_wide[None]" if x_wide.ndim < 2 else ""
        _checks.check_shape("WideAndDeep", "x_wide", x_wide, (None, wide_in), why=why)
        if x_deep is not None:
            x_deep = jnp.asarray(x_deep)
            _check_deep_input(x_wide, x_deep, self.deep.in_features)
        deep = self.deep(x_wide if x_deep is None else x_deep)
        return self.head(jnp.concatenate([x_wide, deep.astype(x_wide.dtype)], axis=-1))


def _check_deep_input(x_wide: jax.Array, x_deep: jax.Array, deep_in: int) -> None:
    """Raises unless ``x_deep`` is ``(B, ...)`` with ``deep_in`` features and ``x_wide``'s ``B``."""
    shape, batch = tuple(x_deep.shape), x_wide.shape[0]
    if len(shape) < 2 or shape[0] != batch or math.prod(shape[1:]) != deep_in:
        raise ShapeError(
            f"WideAndDeep: argument `x_deep` has shape {shape}, expected ({batch}, {deep_in}): "
            f"{deep_in} deep features for each of the {batch} rows of `x_wide` (shape "
            f"{tuple(x_wide.shape)})"
        )
