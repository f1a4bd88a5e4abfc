"""The multilayer perceptron."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from nnjax import activations, initializers
from nnjax.errors import ShapeError
from nnjax.nn import _validate
from nnjax.nn._base import recorded
from nnjax.nn.dense import Dense
from nnjax.nn.dropout import Dropout


def flat_rows(owner: str, name: str, x: jax.typing.ArrayLike, features: int) -> jax.Array:
    """``x`` as ``(B, features)`` rows after checking it has a batch axis and ``features``.

    Args:
      owner: the model doing the check, e.g. ``"MLP"``.
      name: the argument's name, e.g. ``"x"``.
      x: ``(B, features)``, or ``(B, d1, d2, ...)`` with ``d1 * d2 * ... == features``
        (flattened); ``B`` may be 0.
      features: the model's input features.

    Returns:
      ``(B, features)``.

    Raises:
      ShapeError: naming ``owner``, ``name``, the shape of ``x`` and the expected one;
        a single example without a batch axis is told to use ``x[None]``. Runs on the
        static shape alone, so also under ``jax.jit``.
    """
    x = jnp.asarray(x)
    shape = tuple(x.shape)
    if len(shape) < 2 or math.prod(shape[1:]) != features:
        single = len(shape) >= 1 and math.prod(shape) == features
        hint = f"; one example needs a batch axis: {name}[None]" if single else ""
        raise ShapeError(
            f"{owner}: argument `{name}` has shape {shape}, expected (B, {features}) or "
            f"(B, d1, d2, ...) with d1 * d2 * ... == {features}: a leading batch axis, "
            f"then {features} features per example{hint}"
        )
    return x if x.ndim == 2 else x.reshape(shape[0], features)


@recorded
class MLP(nnx.Module):
    """A stack of :class:`Dense` layers: ``in -> hidden[0] -> ... -> out``.

    Inputs with more than one feature axis (e.g. ``(B, 28, 28)`` images) are flattened to
    ``(B, in_features)`` first.

    Args:
      in_features: number of input features (after flattening).
      hidden: sizes of the hidden layers, e.g. ``(500, 300, 100)``; may be empty.
      out_features: size of the output (logits; no output activation by default).
      activation: hidden activation, a name or callable (``"relu"``).
      output_activation: activation of the last layer (``None``: logits).
      dropout: dropout rate after each hidden activation (0: none).
      kernel_init: initializer for every kernel.
      param_dtype: dtype of the parameters (float32).
      dtype: compute dtype (``jnp.bfloat16`` for mixed precision), ``None`` for the input's.
      rngs: ``nnx.Rngs`` with ``params`` (and ``dropout`` if ``dropout > 0``) streams.

    Raises:
      ValueError: for non-positive sizes, a ``dropout`` outside ``[0, 1]`` (or NaN) or
        an unknown activation or ``kernel_init`` name.
      TypeError: ``dropout`` is not a real number, an activation or ``kernel_init`` is
        neither a name nor a callable, ``param_dtype`` is not a floating dtype, or
        ``dtype`` is neither ``None`` nor one.

    Example:
      >>> from flax import nnx
      >>> model = MLP(784, (500, 300, 100), 10, rngs=nnx.Rngs(0))
      >>> model(jnp.ones((2, 28, 28))).shape
      (2, 10)
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        *,
        activation: str | activations.Activation = "relu",
        output_activation: str | activations.Activation | None = None,
        dropout: float = 0.0,
        kernel_init: str | initializers.Initializer = "glorot_uniform",
        param_dtype: jnp.dtype = jnp.float32,
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        self.in_features = _validate.positive_int("MLP", "in_features", in_features)
        self.out_features = _validate.positive_int("MLP", "out_features", out_features)
        hidden = _validate.positive_ints("MLP", "hidden", hidden)
        _validate.rate("MLP", "dropout", dropout)
        _validate.activation("MLP", "activation", activation)
        _validate.activation("MLP", "output_activation", output_activation)
        _validate.float_dtype("MLP", "param_dtype", param_dtype)
        _validate.float_dtype("MLP", "dtype", dtype, allow_none=True)
        _validate.initializer("MLP", "kernel_init", kernel_init)
        sizes = [in_features, *hidden, out_features]
        layers = []
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            act = output_activation if i == len(hidden) else activation
            layers.append(
                Dense(
                    n_in,
                    n_out,
                    activation=act,
                    kernel_init=kernel_init,
                    param_dtype=param_dtype,
                    dtype=dtype,
                    rngs=rngs,
                )
            )
        self.layers = nnx.List(layers)
        self.dropouts = nnx.List([Dropout(dropout, rngs=rngs) for _ in hidden] if dropout else [])

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Maps ``(B, ...)`` with ``prod(...) == in_features`` to ``(B, out_features)``.

        Args:
          x: ``(B, in_features)``, or ``(B, d1, d2, ...)`` with ``d1 * d2 * ... ==
            in_features`` (flattened first, e.g. ``(B, 28, 28)`` images), floating
            (any dtype when the model has a compute ``dtype``: it is cast to it).

        Returns:
          ``(B, out_features)`` (logits unless ``output_activation``), in the compute
          dtype (``dtype``, else the dtype of ``x``).

        Raises:
          nnjax.ShapeError: ``x`` has no batch axis (a single example ``(in_features,)``
            is ``x[None]``), or its features (flattened) are not ``in_features``.
            Checked on the static shape, so also under ``jax.jit``.
          TypeError: ``x`` is not floating and the model has no ``dtype``.
        """
        x = flat_rows("MLP", "x", x, self.in_features)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.dropouts):
                x = self.dropouts[i](x)
        return x
