"""Exact streaming metrics: batch statistics that add up over batches and devices.

A :class:`Metric` turns one batch of predictions, targets and a mask ``(B,)`` (0 for
padded rows) into *statistics* (sums, counts, confusion counts, or the scores
themselves for AUC) that add up (or concatenate) over batches and devices;
:meth:`Metric.result` turns the total into the value. The names, and the public entry
point :func:`nnjax.metrics.resolve`, live in :mod:`nnjax.metrics`, which re-exports
everything public here.

Example:
  >>> m = classification_metric("f1", "macro")
  >>> s = m.stats(jnp.array([[2.0, 1.0], [0.0, 3.0]]), jnp.array([0, 1]), jnp.ones(2))
  >>> m.result(s)
  1.0
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import losses
from nnjax._checks import positive_int
from nnjax._loss_checks import _class_ids, class_id_column
from nnjax._torch_tensors import from_torch
from nnjax.errors import ShapeError

Stats = dict[str, Any]
"""A batch's statistics: names to arrays (``Metric.stats``) or their host totals."""


def _rows(op: str, values: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``values`` as ``(B, M)`` float32 (float64 stays) and the mask broadcast to it."""
    dtype = jnp.promote_types(values.dtype, jnp.float32)  # bool, ints, bf16: float32
    flat = values.reshape(values.shape[0], math.prod(values.shape[1:])).astype(dtype)
    return flat, _spread(op, mask, values).astype(dtype).reshape(flat.shape)


def _spread(op: str, mask: Any, values: jax.Array) -> jax.Array:
    """``mask (B,)`` (or weights per position ``(B, T, ...)``) broadcast to ``values``."""
    mask = jnp.asarray(from_torch(mask))  # a PyTorch mask too (r2's)
    _check_mask(op, mask, values)
    trailing = (1,) * (values.ndim - mask.ndim)
    return jnp.broadcast_to(mask.reshape(mask.shape + trailing), values.shape)


def _check_mask(op: str, mask: jax.Array, values: jax.Array) -> None:
    """The mask needs one entry per example: shape ``(B,)`` for ``values (B, ...)``.

    Weights (:func:`nnjax.metrics.weighted`) may have one per position: the leading axes
    of ``values``.
    """
    if jnp.ndim(mask) == 0 or jnp.shape(mask) != jnp.shape(values)[: jnp.ndim(mask)]:
        raise ShapeError(
            f"{op}: `mask` has shape {jnp.shape(mask)}, expected {jnp.shape(values)[:1]}: "
            "one entry per example of the batch (or, for weights per position, the leading "
            f"axes of the values' shape {jnp.shape(values)})"
        )


def _host(*arrays: Any) -> tuple[Any, ...]:
    """PyTorch tensors as NumPy arrays (:func:`~nnjax._torch_tensors.from_torch`); others as is."""
    return tuple(from_torch(a) for a in arrays)


@dataclasses.dataclass(frozen=True)
class Metric:
    """An exact streaming metric: batch statistics that add up, and the value of a total.

    Attributes:
      name: the key under which it is logged.
      stats: ``stats(predictions (B, ...), targets (B, ...), mask (B,)) -> dict`` of
        arrays (jit-able); padded rows have mask 0.
      result: ``result(total) -> float`` from the accumulated host statistics. With
        no real example (every row masked), the built-in averages give 0.0, as Keras's
        metrics before any update (and ``fit``'s loss); ``auc`` and ``r2``, undefined
        without two classes or two rows, give NaN. (The function forms, such as
        :func:`nnjax.metrics.accuracy`, raise on no examples.)
      concat: the statistics are per-example arrays to concatenate (AUC), not sums.
      merge: ``merge(a, b) -> total`` combines two batches' (or totals') host
        statistics when they do not simply add up (R²'s means and centred sums of
        squares, Chan et al.'s pairwise update); ``None``: they add up.
      weighted: ``stats`` also takes the batch's ``(B,)`` example weights (sample and
        class weights, 0 on padding) as a fourth argument, as the loss does (the terms
        of a loss per output, :func:`nnjax.metrics.loss_terms`).

    Example:
      >>> count = Metric("count", lambda p, y, m: {"n": jnp.sum(m)}, lambda s: float(s["n"]))
      >>> count.result(count.stats(None, None, jnp.array([1.0, 0.0])))
      1.0
    """

    name: str
    stats: Callable[..., Stats]
    result: Callable[[Stats], float]
    concat: bool = False
    merge: Callable[[Stats, Stats], Stats] | None = None
    weighted: bool = False


def accumulate(metric: Metric, batches: Sequence[Stats], *, stacked: bool = False) -> Stats:
    """Adds up (or concatenates, or merges) the host statistics of several batches.

    With ``stacked``, each has a leading axis of steps (``(K, ...)`` from one dispatch).

    Args:
      metric: the metric whose statistics these are (``concat`` and ``merge`` decide
        how they combine).
      batches: one :data:`Stats` per batch (or per dispatch), with the same keys;
        host or device arrays.
      stacked: each entry holds a leading axis of ``K`` steps, summed over first.

    Returns:
      The total: float64 NumPy sums per key; for a ``concat`` metric (AUC) the
      flattened per-example arrays concatenated in order; for one with ``merge``, the
      steps' float64 statistics merged in order.

    Example:
      >>> m = top_k_accuracy(1)
      >>> stats = {"correct": np.array([1.0, 2.0]), "count": np.array([2, 2])}
      >>> m.result(accumulate(m, [stats], stacked=True))
      0.75
    """
    if metric.concat:
        return {k: np.concatenate([np.ravel(b[k]) for b in batches]) for k in batches[0]}
    if metric.merge is not None:
        host = [{k: np.asarray(v, np.float64) for k, v in b.items()} for b in batches]
        if stacked:  # one entry per step
            host = [{k: v[i] for k, v in b.items()} for b in host for i in range(_steps(b))]
        return functools.reduce(metric.merge, host)

    def total(key: str) -> Any:
        parts = [np.asarray(b[key], np.float64) for b in batches]
        return sum(p.sum(axis=0) if stacked else p for p in parts)

    return {k: total(k) for k in batches[0]}


def _steps(stats: Stats) -> int:
    return len(next(iter(stats.values())))


def _div(a: Any, b: Any) -> Any:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


def _mean_metric(
    name: str,
    per_row: Callable[[jax.Array, jax.Array], jax.Array],
    per_element: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> Metric:
    """The mean of ``per_row``'s values over the real rows.

    For weights per position, the weighted mean of ``per_element``'s values.
    """

    def stats(pred, y, mask):
        pred, y, mask = _host(pred, y, mask)
        by_position = per_element is not None and jnp.ndim(mask) > 1
        values, m = _rows(name, (per_element if by_position else per_row)(pred, y), mask)
        return {"sum": jnp.sum(values * m), "count": jnp.sum(m)}

    return Metric(name, stats, lambda s: float(_div(s["sum"], s["count"])))


def _accuracy_metric(name: str = "accuracy", *, threshold: float = 0.0) -> Metric:
    """Accuracy, a binary score counting as class 1 where it is ``> threshold``."""

    def stats(pred, y, mask):
        pred, y, mask = _host(pred, y, mask)
        p, t, _ = _class_ids(name, pred, y, threshold)
        correct, m = _rows(name, p == t, mask)
        return {"correct": jnp.sum(correct * m), "count": jnp.sum(m)}

    return Metric(name, stats, lambda s: float(_div(s["correct"], s["count"])))


def top_k_accuracy(k: int = 5) -> Metric:
    """The fraction of examples whose label is among the ``k`` highest logits.

    Integer labels ``(B,)`` (or ``(B, 1)``) or one-hot labels ``(B, C)`` with logits
    ``(B, C)``. Ties rank as in ``sklearn.metrics.top_k_accuracy_score``: the higher
    class index first. A NaN logit ranks above every number, and a NaN at the label
    is a miss (so for ``k=1`` any NaN in the row is, as for ``accuracy``). PyTorch
    tensors are read as ``fit`` reads them.

    Args:
      k: how many of the highest logits count as a hit, a positive int (``k >= C``
        counts every example).

    Returns:
      A :class:`Metric` named ``"top_k_accuracy"`` for ``k=5``, else ``"top_{k}_accuracy"``;
      its result is a float in ``[0, 1]``.

    Raises:
      ValueError: ``k`` is not a positive int. Its ``stats`` raise
        :class:`~nnjax.errors.ShapeError` for labels of neither shape, and
        ``ValueError`` for concrete ids outside ``[0, C)`` (traced ones count as misses).

    Example:
      >>> m = top_k_accuracy(2)
      >>> m.result(m.stats(jnp.array([[3.0, 2.0, 1.0]]), jnp.array([1]), jnp.ones(1)))
      1.0
    """
    k = positive_int("top_k_accuracy", "k", k)
    name = f"top_{k}_accuracy" if k != 5 else "top_k_accuracy"

    def stats(pred, y, mask):
        pred, y, mask = _host(pred, y, mask)
        if pred.ndim == 0 or pred.shape[-1] < 2:  # (B, 1) scores: labels {0, 1} are no ids
            raise ShapeError(
                f"{name}: ranks the scores of C >= 2 classes, but the predictions have "
                f"shape {pred.shape}; for one binary score use 'accuracy'"
            )
        if y.shape == pred.shape and pred.ndim >= 2 and pred.shape[-1] > 1:
            y = jnp.argmax(y, -1)  # one-hot, as for accuracy
        y = class_id_column(pred, y)
        losses._check_class_ids(name, pred, y)
        hit, m = _rows(name, _top_k_hits(pred, y.astype(jnp.int32), k), mask)
        return {"correct": jnp.sum(hit * m), "count": jnp.sum(m)}

    return Metric(name, stats, _acc_result)


def _top_k_hits(pred: jax.Array, y: jax.Array, k: int) -> jax.Array:
    """Whether fewer than ``k`` classes rank above the label's (scikit-learn's ties)."""
    classes = jax.lax.broadcasted_iota(jnp.int32, pred.shape, pred.ndim - 1)
    valid = (y >= 0) & (y < pred.shape[-1])  # traced ids out of range: misses
    own = jnp.take_along_axis(pred, jnp.clip(y, 0, pred.shape[-1] - 1)[..., None], -1)
    above = (pred > own) | ((pred == own) & (classes > y[..., None])) | jnp.isnan(pred)
    return valid & ~jnp.isnan(own[..., 0]) & (jnp.sum(above, -1) < k)


def _acc_result(s: Stats) -> float:
    return float(_div(s["correct"], s["count"]))


def _confusion(op: str, pred, y, mask, *, binary: bool = False, threshold: float = 0.0) -> Stats:
    pred, y, mask = _host(pred, y, mask)
    p, t, c = _class_ids(op, pred, y, threshold)
    if binary and c > 2:
        raise ValueError(
            f"{op}: average='binary' scores class 1 of two, but predictions of shape "
            f"{pred.shape} have {c} classes; use average='macro' or 'micro'"
        )
    m = _spread(op, mask, p).astype(jnp.float32).ravel()[:, None]  # a mask, or weights
    p1, t1 = jax.nn.one_hot(p.ravel(), c), jax.nn.one_hot(t.ravel(), c)
    return {
        "tp": jnp.sum(m * p1 * t1, 0),
        "fp": jnp.sum(m * p1 * (1 - t1), 0),
        "fn": jnp.sum(m * (1 - p1) * t1, 0),
    }


_SCORES = {
    "precision": lambda tp, fp, fn: _div(tp, tp + fp),
    "recall": lambda tp, fp, fn: _div(tp, tp + fn),
    "f1": lambda tp, fp, fn: _div(2 * tp, 2 * tp + fp + fn),
}
_AVERAGES = (None, "binary", "macro", "micro")


def classification_metric(
    kind: str, average: str | None = None, *, threshold: float = 0.0
) -> Metric:
    """Precision, recall or F1 from confusion counts, like scikit-learn (zero division 0).

    Labels and predictions are read as :func:`nnjax.metrics.accuracy` reads them. A row
    whose scores hold a NaN (a diverged model) predicts a wrong class, ``(label + 1) %
    C``: a false negative of its label and a false positive of that class, as
    scikit-learn scores such a row once it is given a wrong prediction (it refuses NaN).

    Args:
      kind: ``"precision"``, ``"recall"`` or ``"f1"``.
      average: ``"binary"`` (class 1 of two), ``"macro"`` (mean over the classes
        present in the labels or predictions), ``"micro"`` (global counts), or ``None``:
        binary for two classes, else macro.
      threshold: a binary score (one output) counts as class 1 where it is
        ``> threshold``: 0 for logits (the default), 0.5 for probabilities.

    Returns:
      A :class:`Metric` named ``kind`` (``average=None``) or ``f"{kind}_{average}"``;
      its result is a float in ``[0, 1]``.

    Raises:
      ValueError: an unknown ``kind`` or ``average`` (the message lists the valid ones).
        Its ``stats`` raise as :func:`nnjax.metrics.accuracy` does for labels that do
        not match the predictions, and ``ValueError`` for ``"binary"`` with more than
        two classes.

    Example:
      >>> m = classification_metric("recall", "binary")
      >>> m.result(m.stats(jnp.array([1.0, -1.0]), jnp.array([1, 1]), jnp.ones(2)))
      0.5
    """
    if kind not in _SCORES or average not in _AVERAGES:
        raise ValueError(
            f"classification_metric: unknown metric {kind!r} with average={average!r}; "
            f"`kind` must be one of {', '.join(map(repr, _SCORES))} and `average` one of "
            f"{', '.join(map(repr, _AVERAGES))}"
        )
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
    stats = functools.partial(
        _confusion, name, binary=average == "binary", threshold=float(threshold)
    )
    return Metric(name, stats, result)


__all__ = ["Metric", "accumulate", "classification_metric", "top_k_accuracy"]
