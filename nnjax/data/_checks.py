"""Argument checks of :mod:`nnjax.data` (host side, NumPy only).

They mirror :mod:`nnjax._checks` (``is_int``, ``positive_int``, ``check_interval``) with
the same semantics and messages, ``"<op>: `<arg>` must be ..., got <repr>"``: the data
package sits beside the base layer and may import nothing outside ``nnjax.data``
(``tests/test_package.py``), while ``nnjax._checks`` imports JAX and chex.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def is_int(value: Any) -> bool:
    """Whether ``value`` is a Python or NumPy integer (``np.int64(2)``), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _kind(minimum: int) -> str:
    return {0: "a non-negative int", 1: "a positive int"}.get(minimum, f"an int >= {minimum}")


def positive_int(op: str, name: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` as an ``int`` after checking it is an int ``>= minimum``.

    NumPy integers count as ints; bools, floats (even ``2.0``) and ``None`` do not.

    Raises:
      ValueError: naming ``op``, the argument ``name`` and the value passed.

    Example:
      >>> positive_int("blobs", "num_samples", np.int64(3))
      3
    """
    if not is_int(value) or value < minimum:
        raise ValueError(f"{op}: `{name}` must be {_kind(minimum)}, got {value!r}")
    return int(value)


def seed(op: str, value: Any, name: str = "seed") -> int:
    """A seed (or epoch) for ``np.random.default_rng``: a non-negative int."""
    return positive_int(op, name, value, minimum=0)


def flag(op: str, name: str, value: Any, *, optional: bool = False) -> Any:
    """``value`` as a ``bool`` after checking it is one (``np.bool_`` too).

    Args:
      op: the function, for the message.
      name: the argument, for the message.
      value: what the caller passed.
      optional: ``None`` is allowed too (and returned as it is).

    Raises:
      TypeError: ``value`` is not a bool (a string such as ``"no"`` is truthy, an int
        is ambiguous), naming ``op``, the argument ``name`` and the value passed.

    Example:
      >>> flag("batches", "shuffle", np.True_), flag("fetch", "progress", None, optional=True)
      (True, None)
    """
    if optional and value is None:
        return None
    if not isinstance(value, bool | np.bool_):
        allowed = "a bool (True or False)" + (" or None" if optional else "")
        raise TypeError(f"{op}: `{name}` must be {allowed}, got {value!r}")
    return bool(value)


def finite_number(
    op: str, name: str, value: Any, low: float | None = None, *, open_low: bool = False
) -> float:
    """``value`` as a float after checking it is a finite real number ``>= low`` (``> low``).

    Raises:
      TypeError: ``value`` is not a real number (a bool, a string, ``None``, complex).
      ValueError: ``value`` is NaN or infinite, or below ``low``.

    Example:
      >>> finite_number("two_moons", "noise", 0.1, 0)
      0.1
    """
    number = isinstance(value, numbers.Real) or (
        isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"
    )
    if not number or isinstance(value, bool | np.bool_):
        raise TypeError(f"{op}: `{name}` must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{op}: `{name}` must be finite, got {value!r}")
    if low is not None and (v <= low if open_low else v < low):
        raise ValueError(f"{op}: `{name}` must be {'>' if open_low else '>='} {low}, got {value!r}")
    return v
