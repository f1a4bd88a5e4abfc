"""Constructor-argument checks shared by the modules (private).

Each check raises ``ValueError`` (or ``TypeError``) whose message names the module, the
argument and what was wrong, e.g. ``"Dense: `out_features` must be a positive int, got -3"``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnjax import _checks, activations
from nnjax.functional import _utils


def positive_int(owner: str, name: str, value: Any) -> int:
    """Returns ``value`` as an ``int`` if it is an int >= 1 (NumPy ints count), else raises."""
    return _utils.positive_int(owner, name, value)


def positive_ints(owner: str, name: str, values: Any, *, allow_empty: bool = True) -> tuple:
    """Returns ``values`` as a tuple of positive ints (an int counts as one), else raises."""
    if _utils.is_int(values):
        values = (values,)
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise ValueError(f"{owner}: `{name}` must be a sequence of positive ints, got {values!r}")
    if not allow_empty and not values:
        raise ValueError(f"{owner}: `{name}` must not be empty")
    return tuple(positive_int(owner, f"{name}[{i}]", v) for i, v in enumerate(values))


def rate(owner: str, name: str, value: Any) -> float:
    """Returns ``value`` if it is a probability in ``[0, 1)``, else raises ``ValueError``."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if not real or not 0 <= value < 1:
        raise ValueError(f"{owner}: `{name}` must be a float in [0, 1), got {value!r}")
    return float(value)


def epsilon(owner: str, value: Any) -> Any:
    """Returns ``epsilon`` after checking a concrete one is ``> 0``, else raises ``ValueError``."""
    _utils.check_epsilon(owner, value)
    return value


def activation(owner: str, name: str, value: Any) -> activations.Activation:
    """Resolves an activation name or callable, naming ``owner`` and ``name`` on failure."""
    try:
        return activations.get(value)
    except (ValueError, TypeError) as err:
        raise type(err)(f"{owner}: `{name}`: {err}") from None


def choice(owner: str, name: str, value: Any, options: Sequence[str]) -> str:
    """Returns the option that ``value`` names (case-insensitive), else raises ``ValueError``."""
    if isinstance(value, str):
        for option in options:
            if value.lower() == option.lower():
                return option
    raise ValueError(f"{owner}: `{name}` must be one of {', '.join(options)}; got {value!r}")


def float_dtype(owner: str, name: str, value: Any, *, allow_none: bool = False) -> Any:
    """Returns ``value`` after checking it names a floating dtype, else raises ``TypeError``.

    For ``param_dtype`` (parameters are trained, so integer or bool ones make no sense)
    and, with ``allow_none``, for the compute ``dtype`` (``None``: the input's). The
    value itself is returned (as recorded for ``nnjax.save``), not the resolved dtype.
    """
    _checks.float_dtype(owner, value, name=name, allow_none=allow_none)
    return value
