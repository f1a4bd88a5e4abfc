"""Weight initializers, by value or by name.

Thin re-exports of :mod:`jax.nn.initializers`. Each entry is a *factory*: calling it
(e.g. ``glorot_uniform()``) returns an initializer ``init(key, shape, dtype) -> array``.
For a kernel of shape ``(..., fan_in, fan_out)`` (dense ``(in, out)``, conv
``(kh, kw, in, out)``) the fans are read off the last two axes and the receptive field.

Defaults per op (the same as Keras and Flax): Glorot/Xavier uniform for dense and
convolution kernels, orthogonal for recurrent kernels, zeros for biases.

Example:
  >>> import jax
  >>> from nnjax import initializers
  >>> init = initializers.get("he_normal")
  >>> init(jax.random.key(0), (784, 100)).shape
  (784, 100)
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.nn import initializers as _jinit

from nnjax import _registry

Initializer = Callable[..., jax.Array]

glorot_uniform = _jinit.glorot_uniform
glorot_normal = _jinit.glorot_normal
xavier_uniform = _jinit.glorot_uniform
xavier_normal = _jinit.glorot_normal
he_uniform = _jinit.he_uniform
he_normal = _jinit.he_normal
lecun_uniform = _jinit.lecun_uniform
lecun_normal = _jinit.lecun_normal
orthogonal = _jinit.orthogonal
normal = _jinit.normal
uniform = _jinit.uniform
truncated_normal = _jinit.truncated_normal
constant = _jinit.constant
zeros = _jinit.zeros
ones = _jinit.ones

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


def names() -> tuple[str, ...]:
    """The names that :func:`get` accepts, sorted."""
    return tuple(sorted([*_FACTORIES, *_PLAIN]))


def get(init: str | Initializer) -> Initializer:
    """Returns the initializer ``init(key, shape, dtype=jnp.float32) -> jax.Array``.

    Args:
      init: a name such as ``"glorot_uniform"`` or ``"he_normal"`` (the factory is called
        with its defaults), or an initializer (returned unchanged).

    Raises:
      ValueError: for an unknown name; the message lists the known ones.

    Example:
      >>> get("zeros")(jax.random.key(0), (2,))
      Array([0., 0.], dtype=float32)
    """
    if callable(init):
        return init
    registry = {**_PLAIN, **{name: factory() for name, factory in _FACTORIES.items()}}
    return _registry.lookup("initializer", registry, init)


def init_param(
    init: str | Initializer, key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype
) -> jax.Array:
    """Draws one parameter array of ``shape`` and ``dtype`` from the initializer ``init``.

    Draws in at least float32 and casts, so low-precision dtypes work for every
    initializer (``jax.nn.initializers.orthogonal`` has no bfloat16 QR).

    Example:
      >>> init_param("orthogonal", jax.random.key(0), (4, 4), jnp.bfloat16).dtype
      dtype(bfloat16)
    """
    draw_dtype = jnp.promote_types(dtype, jnp.float32)
    return get(init)(key, shape, draw_dtype).astype(dtype)


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
