"""A module's constructor call as JSON, taken when it is built (private).

``nnjax.save`` writes the call that built a model so that ``nnjax.load`` can build it
again. The call is encoded when the module is built (``nnjax.nn._base.recorded``) and
kept on the module as a string attribute (:data:`ATTRIBUTE`), which Flax NNX treats as
static: it travels in the graphdef, so a model rebuilt by ``nnx.merge``, ``nnx.clone``
or ``copy.deepcopy`` (or made abstract by ``nnx.eval_shape``) still has it, and two
modules built by the same call have equal graphdefs (``jit`` reuses its programs). An
argument with no JSON form (a lambda) keeps, instead of the call, the reason it cannot
be saved (:data:`UNSAVEABLE` and the message), raised by ``nnjax.save``; so does a
call that passes one layer with state in two places (``Sequential(d, relu, d)``), which
the call would rebuild as two layers.

JSON forms: ``None``, bools, numbers and strings as themselves; lists and tuples as
lists; ``{"$dict": ...}`` for a dict of str keys; ``{"$rngs": [stream names]}``;
``{"$rng_stream": tag}``; ``{"$module": call}`` for a module argument (its own call);
``{"$dtype": name}``; ``{"$function": "module.name"}`` for a function of
:data:`FUNCTION_MODULES`.

Example:
  >>> snapshot("Scale", lambda self, factor: None, (2.0,), {})
  '{"class": "Scale", "args": [], "kwargs": {"factor": 2.0}}'
  >>> snapshot("Scale", lambda self, fn: None, (lambda x: x,), {})[:49]
  '!nnjax.save: Scale argument fn=<lambda> cannot be'
"""

from __future__ import annotations

import inspect
import json
import types
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nnjax import activations, initializers

ATTRIBUTE = "_nnjax_call"
"""The attribute that holds the JSON call (or ``UNSAVEABLE`` and why) on a built module."""

UNSAVEABLE = "!"
"""The first character of an attribute value that says why the call cannot be saved."""

RECORDED: dict[str, type] = {}
"""name -> class: the only classes ``nnjax.load`` builds (filled by ``_base.recorded``)."""

FUNCTION_MODULES: dict[str, types.ModuleType] = {
    "nnjax.activations": activations,
    "nnjax.initializers": initializers,
    "jax.nn": jax.nn,
    "jax.numpy": jnp,
}
"""Modules whose functions may be named in a config (looked up with getattr, never imported)."""


def snapshot(name: str, init: Callable[..., Any], args: tuple, kwargs: dict) -> str:
    """The JSON of the call ``name(*args, **kwargs)`` to ``init``, or ``"!"`` and why not."""
    try:
        return json.dumps(encode_call(name, init, args, kwargs))
    except TypeError as err:
        return UNSAVEABLE + str(err)


def encode_call(name: str, init: Callable[..., Any], args: tuple, kwargs: dict) -> dict:
    """``{"class", "args", "kwargs"}``, every argument that has a name passed by name.

    Raises:
      TypeError: an argument has no JSON form (names it), or one layer with state is
        passed in two places (:func:`_check_shared`).
    """
    args, kwargs = _by_name(init, args, kwargs)
    seen: dict[int, str] = {}  # id of each module among the arguments -> where it is
    return {
        "class": name,
        "args": [_encode_value(a, f"{name} argument {i}", seen) for i, a in enumerate(args)],
        "kwargs": {k: _encode_value(v, f"{name} argument {k}", seen) for k, v in kwargs.items()},
    }


def class_name(cls: type) -> str:
    """The name a recorded class is saved under: ``"MLP"``, or ``"module.Class"`` outside nnjax."""
    inside = cls.__module__.startswith("nnjax.")
    return cls.__qualname__ if inside else f"{cls.__module__}.{cls.__qualname__}"


def module_call(module: Any, where: str | None = None) -> dict:
    """The JSON form ``{"class", "args", "kwargs"}`` of ``module``'s constructor call.

    Raises:
      TypeError: ``module`` is not a recorded ``nnjax.nn`` module (a class of your own,
        or a subclass that is not recorded itself), an argument has no JSON form (a
        lambda), or one layer with state was passed in two places; the message names
        the module or the argument.
    """
    where = where or type(module).__name__
    text = recorded_json(module)
    if text is None or RECORDED.get(class_name(type(module))) is not type(module):
        raise TypeError(
            f"nnjax.save: {where} ({type(module).__name__}) has no recorded constructor "
            "arguments (only nnjax.nn layers and models do); use nnjax.save_state / "
            "nnjax.load_state for other modules"
        )
    if text.startswith(UNSAVEABLE):
        raise TypeError(text[len(UNSAVEABLE) :])
    return json.loads(text)


def recorded_json(module: Any) -> str | None:
    """The string :func:`snapshot` left on ``module``, or ``None``."""
    value = vars(module).get(ATTRIBUTE) if hasattr(module, "__dict__") else None
    return value if isinstance(value, str) else None


def function_name(fn: Any) -> str | None:
    """``"module.name"`` of ``fn`` in :data:`FUNCTION_MODULES`, or ``None``."""
    for module_name, module in FUNCTION_MODULES.items():
        name = getattr(fn, "__name__", None)
        if isinstance(name, str) and getattr(module, name, None) is fn:
            return f"{module_name}.{name}"
    return None


def setting(value: Any) -> Any:
    """The JSON form of a plain setting, or :data:`NOT_A_SETTING`.

    Plain settings are numbers, strings, dtypes, named functions, and lists, tuples and
    str-keyed dicts of them.

    Modules, variables, arrays, RNG streams and other objects are not settings: they are
    state or structure, which ``nnjax.save`` records otherwise.

    Example:
      >>> setting(0.5), setting((1, 2)), setting(jnp.float32)
      (0.5, [1, 2], {'$dtype': 'float32'})
      >>> setting(nnx.Rngs(0)) is NOT_A_SETTING
      True
    """
    if isinstance(value, (nnx.Module, nnx.Variable, nnx.Rngs, nnx.RngStream)):
        return NOT_A_SETTING
    if isinstance(value, (list, tuple)) or isinstance(value, dict):
        parts = list(value.values()) if isinstance(value, dict) else list(value)
        if any(setting(v) is NOT_A_SETTING for v in parts):
            return NOT_A_SETTING
    try:
        return _encode_value(value, "setting", {})
    except TypeError:
        return NOT_A_SETTING


NOT_A_SETTING: Any = object()
"""What :func:`setting` returns for a value that is not a plain setting."""


def _stream_names(rngs: nnx.Rngs) -> list[str]:
    return sorted(k for k, v in vars(rngs).items() if isinstance(v, nnx.RngStream))


def _shown(value: Any) -> str:
    """A stable name for ``value`` in a message (no address, so graphdefs stay equal)."""
    if callable(value):
        return getattr(value, "__qualname__", type(value).__name__)
    return f"a {type(value).__name__}"


def _encode_value(value: Any, where: str, seen: dict[int, str]) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_encode_value(v, f"{where}[{i}]", seen) for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = value.items()
        return {"$dict": {k: _encode_value(v, f"{where}[{k!r}]", seen) for k, v in items}}
    if isinstance(value, nnx.Rngs):
        return {"$rngs": _stream_names(value)}
    if isinstance(value, nnx.RngStream):
        return {"$rng_stream": value.tag}
    if isinstance(value, nnx.Module):
        _check_shared(value, where, seen)
        return {"$module": module_call(value, where)}
    if isinstance(value, np.dtype) or (isinstance(value, type) and hasattr(value, "dtype")):
        return {"$dtype": np.dtype(value).name}
    if callable(value) and (name := function_name(value)) is not None:
        return {"$function": name}
    raise TypeError(
        f"nnjax.save: {where}={_shown(value)} cannot be written as JSON; give it by name "
        "(activations, initializers) or save the weights alone with nnjax.save_state"
    )


def _check_shared(module: nnx.Module, where: str, seen: dict[int, str]) -> None:
    """Raises if ``module`` (or a layer in it) with state was already among the arguments.

    A call records each module argument as its own constructor call, so a rebuilt model
    would hold one copy per place where a shared layer was passed, not one layer: its
    state (and its training) would differ. A layer without state (a pooling layer)
    behaves the same as copies, so it may be passed twice.

    Raises:
      TypeError: naming both places and saying to save the weights alone.
    """
    for path, sub in nnx.iter_modules(module):
        here = "/".join([where, *map(str, path)])
        first = seen.setdefault(id(sub), here)
        if first != here and jax.tree.leaves(nnx.state(sub)):
            raise TypeError(
                f"nnjax.save: {here} is the {type(sub).__name__} already passed as {first}: "
                "a model that reuses one layer instance in several places cannot be rebuilt "
                "from its constructor call (each place would get its own copy); save the "
                "weights with nnjax.save_state and read them into a model you build with "
                "nnjax.load_state"
            )


def _by_name(init: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """The call with every argument that has a name passed by name (readable JSON)."""
    try:
        bound = inspect.signature(init).bind(None, *args, **kwargs)
    except (TypeError, ValueError):
        return args, kwargs
    positional, named = [], {}
    for name, value in list(bound.arguments.items())[1:]:  # not `self`
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            positional.extend(value)
        elif kind is inspect.Parameter.POSITIONAL_ONLY:
            positional.append(value)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            named.update(value)
        else:
            named[name] = value
    return tuple(positional), named


__all__ = [
    "ATTRIBUTE",
    "FUNCTION_MODULES",
    "RECORDED",
    "UNSAVEABLE",
    "class_name",
    "encode_call",
    "function_name",
    "module_call",
    "recorded_json",
    "snapshot",
]
