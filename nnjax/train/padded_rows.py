"""Batch statistics of modules of your own over a last batch that ``fit`` pads.

``fit`` pads the last partial batch of an epoch with copies of real rows (one compiled
shape; the rows are masked out of the loss and the metrics). ``nnjax.nn.BatchNorm``
leaves them out of its statistics (``F.batch_mask``); a module of your own that keeps
batch statistics, Flax's ``nnx.BatchNorm`` among them, counts them, and its running
statistics drift from a loop over the unpadded batches. ``fit`` warns about that
(:func:`warn_if_counted`) before it compiles.

Example:
  >>> from flax import nnx
  >>> from nnjax.nn import BatchNorm
  >>> unmasked_statistics(nnx.Sequential(nnx.BatchNorm(3, rngs=nnx.Rngs(0))))
  ['layers/0 (BatchNorm)']
  >>> unmasked_statistics(BatchNorm(3, rngs=nnx.Rngs(0)))
  []
"""

from __future__ import annotations

import warnings
from typing import Any

from flax import nnx

from nnjax._deprecation import user_stacklevel
from nnjax.nn import BatchNorm


def unmasked_statistics(model: nnx.Module) -> list[str]:
    """Paths of the modules that keep batch statistics and do not mask padded rows.

    A module keeps batch statistics when it holds an ``nnx.BatchStat`` of its own;
    ``nnjax.nn.BatchNorm`` masks the rows.

    Example:
      >>> unmasked_statistics(nnx.BatchNorm(3, rngs=nnx.Rngs(0)))
      ['the model (BatchNorm)']
    """
    found = []
    for path, module in nnx.iter_modules(model):
        if isinstance(module, BatchNorm):
            continue
        if any(isinstance(value, nnx.BatchStat) for value in vars(module).values()):
            found.append(f"{'/'.join(map(str, path)) or 'the model'} ({type(module).__name__})")
    return found


def warn_if_counted(model: nnx.Module, source: Any) -> None:
    """Warns when ``source`` pads its last batch and ``model`` would count the copies.

    ``source`` is any object with ``n`` examples and a ``batch_size`` (an
    :class:`~nnjax.train.data.ArraySource`); others (iterables) are not judged.

    Example:
      >>> from types import SimpleNamespace
      >>> warn_if_counted(nnx.BatchNorm(3, rngs=nnx.Rngs(0)), SimpleNamespace(n=32, batch_size=16))
    """
    n, batch_size = getattr(source, "n", None), getattr(source, "batch_size", None)
    if not n or not batch_size or n % batch_size == 0:
        return
    found = unmasked_statistics(model)
    if not found:
        return
    warnings.warn(
        f"the last batch of each epoch ({n} examples, batch_size={batch_size}) is padded "
        f"with {batch_size - n % batch_size} copies of its rows, masked out of the loss and "
        f"the metrics; {', '.join(found[:3])} counts them in its batch statistics, unlike "
        "nnjax.nn.BatchNorm: use nnjax.nn.BatchNorm, or a batch_size that divides the "
        "examples",
        stacklevel=user_stacklevel(),
    )


__all__ = ["unmasked_statistics", "warn_if_counted"]
