"""How nnjax hands inputs ``x`` to a model: ``fit``, ``evaluate``, ``predict``, ``export``.

One array is passed as is; a tuple (or list) as positional inputs; a dict as keyword
inputs, its keys the model's argument names (``WideAndDeep``: ``{"x_wide": ...,
"x_deep": ...}``). Any pytree fits in a tuple: a model whose ``__call__(self, batch)``
reads ``batch["image"]`` gets the dict whole as ``({"image": ...},)``, its one
positional input (``fit(model, (({"image": images},), labels))``).

``fit``, ``evaluate`` and ``predict`` refuse integer inputs (raw images to scale
first) unless the model declares them: a model class whose ``__call__`` takes token
ids or lengths lists those arguments in ``integer_inputs`` (``Embedding``:
``("ids",)``; the sequence models: ``("lengths",)``), and they may then be integers
in ``x``, passed by position or by keyword.

Example:
  >>> import jax.numpy as jnp
  >>> from flax import nnx
  >>> class Sum(nnx.Module):
  ...     def __call__(self, features):  # one input, a dict
  ...         return features["a"] + features["b"]
  >>> call_model(Sum(), ({"a": jnp.ones(2), "b": jnp.ones(2)},))
  Array([2., 2.], dtype=float32)
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["binding_error", "call_model", "integer_input_paths"]

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def call_model(model: Any, x: Any) -> Any:
    """Calls ``model`` on the inputs ``x`` (see the module docstring for the rule).

    Args:
      model: a callable model (an ``nnx.Module``).
      x: one array ``(B, ...)``, a tuple of positional inputs (each any pytree of
        arrays), or a dict of keyword inputs.

    Returns:
      Whatever the model returns (usually ``(B, ...)`` outputs).

    Raises:
      ValueError: a dict with keys that the model's ``__call__`` does not take (names
        the keys and the inputs, and how to pass a dict as one input).

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> call_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), jnp.ones((3, 2))).shape
      (3, 1)
    """
    if isinstance(x, dict):
        return _call_with_dict(model, x)
    if isinstance(x, tuple | list):
        return model(*x)
    return model(x)


def binding_error(model: Any, x: Any) -> str | None:
    """Why :func:`call_model` cannot pass ``x`` to ``model``'s ``__call__``, or ``None``.

    ``None`` too for a dict (:func:`call_model` names its keys itself) and where the
    signature cannot be read.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> class NeedsTrain(nnx.Module):
      ...     def __call__(self, x, *, train): return x
      >>> binding_error(NeedsTrain(), jnp.ones((2, 3)))
      "missing a required argument: 'train'"
    """
    if isinstance(x, dict):
        return None
    try:
        signature = inspect.signature(model)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*(tuple(x) if isinstance(x, tuple | list) else (x,)))
    except TypeError as err:
        return str(err)
    return None


def integer_input_paths(model: Any) -> frozenset[str]:
    """Where in ``x`` the integer inputs that ``model`` declares can be.

    Reads the model's ``integer_inputs`` (names of its ``__call__`` arguments that take
    integers, e.g. ``("lengths",)``) and returns the key paths (as
    :func:`jax.tree_util.keystr` writes them) by which ``x`` can pass them: a dict key
    (``"['lengths']"``), a position in a tuple (``"[1]"``), or ``""`` when the first
    argument is declared and ``x`` is one array.

    Raises:
      TypeError: ``integer_inputs`` is not a tuple of argument names of the model's
        ``__call__`` (names the model and what it holds).

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import SequenceRegressor
      >>> sorted(integer_input_paths(SequenceRegressor(1, 4, rngs=nnx.Rngs(0))))
      ["['lengths']", '[1]']
    """
    names = getattr(model, "integer_inputs", ())
    if isinstance(names, tuple | list | frozenset | set) and not names:
        return frozenset()  # (also for what is not a model: fit names that itself)
    params = inspect.signature(model.__call__).parameters
    named = [n for n, p in params.items() if p.kind in _NAMED]
    if not isinstance(names, tuple | list | frozenset | set) or not set(names) <= set(named):
        raise TypeError(
            f"{type(model).__name__}.integer_inputs must be a tuple of names of its "
            f"__call__ arguments {named}; got {names!r}"
        )
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [n for n, p in params.items() if p.kind in kinds]
    paths = {f"[{n!r}]" for n in names} | {f"[{i}]" for i, n in enumerate(positional) if n in names}
    return frozenset(paths | ({""} if positional[:1] and positional[0] in names else set()))


def _call_with_dict(model: Any, x: dict) -> Any:
    params = inspect.signature(model.__call__).parameters
    names = [n for n, p in params.items() if p.kind in _NAMED]
    if any(p.kind is p.VAR_KEYWORD for p in params.values()) or set(x) <= set(names):
        return model(**x)
    raise ValueError(
        f"input keys {sorted(set(x) - set(names))} do not match the model's inputs {names} "
        f"({type(model).__name__}.__call__); got keys {sorted(x)}. A dict `x` is passed "
        "as keyword inputs; to pass it whole as the model's one input, put it in a "
        "tuple: `(x,)` (data `((x,), y)`)"
    )
