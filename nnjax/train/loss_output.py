"""What a loss returns, checked when a step is traced (never per step).

``loss_fn(model, batch)`` returns a scalar loss or ``(loss, logs)`` with ``logs`` a dict
of scalars; ``loss(predictions, y)`` returns the batch's scalar loss. Anything else is
an error that names the function and what it returned, raised while the step is
traced (``fit`` traces it with ``jax.eval_shape`` before anything compiles). An error
raised inside ``loss_fn`` gets a note on how ``loss_fn`` is called.

Example:
  >>> import jax.numpy as jnp
  >>> loss, logs = loss_fn_result((jnp.float32(1.0), {"a": jnp.float32(2.0)}))
  >>> sorted(logs)
  ['a']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from nnjax.train.validation import describe

LOSS_FN_SCALAR = (
    "loss_fn must return a scalar loss (or (loss, logs)); reduce per-example values over "
    "the real rows, e.g. nnjax.train.masked_mean(values, batch.mask) (the last batch is "
    "padded with copies, 0 in batch.mask)"
)
"""What a non-scalar ``loss_fn`` is told (see :func:`scalar`)."""
LOSS_SCALAR = (
    "the loss, loss(predictions, y), must return a scalar for the batch (one that "
    "returns a value per example takes a `reduction` keyword: fit calls it with "
    "reduction='none', then weighs and masks the values)"
)
"""What a non-scalar ``loss(predictions, y)`` is told (see :func:`scalar`)."""

LOSS_FN_NOTE = (
    "while tracing loss_fn(model, batch): model is the nnx.Module and batch a "
    "Batch(x, y, weight, mask); for loss(predictions, y) use loss= instead"
)
"""The note on an exception raised while tracing ``loss_fn`` (a ``loss(predictions, y)``
passed as ``loss_fn`` fails inside it).
"""


class LossOutputError(ValueError):
    """``loss_fn`` or ``loss(predictions, y)`` returned something that is not a loss."""


def scalar(value: Any, what: str = LOSS_FN_SCALAR) -> jax.Array:
    """``value`` as a floating scalar: float32, or its own dtype where that is wider.

    A float64 loss (a float64 model with ``jax_enable_x64``) stays float64; integers,
    Python numbers and narrower floats (bfloat16, float16) become float32.

    Raises:
      LossOutputError: ``value`` has a shape (the message is ``what`` and the shape).

    Example:
      >>> scalar(3).dtype
      dtype('float32')
    """
    if jnp.shape(value) != ():
        raise LossOutputError(f"{what}; got an array of shape {jnp.shape(value)}")
    dtype = getattr(value, "dtype", None)  # a Python number (weakly typed) is float32
    wide = jnp.float32 if dtype is None else jnp.promote_types(dtype, jnp.float32)
    return jnp.asarray(value, wide if jnp.issubdtype(wide, jnp.floating) else jnp.float32)


def call_loss_fn(loss_fn: Callable, model: Any, batch: Any) -> tuple[Any, Any]:
    """``(loss, logs)`` of ``loss_fn(model, batch)``; an error it raises gets a note.

    The note (:data:`LOSS_FN_NOTE`) keeps the error's type and message.

    Example:
      >>> call_loss_fn(lambda model, batch: 1.0, None, None)
      (1.0, {})
    """
    try:
        out = loss_fn(model, batch)
    except Exception as err:  # at trace time only: no cost per step
        err.add_note(LOSS_FN_NOTE)
        raise
    return loss_fn_result(out)


def loss_fn_result(out: Any) -> tuple[Any, Any]:
    """``(loss, logs)`` from what ``loss_fn`` returned: a loss, or a pair with a dict.

    Raises:
      TypeError: ``None``, or logs that are not a mapping.
      LossOutputError: a tuple that is not a pair.

    Example:
      >>> loss_fn_result(2.0)
      (2.0, {})
    """
    if out is None:
        raise TypeError(
            "loss_fn returned None; it must return a scalar loss or (loss, logs) "
            "(a missing `return`?)"
        )
    if not isinstance(out, tuple):
        return out, {}
    if len(out) != 2:
        raise LossOutputError(
            f"loss_fn must return a scalar loss or a pair (loss, logs); it returned a tuple "
            f"of {len(out)}: {describe(out)}"
        )
    if not isinstance(out[1], Mapping):
        kind = "an array" if hasattr(out[1], "shape") else f"a {type(out[1]).__name__}"
        raise TypeError(
            f"loss_fn returned (loss, logs) with logs {kind}, {describe(out[1])}; logs must "
            "be a dict of name -> scalar, e.g. return loss, {'mae': mae}"
        )
    return out[0], out[1]


def scalar_logs(logs: Mapping[str, Any]) -> dict[str, jax.Array]:
    """Every value of ``loss_fn``'s logs as a scalar (:func:`scalar`; named when it is not one).

    Example:
      >>> scalar_logs({"a": 1.0})["a"].shape
      ()
    """
    return {k: scalar(v, f"loss_fn's logs[{k!r}] must be a scalar") for k, v in logs.items()}


__all__ = [
    "LOSS_FN_NOTE",
    "LOSS_FN_SCALAR",
    "LOSS_SCALAR",
    "LossOutputError",
    "call_loss_fn",
    "loss_fn_result",
    "scalar",
    "scalar_logs",
]
