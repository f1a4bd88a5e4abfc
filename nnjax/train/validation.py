"""Input checks that run before anything is compiled, with errors that say what is wrong."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import losses
from nnjax import metrics as metrics_lib
from nnjax.errors import ShapeError


def as_host_array(name: str, a: Any) -> np.ndarray:
    """``a`` as a NumPy array; float64 becomes float32 (JAX computes in 32 bits).

    Example:
      >>> as_host_array("x", [1.0, 2.0]).dtype
      dtype('float32')
    """
    a = np.asarray(a)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    return a


def check_dataset(
    name: str, data: Any, *, check_inputs: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Checks that ``data`` is a non-empty ``(x, y)`` pair of equal length; returns it as NumPy.

    Args:
      name: how the data set is called in errors (``"train"``, ``"validation"``).
      data: ``(x, y)`` with ``x (N, ...)`` and ``y (N, ...)``.
      check_inputs: reject non-floating ``x`` (raw ``uint8`` images); turn off for
        models that take integer inputs such as token ids.

    Raises:
      ShapeError: ``len(x) != len(y)``, or a scalar ``x`` or ``y``.
      ValueError: not a pair, or an empty set.
      TypeError: integer or boolean ``x`` with ``check_inputs``.

    Example:
      >>> x, y = check_dataset("train", (np.zeros((4, 2)), np.zeros(4, int)))
      >>> x.shape, x.dtype
      ((4, 2), dtype('float32'))
    """
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise ValueError(f"`{name}` must be a pair (x, y) of arrays, got {type(data).__name__}")
    x, y = as_host_array(f"{name} x", data[0]), as_host_array(f"{name} y", data[1])
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError(f"`{name}`: x and y need a leading example axis; got {x.shape}, {y.shape}")
    if check_lengths(f"`{name}`", {"x": x, "y": y}) == 0:
        raise ValueError(f"`{name}` is empty: x has shape {x.shape}")
    check_inputs_ok(f"`{name}`", x, check_inputs=check_inputs, nan=False)
    return x, y


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


def check_labels(out: Any, y: Any, name: str = "train", loss: Any = None) -> None:
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
    if np.issubdtype(y.dtype, np.floating) and not isinstance(y, np.memmap):
        bad = np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).all(axis=1))
        if bad.size:
            raise ValueError(
                f"`{name}`: the labels y hold NaN or inf (example {int(bad[0])}, "
                f"{bad.size} example{'s' if bad.size > 1 else ''}); clean the data"
            )
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
    loss: Any, metrics: Sequence[Any], out: Any, y: Any, name: str = "train"
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
    named = [repr(m) for m in metrics if isinstance(m, str)]
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


def check_loss_accepts(loss: str | Callable, out: Any, y: Any, name: str = "train") -> None:
    """The loss must accept the model's output with one example's labels (by eval_shape).

    The loss is called as ``fit`` calls it (:func:`nnjax.train.objective.batch_loss`):
    per example with ``reduction="none"`` when it takes that, else on the batch, with
    ``mask`` (``(1,)`` float32 ones) when it takes a ``mask`` keyword, so a batch-level
    loss may require ``mask``. Soft labels ``y`` (a batch of them, concrete) for
    ``cross_entropy`` must be probabilities (:func:`nnjax.losses.check_distribution`).

    Raises:
      ShapeError: the loss rejects these shapes (names both and the loss's error).
      ValueError: the loss fails on them for another reason (the same message), or
        returns more than a scalar.
      TypeError: the loss reads its inputs' values (NumPy code): write it with jax.numpy.

    Example:
      >>> out = jax.ShapeDtypeStruct((1, 3), jnp.float32)
      >>> check_loss_accepts(lambda p, t, *, mask: jnp.mean(p[:, 0] * mask), out, np.ones(4))
    """
    from nnjax.train import objective  # objective imports this module (through data)

    target = jax.tree.map(lambda a: jax.ShapeDtypeStruct((1, *a.shape[1:]), a.dtype), y)
    logits = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, jnp.float32), out)
    fn = losses.get(loss)
    try:
        jax.eval_shape(objective.loss_on_batch(loss), logits, target)
    except (AssertionError, TypeError, ValueError) as err:
        _raise_loss_fault(loss, err, name)
        shape = isinstance(err, ShapeError) or "incompatible shapes" in str(err).lower()
        raise (ShapeError if shape else ValueError)(
            f"`{name}`: the loss cannot compare model outputs of shape "
            f"{describe(out)} with labels {describe(target)} per example: {err}"
        ) from err
    soft = isinstance(y, np.ndarray) and np.issubdtype(y.dtype, np.floating)
    if fn is losses.cross_entropy and soft and isinstance(out, jax.ShapeDtypeStruct):
        losses.check_distribution("cross_entropy", f"{name} y", y)


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


def leaf_paths(tree: Any) -> list[tuple[str, Any]]:
    """``(key path, leaf)`` for every leaf (``"['a'][0]"``), in tree order."""
    return [(jax.tree_util.keystr(k), v) for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _below(path: str, roots: Collection[str]) -> bool:
    """``path`` is one of ``roots`` or lies below one (``"[1]['a']"`` below ``"[1]"``)."""
    return any(path == r or (r and path.startswith(r) and path[len(r)] in "[.") for r in roots)


def host_tree(name: str, tree: Any) -> Any:
    """Every leaf as a NumPy array (memmaps stay memmaps; float64 becomes float32).

    Raises:
      ValueError: an empty pytree, or a (nested) Python list of numbers (the message
        says to pass ``np.asarray``).
      ShapeError: a leaf without a leading example axis.

    Example:
      >>> host_tree("x", {"a": np.array([1.0, 2.0])})["a"].dtype
      dtype('float32')
    """

    def convert(path, a):
        if path and isinstance(a, int | float | complex):  # bool is an int
            raise ValueError(
                f"`{name}` holds Python numbers (`{name}{jax.tree_util.keystr(path)}` is "
                f"{a!r}), not arrays: a list of numbers is read as a pytree of scalars; convert "
                f"it first: np.asarray({name.rsplit(' ', 1)[-1]})"
            )
        if not isinstance(a, np.memmap):
            a = as_host_array(name, a)
        if a.ndim == 0:
            raise ShapeError(
                f"`{name}{jax.tree_util.keystr(path)}` needs a leading example axis (got a "
                f"{a.dtype} scalar)"
            )
        return a

    if tree is None or not jax.tree.leaves(tree):
        raise ValueError(f"`{name}` holds no arrays")
    return jax.tree_util.tree_map_with_path(convert, tree)


def check_lengths(where: str, parts: Mapping[str, Any], expected: int | None = None) -> int:
    """All leaves of the named pytrees share one leading length; returns it.

    Raises:
      ShapeError: leading lengths differ (lists every array's shape).

    Example:
      >>> check_lengths("train", {"x": np.ones((3, 2)), "y": np.ones(3)})
      3
    """
    sizes = [(f"{n}{p}", v.shape) for n, t in parts.items() for p, v in leaf_paths(t)]
    n = expected if expected is not None else sizes[0][1][0]
    bad = [(k, s) for k, s in sizes if s[0] != n]
    if bad:
        listing = ", ".join(f"{k} {s}" for k, s in sizes)
        raise ShapeError(
            f"{where}: every array needs the same number of examples ({n}); got {listing}"
        )
    return n


def check_inputs_ok(
    where: str, x: Any, *, check_inputs: bool, nan: bool = True, integer_ok: Collection[str] = ()
) -> None:
    """Floating inputs (``check_inputs``) without NaN or inf (``nan``), named by key.

    ``integer_ok``: key paths of inputs that the model declares integer
    (:func:`nnjax.train.model_call.integer_input_paths`), with everything below them.

    Example:
      >>> check_inputs_ok("train", {"a": np.ones(2, np.float32)}, check_inputs=True)
      >>> check_inputs_ok("train", {"n": np.ones(2, int)}, check_inputs=True, integer_ok={"['n']"})
    """
    for path, a in leaf_paths(x):
        if (
            check_inputs
            and not np.issubdtype(a.dtype, np.floating)
            and not _below(path, integer_ok)
        ):
            raise TypeError(
                f"{where} x{path} has dtype {a.dtype}; models expect floating inputs. Scale raw "
                "images first, e.g. x.astype('float32') / 255. A model that takes integers "
                "(token ids, lengths) names those arguments of its __call__ in a class "
                "attribute, e.g. `integer_inputs = ('ids',)`; or pass check_inputs=False"
            )
        if nan and np.issubdtype(a.dtype, np.floating) and not isinstance(a, np.memmap):
            if a.size and np.isfinite(a.min()) and np.isfinite(a.max()):
                continue  # no NaN (min and max propagate it) and no inf: no mask needed
            bad = np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).all(axis=1))
            if bad.size:
                raise ValueError(
                    f"{where}: the inputs x{path} hold NaN or inf (example {int(bad[0])}, "
                    f"{bad.size} example{'s' if bad.size > 1 else ''}); clean the data"
                )


def sample_weights(where: str, sw: Any, n: int) -> np.ndarray:
    """``sample_weight`` as float32 ``(n,)``: the right length, finite and non-negative.

    Raises:
      ShapeError: not of shape ``(n,)``.
      ValueError: a negative, NaN or infinite weight (names the first one).

    Example:
      >>> sample_weights("train", [1, 2], 2)
      array([1., 2.], dtype=float32)
    """
    if sw is None:
        return np.ones(n, np.float32)
    w = np.asarray(sw, np.float32)
    if w.shape != (n,):
        raise ShapeError(f"{where}: sample_weight has shape {w.shape}, expected ({n},)")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        i = int(np.flatnonzero(~(np.isfinite(w) & (w >= 0)))[0])
        raise ValueError(f"{where}: sample_weight[{i}] = {w[i]}; weights must be >= 0")
    return w


def check_count(name: str, value: Any, minimum: int = 0) -> int:
    """``value`` as an int ``>= minimum``; a ``TypeError`` naming ``name`` otherwise.

    Example:
      >>> check_count("epochs", 3)
      3
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return int(value)


__all__ = [
    "as_host_array",
    "check_count",
    "check_dataset",
    "check_inputs_ok",
    "check_labels",
    "check_lengths",
    "check_loss_accepts",
    "check_named_take_arrays",
    "describe",
    "host_tree",
    "leaf_paths",
    "sample_weights",
]
