"""Optimizers and functions matched by structure: :func:`canonical`, :func:`canonical_function`.

Two transformations built alike (``optax.adam(1e-3)`` twice) are different objects, and
a compiled step memoised on one would recompile for the other. :func:`canonical` maps
each to the first one seen with the same fingerprint: the code, closure constants,
module globals read and small arrays of its functions. An object it cannot describe for
sure stays itself.

Compiled steps are memoised on the object, so no object is kept under two
fingerprints: one whose fingerprint changed since it was kept (a global its schedule
reads was reassigned, a list in its closure grew) is returned as it is, keeping its own
compiled step as ``jax.jit`` would, and is not kept under its new fingerprint. A fresh,
equal transformation then gets a program of its own, never the one compiled for the
old value.
Re-exported by :mod:`nnjax.train.optimizers`.

Example:
  >>> first = canonical(optax.sgd(0.1))
  >>> canonical(optax.sgd(0.1)) is first, canonical(optax.sgd(0.2)) is first
  (True, False)
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax


class _Opaque(Exception):
    pass


def _fingerprint(obj: Any, depth: int = 0, strict: bool = False) -> Any:
    """A hashable description of a function closure tree; ``_Opaque`` if unsure.

    ``strict``: a mutable list, dict or set in it is opaque (a function of your own that
    counts its calls in a closed-over dict is not the same as a fresh copy of it), and
    so are modules, classes and methods outside :data:`_LIBRARIES` (a ``CFG.scale`` of
    your own, read through its class, may change between two equal functions).
    """
    if depth > 24 or (strict and isinstance(obj, list | dict | set)):
        raise _Opaque
    deeper = functools.partial(_fingerprint, depth=depth + 1, strict=strict)
    if obj is None or isinstance(obj, bool | int | float | str | complex | bytes):
        return (type(obj).__name__, obj)
    if isinstance(obj, tuple | list):
        return (type(obj).__name__, tuple(deeper(o) for o in obj))
    if isinstance(obj, dict):
        return ("dict", tuple((k, deeper(v)) for k, v in sorted(obj.items())))
    if isinstance(obj, functools.partial):
        return ("partial", deeper((obj.func, obj.args, obj.keywords)))
    if isinstance(obj, types.FunctionType):
        cells = []
        for cell in obj.__closure__ or ():
            try:
                cells.append(deeper(cell.cell_contents))
            except ValueError:  # an empty cell
                cells.append(("empty",))
        defaults = deeper((obj.__defaults__, obj.__kwdefaults__))
        return ("fn", obj.__code__, tuple(cells), defaults, _globals_read(obj, deeper))
    if isinstance(obj, np.ndarray | jax.Array) and np.size(obj) <= 1024:
        a = np.asarray(obj)
        return ("array", a.shape, a.dtype.str, a.tobytes())
    if isinstance(obj, type | types.ModuleType | types.BuiltinFunctionType) or inspect.isroutine(
        obj
    ):
        if strict and not _from_library(obj):
            raise _Opaque
        return ("object", obj)
    raise _Opaque


_LIBRARIES = frozenset(
    {"builtins", "math", "operator", "functools", "jax", "jaxlib", "numpy", "optax", "flax"}
    | {"chex", "nnjax", "scipy"}
)
"""Packages whose modules, classes and functions hold no state a loss reads."""


def _from_library(obj: Any) -> bool:
    """Whether ``obj`` is a module, class or function of :data:`_LIBRARIES`.

    A method bound to an object (whose state may change) is not.
    """
    bound = getattr(obj, "__self__", None)
    if bound is not None and not isinstance(bound, types.ModuleType):
        return False  # a bound method: its object's state may change
    name = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", "")
    return str(name or "").split(".")[0] in _LIBRARIES


def _names(code: types.CodeType) -> frozenset[str]:
    """The names ``code`` and the functions defined in it look up (globals among them)."""
    nested = (_names(c) for c in code.co_consts if isinstance(c, types.CodeType))
    return frozenset(code.co_names).union(*nested)


def _globals_read(fn: types.FunctionType, describe: Callable[[Any], Any]) -> tuple:
    """The module globals ``fn`` may read, each described.

    So a schedule ``lambda step: base_lr`` reading a global ``base_lr`` differs from the
    same lambda after ``base_lr`` changed (a loop over learning rates in a script).
    """
    found = fn.__globals__
    return tuple((n, describe(found[n])) for n in sorted(_names(fn.__code__)) if n in found)


_CANONICAL: dict[Any, optax.GradientTransformation] = {}
_FUNCTIONS: dict[Any, Callable[..., Any]] = {}


def _first_seen(table: dict[Any, Any], obj: Any, described: Any, strict: bool = False) -> Any:
    """The object kept in ``table`` under ``_fingerprint(described)``, or ``obj`` (kept).

    An object kept already under an older fingerprint is returned as it is and not kept
    again (see the module docstring).
    """
    try:
        key = _fingerprint(described, strict=strict)
        hash(key)
    except (_Opaque, TypeError):
        return obj
    found = table.get(key)
    if found is not None:
        return found
    if any(kept is obj for kept in table.values()):  # its fingerprint changed
        return obj  # its compiled step is its own: not for a fresh one
    if len(table) >= 256:  # forget the oldest
        table.pop(next(iter(table)))
    table[key] = obj
    return obj


def canonical(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """The first transformation seen with the same structure and constants as ``tx``.

    So an equal, fresh ``optax.adam(1e-3)`` shares its compiled step; else ``tx``
    (kept for the next equal one unless it is kept already under an older fingerprint).

    Example:
      >>> canonical(optax.adam(1e-3)) is canonical(optax.adam(1e-3))
      True
    """
    return _first_seen(_CANONICAL, tx, tuple(tx))


def canonical_function(fn: Any) -> Any:
    """The first function seen with the same code, closure and globals read as ``fn``.

    For a loss, ``loss_fn`` or metric function of your own: a notebook cell run again
    defines an equal, fresh lambda, which then shares the compiled step of the first.
    Anything else (a name, a module, a callable object), and a function that closes
    over or reads a mutable list, dict or set (state of its own), is returned as it is.

    Example:
      >>> make = lambda: (lambda p, y: (p - y) ** 2)
      >>> canonical_function(make()) is canonical_function(make())
      True
    """
    if not isinstance(fn, types.FunctionType | functools.partial):
        return fn
    return _first_seen(_FUNCTIONS, fn, fn, strict=True)


def clear() -> None:
    """Forgets every transformation and function seen here (``clear_caches``)."""
    _CANONICAL.clear()
    _FUNCTIONS.clear()
