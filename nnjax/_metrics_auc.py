"""The binary ROC AUC: exact, from every score, with example weights (private).

:func:`roc_auc_score` is re-exported by :mod:`nnjax.metrics`; ``_auc_metric`` is the
streaming metric ``"auc"``: its statistics are the scores themselves (concatenated over
batches), ranked once at the end, each weighted by its mask entry (0/1) or, as a
weighted metric (:func:`nnjax.metrics.weighted`), by its example's weight.

Example:
  >>> import numpy as np
  >>> roc_auc_score(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
  0.75
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from nnjax._loss_checks import _binary_labels, _check_values, auc_inputs, not_binary
from nnjax._metrics_streaming import Metric, Stats, _host, _spread
from nnjax.errors import ShapeError


def _binary_scores(pred: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    y = _binary_labels(pred, y)
    score, label = pred, y
    one_hot = pred.shape == y.shape and pred.ndim >= 2 and pred.shape[-1] > 1  # as accuracy
    if one_hot and pred.shape[-1] == 2:
        score, label = pred[..., 1] - pred[..., 0], y[..., 1]
    elif pred.ndim == y.ndim + 1 and pred.shape[-1] == 2:
        score = pred[..., 1] - pred[..., 0]
    elif pred.ndim == y.ndim + 1 and pred.shape[-1] == 1:
        score = pred[..., 0]
    if score.shape != label.shape or (one_hot and pred.shape[-1] > 2):
        raise ShapeError(
            f"auc: needs binary scores (B,) or (B, 1) or two-class logits (B, 2) for labels "
            f"(B,) (or one-hot (B, 2)); got predictions {pred.shape} and labels {y.shape}"
        )
    what = "is not a binary label: auc ranks the scores of classes 0 (0 or -1) and 1"
    _check_values("auc", "labels", label, not_binary, what)
    return score, label


def roc_auc_score(scores: np.ndarray, labels: np.ndarray) -> float:
    """Exact binary ROC AUC (ties count one half), as ``sklearn.metrics.roc_auc_score``.

    NaN when the labels hold a single class, or when a score is NaN (a diverged model;
    scikit-learn raises there, and sorting NaN last gave a confident 1.0).

    Args:
      scores: ``(N,)`` or ``(N, 1)`` real scores, higher meaning class 1; read as float64.
      labels: the same length: 0 and 1 (bool, int or float), or -1 and 1 (the hinge
        losses'); class 1 is positive.

    Returns:
      The AUC, a Python float in ``[0, 1]`` (or NaN as above).

    Raises:
      nnjax.ShapeError: another shape, or ``scores`` and ``labels`` differ in length.
      ValueError: no examples, as scikit-learn; a label other than 0, 1 or -1 (2, 0.5,
        NaN; scikit-learn takes any two values, the larger positive), or both -1 and 0.

    Example:
      >>> roc_auc_score(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
      0.75
    """
    scores, labels = auc_inputs("roc_auc_score", scores, labels)
    if scores.size == 0:
        raise ValueError(f"roc_auc_score: no examples (scores of shape {scores.shape})")
    return _ranked_auc(scores, labels)


def _ranked_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """The AUC of float64 ``scores (N,)`` for bool ``labels (N,)`` (True: class 1)."""
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0 or np.isnan(scores).any():
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    ranks = np.empty(len(s))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def _weighted_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """The AUC with example weights (scikit-learn's ``sample_weight``).

    ``sum w_i w_j`` over the positive-negative pairs ranked right (ties count half),
    over ``W_pos W_neg``.
    """
    w_pos, w_neg = np.where(labels, weights, 0.0), np.where(labels, 0.0, weights)
    if w_pos.sum() == 0 or w_neg.sum() == 0 or np.isnan(scores).any():
        return float("nan")
    values, group = np.unique(scores, return_inverse=True)  # ties share a group
    pos = np.bincount(group, w_pos, len(values))
    neg = np.bincount(group, w_neg, len(values))
    below = np.cumsum(neg) - neg  # negative weight ranked strictly below each group
    return float(np.sum(pos * (below + 0.5 * neg)) / (pos.sum() * neg.sum()))


def _auc_metric(name: str = "auc") -> Metric:
    def stats(pred, y, mask):
        pred, y, mask = _host(pred, y, mask)
        score, label = _binary_scores(pred, y)
        m = _spread(name, mask, score)
        score = score.astype(jnp.promote_types(score.dtype, jnp.float32))  # float64 stays
        return {"score": score, "label": label.astype(jnp.float32), "mask": m}

    def result(s: Stats) -> float:
        weight = np.asarray(s["mask"], np.float64)
        keep = weight > 0
        if not keep.any():  # no real example: undefined, as with a single class
            return float("nan")
        score = np.asarray(s["score"], np.float64)[keep]  # labels -1 or in [0, 1]: checked
        label, weight = np.asarray(s["label"])[keep] > 0.5, weight[keep]
        if np.all(weight == 1.0):  # a mask: every kept example counts once
            return _ranked_auc(score, label)
        return _weighted_auc(score, label, weight)

    return Metric(name, stats, result, concat=True)


__all__ = ["roc_auc_score"]
