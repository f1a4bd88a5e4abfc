"""Keras 3's other losses (private; :mod:`nnjax.losses` re-exports them).

``kl_divergence``, ``poisson``, ``log_cosh``, ``hinge``, ``squared_hinge``,
``categorical_hinge`` and ``cosine_similarity``: each computes what ``keras.losses.<name>``
computes (the same formula, clipping and ``epsilon = 1e-7``), with nnjax's conventions:
predictions first, both arrays of the same shape, ``reduction="mean"`` (default),
``"sum"`` or ``"none"``. The elementwise ones (``poisson``, ``log_cosh``, the two hinges)
give one value per element for ``"none"``; the others reduce the last axis first and give
one value per row, ``predictions.shape[:-1]``. Either way ``"mean"`` is Keras's value
(its mean over the last axis, then over the batch).

Example:
  >>> import jax.numpy as jnp
  >>> float(hinge(jnp.array([0.5, -2.0]), jnp.array([1, 0])))
  0.25
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax._loss_checks import (
    _check_same_shape,
    _check_values,
    _floating,
    _in_float32,
    _reduce,
)

ArrayLike = jax.typing.ArrayLike
EPSILON = 1e-7
"""Keras's ``keras.backend.epsilon()``: the clip of ``kl_divergence``, the shift of
``poisson``'s log and the smallest norm of ``cosine_similarity``."""


def _inputs(
    op: str, predictions: ArrayLike, targets: ArrayLike, *, rows: bool = False
) -> tuple[jax.Array, jax.Array]:
    """Both checked (real, same shape; ``rows``: a last axis) and in their floating dtype."""
    _check_same_shape(op, predictions, targets)  # real numbers (TypeError), one shape
    if rows and np.ndim(predictions) == 0:
        raise ValueError(
            f"{op}: `predictions` and `targets` are scalars; the loss reduces their last "
            "axis, so give them one, e.g. shape (C,) or (B, C)"
        )
    return _floating(predictions, targets)


def _outside_unit(values: np.ndarray) -> np.ndarray:
    return ~((values >= 0) & (values <= 1))


def kl_divergence(
    predictions: ArrayLike, targets: ArrayLike, *, reduction: str = "mean"
) -> jax.Array:
    """Kullback-Leibler divergence ``sum(t * log(t / p))`` over the last axis (Keras's).

    Both are clipped to ``[1e-7, 1]`` first, as ``keras.losses.kl_divergence`` clips
    them; then ``optax.losses.kl_divergence(log(p), t)``. Rows are expected to sum to one
    (not checked: Keras accepts any values in ``[0, 1]``). float16 and bfloat16 inputs
    are computed in float32 and the result rounded to their dtype (in float16 the
    gradient ``-t / 1e-7`` at a prediction of 0 would overflow and give NaN).

    Args:
      predictions: ``(..., C)`` probabilities, e.g. a softmax output.
      targets: ``(..., C)`` probabilities, the same shape (any real dtype).
      reduction: ``"mean"`` over rows, ``"sum"``, or ``"none"`` (per row, ``(...)``).

    Returns:
      A scalar for ``"mean"`` and ``"sum"``, else ``predictions.shape[:-1]``; in the
      promoted dtype (float32 for integer or boolean inputs).

    Raises:
      nnjax.ShapeError: ``predictions`` and ``targets`` differ in shape.
      TypeError: an argument that is not a real numeric array.
      ValueError: scalar inputs (no last axis); a concrete value outside ``[0, 1]``
        or NaN (names the argument and the first one; not checked under ``jax.jit``);
        an unknown ``reduction``.

    Example:
      >>> round(float(kl_divergence(jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0]))), 4)
      0.6931
    """
    p, t = _inputs("kl_divergence", predictions, targets, rows=True)
    for name, x in (("predictions", predictions), ("targets", targets)):
        what = "is outside [0, 1]: both are probabilities over the last axis"
        _check_values("kl_divergence", name, x, _outside_unit, what)

    def loss(p: jax.Array, t: jax.Array) -> jax.Array:
        p, t = jnp.clip(p, EPSILON, 1), jnp.clip(t, EPSILON, 1)
        return _reduce(optax.losses.kl_divergence(jnp.log(p), t), reduction)

    return _in_float32(loss, p, t)


def poisson(predictions: ArrayLike, targets: ArrayLike, *, reduction: str = "mean") -> jax.Array:
    """Poisson negative log-likelihood ``p - t * log(p + 1e-7)`` (less ``log(t!)``; Keras's).

    ``torch.nn.functional.poisson_nll_loss(p, t, log_input=False)`` is the same with
    ``eps=1e-8``.

    Args:
      predictions: any shape, the predicted rates ``>= 0`` (e.g. after ``softplus``).
      targets: the same shape, observed counts ``>= 0`` (any real dtype).
      reduction: ``"mean"`` over all elements, ``"sum"``, or ``"none"`` (elementwise).

    Returns:
      A scalar for ``"mean"`` and ``"sum"``, else the elementwise values in the shape of
      ``predictions``; the promoted dtype (float32 for integer or boolean inputs).

    Raises:
      nnjax.ShapeError: ``predictions`` and ``targets`` differ in shape.
      TypeError: an argument that is not a real numeric array.
      ValueError: a concrete negative (or NaN) value in either (names the first one;
        not checked under ``jax.jit``, where a negative rate gives NaN); an unknown
        ``reduction``.

    Example:
      >>> round(float(poisson(jnp.array([1.0, 2.0]), jnp.array([1.0, 2.0]))), 4)
      0.8069
    """
    p, t = _inputs("poisson", predictions, targets)
    for name, x, what in (("predictions", predictions, "rates"), ("targets", targets, "counts")):
        bad = lambda v: ~(v >= 0)
        _check_values("poisson", name, x, bad, f"is negative or NaN: {name} are {what} >= 0")
    return _reduce(p - t * jnp.log(p + EPSILON), reduction)


def log_cosh(predictions: ArrayLike, targets: ArrayLike, *, reduction: str = "mean") -> jax.Array:
    """``log(cosh(p - t))`` (``optax.losses.log_cosh``): about ``e**2 / 2``, then ``|e| - log 2``.

    Args:
      predictions: any shape, real.
      targets: the same shape, real.
      reduction: ``"mean"`` over all elements, ``"sum"``, or ``"none"`` (elementwise).

    Returns:
      A scalar for ``"mean"`` and ``"sum"``, else the elementwise values in the shape of
      ``predictions``; the promoted dtype (float32 for integer or boolean inputs).

    Raises:
      nnjax.ShapeError: ``predictions`` and ``targets`` differ in shape.
      TypeError: an argument that is not a real numeric array.
      ValueError: an unknown ``reduction``.

    Example:
      >>> round(float(log_cosh(jnp.array([1.0, 0.0]), jnp.array([0.0, 0.0]))), 4)
      0.2169
    """
    p, t = _inputs("log_cosh", predictions, targets)
    return _reduce(optax.losses.log_cosh(p, t), reduction)


def _not_hinge_label(values: np.ndarray) -> np.ndarray:
    if np.isin(values, (0, 1)).all():  # 0/1 labels: read as -1/1
        return np.zeros(values.shape, bool)
    return ~np.isin(values, (-1, 1))


def _hinge(op: str, predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    """``max(1 - p * t, 0)`` elementwise, with 0/1 targets read as -1/1 (as Keras does)."""
    p, t = _inputs(op, predictions, targets)
    what = "is not -1 or 1: targets are -1/1 labels (or all 0/1, read as -1/1)"
    _check_values(op, "targets", targets, _not_hinge_label, what)
    binary = jnp.all((t == 0) | (t == 1))  # Keras's rule, over the whole array
    return optax.losses.hinge_loss(p, jnp.where(binary, 2 * t - 1, t))


def hinge(predictions: ArrayLike, targets: ArrayLike, *, reduction: str = "mean") -> jax.Array:
    """Hinge loss ``max(1 - p * t, 0)`` for -1/1 labels (``optax.losses.hinge_loss``).

    As in Keras, targets that are all 0 or 1 are read as -1/1 (``2 * t - 1``).

    Args:
      predictions: any shape, real scores (a positive score predicts 1).
      targets: the same shape: -1/1 labels, or all 0/1 (any real dtype).
      reduction: ``"mean"`` over all elements, ``"sum"``, or ``"none"`` (elementwise).

    Returns:
      A scalar for ``"mean"`` and ``"sum"``, else the elementwise values in the shape of
      ``predictions``; the promoted dtype (float32 for integer or boolean inputs).

    Raises:
      nnjax.ShapeError: ``predictions`` and ``targets`` differ in shape.
      TypeError: an argument that is not a real numeric array.
      ValueError: concrete targets that are neither all -1/1 nor all 0/1 (names the
        first other one; not checked under ``jax.jit``); an unknown ``reduction``.

    Example:
      >>> float(hinge(jnp.array([0.5, -2.0]), jnp.array([1.0, -1.0])))
      0.25
    """
    return _reduce(_hinge("hinge", predictions, targets), reduction)


def squared_hinge(
    predictions: ArrayLike, targets: ArrayLike, *, reduction: str = "mean"
) -> jax.Array:
    """Squared hinge loss ``max(1 - p * t, 0) ** 2`` for -1/1 labels (Keras's).

    As in Keras, targets that are all 0 or 1 are read as -1/1 (``2 * t - 1``).

    Args:
      predictions: any shape, real scores (a positive score predicts 1).
      targets: the same shape: -1/1 labels, or all 0/1 (any real dtype).
      reduction: ``"mean"`` over all elements, ``"sum"``, or ``"none"`` (elementwise).

    Returns:
      A scalar for ``"mean"`` and ``"sum"``, else the elementwise values in the shape of
      ``predictions``; the promoted dtype (float32 for integer or boolean inputs).

    Raises:
      nnjax.ShapeError: ``predictions`` and ``targets`` differ in shape.
      TypeError: an argument that is not a real numeric array.
      ValueError: concrete targets that are neither all -1/1 nor all 0/1 (names the
        first other one; not checked under ``jax.jit``); an unknown ``reduction``.

    Example:
      >>> float(squared_hinge(jnp.array([0.5, -3.0]), jnp.array([1, 0])))
      0.125
    """
    return _reduce(jnp.square(_hinge("squared_hinge", predictions, targets)), reduction)


def categorical_hinge(
    predictions: ArrayLike, targets: ArrayLike, *, reduction: str = "mean"
) -> jax.Array:
    """Keras's categorical hinge ``max(neg - pos + 1, 0)`` for one-hot targets.

    ``pos = sum(t * p)`` (the true class's score) and ``neg = max((1 - t) * p)``, the
    largest other score or 0, whichever is larger (the true class enters as 0: Keras's
    formula, which differs from ``optax.losses.multiclass_hinge_loss`` when every other
    score is negative).

    Args:
      predictions: ``(..., C)`` real scores.
      targets: ``(..., C)`` one-hot rows (0/1 entries, one 1 per row; any real dtype).
      reduction: ``"mean"`` over rows, ``"sum"``, or ``"none"`` (per row, ``(...)``).

    Returns:
      A scalar for ``"mean"`` and ``"sum"``, else ``predictions.shape[:-1]``; the
      promoted dtype (float32 for integer or boolean inputs).

    Raises:
      nnjax.ShapeError: ``predictions`` and ``targets`` differ in shape.
      TypeError: an argument that is not a real numeric array.
      ValueError: scalar inputs (no class axis); concrete targets with an entry other
        than 0 or 1, or a row without exactly one 1 (names the first; not checked under
        ``jax.jit``); an unknown ``reduction``.

    Example:
      >>> float(categorical_hinge(jnp.array([[2.0, 1.5, -1.0]]), jnp.array([[1, 0, 0]])))
      0.5
    """
    op = "categorical_hinge"
    p, t = _inputs(op, predictions, targets, rows=True)
    what = "is not 0 or 1: targets are one-hot rows"
    _check_values(op, "targets", targets, lambda v: ~((v == 0) | (v == 1)), what)
    what = "is not 1: each one-hot row holds exactly one 1"  # (t traced: not checked)
    _check_values(op, "targets.sum(axis=-1)", t.sum(-1), lambda v: v != 1, what)
    pos = jnp.sum(t * p, axis=-1)
    neg = jnp.max((1 - t) * p, axis=-1)
    return _reduce(jnp.maximum(neg - pos + 1, 0), reduction)


def cosine_similarity(
    predictions: ArrayLike, targets: ArrayLike, *, reduction: str = "mean"
) -> jax.Array:
    """Keras's cosine-similarity loss: minus the cosine over the last axis, in ``[-1, 1]``.

    ``-optax.losses.cosine_similarity`` with norms clipped below at ``1e-7`` as Keras
    clips them, so a zero vector gives 0, not NaN. ``-1`` is a perfect match. The
    gradient at a zero prediction row is not zero but about ``-unit(t) / 1e-7``
    (divided by the number of rows for ``"mean"``), ``unit(t) = t / |t|``, as
    ``torch.nn.functional.cosine_similarity``'s is ``-unit(t) / eps``; in float16 it
    overflows to ``-inf``. float16 and bfloat16 inputs are computed in float32 and the
    result rounded to their dtype (the squared norm overflows float16 above a norm of
    256, and ``1e-7 ** 2`` underflows to 0).

    Args:
      predictions: ``(..., D)`` real vectors.
      targets: ``(..., D)`` real vectors, the same shape.
      reduction: ``"mean"`` over rows, ``"sum"``, or ``"none"`` (per row, ``(...)``).

    Returns:
      A scalar for ``"mean"`` and ``"sum"``, else ``predictions.shape[:-1]``; the
      promoted dtype (float32 for integer or boolean inputs).

    Raises:
      nnjax.ShapeError: ``predictions`` and ``targets`` differ in shape.
      TypeError: an argument that is not a real numeric array.
      ValueError: scalar inputs (no last axis); an unknown ``reduction``.

    Example:
      >>> p, t = jnp.array([[1.0, 1.0], [1.0, 0.0]]), jnp.array([[2.0, 2.0], [0.0, 3.0]])
      >>> cosine_similarity(p, t, reduction="none").round(4)
      Array([-1., -0.], dtype=float32)
    """
    p, t = _inputs("cosine_similarity", predictions, targets, rows=True)

    def loss(p: jax.Array, t: jax.Array) -> jax.Array:
        cosine = optax.losses.cosine_similarity(p, t, epsilon=EPSILON**2)  # |x| >= 1e-7
        return _reduce(-cosine, reduction)

    return _in_float32(loss, p, t)


KERAS_LOSSES = {
    "kl_divergence": kl_divergence,
    "kld": kl_divergence,
    "poisson": poisson,
    "log_cosh": log_cosh,
    "hinge": hinge,
    "squared_hinge": squared_hinge,
    "categorical_hinge": categorical_hinge,
    "cosine_similarity": cosine_similarity,
}
"""The registry names of these losses (Keras's names and its ``kld`` alias)."""
