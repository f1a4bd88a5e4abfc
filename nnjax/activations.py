"""Activation functions, by value or by name.

Everything that :mod:`jax.nn` provides is re-exported from there; only the textbook
step functions (``heaviside``, ``sign``) and ``identity`` are defined here.

Example:
  >>> import jax.numpy as jnp

from nnjax import _registry
  >>> from nnjax import activations
  >>> activations.get("relu")(jnp.array([-1.0, 2.0]))
  Array([0., 2.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from nnjax import _registry

Activation = Callable[[jax.Array], jax.Array]

sigmoid = jax.nn.sigmoid
relu = jax.nn.relu
leaky_relu = jax.nn.leaky_relu
elu = jax.nn.elu
gelu = jax.nn.gelu
swish = jax.nn.swish
softplus = jax.nn.softplus
softmax = jax.nn.softmax
log_softmax = jax.nn.log_softmax
tanh = jnp.tanh


def identity(x: jax.typing.ArrayLike) -> jax.Array:
    """Returns ``x`` unchanged (the linear activation).

    Example:
      >>> identity(jnp.array([-1.0, 2.0]))
      Array([-1.,  2.], dtype=float32)
    """
    return jnp.asarray(x)


def heaviside(x: jax.typing.ArrayLike) -> jax.Array:
    """The Heaviside step of a threshold logic unit: 1 where ``x > 0``, else 0.

    The output has the dtype of ``x``. Its derivative is zero almost everywhere, so it is
    for perceptrons trained by the perceptron rule, not by gradient descent.

    Example:
      >>> heaviside(jnp.array([-1.0, 0.0, 2.0]))
      Array([0., 0., 1.], dtype=float32)
    """
    x = jnp.asarray(x)
    return jnp.where(x > 0, jnp.ones_like(x), jnp.zeros_like(x))


def sign(x: jax.typing.ArrayLike) -> jax.Array:
    """The sign unit: 1 where ``x >= 0``, else -1 (never 0, unlike ``jnp.sign``).

    Used by the ±1 logic gates and Hopfield networks, where every unit is either on or off.

    Example:
      >>> sign(jnp.array([-0.5, 0.0, 2.0]))
      Array([-1.,  1.,  1.], dtype=float32)
    """
    x = jnp.asarray(x)
    return jnp.where(x >= 0, jnp.ones_like(x), -jnp.ones_like(x))


_REGISTRY: dict[str, Activation] = {
    "identity": identity,
    "linear": identity,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "gelu": gelu,
    "swish": swish,
    "silu": swish,
    "softplus": softplus,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "heaviside": heaviside,
    "sign": sign,
}


def names() -> tuple[str, ...]:
    """The names that :func:`get` accepts, sorted."""
    return tuple(sorted(_REGISTRY))


def get(activation: str | Activation | None) -> Activation:
    """Returns the activation function named ``activation``.

    Args:
      activation: a name such as ``"relu"`` (case-insensitive), a callable (returned
        unchanged), or ``None`` (the identity).

    Returns:
      A function from arrays to arrays of the same shape.

    Raises:
      ValueError: for an unknown name; the message lists the known ones.
      TypeError: for something that is neither a string nor callable.

    Example:
      >>> get("tanh") is tanh
      True
    """
    if activation is None:
        return identity
    if callable(activation):
        return activation
    return _registry.lookup("activation", _REGISTRY, activation)


__all__ = [
    "Activation",
    "elu",
    "gelu",
    "get",
    "heaviside",
    "identity",
    "leaky_relu",
    "log_softmax",
    "names",
    "relu",
    "sigmoid",
    "sign",
    "softmax",
    "softplus",
    "swish",
    "tanh",
]
