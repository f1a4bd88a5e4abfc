"""Labels against the model's outputs and the loss, checked before anything compiles.

Class ids in range for the model's classes, binary labels in ``[0, 1]``, named losses
and metrics given single arrays, and a trace of the loss on the first batch; each
error names the data (``data``, ``validation``), the labels and what they should be.
:mod:`nnjax.train.validation` re-exports the public checks.

Example:
  >>> import jax, numpy as np
  >>> check_labels(jax.ShapeDtypeStruct((1, 3), np.float32), np.array([0, 2]))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import losses
from nnjax import metrics as metrics_lib
from nnjax._loss_checks import class_id_column
from nnjax._metrics_binary import unthresholded
from nnjax.errors import ShapeError


def describe(tree: Any) -> str:
    """``"(5,) float32"`` for an array, ``"{'a': (5,) float32, ...}"`` for a pytree.

    Example:
      >>> describe({"a": np.zeros((2, 5), np.float32)})
      "{'a': (2, 5) float32}"
    """
    if isinstance(tree, Mapping):
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in tree.items()) + "}"
    if isinstance(tree, tuple | list):
        return "(" + ", ".join(describe(v) for v in tree) + ")"
    if hasattr(tree, "shape") and hasattr(tree, "dtype"):
        return f"{tuple(tree.shape)} {np.dtype(tree.dtype).name}"
    return repr(tree)


_CLASS_METRICS = ("accuracy", "acc", "top_k_accuracy", "auc", "precision", "recall", "f1")


def check_metric_labels(loss: Any, metrics: Sequence[Any], out: Any, y: Any, name: str) -> None:
    """Classification metrics need class labels, not continuous float targets.

    Float labels must be 0/1 (binary or one-hot), or probabilities in ``[0, 1]`` for a
    classification loss (soft labels); integer class ids are checked by
    :func:`validation.check_labels`.

    Raises:
      ValueError: names the metrics and the first continuous label.

    Example:
      >>> out = jax.ShapeDtypeStruct((1, 1), np.float32)
      >>> check_metric_labels("mse", ["accuracy"], out, np.array([[0.0], [1.0]], np.float32), "t")
    """
    check_metrics_take_outputs(metrics, out, y, name)
    words = [m for m in map(unthresholded, metrics) if isinstance(m, str)]  # the names
    named = [
        m for m in words if m.lower() in _CLASS_METRICS or m.split("_")[0].lower() in _CLASS_METRICS
    ]
    if not named or not isinstance(y, np.ndarray) or not jnp.issubdtype(y.dtype, jnp.floating):
        return
    if not isinstance(out, jax.ShapeDtypeStruct):
        return
    if y.ndim == len(out.shape) - 1 and out.shape[-1] > 1:  # class ids, as floats
        bad = np.flatnonzero(y.reshape(-1) != np.floor(y.reshape(-1)))
        if bad.size:  # in the step they would be truncated to another class
            raise ValueError(
                f"`{name}`: metrics {named} read y as class ids, but y.flat[{bad[0]}] = "
                f"{y.flat[bad[0]]:g} is not a whole number; pass integer class ids"
            )
        return
    ok = (y == 0) | (y == 1)
    if metrics_lib.default_metrics(loss):  # a classification loss: soft labels too
        ok = (y >= 0) & (y <= 1)
    if ok.all():
        return
    i = int(np.flatnonzero(~ok.reshape(-1))[0])
    raise ValueError(
        f"`{name}`: metrics {named} compare class labels, but y holds continuous values "
        f"(y.flat[{i}] = {y.flat[i]:g}, {y.dtype.name}) that they would round to classes; "
        "for regression log e.g. metrics=['mae'], or pass class labels (integers, or 0/1)"
    )


_PROBE = 7  # the traced batch size: odd, so no output axis of a model matches it


def check_metrics_take_outputs(metrics: Sequence[Any], out: Any, y: Any, name: str) -> None:
    """Each named metric takes the model's outputs with the labels, traced before compiling.

    Only metrics given by name (their shape contract is known: ``"mse"`` and ``"r2"``
    compare arrays of one shape, ``"accuracy"`` takes class ids or one-hot labels,
    ``"auc"`` binary scores); functions of your own are left to the step, whose error
    names them. Nothing is computed: the metric's statistics are traced abstractly.

    Raises:
      ValueError: names the metric, the outputs' and the labels' shapes and the fix
        (:class:`nnjax.ShapeError` where the metric's own fault is one).

    Example:
      >>> out = jax.ShapeDtypeStruct((1, 3), jnp.float32)
      >>> check_metrics_take_outputs(["accuracy"], out, np.zeros(4, np.int32), "data")
    """
    if not isinstance(out, jax.ShapeDtypeStruct) or not isinstance(y, np.ndarray):
        return
    pred = jax.ShapeDtypeStruct((_PROBE, *out.shape[1:]), out.dtype)
    target = jax.ShapeDtypeStruct((_PROBE, *y.shape[1:]), jax.dtypes.canonicalize_dtype(y.dtype))
    ones = jax.ShapeDtypeStruct((_PROBE,), jnp.float32)
    for spec in metrics:
        if not isinstance(unthresholded(spec), str):
            continue
        metric = metrics_lib.resolve(spec)
        try:
            extra = (ones,) if metric.weighted else ()
            jax.eval_shape(metric.stats, pred, target, ones, *extra)
        except (ValueError, TypeError, AssertionError) as err:
            _raise_metric_fault(unthresholded(spec), out, y, name, err)


def _raise_metric_fault(metric: str, out: Any, y: np.ndarray, name: str, err: Exception) -> None:
    """The error for a named metric that cannot compare the outputs with the labels."""
    outputs = "(B" + "".join(f", {d}" for d in out.shape[1:]) + ")"
    labels = "(B" + "".join(f", {d}" for d in y.shape[1:]) + ("," if y.ndim == 1 else "") + ")"
    ids = y.ndim == len(out.shape) - 1 and out.shape[-1] > 1
    if ids:
        fix = (
            "the labels are class ids: log metrics of class ids such as 'accuracy', "
            "'top_k_accuracy', 'precision', 'recall' or 'f1', and leave regression and "
            "score metrics ('mse', 'mae', 'r2', 'auc') to models whose outputs have the "
            "labels' shape"
        )
    else:
        fix = f"drop {metric!r} from metrics, or give labels of the outputs' shape"
    where = "" if name == "data" else f" (of `{name}`)"
    detail = str(err) if str(err).startswith(metric) else f"{metric}: {err}"
    kind = ShapeError if isinstance(err, ShapeError) else ValueError  # the metric's own kind
    raise kind(
        f"`metrics`: {metric!r} compares outputs {outputs} with labels {labels}{where}; "
        f"{fix} ({detail})"
    ) from None


def check_labels(out: Any, y: Any, name: str = "data", loss: Any = None) -> None:
    """Integer class labels must lie in ``[0, C)`` for a model with ``C`` outputs.

    Binary outputs (``C == 1``) take labels in ``{0, 1}``; floating labels must be
    finite (a NaN target would otherwise surface as a non-finite loss, blamed on the
    learning rate). The range is checked for integer labels one axis short of the
    output when they are class ids: for the classification losses, and for a custom
    ``loss`` with ``C >= 2`` outputs (or an unknown one, ``None``); integer targets of
    ``mse``, ``mae`` or ``huber`` are left to :func:`check_loss_accepts`.

    Raises:
      ValueError: NaN or inf in floating labels, or a class label out of range (names
        the first one, ``C`` and how many are bad).

    Example:
      >>> out = jax.ShapeDtypeStruct((1, 3), jnp.float32)
      >>> check_labels(out, np.array([0, 2]))
      >>> check_labels(jax.ShapeDtypeStruct((1, 1), jnp.float32), np.array([7]), loss="mse")
    """
    if isinstance(loss, losses.OutputLosses):  # each output's labels, for its loss
        if _holds_outputs(loss, out) and _holds_outputs(loss, y):  # else named elsewhere
            for key, fn in zip(loss.keys, loss.fns, strict=True):
                check_labels(out[key], y[key], f"{name}, output {key!r}", fn)
        return
    if not isinstance(out, jax.ShapeDtypeStruct) or not isinstance(y, np.ndarray):
        return
    if jnp.issubdtype(y.dtype, jnp.floating) and not isinstance(y, np.memmap):
        bad = np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).all(axis=1))
        if bad.size:
            raise ValueError(
                f"`{name}`: the labels y hold NaN or inf (example {int(bad[0])}, "
                f"{bad.size} example{'s' if bad.size > 1 else ''}); clean the data"
            )
    _check_binary_labels(out, y, name, loss)
    y = class_id_column(out, y)
    if not np.issubdtype(y.dtype, np.integer) or y.ndim != len(out.shape) - 1 or not out.shape:
        return
    classes = out.shape[-1]
    if not _class_ids(loss, classes):
        return
    upper = 2 if classes == 1 else classes
    bad = np.flatnonzero((y < 0) | (y >= upper))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"`{name}` y[{i}] = {y.flat[i]} is out of range: the model has {classes} "
            f"output{'s' if classes != 1 else ''}, so labels must lie in [0, {upper - 1}] "
            f"({bad.size} bad label{'s' if bad.size != 1 else ''})"
        )


def _check_binary_labels(out: jax.ShapeDtypeStruct, y: np.ndarray, name: str, loss: Any) -> None:
    """``binary_cross_entropy``'s labels, in any shape it takes, must lie in ``[0, 1]``."""
    if isinstance(loss, losses.OutputLosses) or not (isinstance(loss, str) or callable(loss)):
        return
    try:
        is_bce = losses.get(loss) is losses.binary_cross_entropy
    except ValueError:  # an unknown name: reported by the loss check
        return
    if not is_bce or isinstance(y, np.memmap) or not np.issubdtype(y.dtype, np.number):
        return
    if np.issubdtype(y.dtype, np.integer) and y.ndim == len(out.shape) - 1:
        return  # class ids (N,) for (N, 1) outputs: check_labels names them
    bad = np.flatnonzero((y < 0) | (y > 1))
    if bad.size:
        raise ValueError(
            f"`{name}` y.flat[{bad[0]}] = {y.flat[bad[0]]} is out of range: "
            "binary_cross_entropy takes labels in [0, 1] (classes 0/1 or probabilities of "
            f"class 1) ({bad.size} bad label{'s' if bad.size != 1 else ''})"
        )


def _class_ids(loss: Any, classes: int) -> bool:
    """Whether integer labels one axis short of ``classes`` outputs are class ids for ``loss``."""
    if loss is None:
        return True
    fn = losses.get(loss)
    if fn in (losses.cross_entropy, losses.binary_cross_entropy):
        return True  # nnjax's other losses take targets shaped as the predictions
    return fn not in losses._REGISTRY.values() and classes > 1


def _holds_outputs(loss: losses.OutputLosses, tree: Any) -> bool:
    """Whether ``tree`` holds every output ``loss`` names (``check_structure`` passes)."""
    try:
        loss.check_structure(tree, "")
    except ValueError:
        return False
    return True


def check_named_take_arrays(
    loss: Any, metrics: Sequence[Any], out: Any, y: Any, name: str = "data"
) -> None:
    """A named loss or metric compares one array of outputs with one array of labels.

    A model with several outputs (a dict or tuple of them) or labels as a pytree needs a
    loss per output (``{"cls": "cross_entropy", "reg": "mse"}``) or a callable
    ``loss(predictions, y)`` that combines them (or ``loss_fn``), and metrics per output
    (``{"cls": ["accuracy"]}``) or ones that read them.

    Raises:
      ValueError: names the loss or metrics, the outputs and the labels; for a loss per
        output, an output or label it names that is missing.

    Example:
      >>> out = {"a": jax.ShapeDtypeStruct((1, 3), jnp.float32)}
      >>> check_named_take_arrays(lambda p, y: 0.0, [], out, np.zeros(4))
    """
    try:  # a loss or metric per output: the outputs it names must exist
        if isinstance(loss, losses.OutputLosses):
            loss.check_structure(out, "model outputs")
            loss.check_structure(y, "labels y")
            loss = None
        for metric in metrics:
            if isinstance(metric, metrics_lib.OutputMetric):
                metric.select(out, "model outputs"), metric.select(y, "labels y")
    except ValueError as err:
        raise ValueError(f"`{name}`: {err}") from None
    single = lambda tree: isinstance(tree, jax.ShapeDtypeStruct | np.ndarray | jax.Array)
    if (out is None or single(out)) and (y is None or single(y)):
        return
    named = [repr(m) for m in map(unthresholded, metrics) if isinstance(m, str)]
    if isinstance(loss, str) or loss in losses._REGISTRY.values():
        what = f"the loss {getattr(loss, '__name__', loss)!r} compares"
    elif named:
        what = f"metrics [{', '.join(named)}] compare"
    else:
        return
    raise ValueError(
        f"`{name}`: {what} one array of outputs with one array of labels, but "
        f"the model returns {describe(out)} and y is {describe(y)}; for several outputs "
        "pass a loss per output (loss={'a': 'mse', ...}) or one combining them, and "
        "metrics per output (metrics={'a': ['mae']})"
    )


def check_loss_accepts(
    loss: str | Callable, out: Any, y: Any, name: str = "data", *, examples: int | None = None
) -> None:
    """The loss must accept the model's output with one example's labels (by eval_shape).

    The loss is called as ``fit`` calls it (:func:`nnjax.train.objective.batch_loss`):
    per example with ``reduction="none"`` when it takes that, else on the batch, with
    ``mask`` (``(1,)`` float32 ones) when it takes a ``mask`` keyword, so a batch-level
    loss may require ``mask``. Soft labels ``y`` (a batch of them, concrete) for
    ``cross_entropy`` must be probabilities (:func:`nnjax.losses.check_distribution`).
    When the loss fails, it is traced again on ``examples`` rows (the user's arrays'
    length; by default ``y``'s), so that its error shows the shapes the user passed.

    Raises:
      ShapeError: the loss rejects these shapes (names both and the loss's error).
      ValueError: the loss fails on them for another reason (the same message), or
        returns more than a scalar; no labels (``y`` is ``None``).
      TypeError: the loss reads its inputs' values (NumPy code): write it with jax.numpy.

    Example:
      >>> out = jax.ShapeDtypeStruct((1, 3), jnp.float32)
      >>> check_loss_accepts(lambda p, t, *, mask: jnp.mean(p[:, 0] * mask), out, np.ones(4))
    """
    from nnjax.train import objective  # objective imports this module (through data)

    if y is None:
        raise ValueError(
            f"`{name}` has no labels (y is None), but the loss compares the model's outputs "
            "with labels: pass (x, y), or a loss_fn(model, batch) that reads none"
        )

    logits = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, jnp.float32), out)
    target = _labels_on_rows(y, 1)  # out: one example's, as traced
    fn, value = losses.get(loss), objective.loss_on_batch(loss)
    try:
        jax.eval_shape(value, logits, target)
    except _LOSS_FAULTS as err:
        _raise_loss_fault(loss, err, name)
        rows = examples if examples is not None else (np.shape(jax.tree.leaves(y)[0]) or (1,))[0]
        again, one = _fault_on_rows(value, out, y, rows), " of one example"  # user's shapes?
        if isinstance(again, _LOSS_FAULTS):
            err, one = again, ""
            logits, target = _outputs_on_rows(out, rows), _labels_on_rows(y, rows)
        shape = isinstance(err, ShapeError) or "incompatible shapes" in str(err).lower()
        hint = "called as loss(predictions, y); Keras's order is (y_true, y_pred)"
        order = f" (a loss of your own is {hint})" if _own_loss(loss) else ""
        raise (ShapeError if shape else ValueError)(
            f"`{name}`: the loss cannot compare model outputs of shape "
            f"{describe(logits)} with labels {describe(target)}{one}{order}: {err}"
        ) from err
    soft = isinstance(y, np.ndarray) and jnp.issubdtype(y.dtype, jnp.floating)
    if fn is losses.cross_entropy and soft and isinstance(out, jax.ShapeDtypeStruct):
        losses.check_distribution("cross_entropy", f"{name} y", y)


_LOSS_FAULTS = (AssertionError, IndexError, TypeError, ValueError)


def _outputs_on_rows(out: Any, rows: int) -> Any:
    """Float32 ``out`` of ``rows`` examples (its leading axes, of one example's batch)."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct((rows, *a.shape[1:]), jnp.float32), out)


def _labels_on_rows(y: Any, rows: int) -> Any:
    """Abstract labels ``y`` (their dtypes) of ``rows`` examples."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct((rows, *np.shape(a)[1:]), a.dtype), y)


def _fault_on_rows(value: Callable, out: Any, y: Any, rows: int) -> BaseException | None:
    """What ``value(outputs, labels)`` raises on ``rows`` examples (``None``: nothing)."""
    if any(np.shape(a)[:1] != (1,) for a in jax.tree.leaves(out)):  # e.g. time-major
        return None
    try:
        jax.eval_shape(value, _outputs_on_rows(out, rows), _labels_on_rows(y, rows))
    except Exception as err:  # reported only if it is one of _LOSS_FAULTS
        return err
    return None


def _own_loss(loss: Any) -> bool:
    """Whether ``loss`` is a callable of the user's (not a name, nor one of nnjax's)."""
    if isinstance(loss, str | losses.OutputLosses):
        return False
    return all(loss is not fn for fn in losses._REGISTRY.values())


def _raise_loss_fault(loss: Any, err: BaseException, name: str) -> None:
    """Raises the loss's own fault (not a shape mismatch) as such; else returns.

    A result that is not a scalar (:class:`~nnjax.train.loss_output.LossOutputError`),
    or NumPy code (or a Python branch) on the traced inputs.
    """
    from nnjax.train import loss_output, optimizers  # (both import this module)

    if isinstance(err, loss_output.LossOutputError):
        raise loss_output.LossOutputError(f"`{name}`: {err}") from None
    if isinstance(err, optimizers.NEEDS_VALUES):
        raise TypeError(
            f"`{name}`: the loss {getattr(loss, '__name__', loss)!r} reads the values "
            "of its inputs (NumPy, or a Python branch on them), but it is traced under "
            "jax.jit: write it with jax.numpy (jnp.mean, jnp.where), e.g. "
            f"loss=lambda p, y: jnp.mean((p - y) ** 2). {type(err).__name__}: "
            f"{str(err).splitlines()[0]}"
        ) from err


__all__ = [
    "check_labels",
    "check_loss_accepts",
    "check_metric_labels",
    "check_metrics_take_outputs",
    "check_named_take_arrays",
    "describe",
]
