"""JAX's random initializers, drawn flat and reshaped: the same arrays, compiled faster (private).

An eager ``jax.random`` draw compiles one program per shape, and XLA:CPU's compile time
of the counter-based generator grows with the shape's rank: Glorot uniform took 0.54 s
to compile for a ``(3, 3, 32, 64)`` kernel and 2.7 s for a ``(3, 3, 3, 8, 16)`` one, and
0.2 s for either drawn flat (2-core Zen 3, jax 0.10.2). JAX's generators (threefry,
partitionable or not, and rbg) give a shape the bits of its size drawn flat, reshaped;
so these factories, JAX's ``variance_scaling``, ``uniform``, ``normal`` and
``truncated_normal`` with the same arguments, draw ``(size,)`` and reshape: the same
arrays (``tests/test_flat_draws.py`` checks each against JAX's own), bitwise on jax
0.10.2; where XLA compiles the flat and the shaped normal's ``erf_inv`` differently
(jax 0.8.1), a few elements differ in their last bit. Complex dtypes and an
``out_sharding`` go to JAX's own initializer.

Example:
  >>> import numpy as np
  >>> from jax.nn import initializers as jinit
  >>> key, shape = jax.random.key(0), (3, 3, 4, 8)
  >>> drawn = glorot_uniform()(key, shape)
  >>> drawn.shape, bool(np.array_equal(drawn, jinit.glorot_uniform()(key, shape)))
  ((3, 3, 4, 8), True)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax.nn import initializers as _jinit

from nnjax import _checks

Initializer = Callable[..., jax.Array]
Axes = int | Sequence[int]
Mode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
Distribution = Literal["truncated_normal", "normal", "uniform"]

_DENOMINATORS: dict[str, Callable[[float, float], float]] = {
    "fan_in": lambda fan_in, fan_out: fan_in,
    "fan_out": lambda fan_in, fan_out: fan_out,
    "fan_avg": lambda fan_in, fan_out: (fan_in + fan_out) / 2,
    "fan_geo_avg": lambda fan_in, fan_out: (fan_in * fan_out) ** 0.5,
}
"""``variance_scaling``'s modes: the denominator of the variance, from the two fans."""


def _draw(
    distribution: str, key: jax.Array, shape: tuple[int, ...], dtype: Any, lower=-2.0, upper=2.0
) -> jax.Array:
    """``shape``'s draw of JAX's standard ``distribution``, drawn flat and reshaped.

    ``"uniform"`` is on ``[-1, 1)`` (``variance_scaling``'s), ``"uniform01"`` on
    ``[0, 1)``; ``"truncated_normal"`` is cut at ``lower`` and ``upper``.
    """
    flat = (math.prod(shape),)
    if distribution == "uniform":
        values = jax.random.uniform(key, flat, dtype, -1)
    elif distribution == "uniform01":
        values = jax.random.uniform(key, flat, dtype)
    elif distribution == "normal":
        values = jax.random.normal(key, flat, dtype)
    else:
        values = jax.random.truncated_normal(key, lower, upper, flat, dtype)
    return values.reshape(shape)


def _flat_or_own(own: Initializer, draw: Callable[..., jax.Array], default: Any) -> Initializer:
    """An initializer that calls ``draw(key, shape, dtype)`` or JAX's ``own`` one.

    ``draw`` for real draws of two axes or more, else ``own`` (a complex dtype, an
    ``out_sharding``, one axis); ``dtype`` defaults to ``default`` (JAX's default float
    if ``None``).
    """

    @functools.wraps(own)  # its name in messages: "truncated_normal.<locals>.init"
    def init(
        key: jax.Array, shape: Any, dtype: Any = default, out_sharding: Any = None
    ) -> jax.Array:
        if out_sharding is not None or not _flat_draw(shape, dtype):
            sharding = {} if out_sharding is None else {"out_sharding": out_sharding}
            return own(key, shape, dtype, **sharding)  # and its errors, warnings
        dtype = jax.dtypes.canonicalize_dtype(float) if dtype is None else dtype
        return draw(key, tuple(int(n) for n in shape), dtype)

    return init


def _flat_draw(shape: Any, dtype: Any) -> bool:
    """Whether a real draw of two or more non-negative int axes (others go to JAX's)."""
    if dtype is not None and not jnp.issubdtype(dtype, jnp.floating):
        return False
    if isinstance(shape, str) or not isinstance(shape, Sequence) or len(shape) < 2:
        return False
    return all(_checks.is_int(n) and n >= 0 for n in shape)


def _size(shape: tuple[int, ...], axes: Axes) -> int:
    return shape[axes] if isinstance(axes, int) else math.prod(shape[i] for i in axes)


def _fans(shape: tuple[int, ...], in_axis: Axes, out_axis: Axes, batch_axis: Axes) -> tuple:
    """``(fan_in, fan_out)`` as ``jax.nn.initializers.variance_scaling`` counts them."""
    in_size, out_size = _size(shape, in_axis), _size(shape, out_axis)
    receptive = math.prod(shape) / in_size / out_size / _size(shape, batch_axis)
    return in_size * receptive, out_size * receptive


def variance_scaling(
    scale: float,
    mode: Mode,
    distribution: Distribution,
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: Any = None,
) -> Initializer:
    """``jax.nn.initializers.variance_scaling(...)``, its real draws made flat.

    Args:
      scale: the variance's numerator.
      mode: ``"fan_in"``, ``"fan_out"``, ``"fan_avg"`` or ``"fan_geo_avg"``: the
        denominator.
      distribution: ``"uniform"``, ``"normal"`` or ``"truncated_normal"``.
      in_axis: the input axis or axes of the weights.
      out_axis: the output axis or axes.
      batch_axis: axes left out of the fans.
      dtype: the initializer's default dtype (JAX's default float if ``None``).

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)``: JAX's initializer's array
      (to its last bit, see above). A draw that does not go flat (a complex dtype, a
      sharding, fewer than two axes), an unknown mode or distribution: JAX's own
      initializer, its errors.

    Example:
      >>> variance_scaling(2.0, "fan_in", "normal")(jax.random.key(0), (4, 3)).shape
      (4, 3)
    """
    own = _jinit.variance_scaling(scale, mode, distribution, in_axis, out_axis, batch_axis, dtype)
    if mode not in _DENOMINATORS or distribution not in ("uniform", "normal", "truncated_normal"):
        return own

    def draw(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
        denominator = _DENOMINATORS[mode](*_fans(shape, in_axis, out_axis, batch_axis))
        variance = jnp.array(scale / denominator, dtype=dtype)
        if distribution == "truncated_normal":  # the stddev of a normal cut at 2
            factor = jnp.sqrt(variance) / jnp.array(0.87962566103423978, dtype)
        else:
            factor = jnp.sqrt(3 * variance if distribution == "uniform" else variance)
        return _draw(distribution, key, shape, dtype) * factor

    return _flat_or_own(own, draw, dtype)


def uniform(scale: float = 1e-2, dtype: Any = None) -> Initializer:
    """``jax.nn.initializers.uniform(scale, dtype)``, drawn flat: values in ``[0, scale)``.

    Example:
      >>> bool(uniform(2.0)(jax.random.key(0), (3, 4)).max() < 2.0)
      True
    """
    draw = lambda key, shape, dtype: _draw("uniform01", key, shape, dtype) * jnp.array(scale, dtype)
    return _flat_or_own(_jinit.uniform(scale, dtype), draw, dtype)


def normal(stddev: float = 1e-2, dtype: Any = None) -> Initializer:
    """``jax.nn.initializers.normal(stddev, dtype)``, drawn flat.

    Example:
      >>> normal(0.5)(jax.random.key(0), (3, 4)).shape
      (3, 4)
    """
    draw = lambda key, shape, dtype: _draw("normal", key, shape, dtype) * jnp.array(stddev, dtype)
    return _flat_or_own(_jinit.normal(stddev, dtype), draw, dtype)


def truncated_normal(
    stddev: float = 1e-2, dtype: Any = None, lower: float = -2.0, upper: float = 2.0
) -> Initializer:
    """``jax.nn.initializers.truncated_normal(stddev, dtype, lower, upper)``, drawn flat.

    Example:
      >>> bool(abs(truncated_normal(1.0)(jax.random.key(0), (3, 4))).max() < 2.0)
      True
    """
    own = _jinit.truncated_normal(stddev, dtype, lower, upper)

    def draw(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
        values = _draw("truncated_normal", key, shape, dtype, lower, upper)
        return values * jnp.array(stddev, dtype)

    return _flat_or_own(own, draw, dtype)


def glorot_uniform(
    in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (), dtype: Any = None
) -> Initializer:
    """``jax.nn.initializers.glorot_uniform(...)``, drawn flat: variance ``2 / (fan_in + fan_out)``.

    Example:
      >>> glorot_uniform()(jax.random.key(0), (3, 3, 2, 4)).shape
      (3, 3, 2, 4)
    """
    return variance_scaling(1.0, "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype)


def glorot_normal(
    in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (), dtype: Any = None
) -> Initializer:
    """``jax.nn.initializers.glorot_normal(...)``, drawn flat (truncated normal).

    Example:
      >>> glorot_normal()(jax.random.key(0), (3, 3, 2, 4)).shape
      (3, 3, 2, 4)
    """
    return variance_scaling(
        1.0, "fan_avg", "truncated_normal", in_axis, out_axis, batch_axis, dtype
    )


def he_uniform(
    in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (), dtype: Any = None
) -> Initializer:
    """``jax.nn.initializers.he_uniform(...)``, drawn flat: variance ``2 / fan_in``.

    Example:
      >>> he_uniform()(jax.random.key(0), (3, 3, 2, 4)).shape
      (3, 3, 2, 4)
    """
    return variance_scaling(2.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def he_normal(
    in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (), dtype: Any = None
) -> Initializer:
    """``jax.nn.initializers.he_normal(...)``, drawn flat (truncated normal).

    Example:
      >>> he_normal()(jax.random.key(0), (3, 3, 2, 4)).shape
      (3, 3, 2, 4)
    """
    return variance_scaling(2.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis, dtype)


def lecun_uniform(
    in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (), dtype: Any = None
) -> Initializer:
    """``jax.nn.initializers.lecun_uniform(...)``, drawn flat: variance ``1 / fan_in``.

    Example:
      >>> lecun_uniform()(jax.random.key(0), (3, 3, 2, 4)).shape
      (3, 3, 2, 4)
    """
    return variance_scaling(1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def lecun_normal(
    in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (), dtype: Any = None
) -> Initializer:
    """``jax.nn.initializers.lecun_normal(...)``, drawn flat (truncated normal).

    Example:
      >>> lecun_normal()(jax.random.key(0), (3, 3, 2, 4)).shape
      (3, 3, 2, 4)
    """
    return variance_scaling(1.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis, dtype)
