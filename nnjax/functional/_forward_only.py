"""Forward-only tracing: ``formulation="auto"`` picks what runs fastest without gradients.

On the CPU, the formulations that make a training step fastest (im2col patches for
convolutions, a reshape for non-overlapping pools) lose when no gradient is taken:
XLA's convolution forward is 1.5-3.5x faster than patches, and ``reduce_window``
pooling's forward beats the reshape (``benchmarks/bench_cnn.py`` predict rows, quiet
2-core AMD EPYC, batch 128: 33 ms with the training picks against 18 ms for Flax's
XLA convolution and ``reduce_window``). Depthwise convolutions keep their shifted
multiply-adds (``_conv_taps.depthwise``), whose forward is also the fastest (2.4-27x
XLA's grouped convolution, same machine). Code that only runs the model forward
(``nnjax.train``'s evaluate and predict steps) traces under :func:`forward_only`; an
explicit ``formulation=`` or a :func:`~nnjax.functional.conv_formulation` /
:func:`~nnjax.functional.pool_formulation` block still wins.

Example:
  >>> is_forward_only()
  False
  >>> with forward_only():
  ...     is_forward_only()
  True
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from nnjax.functional._scoped import scoped

_FORWARD_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("forward_only", default=False)


@contextlib.contextmanager
def forward_only() -> Iterator[None]:
    """Within the block, ``formulation="auto"`` picks the fastest forward-only formulations.

    Like the formulation contexts it is read when an op is traced, so wrap the body of
    the function that is jitted (or the first call that traces it). Use it for code
    that is never differentiated: the picks are still differentiable, only slower to
    differentiate on the CPU.

    Returns:
      A context manager for a ``with`` statement (it yields ``None``); the previous
      setting is restored on exit.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import nnjax.functional as F
      >>> params = F.conv2d_init(jax.random.key(0), 1, 4, 3)
      >>> def infer(x):
      ...     with F.forward_only():
      ...         return F.max_pool2d(F.conv2d(params, x), 2)
      >>> jax.jit(infer)(jnp.ones((2, 8, 8, 1))).shape
      (2, 4, 4, 4)
    """
    with scoped(_FORWARD_ONLY, True):
        yield


def is_forward_only() -> bool:
    """Whether the caller is tracing inside :func:`forward_only`."""
    return _FORWARD_ONLY.get()


__all__ = ["forward_only", "is_forward_only"]
