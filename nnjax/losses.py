"""Loss functions ``loss(predictions, targets) -> scalar``, built on :mod:`optax.losses`.

Conventions (the same as Optax): predictions first, targets second; ``cross_entropy``
and ``binary_cross_entropy`` take *logits* (unnormalised scores), not probabilities.
Every loss reduces with ``reduction="mean"`` (the default), ``"sum"`` or ``"none"``
(per-element or per-row values). Inputs are JAX or NumPy arrays, lists of numbers, or
PyTorch tensors (read detached, on the host, as ``fit`` reads them).

Losses: ``mse``, ``mae``, ``huber``, ``cross_entropy``, ``binary_cross_entropy``, and
Keras 3's ``kl_divergence`` (of probabilities), ``poisson``, ``log_cosh``, ``hinge``,
``squared_hinge``, ``categorical_hinge`` and ``cosine_similarity``, each the value of
``keras.losses.<name>``. :func:`get` takes these names and Keras's aliases
(``"mean_squared_error"``, ``"sparse_categorical_crossentropy"``, ``"kld"``...).

Example:
  >>> import jax.numpy as jnp
  >>> from nnjax import losses
  >>> float(losses.mse(jnp.array([1.0, 2.0]), jnp.array([1.0, 4.0])))
  2.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from nnjax import _checks, _registry
from nnjax._keras_order import keras_order
from nnjax._loss_checks import (
    _check_array,
    _check_class_axis,
    _check_class_ids,
    _check_same_shape,
    _check_values,
    _floating,
    _numbers,
    _reduce,
    align_targets,
    check_distribution,
    class_id_column,
    from_torch,
)
from nnjax._losses_keras import (
    KERAS_LOSSES,
    categorical_hinge,
    cosine_similarity,
    hinge,
    kl_divergence,
    log_cosh,
    poisson,
    squared_hinge,
)
from nnjax._output_losses import OutputLosses, output_losses
from nnjax.errors import ShapeError

Loss = Callable[..., jax.Array]
"""``loss(predictions, targets, *, reduction="mean") -> jax.Array``: a scalar by default."""
ArrayLike = jax.typing.ArrayLike
LossSpec = str | Loss | Mapping[Any, str | Loss] | Sequence[str | Loss]


def mse(predictions: ArrayLike, targets: ArrayLike, *, reduction: str = "mean") -> jax.Array:
    """Mean squared error ``(p - t)**2`` (``optax.losses.squared_error``).

    Args:
      predictions: any shape, numeric.
      targets: the same shape as ``predictions``, numeric.
      reduction: ``"mean"`` over all elements, ``"sum"``, or ``"none"`` (elementwise).

    Returns:
      A scalar for ``"mean"`` and ``"sum"``, else the elementwise values in the shape of
      ``predictions``; their promoted dtype (float32 for integer or boolean ones).

    Raises:
      nnjax.ShapeError: ``predictions`` and ``targets`` differ in shape.
      ValueError: an unknown ``reduction``.

    Example:
      >>> float(mse(jnp.array([0.0, 0.0]), jnp.array([1.0, 3.0])))
      5.0
    """
    _check_same_shape("mse", predictions, targets)
    return _reduce(optax.losses.squared_error(*_floating(predictions, targets)), reduction)


def mae(predictions: ArrayLike, targets: ArrayLike, *, reduction: str = "mean") -> jax.Array:
    """Mean absolute error ``|p - t|``; its gradient is ``sign(p - t)``, 0 where they are equal.

    Args:
      predictions: any shape, numeric.
      targets: the same shape as ``predictions``, numeric.
      reduction: ``"mean"`` over all elements, ``"sum"``, or ``"none"`` (elementwise).

    Returns:
      A scalar for ``"mean"`` and ``"sum"``, else the elementwise values in the shape of
      ``predictions``; their promoted dtype (float32 for integer or boolean ones).

    Raises:
      nnjax.ShapeError: ``predictions`` and ``targets`` differ in shape.
      ValueError: an unknown ``reduction``.

    Example:
      >>> float(mae(jnp.array([0.0, 0.0]), jnp.array([1.0, -3.0])))
      2.0
    """
    _check_same_shape("mae", predictions, targets)
    p, t = _floating(predictions, targets)
    # |e| with the subgradient 0 at e == 0 (PyTorch's); jnp.abs has 1 there. Tested on
    # e, not p == t: inf - inf is NaN, as in PyTorch, not a loss of 0
    e = p - t
    return _reduce(jnp.where(e == 0, jnp.zeros_like(e), jnp.abs(e)), reduction)


def huber(
    predictions: ArrayLike, targets: ArrayLike, *, delta: float = 1.0, reduction: str = "mean"
) -> jax.Array:
    """Huber loss (``optax.losses.huber_loss``): quadratic within ``delta``, linear beyond.

    Elementwise ``0.5 * e**2`` for ``|e| <= delta``, else ``delta * (|e| - 0.5 * delta)``,
    with ``e = predictions - targets``.

    Args:
      predictions: any shape, numeric.
      targets: the same shape as ``predictions``, numeric.
      delta: where the quadratic part ends, ``> 0``.
      reduction: ``"mean"`` over all elements, ``"sum"``, or ``"none"`` (elementwise).

    Returns:
      A scalar for ``"mean"`` and ``"sum"``, else the elementwise values in the shape of
      ``predictions``; their promoted dtype (float32 for integer or boolean ones).

    Raises:
      nnjax.ShapeError: ``predictions`` and ``targets`` differ in shape.
      ValueError: a ``delta`` that is a number but not ``> 0`` (an array is not
        checked), or an unknown ``reduction``.

    Example:
      >>> float(huber(jnp.array([0.0]), jnp.array([3.0])))
      2.5
    """
    _check_same_shape("huber", predictions, targets)
    _checks.check_interval("huber", "delta", delta, 0, open_low=True)
    values = optax.losses.huber_loss(*_floating(predictions, targets), delta=delta)
    return _reduce(values, reduction)


def cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> jax.Array:
    """Softmax cross-entropy from logits, with integer labels or one-hot/probabilities.

    Integer class ids are checked to lie in ``[0, C)`` when they are concrete. Under
    ``jax.jit`` they are traced and cannot be checked: an id ``>= C`` (or ``< -C``)
    then gives a NaN loss, an id in ``[-C, 0)`` is read as class ``C + id``, and with
    ``label_smoothing`` an out-of-range id keeps only the smoothing term. (``fit``
    checks in-memory labels before it compiles.)

    Args:
      logits: ``(..., C)`` unnormalised class scores, floating.
      labels: class indices ``(...)`` (any integer dtype, or bool as 0/1, as Keras
        reads them; or ``(..., 1)``, as Keras's sparse losses take them), or a distribution
        ``(..., C)``: one-hot (any numeric or boolean dtype) or floating probabilities,
        each row summing to one; cast to the dtype of ``logits``.
      label_smoothing: mixes the one-hot target with the uniform distribution; a
        number in ``[0, 1)``, or a scalar JAX array (traced under ``jax.jit`` or
        ``jax.vmap``, e.g. to sweep it; not checked).
      reduction: ``"mean"`` over examples, ``"sum"`` or ``"none"``.

    Returns:
      A scalar for ``"mean"`` and ``"sum"``, else per-example values ``(...)``
      (``logits.shape[:-1]``); in the dtype of ``logits``.

    Raises:
      nnjax.ShapeError: integer labels whose shape is not ``logits.shape[:-1]`` (names both
        shapes), or ``labels`` that fit neither form.
      ValueError: integer labels with ``logits`` of their own shape ``(B,)`` (no class
        axis: the softmax would run over the batch) or with a single class; floating
        labels of shape ``logits.shape[:-1]`` (class ids in a float dtype: cast them to
        int); concrete class ids outside ``[0, C)`` (names the first one and ``C``); soft
        labels that are not probabilities (checked when concrete, see
        :func:`check_distribution`); a ``label_smoothing`` number outside ``[0, 1)``.

    Example:
      >>> logits = jnp.array([[0.0, 0.0]])
      >>> round(float(cross_entropy(logits, jnp.array([1]))), 4)
      0.6931
      >>> round(float(cross_entropy(jnp.array([[0.0, 2.0]]), jnp.array([True]))), 4)  # id 1
      0.1269
    """
    _checks.check_interval(
        "cross_entropy", "label_smoothing", label_smoothing, 0, 1, open_high=True
    )
    _check_array("cross_entropy", "labels", labels)
    logits, labels = _numbers("cross_entropy", logits), jnp.asarray(from_torch(labels))
    labels = class_id_column(logits, labels)
    _check_class_axis(logits, labels)
    if labels.dtype == jnp.bool_ and labels.ndim == logits.ndim - 1:  # ids 0/1 (Keras)
        labels = labels.astype(jnp.int32)
    if labels.ndim == logits.ndim - 1 and jnp.issubdtype(labels.dtype, jnp.integer):
        _check_class_ids("cross_entropy", logits, labels)
        if _is_zero(label_smoothing):
            values = optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels)
            return _reduce(values, reduction)
        labels = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    if labels.shape == logits.shape[:-1]:
        raise ValueError(
            f"cross_entropy: `labels` of shape {labels.shape} look like class ids, but in "
            f"dtype {labels.dtype}: cast them to int (labels.astype(int)), or give one-hot "
            f"labels of shape {logits.shape}"
        )
    if labels.shape != logits.shape:
        raise ShapeError(
            f"cross_entropy: `labels` has shape {labels.shape}; expected integer labels of "
            f"shape {logits.shape[:-1]} or one-hot labels of shape {logits.shape}"
        )
    labels = labels.astype(logits.dtype)  # integer or boolean one-hot labels too
    check_distribution("cross_entropy", "labels", labels)
    if not _is_zero(label_smoothing):  # a JAX array (traced) too: 0 smooths nothing
        labels = optax.smooth_labels(labels, label_smoothing).astype(logits.dtype)
    return _reduce(optax.losses.softmax_cross_entropy(logits, labels), reduction)


def _is_zero(label_smoothing: Any) -> bool:
    """Whether ``label_smoothing`` is a concrete zero (a Python or NumPy number).

    JAX arrays, traced ones (a ``jax.jit`` argument, a ``jax.vmap`` sweep) among them,
    count as nonzero: their value is not read, and smoothing with 0 changes nothing.

    Example:
      >>> _is_zero(0.0), _is_zero(0.1), _is_zero(jnp.array(0.0))
      (True, False, False)
    """
    return _checks.concrete_number(label_smoothing) == 0


def binary_cross_entropy(
    logits: ArrayLike, labels: ArrayLike, *, reduction: str = "mean"
) -> jax.Array:
    """Sigmoid binary cross-entropy from logits (``optax.losses.sigmoid_binary_cross_entropy``).

    Args:
      logits: any shape, floating; ``sigmoid(logits)`` is the probability of class 1.
      labels: the same shape, values in ``[0, 1]`` (any numeric dtype, cast to the
        dtype of ``logits``; checked when concrete; under ``jax.jit`` other values are
        not caught and give a meaningless loss).
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (per element).

    Returns:
      A scalar for ``"mean"`` and ``"sum"``, else the elementwise values in the shape of
      ``logits``; in the dtype of ``logits``.

    Raises:
      nnjax.ShapeError: ``labels`` and ``logits`` differ in shape.
      ValueError: concrete ``labels`` outside ``[0, 1]`` (names the first one).

    Example:
      >>> round(float(binary_cross_entropy(jnp.array([0.0]), jnp.array([1.0]))), 4)
      0.6931
    """
    _check_same_shape("binary_cross_entropy", logits, labels, names=("logits", "labels"))
    outside = lambda v: ~((v >= 0) & (v <= 1))
    what = "is outside [0, 1]: labels are probabilities of class 1"
    _check_values("binary_cross_entropy", "labels", labels, outside, what)
    logits = _numbers("binary_cross_entropy", logits)
    labels = jnp.asarray(from_torch(labels), dtype=logits.dtype)
    return _reduce(optax.losses.sigmoid_binary_cross_entropy(logits, labels), reduction)


_REGISTRY: dict[str, Loss] = {
    "mse": mse,
    "mean_squared_error": mse,
    "mae": mae,
    "mean_absolute_error": mae,
    "huber": huber,
    "cross_entropy": cross_entropy,
    "sparse_categorical_crossentropy": cross_entropy,
    "categorical_crossentropy": cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "binary_crossentropy": binary_cross_entropy,
    **KERAS_LOSSES,
}


TARGETS_LIKE_PREDICTIONS: frozenset[Loss] = frozenset(
    fn for fn in _REGISTRY.values() if fn is not cross_entropy
)
"""The built-in losses whose targets have the predictions' shape (all but ``cross_entropy``).

``fit``, ``evaluate`` and ``sweep`` add or drop a size-1 last axis of the labels to
match the model's output for these (labels ``(B,)`` for outputs ``(B, 1)``), as Keras
does; called directly, each loss requires equal shapes.
"""


def get(loss: str | Loss | Mapping[Any, str | Loss] | Sequence[str | Loss]) -> Loss:
    """Returns the loss named ``loss`` (Keras names work too), or ``loss`` if callable.

    Args:
      loss: a name such as ``"mse"``, ``"cross_entropy"`` or
        ``"sparse_categorical_crossentropy"`` (case-insensitive), or a callable; or, for
        a model with several outputs, a dict of them per output key (a tuple or list
        per output position), as Keras takes ``loss={"cls": ..., "reg": ...}``. A
        function is called ``fn(predictions, targets)``, unless its first two
        parameters are named ``y_true`` and ``y_pred`` (Keras's order): then it gets a
        wrapper that calls it ``fn(targets, predictions)``, the same one each time.

    Returns:
      A :data:`Loss`: ``loss(predictions, targets, *, reduction="mean")``; for a dict
      or tuple, an :class:`~nnjax._output_losses.OutputLosses`, which sums the outputs'
      losses per example (each output's labels aligned as :func:`align_targets` does
      for the losses of :data:`TARGETS_LIKE_PREDICTIONS`).

    Raises:
      ValueError: for an unknown name; the message lists the known ones (and names
        the output, for a dict of losses).
      TypeError: a function in a dict of losses that takes no ``reduction`` keyword.

    Example:
      >>> get("mse") is mse
      True
      >>> get({"cls": "cross_entropy", "reg": "mse"}).keys
      ('cls', 'reg')
      >>> over = lambda y_true, y_pred: jnp.mean(jnp.maximum(y_pred - y_true, 0.0))
      >>> float(get(over)(jnp.array([3.0]), jnp.array([1.0])))  # predictions first
      2.0
    """
    if isinstance(loss, Mapping | tuple | list):
        return per_output(loss)
    return keras_order(loss) if callable(loss) else _registry.lookup("loss", _REGISTRY, loss)


def per_output(
    loss: Mapping[Any, str | Loss] | Sequence[str | Loss],
    weights: Mapping[Any, float] | Sequence[float] | None = None,
) -> OutputLosses:
    """A loss per model output, optionally weighted (Keras' ``loss_weights``).

    Pass it as ``fit``'s ``loss``; a plain dict of losses is ``per_output(loss)``. The
    loss is ``sum(weight * output_loss)`` per example; ``fit`` still logs each output's
    unweighted term as ``"<key>_loss"``, as Keras does.

    Args:
      loss: a dict of a loss name or function per output key, or a tuple or list of
        them per output position.
      weights: each output's weight: one number per loss, in order, or (for a dict of
        losses) a dict by output key, the outputs it leaves out weighing 1; ``None``:
        all 1.

    Returns:
      An :class:`~nnjax._output_losses.OutputLosses`.

    Raises:
      ValueError, TypeError: as :func:`get` for the losses; ``loss`` not a dict, tuple
        or list; weights naming other outputs, of another count, or negative,
        non-finite or not numbers.

    Example:
      >>> both = per_output({"cls": "cross_entropy", "reg": "mse"}, weights={"reg": 0.5})
      >>> both.weights
      (1.0, 0.5)
      >>> pred = {"cls": jnp.zeros((1, 2)), "reg": jnp.zeros((1, 1))}
      >>> round(float(both(pred, {"cls": jnp.array([0]), "reg": jnp.array([2.0])})), 4)
      2.6931
    """
    if not isinstance(loss, Mapping | tuple | list):
        raise TypeError(f"per_output: expected a dict or a tuple (list) of losses, got {loss!r}")
    return output_losses(loss, get, TARGETS_LIKE_PREDICTIONS, weights)


__all__ = [
    "TARGETS_LIKE_PREDICTIONS",
    "Loss",
    "OutputLosses",
    "align_targets",
    "binary_cross_entropy",
    "categorical_hinge",
    "check_distribution",
    "cosine_similarity",
    "cross_entropy",
    "get",
    "hinge",
    "huber",
    "kl_divergence",
    "log_cosh",
    "mae",
    "mse",
    "per_output",
    "poisson",
    "squared_hinge",
]
