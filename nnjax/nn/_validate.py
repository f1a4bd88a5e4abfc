"""Argument checks shared by the modules and by the code that takes them (private).

Each check raises ``ValueError`` (or ``TypeError``) whose message names the module (or
function), the argument and what was wrong, e.g. ``"Dense: `out_features` must be a
positive int, got -3"``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from flax import nnx

from nnjax import _checks, activations, initializers
from nnjax._registry import get_named
from nnjax.functional import _utils
from nnjax.functional.dropout import check_rate


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
    """Returns ``value`` as a float if it is a probability in ``[0, 1]``, else raises.

    The check of :func:`nnjax.functional.dropout` (``1`` drops everything, as in Flax
    and PyTorch), on a concrete value: a layer keeps its rate as a Python float.

    Raises:
      TypeError: ``value`` is not a real number (a bool, a string, ``None``) or is
        traced; ValueError: it lies outside ``[0, 1]`` or is NaN.
    """
    if _checks.is_traced(value):
        raise TypeError(_checks.static_arg_message(owner, name, value, "a float in [0, 1]"))
    checked = check_rate(owner, name, value)
    assert checked is not None  # concrete
    return checked


def epsilon(owner: str, value: Any) -> Any:
    """Returns ``epsilon`` after checking a concrete one is ``> 0``, else raises ``ValueError``."""
    _utils.check_epsilon(owner, value)
    return value


def activation(owner: str, name: str, value: Any) -> activations.Activation:
    """Resolves an activation name or callable, naming ``owner`` and ``name`` on failure."""
    return get_named(owner, name, activations.get, value)


def initializer(owner: str, name: str, value: Any, *, allow_none: bool = False) -> Any:
    """Returns ``value`` after checking it is an initializer name or a callable, else raises.

    Layers check their ``kernel_init``, ``bias_init``... in the constructor, before any
    parameter is drawn, so the error names the layer and the argument rather than the
    functional init it is handed to. The value itself is returned (as recorded for
    ``nnjax.save``), not the resolved initializer; ``allow_none`` accepts ``None`` (a
    layer's own default, e.g. ``Embedding``'s ``embedding_init``).

    Raises:
      ValueError: an unknown initializer name (the message lists the known ones).
      TypeError: ``value`` is neither a name nor a callable.

    Example:
      >>> try:
      ...     initializer("Dense", "kernel_init", "bogus")
      ... except ValueError as err:
      ...     print(str(err).split(";")[0])
      Dense: `kernel_init`: unknown initializer 'bogus'
    """
    if not (allow_none and value is None):
        get_named(owner, name, initializers.get, value)
    return value


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


def check_module(model: Any, *, owner: str | None = None, usage: str | None = None) -> None:
    """Raises a ``TypeError`` naming what was passed unless ``model`` is an ``nnx.Module``.

    ``fit``, ``evaluate``, ``predict`` and ``nnjax.save`` and its kin take Flax NNX
    modules; a class, a plain function, a Flax Linen or a PyTorch module each get their
    own hint, and with ``usage`` (the call's signature) a path passed as the model gets
    one too (the arguments swapped).

    Args:
      model: what the caller passed as the model.
      owner: the function's name, to start the message with; ``None``: no prefix.
      usage: the call's signature, e.g. ``"nnjax.save(model, directory)"``.

    Example:
      >>> from nnjax.nn import MLP
      >>> try:
      ...     check_module(MLP)
      ... except TypeError as err:
      ...     print(str(err)[:59])
      the model must be a Flax NNX module instance, got the class
      >>> try:
      ...     check_module("ckpt", owner="nnjax.save", usage="nnjax.save(model, directory)")
      ... except TypeError as err:
      ...     print(str(err).split("; ")[1])
      the model comes first: nnjax.save(model, directory)
    """
    if isinstance(model, nnx.Module):
        return
    kind = type(model)
    if isinstance(model, type):
        got, hint = f"the class {model.__name__}", "build one first: MLP(...), not MLP"
    elif kind.__module__.startswith("flax.linen"):
        got, hint = f"a Flax Linen {kind.__name__}", "wrap it with nnx.bridge.ToNNX(...) or use nnx"
    elif kind.__module__.startswith("torch"):
        got, hint = f"a PyTorch {kind.__name__}", "build the model with flax.nnx or nnjax.nn"
    elif usage is not None and isinstance(model, (str, os.PathLike)):
        got, hint = f"the path {os.fspath(model)!r}", f"the model comes first: {usage}"
    else:
        got, hint = f"{kind.__name__} {model!r:.60}", "build it with flax.nnx or nnjax.nn"
    subject = f"{owner}: `model` must be" if owner else "the model must be"
    raise TypeError(f"{subject} a Flax NNX module instance, got {got}; {hint}")
