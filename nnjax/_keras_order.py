"""Losses and metrics of your own written in Keras's argument order (private).

nnjax (like Optax) calls a loss or metric as ``fn(predictions, targets)``; Keras calls
them ``fn(y_true, y_pred)``. A function whose first two parameters are named exactly
``y_true`` and ``y_pred``, in that order, is written for Keras: :func:`keras_order`
returns a wrapper that calls it in Keras's order. :func:`nnjax.losses.get` and
:func:`nnjax.metrics.resolve` apply it to every function they are given.

Example:
  >>> import jax.numpy as jnp
  >>> def over(y_true, y_pred):
  ...     return jnp.mean(jnp.maximum(y_pred - y_true, 0.0))
  >>> float(keras_order(over)(jnp.array([3.0]), jnp.array([1.0])))  # predictions first
  2.0
  >>> keras_order(over) is keras_order(over), keras_order(jnp.add) is jnp.add
  (True, True)
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Callable
from typing import Any

KERAS_NAMES = ("y_true", "y_pred")
"""The names of the first two parameters that mark a function written for Keras."""

_WRAPPERS: weakref.WeakKeyDictionary[Any, weakref.ref[Callable[..., Any]]] = (
    weakref.WeakKeyDictionary()
)
"""Each Keras-order function's wrapper, held weakly both ways (the wrapper holds the
function): so the same function gives the same wrapper (no recompiles), and neither
outlives the other's users."""


def in_keras_order(fn: Any) -> bool:
    """Whether ``fn``'s first two parameters are ``y_true`` and ``y_pred``, in that order.

    Example:
      >>> in_keras_order(lambda y_true, y_pred: 0), in_keras_order(lambda y_pred, y_true: 0)
      (True, False)
    """
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin whose signature cannot be read
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    first = [p.name for p in params[:2] if p.kind in positional]
    return tuple(first) == KERAS_NAMES


def keras_order(fn: Any) -> Any:
    """``fn`` itself, or for a function written for Keras a wrapper in nnjax's order.

    The wrapper ``wrapper(predictions, targets, *args, **kwargs)`` calls
    ``fn(targets, predictions, *args, **kwargs)``. It carries ``fn``'s name, docstring
    and signature (its first two parameters renamed ``predictions`` and ``targets``),
    so keywords such as ``reduction`` and ``mask`` are still found, and messages name
    ``fn``. The same function gives the same wrapper while either is in use.

    Args:
      fn: any callable (or anything else, returned as is).

    Returns:
      The wrapper when :func:`in_keras_order` holds, else ``fn``.

    Example:
      >>> def pinball(y_true, y_pred, *, reduction="mean"):
      ...     return y_true - y_pred
      >>> wrapped = keras_order(pinball)
      >>> wrapped.__name__, list(inspect.signature(wrapped).parameters)
      ('pinball', ['predictions', 'targets', 'reduction'])
      >>> wrapped(1.0, 3.0)
      2.0
    """
    if not callable(fn) or not in_keras_order(fn):
        return fn
    try:
        cached = _WRAPPERS.get(fn)
    except TypeError:  # neither hashable nor weakly referenced: a wrapper of its own
        return _wrap(fn)
    wrapper = cached() if cached is not None else None
    if wrapper is None:
        wrapper = _wrap(fn)
        try:
            _WRAPPERS[fn] = weakref.ref(wrapper)
        except TypeError:
            pass
    return wrapper


def _wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(predictions: Any, targets: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(targets, predictions, *args, **kwargs)

    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    renamed = [params[0].replace(name="predictions"), params[1].replace(name="targets")]
    signature = signature.replace(parameters=renamed + params[2:])
    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    return wrapper


__all__ = ["KERAS_NAMES", "in_keras_order", "keras_order"]
