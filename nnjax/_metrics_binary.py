"""Where a binary score counts as class 1: the threshold follows the loss (private).

nnjax's cross-entropies take logits, so ``metrics=["accuracy"]`` on a one-output model
counts class 1 where the output is ``> 0``. A model trained with a loss that takes
neither logits nor margins (``mse`` on 0/1 targets, ``mae``, ``huber``...) outputs
values around the labels, and Keras's ``BinaryAccuracy`` counts class 1 where they are
``> 0.5``. :func:`binary_threshold` gives the threshold of a loss;
:func:`with_threshold` marks a metric name with it (:class:`ThresholdedName`), so
:func:`nnjax.metrics.resolve` builds the metric with that threshold.

Example:
  >>> binary_threshold("binary_cross_entropy"), binary_threshold("mse")
  (0.0, 0.5)
  >>> spec = with_threshold("mse", "accuracy")
  >>> spec, spec.threshold
  ('accuracy', 0.5)
"""

from __future__ import annotations

from typing import Any

from nnjax import losses
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


class ThresholdedName(str):
    """A metric name whose binary case counts class 1 where a score is ``> threshold``.

    It is the name itself (it prints, compares in lower case and is logged as one),
    but two of them are equal only with the same threshold, so ``fit`` compiles a step
    per threshold.

    Example:
      >>> name = ThresholdedName("accuracy", 0.5)
      >>> name.lower(), name.threshold, name == ThresholdedName("accuracy", 0.0)
      ('accuracy', 0.5, False)
    """

    threshold: float

    def __new__(cls, name: str, threshold: float) -> ThresholdedName:
        self = super().__new__(cls, name)
        self.threshold = float(threshold)
        return self

    def __eq__(self, other: object) -> bool:
        same = isinstance(other, str) and str.__eq__(self, str(other))
        return same and getattr(other, "threshold", None) == self.threshold

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((str(self), self.threshold))

    def __getnewargs__(self) -> tuple[str, float]:  # type: ignore[override]
        return str(self), self.threshold


def with_threshold(loss: Any, spec: Any) -> Any:
    """``spec`` marked with ``loss``'s :func:`binary_threshold` where one applies.

    A name of :data:`THRESHOLDED` becomes a :class:`ThresholdedName` when the threshold
    is not 0; a metric of one output (:class:`OutputMetric`) follows that output's loss
    in a loss per output. Anything else is returned as is.

    Example:
      >>> with_threshold("mse", "f1").threshold, with_threshold("mse", "mae")
      (0.5, 'mae')
      >>> with_threshold(losses.get({"a": "mse"}), OutputMetric("a", "acc")).spec.threshold
      0.5
    """
    if isinstance(spec, OutputMetric):
        if isinstance(loss, losses.OutputLosses) and spec.key in loss.keys:
            loss = loss.fns[loss.keys.index(spec.key)]
        return OutputMetric(spec.key, with_threshold(loss, spec.spec))
    if isinstance(spec, ThresholdedName) or not isinstance(spec, str):
        return spec
    threshold = binary_threshold(loss) if spec.lower() in THRESHOLDED else 0.0
    return ThresholdedName(spec, threshold) if threshold else spec


__all__ = ["LOGIT_LOSSES", "THRESHOLDED", "ThresholdedName", "binary_threshold", "with_threshold"]
