"""Metrics: batch functions and exact streaming metrics.

Batch functions ``metric(predictions, targets) -> scalar``, and streaming metrics built
from sufficient statistics.

A :class:`Metric` turns one batch of predictions, targets and a mask ``(B,)`` (0 for
padded rows) into *statistics* (sums, counts, confusion counts, or the scores
themselves for AUC) that add up (or concatenate) over batches and devices;
:meth:`Metric.result` turns the total into the value. So the result is the same for
any batch size, padding or device count, and equals scikit-learn's on the same
predictions.

Names (:func:`resolve`): ``accuracy``, ``top_k_accuracy`` (``k=5``), ``precision``,
``recall``, ``f1`` (binary for one-output or two-class models, else macro; also
``f1_macro``, ``f1_micro``, ``precision_binary``...), ``auc`` (binary ROC AUC),
``mse``, ``mae``, and every loss of :mod:`nnjax.losses`.

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
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import _registry, losses

MetricFn = Callable[[jax.Array, jax.Array], jax.Array]
ArrayLike = jax.typing.ArrayLike
Stats = dict[str, Any]


def _class_ids(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array, int]:
    """``(predicted, true, C)``: class ids ``(B, ...)`` read off the shapes (:func:`accuracy`)."""
    if labels.ndim == logits.ndim - 1 and logits.shape[-1] > 1:
        return jnp.argmax(logits, -1), labels.astype(jnp.int32), logits.shape[-1]
    if labels.shape == logits.shape and logits.ndim >= 2 and logits.shape[-1] > 1:
        return jnp.argmax(logits, -1), jnp.argmax(labels, -1), logits.shape[-1]
    if logits.ndim == labels.ndim + 1 and logits.shape[-1] == 1:
        logits = logits[..., 0]
    if logits.shape != labels.shape:
        raise ValueError(
            f"cannot match predictions of shape {logits.shape} with labels of shape "
            f"{labels.shape} (integer labels (B,), one-hot (B, C) or binary (B,)/(B, 1))"
        )
    return (logits > 0).astype(jnp.int32), (labels > 0.5).astype(jnp.int32), 2


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
    try:
        pred, true, _ = _class_ids(jnp.asarray(logits), jnp.asarray(labels))
    except ValueError as err:
        raise ValueError(f"accuracy: {err}") from None
    return jnp.mean((pred == true).astype(jnp.float32))


def _rows(values: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``values`` as ``(B, M)`` float32 and the mask broadcast to it."""
    flat = values.reshape(values.shape[0], -1).astype(jnp.float32)
    return flat, jnp.broadcast_to(mask.astype(jnp.float32)[:, None], flat.shape)


@dataclasses.dataclass(frozen=True)
class Metric:
    """An exact streaming metric: batch statistics that add up, and the value of a total.

    Attributes:
      name: the key under which it is logged.
      stats: ``stats(predictions (B, ...), targets (B, ...), mask (B,)) -> dict`` of
        arrays (jit-able); padded rows have mask 0.
      result: ``result(total) -> float`` from the accumulated host statistics.
      concat: the statistics are per-example arrays to concatenate (AUC), not sums.

    Example:
      >>> m = resolve("mse")
      >>> m.result(m.stats(jnp.zeros((2, 1)), jnp.ones((2, 1)), jnp.array([1.0, 0.0])))
      1.0
    """

    name: str
    stats: Callable[[jax.Array, jax.Array, jax.Array], Stats]
    result: Callable[[Stats], float]
    concat: bool = False


def accumulate(metric: Metric, batches: Sequence[Stats], *, stacked: bool = False) -> Stats:
    """Adds up (or concatenates) the host statistics of several batches.

    With ``stacked``, each has a leading axis of steps (``(K, ...)`` from one dispatch).

    Example:
      >>> m = resolve("accuracy")
      >>> stats = {"correct": np.array([1.0, 2.0]), "count": np.array([2, 2])}
      >>> m.result(accumulate(m, [stats], stacked=True))
      0.75
    """
    if metric.concat:
        return {k: np.concatenate([np.ravel(b[k]) for b in batches]) for k in batches[0]}

    def total(key: str) -> Any:
        parts = [np.asarray(b[key], np.float64) for b in batches]
        return sum(p.sum(axis=0) if stacked else p for p in parts)

    return {k: total(k) for k in batches[0]}


def _div(a: Any, b: Any) -> Any:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


def _mean_metric(name: str, per_row: Callable[[jax.Array, jax.Array], jax.Array]) -> Metric:
    def stats(pred, y, mask):
        values, m = _rows(per_row(pred, y), mask)
        return {"sum": jnp.sum(values * m), "count": jnp.sum(m)}

    return Metric(name, stats, lambda s: float(_div(s["sum"], s["count"])))


def _accuracy_metric(name: str = "accuracy") -> Metric:
    def stats(pred, y, mask):
        p, t, _ = _class_ids(pred, y)
        correct, m = _rows(p == t, mask)
        return {"correct": jnp.sum(correct * m), "count": jnp.sum(m)}

    return Metric(name, stats, lambda s: float(_div(s["correct"], s["count"])))


def top_k_accuracy(k: int = 5) -> Metric:
    """The fraction of examples whose label is among the ``k`` highest logits.

    Ties rank by class index (as ``jax.lax.top_k``); integer labels ``(B,)`` with
    logits ``(B, C)``.

    Example:
      >>> m = top_k_accuracy(2)
      >>> m.result(m.stats(jnp.array([[3.0, 2.0, 1.0]]), jnp.array([1]), jnp.ones(1)))
      1.0
    """

    def stats(pred, y, mask):
        top = jax.lax.top_k(pred, min(k, pred.shape[-1]))[1]
        hit = jnp.any(top == y[..., None].astype(top.dtype), axis=-1)
        hit, m = _rows(hit, mask)
        return {"correct": jnp.sum(hit * m), "count": jnp.sum(m)}

    return Metric(f"top_{k}_accuracy" if k != 5 else "top_k_accuracy", stats, _acc_result)


def _acc_result(s: Stats) -> float:
    return float(_div(s["correct"], s["count"]))


def _confusion(pred, y, mask) -> Stats:
    p, t, c = _class_ids(pred, y)
    m = jnp.broadcast_to(mask.reshape((-1,) + (1,) * (p.ndim - 1)), p.shape).astype(jnp.float32)
    p1 = jax.nn.one_hot(p.ravel(), c) * m.ravel()[:, None]
    t1 = jax.nn.one_hot(t.ravel(), c) * m.ravel()[:, None]
    return {
        "tp": jnp.sum(p1 * t1, 0),
        "fp": jnp.sum(p1 * (1 - t1), 0),
        "fn": jnp.sum((1 - p1) * t1, 0),
    }


_SCORES = {
    "precision": lambda tp, fp, fn: _div(tp, tp + fp),
    "recall": lambda tp, fp, fn: _div(tp, tp + fn),
    "f1": lambda tp, fp, fn: _div(2 * tp, 2 * tp + fp + fn),
}


def classification_metric(kind: str, average: str | None = None) -> Metric:
    """Precision, recall or F1 from confusion counts, like scikit-learn (zero division 0).

    Args:
      kind: ``"precision"``, ``"recall"`` or ``"f1"``.
      average: ``"binary"`` (class 1), ``"macro"`` (mean over the classes present in the
        labels or predictions), ``"micro"`` (global counts), or ``None``: binary for
        two classes, else macro.

    Example:
      >>> m = classification_metric("recall", "binary")
      >>> m.result(m.stats(jnp.array([1.0, -1.0]), jnp.array([1, 1]), jnp.ones(2)))
      0.5
    """
    if kind not in _SCORES or average not in (None, "binary", "macro", "micro"):
        raise ValueError(f"unknown classification metric {kind!r} with average={average!r}")
    score = _SCORES[kind]

    def result(s: Stats) -> float:
        tp, fp, fn = (np.asarray(s[k], np.float64) for k in ("tp", "fp", "fn"))
        how = average or ("binary" if len(tp) == 2 else "macro")
        if how == "binary":
            return float(score(tp[1], fp[1], fn[1]))
        if how == "micro":
            return float(score(tp.sum(), fp.sum(), fn.sum()))
        present = (tp + fp + fn) > 0
        return float(np.mean(score(tp, fp, fn)[present])) if present.any() else 0.0

    name = kind if average is None else f"{kind}_{average}"
    return Metric(name, _confusion, result)


def _binary_scores(pred: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    if pred.ndim == y.ndim + 1 and pred.shape[-1] == 2:
        return pred[..., 1] - pred[..., 0], y
    if pred.ndim == y.ndim + 1 and pred.shape[-1] == 1:
        pred = pred[..., 0]
    if pred.shape != y.shape:
        raise ValueError(
            f"auc: needs binary scores (B,) or (B, 1) or two-class logits (B, 2) for labels "
            f"(B,); got predictions {pred.shape} and labels {y.shape}"
        )
    return pred, y


def roc_auc_score(scores: np.ndarray, labels: np.ndarray) -> float:
    """Exact binary ROC AUC (ties count one half), as ``sklearn.metrics.roc_auc_score``.

    Example:
      >>> roc_auc_score(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
      0.75
    """
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels) > 0.5
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    ranks = np.empty(len(s))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def _auc_metric(name: str = "auc") -> Metric:
    def stats(pred, y, mask):
        score, label = _binary_scores(pred, y)
        m = jnp.broadcast_to(mask.reshape((-1,) + (1,) * (score.ndim - 1)), score.shape)
        return {"score": score.astype(jnp.float32), "label": label.astype(jnp.float32), "mask": m}

    def result(s: Stats) -> float:
        keep = np.asarray(s["mask"]) > 0
        return roc_auc_score(np.asarray(s["score"])[keep], np.asarray(s["label"])[keep])

    return Metric(name, stats, result, concat=True)


def _accepts(fn: Callable, keyword: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return keyword in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def per_example(fn: Callable) -> Callable[[jax.Array, jax.Array], jax.Array] | None:
    """``fn(predictions, targets, reduction="none")`` reduced to one value per example.

    The result has shape ``(B,)``; ``None`` when ``fn`` takes no ``reduction`` (a
    batch-level function).

    Example:
      >>> per_example(losses.mse)(jnp.zeros((2, 3)), jnp.ones((2, 3)))
      Array([1., 1.], dtype=float32)
    """
    if not _accepts(fn, "reduction"):
        return None

    def values(pred, y):
        out = fn(pred, y, reduction="none")
        return out.reshape(out.shape[0], -1).mean(axis=1) if out.ndim > 1 else out

    return values


def _from_function(name: str, fn: Callable) -> Metric:
    rows = per_example(fn)
    if rows is not None:
        return _mean_metric(name, rows)

    def stats(pred, y, mask):  # a batch-level function: weighted by the real examples
        count = jnp.sum(mask.astype(jnp.float32))
        return {"sum": fn(pred, y).astype(jnp.float32) * count, "count": count}

    return Metric(name, stats, lambda s: float(_div(s["sum"], s["count"])))


def _named_metrics() -> dict[str, Callable[[], Metric]]:
    table: dict[str, Callable[[], Metric]] = {
        "accuracy": _accuracy_metric,
        "acc": lambda: _accuracy_metric("acc"),
        "top_k_accuracy": top_k_accuracy,
        "auc": _auc_metric,
        "mse": lambda: _from_function("mse", losses.mse),
        "mae": lambda: _from_function("mae", losses.mae),
    }
    for kind in _SCORES:
        table[kind] = functools.partial(classification_metric, kind)
        for average in ("binary", "macro", "micro"):
            table[f"{kind}_{average}"] = functools.partial(classification_metric, kind, average)
    for name, fn in losses._REGISTRY.items():
        table.setdefault(name, functools.partial(_from_function, name, fn))
    return table


_METRICS = _named_metrics()


def resolve(spec: str | Metric | Callable) -> Metric:
    """A :class:`Metric` from a name, a :class:`Metric`, or a function ``m(pred, y)``.

    A function that takes ``reduction="none"`` (like the losses) is averaged per
    example; any other function is a batch-level value, weighted by each batch's
    number of real examples.

    Raises:
      ValueError: an unknown name (the message lists the known ones).

    Example:
      >>> resolve("f1").name, resolve(losses.huber).name
      ('f1', 'huber')
    """
    if isinstance(spec, Metric):
        return spec
    if callable(spec):
        return _from_function(getattr(spec, "__name__", "metric"), spec)
    return _registry.lookup("metric", _METRICS, spec)()


_FUNCTIONS: dict[str, MetricFn] = {
    "accuracy": accuracy,
    "acc": accuracy,
    "mse": losses.mse,
    "mae": losses.mae,
    "cross_entropy": losses.cross_entropy,
    "binary_cross_entropy": losses.binary_cross_entropy,
}


def get(metric: str | MetricFn) -> MetricFn:
    """Returns the batch function named ``metric``, or ``metric`` itself if callable.

    Raises:
      ValueError: for an unknown name; the message lists the known ones.

    Example:
      >>> get("accuracy") is accuracy
      True
    """
    return metric if callable(metric) else _registry.lookup("metric", _FUNCTIONS, metric)


CLASSIFICATION_LOSSES = frozenset(
    name
    for name, fn in losses._REGISTRY.items()
    if fn in (losses.cross_entropy, losses.binary_cross_entropy)
)


def default_metrics(loss: Any) -> tuple[str, ...]:
    """The metrics logged besides the loss when none are given.

    Accuracy for classification losses, nothing for regression losses and custom ones.

    Example:
      >>> default_metrics("cross_entropy"), default_metrics("mse")
      (('accuracy',), ())
    """
    is_class = loss in CLASSIFICATION_LOSSES or loss in (
        losses.cross_entropy,
        losses.binary_cross_entropy,
    )
    return ("accuracy",) if is_class else ()


def as_specs(metrics: Any) -> tuple:
    """``metrics`` as a tuple of specs: a bare string or a single callable is one metric.

    Example:
      >>> as_specs("accuracy"), as_specs(None)
      (('accuracy',), ())
    """
    if metrics is None:
        return ()
    if isinstance(metrics, str | Metric) or callable(metrics):
        return (metrics,)
    if isinstance(metrics, Mapping):
        raise TypeError("`metrics` must be a name, a callable, or a sequence of them, not a dict")
    return tuple(metrics)


__all__ = [
    "Metric",
    "MetricFn",
    "accumulate",
    "accuracy",
    "as_specs",
    "classification_metric",
    "default_metrics",
    "get",
    "per_example",
    "resolve",
    "roc_auc_score",
    "top_k_accuracy",
]
