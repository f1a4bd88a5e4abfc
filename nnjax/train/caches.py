"""Forgetting nnjax's memoised programs, and what they hold: :func:`clear_caches`.

``fit``, ``evaluate``, ``predict`` and ``sweep`` memoise what they build (the compiled
dispatches, the last 64 per kind; the injected optimizers; the losses as called on a
batch), keyed on the model's graph, the loss, the optimizer and the options, so a second
call with the same ones compiles nothing. Each memoised entry holds the callables it
was built from (a ``loss_fn``, a loss, an Optax transformation and its schedule) and
whatever they close over (a dataset, a teacher model). ``jax.clear_caches()`` does not
reach these memos; :func:`clear_caches` does.

Example:
  >>> clear_caches()  # the next fit compiles afresh
"""

from __future__ import annotations

from nnjax import _metrics_functions
from nnjax.train import _canonical, compiled, objective, optimizers


def clear_caches() -> None:
    """Forgets every memoised program, optimizer and loss of :mod:`nnjax.train`.

    Call it in a long session (a notebook) to release the callables earlier ``fit``
    calls were given and what they close over; the next ``fit`` compiles afresh.
    Compiled programs that JAX itself caches are left to ``jax.clear_caches()``.

    Example:
      >>> import gc, weakref
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> from nnjax.train import fit
      >>> class Table:  # something a loss closes over
      ...     scale = 1.0
      >>> table = Table()
      >>> def loss(pred, y):
      ...     return table.scale * ((pred[:, 0] - y) ** 2).mean()
      >>> x, y = np.ones((8, 2), np.float32), np.zeros(8, np.float32)
      >>> _ = fit(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), (x, y), loss=loss, verbose=0)
      >>> held = weakref.ref(table)
      >>> del loss, table
      >>> clear_caches(); _ = gc.collect()
      >>> held() is None
      True
    """
    for memo in compiled.MEMOS:
        memo.cache_clear()
    for cache in (optimizers.accumulate, optimizers._injected, objective._cached_loss_on_batch):
        cache.cache_clear()
    _metrics_functions._loss_terms.cache_clear()
    _canonical.clear()


__all__ = ["clear_caches"]
