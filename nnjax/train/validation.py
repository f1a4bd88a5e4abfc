"""Input checks that run before anything is compiled, with errors that say what is wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nnjax import losses


def as_host_array(name: str, a: Any) -> np.ndarray:
    """``a`` as a NumPy array; float64 becomes float32 (JAX computes in 32 bits).

    Example:
      >>> as_host_array("x", [1.0, 2.0]).dtype
      dtype('float32')
    """
    a = np.asarray(a)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    return a


def check_dataset(
    name: str, data: Any, *, check_inputs: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Checks that ``data`` is a non-empty ``(x, y)`` pair of equal length; returns it as NumPy.

    Args:
      name: how the data set is called in errors (``"train"``, ``"validation"``).
      data: ``(x, y)`` with ``x (N, ...)`` and ``y (N, ...)``.
      check_inputs: reject non-floating ``x`` (raw ``uint8`` images); turn off for
        models that take integer inputs such as token ids.

    Raises:
      ValueError: not a pair, an empty set, or ``len(x) != len(y)``.
      TypeError: integer or boolean ``x`` with ``check_inputs``.

    Example:
      >>> x, y = check_dataset("train", (np.zeros((4, 2)), np.zeros(4, int)))
      >>> x.shape, x.dtype
      ((4, 2), dtype('float32'))
    """
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise ValueError(f"`{name}` must be a pair (x, y) of arrays, got {type(data).__name__}")
    x, y = as_host_array(f"{name} x", data[0]), as_host_array(f"{name} y", data[1])
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"`{name}`: x and y need a leading example axis; got {x.shape}, {y.shape}")
    if len(x) != len(y):
        raise ValueError(
            f"`{name}`: x has {len(x)} examples (shape {x.shape}) but y has {len(y)} "
            f"(shape {y.shape}); they must have the same length"
        )
    if len(x) == 0:
        raise ValueError(f"`{name}` is empty: x has shape {x.shape}")
    if check_inputs and not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"`{name}` x has dtype {x.dtype}; models expect floating inputs. Scale raw "
            f"images first, e.g. x.astype('float32') / 255 (or pass check_inputs=False "
            "for models that take integer inputs)"
        )
    return x, y


def _expected_input(model: nnx.Module) -> str:
    features = getattr(model, "in_features", None)
    return f" (the model expects {features} input features)" if features is not None else ""


def output_shape(
    model: nnx.Module, graphdef: nnx.GraphDef, params: Any, rest: Any, x: np.ndarray
) -> jax.ShapeDtypeStruct:
    """The model's output for one example of ``x``, by :func:`jax.eval_shape` (no compile).

    Raises:
      ValueError: the model cannot take ``x``; names the per-example shape it got.
    """
    example = jax.ShapeDtypeStruct((1, *x.shape[1:]), x.dtype)
    try:
        return jax.eval_shape(
            lambda p, r, e: nnx.merge(graphdef, p, r, copy=True)(e), params, rest, example
        )
    except (AssertionError, TypeError, ValueError) as err:
        raise ValueError(
            f"the model cannot take inputs of per-example shape {x.shape[1:]} "
            f"(dtype {x.dtype}){_expected_input(model)}: {err}"
        ) from err


def check_labels(out: jax.ShapeDtypeStruct, y: np.ndarray, name: str = "train") -> None:
    """Integer class labels must lie in ``[0, C)`` for a model with ``C`` outputs.

    Binary outputs (``C == 1``) take labels in ``{0, 1}``.

    Example:
      >>> out = jax.ShapeDtypeStruct((1, 3), jnp.float32)
      >>> check_labels(out, np.array([0, 2]))
    """
    if not np.issubdtype(y.dtype, np.integer) or y.ndim != len(out.shape) - 1:
        return
    classes = out.shape[-1]
    upper = 2 if classes == 1 else classes
    bad = np.flatnonzero((y < 0) | (y >= upper))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"`{name}` y[{i}] = {y.flat[i]} is out of range: the model has {classes} "
            f"output{'s' if classes != 1 else ''}, so labels must lie in [0, {upper - 1}] "
            f"({bad.size} bad label{'s' if bad.size != 1 else ''})"
        )


def check_loss_accepts(
    loss: str | Callable, out: jax.ShapeDtypeStruct, y: np.ndarray, name: str = "train"
) -> None:
    """The loss must accept the model's output with one example's labels (by eval_shape)."""
    target = jax.ShapeDtypeStruct((1, *y.shape[1:]), y.dtype)
    logits = jax.ShapeDtypeStruct(out.shape, jnp.float32)
    try:
        jax.eval_shape(losses.get(loss), logits, target)
    except (AssertionError, TypeError, ValueError) as err:
        raise ValueError(
            f"`{name}`: the loss cannot compare model outputs of shape {out.shape[1:]} "
            f"with labels of shape {y.shape[1:]} (dtype {y.dtype}) per example: {err}"
        ) from err


__all__ = ["as_host_array", "check_dataset", "check_labels", "check_loss_accepts", "output_shape"]
