"""Argument checks shared by the classic networks (private).

Each check raises before anything is traced or compiled, with a message that names the
op, the argument and what was passed, e.g.
``"sigmoid_mlp_init: `dtype` must be a floating dtype, got int32"``.
"""

from __future__ import annotations

from typing import Any

import jax

from nnjax import _checks
from nnjax._checks import float_dtype  # noqa: F401 (the classic inits' dtype check)


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
