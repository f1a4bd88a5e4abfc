"""Serialised inference functions: ``jax.export`` (StableHLO) with a symbolic batch.

The exported file holds the model's computation in inference mode (dropout off,
batch norm on its running statistics) with its weights as constants: loading it needs
JAX only, no model code, and runs any batch size. It ends in a CRC32 of its bytes, so
a damaged file fails :func:`load_exported` instead of computing wrong outputs; plain
``jax.export.deserialize`` ignores that record and reads the file as well.

Example:
  >>> import tempfile, jax.numpy as jnp
  >>> from flax import nnx
  >>> from nnjax import nn
  >>> model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
  >>> path = export(model, jnp.ones((2, 4)), tempfile.mkdtemp() + "/mlp.jaxexport")
  >>> load_exported(path)(jnp.ones((5, 4))).shape
  (5, 3)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from nnjax.io import _crc, layout
from nnjax.io._orbax import short
from nnjax.io.errors import CheckpointError, cannot_write
from nnjax.nn._model_call import call_model
from nnjax.nn._modes import view_in_mode
from nnjax.nn._validate import check_module

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
"""The platforms an export may name (``jax.export``'s lowering platforms)."""


def export(
    model: nnx.Module,
    example_input: Any,
    path: str | os.PathLike,
    *,
    platforms: str | Sequence[str] | None = None,
) -> Path:
    """Writes ``model``'s inference function for inputs like ``example_input`` to ``path``.

    Args:
      model: any NNX module.
      example_input: inputs as :func:`nnjax.train.predict` takes them: one array
        ``(B, ...)``, a tuple of positional inputs or a dict of keyword inputs (each
        any pytree of arrays ``(B, ...)``; :mod:`nnjax.train.model_call`). Only their
        structure, trailing shapes and dtypes matter: the batch axis (the first of
        every array, one size) is symbolic, so the file runs any batch size.
      path: the file to write.
      platforms: where it may run, a name or names from :data:`PLATFORMS`, e.g.
        ``("cpu", "cuda")``; the default backend only by default.

    Returns:
      The file's absolute path; :func:`load_exported` runs it, called as the model is:
      ``f(x)``, ``f(a, b)`` for a tuple, ``f(name=...)`` for a dict. The file is
      ``Exported.serialize()`` followed by a 20-byte CRC32 record, which
      ``jax.export.deserialize`` ignores.

    Raises:
      TypeError: a model that is not an ``nnx.Module``, inputs that are not arrays
        (names the first), or ``platforms`` not names.
      ValueError: inputs without a batch axis, or of different batch sizes; an unknown
        platform (lists the known ones).
      OSError: ``path`` cannot be written (the same kind of error, naming ``path`` and
        why); nothing is left under a temporary name and an existing file is unchanged.

    Example:
      >>> import tempfile
      >>> import numpy as np
      >>> import nnjax
      >>> from flax import nnx
      >>> from nnjax import nn
      >>> model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     path = nnjax.export(model, np.ones((1, 4), np.float32), f"{tmp}/mlp.jaxexport")
      ...     path.name, path.stat().st_size > 0
      ('mlp.jaxexport', True)
    """
    owner = "nnjax.export"
    check_module(model, owner=owner, usage=f"{owner}(model, example_input, path)")
    layout.check_path(owner, "path", path)
    platforms = _platforms(platforms)
    spec = _batch_spec(example_input)
    view = view_in_mode(model, deterministic=True, use_running_average=True)
    graphdef, state = nnx.split(view)

    def infer(*args: Any, **kwargs: Any) -> Any:  # called as the model is
        x = kwargs if isinstance(spec, dict) else args if isinstance(spec, tuple) else args[0]
        return call_model(nnx.merge(graphdef, state), x)

    args = spec if isinstance(spec, tuple) else () if isinstance(spec, dict) else (spec,)
    kwargs = spec if isinstance(spec, dict) else {}
    exported = jax.export.export(jax.jit(infer), platforms=platforms)(*args, **kwargs)
    path = layout.user_path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        data = exported.serialize()
    except ImportError:
        raise ImportError("nnjax.export needs flatbuffers: pip install flatbuffers") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(_crc.seal(bytes(data)))
        os.replace(tmp, path)
    except OSError as err:  # nothing left under the temporary name; an old file unchanged
        with contextlib.suppress(OSError):  # (under a file, even unlink fails)
            tmp.unlink()
        raise cannot_write(path, err) from err
    return path


def _platforms(platforms: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``platforms`` checked: lower-case names from :data:`PLATFORMS` (one name or several)."""
    if platforms is None:
        return None
    names = (platforms,) if isinstance(platforms, str) else platforms
    if not isinstance(names, Sequence) or not names or not all(isinstance(n, str) for n in names):
        raise TypeError(
            f"nnjax.export: `platforms` must be platform names such as ('cpu', 'cuda'), got "
            f"{platforms!r}"
        )
    unknown = [n for n in names if n.lower() not in PLATFORMS]
    if unknown:
        raise ValueError(
            f"nnjax.export: unknown platform {unknown[0]!r}; known: {', '.join(PLATFORMS)}"
        )
    return tuple(n.lower() for n in names)


def _batch_spec(example: Any) -> Any:
    """The example inputs as ``jax.ShapeDtypeStruct`` leaves with one symbolic batch axis.

    A list of inputs becomes a tuple (positional inputs, as :func:`call_model` reads it).
    """
    example = tuple(example) if isinstance(example, list) else example
    leaves, tree = jax.tree_util.tree_flatten_with_path(example)
    if not leaves:
        raise ValueError(f"nnjax.export: `example_input` holds no arrays: {example!r}")
    (batch,) = jax.export.symbolic_shape("batch")
    specs, sizes = [], {}
    for key, leaf in leaves:
        name = f"example_input{jax.tree_util.keystr(key)}"
        if not hasattr(leaf, "dtype"):
            raise TypeError(
                f"nnjax.export: {name} must be an array (B, ...), got {type(leaf).__name__}"
            )
        if np.ndim(leaf) == 0:
            raise ValueError(f"nnjax.export: {name} has no batch axis (a scalar)")
        sizes[name] = np.shape(leaf)[0]
        specs.append(jax.ShapeDtypeStruct((batch, *np.shape(leaf)[1:]), leaf.dtype))
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{n} {s}" for n, s in sizes.items())
        raise ValueError(f"nnjax.export: the inputs' batch sizes differ ({shown})")
    return jax.tree.unflatten(tree, specs)


def load_exported(path: str | os.PathLike) -> Callable[..., Any]:
    """The inference function in a file written by :func:`export` (no model code needed).

    Returns:
      ``f(x) -> outputs`` for ``x (B, ...)`` of any batch size ``B``; for a model
      exported with a tuple or dict of inputs, ``f(a, b)`` or ``f(name=...)``, as the
      model is called.

    The file's bytes are checked against the CRC32 that :func:`export` recorded at its
    end, then deserialised completely (its StableHLO too), so a damaged file fails at
    this call, not at the first prediction. A file without that record (written by an
    older nnjax, or by ``jax.export`` itself) loads unchecked.

    Raises:
      CheckpointError: the file is missing, damaged (fails its CRC32 check), or not a
        serialised ``jax.export`` (one line naming it).

    Example:
      >>> import tempfile
      >>> import numpy as np
      >>> import nnjax
      >>> from flax import nnx
      >>> from nnjax import nn
      >>> model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     path = nnjax.export(model, np.ones((1, 4), np.float32), f"{tmp}/mlp.jaxexport")
      ...     predict = nnjax.load_exported(path)
      >>> predict(np.ones((7, 4), np.float32)).shape
      (7, 3)
    """
    layout.check_path("nnjax.load_exported", "path", path)
    path = layout.user_path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"{path}: {err.strerror or err}") from None
    data, checked = _crc.unseal(data, str(path))
    try:
        exported = jax.export.deserialize(bytearray(data))
        exported.mlir_module()  # the StableHLO bytecode: damage there fails here, not at a call
        _check_signature(exported)
    except ImportError:
        raise ImportError(
            "nnjax.load_exported needs flatbuffers: pip install flatbuffers"
        ) from None
    except Exception as err:  # flatbuffer errors of many kinds
        unchecked = "" if checked else "; it has no CRC32 record (an older or cut-short file?)"
        raise CheckpointError(
            f"{path}: not an exported nnjax/JAX function ({short(err)}){unchecked}"
        ) from None
    return exported.call


def _check_signature(exported: jax.export.Exported) -> None:
    """Raises ``ValueError`` unless the inputs are the ``(args, kwargs)`` every export has."""
    inputs = exported.in_tree.num_leaves  # type: ignore[attr-defined]
    outputs = exported.out_tree.num_leaves  # type: ignore[attr-defined]
    args = jax.tree.unflatten(exported.in_tree, [0] * inputs)
    if not (isinstance(args, tuple) and len(args) == 2 and isinstance(args[1], dict)):
        raise ValueError(f"damaged input signature {exported.in_tree}")
    if inputs != len(exported.in_avals):
        raise ValueError("damaged input signature (its arrays do not match)")
    if outputs != len(exported.out_avals):
        raise ValueError("damaged output signature (its arrays do not match)")


__all__ = ["PLATFORMS", "export", "load_exported"]
