"""Trace-time argument checks shared by the functional ops.

Every check runs on static shapes and dtypes, or on concrete Python/NumPy numbers (traced
values pass unchecked), so it costs nothing under ``jax.jit``. Shape failures come from
chex's assertions and are raised as :class:`nnjax.errors.ShapeError` (a ``ValueError``
and an ``AssertionError``), naming the op, the argument and both shapes.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, overload

import chex
import jax
import jax.numpy as jnp
import numpy as np

from nnjax.errors import ShapeError

#: An expected shape: sizes, ``None`` for any size, and a leading ``...`` for any number
#: of leading axes.
Shape = Sequence[Any]


def check_shape(
    op: str, name: str, x: jax.typing.ArrayLike, expected: Shape, *, why: str = ""
) -> None:
    """Asserts that ``x`` has shape ``expected`` (``None`` matches any size).

    Args:
      op: the public name of the op doing the check, e.g. ``"dense"``.
      name: the argument's name, e.g. ``"params['kernel']"``.
      x: the array to check.
      expected: the expected shape; ``None`` entries match any size and a leading
        ``...`` matches any number of leading axes.
      why: where the expected sizes come from, added to the message in parentheses,
        e.g. ``"params['scale'] has shape (4,)"``.

    Raises:
      ShapeError: naming ``op``, ``name``, the expected and the actual shape.
    """
    shape = jnp.shape(x)
    expected = tuple(expected)
    if _fits(shape, expected):  # the common case, without building a message
        return
    msg = f"{op}: argument `{name}` has shape {shape}, expected {_fmt(expected)}"
    msg += f" ({why})" if why else ""
    with _as_shape_error(msg):
        chex.assert_shape(x, expected, custom_message=msg)


def _fits(shape: tuple, expected: tuple) -> bool:
    """Whether ``shape`` fits ``expected`` of ints, ``None``, a leading ``...`` (else chex)."""
    if expected[:1] == (Ellipsis,):
        expected = expected[1:]
        shape = shape[len(shape) - len(expected) :] if len(shape) >= len(expected) else ()
    if len(shape) != len(expected):
        return False
    return all(e is None or (type(e) is int and e == s) for s, e in zip(shape, expected))


def check_rank(op: str, name: str, x: jax.typing.ArrayLike, rank: int | set[int]) -> None:
    """Asserts that ``x`` has rank ``rank`` (an int or a set of allowed ranks)."""
    shape = jnp.shape(x)
    if len(shape) == rank if isinstance(rank, int) else len(shape) in rank:
        return
    msg = f"{op}: argument `{name}` has shape {shape} (rank {len(shape)}), expected rank {rank}"
    with _as_shape_error(msg):
        chex.assert_rank(x, rank, custom_message=msg)


def check_min_rank(op: str, name: str, x: jax.typing.ArrayLike, rank: int) -> None:
    """Asserts that ``x`` has at least ``rank`` axes."""
    shape = jnp.shape(x)
    if len(shape) < rank:
        raise ShapeError(
            f"{op}: argument `{name}` has shape {shape} (rank {len(shape)}), "
            f"expected rank >= {rank}"
        )


def check_floating(op: str, name: str, x: jax.typing.ArrayLike) -> None:
    """Asserts that ``x`` has a floating dtype."""
    dtype = jnp.result_type(x)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{op}: argument `{name}` has dtype {dtype}, expected a floating dtype")


def check_window_fits(
    op: str,
    x: jax.typing.ArrayLike,
    window: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
) -> None:
    """Raises unless a sliding window fits the (padded) spatial axes of NHWC ``x``.

    Args:
      op: the public name of the op doing the check.
      x: ``(B, H, W, C)``.
      window: the effective window ``(wh, ww)`` (for a dilated kernel ``(k - 1) * d + 1``).
      padding: ``"SAME"`` (always fits), ``"VALID"`` or ``((top, bottom), (left, right))``.

    Raises:
      ValueError: naming ``op``, the shape of ``x``, the padding and the window.
    """
    if isinstance(padding, str) and padding.upper() == "SAME":
        return
    pads = ((0, 0), (0, 0)) if isinstance(padding, str) else tuple(padding)
    shape = jnp.shape(x)
    for size, w, (lo, hi) in zip(shape[1:3], window, pads):
        if size + lo + hi < w:
            raise ValueError(
                f"{op}: argument `x` has shape {shape}, whose spatial axes (H, W) = "
                f"{tuple(shape[1:3])} with padding {padding!r} are smaller than the window "
                f"{tuple(window)}"
            )


def is_traced(value: Any) -> bool:
    """Whether ``value`` (or a leaf of it, e.g. of a tuple) is a JAX tracer."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(value))


def static_arg_message(op: str, name: str, value: Any, expected: str) -> str:
    """The message for a bad static argument: ``"op: `name` must be <expected>, got ..."``.

    A traced ``value`` (an argument that ``jax.jit`` traced because it was not marked
    static) gets a message that says so and how to mark it static.

    Example:
      >>> static_arg_message("max_pool2d", "window", 0, "a positive int")
      'max_pool2d: `window` must be a positive int, got 0'
    """
    if is_traced(value):
        arg = name.split("[")[0]
        return (
            f"{op}: `{name}` must be {expected}, got a traced value {value!r}: it must be "
            f"static under jax.jit; mark it static, e.g. jax.jit(fn, static_argnames={arg!r})"
        )
    return f"{op}: `{name}` must be {expected}, got {value!r}"


@overload
def check_static_bool(
    op: str, name: str, value: Any, *, allow_none: Literal[False] = False
) -> bool: ...


@overload
def check_static_bool(op: str, name: str, value: Any, *, allow_none: bool) -> bool | None: ...


def check_static_bool(op: str, name: str, value: Any, *, allow_none: bool = False) -> bool | None:
    """``value`` as a bool after checking it is a Python (or NumPy) bool.

    Args:
      op: the public name of the op (or layer) doing the check.
      name: the argument's name, e.g. ``"reverse"``.
      value: what the user passed.
      allow_none: let ``None`` through (returned as is), e.g. for a flag whose ``None``
        picks a default per backend.

    Raises:
      TypeError: naming ``op``, ``name`` and the value; for a traced value, saying to
        mark the argument static under ``jax.jit``.

    Example:
      >>> check_static_bool("rnn", "reverse", np.bool_(True))
      True
      >>> try:
      ...     check_static_bool("rnn", "reverse", "no")
      ... except TypeError as err:
      ...     print(err)
      rnn: `reverse` must be a Python bool (True or False), got 'no'
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    expected = "a Python bool (True or False)" + (" or None" if allow_none else "")
    raise TypeError(static_arg_message(op, name, value, expected))


def is_int(value) -> bool:
    """Whether ``value`` is a Python or NumPy integer (``np.int64(2)``), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _kind(minimum: int) -> str:
    return {0: "a non-negative int", 1: "a positive int"}.get(minimum, f"an int >= {minimum}")


def positive_int(op: str, name: str, value, *, minimum: int = 1) -> int:
    """``value`` as an ``int`` after checking it is an int ``>= minimum`` (a size).

    NumPy integers count as ints; bools do not.

    Raises:
      ValueError: naming ``op``, the argument ``name`` and the value passed (for a value
        traced under ``jax.jit``, saying to mark the argument static).

    Example:
      >>> positive_int("dense_init", "in_features", np.int64(3))
      3
    """
    if not is_int(value) or value < minimum:
        raise ValueError(static_arg_message(op, name, value, _kind(minimum)))
    return int(value)


def concrete_number(value: Any) -> float | None:
    """``value`` as a float when it is a Python or NumPy real scalar, else ``None``.

    Traced values and JAX arrays give ``None``: their values are not checked (a check
    would need a host round trip under ``jax.jit``).
    """
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf":
        return float(value)
    return None


def check_real(op: str, name: str, value: Any, what: str) -> None:
    """Raises ``TypeError`` unless ``value`` is a real scalar (not a bool): ``what`` it is for.

    Python and NumPy numbers and 0-d JAX arrays (traced too) pass.

    Example:
      >>> check_real("prelu_init", "init", 0.25, "the initial slope")  # "a": a TypeError
    """
    number = concrete_number(value) is not None or (
        isinstance(value, jax.Array) and value.ndim == 0 and jnp.issubdtype(value.dtype, jnp.number)
    )
    if not number or isinstance(value, bool | np.bool_) or jnp.iscomplexobj(value):
        raise TypeError(f"{op}: `{name}` must be a real number ({what}), got {value!r}")


def check_interval(
    op: str,
    name: str,
    value: Any,
    low: float,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> None:
    """Raises unless a concrete ``value`` lies in ``[low, high]`` (open ends as asked).

    Traced values and JAX arrays pass unchecked (:func:`concrete_number`); NaN fails.

    Raises:
      ValueError: naming ``op``, the argument ``name``, the interval and the value.

    Example:
      >>> check_interval("batch_norm", "momentum", 0.9, 0, 1)
      >>> try:
      ...     check_interval("layer_norm", "epsilon", 0.0, 0, open_low=True)
      ... except ValueError as err:
      ...     print(err)
      layer_norm: `epsilon` must be > 0, got 0.0
    """
    v = concrete_number(value)
    if v is None:
        return
    above = v > low if open_low else v >= low
    if high is None:
        ok, text = above, f"{'>' if open_low else '>='} {low}"
    else:
        below = v < high if open_high else v <= high
        ends = ("(" if open_low else "[", ")" if open_high else "]")
        ok, text = above and below, f"in {ends[0]}{low}, {high}{ends[1]}"
    if not ok:
        raise ValueError(f"{op}: `{name}` must be {text}, got {value!r}")


def check_key(op: str, name: str, key: Any) -> None:
    """Raises unless ``key`` is a PRNG key: ``jax.random.key(seed)`` or a legacy ``uint32`` key.

    Runs on the dtype alone, so it costs nothing under ``jax.jit``.

    Raises:
      TypeError: naming ``op``, the argument ``name`` and what was passed.

    Example:
      >>> check_key("dense_init", "key", jax.random.key(0))
      >>> try:
      ...     check_key("dense_init", "key", 0)
      ... except TypeError as err:
      ...     print(err)
      dense_init: `key` must be a PRNG key such as jax.random.key(0), got 0
    """
    dtype = getattr(key, "dtype", None)
    if dtype is not None and hasattr(key, "shape"):
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            return
        size = _legacy_key_size(jax.config.jax_default_prng_impl)  # type: ignore[attr-defined]
        if dtype == np.uint32 and tuple(key.shape)[-1:] == (size,):
            return  # a raw key, jax.random.PRNGKey(seed)
        got = f"an array of dtype {dtype} and shape {tuple(key.shape)}"
    else:
        got = repr(key)
    raise TypeError(f"{op}: `{name}` must be a PRNG key such as jax.random.key(0), got {got}")


@functools.cache
def _legacy_key_size(impl: str) -> int:
    """The last axis of a raw ``uint32`` key of the PRNG ``impl`` (2 for threefry)."""
    return int(jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0, impl=impl))).shape[-1])


def int_axes(owner: str, name: str, value: object) -> tuple[int, ...]:
    """``value`` (an int or a sequence of ints) as a tuple of ints, else ``TypeError``.

    Example:
      >>> int_axes("dropout", "broadcast_dims", 1), int_axes("dropout", "broadcast_dims", [1, 2])
      ((1,), (1, 2))
    """
    axes = (value,) if is_int(value) else value
    if not isinstance(axes, Sequence) or isinstance(axes, str) or not all(is_int(a) for a in axes):
        raise TypeError(f"{owner}: `{name}` must be an int or a sequence of ints, got {value!r}")
    return tuple(int(a) for a in axes)


def float_dtype(op: str, dtype: Any, *, name: str = "dtype", allow_none: bool = False) -> Any:
    """``dtype`` as a NumPy dtype after checking it is floating (parameters are trained).

    Args:
      op: the public name of the function (or model) doing the check.
      dtype: what the user passed.
      name: the argument's name, e.g. ``"param_dtype"``.
      allow_none: let ``None`` through (returned as is), e.g. for a compute dtype that
        defaults to the input's.

    Raises:
      TypeError: naming ``op``, ``name`` and the dtype passed (an integer, bool or
        complex dtype, ``None`` unless ``allow_none``, or something that is no dtype).

    Example:
      >>> float_dtype("esn_init", jnp.bfloat16)
      dtype(bfloat16)
      >>> try:
      ...     float_dtype("esn_init", jnp.int32)
      ... except TypeError as err:
      ...     print(err)
      esn_init: `dtype` must be a floating dtype such as jnp.float32, got int32
    """
    if dtype is None and allow_none:
        return None
    try:
        resolved = None if dtype is None else jnp.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or not jnp.issubdtype(resolved, jnp.floating):
        got = resolved if resolved is not None else repr(dtype)
        also = " or None" if allow_none else ""
        raise TypeError(
            f"{op}: `{name}` must be a floating dtype such as jnp.float32{also}, got {got}"
        )
    return resolved


def _fmt(expected: tuple) -> str:
    parts = ["..." if e is ... else "*" if e is None else str(e) for e in expected]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


@contextmanager
def _as_shape_error(msg: str) -> Iterator[None]:
    """Re-raises chex's ``AssertionError`` as :class:`ShapeError` with the message ``msg``."""
    try:
        yield
    except AssertionError as err:
        raise ShapeError(msg) from err


def takes_keyword(fn: Callable, name: str) -> bool:
    """Whether ``fn`` accepts the keyword argument ``name`` (or any, ``**kwargs``).

    ``False`` for a callable whose signature cannot be read (some builtins).

    Example:
      >>> takes_keyword(lambda p, t, *, reduction="mean": p, "reduction")
      True
      >>> takes_keyword(len, "reduction")
      False
    """
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
