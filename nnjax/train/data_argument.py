"""Keras's ``fit(x, y)`` habit, named: ``fit`` and ``evaluate`` take the data as one argument.

``nnjax.train.fit(model, (x, y))`` takes the inputs and labels together, as ``data``;
a call written as Keras's ``model.fit(x, y)`` (``fit(model, x, y)`` or
``fit(model, x=x, y=y)``) would otherwise get Python's own "takes 2 positional
arguments but 3 were given". :func:`data_as_one_argument` checks a call against the
function's signature first and says how to pass the data.

Example:
  >>> @data_as_one_argument
  ... def fit(model, data, *, epochs=1):
  ...     return data
  >>> fit("model", "x", "y")
  Traceback (most recent call last):
  ...
  TypeError: fit takes the data as one argument: fit(model, (x, y), ...) ...; got 3 positional...
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

T = TypeVar("T")
_P = ParamSpec("_P")

_KERAS_KEYWORDS = ("x", "y", "sample_weight")
"""Keras's names of the data, which ``fit`` and ``evaluate`` take as ``data``."""


def data_as_one_argument(fn: Callable[_P, T]) -> Callable[_P, T]:
    """``fn`` whose calls with the data split Keras's way raise a ``TypeError`` saying so.

    A call that binds to ``fn``'s signature runs unchanged; one that does not, with
    more positional arguments than ``(model, data)`` or a keyword ``x``, ``y`` or
    ``sample_weight``, raises a ``TypeError`` naming ``fn(model, (x, y), ...)``. Other
    binding errors are Python's own.

    Args:
      fn: a function taking ``(model, data, *, ...)``.

    Returns:
      ``fn`` with the same signature and result.
    """
    signature = inspect.signature(fn)
    name = fn.__name__

    @functools.wraps(fn)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> T:
        try:
            signature.bind(*args, **kwargs)
        except TypeError:
            got = _keras_style(args, kwargs)
            if got is None:  # Python's own error, naming the function
                return fn(*args, **kwargs)
            raise TypeError(
                f"{name} takes the data as one argument: {name}(model, (x, y), ...) "
                f"(Keras's {name}(x, y)); got {got}"
            ) from None
        return fn(*args, **kwargs)

    return checked


def _keras_style(args: tuple, kwargs: dict[str, Any]) -> str | None:
    """What in a call that failed to bind looks like Keras's data arguments, or ``None``."""
    keywords = [k for k in _KERAS_KEYWORDS if k in kwargs]
    if keywords:
        return "the keyword " + ", ".join(f"{k}=" for k in keywords)
    if len(args) > 2:
        return f"{len(args)} positional arguments"
    return None


__all__ = ["data_as_one_argument"]
