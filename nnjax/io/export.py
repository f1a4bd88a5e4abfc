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

import jax
import numpy as np
from flax import nnx

from nnjax.io import _crc, layout
from nnjax.io._orbax import short
from nnjax.io.errors import CheckpointError, cannot_write
from nnjax.nn._validate import check_module


def export(
    model: nnx.Module,
    example_input: jax.typing.ArrayLike,
    path: str | os.PathLike,
    *,
    platforms: Sequence[str] | None = None,
) -> Path:
    """Writes ``model``'s inference function for inputs like ``example_input`` to ``path``.

    Args:
      model: any NNX module taking one array ``(B, ...)``.
      example_input: an array ``(B, ...)``; only its trailing shape and dtype matter:
        the batch axis is symbolic, so the file runs any batch size.
      path: the file to write.
      platforms: where it may run, e.g. ``("cpu", "cuda")``; the default backend only
        by default.

    Returns:
      The file's absolute path; :func:`load_exported` runs it. The file is
      ``Exported.serialize()`` followed by a 20-byte CRC32 record, which
      ``jax.export.deserialize`` ignores.

    Raises:
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
    example = np.asarray(example_input) if not hasattr(example_input, "dtype") else example_input
    view = nnx.view(model, raise_if_not_found=False, deterministic=True, use_running_average=True)
    graphdef, state = nnx.split(view)

    def infer(x: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, state)(x)

    (batch,) = jax.export.symbolic_shape("batch")
    spec = jax.ShapeDtypeStruct((batch, *np.shape(example)[1:]), example.dtype)
    exported = jax.export.export(jax.jit(infer), platforms=platforms)(spec)
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


def load_exported(path: str | os.PathLike) -> Callable[[jax.typing.ArrayLike], jax.Array]:
    """The inference function in a file written by :func:`export` (no model code needed).

    Returns:
      ``f(x) -> outputs`` for ``x (B, ...)`` of any batch size ``B``.

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


__all__ = ["export", "load_exported"]
