"""``class_weight``: Keras' per-class loss weights, checked and turned into example weights.

``fit(class_weight={class: weight})`` scales each example's loss by the weight of its
class, or each position's for labels per position (token ids ``(N, T)``: weights per
position, :mod:`nnjax.train.loss_weights`; Keras refuses such labels). The mapping is
checked when the data source is built (:func:`check`), its classes against the user's
labels (:func:`check_present`) and the model's outputs once they are known
(:func:`check_classes`), and the labels of every batch must be class labels
(:func:`class_ids`).

Example:
  >>> weights = check({0: 1, 1: 3.0})
  >>> class_weights("train", np.array([0, 1, 1]), weights)
  array([1., 3., 3.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import jax
import numpy as np

from nnjax.train import loss_weights


def check(class_weight: Any) -> dict[int, float]:
    """``class_weight`` as ``{class: weight}``: integer classes, finite weights ``>= 0``.

    Raises:
      TypeError: not a mapping (a list of weights: pass ``dict(enumerate(weights))``),
        a class that is not an integer, or a weight that is not a number.
      ValueError: a negative class, or a weight that is negative, NaN or infinite.

    Example:
      >>> check({0: 1, 2: 0.5})
      {0: 1.0, 2: 0.5}
    """
    if not isinstance(class_weight, Mapping):
        hint = (
            "; for one weight per class in order, pass dict(enumerate(weights))"
            if isinstance(class_weight, list | tuple | np.ndarray)
            else ""
        )
        raise TypeError(
            f"class_weight must be a dict {{class: weight}}, got {type(class_weight).__name__}"
            f"{hint}"
        )
    out = {}
    for c, w in class_weight.items():
        if isinstance(c, bool) or not isinstance(c, int | np.integer):
            raise TypeError(f"class_weight: classes must be integers, got {c!r}")
        if c < 0:
            raise ValueError(f"class_weight: classes must be >= 0, got {c}")
        if isinstance(w, bool) or not isinstance(w, Real):
            raise TypeError(f"class_weight[{c}] must be a number, got {w!r}")
        value = float(w)
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"class_weight[{c}] = {w}; weights must be finite and >= 0")
        out[int(c)] = value
    return out


def class_ids(where: str, y: Any) -> np.ndarray:
    """The class of each example (or position) of the labels ``y``.

    One label per example: integer ids ``(N,)`` or ``(N, 1)``, binary 0/1 values ``(N,)``
    or ``(N, 1)``, one-hot (or probability) rows ``(N, C)``. One per position (tokens,
    pixels): integer ids ``(N, T, ...)``, 0/1 values ``(N, T, ..., 1)`` or one-hot rows
    ``(N, T, ..., C)``, giving ids ``(N, T, ...)`` (floating ``(N, T)`` labels are
    one-hot rows ``(N, C)``: give binary labels per token as integers).

    Raises:
      ValueError: the labels are not class labels: continuous (floating values other
        than 0 and 1, or rows outside ``[0, 1]``), negative ids, or a pytree of them.

    Example:
      >>> class_ids("train", np.array([[0.0, 1.0], [1.0, 0.0]])).tolist()
      [1, 0]
      >>> class_ids("train", np.array([[0, 2, 1]])).shape  # ids per token
      (1, 3)
    """
    if isinstance(y, Mapping | tuple | list):
        raise ValueError(
            f"{where}: class_weight needs one array of class labels, but y is a "
            f"{type(y).__name__} of them (a model with several outputs); weigh examples "
            "with sample_weight instead"
        )
    y = np.asarray(y)
    column = y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)
    if np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        ids = (y.reshape(-1) if column else y).astype(np.int64)
        if ids.size and ids.min() < 0:
            i = np.unravel_index(int(np.argmin(ids)), ids.shape)
            at = ", ".join(str(int(j)) for j in i)
            raise ValueError(f"{where}: class_weight needs class ids >= 0; y[{at}] = {ids[i]}")
        return ids
    binary = np.all((y == 0) | (y == 1))
    if binary and (column or (y.ndim > 2 and y.shape[-1] == 1)):  # 0/1, per position too
        return (y.reshape(-1) if column else y[..., 0]).astype(np.int64)
    if y.ndim >= 2 and y.shape[-1] > 1 and np.all((y >= 0) & (y <= 1)):
        return y.argmax(axis=-1)  # one-hot rows, one per example or per position
    found = f"labels of shape {y.shape} {y.dtype.name}"
    if y.size:
        bad = y.reshape(-1)[~((y.reshape(-1) == 0) | (y.reshape(-1) == 1))]
        found += f" holding {bad[0].item()!r} (continuous targets?)" if bad.size else ""
    raise ValueError(
        f"{where}: class_weight needs class labels: integer ids (N,) or (N, T, ...), binary "
        f"0/1 values (N,), (N, 1) or (N, T, ..., 1), or one-hot rows (N, C) or (N, T, ..., "
        f"C); got {found}. "
        "For regression targets, weigh examples with sample_weight instead"
    )


def class_weights(
    where: str, y: Any, class_weight: Mapping[int, float] | None, *, strict: bool = True
) -> np.ndarray:
    """Weights ``class_weight[class of y]`` per example or position (:func:`class_ids`).

    Args:
      where: how the data is called in errors.
      y: the labels.
      class_weight: ``{class: weight}`` (checked by :func:`check`); classes it does not
        name weigh 1.
      strict: every class of ``class_weight`` must occur in ``y`` (a whole data set; a
        batch of an iterable, or the training part of ``validation_split``, need not
        hold every class: :func:`check_present` checks all the user's labels).

    Returns:
      ``(n,)`` float32 weights (under ``jax_enable_x64`` too, as ``sample_weight``); for
      labels per position, ``(n, T, ...)``: one weight per position.

    Raises:
      ValueError: ``strict`` and ``class_weight`` names a class the labels lack, or the
        labels are not class labels (:func:`class_ids`).

    Example:
      >>> class_weights("train", np.array([0, 1, 1]), {0: 2.0, 1: 1.0})
      array([2., 1., 1.], dtype=float32)
    """
    if class_weight is None:
        return np.ones(len(np.asarray(y)), np.float32)
    ids = class_ids(where, y)
    present = set(np.unique(ids).tolist())
    if strict:
        _check_missing(where, class_weight, present)
    table = np.ones(max(present | set(class_weight)) + 1, np.float32)
    for c, w in class_weight.items():
        table[int(c)] = float(w)
    return table[ids]


def check_present(
    where: str, labels: Sequence[Any], class_weight: Mapping[int, float] | None
) -> None:
    """Every class of ``class_weight`` must occur in the user's labels (else: a typo?).

    Args:
      where: how the data is called in errors.
      labels: every part of the user's labels: the training part, and the part that
        ``validation_split`` holds out (read only while a class is still missing).
      class_weight: ``{class: weight}`` (checked by :func:`check`), or ``None``.

    Raises:
      ValueError: ``class_weight`` names a class that none of ``labels`` holds, or the
        labels are not class labels (:func:`class_ids`).

    Example:
      >>> check_present("`data`", [np.array([0, 0]), np.array([1])], {1: 2.0})
    """
    if not class_weight:
        return
    present: set[int] = set()
    for y in labels:
        if not set(map(int, class_weight)) - present:
            return
        present |= set(np.unique(class_ids(where, y)).tolist())
    _check_missing(where, class_weight, present)


def _check_missing(where: str, class_weight: Mapping[int, float], present: set[int]) -> None:
    """Raises when ``class_weight`` names a class outside ``present``."""
    missing = sorted(set(map(int, class_weight)) - present)
    if missing:
        raise ValueError(
            f"{where}: class_weight names class{'es' if len(missing) > 1 else ''} {missing} "
            f"that the labels lack (they hold {sorted(present)})"
        )


def scaled(
    weight: np.ndarray, y: Any, class_weight: Mapping[int, float] | None, where: str
) -> np.ndarray:
    """``weight`` (per example or per position) times ``class_weight[class of y]``.

    ``None``: ``weight`` as it is. The classes need not all occur in ``y`` (a batch, or
    the training part of ``validation_split``: :func:`check_present` checks the whole).

    Example:
      >>> scaled(np.array([1.0, 2.0]), np.array([[0, 1], [1, 1]]), {1: 3.0}, "d").tolist()
      [[1.0, 3.0], [6.0, 6.0]]
    """
    if class_weight is None:
        return weight
    per_class = class_weights(where, y, class_weight, strict=False)
    return loss_weights.product(weight, per_class)


def weighted(batch: Any, class_weight: Mapping[int, float] | None, where: str) -> Any:
    """``batch`` (a :class:`~nnjax.train.data.Batch`) with its weights times ``class_weight[y]``.

    Example:
      >>> from nnjax.train.data import Batch
      >>> b = Batch(np.ones((2, 1)), np.array([0, 1]), np.ones(2, np.float32), np.ones(2))
      >>> weighted(b, {1: 3.0}, "batch 0").weight.tolist()
      [1.0, 3.0]
    """
    if class_weight is None:
        return batch
    return batch._replace(weight=scaled(batch.weight, batch.y, class_weight, where))


def check_classes(class_weight: Mapping[int, float] | None, out: Any, name: str) -> None:
    """The classes of ``class_weight`` must be classes of a model whose output is ``out``.

    ``C`` outputs take classes ``[0, C)``; one output (binary) takes ``0`` and ``1``.

    Raises:
      ValueError: a class outside that range (names it and the model's outputs).

    Example:
      >>> check_classes({0: 1.0, 4: 2.0}, jax.ShapeDtypeStruct((1, 3), np.float32), "data")
      Traceback (most recent call last):
      ...
      ValueError: `data`: class_weight names class [4], but the model has 3 outputs, ...
    """
    if not class_weight or not isinstance(out, jax.ShapeDtypeStruct) or not out.shape:
        return
    outputs = out.shape[-1]
    upper = 2 if outputs == 1 else outputs
    bad = sorted(c for c in class_weight if not 0 <= c < upper)
    if bad:
        raise ValueError(
            f"`{name}`: class_weight names class{'es' if len(bad) > 1 else ''} {bad}, but the "
            f"model has {outputs} output{'s' if outputs != 1 else ''}, so classes lie in "
            f"[0, {upper - 1}]"
        )


__all__ = [
    "check",
    "check_classes",
    "check_present",
    "class_ids",
    "class_weights",
    "scaled",
    "weighted",
]
