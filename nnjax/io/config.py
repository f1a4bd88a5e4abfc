"""Constructor calls of ``nnjax.nn`` modules as JSON, and the models rebuilt from them.

Every ``nnjax.nn`` layer and model records its constructor call as JSON when built (see
``nnjax.nn._base.recorded`` and ``nnjax/nn/_config.py``); :func:`encode` returns it and
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

import functools
import json
from typing import Any

import jax.numpy as jnp
from flax import nnx

from nnjax.io.errors import CheckpointError
from nnjax.nn import _base, _config

_FUNCTION_MODULES = _config.FUNCTION_MODULES


def encode(module: nnx.Module, *, where: str | None = None) -> dict[str, Any]:
    """The JSON form ``{"class", "args", "kwargs"}`` of ``module``'s constructor call.

    Taken when the module was built (``nnjax/nn/_config.py``), so a model rebuilt by
    ``nnx.merge``, ``nnx.clone`` or ``copy.deepcopy`` has it too.

    The call is checked to rebuild a model whose state has ``module``'s paths and shapes
    (once per call and process: the model is built abstractly, ``nnx.eval_shape``).

    Raises:
      TypeError: ``module`` is not a recorded ``nnjax.nn`` module (a class of your own),
        an argument has no JSON form (a lambda; the message names it), or the call does
        not rebuild ``module``'s state (a model changed after it was built: an
        ``nnx.vmap`` ensemble, a replaced layer; the message names the first path).
    """
    config = _config.module_call(module, where)
    built = _built_shapes(json.dumps(config))
    mismatch = None if built is None else _first_mismatch(state_shapes(module), built)
    if mismatch is not None:
        raise TypeError(
            f"nnjax.save: {where or type(module).__name__}'s state does not match the model "
            f"its recorded constructor call builds ({mismatch}): it was changed after it was "
            "built (an nnx.vmap ensemble, a replaced layer); save it with nnjax.save_state "
            "and read it into a model you build with nnjax.load_state"
        )
    return config


def state_shapes(module: nnx.Module) -> dict[str, tuple[int, ...]]:
    """``{"layers/0/kernel": (4, 8), ...}``: the shape of every leaf of ``nnx.state``."""
    return {
        "/".join(map(str, path)): tuple(getattr(variable.get_value(), "shape", ()))
        for path, variable in nnx.to_flat_state(nnx.state(module))
    }


@functools.lru_cache(maxsize=64)
def _built_shapes(text: str) -> dict[str, tuple[int, ...]] | None:
    """:func:`state_shapes` of the model that the JSON call ``text`` builds (abstractly).

    ``None`` (no check) where the constructor cannot run abstractly (a class of your own
    that reads array values while it builds): it then runs for real at ``nnjax.load``.
    """
    try:
        return state_shapes(nnx.eval_shape(lambda: build(json.loads(text))))
    except Exception:  # any failure of a constructor run abstractly: skip the check
        return None


def _first_mismatch(have: dict[str, tuple], built: dict[str, tuple]) -> str | None:
    for path in sorted(have.keys() | built.keys()):
        if path not in built:
            return f"{path} is not in the rebuilt model"
        if path not in have:
            return f"{path} of the rebuilt model is not in this one"
        if have[path] != built[path]:
            return f"{path}: {have[path]} here, {built[path]} rebuilt"
    return None


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


__all__ = ["apply_modes", "build", "encode", "modes", "state_shapes"]
