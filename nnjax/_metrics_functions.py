"""Metrics from functions, and the table of named metrics (private).

:mod:`nnjax.metrics` re-exports :func:`per_example` and builds its metrics here:
:func:`from_function` turns a function ``m(predictions, targets)`` into a streaming
:class:`~nnjax._metrics_streaming.Metric`; :func:`named_metrics` is the table behind
:func:`nnjax.metrics.resolve`'s names, Keras's aliases among them.

Example:
  >>> import jax.numpy as jnp
  >>> m = from_function("abs_err", lambda p, y: jnp.abs(p - y)[:, 0])  # one per example
  >>> m.result(m.stats(jnp.zeros((3, 1)), jnp.ones((3, 1)) * 2, jnp.array([1.0, 1.0, 0.0])))
  2.0
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from nnjax import _checks, losses
from nnjax._keras_order import keras_order
from nnjax._loss_checks import per_example_mean
from nnjax._metrics_auc import _auc_metric
from nnjax._metrics_r2 import r2 as _r2_metric
from nnjax._metrics_streaming import (
    _SCORES,
    Metric,
    _accuracy_metric,
    _div,
    _mean_metric,
    classification_metric,
    top_k_accuracy,
)
from nnjax._output_losses import OutputMetric
from nnjax.errors import ShapeError


def per_example(fn: Callable) -> Callable[[jax.Array, jax.Array], jax.Array] | None:
    """``fn(predictions, targets, reduction="none")`` reduced to one value per example.

    A function whose first two parameters are ``y_true`` and ``y_pred`` is called in
    Keras's order (``fn(targets, predictions, ...)``).

    Args:
      fn: a function ``fn(predictions, targets, *, reduction=...)`` such as a loss of
        :mod:`nnjax.losses`, or any other function.

    Returns:
      ``values(predictions (B, ...), targets (B, ...)) -> (B,)``: the mean of
      ``fn(..., reduction="none")`` over each example's other axes, in its dtype; or
      ``None`` when ``fn`` takes no ``reduction`` (a batch-level function).

    Example:
      >>> per_example(losses.mse)(jnp.zeros((2, 3)), jnp.ones((2, 3)))
      Array([1., 1.], dtype=float32)
    """
    elements = per_element(fn)
    if elements is None:
        return None

    def values(pred, y):
        return per_example_mean(elements(pred, y))

    return values


def per_element(fn: Callable) -> Callable[[jax.Array, jax.Array], jax.Array] | None:
    """``fn(predictions, targets, reduction="none")`` (Keras' order as :func:`per_example`).

    Returns:
      ``values(predictions (B, ...), targets (B, ...)) -> (B, ...)``, what ``fn``
      returns unreduced; or ``None`` when ``fn`` takes no ``reduction``.

    Example:
      >>> per_element(losses.mse)(jnp.zeros((2, 3)), jnp.ones((2, 3))).shape
      (2, 3)
    """
    fn = keras_order(fn)
    if not _checks.takes_keyword(fn, "reduction"):
        return None
    return lambda pred, y: jnp.asarray(fn(pred, y, reduction="none"))


def from_function(name: str, fn: Callable) -> Metric:
    """The :class:`Metric` ``name`` of a function ``fn(predictions, targets)``.

    One that takes ``reduction`` is averaged per example (:func:`per_example`). Any
    other is called on the batch (with ``mask=`` the ``(B,)`` mask when it takes a
    ``mask`` keyword): a scalar is a batch-level value, weighted by the batch's real
    examples; a ``(B,)`` result is one value per example (Keras's custom metrics),
    averaged over the real examples.

    Raises:
      nnjax.ShapeError: from its ``stats`` (at trace time, before any value is
        computed), for a result that is neither a scalar nor ``(B,)``; it names the
        metric and the shape.

    Example:
      >>> m = from_function("mean_pred", lambda p, y: jnp.mean(p))  # batch-level
      >>> m.result(m.stats(jnp.array([[1.0], [3.0]]), jnp.zeros((2, 1)), jnp.ones(2)))
      2.0
    """
    fn = keras_order(fn)
    rows, elements = per_example(fn), per_element(fn)
    if rows is not None and elements is not None:
        if fn in losses.TARGETS_LIKE_PREDICTIONS:  # labels (B,), out (B, 1)
            rows, elements = _aligned(rows), _aligned(elements)
        return _mean_metric(name, rows, elements)
    takes_mask = _checks.takes_keyword(fn, "mask")

    def stats(pred, y, mask):
        value = jnp.asarray(fn(pred, y, mask=mask) if takes_mask else fn(pred, y))
        value = value.astype(jnp.promote_types(value.dtype, jnp.float32))  # float64 stays
        count = jnp.sum(mask.astype(value.dtype))
        if value.ndim == 0:  # a batch-level value: weighted by the real examples
            return {"sum": value * count, "count": count}
        if value.shape == mask.shape:  # one value per example: the real ones averaged
            return {"sum": jnp.sum(value * mask.astype(value.dtype)), "count": count}
        raise ShapeError(
            f"metric {name!r} returned shape {value.shape} for a batch of {mask.shape[0]}: "
            f"a metric function must return a scalar for the batch or one value per "
            f"example, shape {mask.shape}"
        )

    return Metric(name, stats, lambda s: float(_div(s["sum"], s["count"])))


def _aligned(values: Callable) -> Callable:
    """``values(pred, y)`` with the targets aligned to the predictions as the losses do."""
    return lambda pred, y: values(pred, losses.align_targets(pred, y))


def negated(metric: Metric, name: str) -> Metric:
    """``metric`` with the opposite sign, named ``name`` (a loss as the score it negates).

    Example:
      >>> m = negated(from_function("mse", losses.mse), "minus_mse")
      >>> m.result(m.stats(jnp.zeros((1, 1)), jnp.ones((1, 1)), jnp.ones(1)))
      -1.0
    """
    return dataclasses.replace(metric, name=name, result=lambda s: -metric.result(s))


def cosine_similarity() -> Metric:
    """The mean cosine similarity of each example's prediction and target, as Keras logs it.

    The loss :func:`nnjax.losses.cosine_similarity` is its negation (Keras's sign).

    Example:
      >>> m = cosine_similarity()
      >>> m.result(m.stats(jnp.array([[1.0, 0.0]]), jnp.array([[2.0, 0.0]]), jnp.ones(1)))
      1.0
    """
    name = "cosine_similarity"
    return negated(from_function(name, losses.cosine_similarity), name)


ACCURACY_ALIASES = ("binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy")
"""Keras's names of :func:`nnjax.metrics.accuracy` (logged under the name given)."""
TOP_K_ALIASES = ("top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy")
"""Keras's names of ``top_k_accuracy`` (``k=5``, as Keras's)."""


def _renamed(factory: Callable[[], Metric], name: str) -> Callable[[], Metric]:
    return lambda: dataclasses.replace(factory(), name=name)


def named_metrics() -> dict[str, Callable[..., Metric]]:
    """Each metric name to a factory of its :class:`Metric`.

    The factories of the accuracies and of ``precision``, ``recall`` and ``f1`` take
    a keyword ``threshold`` (where a binary score counts as class 1).

    Example:
      >>> table = named_metrics()
      >>> table["sparse_categorical_accuracy"]().name, table["top_k_categorical_accuracy"]().name
      ('sparse_categorical_accuracy', 'top_k_categorical_accuracy')
    """
    table: dict[str, Callable[..., Metric]] = {
        "accuracy": _accuracy_metric,
        "acc": functools.partial(_accuracy_metric, "acc"),
        **{name: functools.partial(_accuracy_metric, name) for name in ACCURACY_ALIASES},
        "top_k_accuracy": top_k_accuracy,
        **{name: _renamed(top_k_accuracy, name) for name in TOP_K_ALIASES},
        "auc": _auc_metric,
        "r2": _r2_metric,
        "mse": lambda: from_function("mse", losses.mse),
        "mae": lambda: from_function("mae", losses.mae),
        "cosine_similarity": cosine_similarity,
    }
    for kind in _SCORES:
        table[kind] = functools.partial(classification_metric, kind)
        for average in ("binary", "macro", "micro"):
            table[f"{kind}_{average}"] = functools.partial(classification_metric, kind, average)
    for name, fn in losses._REGISTRY.items():
        table.setdefault(name, functools.partial(from_function, name, fn))
    return table


def loss_terms(loss: Any) -> tuple[Metric, ...]:
    """The metrics that log each output's term of a loss per output (Keras' ``cls_loss``).

    For an :class:`~nnjax.losses.OutputLosses`, one :class:`Metric` per output named
    ``"<key>_loss"`` (``"output_<i>_loss"`` for a tuple of outputs): the output's loss
    per example, weighted by the sample weights and normalized as the loss is (padding
    left out), so the terms add up to the logged ``loss`` (with the outputs' weights
    of :func:`nnjax.losses.per_output`, their weighted sum does; the terms are logged
    unweighted, as Keras logs them). The same objects for an equal loss, so ``fit``
    reuses its compiled step.

    Args:
      loss: the loss ``fit`` trains with.

    Returns:
      The terms' metrics, in output order; ``()`` for any other loss.

    Example:
      >>> [m.name for m in loss_terms(losses.get({"cls": "cross_entropy", "reg": "mse"}))]
      ['cls_loss', 'reg_loss']
      >>> loss_terms("mse")
      ()
    """
    return _loss_terms(loss) if isinstance(loss, losses.OutputLosses) else ()


@functools.lru_cache(maxsize=64)
def _loss_terms(loss: losses.OutputLosses) -> tuple[Metric, ...]:
    def term(key: Any) -> Metric:
        def stats(pred, y, mask, weight):
            rows = loss.term(key, pred[key], y[key])
            return {"sum": jnp.sum(rows * weight), "count": jnp.sum(mask.astype(jnp.float32))}

        name = OutputMetric(key, None).prefix + "loss"
        return Metric(name, stats, lambda s: float(_div(s["sum"], s["count"])), weighted=True)

    return tuple(term(key) for key in loss.keys)


__all__ = [
    "cosine_similarity",
    "from_function",
    "loss_terms",
    "named_metrics",
    "negated",
    "per_element",
    "per_example",
]
