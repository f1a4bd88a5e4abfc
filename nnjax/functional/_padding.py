"""The ``padding`` argument of the convolutions and the pools, parsed (private).

``"SAME"`` or ``"VALID"`` (any case); an int ``p`` (``(p, p)`` on every spatial axis,
PyTorch's ``padding=p``); one int per spatial axis (PyTorch's ``padding=(ph, pw)``); or
one ``(lo, hi)`` pair per spatial axis (Flax's; an axis may also be one int). Lists, as a
saved layer's JSON gives them back, are taken as tuples. One spatial axis takes one pair,
``((lo, hi),)``: a flat ``(lo, hi)`` is two sizes, refused with a message that shows the
nested form (:func:`message`).

Example:
  >>> pairs(2, (1, 2)), pairs(1, 3), pairs(2, ((0, 1), 2))
  (((1, 1), (2, 2)), ((3, 3),), ((0, 1), (2, 2)))
  >>> pairs(1, (1, 2)) is None
  True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnjax import _checks
from nnjax.functional import _utils

Padding = str | int | Sequence[int | tuple[int, int]]
"""A mode, an int, one int per spatial axis, or one ``(lo, hi)`` pair per spatial axis."""

_FORMS = {1: "((lo, hi),)", 2: "((top, bottom), (left, right))", 3: "three (lo, hi) pairs"}


def mode(padding: Any) -> str | None:
    """``"SAME"`` or ``"VALID"`` for those strings in any case, else ``None``."""
    if isinstance(padding, str) and padding.upper() in ("SAME", "VALID"):
        return padding.upper()
    return None


def pairs(nd: int, padding: Any) -> tuple[tuple[int, int], ...] | None:
    """``nd`` ``(lo, hi)`` pairs of non-negative ints from ``padding``, else ``None``.

    NumPy arrays count as the nested lists they hold.
    """
    padding = _as_lists(padding)
    if _checks.is_int(padding):
        return ((int(padding), int(padding)),) * nd if padding >= 0 else None
    if isinstance(padding, str) or not isinstance(padding, Sequence) or len(padding) != nd:
        return None
    out = []
    for entry in padding:
        entry = _as_lists(entry)
        if _checks.is_int(entry):
            entry = (entry, entry)
        if isinstance(entry, str) or not isinstance(entry, Sequence) or len(entry) != 2:
            return None
        if not all(_checks.is_int(v) and v >= 0 for v in entry):
            return None
        out.append((int(entry[0]), int(entry[1])))
    return tuple(out)


def parse(op: str, nd: int, padding: Any) -> str | tuple[tuple[int, int], ...]:
    """``"SAME"``, ``"VALID"`` or ``nd`` ``(lo, hi)`` pairs from ``padding``.

    Raises:
      ValueError: naming ``op``, ``padding`` and the forms it may take (:func:`message`).

    Example:
      >>> parse("conv2d", 2, "same"), parse("max_pool2d", 2, [1, [0, 2]])
      ('SAME', ((1, 1), (0, 2)))
    """
    named = mode(padding)
    if named is not None:
        return named
    pads = pairs(nd, padding)
    if pads is None:
        raise ValueError(message(op, nd, padding))
    return pads


def message(op: str, nd: int, padding: Any) -> str:
    """The error for a ``padding`` that :func:`mode` and :func:`pairs` both refuse.

    Example:
      >>> print(message("conv1d", 1, (1, 2)).split("; ")[-1])
      for 1 before and 2 after the sequence, pass ((1, 2),)
    """
    expected = (
        f"'SAME', 'VALID', a non-negative int, {_utils.tuple_phrase(nd)} of them or "
        f"{_FORMS[nd]} of non-negative ints"
    )
    hint = ""
    flat = _as_lists(padding)
    if nd == 1 and isinstance(flat, Sequence) and not isinstance(flat, str) and len(flat) == 2:
        if all(_checks.is_int(v) and v >= 0 for v in flat):  # a flat (lo, hi) for one axis
            lo, hi = (int(v) for v in flat)
            hint = f"; for {lo} before and {hi} after the sequence, pass (({lo}, {hi}),)"
    return _checks.static_arg_message(op, "padding", padding, expected) + hint


def _as_lists(value: Any) -> Any:
    """A NumPy array as the (nested) list it holds; anything else as it is."""
    return value.tolist() if isinstance(value, np.ndarray) else value
