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
from typing import Any, NamedTuple

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
    built = _built(json.dumps(config))
    mismatch = None if built is None else _first_mismatch(state_shapes(module), built.shapes)
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


def settings(module: nnx.Module) -> dict[str, dict[str, Any]]:
    """``{"dropouts/0": {"rate": 0.1, ...}, ...}``: each layer's plain settings, as JSON.

    A setting is a public attribute that is not state or structure (``nnx.Variable``,
    module, RNG stream): numbers, strings, dtypes, named functions and containers of
    them (``nnjax.nn._config.setting``). The train/eval flags are :func:`modes`.
    """
    out: dict[str, dict[str, Any]] = {}
    for path, sub in nnx.iter_modules(module):
        found = {
            name: encoded
            for name, value in vars(sub).items()
            if not name.startswith("_") and name not in MODE_FLAGS
            if (encoded := _config.setting(value)) is not _config.NOT_A_SETTING
        }
        if found:
            out["/".join(map(str, path))] = found
    return out


def changed_settings(module: nnx.Module, config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The :func:`settings` of ``module`` that differ from those its call ``config`` builds.

    A setting changed after the model was built (``model.dropouts[0].rate = 0.0``), which
    the constructor call alone would revert; :func:`apply_settings` sets it again.
    Empty where the call cannot be built abstractly (nothing to compare with).
    """
    built = _built(json.dumps(config))
    if built is None:
        return {}
    changed: dict[str, dict[str, Any]] = {}
    for path, found in settings(module).items():
        before = built.settings.get(path, {})
        diff = {k: v for k, v in found.items() if k in before and before[k] != v}
        if diff:
            changed[path] = diff
    return changed


def describe(module: nnx.Module) -> dict[str, Any]:
    """``{"model", "modes", "settings"}``: what ``nnjax.json`` records of a model.

    Raises:
      TypeError: as :func:`encode`.
    """
    recorded = encode(module)
    return {
        "model": recorded,
        "modes": modes(module),
        "settings": changed_settings(module, recorded),
    }


def rebuild(meta: dict[str, Any]) -> nnx.Module:
    """The model :func:`describe` recorded in ``meta``: built, its modes and settings set.

    Raises:
      CheckpointError: as :func:`build`.
    """
    model = build(meta["model"])
    apply_modes(model, meta.get("modes", {}))
    apply_settings(model, meta.get("settings", {}))
    return model


class _Built(NamedTuple):
    shapes: dict[str, tuple[int, ...]]
    settings: dict[str, dict[str, Any]]


@functools.lru_cache(maxsize=64)
def _built(text: str) -> _Built | None:
    """:func:`state_shapes` and :func:`settings` of the model the JSON call ``text`` builds.

    Built abstractly (``nnx.eval_shape``). ``None`` (no check) where the constructor
    cannot run abstractly (a class of your own that reads array values while it builds):
    it then runs for real at ``nnjax.load``.
    """
    try:
        model = nnx.eval_shape(lambda: build(json.loads(text)))
    except Exception:  # any failure of a constructor run abstractly: skip the check
        return None
    return _Built(state_shapes(model), settings(model))


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


def apply_settings(model: nnx.Module, recorded: dict[str, dict[str, Any]]) -> None:
    """Sets the settings of :func:`changed_settings` on the layers of a rebuilt ``model``.

    Only attributes the rebuilt layer has as settings are set (a file never adds an
    attribute or replaces a layer).

    Raises:
      CheckpointError: a recorded value is malformed.
    """
    for path, module in nnx.iter_modules(model):
        for name, value in recorded.get("/".join(map(str, path)), {}).items():
            current = vars(module).get(name, _config.NOT_A_SETTING)
            if name.startswith("_") or _config.setting(current) is _config.NOT_A_SETTING:
                continue
            decoded = _decode_value(value)
            setattr(module, name, list(decoded) if isinstance(current, list) else decoded)


__all__ = [
    "apply_modes",
    "apply_settings",
    "build",
    "changed_settings",
    "describe",
    "encode",
    "modes",
    "rebuild",
    "settings",
    "state_shapes",
]
