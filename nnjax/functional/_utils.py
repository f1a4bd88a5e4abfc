"""Small helpers shared by the functional ops (private)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import _checks
from nnjax._checks import _kind, is_int, positive_int  # noqa: F401 (re-exported for the ops)
from nnjax._torch_tensors import from_torch
from nnjax.functional import _eager


def as_compute(op: str, x: jax.typing.ArrayLike, name: str = "x") -> jax.Array:
    """Returns ``x`` as an array, raising a clear error (naming ``name``) unless it is floating.

    A dict in its place (the parameters, the arguments swapped) is a ``TypeError`` that
    says the parameters come first; so is ``None``. Anything else that is no array of
    numbers is reported by :func:`as_array`.

    Example:
      >>> try:
      ...     as_compute("layer_norm", {"scale": 1.0, "bias": 0.0})
      ... except TypeError as err:
      ...     print(str(err).split("; ")[1])
      parameter dicts come before `x` in layer_norm's arguments
    """
    x = as_array(op, x, name)
    _checks.check_floating(op, name, x)
    return x


def as_array(op: str, x: Any, name: str = "x", *, numbers: str = "float32") -> jax.Array:
    """``x`` as a JAX array; an error naming ``op`` and ``name`` unless it holds numbers.

    A JAX array (a tracer under ``jax.jit`` too) is returned as it is, at the cost of one
    ``isinstance``. A PyTorch tensor is read as ``fit`` reads one: detached (one that
    requires grad too), from any device, a bfloat16 one as bfloat16. Anything else goes
    to ``jnp.asarray``; only when that fails is the value inspected, for the message.

    Args:
      op: the public name of the op, for the messages.
      x: the value passed.
      name: how the argument is called in the messages.
      numbers: the NumPy dtype that the messages suggest converting to (``"int32"``
        for ids).

    Raises:
      TypeError: a dict (the parameters, the arguments swapped), ``None``, a string, or
        an array of objects or strings (NumPy dtype ``object``, e.g. pandas' ``.values``
        of mixed columns); the message names the dtype or type passed.
      ValueError: a ragged nested list (rows of different lengths).

    Example:
      >>> as_array("dense", [[1.0, 2.0]]).dtype
      dtype('float32')
      >>> try:
      ...     as_array("dense", np.array([[1.0, 2.0]], dtype=object))
      ... except TypeError as err:
      ...     print(str(err).split(" got ")[1])
      a NumPy array of dtype object (convert it, e.g. x.astype(np.float32))
    """
    if isinstance(x, jax.Array):  # jitted and eager JAX code: nothing to convert
        return x
    if isinstance(x, Mapping):
        raise TypeError(
            f"{op}: `{name}` must be an array, got a dict with keys {sorted(map(str, x))}; "
            f"parameter dicts come before `{name}` in {op}'s arguments"
        )
    if x is None:
        raise TypeError(f"{op}: `{name}` must be an array, got None")
    if isinstance(x, str | bytes):  # jnp.asarray parses "5 2 4" as a dtype: a SyntaxError
        raise _not_numeric(op, name, x, numbers)
    x = from_torch(x)
    try:
        return jnp.asarray(x)
    except (TypeError, ValueError):
        raise _not_numeric(op, name, x, numbers) from None


def check_lengths(op: str, lengths: Any, batch: int, steps: int) -> jax.Array:
    """``lengths`` as a ``(B,)`` integer array; concrete values must lie in ``[0, steps]``.

    Read by :func:`as_array` (so its errors, and PyTorch tensors); an empty list or
    tuple is read as int32, not as the float32 that ``jnp.asarray([])`` gives.

    Raises:
      TypeError: ``lengths`` does not hold integers (floats, bools: the message names the
        dtype), or as :func:`as_array` (strings, objects, ``None``).
      ValueError: a ragged list, or concrete values outside ``[0, steps]``.
      ShapeError: ``lengths`` is not ``(batch,)``.

    Example:
      >>> check_lengths("rnn", [], 0, 5).dtype
      dtype('int32')
      >>> try:
      ...     check_lengths("rnn", [2.0, 5.0], 2, 5)
      ... except TypeError as err:
      ...     print(err)
      rnn: argument `lengths` has dtype float32, expected integers
    """
    read = as_array(op, lengths, "lengths", numbers="int32")
    if read.size == 0 and isinstance(lengths, list | tuple):  # no dtype of its own
        read = read.astype(jnp.int32)
    if not jnp.issubdtype(read.dtype, jnp.integer):
        raise TypeError(f"{op}: argument `lengths` has dtype {read.dtype}, expected integers")
    _checks.check_shape(op, "lengths", read, (batch,))
    if not isinstance(read, jax.core.Tracer):
        values = np.asarray(read)
        if values.size and (values.min() < 0 or values.max() > steps):
            raise ValueError(
                f"{op}: argument `lengths` must lie in [0, {steps}] (the time axis of `xs`), "
                f"got {values.tolist()}"
            )
    return read


def _not_numeric(op: str, name: str, x: Any, numbers: str) -> Exception:
    """The error for an ``x`` that ``jnp.asarray`` refused: what it is, and what to do."""
    head = f"{op}: `{name}` must be a numeric array, got"
    if isinstance(x, str | bytes):
        return TypeError(f"{head} the {type(x).__name__} {x!r:.60}")
    try:
        array = np.asarray(x)
    except ValueError:  # NumPy refuses ragged lists since 1.24
        array = None
    except TypeError:
        return TypeError(f"{head} a {type(x).__name__}, which NumPy cannot read as an array")
    if array is None or (array.dtype == object and _ragged(x)):
        return ValueError(
            f"{head} a ragged {type(x).__name__} (nested sequences of different lengths, "
            f"{x!r:.60}); pad them to one length"
        )
    if isinstance(x, np.ndarray):
        what, fix = "a NumPy array", f"{name}.astype(np.{numbers})"
    else:
        what, fix = f"a {type(x).__name__}", f"np.asarray({name}, np.{numbers})"
    if array.dtype.kind in "OUSV":  # objects, strings, bytes, records
        of = "strings, dtype" if array.dtype.kind in "US" else "dtype"
        return TypeError(f"{head} {what} of {of} {array.dtype} (convert it, e.g. {fix})")
    return TypeError(f"{head} {what} of dtype {array.dtype}, which JAX cannot hold")


def _ragged(x: Any) -> bool:
    """Whether ``x`` is a list or tuple whose items have different shapes."""
    if not isinstance(x, list | tuple) or not x:
        return False
    try:
        return len({np.shape(item) for item in x}) > 1
    except ValueError:  # an item is ragged itself
        return True


def cast_like(tree, x: jax.Array):
    """Casts every floating leaf of ``tree`` to the dtype of ``x`` (compute dtype).

    Non-floating leaves (integer counters, booleans) are returned as arrays unchanged.
    """
    return jax.tree.map(lambda p: _cast_floating(p, x.dtype), tree)


def _cast_floating(p: jax.typing.ArrayLike, dtype: jnp.dtype) -> jax.Array:
    p = jnp.asarray(p)
    return p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p


def expand_to(v: jax.Array, ndim: int) -> jax.Array:
    """Reshapes a vector over the last axis so it broadcasts against rank ``ndim``.

    Explicit, so that ops run under ``jax_numpy_rank_promotion="raise"``.
    """
    return jnp.reshape(v, (1,) * (ndim - v.ndim) + v.shape)


def pair(value: int | tuple[int, int], name: str, op: str) -> tuple[int, int]:
    """Normalises an int or a pair of ints to a pair, e.g. a window or a stride."""
    first, second = ntuple(value, 2, name, op)
    return first, second


_COUNT = {1: "a 1-tuple", 2: "a pair", 3: "a triple"}


def tuple_phrase(n: int) -> str:
    """``"a pair"`` for 2: how messages name ``n`` values (``"a 4-tuple"`` past 3)."""
    return _COUNT.get(n, f"a {n}-tuple")


def ntuple(value, n: int, name: str, op: str, *, minimum: int = 1) -> tuple[int, ...]:
    """Normalises an int or ``n`` ints (each ``>= minimum``) to an ``n``-tuple of ``int``.

    NumPy integers count as ints; bools do not.

    Raises:
      ValueError: naming ``op``, the argument ``name`` and the value passed (for a value
        traced under ``jax.jit``, saying to mark the argument static).
    """
    try:
        out = (value,) * n if is_int(value) else tuple(value)
    except TypeError:
        out = ()
    if len(out) != n or not all(is_int(v) and v >= minimum for v in out):
        expected = f"{_kind(minimum)} or {tuple_phrase(n)} of them"
        raise ValueError(_checks.static_arg_message(op, name, value, expected))
    return tuple(int(v) for v in out)


def check_epsilon(op: str, epsilon) -> None:
    """Raises ``ValueError`` unless a concrete ``epsilon`` is ``> 0`` (a traced one passes)."""
    _checks.check_interval(op, "epsilon", epsilon, 0, open_low=True)


def check_window_fits(op: str, x: jax.Array, window, padding) -> None:
    """Raises unless a window fits the (padded) spatial axes of channels-last ``x``.

    Args:
      op: the public name of the op.
      x: ``(B, *spatial, C)``.
      window: the effective window per spatial axis (``(k - 1) * d + 1`` when dilated).
      padding: ``"SAME"`` (always fits), ``"VALID"`` or ``(lo, hi)`` per spatial axis.

    Raises:
      ValueError: naming ``op``, the shape of ``x``, the padding and the window.
    """
    if isinstance(padding, str) and padding == "SAME":
        return
    spatial = tuple(x.shape[1:-1])
    pads = [(0, 0)] * len(spatial) if isinstance(padding, str) else list(padding)
    if any(size + lo + hi < w for size, w, (lo, hi) in zip(spatial, window, pads)):
        raise ValueError(
            f"{op}: argument `x` has shape {tuple(x.shape)}, whose spatial axes {spatial} "
            f"with padding {padding!r} are smaller than the window {tuple(window)}"
        )


def stat_dtype(x: jax.Array) -> jnp.dtype:
    """The dtype for normalisation statistics: at least float32 (accurate in bfloat16)."""
    return jnp.promote_types(x.dtype, jnp.float32)


def standardize(x: jax.Array, axes: tuple[int, ...], epsilon: float) -> jax.Array:
    """``(x - mean) / sqrt(var + epsilon)`` over ``axes``, two-pass, in ``stat_dtype``.

    Returns the result in the dtype of ``x``.
    """
    xf = x.astype(stat_dtype(x))
    mean = jnp.mean(xf, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(xf - mean), axis=axes, keepdims=True)
    return ((xf - mean) * jax.lax.rsqrt(var + epsilon)).astype(x.dtype)


def check_params(
    op: str,
    params: Any,
    required: Iterable[str],
    optional: Iterable[str] = (),
    *,
    name: str = "params",
) -> None:
    """Checks that the parameter dict ``params`` has exactly the keys an op reads.

    A misspelt key (``"bais"`` for ``"bias"``) would otherwise be ignored silently and
    the op would run without that parameter.

    Args:
      op: the public name of the op, for the message.
      params: the mapping the user passed.
      required: keys the op always reads.
      optional: keys the op reads when present.
      name: how the argument is called in the message (``"params"``, ``"stats"``).

    Raises:
      TypeError: ``params`` is not a mapping.
      ValueError: a key the op does not read (names it, the closest expected key and
        the expected keys); checked first, so a misspelling is named as such.
      KeyError: a required key is missing (names it and the expected keys).

    Example:
      >>> check_params("dense", {"kernel": 0, "bias": 0}, ("kernel",), ("bias",))
      >>> try:
      ...     check_params("dense", {"kernel": 0, "bais": 0}, ("kernel",), ("bias",))
      ... except ValueError as err:
      ...     print(str(err)[:60])
      dense: `params` has an unexpected key 'bais' (did you mean '
    """
    required, optional = tuple(required), tuple(optional)
    if not isinstance(params, Mapping):
        got = type(params).__name__
        if hasattr(params, "shape") and hasattr(params, "dtype"):
            got = f"an array of shape {tuple(params.shape)} ({params.dtype}); `{name}` comes first"
        raise TypeError(f"{op}: `{name}` must be a dict of arrays, got {got}")
    expected = ", ".join(repr(k) for k in required)
    if optional:
        expected += f", optionally {', '.join(repr(k) for k in optional)}"
    known = set(required) | set(optional)
    for key in params:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"{op}: `{name}` has an unexpected key {key!r}{hint}; expected keys: {expected}"
            )
    for key in required:
        if key not in params:
            raise KeyError(
                f"{op}: `{name}` has no key {key!r} (it has {sorted(map(str, params))}); "
                f"expected keys: {expected}"
            )


def check_affine(
    op: str,
    params: Any,
    x: jax.Array,
    names: tuple[str, ...] = ("scale", "bias"),
    others: Mapping[str, Any] | None = None,
) -> None:
    """Checks a norm's ``params`` (exactly ``names``, each ``(F,)``) against ``x (..., F)``.

    ``F`` is the size of the first parameter, so a wrong input size blames ``x`` (whose
    shape the message shows), not the parameters; unless that parameter is the odd one
    out (the others, and ``others``, e.g. ``{"stats['mean']": ...}``, all fit ``x``).

    Raises:
      ShapeError: ``x``'s last axis is not ``F``, or a parameter is not ``(F,)``.
      KeyError, ValueError, TypeError: as :func:`check_params`.
    """
    check_params(op, params, names)
    first, first_name = params[names[0]], f"params[{names[0]!r}]"
    _checks.check_rank(op, first_name, first, 1)
    rest = {f"params[{n!r}]": params[n] for n in names[1:]} | dict(others or {})
    fit = (x.shape[-1],)
    if rest and jnp.shape(first) != fit and all(jnp.shape(a) == fit for a in rest.values()):
        _checks.check_shape(op, first_name, first, fit)
    why = f"{first_name} has shape {jnp.shape(first)}"
    _checks.check_shape(op, "x", x, (..., jnp.shape(first)[0]), why=why)
    for name, value in rest.items():
        _checks.check_shape(op, name, value, jnp.shape(first))


def normalize(
    params: dict, x: jax.Array, epsilon: Any, axes: tuple[int, ...], groups: int | None = None
) -> jax.Array:
    """``affine(params, standardize(x))``; eagerly one program (``_eager.one_program``).

    Args:
      params: ``{"scale", "bias"}``, checked (:func:`check_affine`).
      x: the checked input.
      epsilon: added to the variance (a number or a traced scalar).
      axes: the axes the statistics reduce, of ``x`` or (with ``groups``) of ``x``
        seen as ``(..., groups, C // groups)``.
      groups: standardise each of this many groups of channels; ``None``: ``x`` as it is.
    """
    return _eager.one_program(_normalize, (axes, groups), None, params, x, epsilon)


def _normalize(params, x, epsilon, axes, groups):
    if groups is None:
        return affine(params, standardize(x, axes, epsilon))
    grouped = jnp.reshape(x, (*x.shape[:-1], groups, x.shape[-1] // groups))
    return affine(params, jnp.reshape(standardize(grouped, axes, epsilon), x.shape))


def affine(params: dict, y: jax.Array, names: tuple[str, ...] = ("scale", "bias")):
    """``y * scale + bias`` over the last axis (``params`` checked by :func:`check_affine`).

    ``names`` lists the parameters present (``("scale",)`` for a scale-only norm).
    """
    if "scale" in names:
        y = y * expand_to(params["scale"].astype(y.dtype), y.ndim)
    if "bias" in names:
        y = y + expand_to(params["bias"].astype(y.dtype), y.ndim)
    return y
