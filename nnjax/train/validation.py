"""Input checks that run before anything is compiled, with errors that say what is wrong."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnjax._checks import check_static_bool
from nnjax._torch_tensors import from_torch
from nnjax.errors import ShapeError
from nnjax.train.label_checks import (
    check_labels,
    check_loss_accepts,
    check_named_take_arrays,
    describe,
)
from nnjax.train.loss_weights import sample_weights


def as_host_array(name: str, a: Any) -> np.ndarray:
    """``a`` as a NumPy array; float64 becomes float32 unless JAX computes in 64 bits.

    PyTorch tensors are read detached (``requires_grad`` ones too) from any device,
    bfloat16 ones as bfloat16. float64 stays float64 where ``jax_enable_x64`` is on.

    Raises:
      ValueError: float64 values beyond float32's range, where JAX computes in 32 bits
        (they would become inf); the message names ``name``.

    Example:
      >>> as_host_array("x", [1.0, 2.0]).dtype
      dtype('float32')
    """
    return narrow_float64(name, np.asarray(from_torch(a)))


def narrow_float64(name: str, a: np.ndarray) -> np.ndarray:
    """float64 ``a`` as float32 unless JAX computes in 64 bits; other arrays as they are.

    Raises:
      ValueError: finite values that float32 cannot hold (names ``name`` and the
        largest such magnitude).

    Example:
      >>> narrow_float64("x", np.array([1.5, -2.0])).dtype
      dtype('float32')
    """
    if a.dtype != np.float64 or jax.dtypes.canonicalize_dtype(np.float64) == np.float64:
        return a
    with np.errstate(over="ignore"):
        out = a.astype(np.float32)
    inf = np.isinf(out)
    if inf.any() and np.isfinite(a[inf]).any():
        grown = np.abs(a[inf & np.isfinite(a)]).max()
        raise ValueError(
            f"`{name}` holds float64 values beyond float32's range (up to {grown:.3g} in "
            "magnitude; JAX computes in float32 here): scale the data, or compute in "
            "float64 (jax.config.update('jax_enable_x64', True))"
        )
    return out


def narrow_int64(name: str, a: np.ndarray) -> np.ndarray:
    """int64 (uint64) ``a`` as int32 (uint32) unless JAX computes in 64 bits; others as they are.

    The dtype JAX gives the values on the device (:func:`jax.dtypes.canonicalize_dtype`),
    checked (:func:`check_int64`): JAX itself wraps values beyond 32 bits silently.

    Raises:
      ValueError: values that the 32-bit type cannot hold (names ``name`` and the first).

    Example:
      >>> narrow_int64("y", np.array([0, 2])).dtype
      dtype('int32')
    """
    narrow = check_int64(name, a)
    return a if narrow is None else a.astype(narrow)


def check_int64(name: str, a: Any, rows: np.ndarray | None = None) -> np.dtype | None:
    """Raises unless the 32-bit dtype JAX gives 64-bit integer ``a`` holds its values.

    Without ``jax_enable_x64`` JAX narrows int64 (uint64) to int32 (uint32) and wraps
    what does not fit. ``rows``: ``a`` holds these rows of a larger array (a memmap's
    batch), whose flat index the message names.

    Returns:
      The 32-bit dtype, or ``None`` where JAX keeps ``a``'s dtype (nothing checked).

    Raises:
      ValueError: names ``name`` and the first value out of range, with its flat index.

    Example:
      >>> check_int64("y", np.array([0, 2])), check_int64("y", np.array([0.5]))
      (dtype('int32'), None)
    """
    if a.dtype.kind not in "iu" or a.dtype.itemsize < 8:
        return None
    narrow = np.dtype(jax.dtypes.canonicalize_dtype(a.dtype))
    if narrow == a.dtype:
        return None
    info = np.iinfo(narrow)
    if a.size and (a.min() < info.min or a.max() > info.max):
        i = int(np.flatnonzero((a < info.min) | (a > info.max))[0])
        value, size = a.flat[i], a.size // len(a)
        i = i if rows is None else int(rows[i // size]) * size + i % size
        raise ValueError(
            f"`{name}` holds {a.dtype.name} values beyond {narrow.name}'s range "
            f"({name.rsplit(' ', 1)[-1]}.flat[{i}] = {value}; JAX computes in "
            f"{narrow.name} here and would wrap it): use smaller values, or compute in 64 "
            "bits (jax.config.update('jax_enable_x64', True))"
        )
    return narrow


def check_wide_ints(name: str, **parts: Any) -> None:
    """:func:`check_int64` of every in-memory leaf of ``parts``, named ``f"{name} {part}"``.

    Memmaps are skipped (never read whole here): their rows are checked as read
    (:func:`take_rows`).

    Example:
      >>> check_wide_ints("data", x={"ids": np.array([2**40])})  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ValueError: `data x['ids']` holds int64 values beyond int32's range (x['ids'].flat[0] = ...
    """
    for part, tree in parts.items():
        for path, a in leaf_paths(tree):
            if not isinstance(a, np.memmap):
                check_int64(f"{name} {part}{path}".lstrip(), a)


def take_rows(name: str, tree: Any, index: Any, rows: np.ndarray) -> Any:
    """``a[index]`` of every leaf as NumPy (``index``: ``rows`` or their slice), float64 as float32.

    :func:`narrow_float64`; a memmap's 64-bit integers are checked as read
    (:func:`check_int64`; in-memory arrays are checked once, :func:`check_wide_ints`).

    Example:
      >>> take_rows("x", np.arange(4.0), slice(1, 3), np.array([1, 2])).dtype
      dtype('float32')
    """

    def take(path: Any, a: Any) -> np.ndarray:
        out = np.asarray(a[index])
        if isinstance(a, np.memmap):
            check_int64(f"{name}{jax.tree_util.keystr(path)}", out, rows)
        return narrow_float64(name, out)

    return jax.tree_util.tree_map_with_path(take, tree)


def check_dataset(
    name: str, data: Any, *, check_inputs: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Checks that ``data`` is a non-empty ``(x, y)`` pair of equal length; returns it as NumPy.

    Args:
      name: how the data set is called in errors (``"data"``, ``"validation"``).
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


def leaf_paths(tree: Any) -> list[tuple[str, Any]]:
    """``(key path, leaf)`` for every leaf (``"['a'][0]"``), in tree order."""
    return [(jax.tree_util.keystr(k), v) for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _below(path: str, roots: Collection[str]) -> bool:
    """``path`` is one of ``roots`` or lies below one (``"[1]['a']"`` below ``"[1]"``)."""
    return any(path == r or (r and path.startswith(r) and path[len(r)] in "[.") for r in roots)


def host_tree(name: str, tree: Any) -> Any:
    """Every leaf as a NumPy array (:func:`as_host_array`; memmaps stay memmaps).

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


def host_labels(name: str, y: Any) -> Any:
    """:func:`host_tree` of the labels; ``None`` (for a ``loss_fn`` that reads none) stays.

    Example:
      >>> host_labels("y", None) is None
      True
    """
    return None if y is None else host_tree(name, y)


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
    """Floating inputs without NaN or inf (``nan``), named by key; all off without ``check_inputs``.

    ``integer_ok``: key paths of inputs that the model declares integer
    (:func:`nnjax.train.model_call.integer_input_paths`), with everything below them.

    Example:
      >>> check_inputs_ok("train", {"a": np.ones(2, np.float32)}, check_inputs=True)
      >>> check_inputs_ok("train", {"n": np.ones(2, int)}, check_inputs=True, integer_ok={"['n']"})
    """
    for path, a in leaf_paths(x):
        if check_inputs and _holds_text(a):  # strings: not numbers at all
            raise TypeError(
                f"{where} x{path} has dtype {a.dtype}: the data hold non-numeric values "
                "(strings, e.g. a text column of a DataFrame); encode them as numbers "
                "(category codes, one-hot columns) or drop them before training"
            )
        if (
            check_inputs
            and not jnp.issubdtype(a.dtype, jnp.floating)
            and not _below(path, integer_ok)
        ):
            raise TypeError(
                f"{where} x{path} has dtype {a.dtype}; models expect floating inputs. Scale raw "
                "images first, e.g. x.astype('float32') / 255. A model that takes integers "
                "(token ids, lengths) names those arguments of its __call__ in a class "
                "attribute, e.g. `integer_inputs = ('ids',)`; or pass check_inputs=False"
            )
        floating = jnp.issubdtype(a.dtype, jnp.floating)
        if check_inputs and nan and floating and not isinstance(a, np.memmap):
            if a.size and np.isfinite(a.min()) and np.isfinite(a.max()):
                continue  # no NaN (min and max propagate it) and no inf: no mask needed
            bad = np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).all(axis=1))
            if bad.size:
                raise ValueError(
                    f"{where}: the inputs x{path} hold NaN or inf (example {int(bad[0])}, "
                    f"{bad.size} example{'s' if bad.size > 1 else ''}); clean the data"
                )


def _holds_text(a: np.ndarray) -> bool:
    """Whether ``a`` holds strings or bytes (a text column of a DataFrame, as objects)."""
    if a.dtype.kind in "US":
        return True
    return a.dtype.kind == "O" and any(isinstance(v, str | bytes) for v in a.ravel()[:1000])


def check_flags(owner: str, **flags: Any) -> None:
    """Each of ``flags`` a Python bool; a ``TypeError`` naming ``owner`` and the flag otherwise.

    Example:
      >>> check_flags("fit", shuffle=True, check_inputs=np.bool_(False))
      >>> try:
      ...     check_flags("fit", shuffle="no")
      ... except TypeError as err:
      ...     print(err)
      fit: `shuffle` must be a Python bool (True or False), got 'no'
    """
    for name, value in flags.items():
        check_static_bool(owner, name, value)


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
    "check_flags",
    "check_inputs_ok",
    "check_int64",
    "check_labels",
    "check_lengths",
    "check_loss_accepts",
    "check_named_take_arrays",
    "check_wide_ints",
    "describe",
    "host_labels",
    "host_tree",
    "leaf_paths",
    "narrow_float64",
    "narrow_int64",
    "sample_weights",
    "take_rows",
]
