"""The training state and the data order of each epoch."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


class TrainState(NamedTuple):
    """What a training step updates: ``params``, optimizer ``opt_state``, other model ``rest``.

    A pytree (a named tuple), so it can be jitted, donated, sharded and checkpointed.

    Example:
      >>> TrainState({"w": 1.0}, (), {})._fields
      ('params', 'opt_state', 'rest')
    """

    params: Any
    opt_state: Any
    rest: Any


def epoch_batches(
    seed: int, epoch: int, n: int, batch_size: int, *, shuffle: bool = True
) -> np.ndarray:
    """Example indices of one epoch's full batches, ``(n // batch_size, batch_size)``.

    The order is a pure function of ``(seed, epoch)``, so a resumed run sees exactly the
    batches an uninterrupted one would. The last ``n % batch_size`` examples of the
    permutation are dropped (a different subset each epoch), which keeps every update
    the same shape: no recompiles.

    Example:
      >>> epoch_batches(0, 0, 5, 2, shuffle=False).tolist()
      [[0, 1], [2, 3]]
    """
    order = np.random.default_rng((seed, epoch)).permutation(n) if shuffle else np.arange(n)
    steps = n // batch_size
    return order[: steps * batch_size].reshape(steps, batch_size)


def padded_batches(n: int, batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(indices, mask)`` batches covering ``0..n-1`` in order, the last one padded.

    Padding repeats real examples (so it never produces NaNs) with mask 0.

    Example:
      >>> [(i.tolist(), m.tolist()) for i, m in padded_batches(3, 2)]
      [([0, 1], [1.0, 1.0]), ([2, 0], [1.0, 0.0])]
    """
    total = -(-n // batch_size) * batch_size
    idx = np.resize(np.arange(n), total).reshape(-1, batch_size)
    mask = (np.arange(total) < n).astype(np.float32).reshape(-1, batch_size)
    return list(zip(idx, mask))


__all__ = ["TrainState", "epoch_batches", "padded_batches"]
