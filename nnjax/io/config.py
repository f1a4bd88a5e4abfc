"""Constructor calls of ``nnjax.nn`` modules as JSON, and the models rebuilt from them.

Every ``nnjax.nn`` layer and model records its constructor arguments when built (see
``nnjax.nn._base.recorded``); :func:`encode` writes that call as JSON and
:func:`build` calls the constructor again. Only recorded classes are built, and
functions are looked up by name in a fixed set of modules: nothing is imported or
evaluated from the file.

Example:
  >>> from flax import nnx
  >>> from nnjax import nn
  >>> config = encode(nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0)))
  >>> config["class"], config["kwargs"]["hidden"]
  ('MLP', [8])
  >>> type(build(config)).__name__
  'MLP'
"""

from __future__ import annotations

import inspect
import types
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nnjax import activations, initializers
from nnjax.io.errors import CheckpointError
from nnjax.nn import _base

# Modules whose functions may be named in a config (looked up with getattr, never imported).
_FUNCTION_MODULES: dict[str, types.ModuleType] = {
    "nnjax.activations": activations,
    "nnjax.initializers": initializers,
    "jax.nn": jax.nn,
    "jax.numpy": jnp,
}


def _function_name(fn: Any) -> str | None:
    for module_name, module in _FUNCTION_MODULES.items():
        name = getattr(fn, "__name__", None)
        if isinstance(name, str) and getattr(module, name, None) is fn:
            return f"{module_name}.{name}"
    return None


def _stream_names(rngs: nnx.Rngs) -> list[str]:
    return sorted(k for k, v in vars(rngs).items() if isinstance(v, nnx.RngStream))


def _encode_value(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_encode_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"$dict": {k: _encode_value(v, f"{where}[{k!r}]") for k, v in value.items()}}
    if isinstance(value, nnx.Rngs):
        return {"$rngs": _stream_names(value)}
    if isinstance(value, nnx.RngStream):
        return {"$rng_stream": value.tag}
    if isinstance(value, nnx.Module):
        return {"$module": encode(value, where=where)}
    if isinstance(value, np.dtype) or (isinstance(value, type) and hasattr(value, "dtype")):
        return {"$dtype": np.dtype(value).name}
    if callable(value) and (name := _function_name(value)) is not None:
        return {"$function": name}
    raise TypeError(
        f"nnjax.save: {where}={value!r} cannot be written as JSON; give it by name "
        "(activations, initializers) or save the weights alone with nnjax.save_state"
    )


def _by_name(cls: type[Any], args: tuple, kwargs: dict) -> tuple[type, tuple, dict]:
    """The call with every argument that has a name passed by name (readable JSON)."""
    try:
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    except (TypeError, ValueError):
        return cls, args, kwargs
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
    return cls, tuple(positional), named


def encode(module: nnx.Module, *, where: str | None = None) -> dict[str, Any]:
    """The JSON form ``{"class", "args", "kwargs"}`` of ``module``'s constructor call.

    Raises:
      TypeError: ``module`` is not a recorded ``nnjax.nn`` module (built by
        ``nnx.merge``/``nnx.clone``, or a class of your own), or an argument has no
        JSON form (a lambda); the message names the argument.
    """
    call = _base.constructor_call(module)
    where = where or type(module).__name__
    if call is None or _base.RECORDED.get(_base.class_name(call[0])) is not call[0]:
        raise TypeError(
            f"nnjax.save: {where} ({type(module).__name__}) has no recorded constructor "
            "arguments (only nnjax.nn layers and models built by their constructor do); "
            "use nnjax.save_state / nnjax.load_state for other modules"
        )
    cls, args, kwargs = _by_name(*call)
    name = _base.class_name(cls)
    return {
        "class": name,
        "args": [_encode_value(a, f"{name} argument {i}") for i, a in enumerate(args)],
        "kwargs": {k: _encode_value(v, f"{name} argument {k}") for k, v in kwargs.items()},
    }


def _decode_value(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode_value(v) for v in value)
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise CheckpointError(f"model config: unknown entry {sorted(value)}")
    ((tag, body),) = value.items()
    if tag == "$dict":
        return {k: _decode_value(v) for k, v in body.items()}
    if tag == "$rngs":
        return nnx.Rngs(**{name: 0 for name in body})
    if tag == "$rng_stream":
        return getattr(nnx.Rngs(**{body: 0}), body)
    if tag == "$module":
        return build(body)
    if tag == "$dtype":
        return jnp.dtype(body)
    if tag == "$function":
        module_name, _, name = str(body).rpartition(".")
        module = _FUNCTION_MODULES.get(module_name)
        if module is None or not name.isidentifier() or not callable(getattr(module, name, None)):
            raise CheckpointError(f"model config: unknown function {body!r}")
        return getattr(module, name)
    raise CheckpointError(f"model config: unknown entry {tag!r}")


def build(config: dict[str, Any]) -> nnx.Module:
    """Calls the recorded class of ``config`` (from :func:`encode`) with its arguments.

    Raises:
      CheckpointError: the class is not an ``nnjax.nn`` class (never imported by name)
        or the config is malformed.
    """
    import nnjax.nn  # noqa: F401  (registers every built-in class)

    try:
        name, args, kwargs = config["class"], config["args"], config["kwargs"]
    except (KeyError, TypeError):
        raise CheckpointError("model config: needs 'class', 'args' and 'kwargs'") from None
    cls = _base.RECORDED.get(name)
    if cls is None:
        raise CheckpointError(
            f"model config: unknown class {name!r} (known: {', '.join(sorted(_base.RECORDED))})"
        )
    args = tuple(_decode_value(a) for a in args)
    kwargs = {k: _decode_value(v) for k, v in kwargs.items()}
    return cls(*args, **kwargs)


# The train/eval switches of nnjax and Flax layers (what model.train()/.eval() set):
# attributes, not constructor arguments, so they are recorded apart.
MODE_FLAGS = ("deterministic", "use_running_average")


def modes(model: nnx.Module) -> dict[str, dict[str, bool]]:
    """``{"dropouts/0": {"deterministic": True}, ...}``: each layer's train/eval flags."""
    out = {}
    for path, module in nnx.iter_modules(model):
        flags = {k: v for k in MODE_FLAGS if isinstance(v := getattr(module, k, None), bool)}
        if flags:
            out["/".join(map(str, path))] = flags
    return out


def apply_modes(model: nnx.Module, recorded: dict[str, dict[str, bool]]) -> None:
    """Sets the flags of :func:`modes` on the layers of a rebuilt ``model``."""
    for path, module in nnx.iter_modules(model):
        for key, value in recorded.get("/".join(map(str, path)), {}).items():
            if key in MODE_FLAGS and isinstance(value, bool) and hasattr(module, key):
                setattr(module, key, value)


__all__ = ["apply_modes", "build", "encode", "modes"]
