"""Metrics: batch functions and exact streaming metrics.

Batch functions ``metric(predictions, targets) -> scalar``, and streaming metrics built
from sufficient statistics.

A :class:`Metric` turns one batch of predictions, targets and a mask ``(B,)`` (0 for
padded rows) into *statistics* (sums, counts, confusion counts, or the scores
themselves for AUC) that add up (or concatenate) over batches and devices;
:meth:`Metric.result` turns the total into the value. So the result is the same for
any batch size, padding or device count, and equals scikit-learn's on the same
predictions. The statistics are computed in the private module ``nnjax._metrics_streaming``.

A function ``metric(predictions, targets)`` becomes a :class:`Metric` too
(:func:`resolve`): one that takes ``reduction="none"`` (the losses) is averaged per
example; one that returns ``(B,)``, one value per example (Keras's custom metrics), is
averaged over the real examples; one that returns a scalar is a *batch-level* value
(a correlation, a variance), weighted by each batch's number of real examples. The
last batch of an epoch is filled up with copies of real rows, so give a batch-level
function a ``mask`` keyword: it is then called with ``mask=`` the batch's ``(B,)``
float32 mask (1 for real rows, 0 for padding) and should leave the padded rows out
(e.g. with :func:`nnjax.train.objective.masked_mean`); without one it sees the padded
batch. A function whose first two parameters are ``y_true`` and ``y_pred`` is written
for Keras and is called in Keras's order, ``fn(targets, predictions)``.

Names (:func:`resolve`): ``accuracy``, ``top_k_accuracy`` (``k=5``), ``precision``,
``recall``, ``f1`` (binary for one-output or two-class models, else macro; also
``f1_macro``, ``f1_micro``, ``precision_binary``...), ``auc`` (binary ROC AUC),
``r2`` (the coefficient of determination, scikit-learn's ``r2_score``), ``mse``,
``mae``, ``cosine_similarity`` (the mean similarity, as Keras's metric: the loss is its
negation), and every loss of :mod:`nnjax.losses` (``huber``, ``log_cosh``, ``hinge``,
``kl_divergence``...: each the mean of its per-example values). Keras's names
``binary_accuracy``, ``categorical_accuracy`` and ``sparse_categorical_accuracy`` are
``accuracy``; ``top_k_categorical_accuracy`` and ``sparse_top_k_categorical_accuracy``
are ``top_k_accuracy``, each logged under the name given.

Binary scores (one output): ``accuracy`` (and its aliases), ``precision``, ``recall``
and ``f1`` count class 1 where the output is ``> 0``: nnjax's classification losses
take logits. In ``fit``, ``evaluate`` and ``sweep`` the threshold follows the loss
(:func:`specs_for`): ``> 0`` for the losses of logits or margins
(``binary_cross_entropy``, ``hinge``, ``squared_hinge``) and for a loss function of
your own, ``> 0.5`` (Keras's ``BinaryAccuracy``) for the other named losses (``mse`` or
``huber`` on 0/1 targets...), the name then wrapped in a :class:`Thresholded` spec and
still logged under the name given. ``auc`` ranks the scores and needs no threshold.
No examples: :func:`accuracy` and :func:`roc_auc_score` raise (as scikit-learn); a
streaming result of none is 0.0 (Keras's, as ``fit``'s loss), NaN for ``auc`` and ``r2``.

Metrics count every real example once. :func:`weighted` (Keras' ``weighted_metrics``)
counts each by its loss weight instead (``sample_weight``, times ``class_weight`` in
training), or each position by its own for weights ``(N, T)``: scikit-learn's
``sample_weight``, logged as ``"weighted_<name>"``.

Example:
  >>> import jax.numpy as jnp
  >>> from nnjax import metrics
  >>> float(metrics.accuracy(jnp.array([[2.0, 1.0], [0.0, 3.0]]), jnp.array([0, 0])))
  0.5
  >>> m = metrics.resolve("f1_macro")
  >>> s = m.stats(jnp.array([[2.0, 1.0], [0.0, 3.0]]), jnp.array([0, 1]), jnp.ones(2))
  >>> m.result(s)
  1.0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

import jax
import jax.numpy as jnp

from nnjax import _registry, losses
from nnjax._keras_order import keras_order
from nnjax._loss_checks import _check_array, _class_ids
from nnjax._metrics_auc import roc_auc_score
from nnjax._metrics_binary import Thresholded, with_threshold
from nnjax._metrics_functions import from_function, loss_terms, named_metrics
from nnjax._metrics_functions import per_example as per_example
from nnjax._metrics_streaming import (
    Metric,
    accumulate,
    classification_metric,
    top_k_accuracy,
)
from nnjax._metrics_streaming import (
    Stats as Stats,
)
from nnjax._metrics_weighted import Weighted, weighted, weighted_metric
from nnjax._output_losses import OutputMetric
from nnjax._torch_tensors import from_torch

MetricFn = Callable[[jax.Array, jax.Array], jax.Array]
"""A batch function ``metric(predictions, targets) -> jax.Array``, a scalar (:func:`get`)."""
ArrayLike = jax.typing.ArrayLike


def accuracy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    """Fraction of correct predictions.

    Three cases, read off the shapes:

    * integer ``labels (...)`` with ``logits (..., C)``: the argmax of the logits;
    * one-hot ``labels (B, ..., C)`` with ``logits (B, ..., C)``, ``C > 1``: argmax of both;
    * binary: ``logits (..., 1)`` or the same shape as ``labels`` (or ``labels (..., 1)``
      for ``logits (...)``), with ``C == 1`` or no class axis: class 1 where
      ``logits > 0`` (i.e. ``sigmoid(logits) > 0.5``; ``fit``'s metric ``"accuracy"``
      uses ``> 0.5`` with a loss that takes no logits, such as ``"mse"``).

    A row whose logits hold a NaN (a diverged model) is a miss, as for
    :func:`top_k_accuracy` (also under ``jax.jit``). PyTorch tensors are read
    detached, as ``fit`` reads them.

    Args:
      logits: ``(..., C)`` floating scores, or ``(...)``/``(..., 1)`` binary logits.
      labels: class ids ``(...)`` or ``(..., 1)`` (integers, booleans, or whole
        numbers in a float dtype), one-hot ``(..., C)``, or binary labels (``0``/``1``,
        any numeric dtype, or probabilities in ``[0, 1]``; class 1 where ``> 0.5``).

    Returns:
      A float32 scalar in ``[0, 1]``.

    Raises:
      nnjax.ShapeError: shapes that fit none of the cases, e.g. integer labels whose shape is
        not ``logits.shape[:-1]`` (names both shapes; also under ``jax.jit``).
      ValueError: no examples (inputs of size 0; the shape is static, so also under
        ``jax.jit``), as scikit-learn; concrete class ids outside ``[0, C)`` (names
        the first one and ``C``) or float ones that are not whole numbers (1.5);
        concrete binary labels outside ``[0, 1]`` (a label 2 for one score per
        example). Under ``jax.jit`` labels are not checked: ids out of range count as
        misses, float ones are truncated, a binary label is class 1 where ``> 0.5``.
      TypeError: ``logits`` or ``labels`` that are not numbers (``None``, strings).

    Example:
      >>> float(accuracy(jnp.array([0.3, -2.0]), jnp.array([1, 1])))
      0.5
      >>> float(accuracy(jnp.array([[jnp.nan, 0.0], [2.0, 1.0]]), jnp.array([0, 0])))
      0.5
    """
    _check_array("accuracy", "logits", logits)
    _check_array("accuracy", "labels", labels)
    logits, labels = jnp.asarray(from_torch(logits)), jnp.asarray(from_torch(labels))
    pred, true, _ = _class_ids("accuracy", logits, labels)
    if pred.size == 0:  # a mean of nothing: NaN before, an error in scikit-learn
        raise ValueError(f"accuracy: no examples (predictions of shape {logits.shape})")
    return jnp.mean((pred == true).astype(jnp.float32))


_METRICS = named_metrics()


def resolve(spec: str | Metric | OutputMetric | Thresholded | Callable) -> Metric:
    """A :class:`Metric` from a name, a :class:`Metric`, or a function ``m(pred, y)``.

    A function that takes ``reduction="none"`` (like the losses) is averaged per
    example; any other is called on the batch: a ``(B,)`` result is one value per
    example, averaged over the real ones; a scalar is a batch-level value, weighted by
    each batch's number of real examples. A function that takes a ``mask`` keyword is
    called as ``fn(pred, y, mask=mask)`` with the batch's ``(B,)`` float32 mask (0 on
    padded rows, which it should leave out); otherwise it sees the padded batch. One
    whose first two parameters are ``y_true`` and ``y_pred`` is called in Keras's order.
    ``losses.cosine_similarity`` gives the metric ``cosine_similarity`` (the similarity).

    Args:
      spec: a name (see the module docstring; case-insensitive), a :class:`Metric`
        (returned unchanged), a function ``m(predictions, targets)``, a
        :class:`Thresholded` name (built with its threshold, logged under the name), or
        an :class:`OutputMetric` (any of those, of one output of several).

    Returns:
      The :class:`Metric`, logged under its ``name`` (a function's ``__name__``).

    Raises:
      ValueError: an unknown name (the message lists the known ones). Its ``stats``
        raise :class:`~nnjax.errors.ShapeError` (when traced, before any value is
        computed) for a function whose result is neither a scalar nor ``(B,)``.

    Example:
      >>> resolve("f1").name, resolve(losses.huber).name
      ('f1', 'huber')
      >>> half = resolve(Thresholded("accuracy", 0.5))  # class 1 where a score is > 0.5
      >>> half.name, half.result(half.stats(jnp.array([0.3]), jnp.array([1]), jnp.ones(1)))
      ('accuracy', 0.0)
      >>> def abs_err(y_true, y_pred):  # Keras's order, one value per example
      ...     return jnp.mean(jnp.abs(y_pred - y_true), axis=-1)
      >>> m = resolve(abs_err)
      >>> m.result(m.stats(jnp.zeros((3, 1)), jnp.ones((3, 1)), jnp.array([1.0, 1.0, 0.0])))
      1.0
      >>> real = resolve(lambda pred, y, mask: jnp.sum(mask))  # sees the mask
      >>> real.result(real.stats(jnp.zeros((3, 1)), jnp.zeros(3), jnp.array([1.0, 1.0, 0.0])))
      2.0
    """
    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, Weighted):
        return weighted_metric(resolve(spec.spec), spec.name)
    if isinstance(spec, OutputMetric):
        return _of_output(spec)
    if spec is losses.cosine_similarity:  # the similarity, as the name's metric
        return _METRICS["cosine_similarity"]()
    if callable(spec):
        return from_function(getattr(spec, "__name__", "metric"), spec)
    if isinstance(spec, Thresholded):  # from specs_for: the loss's threshold
        return _registry.lookup("metric", _METRICS, spec.spec)(threshold=spec.threshold)
    return _registry.lookup("metric", _METRICS, spec)()


_FUNCTIONS: dict[str, MetricFn] = {
    "accuracy": accuracy,
    "acc": accuracy,
    "mse": losses.mse,
    "mae": losses.mae,
    "cross_entropy": losses.cross_entropy,
    "binary_cross_entropy": losses.binary_cross_entropy,
}


_Fn = TypeVar("_Fn", bound=Callable[..., Any])


@overload
def get(metric: str) -> Callable[[ArrayLike, ArrayLike], jax.Array]: ...
@overload
def get(metric: _Fn) -> _Fn: ...
@overload
def get(metric: str | MetricFn) -> MetricFn: ...
def get(metric: str | MetricFn) -> MetricFn:
    """Returns the batch function named ``metric``, or ``metric`` itself if callable.

    Args:
      metric: ``"accuracy"`` (``"acc"``), ``"mse"``, ``"mae"``, ``"cross_entropy"``,
        ``"binary_cross_entropy"``, or a callable (one whose first two parameters are
        ``y_true, y_pred`` gets a wrapper that calls it in Keras's order).

    Returns:
      A :data:`MetricFn`: ``metric(predictions, targets)`` returns a scalar array.

    Raises:
      ValueError: for an unknown name; the message lists the known ones.

    Example:
      >>> get("accuracy") is accuracy
      True
    """
    if callable(metric):
        return keras_order(metric)
    return _registry.lookup("metric", _FUNCTIONS, metric)


CLASSIFICATION_LOSSES = frozenset(
    name
    for name, fn in losses._REGISTRY.items()
    if fn in (losses.cross_entropy, losses.binary_cross_entropy)
)


def _of_output(spec: OutputMetric) -> Metric:
    """The metric ``spec.spec`` of the output ``spec.key``, named ``"<key>_<name>"``."""
    base = resolve(spec.spec)

    def stats(pred, y, *masks):  # the mask, and a weighted metric's weights
        return base.stats(spec.select(pred, "model outputs"), spec.select(y, "labels y"), *masks)

    return dataclasses.replace(base, name=spec.prefix + base.name, stats=stats)


def default_metrics(loss: Any) -> tuple[Any, ...]:
    """The metrics logged besides the loss when none are given.

    Accuracy for classification losses, nothing for regression losses and custom ones.

    Args:
      loss: the loss ``fit`` trains with: a name or a function.

    Returns:
      ``("accuracy",)`` for the cross-entropy losses (by name or function), else ``()``;
      for one loss per output (:class:`~nnjax.losses.OutputLosses`), the accuracy of
      each output trained on a cross-entropy loss (logged as ``"<key>_accuracy"``).

    Example:
      >>> default_metrics("cross_entropy"), default_metrics("mse")
      (('accuracy',), ())
      >>> default_metrics(losses.get({"cls": "cross_entropy", "reg": "mse"}))
      (OutputMetric(key='cls', spec='accuracy'),)
    """
    if isinstance(loss, losses.OutputLosses):
        return tuple(
            OutputMetric(key, name)
            for key, fn in zip(loss.keys, loss.fns, strict=True)
            for name in default_metrics(fn)
        )
    is_class = loss in CLASSIFICATION_LOSSES or loss in (
        losses.cross_entropy,
        losses.binary_cross_entropy,
    )
    return ("accuracy",) if is_class else ()


def specs_for(loss: Any, metrics: Any) -> tuple:
    """The metric specs ``fit``, ``evaluate`` and ``sweep`` log beside the loss.

    The terms of a loss per output (:func:`loss_terms`) first, then ``metrics``
    (:func:`as_specs`) or, for ``None``, the loss's :func:`default_metrics`. The names
    that threshold a binary score (``accuracy``, ``binary_accuracy``, ``precision``,
    ``recall``, ``f1``...) take the loss's threshold (each output's own, for a loss per
    output): 0 for ``binary_cross_entropy``, the hinges and losses of your own, 0.5 for
    the other named losses (the module docstring). A name with a threshold other than
    0 becomes a :class:`Thresholded` spec, logged under the name; the others stay as
    given.

    Example:
      >>> specs_for("cross_entropy", None), specs_for("mse", ["mae"])
      (('accuracy',), ('mae',))
      >>> specs_for("mse", ["accuracy"])
      (Thresholded(spec='accuracy', threshold=0.5),)
      >>> [resolve(s).name for s in specs_for("mse", ["accuracy", "f1"])]
      ['accuracy', 'f1']
    """
    chosen = default_metrics(loss) if metrics is None else as_specs(metrics)
    return (*loss_terms(loss), *(with_threshold(loss, spec) for spec in chosen))


def as_specs(metrics: Any) -> tuple:
    """``metrics`` as a tuple of specs: a bare string or a single callable is one metric.

    Args:
      metrics: ``None``, one spec (a name, a :class:`Metric`, a :class:`Thresholded`
        name or a callable), or a sequence of specs; or, for a model with several
        outputs, a dict of them per output key (position, for a tuple of outputs), each
        becoming an :class:`OutputMetric` logged as ``"<key>_<name>"``.

    Returns:
      A tuple of specs, ``()`` for ``None``.

    Example:
      >>> as_specs("accuracy"), as_specs(None)
      (('accuracy',), ())
      >>> as_specs({"cls": "accuracy"})
      (OutputMetric(key='cls', spec='accuracy'),)
    """
    if metrics is None:
        return ()
    if isinstance(metrics, str | Metric | OutputMetric | Thresholded | Weighted) or callable(
        metrics
    ):
        return (metrics,)
    if isinstance(metrics, Mapping):
        return tuple(
            OutputMetric(k, spec) for k, specs in metrics.items() for spec in as_specs(specs)
        )
    return tuple(metrics)


__all__ = [
    "Metric",
    "MetricFn",
    "OutputMetric",
    "Thresholded",
    "Weighted",
    "accumulate",
    "accuracy",
    "as_specs",
    "classification_metric",
    "default_metrics",
    "get",
    "loss_terms",
    "per_example",
    "resolve",
    "roc_auc_score",
    "specs_for",
    "top_k_accuracy",
    "weighted",
]
