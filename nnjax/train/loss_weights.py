"""The loss weights of a batch: one per example ``(B,)``, or one per position ``(B, T, ...)``.

``sample_weight`` (times ``class_weight``) becomes :class:`~nnjax.train.data.Batch`'s
``weight``. Most data weigh whole examples, ``(B,)``. Sequence and dense-prediction
data may weigh each position instead, as Keras does (its old
``sample_weight_mode="temporal"``): weights ``(B, T)`` for labels ``(B, T)`` (a token's
class) or targets ``(B, T, F)`` (weights broadcast over the trailing ``F``), 0 on the
positions that padding filled. A batch's loss stays ``sum(weight * values) / sum(mask)``
with ``values`` each example's mean over its positions (Keras'
``sum_over_batch_size``), so weights constant along ``T`` give the per-example loss.
``class_weight`` with labels per position gives weights per position too.

:func:`sample_weights` checks the user's weights; the other helpers spread a per-row
vector (the padding ``mask``, class weights) over weights of either kind, and
per-position weights over a loss's element values.

Example:
  >>> import numpy as np
  >>> masked(np.ones((2, 3), np.float32), np.array([1.0, 0.0], np.float32)).tolist()
  [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from nnjax.errors import ShapeError


def along_rows(per_row: Any, like: Any) -> Any:
    """``per_row (B,)`` reshaped to ``(B, 1, ...)``, broadcasting against ``like (B, ...)``.

    NumPy in, NumPy out; JAX in, JAX out.

    Example:
      >>> along_rows(np.arange(2), np.ones((2, 3, 4))).shape
      (2, 1, 1)
    """
    return per_row.reshape(per_row.shape + (1,) * (np.ndim(like) - 1))


def masked(weight: Any, mask: Any) -> Any:
    """``weight (B, ...)`` with the rows where ``mask (B,)`` is 0 zeroed (padding).

    Example:
      >>> masked(np.array([2.0, 3.0]), np.array([1.0, 0.0])).tolist()
      [2.0, 0.0]
    """
    return product(weight, mask)


def product(a: Any, b: Any) -> Any:
    """``a * b`` for weights of which one's shape is the other's leading axes.

    Sample weights ``(B,)`` times class weights per position ``(B, T)`` are ``(B, T)``;
    a mask ``(B,)`` times weights ``(B, T)`` too (:func:`masked`).

    Example:
      >>> product(np.array([1.0, 2.0]), np.array([[1.0, 3.0], [1.0, 1.0]])).tolist()
      [[1.0, 3.0], [2.0, 2.0]]
    """
    wide, narrow = (a, b) if np.ndim(a) >= np.ndim(b) else (b, a)
    return wide * narrow.reshape(np.shape(narrow) + (1,) * (np.ndim(wide) - np.ndim(narrow)))


def per_position(weight: Any) -> bool:
    """Whether ``weight`` weighs positions ``(B, T, ...)`` rather than examples ``(B,)``.

    Example:
      >>> per_position(np.ones(3)), per_position(np.ones((3, 5)))
      (False, True)
    """
    return np.ndim(weight) > 1


def over_values(weight: jax.Array, values: jax.Array) -> jax.Array:
    """Per-position ``weight (B, T, ...)`` broadcast over ``values (B, T, ..., F...)``.

    ``values`` is a loss's ``reduction="none"`` output; ``weight``'s shape must be its
    leading axes (checked at trace time, before anything compiles).

    Raises:
      nnjax.ShapeError: ``weight``'s shape is not the leading axes of ``values``'s.

    Example:
      >>> over_values(jnp.ones((2, 3)), jnp.zeros((2, 3, 4))).shape
      (2, 3, 1)
    """
    if values.shape[: weight.ndim] != weight.shape:
        raise ShapeError(
            f"sample_weight per position has shape {tuple(weight.shape)} per batch, but the "
            f"loss's values (reduction='none') have shape {tuple(values.shape)}: the "
            "weights' shape must be the values' leading axes (labels (B, T) and logits "
            "(B, T, C): weights (B, T))"
        )
    return weight.reshape(weight.shape + (1,) * (values.ndim - weight.ndim))


def sample_weights(where: str, sw: Any, n: int, y: Any = None) -> np.ndarray:
    """``sample_weight`` as float32 ``(n,)`` or ``(n, T, ...)``: finite and non-negative.

    One weight per example, ``(n,)``; a column ``(n, 1)`` is taken as ``(n,)``, as Keras
    does. Or one per position (the module docstring): the leading axes of the labels
    ``y`` (one array), e.g. ``(n, T)`` for token labels ``(n, T)``. Float32
    under ``jax_enable_x64`` too: float64 weights would turn a float32 model's
    ``loss_fn`` float64 (a float64 model's weights round to float32).

    Raises:
      ShapeError: neither ``(n,)``, ``(n, 1)`` nor leading axes of ``y``'s shape.
      ValueError: a negative, NaN or infinite weight (names the first one).

    Example:
      >>> sample_weights("train", [1, 2], 2)
      array([1., 2.], dtype=float32)
      >>> sample_weights("train", np.ones((2, 3)), 2, np.zeros((2, 3), np.int32)).shape
      (2, 3)
    """
    if sw is None:
        return np.ones(n, np.float32)
    w = np.asarray(sw, np.float32)
    if w.shape == (n, 1):  # a column, as Keras takes it
        w = w[:, 0]
    if w.shape != (n,) and not _positions_of(w, n, y):
        per = (
            f", or one per position: leading axes of y's shape {tuple(y.shape)}"
            if hasattr(y, "shape")
            else " (one weight per position needs y one array, not a pytree)"
        )
        raise ShapeError(
            f"{where}: sample_weight has shape {w.shape}, expected ({n},) (or ({n}, 1)){per}"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        i = np.unravel_index(np.flatnonzero(~(np.isfinite(w) & (w >= 0)))[0], w.shape)
        at = ", ".join(str(int(j)) for j in i)
        raise ValueError(f"{where}: sample_weight[{at}] = {w[i]}; weights must be >= 0")
    return w


def _positions_of(w: np.ndarray, n: int, y: Any) -> bool:
    """Whether ``w`` weighs the positions of labels ``y``: ``(n, T, ...)``, its leading axes."""
    shape = tuple(y.shape) if hasattr(y, "shape") else None
    return shape is not None and w.ndim > 1 and w.shape[0] == n and shape[: w.ndim] == w.shape


__all__ = ["along_rows", "masked", "over_values", "per_position", "product", "sample_weights"]
