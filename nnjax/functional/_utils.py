"""Small helpers shared by the functional ops (private)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import _checks


def as_compute(op: str, x: jax.typing.ArrayLike) -> jax.Array:
    """Returns ``x`` as an array, raising a clear error unless it is floating."""
    x = jnp.asarray(x)
    _checks.check_floating(op, "x", x)
    return x


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


_COUNT = {1: "an int", 2: "a pair", 3: "a triple"}


def ntuple(value, n: int, name: str, op: str, *, minimum: int = 1) -> tuple[int, ...]:
    """Normalises an int or ``n`` ints (each ``>= minimum``) to an ``n``-tuple.

    Raises:
      ValueError: naming ``op``, the argument ``name`` and the value passed.
    """
    try:
        out = (value,) * n if isinstance(value, int) else tuple(value)
    except TypeError:
        out = ()
    ok = len(out) == n and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in out
    )
    if not ok:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(
            f"{op}: `{name}` must be a {kind} int or {_COUNT.get(n, f'{n}-tuple')} of them, "
            f"got {value!r}"
        )
    return out


def positive_int(op: str, name: str, value) -> int:
    """``value`` after checking it is an int ``>= 1`` (a size such as ``in_features``).

    Raises:
      ValueError: naming ``op``, the argument ``name`` and the value passed.

    Example:
      >>> positive_int("dense_init", "in_features", 3)
      3
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{op}: `{name}` must be a positive int, got {value!r}")
    return int(value)


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
        raise TypeError(f"{op}: `{name}` must be a dict of arrays, got {type(params).__name__}")
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


def affine(op: str, params: dict, y: jax.Array, names: tuple[str, ...] = ("scale", "bias")):
    """``y * scale + bias`` over the last axis, checking each parameter is ``(F,)``.

    ``names`` lists the parameters present (``("scale",)`` for a scale-only norm);
    ``params`` must hold exactly those keys (:func:`check_params`).
    """
    check_params(op, params, names)
    features = y.shape[-1]
    for name in names:
        _checks.check_shape(op, f"params[{name!r}]", params[name], (features,))
    if "scale" in names:
        y = y * expand_to(params["scale"].astype(y.dtype), y.ndim)
    if "bias" in names:
        y = y + expand_to(params["bias"].astype(y.dtype), y.ndim)
    return y
