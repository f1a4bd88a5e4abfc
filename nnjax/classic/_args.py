"""Argument checks shared by the classic networks (private).

Each check raises before anything is traced or compiled, with a message that names the
op, the argument and what was passed, e.g.
``"sigmoid_mlp_init: `dtype` must be a floating dtype, got int32"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import jax

from nnjax import _checks, initializers
from nnjax._checks import float_dtype  # noqa: F401 (the classic inits' dtype check)
from nnjax._registry import get_named


def check_key(op: str, name: str, key: Any) -> None:
    """Raises unless ``key`` is one PRNG key: ``jax.random.key(seed)`` or ``PRNGKey(seed)``.

    :func:`nnjax._checks.check_key` checks the dtype (a typed key, or raw ``uint32`` key
    data); this adds the shape: a typed key must be a scalar ``()`` and raw key data one
    key of the default implementation (``(2,)`` for threefry), not a batch of keys from
    :func:`jax.random.split`. Runs on the static shape and dtype, so also under
    ``jax.jit``.

    Raises:
      TypeError: naming ``op``, the argument ``name`` and what was passed.

    Example:
      >>> check_key("esn_init", "key", jax.random.PRNGKey(0))
      >>> try:
      ...     check_key("esn_init", "key", jax.random.split(jax.random.key(0), 3))
      ... except TypeError as err:
      ...     print(err)  # doctest: +ELLIPSIS
      esn_init: `key` must be one PRNG key ..., got a batch of keys of shape (3,); pick ...
    """
    _checks.check_key(op, name, key)
    shape = tuple(key.shape)
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    one = () if typed else _raw_key_shape()
    if shape == one:
        return
    if typed or (len(shape) > len(one) and shape[len(shape) - len(one) :] == one):
        got = f"a batch of keys of shape {shape}; pick one, e.g. {name}[0], or jax.vmap"
    else:
        got = f"uint32 key data of shape {shape}, not one raw key (shape {one})"
    raise TypeError(
        f"{op}: `{name}` must be one PRNG key such as jax.random.key(0) or "
        f"jax.random.PRNGKey(0), got {got}"
    )


def check_optional_key(op: str, name: str, key: Any) -> None:
    """:func:`check_key` unless ``key`` is ``None``."""
    if key is not None:
        check_key(op, name, key)


def _raw_key_shape() -> tuple[int, ...]:
    """The shape of one raw key of the default PRNG implementation (abstract, no compute)."""
    return tuple(jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0))).shape)


def check_learning_rate(op: str, value: Any) -> None:
    """Raises unless ``value`` is a real scalar step size, and (when concrete) finite ``>= 0``.

    Python and NumPy numbers are checked by value; 0-d JAX arrays (traced too) only by
    shape, as the other classic checks do (no host round trip under ``jax.jit``).

    Raises:
      TypeError: ``value`` is not a real scalar (e.g. an array of per-unit rates).
      ValueError: a Python or NumPy ``value`` that is negative, NaN or infinite.

    Example:
      >>> try:
      ...     check_learning_rate("perceptron_fit", -0.1)
      ... except ValueError as err:
      ...     print(err)
      perceptron_fit: `learning_rate` must be a finite number >= 0, got -0.1
    """
    _checks.check_real(op, "learning_rate", value, "the step size, a scalar")
    number = _checks.concrete_number(value)
    if number is not None and not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{op}: `learning_rate` must be a finite number >= 0, got {value!r}")


def initializer(op: str, name: str, init: Any) -> initializers.Initializer:
    """:func:`nnjax.initializers.get` of ``init``; its errors name ``op`` and ``name``."""
    return get_named(op, name, initializers.get, init)


def layer_sizes(op: str, sizes: Any) -> tuple[int, ...]:
    """``sizes`` ``(in, hidden..., out)`` as a tuple of ints: two or more positive ints.

    Raises:
      TypeError: ``sizes`` is not a sequence (e.g. a single int or a string).
      ValueError: fewer than two entries, or one that is not a positive int.

    Example:
      >>> layer_sizes("sigmoid_mlp_init", [2, 3, 1])
      (2, 3, 1)
    """
    if isinstance(sizes, str) or not isinstance(sizes, Iterable):
        raise TypeError(
            f"{op}: `sizes` must be a sequence of two or more positive ints "
            f"(in, hidden..., out), got {sizes!r}"
        )
    sizes = tuple(sizes)
    if len(sizes) < 2 or not all(_checks.is_int(n) and n >= 1 for n in sizes):
        raise ValueError(f"{op}: `sizes` must be two or more positive ints, got {sizes!r}")
    return tuple(int(n) for n in sizes)


def check_rows(op: str, n: int) -> None:
    """Raises unless the batch has rows: the costs are means over its ``n`` examples."""
    if n == 0:
        raise ValueError(
            f"{op}: argument `x` has no rows (shape (0, in)); the mean cost needs at least "
            "one example"
        )


def check_classes(op: str, logits: jax.Array) -> None:
    """Raises unless ``logits`` ``(n, C)`` has ``C >= 2`` classes (static: works under jit).

    The softmax over one class is always 1, so the loss is always 0 and its gradient 0.
    """
    if logits.shape[-1] < 2:
        raise ValueError(
            f"{op}: the network has a single class (`params['w2']` has "
            f"{logits.shape[-1]} column, logits of shape {logits.shape}): the softmax over "
            "one class is always 1, so the loss is always 0 and its gradient 0. Give the "
            "network classes >= 2 (softmax_net_init(key, in_features, hidden, classes))"
        )
