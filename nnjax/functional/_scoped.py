"""Per-block defaults of the ops' choices (private): checked values and scoped settings.

Example:
  >>> import contextvars
  >>> var = contextvars.ContextVar("demo", default="auto")
  >>> with scoped(var, check_choice("demo", "fast", ("auto", "fast"))):
  ...     var.get()
  'fast'
  >>> var.get()
  'auto'
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def check_choice(op: str, formulation: str, allowed: Sequence[str]) -> str:
    """Returns ``formulation`` if it is one of ``allowed``, else raises ValueError naming it."""
    if formulation not in allowed:
        choices = tuple(allowed)
        raise ValueError(f"{op}: `formulation` must be one of {choices}, got {formulation!r}")
    return formulation


@contextlib.contextmanager
def scoped(var: contextvars.ContextVar[T], value: T) -> Iterator[None]:
    """Sets ``var`` to ``value`` within the block (restored after it, also on errors)."""
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


__all__ = ["check_choice", "scoped"]
