"""Activation functions, by value or by name.

Everything that :mod:`jax.nn` provides is taken from there; only the textbook step
functions (``heaviside``, ``sign``), ``identity``, ``prelu`` (whose slope is a
parameter: see ``nnjax.functional.prelu`` and ``nnjax.nn.PReLU``) and ``gelu`` (JAX's,
computed in float32 for float16 inputs) are defined here. Every activation reads its
input alike: a list, a NumPy array or a PyTorch tensor (read as ``fit`` reads one) is
converted, an integer one to floating where the function needs it (``sigmoid``).

Example:
  >>> import jax.numpy as jnp
  >>> from nnjax import activations
  >>> activations.get("relu")(jnp.array([-1.0, 2.0]))
  Array([0., 2.], dtype=float32)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast, overload

import jax
import jax.numpy as jnp

from nnjax import _registry
from nnjax._torch_tensors import from_torch

Activation = Callable[[jax.Array], jax.Array]
"""A function from an array to an array of the same shape and dtype (what :func:`get` returns;
``glu`` halves the last axis).
"""

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def _read(x: Any) -> jax.Array:
    """``x`` as an array, as every activation here reads its input.

    A JAX array (a tracer too) is returned as it is, at the cost of one ``isinstance``;
    a PyTorch tensor is read as ``fit`` reads it (``from_torch``); anything else goes to
    ``jnp.asarray``.
    """
    return x if isinstance(x, jax.Array) else jnp.asarray(from_torch(x))


def _reading(fn: _Fn, name: str, *, inexact: bool = False) -> _Fn:
    """``fn`` (from ``jax.nn``), reading its input ``x`` by :func:`_read` first.

    JAX refuses lists (``relu([1.0, -2.0])``) and PyTorch tensors. With ``inexact``, an
    integer or bool ``x`` is promoted as ``jax.nn.elu`` promotes it (``sigmoid`` would
    refuse it). The wrapper is named ``name`` in this module, so ``nnjax.save`` records
    it and pickle finds it.
    """

    @functools.wraps(fn, updated=())
    def activation(x: jax.typing.ArrayLike, *args: Any, **kwargs: Any) -> jax.Array:
        x = _read(x)
        if inexact and x.dtype.kind in "biu":  # bool, int, uint (kind: cheap when eager)
            x = x.astype(jnp.result_type(x.dtype, float))
        return fn(x, *args, **kwargs)

    activation.__name__ = activation.__qualname__ = name
    activation.__module__ = __name__
    return cast(_Fn, activation)


sigmoid = _reading(jax.nn.sigmoid, "sigmoid", inexact=True)
"""``jax.nn.sigmoid``: ``1 / (1 + exp(-x))``, elementwise; the shape and dtype of ``x``."""
relu = _reading(jax.nn.relu, "relu")
"""``jax.nn.relu``: ``max(x, 0)``, elementwise; the shape and dtype of ``x``."""
leaky_relu = _reading(jax.nn.leaky_relu, "leaky_relu")
"""``jax.nn.leaky_relu(x, negative_slope=0.01)``: elementwise; the shape and dtype of ``x``."""
elu = _reading(jax.nn.elu, "elu")
"""``jax.nn.elu(x, alpha=1.0)``: elementwise; the shape and dtype of ``x``."""
swish = _reading(jax.nn.swish, "swish", inexact=True)
"""``jax.nn.swish`` (SiLU): ``x * sigmoid(x)``, elementwise; the shape and dtype of ``x``."""
softplus = _reading(jax.nn.softplus, "softplus")
"""``jax.nn.softplus``: ``log(1 + exp(x))``, elementwise; the shape and dtype of ``x``."""
softmax = _reading(jax.nn.softmax, "softmax")
"""``jax.nn.softmax(x, axis=-1)``: probabilities along ``axis``; the shape and dtype of ``x``."""
log_softmax = _reading(jax.nn.log_softmax, "log_softmax")
"""``jax.nn.log_softmax(x, axis=-1)``: log-probabilities along ``axis``; the shape and dtype of
``x``.
"""
tanh = _reading(jnp.tanh, "tanh")
"""``jax.numpy.tanh``: elementwise; the shape and dtype of ``x``."""
mish = _reading(jax.nn.mish, "mish")
"""``jax.nn.mish``: ``x * tanh(softplus(x))``, elementwise; the shape and dtype of ``x``."""
selu = _reading(jax.nn.selu, "selu")
"""``jax.nn.selu``: the scaled ELU, elementwise; the shape and dtype of ``x``."""
celu = _reading(jax.nn.celu, "celu")
"""``jax.nn.celu(x, alpha=1.0)``: elementwise; the shape and dtype of ``x``."""
glu = _reading(jax.nn.glu, "glu", inexact=True)
"""``jax.nn.glu(x, axis=-1)``: halves ``axis`` (``a * sigmoid(b)``); the dtype of ``x``."""
hard_sigmoid = _reading(jax.nn.hard_sigmoid, "hard_sigmoid")
"""``jax.nn.hard_sigmoid``: ``relu6(x + 3) / 6``, elementwise; the shape and dtype of ``x``."""
hard_tanh = _reading(jax.nn.hard_tanh, "hard_tanh")
"""``jax.nn.hard_tanh``: ``clip(x, -1, 1)``, elementwise; the shape and dtype of ``x``."""
log_sigmoid = _reading(jax.nn.log_sigmoid, "log_sigmoid")
"""``jax.nn.log_sigmoid``: ``-softplus(-x)``, elementwise; the shape and dtype of ``x``."""


def gelu(x: jax.typing.ArrayLike, approximate: bool = True) -> jax.Array:
    """The GELU, ``jax.nn.gelu``: by default its tanh approximation, as in JAX and Flax.

    PyTorch's and Keras's default is the exact (erf) form: pass ``approximate=False``
    (the two differ by up to about 5e-4). float16 inputs are computed in float32 and
    rounded once: the approximation's ``x**3`` overflows float16 for ``|x| > 40``, which
    made its gradient NaN from ``|x|`` of about 300.

    Args:
      x: any shape, floating.
      approximate: the tanh approximation (``True``) or the exact form.

    Returns:
      The shape and dtype of ``x``.

    Example:
      >>> [round(float(v), 4) for v in gelu(jnp.array([-1.0, 0.0, 1.0]))]
      [-0.1588, 0.0, 0.8412]
      >>> round(float(gelu(jnp.array(1.0), approximate=False)), 4)  # PyTorch's default
      0.8413
    """
    x = _read(x)
    if x.dtype == jnp.float16:
        return jax.nn.gelu(x.astype(jnp.float32), approximate).astype(x.dtype)
    return jax.nn.gelu(x, approximate)


def identity(x: jax.typing.ArrayLike) -> jax.Array:
    """Returns ``x`` unchanged (the linear activation).

    Args:
      x: any shape and dtype.

    Returns:
      ``x`` as a ``jax.Array``: the same shape and dtype.

    Example:
      >>> identity(jnp.array([-1.0, 2.0]))
      Array([-1.,  2.], dtype=float32)
    """
    return _read(x)


def heaviside(x: jax.typing.ArrayLike) -> jax.Array:
    """The Heaviside step of a threshold logic unit: 1 where ``x > 0``, else 0.

    The output has the dtype of ``x``. Its derivative is zero almost everywhere, so it is
    for perceptrons trained by the perceptron rule, not by gradient descent.

    Args:
      x: any shape, numeric.

    Returns:
      0s and 1s, the shape and dtype of ``x``.

    Example:
      >>> heaviside(jnp.array([-1.0, 0.0, 2.0]))
      Array([0., 0., 1.], dtype=float32)
    """
    x = _read(x)
    return jnp.where(x > 0, jnp.ones_like(x), jnp.zeros_like(x))


def sign(x: jax.typing.ArrayLike) -> jax.Array:
    """The sign unit: 1 where ``x >= 0``, else -1 (never 0, unlike ``jnp.sign``).

    Used by the ±1 logic gates and Hopfield networks, where every unit is either on or off.

    Args:
      x: any shape, numeric (signed).

    Returns:
      -1s and 1s, the shape and dtype of ``x``.

    Example:
      >>> sign(jnp.array([-0.5, 0.0, 2.0]))
      Array([-1.,  1.,  1.], dtype=float32)
    """
    x = _read(x)
    return jnp.where(x >= 0, jnp.ones_like(x), -jnp.ones_like(x))


def prelu(x: jax.typing.ArrayLike, negative_slope: jax.typing.ArrayLike) -> jax.Array:
    """The parametric ReLU: ``x`` where ``x >= 0``, else ``negative_slope * x``.

    Unlike ``leaky_relu``, the slope is meant to be learnt (PyTorch's ``PReLU``), so it
    is an argument that broadcasts against the last axis: a scalar, ``(1,)`` (one slope
    shared by every channel) or ``(C,)`` (one per channel, channels-last).

    Args:
      x: ``(..., C)``, floating.
      negative_slope: ``()``, ``(1,)`` or ``(C,)``, floating (cast to the dtype of ``x``).

    Returns:
      The shape and dtype of ``x``.

    Raises:
      ValueError: if ``negative_slope`` does not have one of those shapes.

    Example:
      >>> prelu(jnp.array([-2.0, 0.0, 3.0]), jnp.array([0.25]))
      Array([-0.5,  0. ,  3. ], dtype=float32)
    """
    x = _read(x)
    slope = _read(negative_slope)
    channels = x.shape[-1] if x.ndim else 1
    if slope.shape not in ((), (1,), (channels,)):
        raise ValueError(
            f"prelu: `negative_slope` has shape {slope.shape}, expected (), (1,) or "
            f"({channels},) for `x` of shape {x.shape}"
        )
    slope = jnp.reshape(slope.astype(x.dtype), (1,) * (x.ndim - slope.ndim) + slope.shape)
    if slope.ndim > x.ndim:  # scalar x with a (1,) slope
        slope = jnp.reshape(slope, ())
    return jnp.where(x >= 0, x, slope * x)


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
    "mish": mish,
    "selu": selu,
    "celu": celu,
    "glu": glu,
    "hard_sigmoid": hard_sigmoid,
    "hard_tanh": hard_tanh,
    "log_sigmoid": log_sigmoid,
}


def names() -> tuple[str, ...]:
    """The names that :func:`get` accepts, sorted.

    Returns:
      The registered names, aliases included (``"linear"``, ``"silu"``).

    Example:
      >>> names()[:4]
      ('celu', 'elu', 'gelu', 'glu')
      >>> all(callable(get(name)) for name in names())
      True
    """
    return tuple(sorted(_REGISTRY))


@overload
def get(activation: str | None) -> Callable[[jax.typing.ArrayLike], jax.Array]: ...
@overload
def get(activation: _Fn) -> _Fn: ...
@overload
def get(activation: str | Activation | None) -> Activation: ...
def get(activation: str | Activation | None) -> Activation:
    """Returns the activation function named ``activation``.

    Args:
      activation: a name such as ``"relu"`` (case-insensitive), a callable (returned
        unchanged), or ``None`` (the identity).

    Returns:
      A function from arrays to arrays of the same shape (``"glu"`` halves the last axis).

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
    "celu",
    "elu",
    "gelu",
    "get",
    "glu",
    "hard_sigmoid",
    "hard_tanh",
    "heaviside",
    "identity",
    "leaky_relu",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "names",
    "prelu",
    "relu",
    "selu",
    "sigmoid",
    "sign",
    "softmax",
    "softplus",
    "swish",
    "tanh",
]
