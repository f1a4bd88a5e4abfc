"""Serialised inference functions: ``jax.export`` (StableHLO) with a symbolic batch.

The exported file holds the model's computation in inference mode (dropout off,
batch norm on its running statistics) with its weights as constants: loading it needs
JAX only, no model code, and runs any batch size.

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

from nnjax.io.errors import CheckpointError, cannot_write


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
      The file's absolute path; :func:`load_exported` runs it.

    Raises:
      OSError: ``path`` cannot be written (the same kind of error, naming ``path`` and
        why); nothing is left under a temporary name and an existing file is unchanged.

    Example:
      >>> # nnjax.export(model, x_test[:1], "model.jaxexport")
    """
    example = np.asarray(example_input) if not hasattr(example_input, "dtype") else example_input
    view = nnx.view(model, raise_if_not_found=False, deterministic=True, use_running_average=True)
    graphdef, state = nnx.split(view)

    def infer(x: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, state)(x)

    (batch,) = jax.export.symbolic_shape("batch")
    spec = jax.ShapeDtypeStruct((batch, *np.shape(example)[1:]), example.dtype)
    exported = jax.export.export(jax.jit(infer), platforms=platforms)(spec)
    path = Path(path).absolute()
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        data = exported.serialize()
    except ImportError:
        raise ImportError("nnjax.export needs flatbuffers: pip install flatbuffers") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
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

    Raises:
      CheckpointError: the file is missing or not a serialised ``jax.export``.

    Example:
      >>> # predict = nnjax.load_exported("model.jaxexport"); predict(x_test)
    """
    path = Path(path).absolute()
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"{path}: {err.strerror or err}") from None
    try:
        exported = jax.export.deserialize(bytearray(data))
    except ImportError:
        raise ImportError(
            "nnjax.load_exported needs flatbuffers: pip install flatbuffers"
        ) from None
    except Exception as err:  # flatbuffer errors of many kinds
        raise CheckpointError(f"{path}: not an exported nnjax/JAX function ({err})") from None
    return exported.call


__all__ = ["export", "load_exported"]
