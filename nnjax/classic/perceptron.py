"""The perceptron: threshold logic units trained by the perceptron rule.

A layer of ``out`` threshold logic units (TLUs) over ``in`` inputs, fully connected.
Unit ``j`` fires, ``a_j = H(θ_0j + Σ_i θ_ij x_i)``, with the Heaviside step ``H`` (1 where
its argument is positive, else 0). The bias ``θ_0j`` is the weight of a constant input
``x_0 = 1``; it is stored as ``params["bias"]`` next to ``params["kernel"]`` (the
``θ_ij`` for ``i >= 1``), the layout of :func:`nnjax.functional.dense`.

Training presents one example at a time and applies the perceptron rule

    θ_ij ← θ_ij + η (y_j − a_j) x_i        (x_0 = 1 for the bias),

so a unit that answered correctly keeps its weights. The loop over examples is a
``lax.scan``; the loop over epochs another one, so :func:`perceptron_fit` jit-compiles once.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from nnjax import classic
  >>> params = classic.perceptron_init(jax.random.key(0), 2, 1)
  >>> x = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
  >>> y = jnp.array([[0.0], [0.0], [0.0], [1.0]])  # AND
  >>> params, errors = classic.perceptron_fit(params, x, y, learning_rate=0.1, epochs=10)
  >>> classic.perceptron(params, x)[:, 0]
  Array([0., 0., 0., 1.], dtype=float32)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from nnjax import _checks, activations, initializers, losses
from nnjax import functional as F
from nnjax.classic import _args

Params = dict[str, jax.Array]


def perceptron_init(
    key: jax.Array,
    in_features: int,
    out_features: int,
    *,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: str | initializers.Initializer = "zeros",
) -> Params:
    """Initialises a layer of ``out_features`` threshold units over ``in_features`` inputs.

    Args:
      key: one PRNG key (used only by random initializers).
      in_features: number of inputs ``in`` (the bias input ``x_0 = 1`` not counted).
      out_features: number of units ``out``.
      dtype: parameter dtype, floating.
      kernel_init: initializer name for the kernel; zeros by default (the perceptron rule
        converges from any start). The bias always starts at zero.

    Returns:
      ``{"kernel": (in, out), "bias": (out,)}``; ``bias[j]`` is ``θ_0j``.

    Raises:
      ValueError: ``in_features`` or ``out_features`` is not a positive int, or an
        unknown ``kernel_init`` name (the message names this function and
        ``kernel_init``).
      TypeError: ``key`` is not one PRNG key (checked even for the zeros initializer),
        ``dtype`` is not floating, or ``kernel_init`` is neither a name nor a callable.

    Example:
      >>> jax.tree.map(jnp.shape, perceptron_init(jax.random.key(0), 3, 2))
      {'bias': (2,), 'kernel': (3, 2)}
    """
    in_features = _checks.positive_int("perceptron_init", "in_features", in_features)
    out_features = _checks.positive_int("perceptron_init", "out_features", out_features)
    _args.check_key("perceptron_init", "key", key)
    dtype = _args.float_dtype("perceptron_init", dtype)
    _args.initializer("perceptron_init", "kernel_init", kernel_init)  # names the function
    return F.dense_init(
        key, in_features, out_features, dtype=dtype, kernel_init=kernel_init, bias_init="zeros"
    )


def perceptron(params: Params, x: jax.typing.ArrayLike) -> jax.Array:
    """The outputs ``a = H(x @ kernel + bias)`` of the threshold units, 0 or 1.

    Args:
      params: ``{"kernel": (in, out), "bias": (out,)}``.
      x: ``(..., in)``, floating.

    Returns:
      ``(..., out)`` of zeros and ones, the dtype of ``x``.

    Raises:
      nnjax.ShapeError: the last axis of ``x`` is not ``in``, or ``params`` of
        inconsistent shapes.
      TypeError: ``x`` is not floating.
      ValueError: ``params`` has a key other than ``"kernel"`` and ``"bias"``.
      KeyError: ``params`` lacks ``"kernel"``.

    Example:
      >>> p = {"kernel": jnp.ones((2, 1)), "bias": jnp.array([-1.5])}
      >>> perceptron(p, jnp.array([[1.0, 1.0], [1.0, 0.0]]))[:, 0]
      Array([1., 0.], dtype=float32)
    """
    return activations.heaviside(F.dense(params, x))


def perceptron_update(
    params: Params,
    x: jax.typing.ArrayLike,
    y: jax.typing.ArrayLike,
    *,
    learning_rate: float | jax.Array,
) -> Params:
    """Applies the perceptron rule for one example: ``θ_ij += η (y_j − a_j) x_i``.

    Args:
      params: ``{"kernel": (in, out), "bias": (out,)}``.
      x: one example ``(in,)``, floating (cast to the kernel's dtype).
      y: its target ``(out,)`` of zeros and ones, any numeric dtype (cast likewise).
      learning_rate: ``η``, a real scalar ``>= 0``.

    Returns:
      The updated parameters, same structure and dtypes. Units whose output ``a_j``
      equals ``y_j`` keep their weights.

    Raises:
      nnjax.ShapeError: ``x`` is not ``(in,)`` or ``y`` is not ``(out,)``.
      TypeError: ``learning_rate`` is not a real scalar.
      ValueError: ``learning_rate`` negative, NaN or infinite (checked when it is a
        Python or NumPy number).

    Example:
      >>> p = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones((2,))}
      >>> p = perceptron_update(p, jnp.array([0.5, 1.0]), jnp.array([1.0, 0.0]),
      ...                       learning_rate=0.1)
      >>> p["bias"], p["kernel"][:, 1]
      (Array([1. , 0.9], dtype=float32), Array([0.95, 0.9 ], dtype=float32))
    """
    _args.check_learning_rate("perceptron_update", learning_rate)
    kernel = params["kernel"]
    x = jnp.asarray(x, kernel.dtype)
    y = jnp.asarray(y, kernel.dtype)
    _checks.check_shape("perceptron_update", "x", x, (kernel.shape[0],))
    _checks.check_shape("perceptron_update", "y", y, (kernel.shape[1],))
    error = learning_rate * (y - perceptron(params, x))
    return {
        "kernel": kernel + jnp.outer(x, error).astype(kernel.dtype),
        "bias": params["bias"] + error.astype(kernel.dtype),
    }


def perceptron_epoch(
    params: Params,
    x: jax.typing.ArrayLike,
    y: jax.typing.ArrayLike,
    *,
    learning_rate: float | jax.Array,
) -> tuple[Params, jax.Array]:
    """One pass over the examples in order, one update each, as a ``lax.scan``.

    Args:
      params: ``{"kernel": (in, out), "bias": (out,)}``.
      x: ``(N, in)`` examples, floating.
      y: ``(N, out)`` targets of zeros and ones (cast to the dtype of ``x``).
      learning_rate: ``η``, a real scalar ``>= 0``.

    Returns:
      ``(params, errors)``: the parameters after the pass and the number of examples
      (int32 scalar) that had at least one wrong output when presented.

    Raises:
      nnjax.ShapeError: ``x`` is not ``(N, in)`` or ``y`` is not ``(N, out)``.
      ValueError: concrete ``y`` holding a value other than 0 and 1 (names the first),
        or ``learning_rate`` negative, NaN or infinite (checked when it is a Python or
        NumPy number).
      TypeError: ``x`` is not floating, or ``learning_rate`` is not a real scalar.

    Example:
      >>> p = perceptron_init(jax.random.key(0), 1, 1)
      >>> p, errors = perceptron_epoch(p, jnp.array([[1.0], [-1.0]]),
      ...                              jnp.array([[1.0], [0.0]]), learning_rate=1.0)
      >>> int(errors)
      1
    """
    _args.check_learning_rate("perceptron_epoch", learning_rate)
    x, y = _check_data("perceptron_epoch", params, x, y)
    return _epoch(params, x, y, learning_rate)


@jax.jit
def _epoch(params: Params, x: jax.Array, y: jax.Array, learning_rate) -> tuple[Params, jax.Array]:
    """The epoch's scan; jitted, so an eager call compiles once per shape, not each time."""

    def step(p, xy):
        xi, yi = xy
        wrong = jnp.any(perceptron(p, xi) != yi)
        return perceptron_update(p, xi, yi, learning_rate=learning_rate), wrong

    params, wrong = jax.lax.scan(step, params, (x, y))
    return params, jnp.sum(wrong, dtype=jnp.int32)


def perceptron_fit(
    params: Params,
    x: jax.typing.ArrayLike,
    y: jax.typing.ArrayLike,
    *,
    learning_rate: float | jax.Array = 0.1,
    epochs: int = 10,
    key: jax.Array | None = None,
) -> tuple[Params, jax.Array]:
    """Trains with the perceptron rule for ``epochs`` passes (jit-compiled, ``lax.scan``).

    Args:
      params: ``{"kernel": (in, out), "bias": (out,)}``.
      x: ``(N, in)`` examples, floating.
      y: ``(N, out)`` targets of zeros and ones (cast to the dtype of ``x``).
      learning_rate: ``η``, a real scalar ``>= 0``.
      epochs: number of passes, a non-negative int (static).
      key: if given (one PRNG key), the examples are shuffled anew each epoch; else
        kept in order.

    Returns:
      ``(params, errors)`` with ``errors`` ``(epochs,)`` int32: per epoch, the number of
      examples misclassified when presented. On linearly separable data it reaches 0.

    Raises:
      nnjax.ShapeError, TypeError: as :func:`perceptron_epoch`.
      ValueError: ``epochs`` is not a non-negative int; ``y`` holds a value other than
        0 and 1 (names the first; the Heaviside unit never outputs ``-1``); or
        ``learning_rate`` is negative, NaN or infinite (checked when it is a Python or
        NumPy number).
      TypeError: ``key`` is neither ``None`` nor one PRNG key, or ``learning_rate`` is
        not a real scalar (e.g. an array of per-unit rates).

    Example:
      >>> p = perceptron_init(jax.random.key(0), 1, 1)
      >>> p, errors = perceptron_fit(p, jnp.array([[2.0], [-1.0]]),
      ...                            jnp.array([[1.0], [0.0]]), epochs=3)
      >>> errors.tolist()
      [1, 0, 0]
    """
    _checks.positive_int("perceptron_fit", "epochs", epochs, minimum=0)
    _args.check_learning_rate("perceptron_fit", learning_rate)
    _args.check_optional_key("perceptron_fit", "key", key)
    x, y = _check_data("perceptron_fit", params, x, y)  # y's values too, when concrete
    return _fit(params, x, y, learning_rate, epochs, key)


@functools.partial(jax.jit, static_argnames=("epochs",))
def _fit(params, x, y, learning_rate, epochs: int, key):
    """:func:`perceptron_fit` on checked arguments, as one compiled program."""
    keys = None if key is None else jax.random.split(key, epochs)

    def epoch(p, k):
        xs, ys = (x, y) if k is None else _shuffled(k, x, y)
        return perceptron_epoch(p, xs, ys, learning_rate=learning_rate)

    return jax.lax.scan(epoch, params, keys, length=epochs)


def _shuffled(key: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    order = jax.random.permutation(key, x.shape[0])
    return x[order], y[order]


def _check_data(
    op: str, params: Params, x: jax.typing.ArrayLike, y: jax.typing.ArrayLike
) -> tuple[jax.Array, jax.Array]:
    kernel = params["kernel"]
    x = jnp.asarray(x)
    _checks.check_floating(op, "x", x)
    y = jnp.asarray(y, x.dtype)
    _checks.check_shape(op, "x", x, (None, kernel.shape[0]))
    _checks.check_shape(op, "y", y, (x.shape[0], kernel.shape[1]))
    what = "is not 0 or 1: the targets of a threshold unit are its two outputs"
    losses._check_values(op, "y", y, lambda v: (v != 0) & (v != 1), what)  # when concrete
    return x, y
