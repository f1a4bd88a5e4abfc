"""Small helpers shared by the functional ops (private)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import _checks
from nnjax._checks import _kind, is_int, positive_int  # noqa: F401 (re-exported for the ops)
from nnjax.errors import ShapeError
from nnjax.functional import _eager
from nnjax.functional._reading import (  # noqa: F401 (re-exported for the ops)
    MissingKeyError,
    as_array,
    check_params,
    read_params,
)


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


def check_affine(
    op: str,
    params: Any,
    x: jax.Array,
    names: tuple[str, ...] = ("scale", "bias"),
    others: Mapping[str, Any] | None = None,
    *,
    name: str = "params",
) -> dict[str, jax.Array]:
    """A norm's ``params`` (exactly ``names``, each ``(F,)``), read and checked against ``x``.

    ``x`` is ``(..., F)``, ``F`` the size of the first parameter, so a wrong input size
    blames ``x`` (whose shape the message shows), not the parameters; unless that
    parameter is the odd one out (the others, and ``others``, e.g.
    ``{"stats['mean']": ...}``, all fit ``x``).
    ``name`` is how ``params`` is called in the messages (``"params['norm1']"``).

    Returns:
      The parameters read by :func:`read_params` (a list or NumPy array as a JAX array).

    Raises:
      ShapeError: ``x``'s last axis is not ``F``, or a parameter is not ``(F,)``.
      TypeError, ValueError, MissingKeyError: as :func:`read_params`.
    """
    params = read_params(op, params, names, name=name)
    first, first_name = params[names[0]], f"{name}[{names[0]!r}]"
    _checks.check_rank(op, first_name, first, 1)
    rest = {f"{name}[{n!r}]": params[n] for n in names[1:]} | dict(others or {})
    fit = (x.shape[-1],)
    if rest and jnp.shape(first) != fit and all(jnp.shape(a) == fit for a in rest.values()):
        _checks.check_shape(op, first_name, first, fit)
    why = f"{first_name} has shape {jnp.shape(first)}"
    _checks.check_shape(op, "x", x, (..., jnp.shape(first)[0]), why=why)
    for arg, value in rest.items():
        _checks.check_shape(op, arg, value, jnp.shape(first))
    return params


def check_conv_layout(op: str, kernel: jax.Array, x: jax.Array, nd: int, groups: int) -> None:
    """Raises for a kernel in PyTorch's layout, ``(out, in // groups, *k)``, given as it is.

    So named when its axis 1, not its axis -2, holds the channels of ``x``; called
    before the channels of ``x`` are checked (which would blame ``x``). A channels-first
    ``x`` (its axis 1 holding the kernel's channels) is left to that check.

    Raises:
      ShapeError: naming ``op``, ``params['kernel']``, the expected and the actual
        shape, and the permutation to nnjax's layout (``docs/guides/porting.md``).

    Example:
      >>> weight = jnp.zeros((8, 3, 5, 5))  # PyTorch's Conv2d(3, 8, 5).weight
      >>> try:
      ...     check_conv_layout("conv2d", weight, jnp.zeros((1, 9, 9, 3)), 2, 1)
      ... except ValueError as err:
      ...     print(str(err).split("? ")[1])
      nnjax's is (*k, in // groups, out): weight.permute(2, 3, 1, 0)
    """
    shape, channels = jnp.shape(kernel), x.shape[-1]
    if shape[1] * groups == channels != shape[-2] * groups and x.shape[1] != shape[-2] * groups:
        expected = "(" + "*, " * nd + f"{channels // groups}, *)"
        raise ShapeError(
            f"{op}: argument `params['kernel']` has shape {shape}, expected {expected} for "
            f"`x` of shape {tuple(x.shape)}: {_torch_conv_hint(nd)}"
        )


def check_conv_bias(
    op: str, params: Mapping[str, Any], nd: int, out_channels: int, *, transpose: bool = False
) -> None:
    """Checks a convolution's ``params['bias']`` is ``(out_channels,)``, before it runs.

    For a convolution (not ``transpose``), a bias that fits the kernel's first axis (a
    PyTorch weight, ``(out, in // groups, *k)``, passed as it is) names the permutation
    to nnjax's ``(*k, in // groups, out)`` (``docs/guides/porting.md``).

    Raises:
      ShapeError: naming ``op``, ``params['bias']``, the expected and the actual shape.

    Example:
      >>> weight = jnp.zeros((8, 3, 5))  # PyTorch's Conv1d(3, 8, 5).weight
      >>> try:
      ...     check_conv_bias("conv1d", {"kernel": weight, "bias": jnp.zeros(8)}, 1, 5)
      ... except ValueError as err:
      ...     print(str(err).split("? ")[1])
      nnjax's is (*k, in // groups, out): weight.permute(2, 1, 0))
    """
    if "bias" not in params:
        return
    kernel_shape, bias = jnp.shape(params["kernel"]), params["bias"]
    why = f"params['kernel'] has shape {kernel_shape}"
    if not transpose and jnp.shape(bias) == kernel_shape[:1] != (out_channels,):
        why += f": {_torch_conv_hint(nd)}"
    _checks.check_shape(op, "params['bias']", bias, (out_channels,), why=why)


def _torch_conv_hint(nd: int) -> str:
    order = ", ".join(map(str, (*range(2, nd + 2), 1, 0)))
    return (
        "in PyTorch's layout (out, in // groups, *k)? nnjax's is (*k, in // groups, out): "
        f"weight.permute({order})"
    )


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
