"""Global average and max pooling: one value per channel over every spatial axis."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nnjax import _checks
from nnjax.errors import ShapeError
from nnjax.functional import _utils


def _spatial_axes(op: str, x: jax.Array) -> tuple[int, ...]:
    _checks.check_min_rank(op, "x", x, 3)
    axes = tuple(range(1, x.ndim - 1))
    if any(x.shape[a] == 0 for a in axes):
        raise ShapeError(
            f"{op}: argument `x` has shape {x.shape}, a spatial axis of size 0: nothing to pool"
        )
    return axes


def global_avg_pool(x: jax.typing.ArrayLike, *, keepdims: bool = False) -> jax.Array:
    """Averages channels-last ``x`` over every axis between the batch and the channels.

    Args:
      x: ``(B, ..., C)`` with at least one spatial axis (``(B, T, C)``, NHWC, NDHWC),
        floating (averaged in float32 at least).
      keepdims: keep the spatial axes as size 1 (``(B, 1, ..., 1, C)``).

    Returns:
      ``(B, C)`` (or ``(B, 1, ..., 1, C)``), the dtype of ``x``.

    Raises:
      nnjax.ShapeError: if ``x`` has rank < 3, or a spatial axis of size 0.
      TypeError: if ``x`` is not floating, or ``keepdims`` is not a bool.

    Example:
      >>> global_avg_pool(jnp.arange(8.0).reshape(1, 2, 2, 2))
      Array([[3., 4.]], dtype=float32)
    """
    x = _utils.as_compute("global_avg_pool", x)
    axes = _spatial_axes("global_avg_pool", x)
    keepdims = _checks.check_static_bool("global_avg_pool", "keepdims", keepdims)
    mean = jnp.mean(x.astype(_utils.stat_dtype(x)), axis=axes, keepdims=keepdims)
    return mean.astype(x.dtype)


def global_max_pool(x: jax.typing.ArrayLike, *, keepdims: bool = False) -> jax.Array:
    """Takes the maximum of channels-last ``x`` over every spatial axis.

    Args:
      x: ``(B, ..., C)`` with at least one spatial axis, floating.
      keepdims: keep the spatial axes as size 1.

    Returns:
      ``(B, C)`` (or ``(B, 1, ..., 1, C)``), the dtype of ``x``.

    Raises:
      nnjax.ShapeError: if ``x`` has rank < 3, or a spatial axis of size 0.
      TypeError: if ``x`` is not floating, or ``keepdims`` is not a bool.

    Example:
      >>> global_max_pool(jnp.arange(8.0).reshape(1, 2, 2, 2))
      Array([[6., 7.]], dtype=float32)
    """
    x = _utils.as_compute("global_max_pool", x)
    keepdims = _checks.check_static_bool("global_max_pool", "keepdims", keepdims)
    return jnp.max(x, axis=_spatial_axes("global_max_pool", x), keepdims=keepdims)
