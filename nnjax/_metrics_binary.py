"""Where a binary score counts as class 1: the threshold follows the loss (private).

nnjax's cross-entropies take logits, so ``metrics=["accuracy"]`` on a one-output model
counts class 1 where the output is ``> 0``. A model trained with a loss that takes
neither logits nor margins (``mse`` on 0/1 targets, ``mae``, ``huber``...) outputs
values around the labels, and Keras's ``BinaryAccuracy`` counts class 1 where they are
``> 0.5``. :func:`binary_threshold` gives the threshold of a loss;
:func:`with_threshold` wraps a metric name with it (a :class:`Thresholded` spec), so
:func:`nnjax.metrics.resolve` builds the metric with that threshold, logged under the
name.

Example:
  >>> binary_threshold("binary_cross_entropy"), binary_threshold("mse")
  (0.0, 0.5)
  >>> with_threshold("mse", "accuracy")
  Thresholded(spec='accuracy', threshold=0.5)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

from nnjax import losses
from nnjax._metrics_weighted import Weighted
from nnjax._output_losses import OutputMetric

LOGIT_LOSSES: frozenset[Any] = frozenset(
    {
        losses.cross_entropy,
        losses.binary_cross_entropy,
        losses.hinge,
        losses.squared_hinge,
        losses.categorical_hinge,
    }
)
"""The named losses whose predictions are logits or margins: class 1 where ``> 0``."""

THRESHOLDED = frozenset(
    {
        "accuracy",
        "acc",
        "binary_accuracy",
        "categorical_accuracy",
        "sparse_categorical_accuracy",
        *(
            f"{kind}{suffix}"
            for kind in ("precision", "recall", "f1")
            for suffix in ("", "_binary", "_macro", "_micro")
        ),
    }
)
"""The metric names whose binary case compares a score with a threshold."""


def binary_threshold(loss: Any) -> float:
    """Where a binary score counts as class 1 for a model trained with ``loss``.

    Args:
      loss: a loss name or function (or ``None``, a ``loss_fn``).

    Returns:
      ``0.0`` for the losses of logits or margins (``cross_entropy``,
      ``binary_cross_entropy``, ``hinge``, ``squared_hinge``, ``categorical_hinge``),
      for functions of your own and for anything else; ``0.5`` for the other named
      losses of :mod:`nnjax.losses` (``mse``, ``mae``, ``huber``, ``log_cosh``...), by
      name or function.

    Example:
      >>> binary_threshold("hinge"), binary_threshold(losses.huber), binary_threshold(None)
      (0.0, 0.5, 0.0)
    """
    try:
        fn = losses.get(loss) if isinstance(loss, str) else loss
    except ValueError:
        return 0.0
    named = any(fn is known for known in losses._REGISTRY.values())
    return 0.5 if named and fn not in LOGIT_LOSSES else 0.0


@dataclasses.dataclass(frozen=True)
class Thresholded:
    """A metric name whose binary case counts class 1 where a score is ``> threshold``.

    :func:`nnjax.metrics.resolve` builds the metric ``spec`` with that threshold,
    logged under ``spec`` (``"accuracy"``). Equal specs share ``fit``'s compiled step;
    the same name with another threshold (or the bare name, threshold 0) is another
    spec, so ``fit`` compiles a step per threshold.

    Attributes:
      spec: the metric's name, one of :data:`THRESHOLDED` (``"accuracy"``, ``"f1"``,
        Keras's ``"binary_accuracy"``...; any case).
      threshold: a finite number: 0 for logits, 0.5 for scores around 0/1 labels.

    Raises:
      ValueError: a name whose metric takes no threshold, or a threshold that is not
        a finite number.

    Example:
      >>> spec = Thresholded("accuracy", 0.5)
      >>> spec, spec == Thresholded("accuracy", 0), spec == "accuracy"
      (Thresholded(spec='accuracy', threshold=0.5), False, False)
      >>> Thresholded("mae", 0.5)
      Traceback (most recent call last):
      ...
      ValueError: Thresholded: the metric 'mae' takes no threshold; ...
    """

    spec: str
    threshold: float

    def __post_init__(self) -> None:
        if not isinstance(self.spec, str) or self.spec.lower() not in THRESHOLDED:
            raise ValueError(
                f"Thresholded: the metric {self.spec!r} takes no threshold; those that do: "
                f"{', '.join(sorted(THRESHOLDED))}"
            )
        number = isinstance(self.threshold, numbers.Real) and not isinstance(self.threshold, bool)
        if not number or not math.isfinite(self.threshold):
            raise ValueError(
                f"Thresholded: `threshold` must be a finite number, got {self.threshold!r}"
            )
        object.__setattr__(self, "threshold", float(self.threshold))


def unthresholded(spec: Any) -> Any:
    """The name a :class:`Thresholded` (or a weighted one) wraps; any other spec as it is.

    For the checks that read a metric's name (``"accuracy"`` needs class labels).

    Example:
      >>> unthresholded(Thresholded("f1", 0.5)), unthresholded("mae")
      ('f1', 'mae')
      >>> unthresholded(Weighted(Thresholded("f1", 0.5)))
      'f1'
    """
    spec = spec.spec if isinstance(spec, Weighted) else spec
    return spec.spec if isinstance(spec, Thresholded) else spec


def with_threshold(loss: Any, spec: Any) -> Any:
    """``spec`` with ``loss``'s :func:`binary_threshold` where one applies.

    A name of :data:`THRESHOLDED` becomes a :class:`Thresholded` when the threshold is
    not 0 (with 0 it stays the name, which counts class 1 where ``> 0``); a metric of
    one output (:class:`OutputMetric`) follows that output's loss in a loss per output;
    a weighted one (:class:`~nnjax._metrics_weighted.Weighted`) keeps its weighting.
    Anything else (a :class:`Thresholded` of your own among them) is returned as is.

    Example:
      >>> with_threshold("mse", "f1").threshold, with_threshold("mse", "mae")
      (0.5, 'mae')
      >>> with_threshold("binary_cross_entropy", "accuracy")
      'accuracy'
      >>> with_threshold(losses.get({"a": "mse"}), OutputMetric("a", "acc"))
      OutputMetric(key='a', spec=Thresholded(spec='acc', threshold=0.5))
    """
    if isinstance(spec, Weighted):
        return Weighted(with_threshold(loss, spec.spec), spec.name)
    if isinstance(spec, OutputMetric):
        if isinstance(loss, losses.OutputLosses) and spec.key in loss.keys:
            loss = loss.fns[loss.keys.index(spec.key)]
        return OutputMetric(spec.key, with_threshold(loss, spec.spec))
    if not isinstance(spec, str):
        return spec
    threshold = binary_threshold(loss) if spec.lower() in THRESHOLDED else 0.0
    return Thresholded(spec, threshold) if threshold else spec


__all__ = [
    "LOGIT_LOSSES",
    "THRESHOLDED",
    "Thresholded",
    "binary_threshold",
    "unthresholded",
    "with_threshold",
]
