"""Name lookup for the ``get`` functions of the base modules (private).

Shared by ``activations.get``, ``initializers.get``, ``losses.get`` and ``metrics.get``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def lookup(kind: str, registry: Mapping[str, T], name: object) -> T:
    """``registry[name.lower()]``, or a ``ValueError`` listing the known names.

    Args:
      kind: what is looked up, for the message (``"activation"``, ``"loss"``...).
      registry: lower-case names to values.
      name: the requested name; anything but a string is a ``TypeError``.
    """
    if not isinstance(name, str):
        raise TypeError(
            f"{kind} must be a name or a callable, got {name!r} ({type(name).__name__})"
        )
    try:
        return registry[name.lower()]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise ValueError(f"unknown {kind} {name!r}; known: {known}") from None


def get_named(owner: str, name: str, get: Callable[[Any], T], value: Any) -> T:
    """``get(value)``, its ``ValueError`` or ``TypeError`` prefixed with ``owner`` and ``name``.

    So a layer or function names its argument: ``Dense: `kernel_init`: unknown
    initializer 'foo'; known: ...``.
    """
    try:
        return get(value)
    except (ValueError, TypeError) as err:
        raise type(err)(f"{owner}: `{name}`: {err}") from None
