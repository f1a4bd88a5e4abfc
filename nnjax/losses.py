"""Loss functions ``loss(predictions, targets) -> scalar``, built on :mod:`optax.losses`.

Conventions (the same as Optax): predictions first, targets second; classification
losses take *logits* (unnormalised scores), not probabilities. Every loss reduces with
``reduction="mean"`` (the default), ``"sum"`` or ``"none"`` (per-example values).

Example:
  >>> import jax.numpy as jnp
  >>> from nnjax import losses
  >>> float(losses.mse(jnp.array([1.0, 2.0]), jnp.array([1.0, 4.0])))
  2.0
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax import _registry

Loss = Callable[..., jax.Array]
ArrayLike = jax.typing.ArrayLike


def _reduce(values: jax.Array, reduction: str) -> jax.Array:
    if reduction == "mean":
        return jnp.mean(values)
    if reduction == "sum":
        return jnp.sum(values)
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_same_shape(
    name: str, predictions: jax.typing.ArrayLike, targets: jax.typing.ArrayLike
) -> None:
    if jnp.shape(predictions) != jnp.shape(targets):
        raise ValueError(
            f"{name}: `predictions` has shape {jnp.shape(predictions)} but `targets` has "
            f"shape {jnp.shape(targets)}; they must match"
        )


def mse(predictions: ArrayLike, targets: ArrayLike, *, reduction: str = "mean") -> jax.Array:
    """Mean squared error ``(p - t)**2`` (``optax.losses.squared_error``).

    Args:
      predictions: any shape, floating.
      targets: the same shape as ``predictions``.
      reduction: ``"mean"`` over all elements, ``"sum"``, or ``"none"`` (elementwise).

    Example:
      >>> float(mse(jnp.array([0.0, 0.0]), jnp.array([1.0, 3.0])))
      5.0
    """
    _check_same_shape("mse", predictions, targets)
    return _reduce(optax.losses.squared_error(predictions, targets), reduction)


def mae(predictions: ArrayLike, targets: ArrayLike, *, reduction: str = "mean") -> jax.Array:
    """Mean absolute error ``|p - t|``; same arguments as :func:`mse`.

    Example:
      >>> float(mae(jnp.array([0.0, 0.0]), jnp.array([1.0, -3.0])))
      2.0
    """
    _check_same_shape("mae", predictions, targets)
    return _reduce(jnp.abs(jnp.asarray(predictions) - jnp.asarray(targets)), reduction)


def huber(
    predictions: ArrayLike, targets: ArrayLike, *, delta: float = 1.0, reduction: str = "mean"
) -> jax.Array:
    """Huber loss (``optax.losses.huber_loss``): quadratic within ``delta``, linear beyond.

    Example:
      >>> float(huber(jnp.array([0.0]), jnp.array([3.0])))
      2.5
    """
    _check_same_shape("huber", predictions, targets)
    return _reduce(optax.losses.huber_loss(predictions, targets, delta=delta), reduction)


def cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> jax.Array:
    """Softmax cross-entropy from logits, with integer labels or one-hot/probabilities.

    Args:
      logits: ``(..., C)`` unnormalised class scores.
      labels: integer class indices ``(...)``, or a distribution ``(..., C)`` (one-hot
        or probabilities; each row must sum to one).
      label_smoothing: mixes the one-hot target with the uniform distribution.
      reduction: ``"mean"`` over examples, ``"sum"`` or ``"none"``.

    Raises:
      ValueError: ``labels`` fit neither form; integer labels with ``logits`` of their
        own shape (a model output ``(B,)``: no class axis, the softmax would run over
        the batch) or with a single class; soft labels that are not probabilities
        (checked when concrete, see :func:`check_distribution`).

    Example:
      >>> logits = jnp.array([[0.0, 0.0]])
      >>> round(float(cross_entropy(logits, jnp.array([1]))), 4)
      0.6931
    """
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    _check_class_axis(logits, labels)
    if labels.ndim == logits.ndim - 1 and jnp.issubdtype(labels.dtype, jnp.integer):
        if label_smoothing:
            labels = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
        else:
            values = optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels)
            return _reduce(values, reduction)
    if labels.shape != logits.shape:
        raise ValueError(
            f"cross_entropy: `labels` has shape {labels.shape}; expected integer labels of "
            f"shape {logits.shape[:-1]} or one-hot labels of shape {logits.shape}"
        )
    check_distribution("cross_entropy", "labels", labels)
    if label_smoothing:
        labels = optax.smooth_labels(labels.astype(logits.dtype), label_smoothing)
    return _reduce(optax.losses.softmax_cross_entropy(logits, labels), reduction)


def _check_class_axis(logits: jax.Array, labels: jax.Array) -> None:
    """Shape checks that make softmax cross-entropy meaningful (static: work under jit)."""
    integer = jnp.issubdtype(labels.dtype, jnp.integer) or labels.dtype == jnp.bool_
    if logits.ndim == 0:
        raise ValueError("cross_entropy: `logits` is a scalar; it needs a class axis (..., C)")
    if integer and labels.shape == logits.shape:
        raise ValueError(
            f"cross_entropy: `labels` are integer class indices of shape {labels.shape}, "
            f"the shape of `logits` {logits.shape}, so `logits` has no class axis and the "
            "softmax would run over the batch. Give the model C >= 2 outputs "
            "(B, C), or use binary_cross_entropy for one score per example"
        )
    if integer and labels.ndim == logits.ndim - 1 and logits.shape[-1] == 1:
        raise ValueError(
            f"cross_entropy: `logits` has shape {logits.shape}, a single class: the "
            "softmax over one class is always 1 and the loss always 0. Give the model "
            "C >= 2 outputs, or use binary_cross_entropy for one score per example"
        )


def check_distribution(op: str, name: str, labels: ArrayLike, *, atol: float = 1e-3) -> None:
    """Checks that concrete soft ``labels (..., C)`` are probabilities that sum to one.

    Traced labels (inside ``jit``) are not checked: ``fit`` checks its first batch
    before compiling. Soft labels that do not sum to one silently change the loss's
    scale and its gradient's direction, so they are an error.

    Args:
      op: the loss, for the message.
      name: the argument, for the message.
      labels: ``(..., C)`` floating.
      atol: the tolerance on each row's sum.

    Raises:
      ValueError: a negative or non-finite entry, or a row whose sum differs from 1 by
        more than ``atol`` (names the first such row and its sum).

    Example:
      >>> check_distribution("cross_entropy", "labels", jnp.array([[0.25, 0.75]]))
      >>> try:
      ...     check_distribution("cross_entropy", "labels", jnp.array([[0.5, 0.7]]))
      ... except ValueError as err:
      ...     print(str(err)[:45])
      cross_entropy: `labels` row 0 sums to 1.2, no
    """
    try:
        values = np.asarray(labels)
    except jax.errors.TracerArrayConversionError:
        return
    if values.size == 0 or values.ndim == 0 or not np.issubdtype(values.dtype, np.inexact):
        return
    rows = values.astype(np.float64).reshape(-1, values.shape[-1])
    # 16-bit labels (bfloat16 one-hot smoothing) round each entry: allow for it.
    atol = max(atol, float(jnp.finfo(values.dtype).eps) * rows.shape[-1])
    bad = np.flatnonzero(~np.isfinite(rows).all(axis=1) | (rows < 0).any(axis=1))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{op}: `{name}` row {i} holds a negative or non-finite value "
            f"({rows[i].tolist()[:8]}); soft labels must be probabilities"
        )
    sums = rows.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{op}: `{name}` row {i} sums to {sums[i]:.6g}, not 1: soft labels must be "
            "probabilities (rows of one-hot or a distribution over the C classes)"
        )


def binary_cross_entropy(
    logits: ArrayLike, labels: ArrayLike, *, reduction: str = "mean"
) -> jax.Array:
    """Sigmoid binary cross-entropy from logits (``optax.losses.sigmoid_binary_cross_entropy``).

    Args:
      logits: any shape; ``sigmoid(logits)`` is the probability of class 1.
      labels: the same shape, values in ``[0, 1]``.
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (per element).

    Example:
      >>> round(float(binary_cross_entropy(jnp.array([0.0]), jnp.array([1.0]))), 4)
      0.6931
    """
    _check_same_shape("binary_cross_entropy", logits, labels)
    labels = jnp.asarray(labels, dtype=jnp.result_type(logits))
    return _reduce(optax.losses.sigmoid_binary_cross_entropy(logits, labels), reduction)


_REGISTRY: dict[str, Loss] = {
    "mse": mse,
    "mean_squared_error": mse,
    "mae": mae,
    "mean_absolute_error": mae,
    "huber": huber,
    "cross_entropy": cross_entropy,
    "sparse_categorical_crossentropy": cross_entropy,
    "categorical_crossentropy": cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "binary_crossentropy": binary_cross_entropy,
}


def get(loss: str | Loss) -> Loss:
    """Returns the loss named ``loss`` (Keras names work too), or ``loss`` if callable.

    Raises:
      ValueError: for an unknown name; the message lists the known ones.

    Example:
      >>> get("mse") is mse
      True
    """
    return loss if callable(loss) else _registry.lookup("loss", _REGISTRY, loss)


__all__ = [
    "Loss",
    "binary_cross_entropy",
    "check_distribution",
    "cross_entropy",
    "get",
    "huber",
    "mae",
    "mse",
]
