"""The rows of a batch that count in batch statistics (padding left out).

``fit`` pads the last partial batch of an epoch with copies of real rows and masks them
out of the loss; a layer that computes statistics *across* the batch (batch
normalisation) would still see the copies, so its outputs, gradients and running
statistics would differ from a loop over the real rows. ``fit`` therefore traces the
model inside :func:`batch_mask`, and :class:`nnjax.nn.BatchNorm` passes the mask on to
:func:`~nnjax.functional.batch_norm` for inputs whose first axis is the batch's. Use it
the same way in a loop of your own that pads batches.

Example:
  >>> import jax.numpy as jnp
  >>> current_batch_mask() is None
  True
  >>> with batch_mask(jnp.array([1.0, 1.0, 0.0])):
  ...     current_batch_mask().tolist()
  [1.0, 1.0, 0.0]
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import jax

from nnjax.functional._scoped import TRACE_CONTEXT

_MASK: contextvars.ContextVar[Any] = contextvars.ContextVar("batch_mask", default=None)


@contextlib.contextmanager
def batch_mask(mask: jax.typing.ArrayLike | None) -> Iterator[None]:
    """Within the block, batch statistics count only the rows where ``mask`` is nonzero.

    Read when a layer is traced (like the formulation contexts), so wrap the model call
    inside the function that is jitted. A block with a mask is an entry of JAX's trace
    context (one for every block, so eager ops compile once), so a ``jax.jit`` function
    traced inside one is not reused outside any.

    Args:
      mask: ``(B,)`` weights of the batch's rows, 1 for real rows and 0 for padding
        (float or bool; traced inside ``jit``), or ``None`` (every row counts).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> from nnjax import nn
      >>> bn = nn.BatchNorm(1, momentum=0.0, rngs=nnx.Rngs(0))
      >>> with batch_mask(jnp.array([1.0, 1.0, 0.0])):  # a padded copy of row 0 last
      ...     _ = bn(jnp.array([[1.0], [3.0], [1.0]]))
      >>> bn.mean[...].tolist()  # the mean of the real rows, 2, not 5/3
      [2.0]
    """
    token = _MASK.set(mask)
    try:
        if TRACE_CONTEXT is None or mask is None:
            yield
        else:  # the same entry for every block: a per-block one recompiled eager ops
            with TRACE_CONTEXT(f"{TRACE_CONTEXT.value};batch_mask"):
                yield
    finally:
        _MASK.reset(token)


def current_batch_mask() -> Any:
    """The mask of the innermost :func:`batch_mask` block, or ``None`` outside any.

    Example:
      >>> with batch_mask([1.0, 0.0]):
      ...     current_batch_mask()
      [1.0, 0.0]
    """
    return _MASK.get()


__all__ = ["batch_mask", "current_batch_mask"]
