"""Metrics ``metric(predictions, targets) -> scalar``, jit-able.

Example:
  >>> import jax.numpy as jnp
  >>> from nnjax import metrics
  >>> float(metrics.accuracy(jnp.array([[2.0, 1.0], [0.0, 3.0]]), jnp.array([0, 0])))
  0.5
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from nnjax import _registry, losses

Metric = Callable[[jax.Array, jax.Array], jax.Array]
ArrayLike = jax.typing.ArrayLike


def accuracy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    """Fraction of correct predictions.

    Three cases, read off the shapes:

    * integer ``labels (...)`` with ``logits (..., C)``: the argmax of the logits;
    * one-hot ``labels (B, ..., C)`` with ``logits (B, ..., C)``, ``C > 1``: argmax of both;
    * binary: ``logits (..., 1)`` or the same shape as ``labels``, with ``C == 1`` or no
      class axis: class 1 where ``logits > 0`` (i.e. ``sigmoid(logits) > 0.5``).

    Returns:
      A float32 scalar in ``[0, 1]``.

    Example:
      >>> float(accuracy(jnp.array([0.3, -2.0]), jnp.array([1, 1])))
      0.5
    """
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    if labels.ndim == logits.ndim - 1 and logits.shape[-1] > 1:
        correct = jnp.argmax(logits, axis=-1) == labels
    elif labels.shape == logits.shape and logits.ndim >= 2 and logits.shape[-1] > 1:
        correct = jnp.argmax(logits, axis=-1) == jnp.argmax(labels, axis=-1)
    else:
        if logits.ndim == labels.ndim + 1 and logits.shape[-1] == 1:
            logits = logits[..., 0]
        if logits.shape != labels.shape:
            raise ValueError(
                f"accuracy: cannot match `logits` of shape {logits.shape} with `labels` of "
                f"shape {labels.shape}"
            )
        correct = (logits > 0) == (labels > 0.5)
    return jnp.mean(correct.astype(jnp.float32))


_REGISTRY: dict[str, Metric] = {
    "accuracy": accuracy,
    "acc": accuracy,
    "mse": losses.mse,
    "mae": losses.mae,
    "cross_entropy": losses.cross_entropy,
    "binary_cross_entropy": losses.binary_cross_entropy,
}


def get(metric: str | Metric) -> Metric:
    """Returns the metric named ``metric``, or ``metric`` itself if callable.

    Raises:
      ValueError: for an unknown name; the message lists the known ones.

    Example:
      >>> get("accuracy") is accuracy
      True
    """
    return metric if callable(metric) else _registry.lookup("metric", _REGISTRY, metric)


__all__ = ["Metric", "accuracy", "get"]
