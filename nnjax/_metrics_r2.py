"""The coefficient of determination R² as an exact streaming metric (private).

:func:`r2` is ``sklearn.metrics.r2_score`` (``multioutput="uniform_average"``) over all
the real rows of every batch. Each batch gives, per output, its row count (its total
weight, as a weighted metric, and its rows of positive weight), a *shift*
(its mean: float32, or float64 for float64 targets), the sums of the targets'
deviations from the shift and of their squares, and the residual sum of squares. On
the host (float64) the corrected two-pass formula turns a batch into its count, mean
and centred sum of squares ``M2``, and Chan, Golub and LeVeque's pairwise update
merges them::

    n = n_a + n_b;  d = mean_b - mean_a;  mean = mean_a + d * n_b / n
    M2 = M2_a + M2_b + d**2 * n_a * n_b / n

so the total sum of squares stays exact for targets with a large mean and a small
variance, where ``sum(y**2) - sum(y)**2 / n`` loses every digit in float32. A constant
target deviates from each batch's shift by one and the same rounded difference, so its
``M2`` comes out 0 and scikit-learn's rule for a constant target applies.
:mod:`nnjax.metrics` registers it as ``"r2"``.

Example:
  >>> m = r2()
  >>> s = m.stats(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.0, 2.0, 3.0]), jnp.ones(3))
  >>> m.result(s)
  0.5
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from nnjax._loss_checks import _check_same_shape, align_targets
from nnjax._metrics_streaming import Metric, Stats, _check_mask, _rows
from nnjax._torch_tensors import from_torch


def _stats(pred: jax.Array, y: jax.Array, mask: jax.Array) -> Stats:
    """One batch's statistics per output ``(M,)`` (``M`` the product of the other axes).

    ``mask`` weighs the rows (0/1, or example weights as a weighted metric; or one
    weight per position, each position then a row): ``count`` is each output's total
    weight, ``rows`` its rows of positive weight.
    """
    y = align_targets(pred, y)  # labels (B,) for outputs (B, 1), as the losses take them
    _check_same_shape("r2", pred, y)
    pred, y, mask = jnp.asarray(pred), jnp.asarray(y), jnp.asarray(from_torch(mask))
    if mask.ndim > 1:  # weights per position: each position is a row (a token, a pixel)
        _check_mask("r2", mask, y)
        rows = math.prod(mask.shape)
        pred, y = (
            pred.reshape(rows, *pred.shape[mask.ndim :]),
            y.reshape(rows, *y.shape[mask.ndim :]),
        )
        mask = mask.reshape(rows)
    p, w = _rows("r2", pred, mask)
    t, _ = _rows("r2", jnp.asarray(y), mask)
    real = w > 0
    w = jnp.where(real, w, 0).astype(t.dtype)  # float32, or float64 targets' float64
    count = jnp.sum(w, 0)
    shift = jnp.sum(jnp.where(real, w * t, 0), 0) / jnp.maximum(count, 1)  # any shift works
    d = jnp.where(real, t - shift[None, :], 0)
    r = jnp.where(real, t - p, 0)
    return {
        "count": count,
        "rows": jnp.sum(real.astype(t.dtype), 0),
        "shift": shift,
        "s1": jnp.sum(w * d, 0),
        "s2": jnp.sum(w * d * d, 0),
        "rss": jnp.sum(w * r * r, 0),
    }


def _moments(s: Stats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(count, mean, M2)`` per output of a batch or total, in float64 (corrected two-pass)."""
    n = np.asarray(s["count"], np.float64)
    s1, s2 = np.asarray(s["s1"], np.float64), np.asarray(s["s2"], np.float64)
    some, safe = n > 0, np.where(n > 0, n, 1.0)
    mean = np.where(some, np.asarray(s["shift"], np.float64) + s1 / safe, 0.0)
    return n, mean, np.where(some, np.maximum(s2 - s1 * s1 / safe, 0.0), 0.0)


def _merge(a: Stats, b: Stats) -> Stats:
    """Two batches' (or totals') statistics as one total (Chan et al.'s pairwise update)."""
    (na, ma, qa), (nb, mb, qb) = _moments(a), _moments(b)
    n = na + nb
    d = mb - ma
    some, safe = n > 0, np.where(n > 0, n, 1.0)
    return {
        "count": n,
        "rows": np.asarray(a["rows"], np.float64) + b["rows"],
        "shift": np.where(some, ma + d * (nb / safe), ma),
        "s1": np.zeros_like(ma),
        "s2": np.where(some, qa + qb + d * d * (na * nb / safe), qa),
        "rss": np.asarray(a["rss"], np.float64) + b["rss"],
    }


def _result(s: Stats) -> float:
    """scikit-learn's R², uniform average over outputs; NaN for fewer than two rows."""
    _, _, tss = _moments(s)
    if np.any(np.asarray(s["rows"]) < 2):
        return float("nan")
    rss = np.asarray(s["rss"], np.float64)
    # scikit-learn's rule: 1 for a perfect fit, 0 for a constant target fit imperfectly
    valid = (tss != 0) & (rss != 0)
    scores = np.where(valid, 1 - rss / np.where(valid, tss, 1), np.where(rss != 0, 0.0, 1.0))
    return float(np.mean(scores))


def r2(name: str = "r2") -> Metric:
    """R², the coefficient of determination, exact over any batching (scikit-learn's).

    ``1 - sum((y - p)**2) / sum((y - mean(y))**2)`` per output (each position of the
    trailing axes), averaged uniformly over outputs: ``sklearn.metrics.r2_score`` with
    ``multioutput="uniform_average"``. An output whose target is constant scores 1 if
    predicted exactly, else 0 (scikit-learn's ``force_finite`` rule). Padded rows
    (mask 0) are left out; the statistics merge exactly across batches and devices
    (see the module docstring).

    Args:
      name: the key under which it is logged.

    Returns:
      A :class:`~nnjax.metrics.Metric`; its result is a float ``<= 1`` (NaN for fewer
      than two real rows, where scikit-learn warns and gives NaN).

    Raises:
      nnjax.ShapeError: (from its ``stats``) predictions and targets of different
        shapes (other than targets ``(B,)`` for predictions ``(B, 1)`` or the reverse,
        aligned as the losses' are), or a mask that is not ``(B,)``.

    Example:
      >>> m = r2()
      >>> p, y = jnp.array([[1.0, 4.0], [2.0, 4.0]]), jnp.array([[1.0, 5.0], [3.0, 5.0]])
      >>> m.result(m.stats(p, y, jnp.ones(2)))  # (0.5 + 0) / 2: y[:, 1] is constant
      0.25
    """
    return Metric(name, _stats, _result, merge=_merge)


__all__ = ["r2"]
