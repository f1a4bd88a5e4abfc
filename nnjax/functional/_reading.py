"""Reading what users pass to the functional ops (private): arrays and parameter dicts.

:func:`as_array` reads an array argument such as ``x``; :func:`read_params` reads a
parameter dict: its keys against those the op reads (:func:`check_params`), and each of
its arrays as :func:`as_array` reads ``x`` (a list, a NumPy array or a PyTorch tensor is
accepted; anything else is an error that names the op and ``params['<key>']``). Only
Python on types, shapes and dtypes: a JAX array (a tracer under ``jax.jit`` too) is
returned as it is, so the traced program is the one of the arguments as passed.
Re-exported by :mod:`nnjax.functional._utils`, through which the ops call them.

Example:
  >>> params = read_params("dense", {"kernel": [[1.0], [2.0]]}, ("kernel",), ("bias",))
  >>> type(params["kernel"]).__name__, params["kernel"].shape
  ('ArrayImpl', (2, 1))
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnjax._torch_tensors import from_torch
from nnjax.errors import MissingKeyError


def check_params(
    op: str,
    params: Any,
    required: Iterable[str],
    optional: Iterable[str] = (),
    *,
    name: str = "params",
) -> None:
    """Checks that the parameter dict ``params`` has exactly the keys an op reads.

    A misspelt key (``"bais"`` for ``"bias"``) would otherwise be ignored silently and
    the op would run without that parameter.

    Args:
      op: the public name of the op, for the message.
      params: the mapping the user passed.
      required: keys the op always reads.
      optional: keys the op reads when present.
      name: how the argument is called in the message (``"params"``, ``"stats"``,
        ``"params['query']"``).

    Raises:
      TypeError: ``params`` is not a mapping (the message names its type: an array, a
        tuple, ``None``, a layer whose ``params()`` was meant).
      ValueError: a key the op does not read (names it, the closest expected key and
        the expected keys); checked first, so a misspelling is named as such.
      MissingKeyError: (a ``KeyError`` and a ``ValueError``) required keys are missing
        (names them, the keys present and the expected keys).

    Example:
      >>> check_params("dense", {"kernel": 0, "bias": 0}, ("kernel",), ("bias",))
      >>> try:
      ...     check_params("dense", {"kernel": 0, "bais": 0}, ("kernel",), ("bias",))
      ... except ValueError as err:
      ...     print(str(err)[:60])
      dense: `params` has an unexpected key 'bais' (did you mean '
    """
    required, optional = tuple(required), tuple(optional)
    if not isinstance(params, Mapping):
        raise TypeError(f"{op}: `{name}` must be a dict of arrays, got {_describe(params, name)}")
    expected = ", ".join(repr(k) for k in required)
    if optional:
        expected += f", optionally {', '.join(repr(k) for k in optional)}"
    known = set(required) | set(optional)
    for key in params:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"{op}: `{name}` has an unexpected key {key!r}{hint}; expected keys: {expected}"
            )
    missing = [key for key in required if key not in params]
    if missing:
        keys = f"key{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))}"
        raise MissingKeyError(
            f"{op}: `{name}` has no {keys} (it has {sorted(map(str, params))}); "
            f"expected keys: {expected}"
        )


def _describe(value: Any, name: str) -> str:
    """What a non-mapping ``params`` is, for :func:`check_params`'s message."""
    got = type(value).__name__
    if value is None:
        return "None"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"an array of shape {tuple(value.shape)} ({value.dtype}); `{name}` comes first"
    if callable(getattr(value, "params", None)):  # an nnjax.nn layer
        return f"{got}, a layer: pass its parameter dict, `layer.params()`"
    if isinstance(value, tuple | list):
        return f"{got} of {len(value)} item{'s' * (len(value) != 1)}"
    return got


def read_params(
    op: str,
    params: Any,
    required: Iterable[str],
    optional: Iterable[str] = (),
    *,
    name: str = "params",
) -> dict[str, jax.Array]:
    """``params`` checked (:func:`check_params`), each value read as :func:`as_array` reads ``x``.

    An optional key set to ``None`` counts as absent (Flax's ``bias=None`` for a layer
    without one). JAX arrays (tracers under ``jax.jit`` too) are returned as they are.

    Args:
      op: the public name of the op, for the messages.
      params: the mapping the user passed (one level: a value that is a dict is an
        error; nested parameters are read level by level, with ``name``).
      required: keys the op always reads.
      optional: keys the op reads when present.
      name: how the argument is called in the messages; a value is named
        ``name[key]``, e.g. ``params['kernel']``.

    Returns:
      A new dict of the keys of ``params`` (but optional ones set to ``None``), each a
      JAX array.

    Raises:
      TypeError, ValueError, MissingKeyError: as :func:`check_params`, and as
        :func:`as_array` for a value that holds no numbers (``None``, a string, a dict,
        an array of objects), naming ``params['<key>']``.

    Example:
      >>> try:
      ...     read_params("dense", {"kernel": None}, ("kernel",), ("bias",))
      ... except TypeError as err:
      ...     print(err)
      dense: `params['kernel']` must be an array, got None
    """
    required = tuple(required)
    check_params(op, params, required, optional, name=name)
    read = {}
    for key, value in params.items():
        if value is None and key not in required:
            continue
        leaf = f"{name}[{key!r}]"
        if isinstance(value, Mapping):
            raise TypeError(
                f"{op}: `{leaf}` must be an array, got a dict with keys {sorted(map(str, value))}"
            )
        read[key] = as_array(op, value, leaf)
    return read


def as_array(op: str, x: Any, name: str = "x", *, numbers: str = "float32") -> jax.Array:
    """``x`` as a JAX array; an error naming ``op`` and ``name`` unless it holds numbers.

    A JAX array (a tracer under ``jax.jit`` too) is returned as it is, at the cost of one
    ``isinstance``. A PyTorch tensor is read as ``fit`` reads one: detached (one that
    requires grad too), from any device, a bfloat16 one as bfloat16. Anything else goes
    to ``jnp.asarray``; only when that fails is the value inspected, for the message.

    Args:
      op: the public name of the op, for the messages.
      x: the value passed.
      name: how the argument is called in the messages.
      numbers: the NumPy dtype that the messages suggest converting to (``"int32"``
        for ids).

    Raises:
      TypeError: a dict (the parameters, the arguments swapped), ``None``, a string, or
        an array of objects or strings (NumPy dtype ``object``, e.g. pandas' ``.values``
        of mixed columns); the message names the dtype or type passed.
      ValueError: a ragged nested list (rows of different lengths).

    Example:
      >>> as_array("dense", [[1.0, 2.0]]).dtype
      dtype('float32')
      >>> try:
      ...     as_array("dense", np.array([[1.0, 2.0]], dtype=object))
      ... except TypeError as err:
      ...     print(str(err).split(" got ")[1])
      a NumPy array of dtype object (convert it, e.g. x.astype(np.float32))
    """
    if isinstance(x, jax.Array):  # jitted and eager JAX code: nothing to convert
        return x
    if isinstance(x, Mapping):
        raise TypeError(
            f"{op}: `{name}` must be an array, got a dict with keys {sorted(map(str, x))}; "
            f"parameter dicts come before `{name}` in {op}'s arguments"
        )
    if x is None:
        raise TypeError(f"{op}: `{name}` must be an array, got None")
    if isinstance(x, str | bytes):  # jnp.asarray parses "5 2 4" as a dtype: a SyntaxError
        raise _not_numeric(op, name, x, numbers)
    x = from_torch(x)
    try:
        return jnp.asarray(x)
    except (TypeError, ValueError):
        raise _not_numeric(op, name, x, numbers) from None


def _not_numeric(op: str, name: str, x: Any, numbers: str) -> Exception:
    """The error for an ``x`` that ``jnp.asarray`` refused: what it is, and what to do."""
    head = f"{op}: `{name}` must be a numeric array, got"
    if isinstance(x, str | bytes):
        return TypeError(f"{head} the {type(x).__name__} {x!r:.60}")
    try:
        array = np.asarray(x)
    except ValueError:  # NumPy refuses ragged lists since 1.24
        array = None
    except TypeError:
        return TypeError(f"{head} a {type(x).__name__}, which NumPy cannot read as an array")
    if array is None or (array.dtype == object and _ragged(x)):
        return ValueError(
            f"{head} a ragged {type(x).__name__} (nested sequences of different lengths, "
            f"{x!r:.60}); pad them to one length"
        )
    if isinstance(x, np.ndarray):
        what, fix = "a NumPy array", f"{name}.astype(np.{numbers})"
    else:
        what, fix = f"a {type(x).__name__}", f"np.asarray({name}, np.{numbers})"
    if array.dtype.kind in "OUSV":  # objects, strings, bytes, records
        of = "strings, dtype" if array.dtype.kind in "US" else "dtype"
        return TypeError(f"{head} {what} of {of} {array.dtype} (convert it, e.g. {fix})")
    return TypeError(f"{head} {what} of dtype {array.dtype}, which JAX cannot hold")


def _ragged(x: Any) -> bool:
    """Whether ``x`` is a list or tuple whose items have different shapes."""
    if not isinstance(x, list | tuple) or not x:
        return False
    try:
        return len({np.shape(item) for item in x}) > 1
    except ValueError:  # an item is ragged itself
        return True


__all__ = ["MissingKeyError", "as_array", "check_params", "read_params"]
