"""Shared checks and reductions of the losses (private; :mod:`nnjax.losses` re-exports).

Used by :mod:`nnjax.losses`, its Keras losses (``nnjax._losses_keras``) and the metrics:
the reduction, the dtype promotion, and the shape and value checks whose messages name
the loss and the argument.

Example:
  >>> import jax.numpy as jnp
  >>> float(_reduce(jnp.array([1.0, 3.0]), "mean"))
  2.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from nnjax._torch_tensors import from_torch
from nnjax.errors import ShapeError

ArrayLike = jax.typing.ArrayLike


_Labels = TypeVar("_Labels")


def _reduce(values: jax.Array, reduction: str) -> jax.Array:
    if reduction in ("mean", "sum"):
        return jnp.mean(values) if reduction == "mean" else jnp.sum(values)
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _floating(predictions: ArrayLike, targets: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Both in their promoted dtype, float32 if that is not floating (integer targets)."""
    predictions, targets = jnp.asarray(from_torch(predictions)), jnp.asarray(from_torch(targets))
    dtype = jnp.result_type(predictions, targets)
    dtype = dtype if jnp.issubdtype(dtype, jnp.inexact) else jnp.dtype(jnp.float32)
    return jnp.asarray(predictions, dtype), jnp.asarray(targets, dtype)


def _numbers(op: str, logits: ArrayLike) -> jax.Array:
    """``logits`` as an array, integer or boolean ones as float32 (checked: numbers)."""
    _check_array(op, "logits", logits)
    logits = jnp.asarray(from_torch(logits))
    return logits if jnp.issubdtype(logits.dtype, jnp.floating) else logits.astype(jnp.float32)


def _in_float32(fn: Callable[..., jax.Array], *arrays: jax.Array) -> jax.Array:
    """``fn(*arrays)`` computed in at least float32, rounded back to the arrays' dtype.

    For 16-bit floating ``arrays`` (float16, bfloat16; all of one dtype, as
    :func:`_floating` gives them), as :func:`nnjax.activations.gelu` computes float16:
    a loss's intermediates (``1 / 1e-7``, a squared norm) overflow float16, and its
    gradient with them. float32 and float64 arrays are passed as they are.

    Example:
      >>> x = jnp.array([300.0], jnp.float16)
      >>> x * x / 1e3, _in_float32(lambda x: x * x / 1e3, x)
      (Array([inf], dtype=float16), Array([90.], dtype=float16))
    """
    dtype = arrays[0].dtype
    work = jnp.promote_types(dtype, jnp.float32)
    if work == dtype:
        return fn(*arrays)
    return fn(*(x.astype(work) for x in arrays)).astype(dtype)


def _check_array(op: str, name: str, x: Any) -> None:
    """Raises ``TypeError`` naming ``op`` and ``name`` unless ``x`` is real numbers (or bools).

    Arrays, NumPy and JAX scalars, nested lists of numbers and PyTorch tensors pass;
    ``None``, strings, objects and complex numbers do not (they reached NumPy's or
    Optax's errors, naming neither).
    """
    x = from_torch(x)
    if x is None or isinstance(x, str | bytes):
        raise TypeError(f"{op}: `{name}` must be an array of numbers, got {x!r}")
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(x).dtype
        except (TypeError, ValueError):  # ragged lists
            raise TypeError(f"{op}: `{name}` must be an array of numbers, got {x!r:.80}") from None
    if not (jnp.issubdtype(dtype, jnp.number) or dtype == np.bool_):
        raise TypeError(f"{op}: `{name}` must be numbers, got dtype {dtype}")
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(f"{op}: `{name}` is complex ({dtype}); the loss needs real values")


def _check_same_shape(
    name: str, predictions: ArrayLike, targets: ArrayLike, names=("predictions", "targets")
) -> None:
    """Raises :class:`~nnjax.errors.ShapeError` unless both have the same (static) shape.

    Both are first checked to be numbers (:func:`_check_array`: ``TypeError``).
    """
    _check_array(name, names[0], predictions)
    _check_array(name, names[1], targets)
    predictions, targets = from_torch(predictions), from_torch(targets)
    if np.shape(predictions) != np.shape(targets):
        raise ShapeError(
            f"{name}: `{names[0]}` has shape {np.shape(predictions)} but `{names[1]}` has "
            f"shape {np.shape(targets)}; they must match"
        )


def align_targets(predictions: Any, y: Any) -> Any:
    """``y`` with a size-1 last axis added or dropped to match ``predictions`` (as Keras).

    ``fit``, ``evaluate`` and ``sweep`` apply it for the losses (and the metrics named
    after them) in :data:`TARGETS_LIKE_PREDICTIONS`: labels ``(B,)`` for a model with
    one output ``(B, 1)`` (a sigmoid classifier, a scalar regression) become ``(B, 1)``,
    and ``(B, 1)`` labels for ``(B,)`` outputs ``(B,)``. Any other mismatch (and a
    pytree) is returned as is, for the loss to report.

    Args:
      predictions: the model's output, ``(B, ...)``.
      y: the labels or targets.

    Returns:
      ``y``, reshaped as above or unchanged.

    Example:
      >>> align_targets(jnp.zeros((4, 1)), jnp.ones(4)).shape
      (4, 1)
      >>> align_targets(jnp.zeros(4), jnp.ones((4, 1))).shape
      (4,)
    """
    if not (hasattr(predictions, "ndim") and hasattr(y, "ndim")):
        return y
    if y.ndim + 1 == predictions.ndim and predictions.shape[-1] == 1:
        return y[..., None]
    if y.ndim == predictions.ndim + 1 and y.shape[-1] == 1:
        return y[..., 0]
    return y


def per_example_mean(values: ArrayLike) -> jax.Array:
    """``values (B, ...)`` averaged over every axis but the first: ``(B,)``.

    An empty batch gives ``(0,)`` (a ``reshape(B, -1)`` cannot infer the size there).

    Example:
      >>> per_example_mean(jnp.ones((2, 3, 4))).shape, per_example_mean(jnp.ones((0, 3))).shape
      ((2,), (0,))
    """
    values = jnp.asarray(values)
    return values.mean(axis=tuple(range(1, values.ndim))) if values.ndim > 1 else values


def _concrete(x: ArrayLike) -> np.ndarray | None:
    """``x`` as a NumPy array, or ``None`` when traced: value checks skip traced arrays."""
    return None if isinstance(x, jax.core.Tracer) else np.asarray(from_torch(x))


def _check_values(
    op: str, name: str, x: ArrayLike, bad: Callable[[np.ndarray], np.ndarray], what: str
) -> None:
    """Concrete ``x`` only: raises naming the first entry where ``bad(values)`` holds."""
    values = _concrete(x)
    if values is None or values.size == 0:
        return
    flags = np.asarray(bad(values))
    if flags.any():
        at = tuple(int(i) for i in np.argwhere(flags)[0])
        where = f"{name}[{', '.join(map(str, at))}]" if at else name
        count = int(flags.sum())
        raise ValueError(
            f"{op}: `{where}` = {values[at].item()!r} {what} "
            f"({count} bad value{'s' if count != 1 else ''} in `{name}`)"
        )


def class_id_column(logits: Any, labels: _Labels) -> _Labels:
    """Class ids ``(..., 1)`` for ``logits (..., C)``, ``C > 1``, without the last axis.

    Keras's sparse losses and metrics take labels as a column; one-hot labels would be
    ``(..., C)``, so the size-1 axis is unambiguous. Anything else is returned as is.

    Example:
      >>> class_id_column(jnp.zeros((4, 3)), jnp.zeros((4, 1), int)).shape
      (4,)
      >>> class_id_column(jnp.zeros((4, 1)), jnp.zeros((4, 1), int)).shape
      (4, 1)
    """
    shape, ids = (tuple(getattr(a, "shape", ())) for a in (logits, labels))
    if len(shape) == len(ids) >= 2 and shape[-1] > 1 and ids[-1] == 1:
        return labels[..., 0]  # type: ignore[index]
    return labels


def _check_class_ids(op: str, logits: jax.Array, labels: jax.Array) -> None:
    """Checks class ids ``labels (...)`` for ``logits (..., C)``.

    A ShapeError unless the shape is ``logits.shape[:-1]`` (static, so also under jit);
    a ValueError naming the first concrete id outside ``[0, C)``.
    """
    if labels.shape != logits.shape[:-1]:
        raise ShapeError(
            f"{op}: integer `labels` have shape {labels.shape} but `logits` has shape "
            f"{logits.shape}; the labels must have shape {logits.shape[:-1]} (one class id "
            "per row of logits)"
        )
    classes = logits.shape[-1]
    what = f"is not a class id in [0, {classes}): the logits have {classes} classes"
    _check_values(op, "labels", labels, lambda v: (v < 0) | (v >= classes), what)
    if jnp.issubdtype(labels.dtype, jnp.floating):  # float class ids must be whole
        _check_values(op, "labels", labels, lambda v: v != np.floor(v), "is not a class id")


def _class_ids(
    op: str, logits: jax.Array, labels: jax.Array, threshold: float = 0.0
) -> tuple[jax.Array, jax.Array, int]:
    """``(predicted, true, C)``: class ids ``(B, ...)`` read off the shapes (the metrics').

    Class ids ``labels (...)`` (or a column ``(..., 1)``, bool ones as 0/1) or one-hot
    ``(..., C)`` for ``logits (..., C)``, ``C > 1``: the argmax. Otherwise a binary
    score (``(...)`` or ``(..., 1)``, labels of either shape) counts as class 1 where
    it is ``> threshold`` (0 for logits, 0.5 for probabilities or a regression's
    output), a label where it is ``> 0.5``. A row whose scores hold a NaN predicts a
    wrong class, ``(label + 1) % C``: a miss (``top_k_accuracy``'s rule) and a false
    positive, as any wrong prediction (a diverged model scores no better), also under
    ``jit``.

    Raises :class:`ShapeError` for shapes that do not match (static, so also under
    ``jit``), and ``ValueError`` for concrete class ids outside ``[0, C)`` or, in a
    float dtype, not whole numbers, and for concrete binary labels outside ``[0, 1]``
    but ``-1`` (the hinge losses' class 0); traced ones are not checked: class 1 where
    ``> 0.5``.
    """
    labels = class_id_column(logits, _binary_labels(logits, labels))
    if labels.ndim == logits.ndim - 1 and logits.shape[-1] > 1:
        _check_class_ids(op, logits, labels)
        true, c = labels.astype(jnp.int32), logits.shape[-1]
        return _nan_miss(logits, jnp.argmax(logits, -1), true, c), true, c
    if labels.shape == logits.shape and logits.ndim >= 2 and logits.shape[-1] > 1:
        true, c = jnp.argmax(labels, -1), logits.shape[-1]
        return _nan_miss(logits, jnp.argmax(logits, -1), true, c), true, c
    shape = logits.shape
    if logits.ndim == labels.ndim + 1 and logits.shape[-1] == 1:
        logits = logits[..., 0]
    if logits.shape != labels.shape:
        raise ShapeError(
            f"{op}: cannot match predictions of shape {logits.shape} with labels of shape "
            f"{labels.shape} (integer labels (B,), one-hot (B, C) or binary (B,)/(B, 1))"
        )
    what = (
        f"is not a binary label: the predictions are one score per example (shape "
        f"{shape}), so the labels must be 0 or 1 (-1 or 1 as hinge losses take them, or "
        "probabilities in [0, 1])"
    )
    _check_values(op, "labels", labels, not_binary, what)
    true = (labels > 0.5).astype(jnp.int32)
    return _nan_miss(logits, (logits > threshold).astype(jnp.int32), true, 2), true, 2


def not_binary(v: np.ndarray) -> np.ndarray:
    """Where ``v`` is no binary label: outside ``[0, 1]`` and not ``-1`` (hinge's 0)."""
    return ~(((v >= 0) & (v <= 1)) | (v == -1))


def auc_inputs(op: str, scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, positive)``, float64 and bool ``(N,)``: ``roc_auc_score``'s inputs, checked.

    Each ``(N,)`` or ``(N, 1)``; labels 0 and 1 (bool, int or float) or -1 and 1 (the
    hinge losses'), class 1 positive. Other labels raise (NaN too; scikit-learn takes any
    two values, the larger positive): a ``ValueError`` naming the first and the distinct
    bad values, or that ``labels`` mix -1 and 0. A ``ShapeError`` for other shapes or
    lengths that differ (a ``TypeError`` for no numbers).
    """
    _check_array(op, "scores", scores)
    _check_array(op, "labels", labels)
    arrays = [np.asarray(from_torch(a)) for a in (scores, labels)]
    for name, a in zip(("scores", "labels"), arrays):
        if a.ndim not in (1, 2) or a.shape[1:] not in ((), (1,)):
            raise ShapeError(
                f"{op}: `{name}` has shape {a.shape}; it needs one value per example, "
                "(N,) or (N, 1) (score several columns one at a time)"
            )
    if len(arrays[0]) != len(arrays[1]):
        raise ShapeError(
            f"{op}: `scores` has shape {arrays[0].shape} but `labels` has shape "
            f"{arrays[1].shape}; they must match"
        )
    scores, labels = arrays[0].reshape(-1), arrays[1].reshape(-1)
    bad = ~np.isin(labels, (0, 1, -1))  # NaN too
    if bad.any():
        wrong = ", ".join(map(repr, np.unique(labels[bad])[:6].tolist()))
        what = f"is not a binary label (0 and 1, or -1 and 1); the bad values: {wrong}"
        _check_values(op, "labels", labels, lambda v: ~np.isin(v, (0, 1, -1)), what)
    if (labels == -1).any() and (labels == 0).any():
        at = int(np.argmax(labels == -1)), int(np.argmax(labels == 0))
        raise ValueError(
            f"{op}: `labels` hold both -1 (labels[{at[0]}]) and 0 (labels[{at[1]}]): class "
            "0 is 0 (0/1 labels) or -1 (-1/1 labels), not both"
        )
    return scores.astype(np.float64), labels == 1


def _nan_miss(scores: jax.Array, ids: jax.Array, true: jax.Array, classes: int) -> jax.Array:
    """``ids``, with a wrong class ``(true + 1) % classes`` where ``scores``'s row holds a NaN."""
    if not jnp.issubdtype(scores.dtype, jnp.inexact):
        return ids
    nan = jnp.isnan(scores)
    return jnp.where(nan.any(-1) if nan.ndim > ids.ndim else nan, (true + 1) % classes, ids)


def _binary_labels(scores: jax.Array, labels: jax.Array) -> jax.Array:
    """``labels (B, ..., 1)`` for ``scores (B, ...)`` without the last axis; else as is."""
    if labels.ndim == scores.ndim + 1 and labels.shape[-1] == 1:
        return labels[..., 0]
    return labels


def _check_class_axis(logits: jax.Array, labels: jax.Array) -> None:
    """Shape checks that make softmax cross-entropy meaningful (static: work under jit).

    Refuses ``logits`` of a single class ``(..., 1)`` whatever the labels' dtype (the
    softmax over one class is 1: the loss and its gradient are always 0), and integer
    labels of the shape of 1-D ``logits (B,)`` (the softmax would run over the batch).
    """
    if logits.ndim == 0:
        raise ValueError("cross_entropy: `logits` is a scalar; it needs a class axis (..., C)")
    if logits.ndim >= 2 and logits.shape[-1] == 1:
        raise ValueError(
            f"cross_entropy: `logits` has shape {logits.shape}, a single class: the "
            "softmax over one class is always 1 and the loss always 0. Give the model "
            "C >= 2 outputs, or use binary_cross_entropy for one score per example"
        )
    integer = jnp.issubdtype(labels.dtype, jnp.integer) or labels.dtype == jnp.bool_
    no_class_axis = logits.ndim < 2 or logits.shape[-1] < 2
    if integer and labels.shape == logits.shape and no_class_axis:
        raise ValueError(
            f"cross_entropy: `labels` are integer class indices of shape {labels.shape}, "
            f"the shape of `logits` {logits.shape}, so `logits` has no class axis and the "
            "softmax would run over the batch. Give the model C >= 2 outputs "
            "(B, C), or use binary_cross_entropy for one score per example"
        )


def check_distribution(op: str, name: str, labels: ArrayLike, *, atol: float = 1e-3) -> None:
    """Checks that concrete soft ``labels (..., C)`` are probabilities that sum to one.

    Traced labels (inside ``jit``) are not checked (``fit`` checks its first batch). Soft
    labels that do not sum to one change the loss's scale and its gradient's direction.

    Args:
      op: the loss, for the message.
      name: the argument, for the message.
      labels: ``(..., C)`` floating.
      atol: the tolerance on each row's sum; at least ``4 * eps`` of the labels' dtype
        (0.031 for bfloat16, 0.0039 for float16), which their rounding needs.

    Raises:
      ValueError: a negative or non-finite entry, or a row whose sum differs from 1 by
        more than ``atol`` (names the first such row and its sum).

    Example:
      >>> check_distribution("cross_entropy", "labels", jnp.array([[0.25, 0.75]]))
      >>> try:
      ...     check_distribution("cross_entropy", "labels", jnp.array([[0.5, 0.7]]))
      ... except ValueError as err:
      ...     print(str(err)[:45])
      cross_entropy: `labels` row 0 sums to 1.2, no
    """
    values = _concrete(labels)
    if values is None or values.size == 0 or values.ndim == 0:
        return
    if not jnp.issubdtype(values.dtype, jnp.inexact):  # NumPy's: bfloat16 is not inexact
        return
    rows = values.astype(np.float64).reshape(-1, values.shape[-1])
    # 16-bit labels (a bfloat16 softmax, smoothed one-hot) round each entry: their
    # rows sum to 1 within a few eps (0.0045 measured for bfloat16, up to 32000 classes)
    atol = max(atol, 4 * float(jnp.finfo(values.dtype).eps))
    bad = np.flatnonzero(~np.isfinite(rows).all(axis=1) | (rows < 0).any(axis=1))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{op}: `{name}` row {i} holds a negative or non-finite value "
            f"({rows[i].tolist()[:8]}); soft labels must be probabilities"
        )
    sums = rows.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{op}: `{name}` row {i} sums to {sums[i]:.6g}, not 1: soft labels must be "
            "probabilities (rows of one-hot or a distribution over the C classes)"
        )
