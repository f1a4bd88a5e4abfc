"""Shape-only layers (no parameters): flattening and nearest-neighbour upsampling."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from nnjax import _checks
from nnjax.errors import ShapeError
from nnjax.nn import _validate
from nnjax.nn._base import recorded

Rngs = nnx.Rngs | nnx.RngStream | None


@recorded
class Flatten(nnx.Module):
    """Flattens every axis after the batch axis: ``(B, d1, d2, ...) -> (B, d1*d2*...)``.

    Args:
      rngs: accepted and ignored (no parameters, no randomness), so that every layer
        is built alike.

    Raises:
      TypeError: ``rngs`` is none of ``nnx.Rngs``, ``nnx.RngStream``, ``None``.
      nnjax.ShapeError: at call, when ``x`` is a scalar (no batch axis).

    Example:
      >>> Flatten()(jnp.ones((2, 28, 28, 1))).shape
      (2, 784)
    """

    def __init__(self, *, rngs: Rngs = None):
        del rngs  # accepted for a uniform layer signature

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Maps ``(B, ...)`` to ``(B, prod(...))``."""
        x = jnp.asarray(x)
        _checks.check_min_rank("Flatten", "x", x, 1)
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # (-1 fails on an empty batch)


@recorded
class Reshape(nnx.Module):
    """Reshapes the non-batch axes: ``(B, ...) -> (B, *shape)``.

    Args:
      shape: the target shape of one example, e.g. ``(7, 7, 32)`` (positive sizes; no
        ``-1``).
      rngs: accepted and ignored (no parameters, no randomness), so that every layer
        is built alike.

    Raises:
      ValueError: ``shape`` is not a non-empty sequence of positive ints.
      TypeError: ``rngs`` is none of ``nnx.Rngs``, ``nnx.RngStream``, ``None``.
      nnjax.ShapeError: at call, when ``x`` is a scalar or an example of ``x`` does
        not have ``prod(shape)`` elements.

    Example:
      >>> Reshape((7, 7, 2))(jnp.ones((3, 98))).shape
      (3, 7, 7, 2)
    """

    def __init__(self, shape: tuple[int, ...], *, rngs: Rngs = None):
        del rngs  # accepted for a uniform layer signature
        self.shape = _validate.positive_ints("Reshape", "shape", shape, allow_empty=False)

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Maps ``(B, ...)`` with ``prod(...) == prod(shape)`` to ``(B, *shape)``."""
        x = jnp.asarray(x)
        _checks.check_min_rank("Reshape", "x", x, 1)
        if math.prod(x.shape[1:]) != math.prod(self.shape):
            raise ShapeError(
                f"Reshape: argument `x` has shape {tuple(x.shape)}, {math.prod(x.shape[1:])} "
                f"values per example; `shape`={self.shape} needs {math.prod(self.shape)}"
            )
        return x.reshape(x.shape[0], *self.shape)


@recorded
class Upsample2D(nnx.Module):
    """Nearest-neighbour upsampling of NHWC images by an integer factor.

    Args:
      factor: ``(fh, fw)`` or an int; ``(B, H, W, C) -> (B, fh*H, fw*W, C)``.
      rngs: accepted and ignored (no parameters, no randomness), so that every layer
        is built alike.

    Raises:
      ValueError: ``factor`` is not a positive int or a pair of them.
      TypeError: ``rngs`` is none of ``nnx.Rngs``, ``nnx.RngStream``, ``None``.
      nnjax.ShapeError: at call, when ``x`` is not rank 4.

    Example:
      >>> Upsample2D(2)(jnp.ones((1, 7, 7, 3))).shape
      (1, 14, 14, 3)
    """

    def __init__(self, factor: int | tuple[int, int] = 2, *, rngs: Rngs = None):
        del rngs  # accepted for a uniform layer signature
        factor = _validate.positive_ints("Upsample2D", "factor", factor, allow_empty=False)
        if len(factor) > 2:
            raise ValueError(f"Upsample2D: `factor` must be an int or a pair of ints, got {factor}")
        self.factor = factor * 2 if len(factor) == 1 else factor

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        """Maps ``(B, H, W, C)`` to ``(B, fh*H, fw*W, C)``."""
        x = jnp.asarray(x)
        _checks.check_rank("Upsample2D", "x", x, 4)
        return jnp.repeat(jnp.repeat(x, self.factor[0], axis=1), self.factor[1], axis=2)
