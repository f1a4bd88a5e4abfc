"""Renamed keyword arguments: the old name works for one release, with a warning (private).

Used by the functional ops (the :func:`renamed_args` decorator) and by the NNX modules
(``_renamed_args`` on a class, applied by :func:`nnjax.nn._base.recorded`).
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: The release that drops the old names.
REMOVED_IN = "nnjax 0.3"


def rename_kwargs(owner: str, renamed: Mapping[str, str], kwargs: dict) -> dict:
    """Maps old keyword names to new ones (``renamed``: old -> new), warning for each.

    Raises:
      TypeError: both the old and the new name were passed.

    Example:
      >>> import warnings
      >>> with warnings.catch_warnings(record=True):
      ...     rename_kwargs("op", {"window_shape": "window"}, {"window_shape": 2})
      {'window': 2}
    """
    for old, new in renamed.items():
        if old not in kwargs:
            continue
        if new in kwargs:
            raise TypeError(
                f"{owner}: got both `{old}` (deprecated) and `{new}`; pass `{new}` only"
            )
        warnings.warn(
            f"{owner}: `{old}` is deprecated and will be removed in {REMOVED_IN}; use `{new}`",
            DeprecationWarning,
            stacklevel=user_stacklevel(),
        )
        kwargs = {(new if k == old else k): v for k, v in kwargs.items()}
    return kwargs


def user_stacklevel() -> int:
    """The ``stacklevel`` (for the caller of this) of the first frame outside nnjax and Flax."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        ("nnjax.", "flax.")
    ):
        frame, level = frame.f_back, level + 1
    return level


def renamed_args(**renamed: str) -> Callable[[F], F]:
    """Decorator: ``old=new`` keyword names that the function still accepts, with a warning.

    Example:
      >>> @renamed_args(window_shape="window")
      ... def pool(x, window=2):
      ...     return window
      >>> import warnings
      >>> with warnings.catch_warnings(record=True) as caught:
      ...     warnings.simplefilter("always")
      ...     pool(1, window_shape=3)
      3
      >>> str(caught[0].message)
      'pool: `window_shape` is deprecated and will be removed in nnjax 0.3; use `window`'
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if kwargs:
                kwargs = rename_kwargs(fn.__name__, renamed, kwargs)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
