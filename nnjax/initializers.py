"""Weight initializers, by value or by name.

JAX's initializers (:mod:`jax.nn.initializers`). Each entry is a *factory*: calling it
(e.g. ``glorot_uniform()``) returns an initializer ``init(key, shape, dtype) -> array``.
The random ones but ``orthogonal`` draw their arrays flat and reshape them: JAX's own
arrays (bitwise on jax 0.10.2; older XLA may round a few normal draws in the last bit
otherwise), compiled in a fraction of the time for kernels of three axes or more
(XLA:CPU's compile time of a draw grows with its rank: 2.7 s against 0.2 s for a 3-D
convolution's kernel on a 2-core Zen 3).
For a kernel of shape ``(..., fan_in, fan_out)`` (dense ``(in, out)``, conv
``(kh, kw, in, out)``) the fans are read off the last two axes and the receptive field.

Defaults per op (Keras's; Flax's dense and convolution kernels default to LeCun normal
instead): Glorot/Xavier uniform for dense and convolution kernels, orthogonal for
recurrent kernels, zeros for biases.

Example:
  >>> import jax
  >>> from nnjax import initializers
  >>> init = initializers.get("he_normal")
  >>> init(jax.random.key(0), (784, 100)).shape
  (784, 100)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.nn import initializers as _jinit

from nnjax import _flat_draws, _registry
from nnjax.errors import ShapeError

Initializer = Callable[..., jax.Array]
"""``init(key, shape, dtype=jnp.float32) -> jax.Array``: an array of ``shape`` and ``dtype`` drawn
with the PRNG ``key``.
"""

glorot_uniform = _flat_draws.glorot_uniform
"""``jax.nn.initializers.glorot_uniform``, drawn flat, a factory: ``glorot_uniform()`` is an
:data:`Initializer` (uniform, variance ``2 / (fan_in + fan_out)``).
"""
glorot_normal = _flat_draws.glorot_normal
"""``jax.nn.initializers.glorot_normal``, drawn flat, a factory: ``glorot_normal()`` is an
:data:`Initializer` (truncated normal, variance ``2 / (fan_in + fan_out)``).
"""
xavier_uniform = _flat_draws.glorot_uniform
"""``jax.nn.initializers.glorot_uniform`` under its other name, a factory: ``xavier_uniform()`` is
an :data:`Initializer`.
"""
xavier_normal = _flat_draws.glorot_normal
"""``jax.nn.initializers.glorot_normal`` under its other name, a factory: ``xavier_normal()`` is an
:data:`Initializer`.
"""
he_uniform = _flat_draws.he_uniform
"""``jax.nn.initializers.he_uniform``, drawn flat, a factory: ``he_uniform()`` is an
:data:`Initializer` (uniform, variance ``2 / fan_in``).
"""
he_normal = _flat_draws.he_normal
"""``jax.nn.initializers.he_normal``, drawn flat, a factory: ``he_normal()`` is an
:data:`Initializer` (truncated normal, variance ``2 / fan_in``).
"""
lecun_uniform = _flat_draws.lecun_uniform
"""``jax.nn.initializers.lecun_uniform``, drawn flat, a factory: ``lecun_uniform()`` is an
:data:`Initializer` (uniform, variance ``1 / fan_in``).
"""
lecun_normal = _flat_draws.lecun_normal
"""``jax.nn.initializers.lecun_normal``, drawn flat, a factory: ``lecun_normal()`` is an
:data:`Initializer` (truncated normal, variance ``1 / fan_in``).
"""
orthogonal = _jinit.orthogonal
"""``jax.nn.initializers.orthogonal``, a factory: ``orthogonal(scale=1.0)`` is an
:data:`Initializer` of (semi-)orthogonal matrices over the last two axes.
"""
normal = _flat_draws.normal
"""``jax.nn.initializers.normal``, drawn flat, a factory: ``normal(stddev=1e-2)`` is an
:data:`Initializer`.
"""
uniform = _flat_draws.uniform
"""``jax.nn.initializers.uniform``, drawn flat, a factory: ``uniform(scale=1e-2)`` is an
:data:`Initializer` on ``[0, scale)``.
"""
truncated_normal = _flat_draws.truncated_normal
"""``jax.nn.initializers.truncated_normal``, drawn flat, a factory:
``truncated_normal(stddev=1e-2)`` is an :data:`Initializer` cut at two standard deviations (so its
samples' standard deviation is about ``0.88 * stddev``).
"""
constant = _jinit.constant
"""``jax.nn.initializers.constant``, a factory: ``constant(value)`` is an :data:`Initializer`
filling every entry with ``value``.
"""
zeros = _jinit.zeros
"""``jax.nn.initializers.zeros``: an :data:`Initializer` itself (not a factory), all zeros."""
ones = _jinit.ones
"""``jax.nn.initializers.ones``: an :data:`Initializer` itself (not a factory), all ones."""

_FACTORIES: dict[str, Callable[[], Initializer]] = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "lecun_uniform": lecun_uniform,
    "lecun_normal": lecun_normal,
    "orthogonal": orthogonal,
    "normal": normal,
    "uniform": uniform,
    "truncated_normal": truncated_normal,
}
# zeros and ones are initializers already, not factories.
_PLAIN: dict[str, Initializer] = {"zeros": zeros, "ones": ones}
_JAX_FACTORIES: tuple[Callable[..., Initializer], ...] = (
    *_FACTORIES.values(),
    *(getattr(_jinit, name) for name in _FACTORIES),  # JAX's own, drawn by shape
    constant,
    _jinit.variance_scaling,
    _jinit.delta_orthogonal,
)
"""JAX's factories (``kaiming_normal`` is ``he_normal``...): passed uncalled, a mistake."""


def names() -> tuple[str, ...]:
    """The names that :func:`get` accepts, sorted.

    Returns:
      The names of the factories (called with their defaults) and of ``zeros``/``ones``.

    Example:
      >>> names()[:3]
      ('glorot_normal', 'glorot_uniform', 'he_normal')
      >>> get(names()[0])(jax.random.key(0), (3, 2)).shape
      (3, 2)
    """
    return tuple(sorted([*_FACTORIES, *_PLAIN]))


def get(init: str | Initializer) -> Initializer:
    """Returns the initializer ``init(key, shape, dtype=jnp.float32) -> jax.Array``.

    Args:
      init: a name such as ``"glorot_uniform"`` or ``"he_normal"`` (the factory is called
        with its defaults), or an initializer (returned unchanged).

    Returns:
      An :data:`Initializer`: ``init(key, shape, dtype=jnp.float32)`` returns an array
      of that shape and (floating) dtype.

    Raises:
      ValueError: for an unknown name; the message lists the known ones.
      TypeError: neither a name nor a callable; or a factory of JAX's, such as
        ``he_normal`` where ``he_normal()`` is meant (names it and says to call it).

    Example:
      >>> get("zeros")(jax.random.key(0), (2,))
      Array([0., 0.], dtype=float32)
      >>> try:
      ...     get(he_normal)
      ... except TypeError as err:
      ...     print(str(err).split("; ")[-1])
      call it: pass he_normal(), not he_normal
    """
    if callable(init):
        _check_not_factory(init)
        return init
    registry = {**_PLAIN, **{name: factory() for name, factory in _FACTORIES.items()}}
    return _registry.lookup("initializer", registry, init)


def _check_not_factory(init: Callable[..., Any]) -> None:
    """Raises ``TypeError`` if ``init`` is one of JAX's factories rather than an initializer."""
    if not any(init is factory for factory in _JAX_FACTORIES):
        return
    name = getattr(init, "__name__", repr(init))
    required = [
        p.name
        for p in inspect.signature(init).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    call = f"{name}({', '.join(required)})"
    raise TypeError(
        "initializer must be a name or an initializer init(key, shape, dtype), got the "
        f"factory {name}, which returns one; call it: pass {call}, not {name}"
    )


def _label(init: str | Initializer) -> str:
    """``init`` for a message: a name quoted, a function by its qualified name."""
    if isinstance(init, str):
        return repr(init)
    return getattr(init, "__qualname__", None) or repr(init)


def _check_drawn(init: str | Initializer, drawn: Any, shape: tuple, dtype: Any) -> None:
    """Raises ``TypeError`` naming ``init`` unless ``drawn`` is an array of ``shape``.

    Its dtype must be a number that casts to ``dtype``: real for a real ``dtype`` (the
    exact dtype is not required: without x64 JAX draws float32 for float64).
    """
    if callable(drawn):
        got = f"a function, {_label(drawn)} (is it a factory? pass its result)"
    elif not (hasattr(drawn, "shape") and hasattr(drawn, "dtype")):
        got = f"{type(drawn).__name__} {drawn!r:.60}"
    elif tuple(drawn.shape) != shape:
        got = f"an array of shape {tuple(drawn.shape)}"
    elif not jnp.issubdtype(drawn.dtype, jnp.number) or (
        jnp.issubdtype(drawn.dtype, jnp.complexfloating)
        and not jnp.issubdtype(dtype, jnp.complexfloating)
    ):
        got = f"an array of dtype {drawn.dtype}"
    else:
        return
    raise TypeError(
        f"init_param: initializer {_label(init)} returned {got}, not an array of shape "
        f"{shape} and dtype {jnp.dtype(dtype)}: an initializer is init(key, shape, dtype)"
    )


def _draws_real_only(initializer: Initializer, key: jax.Array, shape: tuple, dtype: Any) -> bool:
    """Whether ``initializer`` draws ``shape`` in the real dtype of complex ``dtype``."""
    if not jnp.issubdtype(dtype, jnp.complexfloating):
        return False
    try:
        jax.eval_shape(lambda k: initializer(k, shape, jnp.finfo(dtype).dtype), key)
    except (ValueError, ZeroDivisionError):
        return False
    return True


_FAN_BASED = frozenset(_FACTORIES) - {"orthogonal", "normal", "uniform", "truncated_normal"}
"""The named variance-scaling initializers: their variance divides by a fan."""


def init_param(
    init: str | Initializer, key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype
) -> jax.Array:
    """Draws one parameter array of ``shape`` and ``dtype`` from the initializer ``init``.

    Draws in at least float32 and casts, so low-precision dtypes work for every
    initializer (``jax.nn.initializers.orthogonal`` has no bfloat16 QR).

    Args:
      init: a name that :func:`get` accepts, or an initializer.
      key: a PRNG key.
      shape: the parameter's shape, e.g. ``(in, out)`` for a dense kernel.
      dtype: the parameter's floating (or complex) dtype.

    Returns:
      An array of ``shape`` and ``dtype``.

    Raises:
      TypeError: a ``dtype`` that is not floating or complex (an integer kernel would
        round the draws to mostly zeros); a complex ``dtype`` for an initializer that
        draws real values only (``"uniform"``, ``"truncated_normal"``); a factory
        passed uncalled (see :func:`get`); an initializer that returns anything but an
        array of ``shape`` (names the initializer and what it returned).
      ValueError: for an unknown name (from :func:`get`).
      nnjax.ShapeError: a ``shape`` the initializer cannot draw, e.g. one axis for a
        fan-based or orthogonal initializer, or a zero fan (names ``init`` and ``shape``).

    Example:
      >>> init_param("orthogonal", jax.random.key(0), (4, 4), jnp.bfloat16).dtype
      dtype(bfloat16)
    """
    if not jnp.issubdtype(dtype, jnp.inexact):
        raise TypeError(
            f"init_param: `dtype` is {jnp.dtype(dtype)}; parameters drawn from "
            f"{_label(init)} need a floating dtype (e.g. jnp.float32 or jnp.bfloat16)"
        )
    initializer, shape = get(init), tuple(shape)
    draw_dtype = jnp.promote_types(dtype, jnp.float32)
    # checked here: JAX 0.10 divides by the zero fan, newer JAX returns an empty array
    if isinstance(init, str) and init in _FAN_BASED and 0 in shape:
        raise ShapeError(
            f"init_param: initializer {init!r} cannot draw an array of shape {shape}: "
            "an axis of size 0 leaves a zero fan"
        )
    try:
        drawn = initializer(key, shape, draw_dtype)
    except (ValueError, ZeroDivisionError) as err:
        if _draws_real_only(initializer, key, shape, draw_dtype):
            raise TypeError(
                f"init_param: initializer {_label(init)} draws real values only, not dtype "
                f"{jnp.dtype(dtype)}: pick one that draws complex ones (e.g. 'normal', "
                "'he_normal', 'orthogonal') or a real dtype"
            ) from err
        raise ShapeError(
            f"init_param: initializer {_label(init)} cannot draw an array of shape {shape}: {err}"
        ) from err
    _check_drawn(init, drawn, shape, draw_dtype)
    return jnp.asarray(drawn).astype(dtype)


__all__ = [
    "Initializer",
    "constant",
    "get",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "init_param",
    "lecun_normal",
    "lecun_uniform",
    "names",
    "normal",
    "ones",
    "orthogonal",
    "truncated_normal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]
