"""Weighted metrics, Keras' ``weighted_metrics`` (private; :func:`nnjax.metrics.weighted`).

A metric counts each real example once. Its weighted form counts each example by its
loss weight instead (``sample_weight`` times ``class_weight`` in training, the
``sample_weight`` alone in validation and ``evaluate``, as Keras weighs them), or each
position by its weight for weights per position ``(B, T)``
(:mod:`nnjax.train.loss_weights`): accuracy over the real tokens of padded sequences.

Every built-in statistic is a sum over the rows times their mask (counts, sums,
confusion counts), AUC's ranking and R²'s moments take weights too, so the weighted
metric is the same metric given the batch's weights (0 on padding) in place of its 0/1
mask. A function metric of your own gets them as its ``mask``: a per-example value is
averaged with those weights, a batch-level one weighted by the batch's total weight.
A weight of 0 leaves an example out entirely (no class of it counts as present).

Example:
  >>> import jax.numpy as jnp
  >>> from nnjax._metrics_streaming import _accuracy_metric
  >>> m = weighted_metric(_accuracy_metric(), None)
  >>> logits, labels = jnp.array([[2.0, 1.0], [0.0, 3.0]]), jnp.array([0, 0])
  >>> m.name, m.result(m.stats(logits, labels, jnp.ones(2), jnp.array([3.0, 1.0])))
  ('weighted_accuracy', 0.75)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from nnjax._metrics_streaming import Metric, Stats


@dataclasses.dataclass(frozen=True)
class Weighted:
    """The spec of a metric weighted by the examples' loss weights (:func:`weighted`).

    Attributes:
      spec: the metric: a name, a :class:`~nnjax.metrics.Metric`, a function, a
        :class:`~nnjax.metrics.Thresholded` name or an
        :class:`~nnjax.metrics.OutputMetric`.
      name: the key it is logged under; ``None``: ``"weighted_<name>"``.

    Example:
      >>> Weighted("accuracy").spec
      'accuracy'
    """

    spec: Any
    name: str | None = None


def weighted(spec: Any, *, name: str | None = None) -> Weighted:
    """``spec`` weighted by the examples' weights: Keras' ``weighted_metrics``.

    Pass it in ``metrics`` (``fit``, ``evaluate``, ``sweep``) beside or instead of the
    unweighted metric. Each example counts by its loss weight (``sample_weight`` times
    ``class_weight`` in training; ``sample_weight`` in validation and ``evaluate``),
    each position by its own with weights per position ``(N, T)``; padding and weight 0
    never count. It is logged as ``"weighted_<name>"`` unless ``name`` is given (Keras
    logs a weighted metric under its plain name unless an unweighted one has it).

    Args:
      spec: a metric spec as ``metrics`` takes it: a name, a :class:`Metric`, a function
        ``m(predictions, targets)`` (one taking a ``mask`` keyword gets the weights
        there), a :class:`Thresholded` name or an :class:`OutputMetric`.
      name: the key to log it under, a non-empty string; ``None``: ``"weighted_<name>"``.

    Returns:
      A :class:`Weighted` spec.

    Raises:
      TypeError: ``spec`` is weighted already, or ``name`` is not a string.
      ValueError: ``name`` is empty.

    Example:
      >>> import jax.numpy as jnp
      >>> from nnjax import metrics
      >>> m = metrics.resolve(metrics.weighted("accuracy"))
      >>> logits, labels = jnp.array([[2.0, 1.0], [0.0, 3.0]]), jnp.array([0, 0])
      >>> m.name, m.result(m.stats(logits, labels, jnp.ones(2), jnp.array([1.0, 3.0])))
      ('weighted_accuracy', 0.25)
    """
    if isinstance(spec, Weighted) or (isinstance(spec, Metric) and spec.weighted):
        which = spec.name if isinstance(spec, Metric) else spec
        raise TypeError(f"weighted: the metric {which!r} is weighted already")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"weighted: `name` must be a string or None, got {name!r}")
    if name is not None and not name:
        raise ValueError("weighted: `name` must not be empty")
    return Weighted(spec, name)


@dataclasses.dataclass(frozen=True)
class _WeightsAsMask:
    """``stats(pred, y, mask, weight)`` calling the unweighted ``stats`` with the weights."""

    stats: Callable[..., Stats]

    def __call__(self, pred: Any, y: Any, mask: Any, weight: Any) -> Stats:
        del mask  # the weights are 0 on the padded rows already
        return self.stats(pred, y, weight)


def weighted_metric(base: Metric, name: str | None) -> Metric:
    """The weighted form of the resolved metric ``base`` (see the module docstring).

    Raises:
      TypeError: ``base`` is weighted already (a loss term).

    Example:
      >>> from nnjax._metrics_r2 import r2
      >>> weighted_metric(r2(), "r2_w").weighted
      True
    """
    if base.weighted:
        raise TypeError(f"weighted: the metric {base.name!r} is weighted already")
    return Metric(
        name or f"weighted_{base.name}",
        _WeightsAsMask(base.stats),
        base.result,
        concat=base.concat,
        merge=base.merge,
        weighted=True,
    )


__all__ = ["Weighted", "weighted", "weighted_metric"]
